// Output paths stay inside the stage's own directory. A kind's outputs are
// paths relative to the directory a stage writes; one written by the user
// (exec's `outputs`, download's file name) could otherwise name `../x`, an
// absolute path or smke's own metadata, and the runtime would check, link or
// publish something outside the entry. Refused at compile time, pointing at
// the value that made the path.

import type * as A from './ast.js';
import type { Diagnostics } from './diagnostic.js';
import type { OutputSpec } from './kind-catalog.js';
import { plainText } from './literals.js';
import { isOutputRef, type SourceSpan, type Value } from './plan.js';

/** Where the store keeps an entry's manifest, log and metrics (src/runtime/store.ts META_DIR). */
const META_DIR = '_smke';

/** What is wrong with an output path, or undefined when it names something inside the output directory. */
export function outputPathProblem(path: string, type: OutputSpec['type']): string | undefined {
  if (path === '') return 'is empty';
  if (path.includes('\0')) return 'contains a NUL character';
  if (path.startsWith('/')) return 'is absolute';
  const segments = path.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return "goes up out of the stage's directory (`..`)";
  if (segments[0] === META_DIR) return `is inside \`${META_DIR}/\`, where smke keeps the entry's manifest and log`;
  if (segments.length === 0 && type !== 'dir') return 'names the output directory itself, not a file in it';
  return undefined;
}

/**
 * Reports every output whose path is not inside the stage's directory.
 * Returns false when there was one.
 */
export function checkOutputPaths(
  outputs: Record<string, OutputSpec>,
  entries: readonly A.Entry[],
  params: Record<string, Value>,
  fallback: SourceSpan,
  instanceId: string,
  diags: Diagnostics,
): boolean {
  let ok = true;
  for (const [name, spec] of Object.entries(outputs)) {
    if (typeof spec?.path !== 'string') continue;
    const why = outputPathProblem(spec.path, spec.type);
    if (!why) continue;
    ok = false;
    diags.error(
      'E0022',
      `output \`${name}\` of \`${instanceId}\` has the path ${JSON.stringify(spec.path)}, which ${why}`,
      whereWritten(spec.path, entries, params) ?? fallback,
      {
        label: 'this value makes the path',
        help: 'outputs are paths relative to the stage\'s output directory: write e.g. `"model/weights.bin"`, with no `..`, no leading `/`, nothing under `_smke/`',
      },
    );
  }
  return ok;
}

/**
 * The span of the value that made `path`: a string literal with this text (or
 * an interpolated one that could have made it), else the entry whose value
 * holds the path, else undefined.
 */
function whereWritten(path: string, entries: readonly A.Entry[], params: Record<string, Value>): SourceSpan | undefined {
  for (const e of entries) {
    if (!e.value) continue;
    const todo: A.Expr[] = [e.value];
    while (todo.length > 0) {
      const x = todo.pop()!;
      if (x.type === 'String' && couldMake(x, path)) return x.span;
      // Pushed one by one: spreading a 200,000-item list into push() overflows the stack.
      if (x.type === 'List') for (const item of x.items) todo.push(item);
      else if (x.type === 'Map') for (const m of x.entries) todo.push(m.value);
      else if (x.type === 'Paren') todo.push(x.expr);
      else if (x.type === 'Binary') {
        todo.push(x.first);
        for (const r of x.rest) todo.push(r.right);
      }
    }
  }
  for (const e of entries) if (e.value && Object.hasOwn(params, e.key) && holds(params[e.key]!, path)) return e.value.span;
  return undefined;
}

/** Whether a string literal is, or with its interpolations filled in could be, `text`. */
function couldMake(s: A.StringExpr, text: string): boolean {
  const plain = plainText(s);
  if (plain !== undefined) return plain === text;
  let at = 0;
  for (const [i, p] of s.parts.entries()) {
    if (typeof p !== 'string') continue;
    const found = i === 0 ? (text.startsWith(p) ? 0 : -1) : text.indexOf(p, at);
    if (found === -1 || (i === s.parts.length - 1 && !text.endsWith(p))) return false;
    at = found + p.length;
  }
  return true;
}

function holds(v: Value, text: string): boolean {
  const todo: Value[] = [v];
  while (todo.length > 0) {
    const x = todo.pop()!;
    if (x === text) return true;
    if (Array.isArray(x)) for (const y of x) todo.push(y);
    else if (x !== null && typeof x === 'object' && !isOutputRef(x)) for (const y of Object.values(x)) todo.push(y);
  }
  return false;
}
