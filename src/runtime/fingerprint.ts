// The cache key of a stage instance (docs/runtime.md, "The cache key").
//
// key = sha256(canonicalJson(parts)). Every field of FingerprintParts is here
// for a reason, and everything that is NOT here is deliberately left out:
//   - resources (cpus, gpus, memory, time): asking for more GPUs does not
//     change what a stage computes; rerunning on a resource change is the
//     Nextflow/Snakemake behaviour users complain about.
//   - executor, retries, log level: where and how persistently a stage runs
//     does not change its result either.
//   - the instance's name: renaming a stage must not rerun it; its identity
//     for reasons and `results/` is kept outside the key (Fingerprint.instance).
// The parts are kept (not just the hash) so that a rerun can say *which* part
// changed, by diffing against the last recorded run of the same instance.

import { createHash } from 'node:crypto';
import { isOutputRef, type StageInstance, type Value } from '../compiler/plan.js';
import { keyOf, STORE_FORMAT, type CacheKey } from './cache-key.js';
import { canonicalJson } from './canonical.js';
import type { Digester } from './digest.js';
import { envValueDigest } from './secrets.js';
import { META_DIR } from './store.js';

export interface FingerprintParts {
  /** Which code produces the result: a different kind is a different computation. */
  kind: string;
  /** Kinds bump their version when their results would change (a fixed bug, a new default). */
  kindVersion: number;
  /**
   * The resolved parameters. References to upstream outputs are replaced by
   * {$output: <content digest of that output>, output}: what the stage will
   * read, not the upstream's name, path or key. A change anywhere upstream
   * propagates down the DAG only if it changes those bytes (early cutoff:
   * an upstream that reruns and writes the same output leaves its dependants
   * cached), and the key never contains an absolute path of this machine.
   * Until the upstream has run its output is unknown: the reference is then
   * {$upstream: <upstream key>, output} and the fingerprint is `pending` —
   * a placeholder for reasons, never looked up in or published to the store.
   */
  params: Record<string, Value>;
  /** Content digest of every declared input file, directory or glob match, by path. */
  inputs: Record<string, string>;
  /**
   * sha256 of the values of the declared environment variables (null when
   * unset: unset differs from empty). A digest, not the value: the parts are
   * stored in manifests and state.db (./secrets.ts).
   */
  env: Record<string, string | null>;
  /** See STORE_FORMAT. */
  storeFormat: number;
}

export interface Fingerprint {
  key: CacheKey;
  parts: FingerprintParts;
  /** Upstream instance id -> its key. Not hashed on its own; kept for reasons. */
  upstream: Record<string, CacheKey>;
  /**
   * Upstream instances whose output is not known yet (they run first): the
   * key is a placeholder until they have run and it is computed again.
   */
  pending?: string[];
  /** Params with references left symbolic (`stage.output`), for readable diffs. */
  symbolic: Record<string, Value>;
}

function replaceRefs(v: Value, fn: (ref: { instance: string; output: string }) => Value): Value {
  if (isOutputRef(v)) return fn(v.$ref);
  if (Array.isArray(v)) return v.map((x) => replaceRefs(x, fn));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, Value> = {};
    for (const [k, x] of Object.entries(v)) out[k] = replaceRefs(x, fn);
    return out;
  }
  return v;
}

export function mapParams(params: Record<string, Value>, fn: (ref: { instance: string; output: string }) => Value): Record<string, Value> {
  return replaceRefs(params, fn) as Record<string, Value>;
}

export interface FingerprintInput {
  inst: StageInstance;
  projectDir: string;
  /** Keys of the instances this one references (computed first: topological order). */
  upstreamKeys: ReadonlyMap<string, CacheKey>;
  /** The content digest of an upstream output, when it is in the store (see outputDigest); otherwise undefined. */
  upstreamOutput?: (instance: string, output: string) => string | undefined;
  /**
   * Inputs and env as digested when the run was planned: settling a pending
   * key must not re-walk a 100k-file dataset, nor see inputs that changed since.
   */
  planned?: Pick<FingerprintParts, 'inputs' | 'env'>;
  digester: Digester;
  env: Record<string, string | undefined>;
}

export function fingerprint({ inst, projectDir, upstreamKeys, upstreamOutput, planned, digester, env }: FingerprintInput): Fingerprint {
  const upstream: Record<string, CacheKey> = {};
  const pending = new Set<string>();
  const params = mapParams(inst.params, (ref): Value => {
    const key = upstreamKeys.get(ref.instance);
    if (key === undefined) throw new Error(`internal: '${inst.id}' references '${ref.instance}', whose key is not computed yet`);
    upstream[ref.instance] = key;
    const content = upstreamOutput?.(ref.instance, ref.output);
    if (content !== undefined) return { $output: content, output: ref.output };
    pending.add(ref.instance);
    return { $upstream: key, output: ref.output };
  });
  let inputs = planned?.inputs;
  if (!inputs) {
    inputs = {};
    for (const pattern of inst.inputs) Object.assign(inputs, digester.input(projectDir, pattern));
  }
  let envValues = planned?.env;
  if (!envValues) {
    envValues = {};
    for (const name of inst.env) envValues[name] = envValueDigest(env[name]);
  }
  const parts: FingerprintParts = {
    kind: inst.kind,
    kindVersion: inst.kindVersion,
    params,
    inputs,
    env: envValues,
    storeFormat: STORE_FORMAT,
  };
  const key = keyOf(canonicalJson(parts));
  // Only reasons and records need the symbolic params: a no-op run of
  // 10,000 cached instances should not build them.
  let symbolic: Record<string, Value> | undefined;
  return {
    key,
    parts,
    upstream,
    ...(pending.size ? { pending: [...pending] } : {}),
    get symbolic() {
      symbolic ??= mapParams(inst.params, (ref) => `${ref.instance}.${ref.output}`);
      return symbolic;
    },
  };
}

/**
 * The content digest of one output of a store entry, from the entry's
 * verified files (path -> xxh128): the file at `path`, or every file under
 * it ('.' = the whole entry, smke's own _smke/ excluded).
 */
export function outputDigest(files: readonly { path: string; digest: string }[], path: string): string {
  const lines: string[] = [];
  const prefix = path === '.' ? '' : `${path}/`;
  for (const f of files) {
    if (f.path.startsWith(`${META_DIR}/`)) continue;
    if (f.path === path) lines.push(`\t${f.digest}`);
    else if (f.path.startsWith(prefix)) lines.push(`${f.path.slice(prefix.length)}\t${f.digest}`);
  }
  lines.sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

// --- reasons -----------------------------------------------------------------

function show(v: Value | undefined): string {
  if (v === undefined) return '(unset)';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Two long strings shown around their first difference, so the change is visible. */
function showPair(a: string, b: string): [string, string] {
  if (a.length <= 60 && b.length <= 60) return [a, b];
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const from = Math.max(0, i - 20);
  const cut = (s: string): string => `${from > 0 ? '...' : ''}${s.slice(from, from + 50)}${s.length > from + 50 ? '...' : ''}`;
  return [cut(a), cut(b)];
}

function diffValues(path: string, a: Value | undefined, b: Value | undefined, out: string[]): void {
  if (canonicalJson(a) === canonicalJson(b)) return;
  const isObj = (x: unknown): x is Record<string, Value> => x !== null && typeof x === 'object' && !Array.isArray(x);
  if (isObj(a) && isObj(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) diffValues(`${path}.${k}`, a[k], b[k], out);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((x, i) => diffValues(`${path}[${i}]`, x, b[i], out));
    return;
  }
  if (typeof a === 'string' && typeof b === 'string') {
    const [x, y] = showPair(a, b);
    out.push(`param ${path}: ${x} -> ${y}`);
    return;
  }
  out.push(`param ${path}: ${show(a)} -> ${show(b)}`);
}

/** What reasons compare: a fingerprint, or one read back from a manifest (its keys as written there). */
export type ComparedFingerprint = Pick<Fingerprint, 'parts' | 'symbolic'> & { key?: string; upstream: Record<string, string> };

/** The `$output` digests in resolved params, in a fixed order: what an instance read from its upstreams. */
function outputDigests(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) v.forEach((x) => outputDigests(x, out));
  else if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.$output === 'string') out.push(o.$output);
    else for (const k of Object.keys(o).sort()) outputDigests(o[k], out);
  }
  return out;
}

/**
 * Why an instance must run, as the list of fingerprint parts that differ from
 * its last recorded run ("param lr: 2e-5 -> 3e-5", "input data/x.tsv changed",
 * "upstream s_smke changed", "kind train.s_smke version 3 -> 4").
 */
export function diffFingerprints(prev: ComparedFingerprint, cur: ComparedFingerprint): string[] {
  const out: string[] = [];
  const a = prev.parts;
  const b = cur.parts;
  if (a.kind !== b.kind) out.push(`kind ${a.kind} -> ${b.kind}`);
  else if (a.kindVersion !== b.kindVersion) out.push(`kind ${b.kind} version ${a.kindVersion} -> ${b.kindVersion}`);
  if (a.storeFormat !== b.storeFormat) out.push(`store format ${a.storeFormat} -> ${b.storeFormat}`);
  for (const k of [...new Set([...Object.keys(prev.symbolic), ...Object.keys(cur.symbolic)])].sort()) {
    diffValues(k, prev.symbolic[k], cur.symbolic[k], out);
  }
  const before = out.length;
  for (const [id, key] of Object.entries(cur.upstream)) {
    if (prev.upstream[id] !== undefined && prev.upstream[id] !== key) out.push(`upstream ${id} changed`);
  }
  // Same upstream keys, other bytes read from them: an upstream entry was
  // published again with other bytes (a nondeterministic stage rerun after gc).
  // Only the `$output` digests say so: a changed param alone is not that.
  if (out.length === before && outputDigests(a.params).join() !== outputDigests(b.params).join()) {
    for (const id of Object.keys(cur.upstream)) out.push(`upstream ${id}'s output changed`);
  }
  for (const p of [...new Set([...Object.keys(a.inputs), ...Object.keys(b.inputs)])].sort()) {
    if (!(p in a.inputs)) out.push(`input ${p} added`);
    else if (!(p in b.inputs)) out.push(`input ${p} removed`);
    else if (a.inputs[p] !== b.inputs[p]) out.push(`input ${p} changed`);
  }
  for (const n of [...new Set([...Object.keys(a.env), ...Object.keys(b.env)])].sort()) {
    // Values are not printed: environment variables often hold tokens.
    if ((a.env[n] ?? null) !== (b.env[n] ?? null)) out.push(`env ${n} changed`);
  }
  return out;
}
