// The no-op stat list keeps the values of the signatures the run observed
// (statValues): they must be exactly a stat's own. How fresh stats are
// compared with them is test/runtime/stat-list.test.ts.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signature, statValues, type StatValues } from '../../src/runtime/signature.js';
import { pathsAtOddTimes } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'smke-sig-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const numbersOf = (p: string): StatValues => statValues(signature(statSync(p, { bigint: true })));

describe('statValues', () => {
  it('agree with a stat for files and directories at many times, to the nanosecond', () => {
    for (const { file: f, dir: d, size } of pathsAtOddTimes(dir)) {
      for (const p of [f, d]) {
        const st = statSync(p, { bigint: true });
        const n = numbersOf(p);
        expect(n.mtimeNs).toBe(st.mtimeNs);
        expect(n.ctimeNs).toBe(st.ctimeNs);
        expect(n.directory).toBe(p === d);
      }
      expect(numbersOf(f).size).toBe(BigInt(size));
      expect(numbersOf(f).ino).toBe(statSync(f, { bigint: true }).ino);
    }
  });

  it('refuses what is not a complete signature', () => {
    for (const bad of ['', 'f:1:2:3:', 'f:1:2:3', 'd:1', 'x:1:2:3:4', 'f:1:2:3:4:5', 'f:1:2:x:4', 'd:-1:2'])
      expect(() => statValues(bad), bad).toThrow(/not a stat signature/);
  });
});
