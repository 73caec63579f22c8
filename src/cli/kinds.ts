// `smke kinds`: not built yet.
export default async function kindsCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke kinds: not implemented yet\n");
  return 2;
}
