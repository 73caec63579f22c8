// `smke verify`: not built yet.
export default async function verifyCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke verify: not implemented yet\n");
  return 2;
}
