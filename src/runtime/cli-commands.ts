// What the runtime's commands do (src/cli only parses their arguments).

import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Plan } from '../compiler/plan.js';
// Only what the no-op fast path needs is imported eagerly; the rest (hashing,
// the scheduler, the executors, the store, locks) is loaded by the commands that use it.
import { EXIT, UsageError } from './errors.js';
import { EventBus } from './events.js';
import { layout, type Layout } from './layout.js';
import { loadPlan, validPlanDigest } from './load-plan.js';
import { answerNoop, checkSnapshot, dropStaleSnapshots, writeEarlyCheckHint } from './noop-snapshot.js';
import { earlyCheckTaken } from './stat-list.js';
import { chooseRenderer } from './renderers/index.js';
import { colours, seconds, shown } from './renderers/display-text.js';
import type { StateDb } from './state.js';
import { privateDb, privateDir, SHOWN_SECRET } from './secrets.js';
import { failureOfRow } from './attempt-failure.js';

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
  jobs?: number;
  keepGoing: boolean;
  dryRun: boolean;
  only?: string[];
  force?: string[];
  gpus?: number;
  backend?: string;
  json: boolean;
  progress?: 'tty' | 'plain';
  argv: string[];
  /** Default executor: 'local' or 'slurm' (--executor). */
  executor?: string;
  /** --remote and --remote-mode (docs/remote-cache.md); smke.json and the environment fill in the rest. */
  remote?: string;
  remoteMode?: string;
}

export function runCli(a: RunCliArgs): Promise<number> {
  return guard('run', async () => {
    const t0 = performance.now();
    const bus = new EventBus();
    const renderer = chooseRenderer({ json: a.json, progress: a.progress });
    bus.on((e) => renderer.handle(e));
    let snapshotChecked: string | undefined;
    if (!a.dryRun && !a.only?.length && !a.force?.length && a.planCache !== false) {
      // The no-op fast path: nothing changed since the last all-cached run,
      // so neither the plan nor the compiler is loaded.
      const projectDir = process.cwd();
      const digest = existsSync(a.file) ? validPlanDigest({ file: a.file, profile: a.profile, set: a.set, projectDir }) : undefined;
      const lay = layout(projectDir, a.store);
      // Only --json prints an event per instance; the other renderers need their number.
      let snap;
      if (digest && existsSync(lay.dbPath)) {
        snap = await checkSnapshot(lay, digest, process.env, { instances: a.json === true });
        snapshotChecked = digest;
      }
      if (snap) {
        answerNoop(snap, lay, bus, resolve(a.file), a.profile, a.argv, t0);
        // Answered without the early check (another run's arguments were the hint): these are now.
        if (!earlyCheckTaken()) {
          try {
            writeEarlyCheckHint(lay, snap.snapshot.plan, a.argv);
          } catch {
            /* a read-only project: no early check */
          }
        }
        await renderer.close();
        return EXIT.ok;
      }
    }
    const { plan, exitCode } = await pipeline(a);
    if (!plan) return exitCode;
    // The first pooled worker starts before the orchestrator's modules load (./pool-start.ts); runPlan closes it.
    const pool = a.dryRun
      ? undefined
      : await (
          await import('./pool-start.js')
        ).prestartPool(plan, { defaultExecutor: a.executor ?? 'local', logsDir: layout(plan.projectDir, a.store).logsDir });
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
      const { runPlan } = await import('./orchestrate.js');
      const remote = (await import('./remote.js')).remoteConfig(plan.projectDir, { url: a.remote, mode: a.remoteMode });
      const s = await runPlan({
        plan,
        bus,
        store: a.store,
        jobs: a.jobs,
        gpus: a.gpus,
        keepGoing: a.keepGoing,
        dryRun: a.dryRun,
        only: a.only,
        force: a.force,
        backend: a.backend,
        argv: a.argv,
        signal: controller.signal,
        executorName: a.executor,
        remote,
        snapshotChecked,
        pool,
      });
      await renderer.close();
      if (!a.dryRun) await writeComparisons(plan, a.store, a.json);
      return s.exitCode;
    } finally {
      pool?.close();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}

/**
 * After a run, the comparison pages of the run this process just recorded
 * (results/<instance>.compare.html: a report beside the previous run's,
 * ./compare.ts). They live outside the store, so a failure here is a
 * warning, never the run's exit code.
 */
async function writeComparisons(plan: Plan, store: string | undefined, json: boolean): Promise<void> {
  try {
    // Only kinds with a `compare` (report.paper) draw a page: other pipelines never reopen the DB here.
    const { registry } = await import('../stages/registry.js');
    if (!plan.instances.some((i) => registry().get(i.kind)?.compare)) return;
    const lay = layout(plan.projectDir, store);
    if (!existsSync(lay.dbPath)) return;
    const state = await openDb(lay, store !== undefined);
    try {
      const run = state.runs(50).find((r) => r.pid === process.pid && r.file === plan.file);
      if (!run) return;
      const { refreshComparisons } = await import('./compare.js');
      for (const p of await refreshComparisons(state, lay, run.id)) {
        const against = p.previousRun === undefined ? ': no earlier run to compare with yet' : ` with run ${p.previousRun}`;
        if (!json) process.stdout.write(`compared ${p.instance}${against}: ${shown(p.path)}\n`);
      }
    } finally {
      state.close();
    }
  } catch (e) {
    process.stderr.write(`warning: the comparison with the previous run was not written: ${(e as Error).message}\n`);
  }
}

// --- status and explain -------------------------------------------------------------

async function analysePlan(plan: Plan, store?: string) {
  const { analyse } = await import('./analyse.js');
  const { Digester } = await import('./digest.js');
  const lay = layout(plan.projectDir, store);
  privateDir(lay.smkeDir);
  const state = await openDb(lay, store !== undefined);
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
    const width = plan.instances.reduce((w, i) => Math.max(w, i.id.length), 8); // not Math.max(...ids): 200k arguments overflow the stack
    for (const i of analysis.items) {
      const what = i.action === 'cached' ? c(32, 'cached  ') : c(33, 'will run');
      // A pending key is known only once its upstream has run (early cutoff).
      rows.set(
        i.inst.id,
        `${i.inst.id.padEnd(width)}  ${what}  ${i.fp.pending ? '-'.padEnd(12) : i.fp.key.slice(0, 12)}${i.reasons.length ? `  ${i.reasons.join('; ')}` : ''}`,
      );
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
    const { secretEnvNames } = await import('./passenv.js');
    const { registry } = await import('../stages/registry.js');
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
      const secrets = secretEnvNames(i.inst, registry().get(i.inst.kind));
      if (secrets.length) out('  passed, not in the key (values never shown)');
      for (const n of secrets) out(`    ${n} ${process.env[n] === undefined ? '(unset)' : SHOWN_SECRET}`);
      out('  not in the key: resources, executor, retries, log level');
      if (q) out(`  ${c(33, '*')} = differs from the last recorded run`);
    }
    return EXIT.ok;
  });
}

// --- log, history --------------------------------------------------------------------

/**
 * better-sqlite3 is loaded only by the commands that read the DB (not by a
 * fast-path no-op). A damaged database is moved aside and rebuilt from the
 * store (./staterepair.ts), with a warning on stderr.
 */
async function openDb(lay: Layout, shared = false, opts: { exclusive?: boolean } = {}): Promise<StateDb> {
  const { openStateDb } = await import('./staterepair.js');
  mkdirSync(lay.smkeDir, { recursive: true });
  const db = openStateDb(lay, (m) => process.stderr.write(`warning: ${m}\n`), shared, opts);
  privateDb(lay.dbPath);
  return db;
}

async function openState(): Promise<{ lay: Layout; state: StateDb } | undefined> {
  const lay = layout(process.cwd(), process.env.SMKE_STORE);
  if (!existsSync(lay.dbPath)) return undefined;
  return { lay, state: await openDb(lay, process.env.SMKE_STORE !== undefined) };
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

export async function historyCli(a: { limit: number; json?: boolean; metrics?: string[] }): Promise<number> {
  const s = await openState();
  if (!s) {
    process.stdout.write('no runs recorded yet\n');
    return EXIT.ok;
  }
  try {
    const runs = s.state.runs(a.limit);
    const { attemptTime, runTimes } = await import('./timings.js');
    const { runMetrics } = a.metrics ? await import('./compare.js') : { runMetrics: undefined };
    for (const r of runs) {
      const attempts = s.state.attemptsOfRun(r.id);
      const times = attempts.map((t) => attemptTime(t, s.lay.storeDir));
      const metrics = runMetrics?.(s.state, s.lay.storeDir, r.id, a.metrics);
      if (a.json) {
        process.stdout.write(
          `${JSON.stringify({ ...r, attempts: attempts.map((t, i) => ({ ...t, failure: failureOfRow(t) ?? null, ...times[i] })), ...(metrics && { metrics: Object.fromEntries(metrics) }) })}\n`,
        );
        continue;
      }
      const took = r.finished_ms ? seconds((r.finished_ms - r.started_ms) / 1000) : '-';
      const total = runTimes(times);
      const split = total ? `  (stages ${seconds(total.stageSeconds)}, smke overhead ${seconds(total.overheadSeconds)})` : '';
      process.stdout.write(
        `run ${r.id}  ${new Date(r.started_ms).toISOString()}  ${r.status.padEnd(9)}  ${r.ran} ran, ${r.cached} cached, ${r.failed} failed  ${took}${split}  ${shown(r.file)}${r.profile ? ` (${r.profile})` : ''}\n`,
      );
      if (a.metrics) {
        const shownMetrics = metrics ? [...metrics].map(([id, v]) => `${id}=${formatMetric(v)}`) : ['(recorded by an older smke)'];
        process.stdout.write(`    metrics  ${shownMetrics.length ? shownMetrics.join('  ') : '(none)'}\n`);
      }
      attempts.forEach((t, i) => {
        const x = times[i]!;
        const time =
          x.stageSeconds !== undefined
            ? `  ${seconds(x.seconds!)} = stage ${seconds(x.stageSeconds)} + overhead ${seconds(x.overheadSeconds!)}`
            : x.seconds !== undefined
              ? `  ${seconds(x.seconds)}`
              : '';
        const why = t.status === 'failed' ? `  ${t.error ?? ''}${t.log_path ? ` — log: ${shown(t.log_path)}` : ''}` : t.reason ? `  (${t.reason})` : '';
        process.stdout.write(`    ${t.instance}#${t.attempt}  ${t.status}${time}${why}\n`);
      });
    }
    return EXIT.ok;
  } finally {
    s.state.close();
  }
}

/** A metric as people read it: up to 4 significant digits, never exponent noise for everyday values. */
function formatMetric(v: number | undefined): string {
  if (v === undefined) return '-';
  if (!Number.isFinite(v)) return String(v);
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

export async function diffCli(a: { runA?: number; runB?: number; json?: boolean; html?: string }): Promise<number> {
  const s = await openState();
  if (!s) {
    process.stderr.write('smke diff: no runs recorded here (no .smke/state.db in this directory)\n');
    return EXIT.failed;
  }
  const { compareRuns, defaultRuns, CompareError } = await import('./compare.js');
  try {
    const [ra, rb] = defaultRuns(s.state, a.runA, a.runB);
    const d = compareRuns(s.state, s.lay.storeDir, ra, rb);
    if (a.html !== undefined) await writeDiffPages(s.state, s.lay.storeDir, ra, rb, a.html, a.json === true);
    if (a.json) {
      process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
      return EXIT.ok;
    }
    const changed = d.instances.filter((i) => i.change !== 'same');
    const same = d.instances.length - changed.length;
    process.stdout.write(`run ${ra} -> run ${rb}: ${changed.length} instance${changed.length === 1 ? '' : 's'} differ, ${same} the same\n`);
    for (const i of changed) {
      const how = i.change === 'changed' ? (i.ranInB ? 'reran' : 'changed (from the store)') : i.change;
      process.stdout.write(`  ${i.instance.padEnd(24)} ${how}${i.reasons.length ? `: ${i.reasons.join('; ')}` : ''}\n`);
    }
    if (d.metrics.length) {
      const rows = d.metrics.map((m) => [
        `${m.instance}.${m.metric}`,
        formatMetric(m.a),
        formatMetric(m.b),
        m.a !== undefined && m.b !== undefined ? formatMetric(m.b - m.a) : '',
      ]);
      const head = ['metric', `run ${ra}`, `run ${rb}`, 'change'];
      const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
      const line = (r: string[]) => `  ${r.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join('  ')}`.trimEnd();
      process.stdout.write(`\n${line(head)}\n${rows.map(line).join('\n')}\n`);
    } else process.stdout.write('no metric differs\n');
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CompareError) {
      process.stderr.write(`smke diff: ${e.message}\n`);
      return EXIT.failed;
    }
    throw e;
  } finally {
    s.state.close();
  }
}

/**
 * `smke diff --html FILE`: run B's report (every instance whose kind draws a
 * comparison page) beside run A's. Several such instances: FILE.<instance>.html each.
 */
async function writeDiffPages(state: StateDb, storeDir: string, ra: number, rb: number, file: string, json: boolean): Promise<void> {
  const { comparisonPages, CompareError } = await import('./compare.js');
  const { safeName } = await import('./layout.js');
  const pages = await comparisonPages(state, storeDir, rb, { runA: ra });
  if (!pages.length)
    throw new CompareError(`run ${rb} has no report to compare (no instance of a kind that draws a comparison page, such as report.paper): drop --html`);
  for (const p of pages) {
    const path = pages.length === 1 ? file : `${file.replace(/\.html?$/i, '')}.${safeName(p.instance)}.html`;
    writeFileSync(path, p.html);
    if (!json) process.stderr.write(`smke diff: ${p.instance} of run ${rb} beside run ${ra}: ${shown(resolve(path))}\n`);
  }
}

// --- gc, verify ------------------------------------------------------------------------

export async function gcCli(a: { keepLast?: number; dryRun: boolean; store?: string; unrecorded?: boolean }): Promise<number> {
  const lay = layout(process.cwd(), a.store);
  // A shared store holds other projects' entries, which this project's
  // records know nothing about: there, only entries we know may go.
  const shared = a.store !== undefined;
  // Opened (created, rebuilt) even when missing: with no records, nothing is provably unused.
  // gc is what a full disk calls for, so it must run on one: the ordinary open needs a
  // shared-memory file, which a full disk refuses; an exclusive open reads without it.
  const { isDiskFull } = await import('./faults.js');
  const { lockPresent, release, tryAcquire } = await import('./locks.js');
  const { removeTree, unsealTree } = await import('./readonly.js');
  const { cleanTmp, listEntries } = await import('./store.js');
  const { resultTargets } = await import('./results.js');
  const state = await openDb(lay, shared).catch((e: unknown) => {
    if (!isDiskFull(e, lay.smkeDir)) throw e;
    return openDb(lay, shared, { exclusive: true });
  });
  try {
    const known = state.entries();
    const runs = state.runs(a.keepLast ?? Number.MAX_SAFE_INTEGER);
    // A fast-path no-op run used exactly the entries of the run it repeated (same_as).
    const oldestKept = a.keepLast !== undefined ? Math.min(Infinity, ...runs.map((r) => r.same_as ?? r.id)) : -Infinity;
    const linked = resultTargets(lay);
    const createdMs = state.createdMs();
    const removable = listEntries(lay.storeDir).filter((k) => {
      if (linked.has(k)) return false;
      const e = known.get(k);
      if (e) return e.lastRun < oldestKept;
      if (shared) return false;
      // Unrecorded and published after this database began: a run died before recording it.
      // Older: a lost database may have known it; only --unrecorded says it may go.
      if (a.unrecorded) return true;
      try {
        return lstatSync(join(lay.storeDir, k)).mtimeMs >= createdMs;
      } catch {
        return false;
      }
    });
    let freed = 0;
    for (const k of removable) {
      const dir = join(lay.storeDir, k);
      if (a.dryRun) {
        process.stdout.write(`would remove ${k}${known.get(k) ? ` (${known.get(k)!.instance})` : ' (no recorded run)'}\n`);
        continue;
      }
      // Never pull an entry from under a run that is using it right now.
      const lockPath = join(lay.locksDir, k);
      let token: string | undefined;
      try {
        const lock = tryAcquire(lockPath);
        if (!lock.ok) continue;
        token = lock.info.token;
      } catch (e) {
        // No room even for a lock file: go on only if no run holds the entry's lock.
        if (!isDiskFull(e, lay.locksDir) || lockPresent(lockPath)) throw e;
      }
      try {
        const aside = join(lay.tmpDir, `gc-${k}-${process.pid}`);
        unsealTree(dir);
        renameSync(dir, aside);
        removeTree(aside);
        freed++;
      } finally {
        if (token) release(lockPath, token);
      }
    }
    const tmp = a.dryRun ? 0 : cleanTmp(lay.tmpDir, lay.locksDir);
    // Space is free now: the records can be written even if the disk was full.
    let pruned = 0;
    if (!a.dryRun) {
      dropStaleSnapshots(lay);
      try {
        state.transaction(() => {
          for (const k of removable) if (!existsSync(join(lay.storeDir, k))) state.forgetEntry(k);
        });
        pruned = state.pruneStatCache((p) => existsSync(p));
      } catch (e) {
        // The entries are gone either way; the rows of removed ones are harmless and go next time.
        if (!isDiskFull(e, lay.smkeDir)) throw e;
        process.stderr.write('warning: the disk is still full: the state database was not updated (the next gc does it)\n');
      }
    }
    process.stdout.write(
      a.dryRun
        ? `${removable.length} entr${removable.length === 1 ? 'y' : 'ies'} would be removed\n`
        : `removed ${freed} entr${freed === 1 ? 'y' : 'ies'}${tmp ? ` and ${tmp} leftover temporary director${tmp === 1 ? 'y' : 'ies'}` : ''}` +
            `${pruned ? `; forgot ${pruned} deleted file${pruned === 1 ? '' : 's'} from the stat cache` : ''}\n`,
    );
    return EXIT.ok;
  } finally {
    state.close();
  }
}

/** `smke gc --remote`: the remote cache's retention rule (./remote.ts `collect`). */
export function remoteGcCli(a: { url?: string; keepDays: number; dryRun: boolean; store?: string }): Promise<number> {
  return guard('gc', () => collectRemote(a));
}

async function collectRemote(a: { url?: string; keepDays: number; dryRun: boolean; store?: string }): Promise<number> {
  const { remoteConfig, RemoteStore, RemoteError } = await import('./remote.js');
  const lay = layout(process.cwd(), a.store);
  // --remote alone means the configured remote, whatever its mode says about runs.
  const config = remoteConfig(lay.projectDir, { url: a.url, mode: 'read-write' });
  if (!config) throw new UsageError('no remote cache is configured: give --remote s3://bucket/prefix, or set "remote" in smke.json (docs/remote-cache.md)');
  const remote = new RemoteStore(config);
  const state = existsSync(lay.dbPath) ? await openDb(lay, a.store !== undefined) : undefined;
  try {
    // What this project's last run used stays, however old: the next run here needs it.
    const last = state?.runs(1)[0];
    const protect = new Set([...(last ? (state!.runInstances(last.id)?.values() ?? []) : [])].map((u) => u.key));
    const r = await remote.collect({ keepDays: a.keepDays, protect, dryRun: a.dryRun });
    for (const k of r.removed) process.stdout.write(`${a.dryRun ? 'would remove' : 'removed'} ${k}\n`);
    for (const k of r.orphans) process.stdout.write(`${a.dryRun ? 'would remove' : 'removed'} ${k} (an upload that never finished)\n`);
    process.stdout.write(
      `${remote.describe()}: ${r.removed.length} entr${r.removed.length === 1 ? 'y' : 'ies'} older than ${a.keepDays} day${a.keepDays === 1 ? '' : 's'} ${a.dryRun ? 'would be ' : ''}removed, ${r.kept} kept\n`,
    );
    return EXIT.ok;
  } catch (e) {
    if (e instanceof RemoteError || (e as { $metadata?: unknown }).$metadata !== undefined || (e as Error).name === 'CredentialsProviderError') {
      process.stderr.write(`smke gc: remote cache ${remote.describe()}: ${(e as Error).message}\n`);
      return EXIT.failed;
    }
    throw e;
  } finally {
    remote.close();
    state?.close();
  }
}

export async function verifyCli(a: { store?: string; json?: boolean }): Promise<number> {
  const lay = layout(process.cwd(), a.store);
  const state = existsSync(lay.dbPath) ? await openDb(lay, a.store !== undefined) : undefined;
  try {
    const { Digester } = await import('./digest.js');
    const { checkEntry, listEntries } = await import('./store.js');
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
      process.stdout.write(
        `${keys.length} entr${keys.length === 1 ? 'y' : 'ies'} checked in ${shown(resolve(lay.storeDir))}, ${bad} corrupted${bad ? ' (the next run reruns them)' : ''}\n`,
      );
    }
    return bad ? EXIT.failed : EXIT.ok;
  } finally {
    state?.close();
  }
}
