// A disk at 100%: every command says so (no SqliteError stack, no exit 70),
// and `smke gc`, which the message suggests, works on the full disk and
// frees space. A real full file system: a 3 MB tmpfs (needs root and
// mount(2); skipped with a message where that is not permitted).
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
const mnt = mkdtempSync(join(tmpdir(), 'smke-adv-full-'));
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]).status === 0;
if (!mounted) console.warn(`runtime-disk-full: skipped: cannot mount a small tmpfs on ${mnt} (needs root and mount permission)`);

afterAll(() => {
  if (mounted) spawnSync('umount', [mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

function smke(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: mnt, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const PIPELINE = (v: string) => `smke 1
stage a = exec {
  argv = ["sh", "-c", "head -c 200000 /dev/urandom > {out}/a.bin; echo ${v} >> {out}/a.bin"]
  outputs = ["a.bin"]
}
stage b = exec {
  argv = ["sh", "-c", "cat \\"$1/a.bin\\" > {out}/b.bin", "b", a.out]
  outputs = ["b.bin"]
}
`;

/** Fill the file system to the last block. */
function fill(): void {
  const fd = openSync(join(mnt, 'filler'), 'a');
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
}

const free = (): number => {
  const s = statfsSync(mnt);
  return s.bavail * s.bsize;
};

describe.skipIf(!mounted)('a full disk', () => {
  beforeAll(() => {
    writeFileSync(join(mnt, 'p.smke'), PIPELINE('v1'));
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    writeFileSync(join(mnt, 'p.smke'), PIPELINE('v2'));
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    writeFileSync(join(mnt, 'p.smke'), PIPELINE('v3'));
    fill();
  }, 60_000);

  const commands = [
    ['status', 'p.smke'],
    ['explain', 'p.smke', 'a'],
    ['history'],
    ['log', 'a'],
    ['verify'],
    ['run', 'p.smke', '--progress', 'plain'],
    ['run', 'p.smke', '--json'],
  ];
  for (const args of commands) {
    it(`smke ${args.join(' ')}: a clear message, no stack`, () => {
      expect(free()).toBeLessThan(64 * 1024);
      const r = smke(args);
      expect(r.code).not.toBe(70);
      expect(r.err).not.toMatch(/internal error|SqliteError|\n\s+at .+:\d+:\d+/);
      if (r.code !== 0) expect(r.err + r.out).toMatch(/disk is full|no space/i);
    }, 30_000);
  }

  it('smke gc works on the full disk and frees space; then runs work again', () => {
    expect(free()).toBeLessThan(64 * 1024);
    const before = readdirSync(join(mnt, '.smke/store')).filter((n) => /^[0-9a-f]{64}$/.test(n)).length;
    const r = smke(['gc', '--keep-last', '1']);
    expect(r.err).not.toMatch(/internal error|SqliteError|\n\s+at .+:\d+:\d+/);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/removed [1-9]\d* entr/);
    const after = readdirSync(join(mnt, '.smke/store')).filter((n) => /^[0-9a-f]{64}$/.test(n)).length;
    expect(after).toBeLessThan(before);
    expect(free()).toBeGreaterThan(200_000);
    rmSync(join(mnt, 'filler'));
    const run = smke(['run', 'p.smke', '--progress', 'plain']);
    expect(run.code).toBe(0);
    expect(smke(['history']).code).toBe(0);
  }, 60_000);
});
