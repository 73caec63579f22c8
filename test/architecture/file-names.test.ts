// File names in src/ say what a file holds (docs/architecture.md, "File names"). A
// basename used twice (three `format.ts` once) makes every stack trace, editor tab
// and review comment ambiguous, so basenames are unique across src/; only index.ts,
// an area's list of what it offers, repeats. Stage kinds follow one layout: the
// descriptor `<name>.ts`, its implementation `<name>-run.ts`, and each area's
// index.ts listing the kinds and defining none.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Basenames that may repeat across src/. */
const REPEATABLE = new Set(['index.ts']);

/** Each basename used by more than one file (paths relative to src/), e.g. 'format.ts: compiler/format.ts, data/format.ts'. */
export function duplicateNames(paths: string[]): string[] {
  const byName = new Map<string, string[]>();
  for (const p of paths) byName.set(basename(p), [...(byName.get(basename(p)) ?? []), p]);
  return [...byName]
    .filter(([name, ps]) => ps.length > 1 && !REPEATABLE.has(name))
    .map(([name, ps]) => `${name}: ${ps.sort().join(', ')}`)
    .sort();
}

/** Lower-case words joined by hyphens: `noop-snapshot.ts`, not `noopSnapshot.ts` or `s_smke.ts`. */
export function badlyCased(paths: string[]): string[] {
  return paths.filter((p) => !/^[a-z0-9]+(-[a-z0-9]+)*\.ts$/.test(basename(p)));
}

/** Stage files (relative to src/) that break the descriptor/runner layout. */
export function layoutViolations(files: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [path, text] of files) {
    const m = /^stages\/([^/]+)\/([^/]+)\.ts$/.exec(path);
    if (!m) continue;
    const area = m[1]!;
    const name = m[2]!;
    if (name.endsWith('-run') && !files.has(`stages/${area}/${name.slice(0, -'-run'.length)}.ts`))
      out.push(`${path}: an implementation without its descriptor ${name.slice(0, -'-run'.length)}.ts`);
    if (name === 'index') {
      const defined = [...text.matchAll(/^export\s+(?:const|let|function|class)\s+(\w+)/gm)].map((d) => d[1]).filter((n) => n !== 'kinds');
      if (defined.length) out.push(`${path}: defines ${defined.join(', ')}; an index.ts only lists its area's kinds`);
      if (/:\s*StageKind\s*=\s*\{/.test(text)) out.push(`${path}: defines a kind; an index.ts only lists its area's kinds`);
    }
  }
  return out.sort();
}

const paths = sourceFiles(SRC).map((f) => relative(SRC, f).split('\\').join('/'));
const stageFiles = new Map(paths.filter((p) => p.startsWith('stages/')).map((p) => [p, readFileSync(join(SRC, p), 'utf8')]));

describe('file names in src/', () => {
  it('reads the tree it checks (the walk is not blind)', () => {
    expect(paths).toContain('runtime/orchestrate.ts');
    expect(paths.filter((p) => basename(p) === 'index.ts').length).toBeGreaterThan(4);
    expect([...stageFiles.keys()].filter((p) => p.endsWith('-run.ts')).length).toBeGreaterThan(5);
  });

  it('no two files share a basename, except index.ts', () => {
    expect(duplicateNames(paths)).toEqual([]);
  });

  it('every file name is lower-case words joined by hyphens', () => {
    expect(badlyCased(paths)).toEqual([]);
  });

  it('stage kinds follow <name>.ts + <name>-run.ts, and index.ts only lists kinds', () => {
    expect(layoutViolations(stageFiles)).toEqual([]);
  });

  it('reports each kind of violation it is meant to catch', () => {
    expect(duplicateNames(['compiler/format.ts', 'data/format.ts', 'runtime/renderers/format.ts', 'a/index.ts', 'b/index.ts', 'c/x.ts'])).toEqual([
      'format.ts: compiler/format.ts, data/format.ts, runtime/renderers/format.ts',
    ]);
    expect(badlyCased(['stages/ml/s_smke.ts', 'runtime/noopSnapshot.ts', 'data/Loader.ts', 'runtime/noop-snapshot.ts', 'ml/vit2.ts'])).toEqual([
      'stages/ml/s_smke.ts',
      'runtime/noopSnapshot.ts',
      'data/Loader.ts',
    ]);
    const bad = new Map([
      ['stages/data/karpathy-run.ts', ''],
      ['stages/data/karpathy-kinds.ts', ''],
      ['stages/eval/index.ts', "export const evalZeroshot: StageKind = {\n  name: 'eval.zeroshot',\n};\nexport const kinds = [evalZeroshot];\n"],
      ['stages/exec/index.ts', "import { execKind } from './exec.js';\nexport const kinds: StageKind[] = [execKind];\n"],
      ['stages/exec/exec.ts', ''],
      ['stages/exec/exec-run.ts', ''],
    ]);
    expect(layoutViolations(bad)).toEqual([
      'stages/data/karpathy-run.ts: an implementation without its descriptor karpathy.ts',
      "stages/eval/index.ts: defines a kind; an index.ts only lists its area's kinds",
      "stages/eval/index.ts: defines evalZeroshot; an index.ts only lists its area's kinds",
    ]);
  });
});
