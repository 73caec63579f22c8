// Plan loading for the commands: the plan cache first, the compiler on a miss.
import type { Plan } from '../compiler/plan.js';
import { KIND_VERSIONS } from '../stages/kind-versions.js';
import { layout } from './layout.js';
import { cachedPlanDigest, loadCachedPlan, storeCachedPlan } from './plancache.js';
import { smkeVersion } from './version.js';

export interface LoadPlanOptions {
  file: string;
  profile?: string;
  set?: Record<string, string>;
  projectDir: string;
  /** Compiles on a cache miss (prints diagnostics itself); imported lazily by the caller. */
  compile: () => Promise<{ plan?: Plan; exitCode: number }>;
  env?: Record<string, string | undefined>;
  useCache?: boolean;
}

/** Every kind's version, without loading any kind (the no-op fast path checks them). */
export function kindVersions(): Record<string, number> {
  return { ...KIND_VERSIONS };
}

/** The cached plan's digest if the cache is valid for these options, without loading the plan. */
export function validPlanDigest(o: Omit<LoadPlanOptions, 'compile'>): string | undefined {
  const key = { file: o.file, profile: o.profile, set: o.set, projectDir: o.projectDir };
  return cachedPlanDigest(layout(o.projectDir).plansDir, key, kindVersions(), smkeVersion(), o.env ?? process.env);
}

export async function loadPlan(o: LoadPlanOptions): Promise<{ plan?: Plan; exitCode: number; fromCache: boolean }> {
  const env = o.env ?? process.env;
  const kinds = kindVersions();
  const plansDir = layout(o.projectDir).plansDir;
  const key = { file: o.file, profile: o.profile, set: o.set, projectDir: o.projectDir };
  if (o.useCache !== false) {
    const plan = loadCachedPlan(plansDir, key, kinds, smkeVersion(), env);
    if (plan) return { plan, exitCode: 0, fromCache: true };
  }
  const r = await o.compile();
  if (r.plan) {
    try {
      storeCachedPlan(plansDir, key, r.plan, kinds, smkeVersion(), env);
    } catch {
      // A read-only project still runs; it only compiles every time.
    }
  }
  return { ...r, fromCache: false };
}
