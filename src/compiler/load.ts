// Reads the root file and everything it imports (paths relative to the
// importing file), parses each once, and reports unreadable files, import
// cycles and missing or unsupported `smke 1` version lines.

import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve, isAbsolute } from 'node:path';
import type { FileAst, ImportDecl } from './ast.js';
import type { Diagnostics } from './diagnostic.js';
import { plainText } from './literals.js';
import { parse } from './parser.js';
import { SourceFile } from './source.js';

export const LANGUAGE_VERSION = '1';

export interface Loaded {
  /** Files in dependency order: every file after the files it imports; the root last. */
  files: FileAst[];
  /** Every file read, root first, with its sha256. */
  sources: { path: string; sha256: string }[];
  /** Source text by display path, for rendering diagnostics. */
  texts: Map<string, string>;
}

/** How a file is named in diagnostics: relative to the project directory when inside it. */
export function displayPath(abs: string, projectDir: string): string {
  const rel = relative(projectDir, abs);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}

export function load(rootFile: string, projectDir: string, diags: Diagnostics, rootText?: string): Loaded {
  const loaded: Loaded = { files: [], sources: [], texts: new Map() };
  const done = new Set<string>();
  // The import chain being followed, for cycle detection and the cycle's path.
  const stack: { abs: string; via?: ImportDecl }[] = [];

  const visit = (abs: string, via: ImportDecl | undefined): void => {
    const onStack = stack.findIndex((s) => s.abs === abs);
    if (onStack !== -1) {
      const chain = [...stack.slice(onStack).map((s) => displayPath(s.abs, projectDir)), displayPath(abs, projectDir)];
      const labels = stack
        .slice(onStack + 1)
        .filter((s) => s.via)
        .map((s) => ({ span: s.via!.span, message: `which imports \`${displayPath(s.abs, projectDir)}\`` }));
      diags.error('E0006', `import cycle: ${chain.join(' -> ')}`, via?.span, {
        label: `imports \`${displayPath(abs, projectDir)}\`, which is already being imported`,
        labels,
        help: 'move what both files need into a third file that imports neither',
      });
      return;
    }
    if (done.has(abs)) return;
    done.add(abs);
    const shown = displayPath(abs, projectDir);
    let text: string;
    try {
      if (via === undefined && rootText !== undefined) text = rootText;
      else if (statSync(abs).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      else text = readFileSync(abs, 'utf8');
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
      diags.error('E0005', `cannot read \`${shown}\`: ${why}`, via?.path.span, {
        label: via ? 'imported here' : undefined,
        help: via ? 'import paths are relative to the importing file' : 'give the path of a .smke file, relative to the current directory',
      });
      return;
    }
    loaded.sources.push({ path: abs, sha256: createHash('sha256').update(text).digest('hex') });
    loaded.texts.set(shown, text);
    const src = new SourceFile(shown, text);
    const { ast, diagnostics, aborted } = parse(src);
    for (const d of diagnostics) diags.add(d);
    if (!aborted) checkVersion(ast, src, diags);
    stack.push({ abs, via });
    for (const item of ast.items) {
      if (item.type !== 'Import') continue;
      const rel = plainText(item.path);
      if (rel === undefined) {
        diags.error('E0020', 'an import path cannot be interpolated', item.path.span, {
          label: 'write the path literally',
          help: 'imports are read before any parameter has a value',
        });
        continue;
      }
      visit(resolve(dirname(abs), rel), item);
    }
    stack.pop();
    loaded.files.push(ast);
  };

  visit(resolve(projectDir, rootFile), undefined);
  return loaded;
}

function checkVersion(ast: FileAst, src: SourceFile, diags: Diagnostics): void {
  if (!ast.version) {
    const first = ast.items[0];
    // Point at the first word of the file, not the whole first declaration.
    const at = first ? first.span.offset : 0;
    const word = /^\S+/.exec(src.text.slice(at, at + 40))?.[0].length ?? 1;
    diags.error('E0003', 'missing version line `smke 1`', src.span(at, word), {
      label: 'expected `smke 1` before this',
      help: 'start every .smke file with the line `smke 1`',
    });
  } else if (ast.version.value !== LANGUAGE_VERSION) {
    diags.error('E0003', `unsupported language version \`${ast.version.value}\``, ast.version.span, {
      label: 'this smke understands version 1 only',
      help: 'write `smke 1`, or upgrade smke if the file was written for a newer one',
    });
  }
}
