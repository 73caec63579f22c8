// Comments stand alone (docs/architecture.md, "Comments"): a comment that sends the
// reader to a document outside the repository (a shared folder, personal notes, a
// Markdown file that is not here) explains nothing to whoever clones it, and notes
// about how the work was organised (an issue number, a wave) age into noise. Every
// comment in src/, test/, bench/, scripts/ and bin/ is read with the TypeScript
// parser, so strings and template literals that merely contain such text are not
// comments.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const DIRS = ['src', 'test', 'bench', 'scripts', 'bin'];
const CODE = /\.(ts|mts|js|mjs)$/;

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : CODE.test(e.name) || e.name.endsWith('.sh') ? [join(dir, e.name)] : [],
  );
}

interface Comment {
  line: number;
  text: string;
}

/** Every comment of a file: `//` and block comments of JS/TS (found by the parser), `#` lines of a shell script. */
export function commentsOf(path: string, text: string): Comment[] {
  if (path.endsWith('.sh')) {
    return text.split('\n').flatMap((l, i) => (/^\s*#(?!!)/.test(l) ? [{ line: i + 1, text: l }] : []));
  }
  const sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, path.endsWith('ts') ? ts.ScriptKind.TS : ts.ScriptKind.JS);
  const seen = new Set<number>();
  const out: Comment[] = [];
  const take = (ranges: ts.CommentRange[] | undefined) => {
    for (const r of ranges ?? []) {
      if (seen.has(r.pos)) continue;
      seen.add(r.pos);
      out.push({ line: sf.getLineAndCharacterOfPosition(r.pos).line + 1, text: text.slice(r.pos, r.end) });
    }
  };
  const visit = (node: ts.Node) => {
    take(ts.getLeadingCommentRanges(text, node.pos));
    take(ts.getTrailingCommentRanges(text, node.end));
    // getChildren includes tokens: a comment before a closing brace belongs to the `}` token.
    for (const child of node.getChildren(sf)) visit(child);
  };
  visit(sf);
  return out.sort((a, b) => a.line - b.line);
}

/** Why a comment (in `file`, a path relative to the repository root) points outside the repository; none when it does not. */
export function outsidePointers(file: string, comment: string, exists: (repoPath: string) => boolean): string[] {
  const text = comment.replace(/\bhttps?:\/\/\S+/g, ''); // a URL is a citation, not a path into the repository
  const found: string[] = [];
  if (/(^|[^\w.-])(\.\.\/)*shared\/\S/.test(text)) found.push('a shared/ folder that is not part of the repository');
  if (/(^|[^\w.-])notes\/\S/.test(text)) found.push('notes/, which is not part of the repository');
  for (const m of text.matchAll(/(?:\.{1,2}\/|[\w-]+\/)*[\w-]+\.md\b/g)) {
    const ref = m[0];
    if (/(^|\/)(shared|notes)\//.test(ref)) continue; // reported above
    const candidates = ref.startsWith('./') || ref.startsWith('../') ? [join(dirname(file), ref)] : ref.includes('/') ? [ref] : [ref, `docs/${ref}`];
    if (!candidates.some((c) => !c.startsWith('..') && exists(c))) found.push(`${ref}, which is not in the repository`);
  }
  if (/\bissue #\d+/i.test(text)) found.push('an issue number (say what the code must do instead)');
  if (/\bwave \d+\b/i.test(text)) found.push('a work wave (a process note)');
  if (/\bthe lead (said|asked|wants|decided)\b/i.test(text)) found.push('who asked for it (a process note)');
  return found;
}

const inRepo = (p: string) => existsSync(join(ROOT, p));
const all = DIRS.flatMap((d) => files(join(ROOT, d))).map((f) => {
  const path = relative(ROOT, f).split('\\').join('/');
  return { path, comments: commentsOf(path, readFileSync(f, 'utf8')) };
});

describe('comments stand alone', () => {
  it('reads the comments it checks (the parser is not blind)', () => {
    const count = all.reduce((n, f) => n + f.comments.length, 0);
    expect(count).toBeGreaterThan(1000);
    const fingerprint = all.find((f) => f.path === 'src/runtime/fingerprint.ts');
    expect(fingerprint?.comments[0]?.text).toMatch(/^\/\/ The cache key of a stage instance/);
    expect(all.find((f) => f.path === 'scripts/slurm-local.sh')?.comments.length).toBeGreaterThan(3);
  });

  it('no comment points outside the repository or carries a process note', () => {
    const bad = all.flatMap((f) => f.comments.flatMap((c) => outsidePointers(f.path, c.text, inRepo).map((why) => `${f.path}:${c.line}: ${why}`)));
    expect(bad).toEqual([]);
  });

  it('reports each kind of pointer it is meant to catch', () => {
    const exists = (p: string) => ['docs/runtime.md', 'README.md', 'src/runtime/notes.md'].includes(p);
    const cases: [string, string][] = [
      ['src/runtime/digest.ts', '// faster than sha256 (shared/platform.md)'],
      ['src/runtime/digest.ts', '// see ../shared/design.md'],
      ['src/compiler/plan.ts', '/* the contract (notes/plan-contract.txt) */'],
      ['src/ml/optim.ts', "/** s-smke.md's pretraining settings. */"],
      ['src/ml/optim.ts', '// docs/method-notes.md, "Optimisation"'],
      ['src/runtime/locks.ts', '// as in ../docs/runtime.md (resolved from src/runtime/)'],
      ['test/adversarial/x.test.ts', '// Adversarial archives (issue #11, "writes outside")'],
      ['src/cli/run.ts', '// added in wave 2'],
      ['src/cli/run.ts', '// the lead asked for this flag'],
    ];
    for (const [file, comment] of cases) expect(outsidePointers(file, comment, exists), `${file}: ${comment}`).toHaveLength(1);
    const fine: [string, string][] = [
      ['src/runtime/fingerprint.ts', '// The cache key (docs/runtime.md, "The cache key").'],
      ['src/runtime/locks.ts', '// README.md and runtime.md say so; see https://example.org/shared/notes/x.md'],
      ['src/runtime/locks.ts', '// ./notes.md beside this file'],
      ['src/stages/report/paper-run.ts', '// writes report.md'],
    ];
    for (const [file, comment] of fine)
      expect(
        outsidePointers(file, comment, (p) => exists(p) || p === 'docs/report.md'),
        comment,
      ).toEqual([]);
  });

  it('finds comments, and only comments, in code', () => {
    const text = [
      "const a = 'see shared/x.md'; // a trailing comment",
      'const t = `// not a comment ${a} /* nor this */`;',
      'function f() {',
      '  return 1;',
      '  /* before the closing brace */',
      '}',
      '/** at the end of the file */',
    ].join('\n');
    expect(commentsOf('x.ts', text).map((c) => [c.line, c.text])).toEqual([
      [1, '// a trailing comment'],
      [5, '/* before the closing brace */'],
      [7, '/** at the end of the file */'],
    ]);
    expect(commentsOf('x.sh', '#!/bin/sh\n# a comment\necho "# not one"\n').map((c) => c.text)).toEqual(['# a comment']);
  });
});
