// The layering of src/ (docs/architecture.md), checked on the import statements
// themselves so that a violation fails here, in the file that introduced it,
// rather than showing up later as a slow CLI start or a cycle.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '..', '..', 'src');

/** Static imports, re-exports (type-only ones too: they are dependencies of the design) and dynamic import('...'). */
const IMPORT = /^\s*(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;

interface Edge {
  from: string; // path under src/, e.g. 'runtime/job-worker.ts'
  to: string; // resolved path under src/, .js written as .ts
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every relative import in `text` (a file at `file`, relative to src/), resolved. */
export function importsOf(file: string, text: string): Edge[] {
  const edges: Edge[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    if (!spec.startsWith('.')) continue;
    const to = join(dirname(file), spec).replace(/\.js$/, '.ts');
    edges.push({ from: file, to });
  }
  return edges;
}

const area = (path: string): string => path.split('/')[0]!;

/**
 * The allowed cross-area imports. An area may always import within itself.
 * `stages` is reached only through the registry (values), kind-loader.ts (one kind, for a
 * worker), kind-versions.ts (the versions, read without loading any kind) and stage-kind.ts
 * (the StageKind type).
 */
const ALLOWED: Record<string, (to: string) => boolean> = {
  cli: (to) => ['compiler', 'runtime', 'lsp'].includes(area(to)) || to === 'stages/registry.ts',
  runtime: (to) => area(to) === 'compiler' || ['stages/registry.ts', 'stages/kind-loader.ts', 'stages/kind-versions.ts', 'stages/stage-kind.ts'].includes(to),
  compiler: () => false,
  lsp: (to) => area(to) === 'compiler',
  stages: (to) => ['compiler', 'ml', 'data'].includes(area(to)),
  ml: (to) => area(to) === 'data',
  data: () => false,
};

/**
 * Violations accepted for now, each to be fixed by its area's owner; listed so that any new one
 * fails. None today: keep it that way.
 */
const KNOWN: string[] = [];

export function violations(edges: Edge[]): string[] {
  return edges.filter((e) => area(e.from) !== area(e.to) && !(ALLOWED[area(e.from)]?.(e.to) ?? false)).map((e) => `src/${e.from} imports src/${e.to}`);
}

const allEdges = sourceFiles(SRC).flatMap((f) => importsOf(relative(SRC, f), readFileSync(f, 'utf8')));

describe('import direction in src/', () => {
  it('finds the imports it checks (the parser is not blind)', () => {
    // Known edges of today's tree: if these go missing the regex broke, not the design.
    expect(allEdges).toContainEqual({ from: 'runtime/attempt.ts', to: 'stages/registry.ts' });
    expect(allEdges.filter((e) => area(e.from) === 'stages' && area(e.to) === 'ml').length).toBeGreaterThan(5);
    expect(allEdges.some((e) => e.from.startsWith('cli/') && e.to === 'stages/registry.ts')).toBe(true); // a dynamic import
  });

  it('every area imports only what the layering allows', () => {
    expect(violations(allEdges).filter((v) => !KNOWN.includes(v))).toEqual([]);
  });

  it('each known violation still exists (delete it from KNOWN once fixed)', () => {
    expect(KNOWN.filter((v) => !violations(allEdges).includes(v))).toEqual([]);
  });

  it('reports each kind of violation it is meant to catch', () => {
    const cases: [string, string][] = [
      ['compiler/build.ts', "import { runPlan } from '../runtime/orchestrate.js';"],
      ['compiler/build.ts', "import type { StageKind } from '../stages/stage-kind.js';"],
      ['ml/models.ts', "import { kinds } from '../stages/ml/index.js';"],
      ['data/loader.ts', "export { registry } from '../stages/registry.js';"],
      ['data/loader.ts', "const m = await import('../ml/backend.js');"],
      ['runtime/job-worker.ts', "import { sShmkeRun } from '../stages/ml/s-smke-run.js';"],
      ['runtime/job-worker.ts', "import '../cli/main.js';"],
      ['stages/ml/loop.ts', "import { runPlan } from '../../runtime/orchestrate.js';"],
      ['cli/run.ts', "import { tf } from '../ml/backend.js';"],
    ];
    for (const [file, line] of cases) expect(violations(importsOf(file, `// x\n${line}\n`)), `${file}: ${line}`).toHaveLength(1);
    expect(
      violations(importsOf('runtime/job-worker.ts', "import { registry } from '../stages/registry.js';\nimport type { X } from '../compiler/plan.js';")),
    ).toEqual([]);
  });
});
