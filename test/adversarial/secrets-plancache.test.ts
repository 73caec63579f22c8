// Secrets, class 1: environment values copied to disk by the plan cache (and
// everything else under .smke/), and files other users can read.
import { createHash, createHmac } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachedPlanDigest, loadCachedPlan, storeCachedPlan } from '../../src/runtime/plancache.js';
import { filesContaining, filesUnder, project, type Project } from './secrets-project.js';

const TOKEN = 'hf_Adversarial0123456789Token';
const SHORT = 'pw1'; // short enough to brute-force from a plain sha256

let p: Project;
beforeEach(() => {
  p = project('smke-adv-plancache-');
});
afterEach(() => p.cleanup());

const PIPELINE = `smke 1
# Set HF_TOKEN before running; this comment names env("HF_TOKEN") and env('PASSWD').
param tag = env("RUN_TAG", "dev")

stage a = exec {
  argv = ["sh", "-c", "echo \${tag} > {out}/a.txt"]
  outputs = ["a.txt"]
}
`;

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('the plan cache and .smke/ keep no environment value', { timeout: 240_000 }, () => {
  it('never writes the value of a variable a comment or a param names, anywhere under .smke/', () => {
    p.write('p.smke', PIPELINE);
    const env = { HF_TOKEN: TOKEN, PASSWD: SHORT, RUN_TAG: 'tag-value-visible' };
    const r = p.smke(['run', 'p.smke', '--progress', 'plain'], env);
    expect(r.code, r.err).toBe(0);
    // The no-op fast path and status/explain write their own files: run them too.
    expect(p.smke(['run', 'p.smke', '--progress', 'plain'], env).code).toBe(0);
    expect(p.smke(['status', 'p.smke'], env).code).toBe(0);
    expect(p.smke(['explain', 'p.smke', 'a'], env).code).toBe(0);
    const files = filesUnder(join(p.dir, '.smke'));
    expect(files.some((f) => f.startsWith('plans/') && f.endsWith('.head.json'))).toBe(true);
    expect(files.some((f) => f.endsWith('.noop.json'))).toBe(true);
    expect(filesContaining(join(p.dir, '.smke'), TOKEN)).toEqual([]);
    // A 3-character value must not appear as itself in the cache's env record either.
    // The JSON files; the no-op's stat and instance lists hold paths and keys (checked for the token above).
    for (const f of files.filter((x) => x.startsWith('plans/') && x.endsWith('.json'))) {
      const c = JSON.parse(readFileSync(join(p.dir, '.smke', f), 'utf8')) as { env?: Record<string, string | null> };
      for (const v of Object.values(c.env ?? {})) expect(v === null || /^hmac:[0-9a-f]{64}$/.test(v)).toBe(true);
    }
  });

  it("keys the digest per project: neither the plain sha256 of a value nor another project's digest matches", () => {
    const q = project('smke-adv-plancache2-');
    const seen: string[] = [];
    for (const dir of [p.dir, q.dir]) {
      const plansDir = join(dir, '.smke', 'plans');
      const plan = fakePlan(dir);
      storeCachedPlan(plansDir, { file: plan.file, projectDir: dir }, plan as never, { exec: 1 }, 't', { PASSWD: SHORT });
      const head = readdirSync(plansDir).find((n) => n.endsWith('.head.json'))!;
      const env = (JSON.parse(readFileSync(join(plansDir, head), 'utf8')) as { env: Record<string, string> }).env;
      expect(Object.keys(env)).toEqual(['PASSWD']);
      const plain = createHash('sha256').update(SHORT).digest('hex');
      expect(env.PASSWD).not.toContain(plain);
      expect(env.PASSWD).not.toContain(SHORT);
      // It is the HMAC under this project's own key file.
      const key = Buffer.from(readFileSync(join(dir, '.smke', 'secret.key'), 'utf8').trim(), 'hex');
      expect(env.PASSWD).toBe(`hmac:${createHmac('sha256', key).update(SHORT).digest('hex')}`);
      seen.push(env.PASSWD!);
    }
    expect(seen[0]).not.toBe(seen[1]);
    q.cleanup();
  });

  it('still invalidates the cache when a named value changes, is unset, or becomes empty', () => {
    const dir = p.dir;
    const plansDir = join(dir, '.smke', 'plans');
    const plan = fakePlan(dir);
    const k = { file: plan.file, projectDir: dir };
    storeCachedPlan(plansDir, k, plan as never, { exec: 1 }, 't', { PASSWD: SHORT });
    expect(cachedPlanDigest(plansDir, k, { exec: 1 }, 't', { PASSWD: SHORT })).toBeDefined();
    expect(loadCachedPlan(plansDir, k, { exec: 1 }, 't', { PASSWD: SHORT })).toBeDefined();
    for (const other of [{ PASSWD: 'pw2' }, {}, { PASSWD: '' }]) {
      expect(cachedPlanDigest(plansDir, k, { exec: 1 }, 't', other)).toBeUndefined();
      expect(loadCachedPlan(plansDir, k, { exec: 1 }, 't', other)).toBeUndefined();
    }
    // Unset is remembered as unset, and differs from empty.
    storeCachedPlan(plansDir, k, plan as never, { exec: 1 }, 't', {});
    expect(cachedPlanDigest(plansDir, k, { exec: 1 }, 't', {})).toBeDefined();
    expect(cachedPlanDigest(plansDir, k, { exec: 1 }, 't', { PASSWD: '' })).toBeUndefined();
  });
});

describe('files under .smke/ are private', { timeout: 240_000 }, () => {
  it('creates .smke/ 0700 and its sensitive files 0600 even under umask 000', () => {
    p.write('p.smke', PIPELINE);
    const r = p.smke(['run', 'p.smke', '--progress', 'plain'], { HF_TOKEN: TOKEN }, { umask: '000' });
    expect(r.code, r.err).toBe(0);
    const s = join(p.dir, '.smke');
    expect(mode(s)).toBe(0o700);
    expect(mode(join(s, 'plans'))).toBe(0o700);
    expect(mode(join(s, 'secret.key'))).toBe(0o600);
    expect(mode(join(s, 'state.db'))).toBe(0o600);
    for (const f of filesUnder(join(s, 'plans'))) expect(mode(join(s, 'plans', f)), f).toBe(0o600);
    // Logs: the owner's alone (a succeeded attempt's log is also its entry's _smke/log, sealed with it: 0400).
    for (const f of filesUnder(join(s, 'logs'))) expect([0o600, 0o400], f).toContain(mode(join(s, 'logs', f)));
    // The no-op fast path's journal too.
    expect(p.smke(['run', 'p.smke', '--progress', 'plain'], {}, { umask: '000' }).code).toBe(0);
    for (const f of filesUnder(s).filter((x) => /state\.db|noop|journal|jsonl/.test(x))) expect(mode(join(s, f)), f).toBe(0o600);
  });

  it('narrows a .smke/ that an older smke created world-readable', () => {
    p.write('p.smke', PIPELINE);
    mkdirSync(join(p.dir, '.smke', 'plans'), { recursive: true });
    chmodSync(join(p.dir, '.smke'), 0o755);
    chmodSync(join(p.dir, '.smke', 'plans'), 0o777);
    expect(p.smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    expect(mode(join(p.dir, '.smke'))).toBe(0o700);
    expect(mode(join(p.dir, '.smke', 'plans'))).toBe(0o700);
  });
});

/** A plan whose only source names env("PASSWD") in a comment: all the cache looks at. */
function fakePlan(dir: string) {
  const file = join(dir, 'p.smke');
  writeFileSync(file, 'smke 1\n# env("PASSWD")\n');
  return { file, projectDir: dir, profile: 'mini', params: {}, instances: [], sources: [{ path: file }] };
}
