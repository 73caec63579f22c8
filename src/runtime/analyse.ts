// From a Plan to "what must run and why": fingerprints in topological order,
// store lookups, and reasons diffed against each instance's last recorded
// run. Shared by `smke run`, `run --dry-run`, `status` and `explain`, so the
// reasons they print can never disagree.

import { join } from 'node:path';
import type { Plan, StageInstance } from '../compiler/plan.js';
import type { CacheKey } from './cache-key.js';
import { InputError, type Digester } from './digest.js';
import { diffFingerprints, fingerprint, outputDigest, type ComparedFingerprint, type Fingerprint } from './fingerprint.js';
import { registry } from '../stages/registry.js';
import type { Layout } from './layout.js';
import type { EntryFile, StateDb } from './state.js';
import { checkEntry, quarantine } from './store.js';
import { bootId, signatureTrusted } from './durability.js';

import { UsageError } from './errors.js';

export { UsageError };

export interface Analysed {
  inst: StageInstance;
  fp: Fingerprint;
  /** The last recorded fingerprint of this instance, if any (parsed on first use; read for reasons, its keys as recorded). */
  readonly prev?: ComparedFingerprint;
  /** Its key, without parsing it. */
  prevKey?: string;
  action: 'cached' | 'run';
  reasons: string[];
  /** Store files as verified now (for cached instances). */
  files?: EntryFile[];
  /** The entry was only verified by a full re-digest: record its signature. */
  verified?: boolean;
  /** Set by the run when a pending key was settled: the upstreams that ran first. */
  cutoffFrom?: string[];
}

/**
 * An instance that has no key yet: a declared input is missing (a dataset the
 * user must place by hand, say), or an upstream instance is in that state.
 */
export interface Waiting {
  inst: StageInstance;
  /** `needs data/x.tar.gz (does not exist ...)`, or `waits for flickr30k`. */
  reason: string;
}

/** `smke run` with instances still waiting for inputs; reported like a missing input (exit 1). */
export class MissingInputsError extends Error {
  constructor(waiting: Waiting[]) {
    // The stages whose own inputs are missing, then how many wait behind them.
    const roots = waiting.filter((w) => w.reason.startsWith('needs '));
    const behind = waiting.length - roots.length;
    super(
      `inputs are missing, so nothing was started:\n` +
        roots.map((w) => `  ${w.inst.id}: ${w.reason}`).join('\n') +
        (behind ? `\n  (and ${behind} stage instance${behind === 1 ? '' : 's'} downstream of them)` : '') +
        `\nplace the missing files (or fix the stages' inputs) and run again; 'smke status' shows what waits for what`,
    );
    this.name = 'InputError';
  }
}

export interface Analysis {
  items: Analysed[];
  byId: Map<string, Analysed>;
  /** Selected instances that cannot be fingerprinted yet, in topological order. */
  waiting: Waiting[];
  warnings: string[];
}

/** Instance ids for names given on the command line: an instance id, or a stage name (all its cells). */
export function resolveNames(plan: Plan, names: string[]): Set<string> {
  const ids = new Set<string>();
  const byStage = new Map<string, string[]>();
  for (const i of plan.instances) {
    let l = byStage.get(i.stage);
    if (!l) byStage.set(i.stage, (l = []));
    l.push(i.id);
  }
  const known = new Set(plan.instances.map((i) => i.id));
  for (const n of names) {
    if (known.has(n)) ids.add(n);
    else if (byStage.has(n)) for (const id of byStage.get(n)!) ids.add(id);
    else {
      const stages = [...byStage.keys()];
      const close = stages.find((s) => s.startsWith(n) || n.startsWith(s)) ?? stages.find((s) => s.toLowerCase() === n.toLowerCase());
      throw new UsageError(`no stage or instance named '${n}'${close ? ` (did you mean '${close}'?)` : ''}; stages: ${stages.join(', ')}`);
    }
  }
  return ids;
}

/** `ids` plus everything they need upstream (references and `after`). */
export function withUpstream(plan: Plan, ids: Set<string>): Set<string> {
  const byId = new Map(plan.instances.map((i) => [i.id, i]));
  const out = new Set<string>();
  const stack = [...ids];
  while (stack.length) {
    const id = stack.pop()!;
    if (out.has(id)) continue;
    out.add(id);
    const inst = byId.get(id);
    if (!inst) continue;
    for (const r of inst.refs) stack.push(r.instance);
    for (const a of inst.after) stack.push(a);
  }
  return out;
}

/**
 * Content digests of upstream outputs for fingerprint(): `filesOf(id)` gives
 * the verified files of the store entry an instance uses now (undefined while
 * it has not run). The output's path inside the entry comes from its kind.
 */
export function upstreamOutputs(
  byId: ReadonlyMap<string, StageInstance>,
  filesOf: (id: string) => readonly EntryFile[] | undefined,
): (instance: string, output: string) => string | undefined {
  return (instance, output) => {
    const files = filesOf(instance);
    const up = byId.get(instance);
    if (!files || !up) return undefined;
    const spec = registry().get(up.kind)?.outputs(up.params)[output];
    return outputDigest(files, spec?.path ?? '.');
  };
}

/** Why a pending instance (fingerprint.pending) is planned to run: its upstream runs first. */
function pendingReasons(ids: string[], prev: ComparedFingerprint | undefined, cur: Fingerprint, byId: ReadonlyMap<string, Analysed>): string[] {
  // An upstream that is pending itself has only a placeholder key: comparing it says nothing.
  const changed = (id: string): boolean => !byId.get(id)?.fp.pending && prev?.upstream[id] !== undefined && prev.upstream[id] !== cur.upstream[id];
  return ids.map((id) => `upstream ${id} ${changed(id) ? 'changed' : 'reruns'} (cut off if its output is unchanged)`);
}

/** What a pending instance whose key, once known, was in the store says; `ran`: the upstreams that ran in this run. */
export function cutoffReason(ids: string[], ran: ReadonlySet<string>): string {
  const reran = ids.filter((id) => ran.has(id));
  const same = ids.filter((id) => !ran.has(id));
  return (
    [...(reran.length ? [`upstream ${reran.join(', ')} reran, output unchanged`] : []), ...(same.length ? [`upstream ${same.join(', ')} unchanged`] : [])].join(
      ', ',
    ) + ': cut off'
  );
}

export function deps(inst: StageInstance): string[] {
  return [...new Set([...inst.refs.map((r) => r.instance), ...inst.after])];
}

export async function analyse(opts: {
  plan: Plan;
  layout: Layout;
  state: StateDb;
  digester: Digester;
  env: Record<string, string | undefined>;
  force?: Set<string>;
  /** Instances to consider (default: all). */
  select?: Set<string>;
  /** Move corrupted entries out of the store (run), or only report them (status). */
  repair: boolean;
}): Promise<Analysis> {
  const { plan, layout, state, digester } = opts;
  const last = state.lastFingerprints();
  const known = state.entries();
  const boot = bootId();
  const keys = new Map<string, CacheKey>();
  // Verified files of the entries of instances that are cached now (their outputs' digests go into dependants' keys).
  const files = new Map<string, EntryFile[]>();
  const instById = new Map(plan.instances.map((i) => [i.id, i]));
  const upstreamOutput = upstreamOutputs(instById, (id) => files.get(id));
  const items: Analysed[] = [];
  const byId = new Map<string, Analysed>();
  const warnings: string[] = [];
  const waiting: Waiting[] = [];
  // Waiting instance -> the instances whose own inputs are missing (the root causes).
  const waitsOn = new Map<string, string[]>();
  for (const inst of plan.instances) {
    // A missing input does not stop the analysis: every stage is still listed,
    // and what waits (directly or through upstream) names the stages whose
    // inputs are missing.
    const roots = [...new Set(deps(inst).flatMap((d) => waitsOn.get(d) ?? []))];
    let fp: Fingerprint | undefined;
    let reason = roots.length ? `waits for ${roots.join(', ')}` : '';
    if (!reason) {
      try {
        fp = fingerprint({ inst, projectDir: plan.projectDir, upstreamKeys: keys, upstreamOutput, digester, env: opts.env });
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        reason = e.problem.startsWith('does not exist') ? `needs ${e.input}` : `needs ${e.input} (${e.problem})`;
        roots.push(inst.id);
      }
    }
    if (!fp) {
      waitsOn.set(inst.id, roots);
      if (!opts.select || opts.select.has(inst.id)) waiting.push({ inst, reason });
      continue;
    }
    keys.set(inst.id, fp.key);
    if (opts.select && !opts.select.has(inst.id)) continue;
    const lastRow = last.get(inst.id);
    let prevParsed: ComparedFingerprint | undefined;
    const item: Analysed = {
      inst,
      fp,
      prevKey: lastRow?.key,
      get prev() {
        if (lastRow && !prevParsed) prevParsed = JSON.parse(lastRow.fingerprint) as ComparedFingerprint;
        return prevParsed;
      },
      action: 'run',
      reasons: [],
    };
    if (opts.force?.has(inst.id)) item.reasons.push('forced');
    else if (fp.pending) {
      // Its key is known only once the upstream has run (early cutoff): say
      // why it will run, and what could still spare it.
      if (!lastRow) item.reasons.push('never run');
      else item.reasons.push(...diffFingerprints(item.prev!, fp).filter((r) => !r.startsWith('upstream ')), ...pendingReasons(fp.pending, item.prev, fp, byId));
    } else {
      const entryDir = join(layout.storeDir, fp.key);
      const rec = known.get(fp.key);
      // An entry recorded before a crash it may not have been synced for is read again, whatever its stat says.
      const check = checkEntry(entryDir, fp.key, digester, rec && signatureTrusted(rec.unsyncedBoot, boot) ? rec.files : undefined);
      if (check.state === 'ok') {
        files.set(inst.id, check.files);
        item.action = 'cached';
        item.files = check.files;
        item.verified = check.verified;
      } else if (check.state === 'corrupt') {
        warnings.push(`store entry ${fp.key.slice(0, 12)} of ${inst.id} is corrupted (${check.problem}); it will not be used`);
        item.reasons.push(`store entry corrupted: ${check.problem}`);
        if (opts.repair) {
          quarantine(entryDir, layout.tmpDir);
          state.forgetEntry(fp.key);
        }
      } else if (!lastRow) item.reasons.push('never run');
      else {
        const prev = item.prev!;
        const diff = prev.key === fp.key ? [] : diffFingerprints(prev, fp);
        item.reasons.push(...(diff.length ? diff : ['not in the store (removed by gc, or never finished)']));
      }
    }
    items.push(item);
    byId.set(inst.id, item);
  }
  state.flushStats();
  return { items, byId, waiting, warnings };
}
