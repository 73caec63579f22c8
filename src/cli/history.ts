// `smke history`: not built yet.
export default async function historyCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke history: not implemented yet\n");
  return 2;
}
