// `smke dag`: not built yet.
export default async function dagCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke dag: not implemented yet\n");
  return 2;
}
