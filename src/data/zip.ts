// Random access into zip archives (COCO's image zips, GLUE's task zips,
// Karpathy's caption_datasets.zip) without extracting them.

import type { Entry, ZipFile } from 'yauzl';

export class ZipReader {
  private constructor(
    private readonly zip: ZipFile,
    readonly entries: Map<string, Entry>,
    readonly path: string,
  ) {}

  static async open(path: string): Promise<ZipReader> {
    const yauzl = (await import('yauzl')).default;
    const zip = await new Promise<ZipFile>((ok, fail) =>
      yauzl.open(path, { lazyEntries: true, autoClose: false }, (err, z) =>
        err ? fail(new Error(`${path} is not a readable zip (${err.message}); it may be truncated: download it again`)) : ok(z!),
      ),
    );
    const entries = new Map<string, Entry>();
    await new Promise<void>((ok, fail) => {
      zip.on('entry', (e: Entry) => {
        entries.set(e.fileName, e);
        zip.readEntry();
      });
      zip.on('end', ok);
      zip.on('error', (err: Error) => fail(new Error(`${path}: corrupt zip (${err.message})`)));
      zip.readEntry();
    });
    return new ZipReader(zip, entries, path);
  }

  /** First entry whose name ends with `suffix` (archives nest their files under varying top directories). */
  find(suffix: string): string | undefined {
    if (this.entries.has(suffix)) return suffix;
    for (const name of this.entries.keys()) if (name.endsWith('/' + suffix) || name === suffix) return name;
    return undefined;
  }

  async read(name: string): Promise<Buffer> {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.path} has no entry ${name}`);
    const stream = await new Promise<NodeJS.ReadableStream>((ok, fail) => this.zip.openReadStream(e, (err, s) => (err ? fail(err) : ok(s!))));
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  close(): void {
    this.zip.close();
  }
}
