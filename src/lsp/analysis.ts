// What the language server knows about one .smke buffer, as plain functions of
// (text, offset): the node under the cursor, where a name is defined, what to
// offer for completion. No LSP types here, so every answer is testable without
// a connection; ./server.ts turns them into protocol messages.

import { dirname, resolve } from 'node:path';
import type { Entry, Expr, FileAst, Item, ParamDecl, StageDecl } from '../compiler/ast.js';
import type { KindCatalog, OutputSpec } from '../compiler/kind-catalog.js';
import { readSource } from '../compiler/load-sources.js';
import { parse } from '../compiler/parser.js';
import type { SourceSpan } from '../compiler/plan.js';
import { SourceFile } from '../compiler/source.js';
import { STAGE_SETTINGS } from '../compiler/build.js';
import { kindMarkdown, outputsFor, paramRows } from '../compiler/kind-docs.js';

/** A definition the cursor can jump to. */
export interface Definition {
  kind: 'param' | 'stage' | 'file';
  name: string;
  span: SourceSpan;
  /** The declaration itself (for hover text). */
  decl?: ParamDecl | StageDecl;
}

/** What sits under the cursor. */
export type Target =
  | { type: 'kind'; kind: string; span: SourceSpan }
  | { type: 'param-key'; kind: string; key: string; span: SourceSpan }
  | { type: 'name'; name: string; span: SourceSpan }
  | { type: 'output'; stage: string; output: string; span: SourceSpan }
  | { type: 'import'; path: string; span: SourceSpan };

const within = (span: SourceSpan, offset: number): boolean => offset >= span.offset && offset <= span.offset + span.length;

/** Every param and stage declared in this file (profiles included: a profile may redefine either). */
export function declarations(ast: FileAst): Definition[] {
  const out: Definition[] = [];
  const add = (item: Item): void => {
    if (item.type === 'Param') out.push({ kind: 'param', name: item.name, span: item.nameSpan, decl: item });
    else if (item.type === 'Stage') out.push({ kind: 'stage', name: item.name, span: item.nameSpan, decl: item });
    else if (item.type === 'Profile') for (const inner of item.items) add(inner);
  };
  for (const item of ast.items) add(item);
  return out;
}

/** The files this one imports, resolved like the compiler does (relative to the importing file). */
export function importedFiles(ast: FileAst): { path: string; span: SourceSpan }[] {
  const out: { path: string; span: SourceSpan }[] = [];
  for (const item of ast.items) {
    if (item.type !== 'Import') continue;
    const raw = item.path.parts.every((p) => typeof p === 'string') ? item.path.parts.join('') : undefined;
    if (raw !== undefined) out.push({ path: resolve(dirname(ast.path), raw), span: item.path.span });
  }
  return out;
}

/** The innermost expression node containing `offset`, found without recursion limits mattering (ASTs are shallow here). */
function targetInExpr(expr: Expr, offset: number): Target | undefined {
  if (!within(expr.span, offset)) return undefined;
  switch (expr.type) {
    case 'Name':
      return { type: 'name', name: expr.name, span: expr.span };
    case 'Member': {
      if (within(expr.memberSpan, offset)) {
        const stage = expr.target.type === 'Name' ? expr.target.name : expr.target.target.name;
        return { type: 'output', stage, output: expr.member, span: expr.memberSpan };
      }
      return targetInExpr(expr.target, offset);
    }
    case 'Select': {
      if (within(expr.target.span, offset)) return { type: 'name', name: expr.target.name, span: expr.target.span };
      for (const s of expr.selectors)
        if (s.type !== 'Wildcard') {
          const t = targetInExpr(s, offset);
          if (t) return t;
        }
      return undefined;
    }
    case 'String':
      for (const p of expr.parts) {
        if (typeof p === 'string' || !within(p.span, offset)) continue;
        if (p.path.length >= 2) return { type: 'output', stage: p.path[0]!, output: p.path[1]!, span: p.span };
        return { type: 'name', name: p.path[0]!, span: p.span };
      }
      return undefined;
    case 'List':
      for (const item of expr.items) {
        const t = targetInExpr(item, offset);
        if (t) return t;
      }
      return undefined;
    case 'Map':
      for (const e of expr.entries) {
        const t = targetInExpr(e.value, offset);
        if (t) return t;
      }
      return undefined;
    case 'Call':
      for (const a of expr.args) {
        const t = targetInExpr(a, offset);
        if (t) return t;
      }
      return undefined;
    case 'Neg':
      return targetInExpr(expr.operand, offset);
    case 'Paren':
      return targetInExpr(expr.expr, offset);
    case 'Binary': {
      const first = targetInExpr(expr.first, offset);
      if (first) return first;
      for (const r of expr.rest) {
        const t = targetInExpr(r.right, offset);
        if (t) return t;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

function targetInEntries(entries: Entry[], kind: string, offset: number): Target | undefined {
  for (const e of entries) {
    if (within(e.keySpan, offset)) return { type: 'param-key', kind, key: e.key, span: e.keySpan };
    if (e.value) {
      const t = targetInExpr(e.value, offset);
      if (t) return t;
    }
    if (e.block) {
      const t = targetInEntries(e.block, kind, offset);
      if (t) return t;
    }
  }
  return undefined;
}

function targetInItem(item: Item, offset: number): Target | undefined {
  switch (item.type) {
    case 'Import':
      if (!within(item.path.span, offset)) return undefined;
      return { type: 'import', path: item.path.parts.filter((p): p is string => typeof p === 'string').join(''), span: item.path.span };
    case 'Param':
      if (within(item.nameSpan, offset)) return { type: 'name', name: item.name, span: item.nameSpan };
      return targetInExpr(item.value, offset);
    case 'Stage': {
      if (within(item.kindSpan, offset)) return { type: 'kind', kind: item.kind, span: item.kindSpan };
      if (within(item.nameSpan, offset)) return { type: 'name', name: item.name, span: item.nameSpan };
      for (const axis of item.axes) {
        const t = targetInExpr(axis.values, offset);
        if (t) return t;
      }
      return targetInEntries(item.entries, item.kind, offset);
    }
    case 'Profile':
      for (const inner of item.items) {
        const t = targetInItem(inner, offset);
        if (t) return t;
      }
      return undefined;
  }
}

/** The node under the cursor, if it is one the server can say something about. */
export function targetAt(ast: FileAst, offset: number): Target | undefined {
  for (const item of ast.items) {
    const t = targetInItem(item, offset);
    if (t) return t;
  }
  return undefined;
}

/** The stage whose body contains `offset` (for completion inside a half-typed body). */
export function stageAround(ast: FileAst, offset: number): StageDecl | undefined {
  let found: StageDecl | undefined;
  const visit = (item: Item): void => {
    if (item.type === 'Stage' && offset > item.kindSpan.offset && offset <= item.end) found = item;
    else if (item.type === 'Profile') item.items.forEach(visit);
  };
  ast.items.forEach(visit);
  return found;
}

/** Reads and parses an imported file the way the compiler reads it (regular files only, size-capped); undefined when it cannot. */
function parseFileFromDisk(path: string): FileAst | undefined {
  const read = readSource(path);
  return 'text' in read ? parse(new SourceFile(path, read.text)).ast : undefined;
}

/** Declarations of this file and of the files it imports (transitively; each file once). */
export function visibleDeclarations(ast: FileAst, readFile: (path: string) => FileAst | undefined = parseFileFromDisk): Definition[] {
  const seen = new Set<string>([ast.path]);
  const out = declarations(ast);
  const queue = importedFiles(ast).map((i) => i.path);
  while (queue.length) {
    const path = queue.shift()!;
    if (seen.has(path)) continue;
    seen.add(path);
    const imported = readFile(path);
    if (!imported) continue;
    out.push(...declarations(imported));
    queue.push(...importedFiles(imported).map((i) => i.path));
  }
  return out;
}

/** Where the name under the cursor is defined: the first declaration in source order (profiles come after the base). */
export function definitionAt(ast: FileAst, offset: number, readFile?: (path: string) => FileAst | undefined): Definition | undefined {
  const t = targetAt(ast, offset);
  if (!t) return undefined;
  if (t.type === 'import') {
    const file = importedFiles(ast).find((i) => i.span.offset === t.span.offset);
    return file ? { kind: 'file', name: file.path, span: { file: file.path, line: 1, column: 1, offset: 0, length: 0 } } : undefined;
  }
  const name = t.type === 'name' ? t.name : t.type === 'output' ? t.stage : undefined;
  if (name === undefined) return undefined;
  return visibleDeclarations(ast, readFile).find((d) => d.name === name);
}

/** A kind's outputs for a stage's literal params (empty while a half-written stage cannot say). */
export function kindOutputs(catalog: KindCatalog, kindName: string, params: Record<string, unknown> = {}): Record<string, OutputSpec> {
  const kind = catalog.get(kindName);
  return (kind && outputsFor(kind, params)) ?? {};
}

/** A literal value of an expression, for the few params that shape a kind's outputs (exec's `outputs`). */
function literal(expr: Expr | undefined): unknown {
  if (!expr) return undefined;
  switch (expr.type) {
    case 'String':
      return expr.parts.every((p) => typeof p === 'string') ? expr.parts.join('') : undefined;
    case 'Number':
      return expr.value;
    case 'Bool':
      return expr.value;
    case 'List':
      return expr.items.map(literal);
    case 'Map':
      return Object.fromEntries(expr.entries.map((e) => [e.key, literal(e.value)]));
    default:
      return undefined;
  }
}

export function literalParams(stage: StageDecl): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const e of stage.entries) {
    const v = literal(e.value);
    if (v !== undefined) out[e.key] = v;
  }
  return out;
}

export interface Completion {
  label: string;
  kind: 'kind' | 'param' | 'setting' | 'output' | 'variable' | 'stage' | 'function';
  detail?: string;
}

/**
 * What may be typed at `offset`. Decided from the text before the cursor (the
 * buffer is usually half-written and does not parse there) and the parse of
 * the rest: after `stage x =` a kind; after `name.` the outputs of stage
 * `name`; at the start of a line inside a stage body its kind's params and the
 * stage settings; elsewhere the params and stages in scope.
 */
export function completionsAt(text: string, offset: number, path: string, catalog: KindCatalog): Completion[] {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const before = text.slice(lineStart, offset);
  const ast = parse(new SourceFile(path, text)).ast;

  if (/^\s*stage\s+[A-Za-z_][\w]*(\[[^\]]*\])?\s*=\s*[\w.]*$/.test(before)) {
    return catalog.names().map((n) => ({ label: n, kind: 'kind' as const, detail: catalog.get(n)!.summary }));
  }
  const member = /([A-Za-z_]\w*)(\[[^\]]*\])?\.(\w*)$/.exec(before);
  if (member) {
    const stage = visibleDeclarations(ast).find((d) => d.kind === 'stage' && d.name === member[1]);
    if (stage?.decl?.type === 'Stage') {
      const decl = stage.decl;
      return Object.keys(kindOutputs(catalog, decl.kind, literalParams(decl))).map((o) => ({
        label: o,
        kind: 'output' as const,
        detail: `output of ${decl.name} (${decl.kind})`,
      }));
    }
    return [];
  }
  const around = stageAround(ast, offset);
  if (around && /^\s*\w*$/.test(before)) {
    const kind = catalog.get(around.kind);
    const present = new Set(around.entries.map((e) => e.key));
    const props = (kind?.params.properties as Record<string, { description?: string }> | undefined) ?? {};
    const params = Object.entries(props)
      .filter(([k]) => !present.has(k))
      .map(([k, s]) => ({ label: k, kind: 'param' as const, detail: s.description }));
    const settings = STAGE_SETTINGS.filter((k) => !present.has(k)).map((k) => ({ label: k, kind: 'setting' as const }));
    return [...params, ...settings];
  }
  const names = visibleDeclarations(ast).map((d) => ({ label: d.name, kind: d.kind === 'param' ? ('variable' as const) : ('stage' as const) }));
  const unique = new Map(names.map((n) => [n.label, n]));
  return [...unique.values(), { label: 'env', kind: 'function', detail: 'env("NAME", default): an environment variable' }];
}

/** Markdown for the node under the cursor: a kind's reference, a param's schema, a declaration, an output. */
export function hoverAt(
  ast: FileAst,
  offset: number,
  catalog: KindCatalog,
  readFile?: (path: string) => FileAst | undefined,
): { markdown: string; span: SourceSpan } | undefined {
  const t = targetAt(ast, offset);
  if (!t) return undefined;
  switch (t.type) {
    case 'kind': {
      const kind = catalog.get(t.kind);
      return { markdown: kind ? kindMarkdown(kind) : `unknown stage kind \`${t.kind}\` (\`smke kinds\` lists them)`, span: t.span };
    }
    case 'param-key': {
      if ((STAGE_SETTINGS as readonly string[]).includes(t.key))
        return { markdown: `\`${t.key}\`: a stage setting, not part of the cache key (docs/language.md)`, span: t.span };
      const kind = catalog.get(t.kind);
      const row = kind && paramRows(kind).find((r) => r.name === t.key);
      if (!row) return undefined;
      const tags = [row.type, row.required ? 'required' : row.default !== undefined ? `default \`${row.default}\`` : 'optional'];
      return { markdown: `**${row.name}** (${tags.join(', ')}) — parameter of \`${t.kind}\`\n\n${row.description}`, span: t.span };
    }
    case 'output': {
      const def = visibleDeclarations(ast, readFile).find((d) => d.kind === 'stage' && d.name === t.stage);
      if (def?.decl?.type !== 'Stage') return undefined;
      const spec = kindOutputs(catalog, def.decl.kind, literalParams(def.decl))[t.output];
      if (!spec) return undefined;
      return { markdown: `**${t.stage}.${t.output}** (${spec.type}, \`${spec.path}\`): ${spec.description}`, span: t.span };
    }
    case 'name': {
      const def = visibleDeclarations(ast, readFile).find((d) => d.name === t.name);
      if (!def?.decl) return undefined;
      if (def.decl.type === 'Stage') {
        const matrix = def.decl.axes.length ? `[${def.decl.axes.map((a) => a.name).join(', ')}]` : '';
        return { markdown: `stage **${def.name}${matrix}** = \`${def.decl.kind}\` (${def.span.file}:${def.span.line})`, span: t.span };
      }
      return { markdown: `param **${def.name}** (${def.span.file}:${def.span.line})`, span: t.span };
    }
    case 'import':
      return { markdown: `import of \`${t.path}\``, span: t.span };
  }
}
