// `smke run`: not built yet.
export default async function runCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke run: not implemented yet\n");
  return 2;
}
