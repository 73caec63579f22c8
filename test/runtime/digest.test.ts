import { existsSync, mkdirSync, rmSync, writeFileSync, utimesSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Digester, MemoryStatCache } from '../../src/runtime/digest.js';
import { expandGlob, globToRegExp } from '../../src/runtime/glob.js';
import { StateDb } from '../../src/runtime/state.js';
import { tempProject } from './helpers.js';

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject();
});
afterEach(() => proj.cleanup());

const past = (p: string, secondsAgo = 60): void => {
  const t = new Date(Date.now() - secondsAgo * 1000);
  utimesSync(p, t, t);
};

describe('digests through the stat cache', () => {
  it('reads an unchanged file once, and again when it changes (same size, new mtime)', async () => {
    const cache = new MemoryStatCache();
    const d = await Digester.create(cache);
    const f = join(proj.dir, 'f');
    writeFileSync(f, 'aaaa');
    past(f, 120);
    const x = d.file(f);
    expect(d.file(f)).toBe(x);
    expect(d.reads).toBe(1);
    writeFileSync(f, 'bbbb');
    past(f, 60);
    expect(d.file(f)).not.toBe(x);
    expect(d.reads).toBe(2);
  });

  it('does not cache a file modified just now (racy timestamps)', async () => {
    const cache = new MemoryStatCache();
    const d = await Digester.create(cache);
    const f = join(proj.dir, 'f');
    writeFileSync(f, 'fresh');
    d.file(f);
    d.file(f);
    expect(d.reads).toBe(2);
    expect(cache.map.size).toBe(0);
  });

  it('persists in the state DB across processes (a new Digester on the same DB)', async () => {
    const db = new StateDb(join(proj.dir, 'state.db'));
    const f = join(proj.dir, 'big');
    writeFileSync(f, Buffer.alloc(1 << 20, 7));
    past(f);
    const d1 = await Digester.create(db);
    const x = d1.file(f);
    db.flushStats();
    const d2 = await Digester.create(db);
    expect(d2.file(f)).toBe(x);
    expect(d2.reads).toBe(0);
    const st = statSync(f, { bigint: true });
    expect(db.get(f)).toEqual({ sig: `f:${1 << 20}:${st.mtimeNs}:${st.ino}:${st.ctimeNs}`, digest: x });
    db.close();
  });

  it('forgets rows of deleted files when pruned (smke gc)', async () => {
    const db = new StateDb(join(proj.dir, 'state.db'));
    const d = await Digester.create(db);
    for (const n of ['keep', 'gone']) {
      writeFileSync(join(proj.dir, n), n);
      past(join(proj.dir, n));
      d.file(join(proj.dir, n));
    }
    db.flushStats();
    rmSync(join(proj.dir, 'gone'));
    expect(db.pruneStatCache((p) => existsSync(p))).toBe(1);
    const fresh = new StateDb(join(proj.dir, 'state.db'));
    expect(fresh.get(join(proj.dir, 'keep'))).toBeDefined();
    expect(fresh.get(join(proj.dir, 'gone'))).toBeUndefined();
    fresh.close();
    db.close();
  });

  it('gives equal content equal digests and a directory one digest over names and contents', async () => {
    const d = await Digester.create();
    mkdirSync(join(proj.dir, 'a/b'), { recursive: true });
    writeFileSync(join(proj.dir, 'a/1'), 'one');
    writeFileSync(join(proj.dir, 'a/b/2'), 'two');
    writeFileSync(join(proj.dir, 'c'), 'one');
    expect(d.file(join(proj.dir, 'c'))).toBe(d.file(join(proj.dir, 'a/1')));
    const before = d.dir(join(proj.dir, 'a'));
    writeFileSync(join(proj.dir, 'a/b/3'), '');
    expect(d.dir(join(proj.dir, 'a'))).not.toBe(before);
  });
});

describe('globs', () => {
  it('matches *, ?, **, [..] and {a,b}', () => {
    expect(globToRegExp('data/*.tsv').test('data/x.tsv')).toBe(true);
    expect(globToRegExp('data/*.tsv').test('data/sub/x.tsv')).toBe(false);
    expect(globToRegExp('src/**/*.py').test('src/a.py')).toBe(true);
    expect(globToRegExp('src/**/*.py').test('src/a/b/c.py')).toBe(true);
    expect(globToRegExp('f?.[ab]').test('f1.a')).toBe(true);
    expect(globToRegExp('*.{json,yaml}').test('x.yaml')).toBe(true);
    expect(globToRegExp('*.{json,yaml}').test('x.toml')).toBe(false);
  });

  it('expands from the static prefix, sorted', () => {
    mkdirSync(join(proj.dir, 'src/z'), { recursive: true });
    writeFileSync(join(proj.dir, 'src/z/b.py'), '');
    writeFileSync(join(proj.dir, 'src/a.py'), '');
    writeFileSync(join(proj.dir, 'src/a.txt'), '');
    expect(expandGlob(proj.dir, 'src/**/*.py')).toEqual(['src/a.py', 'src/z/b.py']);
  });
});
