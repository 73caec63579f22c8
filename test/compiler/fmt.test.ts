// `smke fmt`: idempotent, AST-preserving, comment-preserving, over every example.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FileAst } from '../../src/compiler/ast.js';
import { formatSource } from '../../src/compiler/index.js';
import { parse } from '../../src/compiler/parser.js';
import { SourceFile } from '../../src/compiler/source.js';

const root = new URL('../../', import.meta.url).pathname;

function examples(dir = join(root, 'examples')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? examples(join(dir, e.name)) : e.name.endsWith('.smke') ? [join(dir, e.name)] : [],
  );
}

/** The AST without positions, raw text kept: what must not change when formatting. */
function shape(text: string): unknown {
  const { ast, diagnostics } = parse(new SourceFile('f.smke', text));
  expect(diagnostics).toEqual([]);
  return JSON.parse(
    JSON.stringify({ version: ast.version?.value, items: ast.items } satisfies Partial<FileAst> & { version: unknown }, (k, v) =>
      k === 'span' || k === 'keySpan' || k === 'nameSpan' || k === 'kindSpan' || k === 'memberSpan' || k === 'calleeSpan' || k === 'opSpan' || k === 'end'
        ? undefined
        : v,
    ),
  );
}

function fmt(text: string): string {
  const r = formatSource('f.smke', text);
  if (!('formatted' in r)) throw new Error(`does not parse: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return r.formatted;
}

function comments(text: string): string[] {
  return parse(new SourceFile('f.smke', text)).ast.comments.map((c) => c.text.trimEnd());
}

const messy = `# header comment
smke   1
import "x.smke"   # trailing on import
param a=1 param b = [1,2,
  # inside a list
  3,]
# before profile

profile mini default { param a = 2   # why two
  stage s = exec { argv=["x"] } }
stage s[lr in [0.1,0.2],seed in [1,2]]=exec{argv=["train","\${lr}"]+[] outputs={m="m.json","k k"=env("X",1)}
resources{cpus=2 mem=1GB}
  retries=1 # retry once


  after=[t] }
stage t = exec { argv = [
  "a", # first
  s[*,1].m, -(1+2)*3,
  """
    multi
      line
  """,
] }
# the end
`;

describe('smke fmt', () => {
  const files = examples();

  it('has examples to format', () => {
    expect(files.length).toBeGreaterThanOrEqual(4);
  });

  for (const file of files) {
    it(`keeps ${file.slice(root.length)} formatted, idempotent and unchanged in meaning`, () => {
      const text = readFileSync(file, 'utf8');
      const once = fmt(text);
      expect(once).toBe(text);
      expect(fmt(once)).toBe(once);
      expect(shape(once)).toEqual(shape(text));
      expect(comments(once)).toEqual(comments(text));
    });
  }

  it('lays out a messy file canonically, keeping every comment and the AST', () => {
    const once = fmt(messy);
    expect(fmt(once)).toBe(once);
    expect(shape(once)).toEqual(shape(messy));
    expect(comments(once)).toEqual(comments(messy));
    expect(once).toBe(`# header comment
smke 1

import "x.smke" # trailing on import
param a = 1
param b = [
  1,
  2,
  # inside a list
  3,
]
# before profile

profile mini default {
  param a = 2 # why two
  stage s = exec {
    argv = ["x"]
  }
}
stage s[lr in [0.1, 0.2], seed in [1, 2]] = exec {
  argv = ["train", "\${lr}"] + []
  outputs = { m = "m.json", "k k" = env("X", 1) }
  resources {
    cpus = 2
    mem = 1GB
  }
  retries = 1 # retry once

  after = [t]
}
stage t = exec {
  argv = [
    "a", # first
    s[*, 1].m,
    -(1 + 2) * 3,
    """
    multi
      line
  """,
  ]
}
# the end
`);
  });

  it('breaks long lists one item per line', () => {
    const long = `smke 1\nparam l = [${Array.from({ length: 30 }, (_, i) => `"item${i}"`).join(', ')}]\n`;
    const out = fmt(long);
    expect(out.split('\n').length).toBeGreaterThan(30);
    expect(fmt(out)).toBe(out);
    expect(shape(out)).toEqual(shape(long));
  });

  it('refuses a file with syntax errors', () => {
    expect('diagnostics' in formatSource('f.smke', 'smke 1\nstage = {')).toBe(true);
  });
});
