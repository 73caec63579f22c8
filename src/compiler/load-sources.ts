// Reads the root file and everything it imports (paths relative to the
// importing file), parses each once, and reports unreadable files, import
// cycles and missing or unsupported `smke 1` version lines.

import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { dirname, relative, resolve, isAbsolute } from 'node:path';
import type { FileAst, ImportDecl } from './ast.js';
import type { Diagnostics } from './diagnostic.js';
import { plainText } from './literals.js';
import { parse } from './parser.js';
import { SourceFile } from './source.js';

export const LANGUAGE_VERSION = '1';

/**
 * Largest source file read, in bytes: 20x the 100k-stage benchmark pipeline.
 * A larger "source" is a mistake (a data file, a device); reading it whole
 * would take the memory of the machine first.
 */
export const MAX_SOURCE_BYTES = 256 * 1024 * 1024;
/** Longest chain of imports (a imports b imports c ...): far beyond any real project, far below the stack limit. */
export const MAX_IMPORT_DEPTH = 64;

export type ReadSource = { text: string; sha256: string } | { error: string; tooLarge?: boolean };

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Reads a source file: regular files only, at most MAX_SOURCE_BYTES. Opened
 * non-blocking so that a FIFO is refused instead of waiting for a writer
 * forever; /dev/zero and friends are refused before a byte is read. The
 * sha256 is over the bytes on disk, as the plan cache checks them.
 */
export function readSource(path: string, limit = MAX_SOURCE_BYTES): ReadSource {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { error: code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { error: `${kindOf(st)}, not a regular file` };
    if (st.size > limit) return { tooLarge: true, error: `${st.size} bytes, more than the limit of ${limit}` };
    // The file may grow while it is read: read at most one byte past the limit.
    const buf = Buffer.allocUnsafe(Math.min(st.size, limit) + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n === buf.length) {
        if (n > limit) return { tooLarge: true, error: `more than the limit of ${limit} bytes` };
        break;
      }
    }
    const bytes = buf.subarray(0, n);
    return { text: bytes.toString('utf8'), sha256: createHash('sha256').update(bytes).digest('hex') };
  } catch (e) {
    return { error: (e as Error).message };
  } finally {
    closeSync(fd);
  }
}

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
    if (stack.length >= MAX_IMPORT_DEPTH) {
      diags.error('E0004', `imports nested more than ${MAX_IMPORT_DEPTH} files deep`, via?.path.span, {
        label: `\`${shown}\` would be file ${stack.length + 1} of one import chain`,
        help: 'import shared files from the root instead of chaining them through each other',
      });
      return;
    }
    const read: ReadSource =
      via === undefined && rootText !== undefined ? { text: rootText, sha256: createHash('sha256').update(rootText).digest('hex') } : readSource(abs);
    if ('error' in read) {
      const tooLarge = read.tooLarge === true;
      diags.error('E0005', `cannot read \`${shown}\`: ${read.error}`, via?.path.span, {
        label: via ? 'imported here' : undefined,
        help: tooLarge
          ? `a .smke file is at most ${MAX_SOURCE_BYTES / 1024 / 1024} MiB; keep data out of the pipeline and name it in \`inputs\``
          : via
            ? read.error === 'no such file'
              ? 'import paths are relative to the importing file'
              : 'an import names a .smke file (a regular file, not a pipe or device)'
            : 'give the path of a .smke file (a regular file), relative to the current directory',
      });
      return;
    }
    loaded.sources.push({ path: abs, sha256: read.sha256 });
    const src = new SourceFile(shown, read.text);
    loaded.texts.set(shown, src.text);
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
    // Point at the first word of the file, not the whole first declaration (nor a blank line before it).
    const at = first ? first.span.offset : Math.max(0, src.text.search(/\S/));
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
