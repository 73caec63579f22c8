// Opening the state database when it may be damaged or gone. The store, not
// the database, is the source of truth for results (every entry carries its
// manifest), so a damaged database is moved aside (never deleted: it may
// still be read by hand), a new one is started, and what the manifests can
// tell is rebuilt: the last fingerprint of each stage instance, so `status`
// and `explain` still say why something will run. Run history and attempt
// logs are lost with the old file; entries are re-checked against their
// manifests on first use (the stat signatures were in the old file too).

import { existsSync, renameSync } from 'node:fs';
import { keyRecord, type CacheKey } from './cache-key.js';
import type { Fingerprint } from './fingerprint.js';
import type { Layout } from './layout.js';
import { damaged, StateDb } from './state.js';
import { listEntries, readManifest } from './store.js';
import { resultTargets } from './results.js';

/** Move a damaged database (and its WAL and shared-memory files) aside; returns the new name. */
export function moveAside(dbPath: string): string {
  const aside = `${dbPath}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(dbPath + suffix)) renameSync(dbPath + suffix, aside + suffix);
  }
  return aside;
}

/**
 * Rebuild the last fingerprint of each instance from the manifests of the
 * store's entries (the newest entry of an instance wins). With a shared store
 * only the entries this project's results/ links point to are read: the
 * others belong to other projects.
 */
export function rebuildFromStore(state: StateDb, lay: Layout, shared: boolean): { manifests: number; instances: number } {
  const keys = shared ? [...resultTargets(lay)] : listEntries(lay.storeDir);
  const newest = new Map<string, { finished: string; row: { instance: string; stage: string; key: CacheKey; fingerprint: string } }>();
  let manifests = 0;
  for (const key of keys) {
    const m = readManifest(`${lay.storeDir}/${key}`);
    if (!m || m.key !== key || typeof m.instance !== 'string') continue;
    manifests++;
    const finished = String(m.timings?.finished ?? '');
    const prev = newest.get(m.instance);
    if (prev && prev.finished >= finished) continue;
    const upstream = keyRecord(m.upstream ?? {});
    if (!upstream) continue;
    const fp: Fingerprint = { key, parts: m.fingerprint, upstream, symbolic: m.params ?? {} };
    newest.set(m.instance, { finished, row: { instance: m.instance, stage: m.stage, key, fingerprint: JSON.stringify(fp) } });
  }
  if (newest.size === 0) return { manifests, instances: 0 };
  state.transaction(() => {
    const runId = state.startRun('(rebuilt from the store)', undefined, []);
    for (const { row } of newest.values()) state.recordFingerprint({ ...row, run_id: runId });
    state.finishRun(runId, 'rebuilt', { ran: 0, cached: 0, failed: 0 });
  });
  return { manifests, instances: newest.size };
}

/**
 * Open the state database of `lay`. A damaged one is moved aside and replaced;
 * a new one (first run, or the file was deleted) over a store that has
 * entries gets the fingerprints rebuilt. `warn` says what happened.
 */
export function openStateDb(lay: Layout, warn: (message: string) => void, shared = false, opts: { exclusive?: boolean } = {}): StateDb {
  let state: StateDb;
  let problem: string | undefined;
  try {
    state = new StateDb(lay.dbPath, opts);
  } catch (e) {
    const d = damaged(lay.dbPath, e);
    if (!d) throw e;
    const aside = moveAside(lay.dbPath);
    state = new StateDb(lay.dbPath, opts);
    problem = `${d.problem}: moved it to ${aside} (kept for inspection) and started a new one`;
  }
  if (!state.fresh) return state;
  const r = rebuildFromStore(state, lay, shared);
  if (problem || r.manifests) {
    warn(
      `${problem ? `the state database ${lay.dbPath} ${problem}` : `the state database ${lay.dbPath} was missing: started a new one`}; ` +
        `rebuilt the last fingerprints of ${r.instances} stage instance${r.instances === 1 ? '' : 's'} from ${r.manifests} store manifest${r.manifests === 1 ? '' : 's'}. ` +
        'Run history from before is not in it; store entries are re-checked against their manifests on first use, and gc keeps every entry older than the new database ' +
        '(smke gc --unrecorded removes those no results/ link points to).',
    );
  }
  return state;
}
