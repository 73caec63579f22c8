import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseCacheKey } from '../../src/runtime/cache-key.js';
import { Digester } from '../../src/runtime/digest.js';
import { realDisk, type Disk } from '../../src/runtime/disk.js';
import { STORE_FORMAT } from '../../src/runtime/cache-key.js';
import { checkEntry, cleanTmp, linkResult, MANIFEST, publish, PublishError, readManifest, storeSynced, syncEntries } from '../../src/runtime/store.js';
import { tempProject } from './helpers.js';

let proj: { dir: string; cleanup: () => void };
let d: Digester;
beforeEach(async () => {
  proj = tempProject();
  d = await Digester.create();
});
afterEach(() => proj.cleanup());

const KEY = parseCacheKey('a'.repeat(64), 'test');
const manifest = {
  format: 1,
  key: KEY,
  instance: 'a',
  stage: 'a',
  kind: 'exec',
  kindVersion: 1,
  params: {},
  fingerprint: { kind: 'exec', kindVersion: 1, params: {}, inputs: {}, env: {}, storeFormat: STORE_FORMAT },
  upstream: {},
  metrics: { acc: 0.5 },
  timings: { started: '', finished: '', seconds: 0 },
  attempt: 1,
  smkeVersion: '0',
  host: 'h',
};

function staged(name = 'x', key = KEY): { tmp: string; entry: string } {
  const tmp = join(proj.dir, 'tmp', name);
  mkdirSync(join(tmp, 'sub'), { recursive: true });
  writeFileSync(join(tmp, 'model.bin'), 'weights');
  writeFileSync(join(tmp, 'sub/m.json'), '{}');
  return { tmp, entry: join(proj.dir, 'store', key) };
}

describe('store', () => {
  it('publishes atomically with a manifest of every output', async () => {
    const { tmp, entry } = staged();
    expect(await publish({ tmpDir: tmp, entryDir: entry, manifest, digester: d })).toMatchObject({ how: 'published' });
    expect(existsSync(tmp)).toBe(false);
    const m = readManifest(entry)!;
    expect(Object.keys(m.outputs)).toEqual(['model.bin', 'sub/m.json']);
    expect(m.metrics).toEqual({ acc: 0.5 });
    expect(checkEntry(entry, KEY, d)).toMatchObject({ state: 'ok', verified: true });
  });

  it('digests what a walk of the output finds, from the walk that seals it: links to files, deep files, and nothing of _smke/', async () => {
    const { tmp, entry } = staged();
    mkdirSync(join(tmp, 'sub/deeper/deepest'), { recursive: true });
    writeFileSync(join(tmp, 'sub/deeper/deepest/z.txt'), 'z');
    symlinkSync('model.bin', join(tmp, 'alias.bin'));
    symlinkSync('sub', join(tmp, 'alias-dir'));
    mkdirSync(join(tmp, '_smke'));
    writeFileSync(join(tmp, '_smke/metrics.jsonl'), '{}\n');
    const { files } = await publish({ tmpDir: tmp, entryDir: entry, manifest, digester: d });
    expect(Object.keys(readManifest(entry)!.outputs)).toEqual(['alias.bin', 'model.bin', 'sub/deeper/deepest/z.txt', 'sub/m.json']);
    // The same files, digests and signatures as a walk of the published entry finds.
    expect(files).toEqual((checkEntry(entry, KEY, d) as { files: unknown }).files);
    expect(statSync(join(entry, 'sub/deeper/deepest')).mode & 0o222).toBe(0);
  });

  it('reports the files as digested, read-only since before the digest: a check by one stat each, which a later write fails', async () => {
    const { tmp, entry } = staged();
    const { files } = await publish({ tmpDir: tmp, entryDir: entry, manifest, digester: d });
    // The same list a full check of the entry makes: paths, digests and stat signatures alike.
    const full = checkEntry(entry, KEY, d);
    expect(full).toMatchObject({ state: 'ok', verified: true });
    expect(files).toEqual((full as { files: unknown }).files);
    const reads = d.reads;
    expect(checkEntry(entry, KEY, d, files)).toEqual({ state: 'ok', files, verified: false });
    expect(d.reads).toBe(reads); // nothing read again
    // Every file was read-only when digested, the directories are now too.
    for (const p of ['model.bin', 'sub/m.json', MANIFEST, '_smke', 'sub', '.']) expect(statSync(join(entry, p)).mode & 0o222, p).toBe(0);
    // A write after the digest (root ignores the modes; so would an open descriptor): caught by the stat, then by the digest.
    writeFileSync(join(entry, 'model.bin'), 'WEIGHTS');
    expect(checkEntry(entry, KEY, d, files)).toEqual({ state: 'corrupt', problem: 'output model.bin does not match its digest' });
  });

  it('keeps the job’s log in the entry: linked where it can be, copied where it cannot (another file system)', async () => {
    const logPath = join(proj.dir, 'job.log');
    writeFileSync(logPath, 'out\n');
    const { tmp, entry } = staged();
    await publish({ tmpDir: tmp, entryDir: entry, manifest, logPath, digester: d });
    expect(readFileSync(join(entry, '_smke/log'), 'utf8')).toBe('out\n');
    expect(statSync(join(entry, '_smke/log')).ino).toBe(statSync(logPath).ino);
    // A log on another file system (tmpfs): no hard link across file systems, so a copy.
    const shm = mkdtempSync('/dev/shm/smke-log-');
    try {
      const farLog = join(shm, 'job.log');
      writeFileSync(farLog, 'far\n');
      expect(statSync(shm).dev).not.toBe(statSync(proj.dir).dev);
      const key = parseCacheKey('b'.repeat(64), 'test');
      const other = staged('y', key);
      await publish({ tmpDir: other.tmp, entryDir: other.entry, manifest: { ...manifest, key }, logPath: farLog, digester: d });
      expect(readFileSync(join(other.entry, '_smke/log'), 'utf8')).toBe('far\n');
      expect(statSync(join(other.entry, '_smke/log')).ino).not.toBe(statSync(farLog).ino);
    } finally {
      rmSync(shm, { recursive: true, force: true });
    }
  });

  it('publishes without a log when the job left none, and makes the store directory with the first entry', async () => {
    const { tmp, entry } = staged();
    expect(existsSync(join(proj.dir, 'store'))).toBe(false);
    const published = await publish({ tmpDir: tmp, entryDir: entry, manifest, logPath: join(proj.dir, 'no-such.log'), digester: d });
    expect(published.how).toBe('published');
    expect(existsSync(join(entry, '_smke/log'))).toBe(false);
    expect(readdirSync(join(proj.dir, 'store'))).toEqual([KEY]);
    expect(checkEntry(entry, KEY, d)).toMatchObject({ state: 'ok' });
  });

  it('keeps the first entry when two publish the same key', async () => {
    const a = staged();
    await publish({ tmpDir: a.tmp, entryDir: a.entry, manifest, digester: d });
    const b = staged();
    expect(await publish({ tmpDir: b.tmp, entryDir: b.entry, manifest, digester: d })).toEqual({ how: 'exists' });
    expect(existsSync(b.tmp)).toBe(false);
  });

  it('syncs every file and directory of an entry before its rename, and the store directory once per group of renames', async () => {
    const storeDir = join(proj.dir, 'store');
    const synced: string[] = [];
    const renamed: string[] = [];
    // The store directory's sync is held until released: the group commit must not wait for it.
    let release!: () => void;
    const held = new Promise<void>((res) => (release = res));
    const disk: Disk = {
      ...realDisk,
      fsync: async (p) => {
        synced.push(p);
        if (p === storeDir) await held;
        return realDisk.fsync(p);
      },
      // The renames that happened (the first, into a store directory not made yet, is tried twice).
      rename: (a, b) => {
        realDisk.rename(a, b);
        renamed.push(b);
      },
    };
    const keys = ['1', '2', '3'].map((c) => parseCacheKey(c.repeat(64), 'test'));
    for (const [i, key] of keys.entries()) {
      const { tmp, entry } = staged(`t${i}`, key);
      const m = { ...manifest, key };
      const before = synced.length;
      // Resolves while the first store sync is still held.
      expect(await publish({ tmpDir: tmp, entryDir: entry, manifest: m, digester: d, disk })).toMatchObject({ how: 'published' });
      // Whole before the rename: every file and directory of the entry was synced before it appeared.
      const own = synced.slice(before).filter((p) => p !== storeDir);
      expect(own.map((p) => p.replace(tmp, 'T')).sort()).toEqual(['T', 'T/_smke', 'T/_smke/manifest.json', 'T/model.bin', 'T/sub', 'T/sub/m.json']);
      expect(checkEntry(entry, key, d)).toMatchObject({ state: 'ok' });
    }
    expect(renamed).toHaveLength(3);
    // One sync started with the first rename; the two renames made meanwhile share one more.
    expect(synced.filter((p) => p === storeDir)).toHaveLength(1);
    let done = false;
    const all = storeSynced().then(() => (done = true));
    await new Promise((res) => setTimeout(res, 20));
    expect(done).toBe(false);
    release();
    await all;
    expect(synced.filter((p) => p === storeDir)).toHaveLength(2);
    // Nothing pending: resolves at once.
    await storeSynced();
  });

  it('with deferSync renames without syncing anything, and syncEntries later syncs every file and directory and the store directory once', async () => {
    const storeDir = join(proj.dir, 'store');
    const synced: string[] = [];
    const disk: Disk = { ...realDisk, fsync: (p) => (synced.push(p), realDisk.fsync(p)) };
    const keys = ['4', '5'].map((c) => parseCacheKey(c.repeat(64), 'test'));
    for (const [i, key] of keys.entries()) {
      const { tmp, entry } = staged(`d${i}`, key);
      expect(await publish({ tmpDir: tmp, entryDir: entry, manifest: { ...manifest, key }, digester: d, disk, deferSync: true })).toMatchObject({
        how: 'published',
      });
      expect(checkEntry(entry, key, d)).toMatchObject({ state: 'ok', verified: true });
    }
    await storeSynced();
    expect(synced).toEqual([]);
    // The fallback of the orchestrator's end-of-run sync: the entry is sealed read-only, and still syncs.
    const entry = join(storeDir, keys[0]!);
    await syncEntries([entry], disk);
    expect(synced.map((p) => p.replace(entry, 'E')).sort()).toEqual(
      ['E', 'E/_smke', 'E/_smke/manifest.json', 'E/model.bin', 'E/sub', 'E/sub/m.json', storeDir].sort(),
    );
    // Both entries and one removed meanwhile (gc): each entry's tree, the store directory once, the missing one skipped.
    synced.length = 0;
    await syncEntries([...keys.map((k) => join(storeDir, k)), join(storeDir, 'f'.repeat(64))], disk);
    expect(synced.filter((p) => p === storeDir)).toHaveLength(1);
    expect(synced.filter((p) => p.endsWith('model.bin')).map((p) => p.slice(storeDir.length + 1, storeDir.length + 2))).toEqual(['4', '5']);
    expect(synced.some((p) => p.includes('f'.repeat(64)))).toBe(false);
  });

  for (const step of ['linkOrCopy', 'writeFile', 'fsync', 'rename'] as const) {
    it(`fails cleanly when the disk is full at ${step}: nothing in the store, nothing left in tmp`, async () => {
      const { tmp, entry } = staged();
      const logPath = join(proj.dir, 'job.log');
      writeFileSync(logPath, 'log\n');
      const full: Disk = {
        ...realDisk,
        [step]: () => {
          throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        },
      };
      await expect(publish({ tmpDir: tmp, entryDir: entry, manifest, logPath, digester: d, disk: full })).rejects.toThrow(PublishError);
      expect(existsSync(entry)).toBe(false);
      expect(existsSync(tmp)).toBe(false);
      try {
        await publish({ tmpDir: staged().tmp, entryDir: entry, manifest, logPath, digester: d, disk: full });
      } catch (e) {
        expect(String(e)).toMatch(step === 'rename' ? /ENOSPC/ : /disk is full/);
      }
    });
  }

  it('detects a missing manifest, a changed output and a missing output', async () => {
    const { tmp, entry } = staged();
    await publish({ tmpDir: tmp, entryDir: entry, manifest, digester: d });
    const ok = checkEntry(entry, KEY, d);
    if (ok.state !== 'ok') throw new Error('not ok');
    writeFileSync(join(entry, 'model.bin'), 'WEIGHTS'); // same size, other content
    expect(checkEntry(entry, KEY, d, ok.files)).toMatchObject({ state: 'corrupt', problem: 'output model.bin does not match its digest' });
    rmSync(join(entry, 'sub/m.json'));
    expect(checkEntry(entry, KEY, d)).toMatchObject({ state: 'corrupt' });
    rmSync(join(entry, MANIFEST));
    expect(checkEntry(entry, KEY, d)).toMatchObject({ state: 'corrupt', problem: expect.stringContaining('manifest.json is missing') });
    expect(checkEntry(join(proj.dir, 'store', 'b'.repeat(64)), parseCacheKey('b'.repeat(64), 'test'), d)).toEqual({ state: 'missing' });
  });

  it('trusts a known entry by stat signature without reading it', async () => {
    const { tmp, entry } = staged();
    await publish({ tmpDir: tmp, entryDir: entry, manifest, digester: d });
    const first = checkEntry(entry, KEY, d);
    if (first.state !== 'ok') throw new Error('not ok');
    const fresh = await Digester.create();
    expect(checkEntry(entry, KEY, fresh, first.files)).toMatchObject({ state: 'ok', verified: false });
    expect(fresh.reads).toBe(0);
  });

  it('cleans in-flight directories of dead processes only', () => {
    const tmpDir = join(proj.dir, 'tmp');
    mkdirSync(join(tmpDir, `${KEY}.${hostname()}.999999999.1`), { recursive: true });
    mkdirSync(join(tmpDir, `${KEY}.${hostname()}.${process.pid}.1`), { recursive: true });
    expect(cleanTmp(tmpDir)).toBe(1);
    expect(readdirSync(tmpDir)).toEqual([`${KEY}.${hostname()}.${process.pid}.1`]);
  });
});

describe('results/ links', () => {
  it('are made, re-pointed and kept through what a run can find at their place', () => {
    const results = join(proj.dir, 'results');
    const store = join(proj.dir, '.smke/store');
    const [e1, e2, e3] = ['1', '2', '3'].map((c) => join(store, c.repeat(64)));
    // No results/ yet: made with the first link.
    linkResult(results, 'a', undefined, e1!);
    expect(readlinkSync(join(results, 'a'))).toBe(`../.smke/store/${'1'.repeat(64)}`);
    // A leftover temporary link of a killed run that had our pid: replaced.
    symlinkSync('stale', join(results, `b.${process.pid}.tmp`));
    linkResult(results, 'b', undefined, e2!);
    expect(readlinkSync(join(results, 'b'))).toBe(`../.smke/store/${'2'.repeat(64)}`);
    expect(existsSync(join(results, `b.${process.pid}.tmp`))).toBe(false);
    // Re-pointed at a new entry; the same entry again changes nothing.
    linkResult(results, 'a', undefined, e3!);
    expect(readlinkSync(join(results, 'a'))).toBe(`../.smke/store/${'3'.repeat(64)}`);
    const before = lstatSync(join(results, 'a')).ino;
    linkResult(results, 'a', undefined, e3!);
    expect(lstatSync(join(results, 'a')).ino).toBe(before);
    // A stage that was a matrix and became plain: its directory of cell links gives way.
    mkdirSync(join(results, 'c'));
    symlinkSync(e1!, join(results, 'c/x'));
    linkResult(results, 'c', undefined, e2!);
    expect(lstatSync(join(results, 'c')).isSymbolicLink()).toBe(true);
    // A plain stage that became a matrix: its old link gives way to a directory of cells.
    linkResult(results, 'a', 'x', e1!);
    expect(lstatSync(join(results, 'a')).isDirectory()).toBe(true);
    expect(readlinkSync(join(results, 'a/x'))).toBe(`../../.smke/store/${'1'.repeat(64)}`);
    // The user's own file is never replaced.
    writeFileSync(join(results, 'mine'), 'notes');
    expect(() => linkResult(results, 'mine', undefined, e1!)).toThrow(/is not a link smke made/);
    expect(readFileSync(join(results, 'mine'), 'utf8')).toBe('notes');
  });
});
