// The compiled-plan cache. A no-op `smke run` of a 10,000-stage pipeline must
// not pay for chevrotain and ajv: the Plan is stored under .smke/plans/, keyed
// by the root file, profile and --set, and reused while every source file
// read by the compiler has the same sha256 (or, past the racy window, the same
// stat signature), every kind has the same version,
// smke has the same version, and every environment variable the sources
// mention in `env("NAME")` has the same value. Those values are kept as HMACs
// under the project key, never in clear (./secrets.ts): a comment that names
// env("HF_TOKEN") must not copy the token to disk. The files are 0600 in a
// 0700 directory: the plan itself holds resolved parameters.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Plan } from '../compiler/plan.js';
import { canonicalJson } from './canonical.js';
import { isRacy, signature } from './signature.js';
import { keyedEnvDigest, privateDir, projectKeyFor, writePrivateFile } from './secrets.js';

interface CacheFile {
  smke: string;
  kinds: Record<string, number>;
  /**
   * Every file the compiler read. `sig`, its stat signature when the cache was written, lets a
   * later check trust an unchanged file without reading it (as the no-op's stat list does); it is
   * left out when the file was modified within the racy window, and then the file is hashed.
   */
  sources: { path: string; sha256: string; sig?: string }[];
  /** Name -> keyedEnvDigest of its value (null when unset). */
  env: Record<string, string | null>;
  plan: Plan;
}

export interface PlanCacheKey {
  file: string;
  profile?: string;
  set?: Record<string, string>;
  projectDir: string;
}

const digests = new WeakMap<object, string>();

/**
 * The sha256 of the cached plan's file, for plans that came from (or went
 * into) the cache: the identity the no-op fast path checks (./noop-snapshot.ts).
 */
export function planDigest(plan: Plan): string | undefined {
  return digests.get(plan);
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function headPath(plansDir: string, k: PlanCacheKey): string {
  return cachePath(plansDir, k).replace(/\.json$/, '.head.json');
}

function cachePath(plansDir: string, k: PlanCacheKey): string {
  return join(plansDir, `${sha256(canonicalJson({ file: resolve(k.file), profile: k.profile ?? null, set: k.set ?? {}, dir: k.projectDir }))}.json`);
}

/** Names of environment variables the sources read through `env("NAME", ...)`. */
function envNames(texts: string[]): string[] {
  const names = new Set<string>();
  for (const t of texts) for (const m of t.matchAll(/\benv\(\s*["']([^"']+)["']/g)) names.add(m[1]!);
  return [...names].sort();
}

export function loadCachedPlan(
  plansDir: string,
  k: PlanCacheKey,
  kinds: Record<string, number>,
  smke: string,
  env: Record<string, string | undefined>,
): Plan | undefined {
  let c: CacheFile;
  let text: string;
  try {
    text = readFileSync(cachePath(plansDir, k), 'utf8');
    c = JSON.parse(text) as CacheFile;
  } catch {
    return undefined;
  }
  if (!valid(plansDir, c, kinds, smke, env)) return undefined;
  const plan = c.plan;
  const digest = sha256(text);
  digests.set(plan, digest);
  if (!existsSync(headPath(plansDir, k))) {
    const { plan: _plan, ...head } = c;
    try {
      writePrivateFile(headPath(plansDir, k), JSON.stringify({ ...head, planDigest: digest }));
    } catch {
      /* read-only: no fast path */
    }
  }
  return plan;
}

/** The digest of the cached plan, if the cache is still valid, without reading the plan itself. */
export function cachedPlanDigest(
  plansDir: string,
  k: PlanCacheKey,
  kinds: Record<string, number>,
  smke: string,
  env: Record<string, string | undefined>,
): string | undefined {
  let h: Omit<CacheFile, 'plan'> & { planDigest: string };
  try {
    h = JSON.parse(readFileSync(headPath(plansDir, k), 'utf8')) as typeof h;
  } catch {
    return undefined;
  }
  return valid(plansDir, h, kinds, smke, env) ? h.planDigest : undefined;
}

function valid(plansDir: string, c: Omit<CacheFile, 'plan'>, kinds: Record<string, number>, smke: string, env: Record<string, string | undefined>): boolean {
  if (c.smke !== smke || canonicalJson(c.kinds) !== canonicalJson(kinds)) return false;
  for (const s of c.sources) {
    try {
      if (s.sig !== undefined && signature(statSync(s.path, { bigint: true })) === s.sig) continue;
      if (sha256(readFileSync(s.path)) !== s.sha256) return false;
    } catch {
      return false;
    }
  }
  const names = Object.keys(c.env);
  if (names.length === 0) return true;
  const key = projectKeyFor(plansDir);
  for (const n of names) if (keyedEnvDigest(key, env[n]) !== c.env[n]) return false;
  return true;
}

export function storeCachedPlan(
  plansDir: string,
  k: PlanCacheKey,
  plan: Plan,
  kinds: Record<string, number>,
  smke: string,
  env: Record<string, string | undefined>,
): void {
  // Without the list of sources there is nothing to validate the cache against.
  if (plan.sources.length === 0) return;
  const texts: string[] = [];
  const sources = plan.sources.map((s) => {
    // Stat first: a write after it changes what a later check sees, never what this one vouches for.
    const st = statSync(s.path, { bigint: true });
    const buf = readFileSync(s.path);
    texts.push(buf.toString('utf8'));
    return { path: resolve(s.path), sha256: sha256(buf), ...(!isRacy(st) && { sig: signature(st) }) };
  });
  const envValues: Record<string, string | null> = {};
  const names = envNames(texts);
  if (names.length) {
    privateDir(plansDir);
    const key = projectKeyFor(plansDir);
    for (const n of names) envValues[n] = keyedEnvDigest(key, env[n]);
  }
  const c: CacheFile = { smke, kinds, sources, env: envValues, plan };
  privateDir(dirname(plansDir));
  privateDir(plansDir);
  const path = cachePath(plansDir, k);
  const text = JSON.stringify(c);
  writePrivateFile(path, text);
  const digest = sha256(text);
  digests.set(plan, digest);
  // The head: what validates the plan, without the plan (a few hundred bytes
  // instead of megabytes), for the no-op fast path.
  const { plan: _plan, ...head } = c;
  writePrivateFile(headPath(plansDir, k), JSON.stringify({ ...head, planDigest: digest }));
}
