// Isolation, class 1: published store entries are read-only, and smke itself
// can still move and remove them (gc, corruption, failed attempts).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, linkSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { project, nobodyCanRun, type Project } from './secrets-project.js';

let p: Project;
beforeEach(() => {
  p = project('smke-adv-ro-');
});
afterEach(() => p.cleanup());

/** Every path under an entry, directories included, with its mode. */
function modes(dir: string, rel = ''): [string, number, boolean][] {
  const out: [string, number, boolean][] = [];
  for (const n of readdirSync(join(dir, rel))) {
    const r = rel ? `${rel}/${n}` : n;
    const st = lstatSync(join(dir, r));
    if (st.isSymbolicLink()) continue;
    out.push([r, st.mode & 0o777, st.isDirectory()]);
    if (st.isDirectory()) out.push(...modes(dir, r));
  }
  return out;
}

const entryOf = (stage: string): string => resolve(p.dir, 'results', readlinkSync(join(p.dir, 'results', stage)));

const TWO = `smke 1
stage a = exec {
  argv = ["sh", "-c", "mkdir -p {out}/d/e && echo a > {out}/d/e/a.txt && echo top > {out}/top.txt"]
  outputs = ["top.txt"]
}
stage b = exec {
  argv = ["sh", "-c", "cat \\"$0\\" > {out}/b.txt", a.top]
  outputs = ["b.txt"]
}
`;

describe('published entries are read-only', { timeout: 240_000 }, () => {
  it('removes every write bit from files and directories, manifest and log included', () => {
    p.write('p.smke', TWO);
    expect(p.smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    for (const stage of ['a', 'b']) {
      const e = entryOf(stage);
      expect(statSync(e).mode & 0o222, stage).toBe(0);
      const all = modes(e);
      expect(all.some(([r]) => r === '_smke/manifest.json')).toBe(true);
      for (const [r, m] of all) expect(m & 0o222, `${stage}/${r}`).toBe(0);
    }
    // A cached rerun still works on read-only entries (nothing writes into them).
    const again = p.smke(['run', 'p.smke', '--progress', 'plain', '--no-plan-cache']);
    expect(again.out).toMatch(/0 ran, 2 cached/);
    expect(p.smke(['verify']).code).toBe(0);
  });

  it('does not follow links out of the entry, nor lock a project file hard-linked into it', () => {
    p.write('mine.txt', 'mine');
    p.write('linked.txt', 'linked');
    chmodSync(join(p.dir, 'mine.txt'), 0o644);
    chmodSync(join(p.dir, 'linked.txt'), 0o644);
    p.write(
      'p.smke',
      `smke 1
stage s = exec {
  argv = ["sh", "-c", "ln -s \\"$PWD/mine.txt\\" {out}/sym && ln \\"$PWD/linked.txt\\" {out}/hard.txt && echo x > {out}/own.txt"]
}
`,
    );
    const r = p.smke(['run', 'p.smke', '--progress', 'plain']);
    expect(r.code, r.err).toBe(0);
    expect(statSync(join(p.dir, 'mine.txt')).mode & 0o777).toBe(0o644);
    expect(statSync(join(p.dir, 'linked.txt')).mode & 0o777).toBe(0o644);
    expect(statSync(join(entryOf('s'), 'own.txt')).mode & 0o222).toBe(0);
  });

  it('lets smke quarantine a corrupted read-only entry and rerun it', () => {
    p.write('p.smke', TWO);
    expect(p.smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    const e = entryOf('a');
    chmodSync(join(e, 'top.txt'), 0o644);
    writeFileSync(join(e, 'top.txt'), 'tampered\n');
    chmodSync(join(e, 'top.txt'), 0o444);
    expect(p.smke(['verify']).code).toBe(1);
    const r = p.smke(['run', 'p.smke', '--progress', 'plain', '--no-plan-cache']);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(entryOf('a'), 'top.txt'), 'utf8')).toBe('top\n');
    expect(p.smke(['verify']).code).toBe(0);
  });
});

// Root ignores file modes: these cases run the whole CLI as the uid nobody.
describe.skipIf(!nobodyCanRun)('as a non-root user', { timeout: 240_000 }, () => {
  const asNobody = (args: string[]) => p.smke(args, { HOME: p.dir }, { as: 'nobody' });
  const own = (): void => {
    spawnSync('chown', ['-R', '65534:65534', p.dir]);
    chmodSync(p.dir, 0o755);
  };

  it('a stage cannot write into its upstream entry or an unrelated one; both stay intact', () => {
    p.write('p.smke', TWO);
    own();
    expect(asNobody(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    const a = entryOf('a');
    const b = entryOf('b');
    p.write(
      'evil.smke',
      `smke 1
stage a = exec {
  argv = ["sh", "-c", "mkdir -p {out}/d/e && echo a > {out}/d/e/a.txt && echo top > {out}/top.txt"]
  outputs = ["top.txt"]
}
stage up = exec {
  argv = ["sh", "-c", "echo evil >> \\"$0\\"", a.top]
}
stage other = exec {
  argv = ["sh", "-c", "echo evil > ${b}/b.txt"]
}
stage newfile = exec {
  argv = ["sh", "-c", "echo evil > ${a}/d/e/new.txt"]
}
`,
    );
    own();
    const r = asNobody(['run', 'evil.smke', '-k', '--progress', 'plain']);
    expect(r.code).toBe(1);
    expect(r.out + r.err).toMatch(/3 failed/);
    expect(readFileSync(join(a, 'top.txt'), 'utf8')).toBe('top\n');
    expect(readFileSync(join(b, 'b.txt'), 'utf8')).toBe('top\n');
    expect(existsSync(join(a, 'd/e/new.txt'))).toBe(false);
    expect(asNobody(['verify']).code).toBe(0);
  });

  it('gc removes read-only entries; a failed attempt that copied read-only trees leaves no debris', () => {
    p.write('p.smke', TWO);
    own();
    expect(asNobody(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    const old = entryOf('b');
    // cp -a keeps the upstream's read-only modes inside the new attempt's tmp dir; then the stage fails.
    p.write('p.smke', TWO.replace('cat \\"$0\\" > {out}/b.txt', 'cp -a \\"$(dirname \\"$0\\")/d\\" {out}/copy && exit 3'));
    own();
    const r = asNobody(['run', 'p.smke', '--progress', 'plain']);
    expect(r.code).toBe(1);
    expect(r.err).not.toMatch(/EACCES|\n\s+at /);
    expect(readdirSync(join(p.dir, '.smke/tmp')).filter((n) => !n.endsWith('.lock'))).toEqual([]);
    p.write('p.smke', TWO.replace('> {out}/b.txt', '> {out}/b.txt; echo v2 >> {out}/b.txt'));
    own();
    expect(asNobody(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    const gc = asNobody(['gc', '--keep-last', '1']);
    expect(gc.code, gc.err).toBe(0);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(entryOf('b'))).toBe(true);
  });
});
