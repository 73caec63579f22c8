// Archive extraction (tar, tar.gz, zip) that never writes outside the output
// directory. Extraction goes to a staging directory renamed into place on
// success, so a truncated or refused archive never leaves a half-extracted tree.
//
// What is refused (docs/datasets.md, "Safe extraction"):
// - names that are absolute or contain `..`, or a NUL;
// - an entry whose own path is, or passes through, a symbolic link that exists
//   on disk: checked with lstat against the real staging root, so no chain of
//   links, each harmless on its own, can redirect a later write;
// - symbolic links whose target leaves the tree, lexically when made and by
//   realpath once the archive is done (a chain can only be judged at the end);
// - hard links whose target is not a regular file already extracted;
// - more than a cap of bytes or entries (decompression bombs).
// Regular files are created with O_EXCL | O_NOFOLLOW after removing an earlier
// entry of the same name, so a write never follows a link or shares an inode.

import { constants, createReadStream, createWriteStream, open as openFd } from 'node:fs';
import { lstat, mkdir, open, readlink, realpath, rename, rm, stat, symlink, link, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, posix, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

export type ArchiveFormat = 'tar' | 'tar.gz' | 'zip';

export class ArchiveError extends Error {
  override name = 'ArchiveError';
}

/** Caps on what one extraction may write. */
export interface ExtractLimits {
  /** Total bytes of regular files. */
  maxBytes: number;
  /** Entries of any type (files, directories, links). */
  maxEntries: number;
  /** Extracted bytes per byte of archive, counted only past RATIO_FLOOR bytes. */
  maxRatio: number;
}

export const DEFAULT_LIMITS: ExtractLimits = { maxBytes: 64 * 2 ** 30, maxEntries: 1_000_000, maxRatio: 200 };
/** The ratio cap never stops an extraction below this many bytes (small archives of zeros are legitimate). */
export const RATIO_FLOOR = 64 * 2 ** 20;

export interface ExtractOptions {
  /** `fail` (default): an escaping entry aborts the extraction; `skip`: it is left out and counted. */
  unsafe?: 'fail' | 'skip';
  limits?: Partial<ExtractLimits>;
  /** How the caller spells each limit, for the error that says which one to raise. */
  limitNames?: Partial<Record<keyof ExtractLimits, string>>;
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

/** Why an entry name or link target is unsafe, or undefined when it stays inside (lexically). */
export function unsafeReason(name: string, linkTarget?: string): string | undefined {
  const n = name.replace(/\\/g, '/');
  if (n.startsWith('/') || /^[A-Za-z]:/.test(n) || isAbsolute(n)) return 'absolute path';
  if (n.split('/').includes('..')) return "path contains '..'";
  if (n.includes('\0')) return 'NUL in name';
  if (linkTarget !== undefined) {
    const t = linkTarget.replace(/\\/g, '/');
    if (t.includes('\0')) return 'NUL in link target';
    if (t.startsWith('/') || /^[A-Za-z]:/.test(t)) return `link to absolute path ${linkTarget}`;
    const joined = posix.normalize(posix.join(posix.dirname(n), t));
    if (joined === '..' || joined.startsWith('../')) return `link points outside the archive (${linkTarget})`;
  }
  return undefined;
}

/**
 * The staging tree as it is on disk. Every path an entry touches is checked
 * component by component with lstat under the real root; directories found
 * real are remembered (they cannot become links later: an entry whose path
 * exists is never replaced by a link).
 */
class Tree {
  private readonly realDirs = new Set<string>();
  readonly symlinks: string[] = [];
  bytes = 0;
  entries = 0;
  private readonly byteCap: number;

  constructor(
    readonly root: string,
    readonly archive: string,
    archiveBytes: number,
    private readonly limits: ExtractLimits,
    private readonly names: Partial<Record<keyof ExtractLimits, string>>,
  ) {
    this.realDirs.add(root);
    this.byteCap = Math.min(limits.maxBytes, Math.max(RATIO_FLOOR, limits.maxRatio * archiveBytes));
  }

  /** Absolute path of entry `name`, or why it may not be written: it is, or passes through, a link. */
  async check(name: string, kind: 'dir' | 'file' | 'link'): Promise<{ path: string } | { bad: string }> {
    const parts = posix
      .normalize(name.replace(/\\/g, '/'))
      .split('/')
      .filter((p) => p && p !== '.');
    if (parts.length === 0) return kind === 'dir' ? { path: this.root } : { bad: 'entry names the output directory itself' };
    let cur = this.root;
    for (let i = 0; i < parts.length; i++) {
      const next = join(cur, parts[i]!);
      const last = i === parts.length - 1;
      if (this.realDirs.has(next)) {
        if (last && kind !== 'dir') return { bad: `a ${kind} would replace the directory ${parts.join('/')}` };
      } else {
        let st;
        try {
          st = await lstat(next);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          st = undefined;
        }
        if (st?.isSymbolicLink()) {
          const rel = parts.slice(0, i + 1).join('/');
          return { bad: last ? `it would replace the symbolic link ${rel}` : `path goes through the symbolic link ${rel}` };
        }
        if (st && !last && !st.isDirectory()) return { bad: `path goes through ${parts.slice(0, i + 1).join('/')}, which is not a directory` };
        if (st && last && kind === 'link') return { bad: `a link would replace the existing entry ${parts.join('/')}` };
        if (st && last && kind === 'dir' && !st.isDirectory()) return { bad: `a directory would replace the file ${parts.join('/')}` };
        if (st && last && kind === 'file' && st.isDirectory()) return { bad: `a file would replace the directory ${parts.join('/')}` };
        if (st?.isDirectory()) this.realDirs.add(next);
      }
      cur = next;
    }
    return { path: cur };
  }

  /** Make the directories of `path` (all under the root, checked by check()). */
  async mkdirs(dir: string): Promise<void> {
    if (this.realDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    for (let d = dir; d !== this.root && d.startsWith(this.root + sep); d = dirname(d)) this.realDirs.add(d);
  }

  countEntry(name: string): void {
    if (++this.entries > this.limits.maxEntries) {
      throw this.limitError(`more than ${this.limits.maxEntries} entries (at ${JSON.stringify(name)})`, 'maxEntries', 'entries');
    }
  }

  /** Count `n` more bytes (an entry's declared size, before any of it is written). */
  countBytes(n: number, name: string): void {
    this.bytes += n;
    if (this.bytes > this.byteCap) {
      const which = this.byteCap === this.limits.maxBytes ? 'maxBytes' : 'maxRatio';
      const what =
        which === 'maxBytes' ? `more than ${this.limits.maxBytes} bytes` : `more than ${this.limits.maxRatio} times its own size (${this.byteCap} bytes)`;
      throw this.limitError(`${what} (at ${JSON.stringify(name)})`, which, which === 'maxBytes' ? 'bytes' : 'bytes per archive byte');
    }
  }

  private limitError(what: string, which: keyof ExtractLimits, unit: string): ArchiveError {
    const param = this.names[which] ?? which;
    return new ArchiveError(
      `${this.archive} would extract to ${what}; stopped, nothing was kept. A decompression bomb looks like this; if the archive is trusted, raise \`${param}\` (${unit})`,
    );
  }

  /** A regular file at `dest` (replacing a regular file of the same name, never following a link). */
  async createFile(dest: string, mode: number): Promise<NodeJS.WritableStream> {
    await this.mkdirs(dirname(dest));
    try {
      await unlink(dest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    // A raw fd (not a FileHandle): the stream owns and closes it.
    const fd = await new Promise<number>((ok, fail) =>
      openFd(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode, (err, fd) => (err ? fail(err) : ok(fd))),
    );
    return createWriteStream(dest, { fd });
  }

  /** After the last entry: every symbolic link, followed to the end of its chain, must land inside the root (or nowhere). */
  async linksOutside(): Promise<{ name: string; reason: string }[]> {
    const out: { name: string; reason: string }[] = [];
    for (const p of this.symlinks) {
      let real: string;
      try {
        real = await realpath(p);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue; // dangling: leads nowhere
        if (code === 'ELOOP') {
          out.push({ name: relative(this.root, p), reason: 'symbolic link loop' });
          continue;
        }
        throw err;
      }
      if (real !== this.root && !real.startsWith(this.root + sep)) {
        out.push({ name: relative(this.root, p), reason: `symbolic link resolves outside the archive (${await readlink(p)}, through other links)` });
      }
    }
    return out;
  }
}

function truncatedError(archive: string, err: unknown): ArchiveError {
  const msg = (err as Error).message ?? String(err);
  if (/unexpected end|premature|truncated|incorrect header|invalid (?!relative)|zlib|end of central directory|signature/i.test(msg)) {
    return new ArchiveError(`${archive} is truncated or corrupt (${msg}); download it again`);
  }
  return new ArchiveError(`${archive}: extraction failed: ${msg}`);
}

/** Refuse (throw) or skip (record) an unsafe entry. */
function refuse(archive: string, name: string, reason: string, opts: ExtractOptions, res: ExtractResult): void {
  if (opts.unsafe !== 'skip')
    throw new ArchiveError(`${archive}: refusing entry ${JSON.stringify(name)}: ${reason}. The archive may be malicious; nothing was extracted`);
  res.skipped.push({ name, reason });
}

/**
 * Write one file entry to `dest`. Its size was counted against the cap from the header before a
 * byte is written; the readers hold the stream to that size (tar-stream by framing, yauzl by
 * validateEntrySizes), so a header cannot understate what follows.
 */
async function writeEntry(tree: Tree, dest: string, body: Readable, mode: number, opts: ExtractOptions, res: ExtractResult): Promise<void> {
  const out = await tree.createFile(dest, mode);
  body.on('data', (c: Buffer) => {
    res.bytes += c.length;
    opts.onProgress?.(res.bytes);
  });
  await pipeline(body, out);
  res.files++;
}

async function extractTar(archive: string, tree: Tree, gz: boolean, opts: ExtractOptions, res: ExtractResult): Promise<void> {
  const tar = await import('tar-stream');
  const ex = tar.extract();
  const src = createReadStream(archive);
  const feed = gz ? pipeline(src, createGunzip(), ex) : pipeline(src, ex);
  feed.catch(() => {});
  try {
    for await (const entry of ex) {
      opts.signal?.throwIfAborted();
      const h = entry.header;
      const name = h.name;
      const type = h.type ?? 'file';
      tree.countEntry(name);
      // Hard link targets are archive-root relative; symlink targets are relative to the link's directory.
      let bad =
        type === 'link'
          ? (unsafeReason(name) ?? (unsafeReason(h.linkname ?? '') ? `hard link points outside the archive (${h.linkname})` : undefined))
          : unsafeReason(name, type === 'symlink' ? (h.linkname ?? '') : undefined);
      const kind = type === 'directory' ? 'dir' : type === 'symlink' || type === 'link' ? 'link' : 'file';
      const at = bad ? undefined : await tree.check(name, kind);
      if (at && 'bad' in at) bad = at.bad;
      let target: string | undefined;
      if (!bad && type === 'link') {
        const t = await tree.check(h.linkname ?? '', 'file');
        if ('bad' in t) bad = `hard link target ${h.linkname}: ${t.bad}`;
        else {
          const st = await lstat(t.path).catch(() => undefined);
          if (!st?.isFile()) bad = `hard link target ${h.linkname} is not a regular file extracted before it`;
          else target = t.path;
        }
      }
      if (bad || !at || 'bad' in at) {
        entry.resume();
        refuse(archive, name, bad!, opts, res);
        continue;
      }
      const dest = at.path;
      if (type === 'directory') {
        await tree.mkdirs(dest);
        res.dirs++;
        entry.resume();
      } else if (type === 'file' || type === 'contiguous-file') {
        tree.countBytes(h.size ?? 0, name);
        await writeEntry(tree, dest, entry as unknown as Readable, ((h.mode ?? 0o644) & 0o755) | 0o600, opts, res);
      } else if (type === 'symlink') {
        await tree.mkdirs(dirname(dest));
        await symlink(h.linkname!, dest);
        tree.symlinks.push(dest);
        res.links++;
        entry.resume();
      } else if (type === 'link') {
        await tree.mkdirs(dirname(dest));
        await link(target!, dest);
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

async function extractZip(archive: string, tree: Tree, opts: ExtractOptions, res: ExtractResult): Promise<void> {
  const yauzl = (await import('yauzl')).default;
  const zip = await new Promise<import('yauzl').ZipFile>((ok, fail) =>
    // Raw names: yauzl would reject a hostile name by failing the whole zip; we check names ourselves so `skip` mode can count them.
    yauzl.open(archive, { lazyEntries: true, autoClose: true, decodeStrings: false, validateEntrySizes: true }, (err, z) =>
      err ? fail(truncatedError(archive, err)) : ok(z!),
    ),
  );
  // An error listener from the start: yauzl's size check can fail while we are still creating the output file; pipeline() sees the stream errored.
  const openStream = (entry: import('yauzl').Entry) =>
    new Promise<Readable>((o, f) => zip.openReadStream(entry, (e, s) => (e ? f(e) : o(s!.on('error', () => {})))));
  await new Promise<void>((ok, fail) => {
    const failWith = (err: unknown) => {
      zip.close();
      fail(err instanceof ArchiveError || opts.signal?.aborted ? err : truncatedError(archive, err));
    };
    zip.on('error', failWith);
    zip.on('end', ok);
    zip.on('entry', (entry: import('yauzl').Entry) => {
      void (async () => {
        opts.signal?.throwIfAborted();
        const name = Buffer.isBuffer(entry.fileName) ? (entry.fileName as Buffer).toString('utf8') : entry.fileName;
        const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
        const isSymlink = (mode & 0o170000) === 0o120000;
        const isDir = !isSymlink && name.endsWith('/');
        tree.countEntry(name);
        let target: string | undefined;
        if (isSymlink) {
          // A link's target is its body: small, but read it with a bound all the same.
          if (entry.uncompressedSize > 4096)
            throw new ArchiveError(`${archive}: symbolic link ${JSON.stringify(name)} has a ${entry.uncompressedSize}-byte target`);
          const chunks: Buffer[] = [];
          for await (const c of await openStream(entry)) chunks.push(c as Buffer);
          target = Buffer.concat(chunks).toString('utf8');
        }
        let bad = unsafeReason(name, target);
        const at = bad ? undefined : await tree.check(name, isDir ? 'dir' : isSymlink ? 'link' : 'file');
        if (at && 'bad' in at) bad = at.bad;
        if (bad || !at || 'bad' in at) refuse(archive, name, bad!, opts, res);
        else if (isDir) {
          await tree.mkdirs(at.path);
          res.dirs++;
        } else if (isSymlink) {
          await tree.mkdirs(dirname(at.path));
          await symlink(target!, at.path);
          tree.symlinks.push(at.path);
          res.links++;
        } else {
          tree.countBytes(entry.uncompressedSize, name);
          await writeEntry(tree, at.path, await openStream(entry), ((mode & 0o777 ? mode : 0o644) & 0o755) | 0o600, opts, res);
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
    // The real root: the staging path itself may run through links (a /tmp that is one), and every check compares real paths.
    const tree = new Tree(await realpath(staging), archive, (await stat(archive)).size, { ...DEFAULT_LIMITS, ...opts.limits }, opts.limitNames ?? {});
    if (fmt === 'zip') await extractZip(archive, tree, opts, res);
    else await extractTar(archive, tree, fmt === 'tar.gz', opts, res);
    for (const out of await tree.linksOutside()) {
      refuse(archive, out.name, out.reason, opts, res);
      await unlink(join(tree.root, out.name));
      res.links--;
    }
    await rename(staging, dest);
    return res;
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}
