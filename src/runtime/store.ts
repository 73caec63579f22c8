// The store: one directory per cache key, published atomically.
//
// A stage writes only into a temporary directory under the store's tmp dir.
// On success the manifest is written, every file and directory is fsynced, and
// the directory is renamed to <storeDir>/<key> in one step: whatever kills the
// process, an entry is either absent or complete. An entry is trusted only
// after checking it against its manifest (cheaply, by stat signature, when the
// state DB remembers it), so a corrupted one is rerun, never used.

import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { Value } from '../compiler/plan.js';
import { isCacheKey, type CacheKey } from './cache-key.js';
import type { Digester } from './digest.js';
import { inParentDir, realDisk, type Disk } from './disk.js';
import type { FingerprintParts } from './fingerprint.js';
import type { EntryFile } from './state.js';
import { isStale, pidAlive, readLock, thisHost } from './locks.js';
import { SetupError } from './errors.js';
import { removeTree, sealDirs, sealTree, unsealTree, type TreeWalk } from './readonly.js';
import { signatureParts, type SignatureParts } from './signature.js';

/** Inside each entry: smke's own files, never outputs. */
export const META_DIR = '_smke';
export const MANIFEST = `${META_DIR}/manifest.json`;

export interface Manifest {
  format: number;
  key: string;
  instance: string;
  stage: string;
  kind: string;
  kindVersion: number;
  /** Params as written (references symbolic). */
  params: Record<string, Value>;
  fingerprint: FingerprintParts;
  upstream: Record<string, string>;
  /** Relative path -> size and xxh128 digest, for every output file. */
  outputs: Record<string, { size: number; digest: string }>;
  /** Final value of each metric (the last one reported). */
  metrics: Record<string, number>;
  timings: { started: string; finished: string; seconds: number };
  attempt: number;
  smkeVersion: string;
  host: string;
}

export class PublishError extends Error {}

/** Every file and directory under `dir`, and `dir` itself. */
function treePaths(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) treePaths(p, out);
    else if (e.isFile()) out.push(p);
  }
  out.push(dir);
  return out;
}

/** Make every file and directory under `dir` durable, all at once (see Disk.fsync); done before the rename that publishes them. */
async function fsyncTree(disk: Disk, dir: string): Promise<void> {
  await Promise.all(treePaths(dir).map(async (p) => disk.fsync(p)));
}

/**
 * Make published entries, and their names in the store, durable: what publishes with `deferSync` left
 * to the orchestrator, when syncing the whole file system failed. Every file and directory of each
 * entry, then each store directory once (not once per entry). Entries gone meanwhile (gc) are skipped.
 */
export async function syncEntries(entryDirs: string[], disk: Disk = realDisk): Promise<void> {
  const present = entryDirs.filter((d) => existsSync(d));
  for (const dir of present) await fsyncTree(disk, dir);
  for (const storeDir of new Set(present.map((d) => dirname(d)))) await disk.fsync(storeDir);
}

export type PublishResult = 'published' | 'exists';

/** What `publish` did; for an entry it published, the files `checkEntry` can take as `known`. */
export interface Published {
  how: PublishResult;
  /**
   * The manifest and every output, with their digests and their stat signatures as digested (after
   * their write bits were removed): while one stat of each finds them unchanged, nothing was written.
   */
  files?: EntryFile[];
}

/**
 * Group commit of the store directory. The fsync after an entry's rename makes
 * the rename survive a power cut; the entry's wholeness never depends on it
 * (every file and directory of it was synced before the rename, so a rename
 * that survives points at whole contents, and one that is lost leaves the entry
 * absent, which the next run sees and reruns; a downstream entry that survived
 * without its upstream was keyed on the upstream's digests, so it is either
 * right for the rerun upstream or not looked up). So a publish does not wait for
 * it: one fsync runs per store directory at a time, and the entries renamed
 * while it runs share the next one. The worker awaits `storeSynced()` before it
 * exits. A SIGKILL does not undo a rename either way: only a crash of the
 * machine can lose one.
 */
const dirSyncs = new Map<string, { running: Promise<void>; again: boolean }>();

function syncDirSoon(disk: Disk, dir: string): void {
  const pending = dirSyncs.get(dir);
  if (pending) {
    pending.again = true;
    return;
  }
  const state = { running: Promise.resolve(), again: false };
  const loop = async (): Promise<void> => {
    do {
      state.again = false;
      // The entry is in place and whole; a failed sync of the directory only means its rename may not survive a power cut.
      await Promise.resolve(disk.fsync(dir)).catch(() => undefined);
    } while (state.again);
    dirSyncs.delete(dir);
  };
  dirSyncs.set(dir, state);
  state.running = loop();
}

/** Resolves once every store directory that had entries renamed into it is synced. */
export async function storeSynced(): Promise<void> {
  while (dirSyncs.size) await Promise.all([...dirSyncs.values()].map((s) => s.running));
}

/**
 * Publish `tmpDir` as `<storeDir>/<key>`. The manifest (without `outputs`,
 * which are digested here) is written last so a manifest always describes
 * complete outputs. If another run published the same key meanwhile, its
 * entry wins and ours is discarded (same key, same inputs: same result).
 */
export async function publish(opts: {
  tmpDir: string;
  entryDir: string;
  manifest: Omit<Manifest, 'outputs'>;
  logPath?: string;
  digester: Digester;
  disk?: Disk;
  /**
   * Rename without syncing first: the orchestrator syncs the store's file
   * system when its run ends, and until then its records say the entry may
   * not survive a crash of the machine (./durability.ts).
   */
  deferSync?: boolean;
}): Promise<Published> {
  const disk = opts.disk ?? realDisk;
  const files: EntryFile[] = [];
  // What the files pass finds: the files to digest, and the directories, sealed after the rename (a
  // directory moved to a new parent must be writable).
  const walked: TreeWalk = { dirs: [], others: [] };
  try {
    mkdirSync(join(opts.tmpDir, META_DIR), { recursive: true });
    if (opts.logPath) linkLog(disk, opts.logPath, join(opts.tmpDir, META_DIR, 'log'));
    // The files are made read-only before they are digested: any write after that changes their
    // ctime, so the stat signatures taken with the digests vouch for the content they describe.
    sealTree(opts.tmpDir, 'files', walked);
    const outputs: Manifest['outputs'] = {};
    for (const [rel, f] of opts.digester.tree(opts.tmpDir, (r) => r === META_DIR, walked.others)) {
      outputs[rel] = { size: f.size, digest: f.digest };
      files.push({ path: rel, ...f });
    }
    const manifest: Manifest = { ...opts.manifest, outputs };
    const manifestPath = join(opts.tmpDir, MANIFEST);
    disk.writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    sealTree(manifestPath);
    const m = statSignature(manifestPath);
    if (!m) throw new Error(`${MANIFEST} vanished while it was written`);
    files.unshift({ path: MANIFEST, ...m, digest: '' });
    if (!opts.deferSync) await fsyncTree(disk, opts.tmpDir);
  } catch (e) {
    removeTree(opts.tmpDir);
    const err = e as NodeJS.ErrnoException;
    const hint = err.code === 'ENOSPC' ? ': the disk is full — free space (smke gc) and rerun' : '';
    throw new PublishError(`publishing the outputs failed (${err.code ?? err.message})${hint}; nothing was stored`);
  }
  try {
    inParentDir(opts.entryDir, () => disk.rename(opts.tmpDir, opts.entryDir));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    removeTree(opts.tmpDir);
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return { how: 'exists' };
    throw new PublishError(`publishing the outputs failed (${code}); nothing was stored`);
  }
  // Read-only once published: a stage writing into another entry fails
  // instead of changing a result its consumers were keyed on (./readonly.ts).
  sealDirs(opts.entryDir, walked);
  if (!opts.deferSync) syncDirSoon(disk, dirname(opts.entryDir));
  return { how: 'published', files };
}

/**
 * The job's log as the entry's `_smke/log`: a hard link (a copy across file systems), sealed here: a
 * linked log has two names, which sealTree leaves alone (a project file a stage linked into its output
 * is not ours to lock; the finished job's log is, under both names). No log (a job that wrote none
 * and was given no file): nothing.
 */
function linkLog(disk: Disk, logPath: string, to: string): void {
  try {
    disk.linkOrCopy(logPath, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(logPath)) return;
    throw e;
  }
  chmodSync(to, statSync(to).mode & 0o555);
}

/**
 * Publish a complete entry that was made elsewhere (pulled from the remote
 * cache and already checked against its manifest): made durable, then
 * renamed into place in one step, like `publish`. If the key was published
 * meanwhile, that entry wins.
 */
export async function adoptEntry(tmpDir: string, entryDir: string, disk: Disk = realDisk): Promise<PublishResult> {
  try {
    await fsyncTree(disk, tmpDir);
    inParentDir(entryDir, () => disk.rename(tmpDir, entryDir));
  } catch (e) {
    removeTree(tmpDir);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return 'exists';
    throw new PublishError(
      `storing the pulled entry failed (${code ?? (e as Error).message})${code === 'ENOSPC' ? ': the disk is full — free space (smke gc) and rerun' : ''}; nothing was stored`,
    );
  }
  sealTree(entryDir);
  // Rare (a pull from the remote cache), and done by the orchestrator: it waits for its own sync.
  await disk.fsync(dirname(entryDir));
  return 'published';
}

export function readManifest(entryDir: string): Manifest | undefined {
  try {
    // Reading a FIFO put in its place would block forever.
    if (!statSync(join(entryDir, MANIFEST)).isFile()) return undefined;
    return JSON.parse(readFileSync(join(entryDir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

export type EntryCheck = { state: 'ok'; files: EntryFile[]; verified: boolean } | { state: 'missing' } | { state: 'corrupt'; problem: string };

function statSignature(path: string): SignatureParts | undefined {
  try {
    const st = statSync(path, { bigint: true });
    // A FIFO or device in place of an output would block or never end the digest: it counts as missing.
    if (!st.isFile()) return undefined;
    return signatureParts(st);
  } catch {
    return undefined;
  }
}

/**
 * Whether `<storeDir>/<key>` is a complete, intact entry. With `known` (the
 * stat signatures recorded when this project last verified it) an unchanged
 * entry costs one stat per file; otherwise, or when anything differs, every
 * output is re-digested against the manifest.
 */
export function checkEntry(entryDir: string, key: CacheKey, digester: Digester, known?: EntryFile[]): EntryCheck {
  if (known) {
    let same = true;
    for (const f of known) {
      const s = statSignature(join(entryDir, f.path));
      if (!s || s.size !== f.size || s.mtimeNs !== f.mtimeNs || s.ino !== f.ino || s.ctimeNs !== f.ctimeNs) {
        same = false;
        break;
      }
    }
    if (same) return { state: 'ok', files: known, verified: false };
  }
  if (!existsSync(entryDir)) return { state: 'missing' };
  const manifest = readManifest(entryDir);
  if (!manifest) return { state: 'corrupt', problem: `${MANIFEST} is missing or unreadable` };
  if (manifest.key !== key) return { state: 'corrupt', problem: `its manifest is for key ${String(manifest.key).slice(0, 12)}` };
  const files: EntryFile[] = [];
  const m = statSignature(join(entryDir, MANIFEST))!;
  files.push({ path: MANIFEST, ...m, digest: '' });
  for (const [rel, want] of Object.entries(manifest.outputs)) {
    const p = join(entryDir, rel);
    const s = statSignature(p);
    if (!s) return { state: 'corrupt', problem: `output ${rel} is missing or not a regular file` };
    const digest = digester.file(p);
    if (digest !== want.digest) return { state: 'corrupt', problem: `output ${rel} does not match its digest` };
    files.push({ path: rel, ...s, digest });
  }
  return { state: 'ok', files, verified: true };
}

/** Move a corrupted entry out of the store (atomically, so no reader sees it half-deleted), then delete it. */
export function quarantine(entryDir: string, tmpDir: string): void {
  mkdirSync(tmpDir, { recursive: true });
  const aside = join(tmpDir, `corrupt-${Date.now()}-${process.pid}-${relative(dirname(entryDir), entryDir)}`);
  unsealTree(entryDir);
  try {
    renameSync(entryDir, aside);
  } catch {
    return;
  }
  removeTree(aside);
}

/** In-flight directory names carry host and pid so a run can clean up after dead runs without touching live ones. */
export function tmpName(key: CacheKey, seq: number): string {
  return `${key}.${thisHost()}.${process.pid}.${seq}`;
}

/**
 * Remove in-flight directories (and job files) left by processes that are
 * gone. A directory named after a dead orchestrator may still be in use by
 * its worker, which outlives it: the instance lock (held by the worker) says so.
 */
export function cleanTmp(tmpDir: string, locksDir?: string): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(tmpDir);
  } catch {
    return 0;
  }
  const host = thisHost();
  for (const name of names) {
    const m = /^[0-9a-f]{64}\.(.+)\.(\d+)\.\d+(?:\.job\.json)?$/.exec(name) ?? /^corrupt-\d+-(\d+)-/.exec(name);
    if (!m) continue;
    const [h, pid] = m.length === 3 ? [m[1]!, Number(m[2])] : [host, Number(m[1])];
    if (h !== host || pidAlive(pid)) continue;
    if (locksDir && !name.startsWith('corrupt-')) {
      const holder = readLock(join(locksDir, name.slice(0, 64)));
      if (holder && !isStale(holder)) continue;
    }
    removeTree(join(tmpDir, name));
    removed++;
  }
  return removed;
}

/** Keys of every entry in the store. */
export function listEntries(storeDir: string): CacheKey[] {
  try {
    return readdirSync(storeDir).filter(isCacheKey);
  } catch {
    return [];
  }
}

/** Where `results/` links a stage's (or a matrix cell's) entry. */
function resultLinkPath(resultsDir: string, stage: string, cell: string | undefined): string {
  return cell === undefined ? join(resultsDir, stage) : join(resultsDir, stage, cell);
}

/**
 * Throws when something that is not smke's stands where `linkResult` would
 * link: a file, or a directory with files. Only links, and directories of
 * links (a matrix stage that became plain), give way.
 */
export function checkLinkable(resultsDir: string, stage: string, cell: string | undefined): void {
  const smkeMade = (p: string): boolean => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return true;
    }
    return st.isSymbolicLink() || (st.isDirectory() && readdirSync(p).every((n) => lstatSync(join(p, n)).isSymbolicLink()));
  };
  const linkPath = resultLinkPath(resultsDir, stage, cell);
  for (const p of cell === undefined ? [linkPath] : [join(resultsDir, stage), linkPath]) {
    if (!smkeMade(p))
      throw new SetupError(`${p} is not a link smke made (a file or a directory with files): move it away so that smke can link ${stage}'s outputs there`);
  }
}

/**
 * Point `results/<stage>` (plain stages) or `results/<stage>/<cell>` (matrix
 * cells, `glue[cola]` -> results/glue/cola) at an entry. The link is replaced
 * by a rename, so readers never find it missing.
 */
export function linkResult(resultsDir: string, stage: string, cell: string | undefined, entryDir: string): void {
  const linkPath = resultLinkPath(resultsDir, stage, cell);
  const target = relative(dirname(linkPath), entryDir);
  let absent = false;
  try {
    if (readlinkSync(linkPath) === target) return;
  } catch (e) {
    // Nothing at all at a plain stage's link (its first result): nothing to check or to clear away.
    // (A matrix cell's path goes through results/<stage>, which may still be an old plain link.)
    absent = cell === undefined && (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
  if (!absent) {
    checkLinkable(resultsDir, stage, cell);
    if (cell !== undefined) {
      // A stage that was plain and became a matrix: its old link must give way to a directory.
      try {
        if (lstatSync(join(resultsDir, stage)).isSymbolicLink()) unlinkSync(join(resultsDir, stage));
      } catch {
        /* absent */
      }
    } else {
      try {
        if (lstatSync(linkPath).isDirectory()) rmSync(linkPath, { recursive: true });
      } catch {
        /* absent */
      }
    }
  }
  const tmp = `${linkPath}.${process.pid}.tmp`;
  // The parent directory, and a leftover of a killed run that had our pid, are dealt with when the symlink says so.
  inParentDir(tmp, () => {
    try {
      symlinkSync(target, tmp);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      unlinkSync(tmp);
      symlinkSync(target, tmp);
    }
  });
  renameSync(tmp, linkPath);
}
