// What the runtime's commands do (src/cli only parses their arguments).

import { existsSync, readFileSync, rmSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Plan } from '../compiler/plan.js';
// Only what the no-op fast path needs is imported eagerly; the rest (hashing,
// the scheduler, execa) is loaded by the commands that use it.
import { UsageError } from './errors.js';
import { EventBus } from './events.js';
import { layout, type Layout } from './layout.js';
import { loadPlan, validPlanDigest } from './load.js';
import { release, tryAcquire } from './locks.js';
import { answerNoop, checkSnapshot, dropStaleSnapshots } from './noop.js';
import { chooseRenderer } from './renderers/index.js';
import { colours, seconds, shown } from './renderers/format.js';
import type { StateDb } from './state.js';
import { checkEntry, cleanTmp, listEntries } from './store.js';

/** Exit codes (docs/runtime.md). */
const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

export type Compile = (file: string, o: { profile?: string; set?: Record<string, string>; projectDir: string }) => Promise<{ plan?: Plan; exitCode: number }>;


export interface PipelineArgs {
  file: string;
  profile?: string;
  /** `--set` overrides, already split and checked by the CLI; undefined when there are none. */
  set?: Record<string, string>;
  store?: string;
  planCache?: boolean;
  /** The compiler, called only on a plan-cache miss (the CLI passes a lazy import: it brings chevrotain and ajv). */
  compile: Compile;
}

async function pipeline(a: PipelineArgs): Promise<{ plan?: Plan; exitCode: number }> {
  if (!existsSync(a.file)) throw new UsageError(`no such pipeline file: ${a.file}`);
  const projectDir = process.cwd();
  const compile = a.compile;
  return loadPlan({
    file: a.file,
    profile: a.profile,
    set: a.set,
    projectDir,
    useCache: a.planCache !== false,
    compile: () => compile(a.file, { profile: a.profile, set: a.set, projectDir }),
  });
}

async function guard(name: string, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`smke ${name}: ${e.message}\n`);
      return EXIT.usage;
    }
    if (e instanceof Error && e.name === 'InputError') {
      process.stderr.write(`smke ${name}: ${e.message}\n`);
      return EXIT.failed;
    }
    throw e;
  }
}

// --- run -----------------------------------------------------------------------

export interface RunCliArgs extends PipelineArgs {
  jobs?: number; keepGoing: boolean; dryRun: boolean; only?: string[]; force?: string[];
  gpus?: number; backend?: string; json: boolean; progress?: 'tty' | 'plain'; argv: string[];
  /** Default executor: 'local' or 'slurm' (--executor). */
  executor?: string;
}

export function runCli(a: RunCliArgs): Promise<number> {
  return guard('run', async () => {
    const t0 = performance.now();
    const bus = new EventBus();
    const renderer = chooseRenderer({ json: a.json, progress: a.progress });
    bus.on((e) => renderer.handle(e));
    if (!a.dryRun && !a.only?.length && !a.force?.length && a.planCache !== false) {
      // The no-op fast path: nothing changed since the last all-cached run,
      // so neither the plan nor the compiler is loaded.
      const projectDir = process.cwd();
      const digest = existsSync(a.file) ? validPlanDigest({ file: a.file, profile: a.profile, set: a.set, projectDir }) : undefined;
      const lay = layout(projectDir, a.store);
      const snap = digest && existsSync(lay.dbPath) ? checkSnapshot(lay, digest, process.env) : undefined;
      if (snap) {
        answerNoop(snap, lay, bus, resolve(a.file), a.profile, a.argv, t0);
        await renderer.close();
        return EXIT.ok;
      }
    }
    const { plan, exitCode } = await pipeline(a);
    if (!plan) return exitCode;
    const { runPlan } = await import('./orchestrate.js');
    const controller = new AbortController();
    let interrupts = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      interrupts++;
      if (interrupts === 1) {
        process.stderr.write(`\nsmke: ${sig}: stopping — no new stages; running ones are being stopped (again to quit at once)\n`);
        controller.abort();
      } else process.exit(EXIT.interrupted);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const s = await runPlan({
        plan, bus, store: a.store, jobs: a.jobs, gpus: a.gpus, keepGoing: a.keepGoing, dryRun: a.dryRun,
        only: a.only, force: a.force, backend: a.backend, argv: a.argv, signal: controller.signal, executorName: a.executor,
      });
      await renderer.close();
      return s.exitCode;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}

// --- status and explain -------------------------------------------------------------

async function analysePlan(plan: Plan, store?: string) {
  const { analyse } = await import('./analyse.js');
  const { Digester } = await import('./digest.js');
  const lay = layout(plan.projectDir, store);
  if (!existsSync(lay.smkeDir)) (await import('node:fs')).mkdirSync(lay.smkeDir, { recursive: true });
  const state = await openDb(lay.dbPath);
  try {
    const digester = await Digester.create(state);
    return { lay, analysis: await analyse({ plan, layout: lay, state, digester, env: process.env, repair: false }) };
  } finally {
    state.close();
  }
}

export function statusCli(a: PipelineArgs & { json?: boolean }): Promise<number> {
  return guard('status', async () => {
    const { plan, exitCode } = await pipeline(a);
    if (!plan) return exitCode;
    const { analysis } = await analysePlan(plan, a.store);
    const c = colours(process.stdout);
    if (a.json) {
      for (const i of analysis.items) {
        process.stdout.write(`${JSON.stringify({ instance: i.inst.id, key: i.fp.pending ? null : i.fp.key, action: i.action, reasons: i.reasons })}\n`);
      }
      for (const w of analysis.waiting) {
        process.stdout.write(`${JSON.stringify({ instance: w.inst.id, key: null, action: 'waiting', reasons: [w.reason] })}\n`);
      }
      return EXIT.ok;
    }
    for (const w of analysis.warnings) process.stdout.write(`warning: ${w}\n`);
    // Plan order (upstream first), whether an instance has a key or waits for an input.
    const rows = new Map<string, string>();
    const width = Math.max(8, ...plan.instances.map((i) => i.id.length));
    for (const i of analysis.items) {
      const what = i.action === 'cached' ? c(32, 'cached  ') : c(33, 'will run');
      // A pending key is known only once its upstream has run (early cutoff).
      rows.set(i.inst.id, `${i.inst.id.padEnd(width)}  ${what}  ${i.fp.pending ? '-'.padEnd(12) : i.fp.key.slice(0, 12)}${i.reasons.length ? `  ${i.reasons.join('; ')}` : ''}`);
    }
    for (const w of analysis.waiting) rows.set(w.inst.id, `${w.inst.id.padEnd(width)}  ${c(31, 'waiting ')}  ${'-'.padEnd(12)}  ${w.reason}`);
    for (const i of plan.instances) if (rows.has(i.id)) process.stdout.write(`${rows.get(i.id)}\n`);
    const n = analysis.items.filter((i) => i.action === 'run').length;
    const waiting = analysis.waiting.length ? `, ${analysis.waiting.length} waiting for inputs` : '';
    process.stdout.write(`${analysis.items.length - n} cached, ${n} to run${waiting}\n`);
    return EXIT.ok;
  });
}

export function explainCli(a: PipelineArgs & { stage: string }): Promise<number> {
  return guard('explain', async () => {
    const { plan, exitCode } = await pipeline(a);
    if (!plan) return exitCode;
    const { resolveNames } = await import('./analyse.js');
    const { canonicalJson } = await import('./canonical.js');
    const ids = resolveNames(plan, [a.stage]);
    const { analysis } = await analysePlan(plan, a.store);
    const c = colours(process.stdout);
    const out = (s: string): boolean => process.stdout.write(`${s}\n`);
    for (const id of ids) {
      const i = analysis.byId.get(id);
      if (!i) {
        const w = analysis.waiting.find((x) => x.inst.id === id);
        out(`${c(1, id)}  (${w?.inst.kind ?? '?'})`);
        out(`  status        waiting: ${w?.reason ?? 'no key'} (no key until its inputs exist)`);
        continue;
      }
      const p = i.fp.parts;
      const q = i.prev?.parts;
      const mark = (changed: boolean): string => (q === undefined ? ' ' : changed ? c(33, '*') : ' ');
      out(`${c(1, id)}  (${i.inst.kind})`);
      if (i.fp.pending) out(`  key           not known until ${i.fp.pending.join(', ')} has run: it covers the content of the outputs this stage reads`);
      else out(`  key           ${i.fp.key}${i.prev ? (i.prev.key === i.fp.key ? '  (same as last run)' : `  (last run: ${i.prev.key})`) : '  (never run)'}`);
      out(`  status        ${i.action === 'cached' ? 'cached' : `will run: ${i.reasons.join('; ')}`}`);
      out(`${mark(q?.kind !== p.kind)} kind          ${p.kind}`);
      out(`${mark(q?.kindVersion !== p.kindVersion)} kind version  ${p.kindVersion}${q && q.kindVersion !== p.kindVersion ? `  (was ${q.kindVersion})` : ''}`);
      out(`${mark(q?.storeFormat !== p.storeFormat)} store format  ${p.storeFormat}`);
      out('  params');
      for (const k of Object.keys(i.fp.symbolic).sort()) {
        const changed = q !== undefined && canonicalJson(i.prev!.symbolic[k]) !== canonicalJson(i.fp.symbolic[k]);
        out(`${mark(changed)}   ${k} = ${JSON.stringify(i.fp.symbolic[k])}${changed ? `  (was ${JSON.stringify(i.prev!.symbolic[k]) ?? 'unset'})` : ''}`);
      }
      if (Object.keys(i.fp.upstream).length) out('  upstream');
      for (const [u, k] of Object.entries(i.fp.upstream)) {
        const changed = q !== undefined && i.prev!.upstream[u] !== k;
        out(`${mark(changed)}   ${u}  ${k.slice(0, 12)}${changed ? '  (changed)' : ''}`);
      }
      if (Object.keys(p.inputs).length) out('  inputs');
      for (const [f, d] of Object.entries(p.inputs)) {
        const changed = q !== undefined && q.inputs[f] !== d;
        out(`${mark(changed)}   ${f}  ${d.slice(0, 16)}${changed ? (q.inputs[f] ? '  (changed)' : '  (new)') : ''}`);
      }
      if (q) for (const f of Object.keys(q.inputs)) if (!(f in p.inputs)) out(`${mark(true)}   ${f}  (removed)`);
      if (Object.keys(p.env).length) out('  env');
      for (const [n, v] of Object.entries(p.env)) {
        const changed = q !== undefined && (q.env[n] ?? null) !== v;
        out(`${mark(changed)}   ${n} ${v === null ? '(unset)' : '(set)'}${changed ? '  (changed)' : ''}`);
      }
      out('  not in the key: resources, executor, retries, log level');
      if (q) out(`  ${c(33, '*')} = differs from the last recorded run`);
    }
    return EXIT.ok;
  });
}

// --- log, history --------------------------------------------------------------------

/** better-sqlite3 is loaded only by the commands that read the DB (not by a fast-path no-op). */
async function openDb(path: string): Promise<StateDb> {
  const { StateDb } = await import('./state.js');
  return new StateDb(path);
}

async function openState(): Promise<{ lay: Layout; state: StateDb } | undefined> {
  const lay = layout(process.cwd(), process.env.SMKE_STORE);
  if (!existsSync(lay.dbPath)) return undefined;
  return { lay, state: await openDb(lay.dbPath) };
}

export async function logCli(a: { stage: string; attempt?: number }): Promise<number> {
  const s = await openState();
  if (!s) {
    process.stderr.write('smke log: no runs recorded here (no .smke/state.db in this directory)\n');
    return EXIT.failed;
  }
  try {
    const row = s.state.lastAttempt(a.stage);
    if (!row) {
      process.stderr.write(`smke log: no recorded attempt of '${a.stage}' (smke history lists what ran)\n`);
      return EXIT.failed;
    }
    const path = row.log_path ?? '';
    if (!existsSync(path)) {
      process.stderr.write(`smke log: the log of ${row.instance} (attempt ${row.attempt}) is gone: ${path}\n`);
      return EXIT.failed;
    }
    process.stderr.write(`# ${row.instance}, run ${row.run_id}, attempt ${row.attempt}, ${row.status}: ${shown(path)}\n`);
    process.stdout.write(readFileSync(path));
    return EXIT.ok;
  } finally {
    s.state.close();
  }
}

export async function historyCli(a: { limit: number; json?: boolean }): Promise<number> {
  const s = await openState();
  if (!s) {
    process.stdout.write('no runs recorded yet\n');
    return EXIT.ok;
  }
  try {
    const runs = s.state.runs(a.limit);
    const { attemptTime, runTimes } = await import('./timings.js');
    for (const r of runs) {
      const attempts = s.state.attemptsOfRun(r.id);
      const times = attempts.map((t) => attemptTime(t, s.lay.storeDir));
      if (a.json) {
        process.stdout.write(`${JSON.stringify({ ...r, attempts: attempts.map((t, i) => ({ ...t, ...times[i] })) })}\n`);
        continue;
      }
      const took = r.finished_ms ? seconds((r.finished_ms - r.started_ms) / 1000) : '-';
      const total = runTimes(times);
      const split = total ? `  (stages ${seconds(total.stageSeconds)}, smke overhead ${seconds(total.overheadSeconds)})` : '';
      process.stdout.write(
        `run ${r.id}  ${new Date(r.started_ms).toISOString()}  ${r.status.padEnd(9)}  ${r.ran} ran, ${r.cached} cached, ${r.failed} failed  ${took}${split}  ${shown(r.file)}${r.profile ? ` (${r.profile})` : ''}\n`,
      );
      attempts.forEach((t, i) => {
        const x = times[i]!;
        const time = x.stageSeconds !== undefined ? `  ${seconds(x.seconds!)} = stage ${seconds(x.stageSeconds)} + overhead ${seconds(x.overheadSeconds!)}`
          : x.seconds !== undefined ? `  ${seconds(x.seconds)}` : '';
        const why = t.status === 'failed' ? `  ${t.error ?? ''}${t.log_path ? ` — log: ${shown(t.log_path)}` : ''}` : t.reason ? `  (${t.reason})` : '';
        process.stdout.write(`    ${t.instance}#${t.attempt}  ${t.status}${time}${why}\n`);
      });
    }
    return EXIT.ok;
  } finally {
    s.state.close();
  }
}

// --- gc, verify ------------------------------------------------------------------------

export async function gcCli(a: { keepLast?: number; dryRun: boolean; store?: string }): Promise<number> {
  const lay = layout(process.cwd(), a.store);
  const state = existsSync(lay.dbPath) ? await openDb(lay.dbPath) : undefined;
  try {
    const known = state?.entries() ?? new Map();
    const runs = state?.runs(a.keepLast ?? Number.MAX_SAFE_INTEGER) ?? [];
    // A fast-path no-op run used exactly the entries of the run it repeated (same_as).
    const oldestKept = a.keepLast !== undefined ? Math.min(Infinity, ...runs.map((r) => r.same_as ?? r.id)) : -Infinity;
    // A shared store holds other projects' entries, which this project's
    // records know nothing about: there, only entries we know may go.
    const shared = a.store !== undefined;
    const removable = listEntries(lay.storeDir).filter((k) => {
      const e = known.get(k);
      if (!e) return !shared;
      return e.lastRun < oldestKept;
    });
    let freed = 0;
    for (const k of removable) {
      const dir = join(lay.storeDir, k);
      if (a.dryRun) {
        process.stdout.write(`would remove ${k}${known.get(k) ? ` (${known.get(k).instance})` : ' (no recorded run)'}\n`);
        continue;
      }
      // Never pull an entry from under a run that is using it right now.
      const lock = tryAcquire(join(lay.locksDir, k), 'gc');
      if (!lock.ok) continue;
      try {
        const aside = join(lay.tmpDir, `gc-${k}-${process.pid}`);
        renameSync(dir, aside);
        rmSync(aside, { recursive: true, force: true });
        state?.forgetEntry(k);
        freed++;
      } finally {
        release(join(lay.locksDir, k), lock.info.token);
      }
    }
    const tmp = a.dryRun ? 0 : cleanTmp(lay.tmpDir, lay.locksDir);
    const pruned = a.dryRun || !state ? 0 : state.pruneStatCache((p) => existsSync(p));
    if (!a.dryRun) dropStaleSnapshots(lay);
    process.stdout.write(
      a.dryRun ? `${removable.length} entr${removable.length === 1 ? 'y' : 'ies'} would be removed\n` : `removed ${freed} entr${freed === 1 ? 'y' : 'ies'}${tmp ? ` and ${tmp} leftover temporary director${tmp === 1 ? 'y' : 'ies'}` : ''}` +
            `${pruned ? `; forgot ${pruned} deleted file${pruned === 1 ? '' : 's'} from the stat cache` : ''}\n`,
    );
    return EXIT.ok;
  } finally {
    state?.close();
  }
}

export async function verifyCli(a: { store?: string; json?: boolean }): Promise<number> {
  const lay = layout(process.cwd(), a.store);
  const state = existsSync(lay.dbPath) ? await openDb(lay.dbPath) : undefined;
  try {
    const { Digester } = await import('./digest.js');
    const digester = await Digester.create();
    let bad = 0;
    const keys = listEntries(lay.storeDir);
    for (const k of keys) {
      const r = checkEntry(join(lay.storeDir, k), k, digester);
      if (r.state === 'corrupt') {
        bad++;
        // Forget its signature so the next run re-digests it, finds it corrupt and reruns it.
        state?.forgetEntry(k);
        process.stdout.write(a.json ? `${JSON.stringify({ key: k, problem: r.problem })}\n` : `CORRUPT ${k}: ${r.problem}\n`);
      }
    }
    if (!a.json) {
      process.stdout.write(`${keys.length} entr${keys.length === 1 ? 'y' : 'ies'} checked in ${shown(resolve(lay.storeDir))}, ${bad} corrupted${bad ? ' (the next run reruns them)' : ''}\n`);
    }
    return bad ? EXIT.failed : EXIT.ok;
  } finally {
    state?.close();
  }
}
