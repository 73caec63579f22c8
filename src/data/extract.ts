// Archive extraction (tar, tar.gz, zip) that refuses entries escaping the
// output directory: absolute paths, `..` segments, and links whose target
// lies outside. Extraction goes to a staging directory renamed into place on
// success, so a truncated archive never leaves a half-extracted tree.

import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, symlink, link } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, posix, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

export type ArchiveFormat = 'tar' | 'tar.gz' | 'zip';

export class ArchiveError extends Error {
  override name = 'ArchiveError';
}

export interface ExtractOptions {
  /** `fail` (default): an escaping entry aborts the extraction; `skip`: it is left out and counted. */
  unsafe?: 'fail' | 'skip';
  onProgress?(bytes: number): void;
  signal?: AbortSignal;
}

export interface ExtractResult {
  files: number;
  dirs: number;
  links: number;
  bytes: number;
  /** Entries left out, with why (unsafe paths with `unsafe: 'skip'`, devices, fifos). */
  skipped: { name: string; reason: string }[];
}

/** Detect the format from the first bytes (names lie: `.tar.gz` files that are plain tar exist). */
export async function detectArchive(path: string): Promise<ArchiveFormat | undefined> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
    if (bytesRead >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return undefined;
  } finally {
    await fh.close();
  }
}

/** Why an entry name or link target is unsafe, or undefined when it stays inside. */
export function unsafeReason(name: string, linkTarget?: string): string | undefined {
  const n = name.replace(/\\/g, '/');
  if (n.startsWith('/') || /^[A-Za-z]:/.test(n) || isAbsolute(n)) return 'absolute path';
  if (n.split('/').includes('..')) return "path contains '..'";
  if (n.includes('\0')) return 'NUL in name';
  if (linkTarget !== undefined) {
    const t = linkTarget.replace(/\\/g, '/');
    if (t.startsWith('/') || /^[A-Za-z]:/.test(t)) return `link to absolute path ${linkTarget}`;
    const joined = posix.normalize(posix.join(posix.dirname(n), t));
    if (joined === '..' || joined.startsWith('../')) return `link points outside the archive (${linkTarget})`;
  }
  return undefined;
}

/**
 * Symbolic links made so far, by normalised entry name. An entry whose path
 * runs through one is refused: each link may stay inside on its own while a
 * chain of them (`a -> ..`, then `a/b -> ..`) leads out.
 */
class LinkGuard {
  private readonly links = new Set<string>();

  add(name: string): void {
    this.links.add(posix.normalize(name.replace(/\\/g, '/')).replace(/\/+$/, ''));
  }

  check(name: string): string | undefined {
    const parts = posix.normalize(name.replace(/\\/g, '/')).split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (this.links.has(prefix)) return `path goes through the symbolic link ${prefix}`;
    }
    return undefined;
  }
}

function inside(root: string, name: string): string {
  const p = resolve(root, normalize(name));
  if (p !== root && !p.startsWith(root + sep)) throw new ArchiveError(`entry ${name} resolves outside the output directory`);
  return p;
}

function truncatedError(archive: string, err: unknown): ArchiveError {
  const msg = (err as Error).message ?? String(err);
  if (/unexpected end|premature|truncated|incorrect header|invalid (?!relative)|zlib|end of central directory|signature/i.test(msg)) {
    return new ArchiveError(`${archive} is truncated or corrupt (${msg}); download it again`);
  }
  return new ArchiveError(`${archive}: extraction failed: ${msg}`);
}

async function extractTar(archive: string, root: string, gz: boolean, opts: ExtractOptions, res: ExtractResult): Promise<void> {
  const tar = await import('tar-stream');
  const ex = tar.extract();
  const guard = new LinkGuard();
  const src = createReadStream(archive);
  const feed = gz ? pipeline(src, createGunzip(), ex) : pipeline(src, ex);
  feed.catch(() => {});
  try {
    for await (const entry of ex) {
      opts.signal?.throwIfAborted();
      const h = entry.header;
      const name = h.name;
      const type = h.type ?? 'file';
      // Hard link targets are archive-root relative; symlink targets are relative to the link's directory.
      const bad =
        (type === 'link'
          ? (unsafeReason(name) ?? (unsafeReason(h.linkname ?? '') ? `hard link points outside the archive (${h.linkname})` : undefined))
          : unsafeReason(name, type === 'symlink' ? (h.linkname ?? '') : undefined)) ??
        guard.check(name) ??
        (type === 'link' ? guard.check(h.linkname ?? '') : undefined);
      if (bad) {
        entry.resume();
        if (opts.unsafe === 'skip') {
          res.skipped.push({ name, reason: bad });
          continue;
        }
        throw new ArchiveError(`${archive}: refusing entry ${JSON.stringify(name)}: ${bad}. The archive may be malicious; nothing was extracted`);
      }
      const dest = inside(root, name);
      if (type === 'directory') {
        await mkdir(dest, { recursive: true });
        res.dirs++;
        entry.resume();
      } else if (type === 'file' || type === 'contiguous-file') {
        await mkdir(dirname(dest), { recursive: true });
        const out = createWriteStream(dest, { mode: (h.mode ?? 0o644) & 0o755 });
        entry.on('data', (c: unknown) => {
          res.bytes += (c as Buffer).length;
          opts.onProgress?.(res.bytes);
        });
        await pipeline(entry as unknown as Readable, out);
        res.files++;
      } else if (type === 'symlink') {
        await mkdir(dirname(dest), { recursive: true });
        await symlink(h.linkname!, dest);
        guard.add(name);
        res.links++;
        entry.resume();
      } else if (type === 'link') {
        // Hard links name another entry of the archive (relative to the archive root).
        await mkdir(dirname(dest), { recursive: true });
        await link(inside(root, h.linkname!), dest);
        res.links++;
        entry.resume();
      } else {
        res.skipped.push({ name, reason: `unsupported entry type ${type}` });
        entry.resume();
      }
    }
    await feed;
  } catch (err) {
    src.destroy();
    if (err instanceof ArchiveError || opts.signal?.aborted) throw err;
    throw truncatedError(archive, err);
  }
}

async function extractZip(archive: string, root: string, opts: ExtractOptions, res: ExtractResult): Promise<void> {
  const yauzl = (await import('yauzl')).default;
  const zip = await new Promise<import('yauzl').ZipFile>((ok, fail) =>
    // Raw names: yauzl would reject a hostile name by failing the whole zip; we check names ourselves so `skip` mode can count them.
    yauzl.open(archive, { lazyEntries: true, autoClose: true, decodeStrings: false, validateEntrySizes: true }, (err, z) =>
      err ? fail(truncatedError(archive, err)) : ok(z!),
    ),
  );
  const guard = new LinkGuard();
  await new Promise<void>((ok, fail) => {
    const failWith = (err: unknown) => {
      zip.close();
      fail(err instanceof ArchiveError ? err : truncatedError(archive, err));
    };
    zip.on('error', failWith);
    zip.on('end', ok);
    zip.on('entry', (entry: import('yauzl').Entry) => {
      void (async () => {
        opts.signal?.throwIfAborted();
        const name = Buffer.isBuffer(entry.fileName) ? (entry.fileName as Buffer).toString('utf8') : entry.fileName;
        const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
        const isSymlink = (mode & 0o170000) === 0o120000;
        const readAll = async (): Promise<Buffer> => {
          const stream = await new Promise<Readable>((o, f) => zip.openReadStream(entry, (e, s) => (e ? f(e) : o(s!))));
          const chunks: Buffer[] = [];
          for await (const c of stream) chunks.push(c as Buffer);
          return Buffer.concat(chunks);
        };
        const target = isSymlink ? (await readAll()).toString('utf8') : undefined;
        const bad = unsafeReason(name, target) ?? guard.check(name);
        if (bad) {
          if (opts.unsafe !== 'skip')
            throw new ArchiveError(`${archive}: refusing entry ${JSON.stringify(name)}: ${bad}. The archive may be malicious; nothing was extracted`);
          res.skipped.push({ name, reason: bad });
        } else if (name.endsWith('/')) {
          await mkdir(inside(root, name), { recursive: true });
          res.dirs++;
        } else if (isSymlink) {
          const dest = inside(root, name);
          await mkdir(dirname(dest), { recursive: true });
          await symlink(target!, dest);
          guard.add(name);
          res.links++;
        } else {
          const dest = inside(root, name);
          await mkdir(dirname(dest), { recursive: true });
          const stream = await new Promise<Readable>((o, f) => zip.openReadStream(entry, (e, s) => (e ? f(e) : o(s!))));
          stream.on('data', (c: Buffer) => {
            res.bytes += c.length;
            opts.onProgress?.(res.bytes);
          });
          await pipeline(stream, createWriteStream(dest));
          res.files++;
        }
        zip.readEntry();
      })().catch(failWith);
    });
    zip.readEntry();
  });
}

/** Extract `archive` into `dest` (which must not exist yet), atomically via a staging directory. */
export async function extractArchive(archive: string, dest: string, format?: ArchiveFormat, opts: ExtractOptions = {}): Promise<ExtractResult> {
  const fmt = format ?? (await detectArchive(archive));
  if (!fmt) throw new ArchiveError(`${archive} is not a tar, tar.gz or zip archive (unknown leading bytes); set extract = false to keep the file as is`);
  const staging = join(dirname(dest), `.extract-${process.pid}-${Date.now()}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const res: ExtractResult = { files: 0, dirs: 0, links: 0, bytes: 0, skipped: [] };
  try {
    if (fmt === 'zip') await extractZip(archive, resolve(staging), opts, res);
    else await extractTar(archive, resolve(staging), fmt === 'tar.gz', opts, res);
    await rename(staging, dest);
    return res;
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}
