// The fast path and the chevrotain parser must build the same AST for every
// file the fast path accepts, and the fast path must accept ordinary files.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fastParse } from '../../src/compiler/fastparse.js';
import { MAX_DEPTH, parseWithRecovery } from '../../src/compiler/parser.js';
import { SourceFile } from '../../src/compiler/source.js';

const root = new URL('../../', import.meta.url).pathname;
const docs = ['docs/language.md', 'docs/errors.md'].map((f) => readFileSync(join(root, f), 'utf8'));
const samples = [
  ...readdirSync(join(root, 'examples'))
    .filter((f) => f.endsWith('.smke'))
    .map((f) => readFileSync(join(root, 'examples', f), 'utf8')),
  ...docs.flatMap((md) => [...md.matchAll(/```smke\n([\s\S]*?)```/g)].map((m) => m[1]!)),
  'smke 1\nparam x = [1, -2.5e3, 10GB, "a\\n${b}", """\n  two\n   lines ${c}\n  """, { k = 1, "q" = [] }, (1 + 2) * 3 % 4 - -1]\n',
  'smke 1\nstage s[a in [1, 2,], b in x,] = k.v.w { e = f(1, 2,), g { h = 1 }, i = s[*, 1,].o, j = true + null }\n',
  '',
  'smke 1',
];

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * An AST as plain data. The fast parser's compact nodes keep spans as
 * offsets and serialise to the recovering parser's plain form, so the two
 * are compared as JSON (which drops undefined fields on both sides alike).
 */
function plain(ast: unknown): unknown {
  return JSON.parse(JSON.stringify(ast));
}

const PIECES = [' ', '\n', ',', '-', '(', ')', '[', ']', '{', '}', '#c\n', '"s"', '1', 'x', '.y', '*', '"""\n z\n"""', 'default', '\r'];

describe('the fast parser', () => {
  it('accepts every example and docs example, with the same AST as chevrotain', () => {
    for (const text of samples) {
      const src = new SourceFile('f.smke', text);
      const slow = parseWithRecovery(src);
      if (slow.diagnostics.length > 0) continue; // docs/errors.md shows broken files on purpose
      const fast = fastParse(src, MAX_DEPTH);
      expect(fast, text).toBeDefined();
      expect(plain(fast)).toEqual(plain(slow.ast));
    }
  });

  it('agrees with chevrotain on 3000 mutated files, and gives up wherever chevrotain reports an error', () => {
    const r = rng(7);
    let accepted = 0;
    for (let c = 0; c < 3000; c++) {
      let text = samples[c % samples.length]!;
      for (let k = 0; k < 1 + Math.floor(r() * 2); k++) {
        const at = Math.floor(r() * (text.length + 1));
        text = r() < 0.5 ? text.slice(0, at) + PIECES[Math.floor(r() * PIECES.length)]! + text.slice(at) : text.slice(0, at) + text.slice(at + 1);
      }
      const src = new SourceFile('f.smke', text);
      const fast = fastParse(src, MAX_DEPTH);
      if (!fast) continue;
      accepted++;
      const slow = parseWithRecovery(src);
      expect(slow.diagnostics, text).toEqual([]);
      expect(plain(fast), text).toEqual(plain(slow.ast));
    }
    expect(accepted).toBeGreaterThan(300);
  });

  it('leaves deep nesting to the recovering parser', () => {
    expect(fastParse(new SourceFile('f.smke', `smke 1\nparam x = ${'['.repeat(MAX_DEPTH + 1)}${']'.repeat(MAX_DEPTH + 1)}\n`), MAX_DEPTH)).toBeUndefined();
    expect(fastParse(new SourceFile('f.smke', `smke 1\nparam x = ${'['.repeat(MAX_DEPTH - 1)}${']'.repeat(MAX_DEPTH - 1)}\n`), MAX_DEPTH)).toBeDefined();
  });
});
