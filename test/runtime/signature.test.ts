// The no-op stat list keeps the values of the signatures the run observed
// (statValues): they must be exactly a stat's own. How fresh stats are
// compared with them is test/runtime/stat-list.test.ts.
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signature, statValues, type StatValues } from '../../src/runtime/signature.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'smke-sig-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const numbersOf = (p: string): StatValues => statValues(signature(statSync(p, { bigint: true })));

describe('statValues', () => {
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
      }
      expect(numbersOf(f).size).toBe(BigInt(i));
      expect(numbersOf(f).ino).toBe(statSync(f, { bigint: true }).ino);
    }
  });

  it('refuses what is not a complete signature', () => {
    for (const bad of ['', 'f:1:2:3:', 'f:1:2:3', 'd:1', 'x:1:2:3:4', 'f:1:2:3:4:5', 'f:1:2:x:4', 'd:-1:2'])
      expect(() => statValues(bad), bad).toThrow(/not a stat signature/);
  });
});
