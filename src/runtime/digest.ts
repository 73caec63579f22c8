// Content digests of files and directories, through a stat cache.
//
// Content, not mtimes, decides whether an input changed (a reverted file or a
// fresh checkout must not rerun anything), but reading a 100 GB dataset on
// every run is what makes DVC slow. So each file's digest is remembered with
// its (size, mtime_ns, inode); while those three are unchanged, one stat is
// the whole cost. The content hash is xxh128 from hash-wasm: several times
// faster than sha256 (about 3.5 GB/s against node:crypto's 1.3 GB/s on a
// 2-core x86 machine with SHA instructions), and collisions between
// versions of one file are not an adversarial concern. The outer cache key
// stays sha256.

import { closeSync, openSync, readSync, readdirSync, statSync, type BigIntStats } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { IHasher } from 'hash-wasm';
import { expandGlob, isGlob } from './glob.js';
import { racyAfter, signature, signatureParts, type SignatureParts } from './signature.js';

// Only xxh128's own bundle: hash-wasm's index (every algorithm, ~280 KB) took ~40 ms to load, in the
// orchestrator and in every worker, before a single file was read.
const { createXXHash128 } = createRequire(import.meta.url)('hash-wasm/dist/xxhash128.umd.min.js') as {
  createXXHash128(): Promise<IHasher>;
};

/** A file of `Digester.tree`: its digest, and its stat signature when it was read (as `EntryFile` has it). */
export interface TreeFile extends SignatureParts {
  digest: string;
}

export interface StatRecord {
  /** The file's stat signature when it was digested (size, mtime_ns, inode, ctime_ns: ./signature.ts). */
  sig: string;
  digest: string;
}

/** Path -> (size, mtime_ns, inode, digest). The state DB implements it; tests use a Map. */
export interface StatCache {
  get(path: string): StatRecord | undefined;
  put(path: string, rec: StatRecord): void;
}

export class MemoryStatCache implements StatCache {
  readonly map = new Map<string, StatRecord>();
  get(path: string): StatRecord | undefined {
    return this.map.get(path);
  }
  put(path: string, rec: StatRecord): void {
    this.map.set(path, rec);
  }
}

const CHUNK = 4 << 20;

export { signature };

export class Digester {
  /** Files read (not answered by the stat cache): for tests and benchmarks. */
  reads = 0;
  /**
   * Every file and directory an input digest depended on, with its stat
   * signature: while all of them are unchanged, so are the digests (the no-op
   * fast path, ./noop-snapshot.ts). A directory's mtime changes when entries are
   * added, removed or renamed in it, which is what a glob or a directory
   * input could otherwise miss.
   */
  readonly observed = new Map<string, string>();
  /** A signature taken within the racy window makes the observation unusable. */
  racy = false;
  private observing = false;
  private readonly buf = Buffer.allocUnsafe(CHUNK);

  private constructor(
    private readonly hasher: IHasher,
    private readonly cache?: StatCache,
  ) {}

  static async create(cache?: StatCache): Promise<Digester> {
    return new Digester(await createXXHash128(), cache);
  }

  /** Digest of one file's content, answered from the stat cache when size, mtime and inode are unchanged. */
  file(path: string, st: BigIntStats = statSync(path, { bigint: true })): string {
    const sig = signature(st);
    const hit = this.cache?.get(path);
    const racy = st.mtimeNs > this.racyAfter;
    if (this.observing) {
      this.observed.set(path, sig);
      if (racy) this.racy = true;
    }
    if (hit && hit.sig === sig) return hit.digest;
    const digest = this.readDigest(path);
    if (this.cache && !racy) this.cache.put(path, { sig, digest });
    return digest;
  }

  /** Files modified after this are within the racy window. Refreshed per input, so a long run stays right. */
  private racyAfter = racyAfter();

  private observe(path: string, st: BigIntStats): void {
    this.observed.set(path, signature(st));
    if (st.mtimeNs > this.racyAfter) this.racy = true;
  }

  /** Digest of raw bytes (manifests, small texts). */
  bytes(data: Uint8Array | string): string {
    this.hasher.init();
    this.hasher.update(data);
    return this.hasher.digest('hex');
  }

  private readDigest(path: string): string {
    this.reads++;
    const fd = openSync(path, 'r');
    try {
      this.hasher.init();
      for (;;) {
        const n = readSync(fd, this.buf, 0, CHUNK, null);
        if (n <= 0) break;
        this.hasher.update(n === CHUNK ? this.buf : this.buf.subarray(0, n));
      }
      return this.hasher.digest('hex');
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Every file under `dir` (relative '/'-paths, sorted) with its digest, size, and the stat signature
   * it was read at. `listed`: the path under `dir` of everything in it that is not a directory, from a
   * walk the caller made already (publish's sealTree): the same files without a second walk.
   */
  tree(dir: string, skip?: (rel: string) => boolean, listed?: readonly string[]): Map<string, TreeFile> {
    let files: string[] = [];
    const walk = (rel: string): void => {
      if (this.observing) this.observe(join(dir, rel), statSync(join(dir, rel), { bigint: true }));
      for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
        const child = rel ? `${rel}/${e.name}` : e.name;
        if (skip?.(child)) continue;
        if (e.isDirectory()) walk(child);
        else files.push(child);
      }
    };
    if (listed && !this.observing) files = listed.filter((rel) => !skip || !skippedPath(rel, skip));
    else walk('');
    files.sort();
    const out = new Map<string, TreeFile>();
    const base = dir.endsWith('/') ? dir : `${dir}/`;
    for (const f of files) {
      const p = base + f;
      const st = statSync(p, { bigint: true });
      if (!st.isFile()) continue;
      out.set(f, { digest: this.file(p, st), ...signatureParts(st) });
    }
    return out;
  }

  /** One digest for a directory: its sorted relative paths with their contents' digests. */
  dir(path: string): string {
    const lines: string[] = [];
    for (const [rel, { digest }] of this.tree(path)) lines.push(`${rel}\0${digest}\n`);
    return this.bytes(lines.join(''));
  }

  /**
   * Digests of one declared input (file, directory or glob), keyed by the
   * path as the pipeline wrote it (globs: by each matching file), so reasons
   * can name the file that changed.
   */
  input(projectDir: string, pattern: string): Record<string, string> {
    this.racyAfter = racyAfter();
    this.observing = true;
    try {
      return this.inputUnobserved(projectDir, pattern);
    } finally {
      this.observing = false;
    }
  }

  private inputUnobserved(projectDir: string, pattern: string): Record<string, string> {
    const out: Record<string, string> = {};
    if (isGlob(pattern)) {
      const root = isAbsolute(pattern) ? '/' : projectDir;
      const rel = isAbsolute(pattern) ? pattern.slice(1) : pattern;
      const files = expandGlob(root, rel, (d) => this.observe(join(root, d), statSync(join(root, d), { bigint: true })));
      if (files.length === 0) throw new InputError(pattern, 'matches no file');
      for (const f of files) {
        const st = statSync(join(root, f), { bigint: true });
        if (!st.isFile()) throw new InputError(isAbsolute(pattern) ? `/${f}` : f, NOT_REGULAR);
        out[isAbsolute(pattern) ? `/${f}` : f] = this.file(join(root, f), st);
      }
      return out;
    }
    const abs = isAbsolute(pattern) ? pattern : join(projectDir, pattern);
    let st: BigIntStats;
    try {
      st = statSync(abs, { bigint: true });
    } catch {
      throw new InputError(pattern, `does not exist (looked for ${relative(process.cwd(), abs) || abs})`);
    }
    if (!st.isFile() && !st.isDirectory()) throw new InputError(pattern, NOT_REGULAR);
    if (st.isFile()) this.observe(abs, st);
    out[pattern.split(sep).join('/')] = st.isDirectory() ? `dir:${this.dir(abs)}` : this.file(abs, st);
    return out;
  }
}

/** Reading a FIFO or a device (/dev/zero) as an input would block or never end. */
const NOT_REGULAR = 'is not a regular file or a directory (a FIFO, socket or device cannot be digested)';

export class InputError extends Error {
  constructor(
    readonly input: string,
    readonly problem: string,
  ) {
    super(`input '${input}' ${problem}: create it or fix the stage's inputs`);
    this.name = 'InputError';
  }
}

/** Whether `rel` or a directory above it is one `skip` leaves out (as the walk would not have entered it). */
function skippedPath(rel: string, skip: (rel: string) => boolean): boolean {
  for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) if (skip(rel.slice(0, i))) return true;
  return skip(rel);
}
