// The no-op stat list keeps the values of the signatures the run observed
// (statValues) and compares fresh stats against them (statMatches). The two
// must agree exactly for an unchanged path, and disagree for every kind of
// change a signature sees.
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signature, statMatches, statValues, type StatValues } from '../../src/runtime/signature.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'smke-sig-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const numbersOf = (p: string): StatValues => statValues(signature(statSync(p, { bigint: true })));
const matches = (p: string, v: StatValues): boolean => statMatches(statSync(p, { bigint: true }), v);

describe('statValues and statMatches', () => {
  it('agree with a stat for files and directories at many times, to the nanosecond', () => {
    // Times with nanosecond parts that do not round evenly to a double of milliseconds.
    const times = [0.000123, 1.5, 1_000_000_000.123456, 1_796_610_958.401244, 2_000_000_000.999999, Date.now() / 1000];
    for (const [i, t] of times.entries()) {
      const f = join(dir, `f${i}`);
      writeFileSync(f, 'x'.repeat(i));
      utimesSync(f, t, t);
      const d = join(dir, `d${i}`);
      mkdirSync(d);
      utimesSync(d, t, t);
      for (const p of [f, d]) {
        const st = statSync(p, { bigint: true });
        const n = numbersOf(p);
        expect(n.mtimeNs).toBe(st.mtimeNs);
        expect(n.ctimeNs).toBe(st.ctimeNs);
        expect(n.directory).toBe(p === d);
        expect(matches(p, n)).toBe(true);
      }
      expect(numbersOf(f).size).toBe(BigInt(i));
      expect(numbersOf(f).ino).toBe(statSync(f, { bigint: true }).ino);
    }
  });

  it('sees a new size, a new mtime, a chmod (ctime), a file replaced by another, and a directory in place of a file', async () => {
    const p = join(dir, 'f');
    writeFileSync(p, 'abc');
    utimesSync(p, 1000, 1000);
    const before = numbersOf(p);
    expect(matches(p, before)).toBe(true);

    // Past the kernel's timestamp granularity, so a change cannot share the tick of the one before.
    const tick = (): Promise<void> => new Promise((res) => setTimeout(res, 30));
    await tick();
    writeFileSync(p, 'abcd');
    utimesSync(p, 1000, 1000);
    expect(matches(p, before)).toBe(false); // size (and ctime)

    const sameSize = numbersOf(p);
    await tick();
    utimesSync(p, 2000, 2000);
    expect(matches(p, sameSize)).toBe(false); // mtime

    const mtimeRestored = numbersOf(p);
    await tick();
    chmodSync(p, 0o600);
    expect(matches(p, mtimeRestored)).toBe(false); // ctime alone

    const renamed = numbersOf(p);
    const other = join(dir, 'other');
    writeFileSync(other, 'abcd');
    utimesSync(other, 2000, 2000);
    renameSync(other, p);
    expect(matches(p, renamed)).toBe(false); // inode

    const file = numbersOf(p);
    rmSync(p);
    mkdirSync(p);
    expect(matches(p, file)).toBe(false);
    const asDir = numbersOf(p);
    rmSync(p, { recursive: true });
    writeFileSync(p, '');
    expect(matches(p, asDir)).toBe(false);
  });

  it('refuses what is not a complete signature', () => {
    for (const bad of ['', 'f:1:2:3:', 'f:1:2:3', 'd:1', 'x:1:2:3:4', 'f:1:2:3:4:5', 'f:1:2:x:4', 'd:-1:2'])
      expect(() => statValues(bad), bad).toThrow(/not a stat signature/);
  });
});
