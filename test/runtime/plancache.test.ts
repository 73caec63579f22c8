// The plan cache trusts a source file by its stat signature only when the
// signature was taken past the racy window; every kind of edit a signature
// sees sends the check back to the file's content.
import { readdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachedPlanDigest, storeCachedPlan } from '../../src/runtime/plancache.js';
import { makePlan, tempProject } from './helpers.js';

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-plancache-');
});
afterEach(() => proj.cleanup());

const KINDS = { exec: 1 };
const minuteAgo = (path: string): void => {
  const t = new Date(Date.now() - 60_000);
  utimesSync(path, t, t);
};

describe('the plan cache', () => {
  const source = (): string => join(proj.dir, 'p.smke');
  const key = (): { file: string; projectDir: string } => ({ file: source(), projectDir: proj.dir });
  const plansDir = (): string => join(proj.dir, '.smke/plans');
  const store = (): void => {
    const plan = makePlan(proj.dir, []);
    plan.sources = [{ path: source(), sha256: '' }];
    storeCachedPlan(plansDir(), key(), plan, KINDS, '0.0.0', {});
  };
  const digest = (): string | undefined => cachedPlanDigest(plansDir(), key(), KINDS, '0.0.0', {});
  const headSources = (): { sig?: string }[] => {
    const head = readdirSync(plansDir()).find((n) => n.endsWith('.head.json'))!;
    return (JSON.parse(readFileSync(join(plansDir(), head), 'utf8')) as { sources: { sig?: string }[] }).sources;
  };

  it('records no signature for a source written within the racy window, and then checks its content', () => {
    writeFileSync(source(), 'smke 1\n');
    store();
    expect(headSources()[0]!.sig).toBeUndefined();
    expect(digest()).toBeDefined();
    writeFileSync(source(), 'smke 2\n'); // same size, same tick possibly: only the content tells
    expect(digest()).toBeUndefined();
  });

  it('trusts an unchanged old source by its signature, and re-reads it after any change a signature sees', () => {
    const edits: [string, () => void, boolean][] = [
      ['rewritten with the same text', () => writeFileSync(source(), 'smke 1\n'), true],
      ['touched', () => utimesSync(source(), new Date(), new Date()), true],
      [
        'new text of the same size, mtime set back',
        () => {
          const { mtime } = statSync(source());
          writeFileSync(source(), 'smke 2\n');
          utimesSync(source(), mtime, mtime);
        },
        false,
      ],
      [
        'replaced by a rename of another file with the same times',
        () => {
          const other = join(proj.dir, 'other');
          writeFileSync(other, '# x\n\n\n');
          const { mtime } = statSync(source());
          utimesSync(other, mtime, mtime);
          renameSync(other, source());
        },
        false,
      ],
    ];
    for (const [what, edit, stillValid] of edits) {
      writeFileSync(source(), 'smke 1\n');
      minuteAgo(source());
      store();
      expect(headSources()[0]!.sig, what).toMatch(/^f:/);
      const before = digest();
      expect(before, what).toBeDefined();
      edit();
      expect(digest(), what).toBe(stillValid ? before : undefined);
    }
  });
});
