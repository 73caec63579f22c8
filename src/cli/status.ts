// `smke status`: not built yet.
export default async function statusCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke status: not implemented yet\n");
  return 2;
}
