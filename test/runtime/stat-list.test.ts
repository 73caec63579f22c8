// The no-op stat list: the native checker (native/stat-check.c) and the check
// in Node must give the same verdict for every kind of change a signature
// sees, and a damaged list or one with another id is never "unchanged".
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signature, statValues } from '../../src/runtime/signature.js';
import { encodeStatList, STAT_CHECK_PATH, statListUnchanged, type StatListEntry } from '../../src/runtime/stat-list.js';

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
/** The native checker's exit status (0 unchanged, 1 changed, 2 not a valid list with that id). */
const nativeStatus = (file: string, id = ID): number | null => spawnSync(STAT_CHECK_PATH, [file, store, id.toString('hex')]).status;
/** Both verdicts, which must agree. */
const verdicts = (file: string, id = ID): boolean[] => [
  statListUnchanged(file, store, id, { native: false }),
  ...(native ? [nativeStatus(file, id) === 0] : []),
];
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
    expect(verdicts(fresh())).toEqual(native ? [true, true] : [true]);

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
      expect(verdicts(file), `${what}: before`).toEqual(native ? [true, true] : [true]);
      await tick(); // past the timestamp granularity, so the change cannot share the tick of the list
      change();
      expect(verdicts(file), what).toEqual(native ? [false, false] : [false]);
    }
  });

  it('checks many paths on several threads and finds a single change among them', () => {
    const entries: StatListEntry[] = [];
    for (let i = 0; i < 3000; i++) {
      const p = join(dir, `f${i}`);
      writeFileSync(p, String(i));
      entries.push(entry(p));
    }
    const file = write(entries);
    expect(verdicts(file)).toEqual(native ? [true, true] : [true]);
    rmSync(join(dir, 'f2999'));
    expect(verdicts(file)).toEqual(native ? [false, false] : [false]);
  });

  it('is never unchanged when damaged, of another id, or missing', () => {
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
          c.writeBigInt64LE(1n << 40n, 32 + 8);
          return c;
        },
      ],
      [
        'an unknown flag',
        (b) => {
          const c = Buffer.from(b);
          c.writeBigInt64LE(4n, 32);
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
      expect(verdicts(file), what).toEqual(native ? [false, false] : [false]);
      if (native) expect(nativeStatus(file), what).toBe(2);
    }
    writeFileSync(file, good);
    expect(verdicts(file, Buffer.from('0123456789abcdee', 'hex'))).toEqual(native ? [false, false] : [false]);
    if (native) expect(nativeStatus(file, Buffer.from('0123456789abcdee', 'hex'))).toBe(2);
    rmSync(file);
    expect(verdicts(file)).toEqual(native ? [false, false] : [false]);
  });

  it('an empty list is unchanged (a plan with no inputs and no entries)', () => {
    expect(verdicts(write([]))).toEqual(native ? [true, true] : [true]);
  });
});
