// Glob expansion for declared inputs (`data/*.tsv`, `src/**/*.py`). Node 20
// has no fs.glob, and pulling a dependency in for this is not worth it: the
// walk starts at the pattern's static prefix so `data/**` never scans the
// whole project.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export function isGlob(pattern: string): boolean {
  return /[*?[{]/.test(pattern);
}

/** Translate one glob into an anchored regex over '/'-separated relative paths. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        // `**/` matches zero or more whole directories; a trailing `**` matches everything below.
        if (pattern[i + 2] === '/') {
          re += '(?:[^/]*(?:/|$))*';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '{') {
      const end = pattern.indexOf('}', i + 1);
      if (end < 0) re += '\\{';
      else {
        re += `(?:${pattern
          .slice(i + 1, end)
          .split(',')
          .map((alt) => globToRegExp(alt).source.slice(1, -1))
          .join('|')})`;
        i = end;
      }
    } else re += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Files matching `pattern` under `root`, as sorted '/'-separated paths
 * relative to `root` (sorted so the key never depends on readdir order).
 */
export function expandGlob(root: string, pattern: string, onDir?: (rel: string) => void): string[] {
  const segments = pattern.split('/');
  const staticParts: string[] = [];
  for (const s of segments) {
    if (isGlob(s)) break;
    staticParts.push(s);
  }
  const base = staticParts.join('/');
  const re = globToRegExp(pattern);
  const out: string[] = [];
  const walk = (rel: string): void => {
    let entries;
    try {
      entries = readdirSync(join(root, rel), { withFileTypes: true });
    } catch {
      return;
    }
    onDir?.(rel);
    for (const e of entries) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(child);
      else if ((e.isFile() || e.isSymbolicLink()) && re.test(child)) out.push(child);
    }
  };
  walk(base);
  return out.sort();
}
