// `smke worker`: not built yet.
export default async function workerCommand(_argv: string[]): Promise<number> {
  process.stderr.write("smke worker: not implemented yet\n");
  return 2;
}
