// `smke explain`: not built yet.
export default async function explainCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke explain: not implemented yet\n");
  return 2;
}
