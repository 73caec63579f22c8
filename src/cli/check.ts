// `smke check`: not built yet.
export default async function checkCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke check: not implemented yet\n");
  return 2;
}
