// `smke gc`: not built yet.
export default async function gcCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke gc: not implemented yet\n");
  return 2;
}
