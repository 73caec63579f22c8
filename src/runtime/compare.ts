// Comparing two recorded runs (`smke diff`, `smke history --metrics`): which
// instances changed and why, and which metrics moved. Everything is read from
// the state DB (which instance used which key in each run) and the store's
// manifests (fingerprint parts and final metrics of each key); nothing is
// recomputed, so a comparison says what the runs actually used.

import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ComparedRun } from '../stages/stage-kind.js';
import { diffFingerprints } from './fingerprint.js';
import { safeName, type Layout } from './layout.js';
import type { RunRow, StateDb } from './state.js';
import { readManifest, type Manifest } from './store.js';

export interface InstanceDiff {
  instance: string;
  change: 'added' | 'removed' | 'changed' | 'same';
  keyA?: string;
  keyB?: string;
  /** Whether run B executed the instance (rather than taking it from the store). */
  ranInB: boolean;
  /** For `changed`: the fingerprint parts that differ ("param lr: 0.001 -> 0.003"). */
  reasons: string[];
}

export interface MetricDiff {
  instance: string;
  metric: string;
  a?: number;
  b?: number;
}

export interface RunDiff {
  runA: number;
  runB: number;
  instances: InstanceDiff[];
  /** Every final metric whose value differs (or exists in one run only). */
  metrics: MetricDiff[];
}

export class CompareError extends Error {}

/** The two runs `smke diff` compares when none (or one) is named: the last two (or that one and its predecessor). */
export function defaultRuns(state: StateDb, a?: number, b?: number): [number, number] {
  if (a !== undefined && b !== undefined) return [a, b];
  const recent = state
    .runs(1_000)
    .filter((r) => r.status !== 'running')
    .map((r) => r.id);
  if (a !== undefined) {
    const before = recent.find((id) => id < a);
    if (before === undefined) throw new CompareError(`run ${a} has no earlier run to compare with: name two runs (smke history lists them)`);
    return [before, a];
  }
  if (recent.length < 2)
    throw new CompareError(`${recent.length === 0 ? 'no finished run is' : 'only one finished run is'} recorded here: run the pipeline twice, then compare`);
  return [recent[1]!, recent[0]!];
}

/** Reads each key's manifest once. */
function manifestReader(storeDir: string): (key: string | undefined) => Manifest | undefined {
  const cache = new Map<string, Manifest | undefined>();
  return (key) => {
    if (key === undefined) return undefined;
    if (!cache.has(key)) cache.set(key, readManifest(join(storeDir, key)));
    return cache.get(key);
  };
}

function instancesOf(state: StateDb, run: number): Map<string, { key: string; ran: boolean }> {
  if (!state.run(run)) throw new CompareError(`no run ${run} is recorded here (smke history lists the runs)`);
  const used = state.runInstances(run);
  if (!used) throw new CompareError(`run ${run} was recorded by an older smke, which did not keep what each run used: compare runs made since`);
  return used;
}

/**
 * The upstream keys an entry's instance had in a run, from the run's own
 * record. A manifest's `upstream` may name a key the upstream had before it
 * ran (a downstream entry of a cold run can record a provisional one that was
 * never published), which made every upstream of the report look changed.
 */
function usedUpstream(m: Manifest, used: Map<string, { key: string }>): Record<string, string> {
  return Object.fromEntries(Object.entries(m.upstream ?? {}).map(([id, key]) => [id, used.get(id)?.key ?? key]));
}

export function compareRuns(state: StateDb, storeDir: string, runA: number, runB: number): RunDiff {
  const a = instancesOf(state, runA);
  const b = instancesOf(state, runB);
  const manifest = manifestReader(storeDir);
  const instances: InstanceDiff[] = [];
  const metrics: MetricDiff[] = [];
  for (const instance of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const ia = a.get(instance);
    const ib = b.get(instance);
    const change = !ia ? 'added' : !ib ? 'removed' : ia.key === ib.key ? 'same' : 'changed';
    const d: InstanceDiff = { instance, change, keyA: ia?.key, keyB: ib?.key, ranInB: ib?.ran === true, reasons: [] };
    const ma = manifest(ia?.key);
    const mb = manifest(ib?.key);
    if (change === 'changed') {
      if (ma && mb) {
        d.reasons = diffFingerprints(
          { key: ma.key, parts: ma.fingerprint, upstream: usedUpstream(ma, a), symbolic: ma.params },
          { key: mb.key, parts: mb.fingerprint, upstream: usedUpstream(mb, b), symbolic: mb.params },
        );
      } else {
        d.reasons = [`the store entry of run ${ma ? runB : runA} is gone (smke gc): its parts cannot be compared`];
      }
    }
    instances.push(d);
    if (change === 'same') continue; // same key, same entry: same metrics
    const ra = ma?.metrics ?? {};
    const rb = mb?.metrics ?? {};
    for (const metric of [...new Set([...Object.keys(ra), ...Object.keys(rb)])].sort()) {
      const va = ra[metric];
      const vb = rb[metric];
      if (va !== vb && !(Number.isNaN(va) && Number.isNaN(vb))) metrics.push({ instance, metric, a: va, b: vb });
    }
  }
  return { runA, runB, instances, metrics };
}

/** `*` matches any run of characters; nothing else is special (instance ids contain brackets). */
function wildcard(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

/**
 * The metrics `smke history --metrics` shows for a run, as `instance.metric`
 * -> value. With patterns (`eval*.top1`, `glue[*].accuracy`): every final
 * metric that matches one. Without: the headline, the metrics of the run's
 * last stages (instances no other instance of the run reads from, such as
 * the report). Undefined for runs recorded by an older smke.
 */
export function runMetrics(state: StateDb, storeDir: string, run: number, patterns: string[] = []): Map<string, number> | undefined {
  const used = state.runInstances(run);
  if (!used) return undefined;
  const manifest = manifestReader(storeDir);
  const read = new Set<string>();
  for (const { key } of used.values()) for (const up of Object.keys(manifest(key)?.upstream ?? {})) read.add(up);
  const res = patterns.map(wildcard);
  const out = new Map<string, number>();
  for (const instance of [...used.keys()].sort()) {
    const metrics = manifest(used.get(instance)!.key)?.metrics ?? {};
    for (const [name, value] of Object.entries(metrics).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) {
      const id = `${instance}.${name}`;
      if (res.length ? res.some((r) => r.test(id)) : !read.has(instance)) out.set(id, value);
    }
  }
  return out;
}

// ---- comparison pages -------------------------------------------------------
//
// A kind with a `compare` hook (report.paper) renders its output of one run
// beside the same instance's output of an earlier run. The page depends on
// run history, which is in no cache key, so it never goes into the store:
// `smke run` writes it to results/<instance>.compare.html, `smke diff --html`
// wherever it is told.

export interface ComparisonPage {
  instance: string;
  /** The earlier run the page compares with; undefined: there was none. */
  previousRun?: number;
  html: string;
}

/** Earlier finished runs of the same pipeline file and profile that recorded what they used, newest first. */
function earlierRuns(state: StateDb, run: RunRow): RunRow[] {
  return state
    .runs(1_000)
    .filter((r) => r.id < run.id && r.status !== 'running' && r.file === run.file && (r.profile ?? null) === (run.profile ?? null))
    .filter((r) => state.runInstances(r.id) !== undefined);
}

function comparedRun(state: StateDb, storeDir: string, run: number, key: string): ComparedRun {
  const row = state.run(run)!;
  const dir = join(storeDir, key);
  return {
    run,
    started: new Date(row.started_ms).toISOString(),
    ...(row.profile && { profile: row.profile }),
    key,
    ...(readManifest(dir) && { dir }),
  };
}

/**
 * The comparison page of every instance of run B whose kind can draw one.
 * Each is compared with run A when given (`smke diff A B --html`), else
 * with the latest earlier run of the same pipeline that used the instance.
 */
export async function comparisonPages(
  state: StateDb,
  storeDir: string,
  runB: number,
  o: { runA?: number; want?: (instance: string) => boolean } = {},
): Promise<ComparisonPage[]> {
  const runA = o.runA;
  const used = instancesOf(state, runB);
  const { registry } = await import('../stages/registry.js');
  const manifest = manifestReader(storeDir);
  const earlier = runA === undefined ? earlierRuns(state, state.run(runB)!) : [];
  const changesSince = new Map<number, string[]>();
  const pages: ComparisonPage[] = [];
  for (const [instance, { key }] of [...used].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) {
    const kind = registry().get(manifest(key)?.kind ?? '');
    if (!kind?.compare || (o.want && !o.want(instance))) continue;
    const prevRun =
      runA !== undefined ? (state.runInstances(runA)?.has(instance) ? runA : undefined) : earlier.find((r) => state.runInstances(r.id)!.has(instance))?.id;
    const prevKey = prevRun === undefined ? undefined : state.runInstances(prevRun)?.get(instance)?.key;
    let changes: string[] = [];
    if (prevRun !== undefined) {
      if (!changesSince.has(prevRun))
        changesSince.set(
          prevRun,
          compareRuns(state, storeDir, prevRun, runB)
            .instances.filter((i) => i.change !== 'same')
            .map((i) => `${i.instance}: ${i.reasons.length ? i.reasons.join('; ') : i.change}`),
        );
      changes = changesSince.get(prevRun)!;
    }
    const current = { ...comparedRun(state, storeDir, runB, key), dir: join(storeDir, key) };
    const previous = prevKey === undefined ? undefined : comparedRun(state, storeDir, prevRun!, prevKey);
    pages.push({ instance, previousRun: previous?.run, html: await kind.compare({ instance, current, previous, changes }) });
  }
  return pages;
}

/** Where `smke run` keeps an instance's comparison page: beside its results/ link, never in the store. */
export function comparisonPath(lay: Pick<Layout, 'resultsDir'>, instance: string): string {
  return join(lay.resultsDir, `${safeName(instance)}.compare.html`);
}

function sameInstances(a: Map<string, { key: string }>, b: Map<string, { key: string }>): boolean {
  return a.size === b.size && [...a].every(([i, u]) => b.get(i)?.key === u.key);
}

/**
 * After `smke run`: when the run used other entries than the previous run
 * of the same pipeline (or is its first), write each comparison page, so
 * results/<instance>.compare.html always compares the results of the last
 * run that changed something with what came before. A run that changed
 * nothing keeps the pages (they still describe the results); a missing page
 * is written anyway. Returns the pages written, with their paths.
 */
export async function refreshComparisons(
  state: StateDb,
  lay: Pick<Layout, 'resultsDir' | 'storeDir'>,
  runB: number,
): Promise<(ComparisonPage & { path: string })[]> {
  const run = state.run(runB);
  const used = state.runInstances(runB);
  if (!run || !used?.size) return [];
  const last = earlierRuns(state, run)[0];
  const changed = !last || !sameInstances(used, state.runInstances(last.id)!);
  const written: (ComparisonPage & { path: string })[] = [];
  const want = (instance: string): boolean => changed || !existsSync(comparisonPath(lay, instance));
  for (const page of await comparisonPages(state, lay.storeDir, runB, { want })) {
    const path = comparisonPath(lay, page.instance);
    mkdirSync(lay.resultsDir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, page.html);
    renameSync(tmp, path);
    written.push({ ...page, path });
  }
  return written;
}
