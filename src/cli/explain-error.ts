// `smke explain-error`: not built yet.
export default async function explainErrorCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke explain-error: not implemented yet\n");
  return 2;
}
