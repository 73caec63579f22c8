// `smke fmt`: not built yet.
export default async function fmtCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke fmt: not implemented yet\n");
  return 2;
}
