// From parsed files to a Plan: declarations, the chosen profile, --set,
// pipeline parameters, matrix expansion, each instance's entries, schema
// checks, output checks, and the ordered graph. Every step reports into one
// Diagnostics and carries on, so that one compile shows every error.

import { resolve } from 'node:path';
import type * as A from './ast.js';
import { Diagnostics, type Diagnostic } from './diagnostic.js';
import { BAD, describeValue, evaluate, formatAxisValue, isScalar, type EvalEnv, RefSites, type Result, type Spanned, type StageEntry } from './evaluate.js';
import { SMALL, duplicates } from './dups.js';
import { findCycles, indexGraph, topoOrder } from './graph.js';
import { checkOutputPaths } from './output-paths.js';
import { MAX_DEPTH } from './parser.js';
import type { CompileOptions, CompileResult } from './index.js';
import type { KindInfo, OutputSpec } from './kind-catalog.js';
import { load } from './load-sources.js';
import { parseLiteral } from './literal-text.js';
import { DEFAULT_RESOURCES, EXECUTORS, type Plan, type Resources, type SourceSpan, type StageInstance, type Value } from './plan.js';
import { didYouMean } from './suggest.js';
import { validateParams } from './validate.js';

/** Entries of a stage body that configure the stage rather than pass a parameter to its kind. */
export const STAGE_SETTINGS = ['resources', 'retries', 'after', 'executor'] as const;
const RESOURCE_FIELDS = ['cpus', 'gpus', 'mem', 'time'] as const;

interface Draft {
  inst: StageInstance;
  stageDecl: A.StageDecl;
  kind?: KindInfo;
  /** Params failed evaluation or validation: skip checks that would only repeat the error. */
  broken: boolean;
  /** This instance's references: positions `sitesFrom` up to `sitesTo` in the compile's RefSites. */
  sitesFrom: number;
  sitesTo: number;
  afterIds: { id: string; span: SourceSpan }[];
  /** The kind's outputs for the instance's params (absent when broken). */
  outputs?: Record<string, OutputSpec>;
}

export function build(options: CompileOptions): CompileResult & { texts: Map<string, string> } {
  const diags = new Diagnostics();
  const projectDir = resolve(options.projectDir ?? process.cwd());
  const loaded = load(options.file, projectDir, diags, options.text);
  const texts = loaded.texts;
  if (loaded.files.length === 0) return { diagnostics: diags.noteDropped(diags.list), texts };

  const decls = collectDeclarations(loaded.files, diags);
  const profile = chooseProfile(options.profile, decls.profiles, diags);
  const paramExprs = applyProfile(profile, decls, diags);
  const setValues = readSetValues(options.set ?? {}, decls.paramDecls, diags);
  const stageTable = new Map<string, Expanded>();
  const params = new PipelineParams(decls.paramDecls, paramExprs, setValues, diags);
  const baseEnv: Omit<EvalEnv, 'mode'> = {
    diags,
    param: (name) => params.value(name),
    hasParam: (name) => paramExprs.has(name),
    paramNames: () => paramExprs.keys(),
    stage: (name) => stageTable.get(name),
    stageNames: () => stageTable.keys(),
    env: options.env ?? process.env,
    literal: parseLiteral,
  };
  params.env = { ...baseEnv, mode: 'param' };

  // Stage table: every stage with its matrix cells, before any reference is resolved.
  // In declaration order (a profile's replacement keeps its stage's place); iterated, not looked up, for 100k stages.
  for (const decl of decls.stageDecls.values()) stageTable.set(decl.name, expandStage(decl, params.env, diags));
  const planParams = params.all();

  const { drafts, sites } = instantiateStages(stageTable, options.catalog, baseEnv, diags);
  const byId = indexInstances(drafts, diags);
  const edges = linkReferences(drafts, sites, byId, diags);
  const order = orderInstances(drafts, edges, diags);

  if (diags.hasErrors) return { diagnostics: diags.noteDropped(sortDiagnostics(diags.list, loaded.files.map((f) => f.path).reverse())), texts };

  const plan: Plan = {
    file: resolve(projectDir, options.file),
    projectDir,
    profile: profile ?? '',
    params: planParams,
    instances: order.map((i) => drafts[i]!.inst),
    sources: loaded.sources,
  };
  return { plan, diagnostics: diags.list, texts };
}

/** Every file's declarations, imports first; a second declaration of a name is an error and is dropped. */
interface Declarations {
  paramDecls: Map<string, A.ParamDecl>;
  stageDecls: Map<string, A.StageDecl>;
  profiles: Map<string, A.ProfileDecl[]>;
}

function reportDuplicate(diags: Diagnostics, what: string, name: string, span: SourceSpan, first: SourceSpan): void {
  diags.error('E0007', `duplicate ${what} \`${name}\``, span, {
    label: 'defined again here',
    labels: [{ span: first, message: 'first defined here' }],
    help: `rename one of them; a profile replaces a ${what} with \`profile NAME { ${what} ${name} = ... }\``,
  });
}

function collectDeclarations(files: { items: A.Item[] }[], diags: Diagnostics): Declarations {
  const paramDecls = new Map<string, A.ParamDecl>();
  const stageDecls = new Map<string, A.StageDecl>();
  const profiles = new Map<string, A.ProfileDecl[]>();
  for (const file of files) {
    for (const item of file.items) {
      if (item.type === 'Param') {
        const prev = paramDecls.get(item.name);
        if (prev) reportDuplicate(diags, 'param', item.name, item.nameSpan, prev.nameSpan);
        else paramDecls.set(item.name, item);
      } else if (item.type === 'Stage') {
        const prev = stageDecls.get(item.name);
        if (prev) reportDuplicate(diags, 'stage', item.name, item.nameSpan, prev.nameSpan);
        else stageDecls.set(item.name, item);
      } else if (item.type === 'Profile') {
        const list = profiles.get(item.name) ?? [];
        list.push(item);
        profiles.set(item.name, list);
      }
    }
  }
  return { paramDecls, stageDecls, profiles };
}

/**
 * Checks every profile's overrides (duplicates, unknown names) and applies
 * the chosen profile's: its stages replace `decls.stageDecls` entries in
 * place; the parameters' expressions, with its overrides, are returned.
 */
function applyProfile(profile: string | undefined, decls: Declarations, diags: Diagnostics): Map<string, A.Expr> {
  const { paramDecls, stageDecls } = decls;
  const paramExprs = new Map<string, A.Expr>();
  for (const [name, d] of paramDecls) paramExprs.set(name, d.value);
  for (const [pname, profileDecls] of decls.profiles) {
    const seen = new Map<string, SourceSpan>();
    for (const decl of profileDecls) {
      for (const item of decl.items) {
        const key = `${item.type}:${item.name}`;
        const prev = seen.get(key);
        if (prev) {
          reportDuplicate(diags, item.type === 'Param' ? 'param' : 'stage', item.name, item.nameSpan, prev);
          continue;
        }
        seen.set(key, item.nameSpan);
        const table: Map<string, unknown> = item.type === 'Param' ? paramDecls : stageDecls;
        if (!table.has(item.name)) {
          const what = item.type === 'Param' ? 'param' : 'stage';
          diags.error('E0018', `profile \`${pname}\` overrides unknown ${what} \`${item.name}\``, item.nameSpan, {
            label: `no top-level ${what} of this name`,
            help:
              didYouMean(item.name, table.keys()) ?? `declare \`${what} ${item.name}\` at the top level; a profile only overrides what the pipeline declares`,
          });
          continue;
        }
        if (pname !== profile) continue;
        if (item.type === 'Param') paramExprs.set(item.name, item.value);
        else stageDecls.set(item.name, item);
      }
    }
  }
  return paramExprs;
}

/** --set: literal values from the command line, applied after the profile. */
function readSetValues(set: Record<string, string>, paramDecls: Map<string, A.ParamDecl>, diags: Diagnostics): Map<string, Value> {
  const setValues = new Map<string, Value>();
  for (const [name, text] of Object.entries(set)) {
    if (!paramDecls.has(name)) {
      diags.error('E0019', `--set names unknown parameter \`${name}\``, undefined, {
        help: didYouMean(name, paramDecls.keys()) ?? `the parameters are ${[...paramDecls.keys()].map((k) => `\`${k}\``).join(', ') || '(none)'}`,
      });
      continue;
    }
    setValues.set(name, parseLiteral(text) ?? text);
  }
  return setValues;
}

/** Pipeline parameters, evaluated on first use (they may refer to each other in any order). */
class PipelineParams {
  private readonly values = new Map<string, Result>();
  /** Parameters whose computation has begun (finished ones are in `values` too). */
  private readonly evaluating = new Set<string>();
  private readonly depthMemo = new WeakMap<object, number>();
  /** Where parameter expressions are evaluated; set once the stage table it looks stages up in exists. */
  env!: EvalEnv;

  constructor(
    private readonly decls: Map<string, A.ParamDecl>,
    private readonly exprs: Map<string, A.Expr>,
    private readonly setValues: Map<string, Value>,
    private readonly diags: Diagnostics,
  ) {}

  /**
   * A parameter's value. Parameters may use each other in any order, and a
   * chain of thousands (`p1500 = p1499 + 1`, ...) must not take one stack
   * frame per link: the parameters it needs are found first (an explicit
   * stack, see paramUses) and evaluated from the bottom up, so that each
   * evaluation finds its parameters already computed. A cycle found on the
   * way is reported once and its parameters take BAD.
   */
  value(name: string): Result | undefined {
    if (this.setValues.has(name)) return this.setValues.get(name)!;
    const expr = this.exprs.get(name);
    if (expr === undefined) return undefined;
    const memo = this.values.get(name);
    if (memo !== undefined) return memo;
    if (this.evaluating.has(name)) return BAD; // on a cycle being reported
    const isPending = (n: string) => this.isPending(n);
    const stack: { name: string; uses: ParamUse[]; next: number }[] = [];
    const enter = (n: string) => {
      this.evaluating.add(n);
      stack.push({ name: n, uses: paramUses(this.exprs.get(n)!, isPending), next: 0 });
    };
    enter(name);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next < top.uses.length) {
        const use = top.uses[top.next++]!;
        if (!this.evaluating.has(use.name)) enter(use.name);
        else if (this.values.get(use.name) === undefined) {
          const from = stack.findIndex((f) => f.name === use.name);
          const path = [...stack.slice(from).map((f) => f.name), use.name];
          this.diags.error('E0014', `parameter cycle: ${path.join(' -> ')}`, use.at.span, {
            label: `\`${use.name}\` is used while computing itself`,
            help: 'give one of these parameters a value that does not depend on the others',
          });
          for (const f of stack.slice(from)) this.values.set(f.name, BAD);
        }
        continue;
      }
      stack.pop();
      if (this.values.get(top.name) === undefined) this.values.set(top.name, this.boundedDepth(top.name, evaluate(this.exprs.get(top.name)!, this.env)));
    }
    return this.values.get(name);
  }

  /** Every parameter that has a value, for the plan. */
  all(): Record<string, Value> {
    const out: Record<string, Value> = {};
    for (const name of this.exprs.keys()) {
      const v = this.value(name);
      if (v !== BAD && v !== undefined) out[name] = v;
    }
    return out;
  }

  /**
   * Syntax nests at most MAX_DEPTH levels, but parameters can wrap each other
   * (`p2 = [p1]`, `p3 = [p2]` ...) without limit, and the runtime walks
   * values recursively (JSON, digests): a parameter's value is held to the
   * same depth.
   */
  private boundedDepth(name: string, v: Result): Result {
    if (v === BAD || valueDepth(v, this.depthMemo) <= MAX_DEPTH) return v;
    this.diags.error('E0004', `the value of parameter \`${name}\` nests deeper than ${MAX_DEPTH} levels`, this.decls.get(name)?.nameSpan, {
      label: 'lists and maps inside each other, through other parameters',
      help: 'flatten the value: a pipeline never needs this much nesting',
    });
    return BAD;
  }

  /** A parameter not yet computed (set by --set or memoised ones need no visit). */
  private isPending(n: string): boolean {
    return this.exprs.has(n) && !this.setValues.has(n) && this.values.get(n) === undefined;
  }
}

/** Every stage's instances (one per matrix cell), their params evaluated and checked against their kind. */
function instantiateStages(
  stageTable: Map<string, Expanded>,
  catalog: CompileOptions['catalog'],
  env: Omit<EvalEnv, 'mode'>,
  diags: Diagnostics,
): { drafts: Draft[]; sites: RefSites } {
  const drafts: Draft[] = [];
  const sites = new RefSites();
  const kindChecked = new Set<string>();
  for (const entry of stageTable.values()) {
    const decl = entry.decl;
    const kind = catalog.get(decl.kind);
    if (!kind && !kindChecked.has(decl.kind + decl.kindSpan.offset)) {
      kindChecked.add(decl.kind + decl.kindSpan.offset);
      diags.error('E0009', `unknown stage kind \`${decl.kind}\``, decl.kindSpan, {
        label: 'not a registered kind',
        help: didYouMean(decl.kind, catalog.names()) ?? '`smke kinds` lists the registered kinds',
      });
    }
    const checked = checkEntries(decl, diags);
    if (decl.axes.length === 0) drafts.push(instantiate(decl, checked, kind, decl.name, PLAIN_MATRIX, env, sites, diags));
    else for (const cell of entry.cells) drafts.push(instantiate(decl, checked, kind, cell.id, cell.matrix, env, sites, diags));
  }
  return { drafts, sites };
}

/** Instance id -> index in `drafts`. */
function indexInstances(drafts: Draft[], diags: Diagnostics): Map<string, number> {
  const byId = new Map<string, number>();
  drafts.forEach((d, i) => {
    const first = byId.get(d.inst.id);
    if (first === undefined) byId.set(d.inst.id, i);
    // Ids are distinct by construction (formatAxisValue); should that ever fail, one cell must not silently replace another.
    else
      diags.error('E0023', `two stage instances have the id \`${d.inst.id}\``, d.stageDecl.nameSpan, {
        label: 'this instance',
        labels: [{ span: drafts[first]!.stageDecl.nameSpan, message: 'has the id of this one' }],
        help: 'change a matrix value so that the two instances differ',
      });
  });
  return byId;
}

/**
 * The graph's edges as parallel arrays. Duplicates can only come from one
 * instance's own references, so they are found among that instance's edges
 * (a short scan; a Map only for an instance with many) rather than in one
 * big map keyed by pairs (a visible share of a 100k-stage compile).
 */
class Edges {
  readonly from: number[] = [];
  readonly to: number[] = [];
  /** Where each edge was written (a node: its span is built only for a cycle's message). */
  readonly sites: Spanned[] = [];
  /** The first edge into the current instance. */
  private first = 0;
  /** from -> edge, for the current instance once it has more than SMALL edges. */
  private index: Map<number, number> | undefined;

  /** Starts the edges into the next instance. */
  startInstance(): void {
    this.first = this.from.length;
    this.index = undefined;
  }

  /** A second edge from the same upstream (two references, or a reference and an `after`) is the first one. */
  add(from: number, to: number, site: Spanned): void {
    if (this.existing(from) !== undefined) return;
    this.index?.set(from, this.from.length);
    this.from.push(from);
    this.to.push(to);
    this.sites.push(site);
  }

  private existing(from: number): number | undefined {
    if (this.index) return this.index.get(from);
    for (let e = this.first; e < this.from.length; e++) if (this.from[e] === from) return e;
    if (this.from.length - this.first >= SMALL) {
      this.index = new Map();
      for (let e = this.first; e < this.from.length; e++) this.index.set(this.from[e]!, e);
    }
    return undefined;
  }
}

/** The edges of references and `after`; each output reference must name an output of the upstream kind for its resolved params. */
function linkReferences(drafts: Draft[], sites: RefSites, byId: Map<string, number>, diags: Diagnostics): Edges {
  const edges = new Edges();
  const outputs = (i: number) => (drafts[i]!.broken ? undefined : drafts[i]!.outputs);
  drafts.forEach((d, to) => {
    edges.startInstance();
    for (let k = d.sitesFrom; k < d.sitesTo; k++) {
      const ref = sites.refs[k]!;
      const expr = sites.exprs[k]!;
      const from = byId.get(ref.instance)!;
      const outs = outputs(from);
      if (outs && !Object.hasOwn(outs, ref.output)) {
        const names = Object.keys(outs);
        diags.error('E0010', `stage \`${ref.instance}\` has no output \`${ref.output}\``, expr.memberSpan, {
          label: `not an output of kind \`${drafts[from]!.inst.kind}\``,
          help: didYouMean(ref.output, names) ?? `its outputs are ${names.map((n) => `\`${n}\``).join(', ')}`,
        });
      }
      edges.add(from, to, expr);
    }
    for (const a of d.afterIds) edges.add(byId.get(a.id)!, to, a);
  });
  return edges;
}

/** The instances in dependency order (indexes into `drafts`); each cycle is reported as a path. */
function orderInstances(drafts: Draft[], edges: Edges, diags: Diagnostics): number[] {
  const graph = indexGraph(drafts.length, edges.from, edges.to);
  const order = topoOrder(graph);
  if (order.length < drafts.length) {
    for (const cycle of findCycles(graph, order)) {
      const ids = cycle.map((i) => drafts[i]!.inst.id);
      const labels = cycle.slice(0, -1).map((from, k) => {
        const to = cycle[k + 1]!;
        const e = edges.from.findIndex((f, i) => f === from && edges.to[i] === to);
        return { span: edges.sites[e]!.span, message: `\`${ids[k + 1]}\` uses \`${ids[k]}\`` };
      });
      const [first, ...rest] = labels;
      diags.error('E0014', `dependency cycle: ${ids.join(' -> ')}`, first!.span, {
        label: first!.message,
        labels: rest,
        help: 'a stage cannot depend on its own output, directly or through others: remove one of these references',
      });
    }
  }
  return order;
}

/**
 * How deep lists and maps nest in a value (a scalar is 0), iteratively;
 * shared sub-values (a parameter inside another) are measured once.
 */
function valueDepth(root: Value, memo: WeakMap<object, number>): number {
  if (root === null || typeof root !== 'object') return 0;
  const stack: { v: object; kids: Value[]; i: number; max: number }[] = [];
  const open = (v: object) => stack.push({ v, kids: Array.isArray(v) ? v : Object.values(v), i: 0, max: 0 });
  open(root);
  let result = 0;
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i < top.kids.length) {
      const k = top.kids[top.i++]!;
      if (k === null || typeof k !== 'object') continue;
      const known = memo.get(k);
      if (known !== undefined) top.max = Math.max(top.max, known);
      else if (stack.length > 4 * MAX_DEPTH)
        return stack.length; // deep enough to refuse: stop walking
      else open(k);
      continue;
    }
    stack.pop();
    const d = top.max + 1;
    memo.set(top.v, d);
    if (stack.length > 0) stack[stack.length - 1]!.max = Math.max(stack[stack.length - 1]!.max, d);
    else result = d;
  }
  return result;
}

interface ParamUse {
  name: string;
  at: Spanned;
}

/**
 * The parameters an expression reads, in evaluation order, each with the node
 * that reads it. Walked with an explicit stack: an expression's depth is
 * bounded by the parser (MAX_DEPTH), but nothing here should rely on it.
 */
function paramUses(root: A.Expr, isParam: (name: string) => boolean): ParamUse[] {
  const uses: ParamUse[] = [];
  const todo: A.Expr[] = [root];
  while (todo.length > 0) {
    const e = todo.pop()!;
    // Children are pushed last-first so that they pop in source (= evaluation) order.
    const push = (xs: readonly (A.Expr | A.WildcardSelector | undefined)[]) => {
      for (let i = xs.length - 1; i >= 0; i--) {
        const x = xs[i];
        if (x && x.type !== 'Wildcard') todo.push(x);
      }
    };
    switch (e.type) {
      case 'Name':
        if (isParam(e.name)) uses.push({ name: e.name, at: e });
        break;
      case 'String':
        for (const p of e.parts) if (typeof p !== 'string' && isParam(p.path[0]!)) uses.push({ name: p.path[0]!, at: p });
        break;
      case 'Paren':
        todo.push(e.expr);
        break;
      case 'List':
        push(e.items);
        break;
      case 'Map':
        push(e.entries.map((m) => m.value));
        break;
      case 'Call':
        push(e.args);
        break;
      case 'Neg':
        todo.push(e.operand);
        break;
      case 'Binary':
        push([e.first, ...e.rest.map((r) => r.right)]);
        break;
      case 'Select':
        push([e.target, ...e.selectors]);
        break;
      case 'Member':
        todo.push(e.target);
        break;
      default:
        break;
    }
  }
  return uses;
}

/** In reading order: command-line problems first, then by file (root first) and position. */
function sortDiagnostics(list: Diagnostic[], files: string[]): Diagnostic[] {
  const rank = (d: Diagnostic) => (d.span ? files.indexOf(d.span.file) + 1 : 0);
  return [...list].sort((a, b) => rank(a) - rank(b) || (a.span?.offset ?? 0) - (b.span?.offset ?? 0));
}

/** The profile to apply: the one asked for, else the one marked default; reports the errors around that. */
function chooseProfile(asked: string | undefined, profiles: Map<string, A.ProfileDecl[]>, diags: Diagnostics): string | undefined {
  const defaults = [...profiles.values()].flat().filter((p) => p.isDefault);
  const defaultNames = [...new Set(defaults.map((p) => p.name))];
  if (defaultNames.length > 1) {
    const second = defaults.find((p) => p.name !== defaults[0]!.name)!;
    diags.error('E0018', `more than one default profile: \`${defaultNames.join('`, `')}\``, second.nameSpan, {
      label: 'marked default here',
      labels: [{ span: defaults[0]!.nameSpan, message: 'and here' }],
      help: 'keep `default` on one profile; choose the others with --profile',
    });
  }
  if (asked !== undefined) {
    if (!profiles.has(asked)) {
      diags.error('E0011', `unknown profile \`${asked}\``, undefined, {
        help:
          profiles.size === 0
            ? 'this pipeline declares no profiles: drop --profile'
            : (didYouMean(asked, profiles.keys()) ?? `the profiles are ${[...profiles.keys()].map((p) => `\`${p}\``).join(', ')}`),
      });
      return undefined;
    }
    return asked;
  }
  if (profiles.size > 0 && defaultNames.length === 0) {
    const first = [...profiles.values()][0]![0]!;
    diags.error('E0018', 'no default profile', first.nameSpan, {
      label: 'profiles are declared, but none is marked default',
      help: `mark one as the default: \`profile ${first.name} default { ... }\`, or choose one with --profile`,
    });
    return undefined;
  }
  return defaultNames[0];
}

interface Expanded extends StageEntry {
  cells: { id: string; values: string[]; matrix: Record<string, Value> }[];
}

// A plain stage's table entry shares these: selections and cells are looked
// up only in matrix stages, and a 100k-stage compile has 100k plain stages.
const NO_KEYS: ReadonlyMap<string, string> = new Map();
const NO_AXES: string[] = [];
const NO_CELLS: Expanded['cells'] = [];
/** The matrix of every plain instance; frozen, as it is shared. */
const PLAIN_MATRIX: Record<string, Value> = Object.freeze({}) as Record<string, Value>;

/** A stage's matrix cells: the cartesian product of its axes, first axis outermost (none for a plain stage). */
function expandStage(decl: A.StageDecl, env: EvalEnv, diags: Diagnostics): Expanded {
  if (decl.axes.length === 0) return { name: decl.name, decl, axes: NO_AXES, ids: [decl.name], byKey: NO_KEYS, cells: NO_CELLS };
  const byKey = new Map<string, string>();
  const entry: Expanded = { name: decl.name, decl, axes: decl.axes.map((a) => a.name), ids: [], byKey, cells: [] };
  const axisValues: Value[][] = [];
  const seenAxis = new Map<string, SourceSpan>();
  let ok = true;
  for (const axis of decl.axes) {
    const prev = seenAxis.get(axis.name);
    if (prev) {
      diags.error('E0007', `duplicate matrix axis \`${axis.name}\``, axis.nameSpan, {
        label: 'declared again here',
        labels: [{ span: prev, message: 'first declared here' }],
        help: 'give each axis its own name',
      });
      ok = false;
    }
    seenAxis.set(axis.name, axis.nameSpan);
    const v = evaluate(axis.values, env);
    if (v === BAD) {
      ok = false;
      continue;
    }
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => isScalar(x))) {
      diags.error('E0013', `matrix axis \`${axis.name}\` must be a non-empty list of strings, numbers or booleans`, axis.values.span, {
        label: Array.isArray(v) ? (v.length === 0 ? 'an empty list' : 'a list containing other values') : `this is ${describeValue(v)}`,
        help: `write the values as a list: \`${axis.name} in ["a", "b"]\``,
      });
      ok = false;
      continue;
    }
    // Where each value was written, when the axis is a list literal (else the whole axis expression).
    const itemSpan = (i: number): SourceSpan =>
      axis.values.type === 'List' && axis.values.items.length === v.length ? axis.values.items[i]!.span : axis.values.span;
    const seen = new Map<string, number>();
    v.forEach((x, i) => {
      const f = formatAxisValue(x);
      const first = seen.get(f);
      if (first === undefined) {
        seen.set(f, i);
        return;
      }
      const same = v[first] === x;
      const shown = (y: Value) => (typeof y === 'string' ? JSON.stringify(y) : String(y));
      diags.error(
        same ? 'E0007' : 'E0023',
        same
          ? `duplicate value \`${f}\` in matrix axis \`${axis.name}\``
          : `matrix axis \`${axis.name}\` has both \`${shown(v[first]!)}\` and \`${shown(x)}\`, which instance ids both write as \`${f}\``,
        itemSpan(i),
        {
          label: same ? 'the same instance would be declared twice' : `written \`${f}\` in instance ids, like the value before`,
          labels: itemSpan(first).offset === itemSpan(i).offset ? undefined : [{ span: itemSpan(first), message: 'first here' }],
          help: same ? 'remove the repeated value' : 'keep one of them, or make both strings (or both numbers)',
        },
      );
      ok = false;
    });
    axisValues.push(v);
  }
  if (!ok) {
    entry.broken = true;
    return entry;
  }
  let combos: Value[][] = [[]];
  for (const values of axisValues) combos = combos.flatMap((c) => values.map((v) => [...c, v]));
  for (const combo of combos) {
    const values = combo.map(formatAxisValue);
    const key = values.join(',');
    const id = `${decl.name}[${key}]`;
    const matrix: Record<string, Value> = {};
    decl.axes.forEach((a, i) => (matrix[a.name] = combo[i]!));
    entry.ids.push(id);
    byKey.set(key, id);
    entry.cells.push({ id, values, matrix });
  }
  return entry;
}

/** A stage's entries, each key once (duplicates reported), checked once per stage rather than per matrix cell. */
function checkEntries(decl: A.StageDecl, diags: Diagnostics): { entries: A.Entry[]; bad: boolean } {
  const dups = duplicates(
    decl.entries,
    (e) => e.key,
    (e, first) =>
      diags.error('E0007', `duplicate entry \`${e.key}\` in stage \`${decl.name}\``, e.keySpan, {
        label: 'set again here',
        labels: [{ span: first.keySpan, message: 'first set here' }],
        help: 'remove one of them',
      }),
  );
  let bad = dups !== undefined;
  // The body's own list when nothing is dropped (the usual case): no copy per stage.
  let entries: A.Entry[] | undefined = bad ? [] : undefined;
  for (let i = 0; i < decl.entries.length; i++) {
    const e = decl.entries[i]!;
    const wrongBlock = e.block !== undefined && e.key !== 'resources';
    if (wrongBlock) {
      diags.error('E0021', `\`${e.key}\` does not take a block`, e.keySpan, {
        label: 'only `resources` takes `{ ... }`',
        help: `write \`${e.key} = value\`, or a map value as \`${e.key} = { k = v }\``,
      });
      bad = true;
    }
    if (wrongBlock || dups?.has(e)) entries ??= decl.entries.slice(0, i);
    else entries?.push(e);
  }
  return { entries: entries ?? decl.entries, bad };
}

const NO_MATRIX = new Map<string, Value>();
/** Shared by the (many) instances without `after`; frozen, as they are shared. */
const NO_AFTER: Draft['afterIds'] = Object.freeze([]) as unknown as Draft['afterIds'];
const NO_AFTER_IDS: string[] = Object.freeze([]) as unknown as string[];

function instantiate(
  decl: A.StageDecl,
  checked: { entries: A.Entry[]; bad: boolean },
  kind: KindInfo | undefined,
  id: string,
  matrix: Record<string, Value>,
  base: Omit<EvalEnv, 'mode'>,
  sites: RefSites,
  diags: Diagnostics,
): Draft {
  const sitesFrom = sites.length;
  const matrixMap = decl.axes.length === 0 ? NO_MATRIX : new Map(Object.entries(matrix));
  // Environments share the base through the prototype: cheaper than copying it for every instance.
  const stageEnv: EvalEnv = Object.assign(Object.create(base) as EvalEnv, { mode: 'stage', matrix: matrixMap, refs: sites });
  const settingEnv: EvalEnv = Object.assign(Object.create(base) as EvalEnv, { mode: 'param', matrix: matrixMap });
  const inst: StageInstance = {
    id,
    stage: decl.name,
    matrix,
    kind: decl.kind,
    kindVersion: kind?.version ?? 0,
    params: {},
    refs: [],
    after: NO_AFTER_IDS,
    inputs: [],
    env: [],
    resources: DEFAULT_RESOURCES,
    retries: 0,
    span: decl.nameSpan,
  };
  const draft: Draft = { inst, stageDecl: decl, kind, broken: false, sitesFrom, sitesTo: sitesFrom, afterIds: NO_AFTER };
  const overrides: Partial<Resources> = {};
  let bad = checked.bad;
  for (const e of checked.entries) {
    switch (e.key) {
      case 'resources':
        if (!e.block) {
          diags.error('E0017', '`resources` takes a block', e.keySpan, {
            label: 'written as a value',
            help: 'write `resources { cpus = 2, gpus = 1, mem = 8GB, time = 2h }`',
          });
          break;
        }
        if (!readResources(e.block, settingEnv, overrides, diags)) bad = true;
        break;
      case 'retries': {
        const v = evaluate(e.value!, settingEnv);
        if (v === BAD) break;
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
          diags.error('E0021', '`retries` must be a non-negative integer', e.value!.span, {
            label: `this is ${typeof v === 'number' ? String(v) : describeValue(v)}`,
            help: 'write `retries = 2` to run a failing stage up to three times',
          });
        } else inst.retries = v;
        break;
      }
      case 'executor': {
        const v = evaluate(e.value!, settingEnv);
        if (v === BAD) break;
        if (typeof v !== 'string' || !(EXECUTORS as readonly string[]).includes(v)) {
          const what = typeof v === 'string' ? `\`${v}\`` : describeValue(v);
          diags.error('E0021', `unknown executor ${what}`, e.value!.span, {
            label: typeof v === 'string' ? 'not an executor smke has' : `this is ${describeValue(v)}`,
            help:
              (typeof v === 'string' ? didYouMean(v, EXECUTORS) : undefined) ??
              `the executors are ${EXECUTORS.map((x) => `\`"${x}"\``).join(' and ')}; leave \`executor\` out to use the run's default (--executor)`,
          });
        } else inst.executor = v;
        break;
      }
      case 'after': {
        const ids: Draft['afterIds'] = [];
        evaluate(e.value!, Object.assign(Object.create(base) as EvalEnv, { mode: 'after', matrix: matrixMap, afterIds: ids }));
        if (ids.length > 0 && draft.afterIds === NO_AFTER) {
          draft.afterIds = [];
          inst.after = [];
        }
        for (const a of ids) {
          draft.afterIds.push(a);
          if (!inst.after.includes(a.id)) inst.after.push(a.id);
        }
        break;
      }
      default: {
        const v = evaluate(e.value!, stageEnv);
        if (v === BAD) bad = true;
        else inst.params[e.key] = v;
      }
    }
  }
  draft.sitesTo = sites.length;
  inst.refs = distinctRefs(sites, sitesFrom, draft.sitesTo);
  if (!kind || bad) {
    draft.broken = true;
    return draft;
  }
  const filled = validateParams(inst.params, draft.sitesTo > sitesFrom, { kind, entries: checked.entries, stage: decl }, diags);
  if (!filled) {
    draft.broken = true;
    return draft;
  }
  inst.params = filled;
  const defaults = kind.resources ? kindCall(draft, 'resources', () => kind.resources!(filled), diags) : undefined;
  inst.resources = defaults || Object.keys(overrides).length > 0 ? { ...DEFAULT_RESOURCES, ...(defaults ?? {}), ...overrides } : { ...DEFAULT_RESOURCES };
  inst.inputs = (kind.inputs ? kindCall(draft, 'inputs', () => kind.inputs!(filled), diags) : undefined) ?? [];
  inst.env = (kind.env ? kindCall(draft, 'env', () => kind.env!(filled), diags) : undefined) ?? [];
  const outs = kindCall(draft, 'outputs', () => kind.outputs(filled), diags);
  if (outs && !checkOutputPaths(outs, checked.entries, filled, decl.nameSpan, id, diags)) draft.broken = true;
  draft.outputs = outs;
  return draft;
}

/** The refs of sites `from` up to `to`, each (instance, output) once, in order of first appearance. */
function distinctRefs(sites: RefSites, from: number, to: number): StageInstance['refs'] {
  // A slice is at its exact length: refs live as long as the plan.
  const refs = sites.refs.slice(from, to);
  const repeated = duplicates(
    refs,
    (r) => `${r.instance}\0${r.output}`,
    () => {},
  );
  return repeated ? refs.filter((r) => !repeated.has(r)) : refs;
}

/** Calls a kind's own code; a kind that throws is reported, not allowed to crash the compile. */
function kindCall<T>(d: Draft, what: string, fn: () => T, diags: Diagnostics): T | undefined {
  try {
    return fn();
  } catch (e) {
    d.broken = true;
    diags.error(
      'E0012',
      `kind \`${d.inst.kind}\` failed to compute its ${what} for \`${d.inst.id}\`: ${(e as Error)?.message ?? String(e)}`,
      d.stageDecl.nameSpan,
      {
        label: 'while checking this stage',
        help: 'check the parameters; if they are valid, this is a bug in the stage kind',
      },
    );
    return undefined;
  }
}

function readResources(block: A.Entry[], env: EvalEnv, out: Partial<Resources>, diags: Diagnostics): boolean {
  const dups = duplicates(
    block,
    (e) => e.key,
    (e, first) =>
      diags.error('E0007', `duplicate resource \`${e.key}\``, e.keySpan, {
        label: 'set again here',
        labels: [{ span: first.keySpan, message: 'first set here' }],
        help: 'remove one of them',
      }),
  );
  let ok = dups === undefined;
  for (const e of block) {
    if (dups?.has(e)) continue;
    if (!(RESOURCE_FIELDS as readonly string[]).includes(e.key) || !e.value) {
      diags.error('E0017', `unknown resource \`${e.key}\``, e.keySpan, {
        label: 'not a resource',
        help: didYouMean(e.key, RESOURCE_FIELDS) ?? 'the resources are `cpus`, `gpus`, `mem` (a size such as 8GB) and `time` (a duration such as 2h)',
      });
      ok = false;
      continue;
    }
    const v = evaluate(e.value, env);
    if (v === BAD) {
      ok = false;
      continue;
    }
    const unit = unitOf(e.value);
    const fail = (why: string, help: string) => {
      const label = unit ? `a ${unit}` : typeof v === 'number' ? String(v) : describeValue(v);
      diags.error('E0017', `invalid \`${e.key}\`: ${why}`, e.value!.span, { label, help });
      ok = false;
    };
    if (typeof v !== 'number' || v < 0 || !Number.isFinite(v)) {
      fail(
        'expected a non-negative number',
        e.key === 'mem' ? 'write a size, e.g. `mem = 16GB`' : e.key === 'time' ? 'write a duration, e.g. `time = 2h`' : `e.g. \`${e.key} = 2\``,
      );
      continue;
    }
    switch (e.key) {
      case 'cpus':
        if (unit) fail('a count takes no unit', 'write e.g. `cpus = 4`');
        else if (v === 0) fail('at least one cpu is needed', 'write e.g. `cpus = 1`');
        else out.cpus = v;
        break;
      case 'gpus':
        if (unit || !Number.isInteger(v)) fail('gpus are whole devices', 'write e.g. `gpus = 1`');
        else out.gpus = v;
        break;
      case 'mem':
        if (unit === 'duration') fail('memory is a size, not a duration', 'write e.g. `mem = 16GB`');
        else out.memBytes = Math.round(v);
        break;
      case 'time':
        if (unit === 'size') fail('time is a duration, not a size', 'write e.g. `time = 2h`');
        else out.timeSeconds = v;
        break;
    }
  }
  return ok;
}

/** Whether a literal was written with a size or duration unit (so `cpus = 2GB` can be refused). */
function unitOf(e: A.Expr): 'size' | 'duration' | undefined {
  if (e.type !== 'Number' || !e.unit) return undefined;
  return /B$/.test(e.unit) ? 'size' : 'duration';
}
