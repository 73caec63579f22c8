// The state database damaged or lost: every command says what happened and
// goes on (the file is moved aside, never deleted, and what the store's
// manifests record is rebuilt); gc never deletes what results/ links to or
// what it cannot prove unused.
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  symlinkSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempProject } from '../runtime/helpers.js';

const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-adv-db-');
});
afterEach(() => proj.cleanup());

function smke(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: proj.dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** No stack trace, no internal error: the message a user can act on. */
function clean(r: { code: number | null; err: string }): void {
  expect(r.code).not.toBe(70);
  expect(r.err).not.toMatch(/internal error|\n\s+at .+:\d+:\d+/);
}

const PIPELINE = (v: string) => `smke 1
stage a = exec {
  argv = ["sh", "-c", "echo ${v} > {out}/a.txt"]
  outputs = ["a.txt"]
}
stage b = exec {
  argv = ["sh", "-c", "cat \\"$1/a.txt\\" > {out}/b.txt", "b", a.out]
  outputs = ["b.txt"]
}
`;

const db = () => join(proj.dir, '.smke/state.db');
const store = () => join(proj.dir, '.smke/store');
const entries = () =>
  readdirSync(store())
    .filter((n) => /^[0-9a-f]{64}$/.test(n))
    .sort();
const aside = () => readdirSync(join(proj.dir, '.smke')).filter((n) => n.startsWith('state.db.damaged-'));

/** Two runs (v1 then v2): four entries, results/ pointing at the v2 pair. */
function twoRuns(): void {
  writeFileSync(join(proj.dir, 'p.smke'), PIPELINE('v1'));
  expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
  writeFileSync(join(proj.dir, 'p.smke'), PIPELINE('v2'));
  expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
  // Writes of the last run are checkpointed into the main file on close.
  expect(entries()).toHaveLength(4);
}

const damage: [string, () => void][] = [
  ['garbage', () => writeFileSync(db(), 'this is not a database at all, just text\n'.repeat(50))],
  ['truncated mid-page', () => truncateSync(db(), Math.floor(statSync(db()).size / 2) + 100)],
  ['truncated to whole pages', () => truncateSync(db(), 4096)],
  [
    'a page overwritten with garbage',
    () => {
      const fd = openSync(db(), 'r+');
      const junk = Buffer.alloc(4096 * 4, 0xa5);
      writeSync(fd, junk, 0, junk.length, 4096);
      closeSync(fd);
    },
  ],
];

describe('a damaged state database', { timeout: 120_000 }, () => {
  for (const [what, spoil] of damage) {
    it(`${what}: every command goes on with a clear message; the file is kept; nothing reruns`, () => {
      twoRuns();
      for (const s of ['-wal', '-shm']) rmSync(db() + s, { force: true });
      spoil();
      const cmds: string[][] = [
        ['status', 'p.smke'],
        ['history'],
        ['log', 'a'],
        ['verify'],
        ['gc'],
        ['explain', 'p.smke', 'b'],
        ['run', 'p.smke', '--progress', 'plain'],
      ];
      let warned = false;
      for (const args of cmds) {
        let r = smke(args);
        clean(r);
        if (/damaged|truncated|not an SQLite database/.test(r.err)) warned = true;
        // A page damaged mid-file shows only when a query reads it: that command fails with the
        // explanation, and the same command again works.
        if (r.code === 1 && /Rerun the command/.test(r.err)) {
          r = smke(args);
          clean(r);
        }
        if (args[0] !== 'log' && args[0] !== 'history') expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(0);
      }
      expect(warned).toBe(true);
      expect(aside().length).toBeGreaterThanOrEqual(1);
      // Every entry survived; the last run was all cached.
      expect(entries()).toHaveLength(4);
      expect(smke(['run', 'p.smke', '--progress', 'plain']).out).toMatch(/0 ran, 2 cached|2 instances up to date/);
      expect(readFileSync(join(proj.dir, 'results/b/b.txt'), 'utf8')).toBe('v2\n');
    }, 120_000);
  }

  it('an empty file: treated as a new database, rebuilt from the store', () => {
    twoRuns();
    for (const s of ['', '-wal', '-shm']) rmSync(db() + s, { force: true });
    writeFileSync(db(), '');
    const r = smke(['status', 'p.smke']);
    clean(r);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/2 cached, 0 to run/);
    expect(r.err).toMatch(/rebuilt the last fingerprints of 2 stage instances from 4 store manifests/);
  });
});

describe('a lost state database and gc', { timeout: 120_000 }, () => {
  it('gc removes nothing it cannot prove unused, never what results/ links to', () => {
    twoRuns();
    for (const s of ['', '-wal', '-shm']) rmSync(db() + s, { force: true });
    const before = entries();
    let r = smke(['gc']);
    clean(r);
    expect(r.out).toMatch(/removed 0 entries/);
    expect(entries()).toEqual(before);
    r = smke(['gc', '--keep-last', '1']);
    expect(r.out).toMatch(/removed 0 entries/);
    // --unrecorded: the two older entries go, the two results/ points to stay.
    r = smke(['gc', '--unrecorded']);
    expect(r.out).toMatch(/removed 2 entries/);
    expect(entries()).toHaveLength(2);
    expect(readFileSync(join(proj.dir, 'results/a/a.txt'), 'utf8')).toBe('v2\n');
    expect(readFileSync(join(proj.dir, 'results/b/b.txt'), 'utf8')).toBe('v2\n');
    expect(smke(['run', 'p.smke', '--progress', 'plain']).out).toMatch(/0 ran, 2 cached|up to date/);
  });

  it('results/ protects its targets even when the database says they are old', () => {
    twoRuns();
    // Point results/a at the v1 entry of a, which the last run did not use.
    const v1a = entries().find((k) => {
      const m = readFileSync(join(store(), k, '_smke/manifest.json'), 'utf8');
      return JSON.parse(m).instance === 'a' && m.includes('v1');
    })!;
    rmSync(join(proj.dir, 'results/a'));
    symlinkSync(join(store(), v1a), join(proj.dir, 'results/a'));
    const r = smke(['gc', '--keep-last', '1']);
    clean(r);
    expect(r.out).toMatch(/removed 1 entry/);
    expect(readFileSync(join(proj.dir, 'results/a/a.txt'), 'utf8')).toBe('v1\n');
    expect(entries()).toContain(v1a);
  });

  it('an entry published after the database began but never recorded (a run killed meanwhile) is removable', () => {
    twoRuns();
    const orphan = join(store(), 'f'.repeat(64));
    mkdirSync(join(orphan, '_smke'), { recursive: true });
    writeFileSync(join(orphan, '_smke/manifest.json'), '{}');
    const r = smke(['gc']);
    expect(r.out).toMatch(/removed 1 entry/);
    expect(existsSync(orphan)).toBe(false);
    expect(entries()).toHaveLength(4);
  });
});
