// `smke log`: not built yet.
export default async function logCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke log: not implemented yet\n");
  return 2;
}
