// The no-op stat list: the native checker (native/stat-check.c) and the check
// in Node must give the same verdict for every kind of change a signature
// sees, and a damaged list or one with another id is never "unchanged".
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signature, statValues } from '../../src/runtime/signature.js';
import { checkStatList, earlyCheckTaken, encodeStatList, startEarlyCheck, STAT_CHECK_PATH, type StatListEntry } from '../../src/runtime/stat-list.js';
import { pathsAtOddTimes } from './helpers.js';

let dir: string;
let store: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'smke-statlist-'));
  store = join(dir, 'store');
  mkdirSync(join(store, 'k1'), { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ID = Buffer.from('0123456789abcdef', 'hex');
const entry = (path: string, inStore = false): StatListEntry => ({
  path,
  inStore,
  values: statValues(signature(statSync(inStore ? join(store, path) : path, { bigint: true }))),
});
const write = (entries: StatListEntry[], id = ID): string => {
  const file = join(dir, 'list.stat');
  writeFileSync(file, encodeStatList(id, entries));
  return file;
};
const native = existsSync(STAT_CHECK_PATH);
/** The native checker's exit status (0 unchanged, 1 changed, 2 not a valid list) and what it printed (the list's id). */
const nativeRun = (file: string): { status: number | null; out: string } => {
  const r = spawnSync(STAT_CHECK_PATH, [file, store], { encoding: 'latin1' });
  return { status: r.status, out: r.stdout };
};
/** Both verdicts, which must agree: unchanged, and the list's id is the one expected. */
const verdicts = async (file: string, id = ID): Promise<boolean[]> => {
  const node = await checkStatList(file, store, { native: false });
  const out = [node.unchanged && node.id === id.toString('hex')];
  if (native) {
    const r = nativeRun(file);
    out.push(r.status === 0 && r.out === `${id.toString('hex')}\n`);
    // checkStatList with the native checker gives the same verdict as the program itself.
    const v = await checkStatList(file, store);
    expect(v.unchanged && v.id === id.toString('hex')).toBe(out[1]);
  }
  return out;
};
const tick = (): Promise<void> => new Promise((res) => setTimeout(res, 30));

describe('the no-op stat list', () => {
  it('is built by npm run build on Linux (the check below would otherwise test Node twice)', () => {
    if (process.platform === 'linux' && spawnSync('cc', ['--version']).status === 0) expect(native).toBe(true);
  });

  it('says unchanged for untouched files, directories and store paths, and changed for each kind of change', async () => {
    const f = join(dir, 'in.txt');
    writeFileSync(f, 'abc');
    const d = join(dir, 'data');
    mkdirSync(d);
    writeFileSync(join(store, 'k1/o.txt'), 'out');
    const fresh = (): string => write([entry(f), entry(d), entry('k1/o.txt', true)]);
    expect(await verdicts(fresh())).toEqual(native ? [true, true] : [true]);

    const changes: [string, () => void][] = [
      ['new content, same size', () => writeFileSync(f, 'xyz')],
      [
        'mtime set back after an edit',
        () => {
          const { mtime } = statSync(f);
          writeFileSync(f, 'abd');
          utimesSync(f, mtime, mtime);
        },
      ],
      ['chmod (ctime only)', () => chmodSync(f, 0o600)],
      [
        'replaced by a rename',
        () => {
          writeFileSync(join(dir, 'other'), 'abc');
          renameSync(join(dir, 'other'), f);
        },
      ],
      ['deleted', () => rmSync(f)],
      ['a file added to a directory', () => writeFileSync(join(d, 'new'), '')],
      [
        'a directory where the file was',
        () => {
          rmSync(f);
          mkdirSync(f);
        },
      ],
      ['a store file rewritten', () => writeFileSync(join(store, 'k1/o.txt'), 'OUT')],
      [
        'the store file replaced by a link to an identical copy',
        () => {
          writeFileSync(join(dir, 'copy'), 'out');
          rmSync(join(store, 'k1/o.txt'));
          symlinkSync(join(dir, 'copy'), join(store, 'k1/o.txt'));
        },
      ],
    ];
    for (const [what, change] of changes) {
      rmSync(f, { recursive: true, force: true });
      writeFileSync(f, 'abc');
      rmSync(join(store, 'k1/o.txt'), { force: true });
      writeFileSync(join(store, 'k1/o.txt'), 'out');
      const file = fresh();
      expect(await verdicts(file), `${what}: before`).toEqual(native ? [true, true] : [true]);
      await tick(); // past the timestamp granularity, so the change cannot share the tick of the list
      change();
      expect(await verdicts(file), what).toEqual(native ? [false, false] : [false]);
    }
  });

  it('says unchanged at any time a file can have, fractions of a millisecond included (Node compares milliseconds as doubles)', async () => {
    const entries = pathsAtOddTimes(dir).flatMap((p) => [entry(p.file), entry(p.dir)]);
    expect(await verdicts(write(entries))).toEqual(native ? [true, true] : [true]);
  });

  it('checks many paths on several threads and finds a single change among them', async () => {
    const entries: StatListEntry[] = [];
    for (let i = 0; i < 3000; i++) {
      const p = join(dir, `f${i}`);
      writeFileSync(p, String(i));
      entries.push(entry(p));
    }
    const file = write(entries);
    expect(await verdicts(file)).toEqual(native ? [true, true] : [true]);
    rmSync(join(dir, 'f2999'));
    expect(await verdicts(file)).toEqual(native ? [false, false] : [false]);
  });

  it('is never unchanged when damaged, of another id, or missing', async () => {
    const f = join(dir, 'in.txt');
    writeFileSync(f, 'abc');
    const file = write([entry(f), entry(dir)]);
    const good = readFileSync(file);
    const damaged: [string, (b: Buffer) => Buffer][] = [
      ['truncated', (b) => b.subarray(0, b.length - 1)],
      ['a byte too many', (b) => Buffer.concat([b, Buffer.from([0])])],
      ['another magic', (b) => Buffer.concat([Buffer.from('SMKESTL0'), b.subarray(8)])],
      [
        'a count one too high',
        (b) => {
          const c = Buffer.from(b);
          c.writeUInt32LE(3, 16);
          return c;
        },
      ],
      [
        'a path offset past the paths',
        (b) => {
          const c = Buffer.from(b);
          c.writeDoubleLE(2 ** 40, 32 + 8);
          return c;
        },
      ],
      [
        'an unknown flag',
        (b) => {
          const c = Buffer.from(b);
          c.writeDoubleLE(4, 32);
          return c;
        },
      ],
      [
        'the last path not terminated',
        (b) => {
          const c = Buffer.from(b);
          c[c.length - 1] = 0x41;
          return c;
        },
      ],
      ['empty', () => Buffer.alloc(0)],
    ];
    for (const [what, damage] of damaged) {
      writeFileSync(file, damage(good));
      expect(await verdicts(file), what).toEqual(native ? [false, false] : [false]);
      if (native) expect(nativeRun(file), what).toEqual({ status: 2, out: '' });
    }
    writeFileSync(file, good);
    expect(await verdicts(file, Buffer.from('0123456789abcdee', 'hex'))).toEqual(native ? [false, false] : [false]);
    if (native) expect(nativeRun(file).out).toBe('0123456789abcdef\n'); // it names its own id, which is not the one expected
    rmSync(file);
    expect(await verdicts(file)).toEqual(native ? [false, false] : [false]);
  });

  it('an empty list is unchanged (a plan with no inputs and no entries)', async () => {
    expect(await verdicts(write([]))).toEqual(native ? [true, true] : [true]);
  });

  it.runIf(native)('takes over a check begun early only for the same list and store, and its verdict sees changes made before it ran', async () => {
    const f = join(dir, 'in.txt');
    writeFileSync(f, 'abc');
    writeFileSync(join(store, 'k1/o.txt'), 'out');
    const file = write([entry(f), entry('k1/o.txt', true)]);
    const hex = ID.toString('hex');

    startEarlyCheck(file, store);
    expect(await checkStatList(file, store)).toEqual({ id: hex, unchanged: true });
    expect(earlyCheckTaken()).toBe(true);

    // Begun against another store (SMKE_STORE changed since the hint): a check of its own, with the right verdict.
    startEarlyCheck(file, join(dir, 'elsewhere'));
    expect(await checkStatList(file, store)).toEqual({ id: hex, unchanged: true });
    expect(earlyCheckTaken()).toBe(false);
    // Another list (the hint is older than the snapshot): not taken either, and the early one is dropped.
    const other = join(dir, 'other.stat');
    writeFileSync(other, encodeStatList(Buffer.from('fedcba9876543210', 'hex'), [entry(f)]));
    startEarlyCheck(other, store);
    expect(await checkStatList(file, store)).toEqual({ id: hex, unchanged: true });
    expect(earlyCheckTaken()).toBe(false);

    // A change made before the early check begins is in its verdict (for every kind the list sees).
    await tick();
    writeFileSync(join(store, 'k1/o.txt'), 'OUT');
    startEarlyCheck(file, store);
    expect(await checkStatList(file, store)).toEqual({ id: hex, unchanged: false });
    expect(earlyCheckTaken()).toBe(true);
    rmSync(f);
    startEarlyCheck(file, store);
    expect(await checkStatList(file, store)).toEqual({ id: hex, unchanged: false });
    // A list that was removed: no id, never unchanged.
    rmSync(file);
    startEarlyCheck(file, store);
    expect(await checkStatList(file, store)).toEqual({ id: undefined, unchanged: false });
  });

  it.runIf(native)('a check begun early and never taken over does not keep the process alive', () => {
    // A FIFO as the list: the checker blocks opening it until a writer comes, which here is never.
    const fifo = join(dir, 'list.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const script = `import { startEarlyCheck } from ${JSON.stringify(new URL('../../dist/runtime/stat-list.js', import.meta.url).pathname)};
startEarlyCheck(${JSON.stringify(fifo)}, ${JSON.stringify(store)});`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.error, 'the process waited for the checker').toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    // Release the checker left behind: it gets an empty list, not a valid one, and exits.
    writeFileSync(fifo, '');
  });
});
