// Mutated examples (deletions, insertions, byte flips), thousands of them,
// seeded: every compile must end in a plan or in diagnostics whose spans lie
// inside the file they name, and rendering them must not fail.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile, formatSource } from '../../src/compiler/index.js';
import { renderDiagnostics } from '../../src/compiler/render-diagnostics.js';
import { parse, parseWithRecovery, RECOVERY_WINDOW } from '../../src/compiler/parser.js';
import { SourceFile } from '../../src/compiler/source.js';
import { catalog } from './helpers.js';

const examplesDir = new URL('../../examples/', import.meta.url).pathname;
const examples = readdirSync(examplesDir)
  .filter((f) => f.endsWith('.smke'))
  .map((f) => ({ name: f, text: readFileSync(join(examplesDir, f), 'utf8') }));

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SNIPPETS = [
  '{',
  '}',
  '[',
  ']',
  '(',
  ')',
  '"',
  '"""',
  '${',
  '}',
  '=',
  ',',
  '.',
  '*',
  '-',
  '#',
  '\n',
  'stage',
  'param',
  'profile',
  'import',
  'default',
  'in',
  'smke 1',
  'x.out',
  'glue[*]',
  '[*]',
  '1e',
  '10GB',
  '2h',
  '\\',
  '\0',
  '\u00e9',
  '\ud83d',
  'env(',
  'resources {',
  'after = [',
  '${x',
  'true',
  'null',
];

function mutate(text: string, r: () => number): string {
  let t = text;
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * (t.length + 1));
    const op = r();
    if (op < 0.35) t = t.slice(0, at) + t.slice(at + 1 + Math.floor(r() * 12));
    else if (op < 0.7) t = t.slice(0, at) + SNIPPETS[Math.floor(r() * SNIPPETS.length)]! + t.slice(at);
    else t = t.slice(0, at) + String.fromCharCode(Math.floor(r() * (r() < 0.8 ? 256 : 65536))) + t.slice(at + 1);
  }
  return t;
}

function checkSpans(result: ReturnType<typeof compile>, rootName: string, rootText: string): void {
  for (const d of result.diagnostics) {
    expect(d.code).toMatch(/^E\d{4}$/);
    expect(d.message.length).toBeGreaterThan(0);
    for (const span of [d.span, ...(d.labels ?? []).map((l) => l.span)]) {
      if (!span) continue;
      const text = span.file === rootName ? rootText : result.texts?.get(span.file);
      expect(text, `span in unknown file ${span.file}`).toBeDefined();
      expect(span.offset).toBeGreaterThanOrEqual(0);
      expect(span.length).toBeGreaterThanOrEqual(0);
      expect(span.offset + span.length).toBeLessThanOrEqual(text!.length);
      if (text!.length > 0) expect(span.length).toBeGreaterThanOrEqual(1);
      expect(new SourceFile(span.file, text!).position(span.offset)).toEqual({ line: span.line, column: span.column });
    }
  }
}

describe('fuzzing the compiler with mutated examples', () => {
  for (const [i, ex] of examples.entries()) {
    it(`${ex.name}: 800 mutations end in a plan or in diagnostics inside the file`, () => {
      const r = rng(0x5eed + i);
      let failures = 0;
      for (let c = 0; c < 800; c++) {
        const text = mutate(ex.text, r);
        const result = compile({ file: join(examplesDir, ex.name), text, projectDir: examplesDir, catalog, env: {} });
        if (!result.plan) {
          failures++;
          expect(result.diagnostics.some((d) => d.severity === 'error')).toBe(true);
        }
        checkSpans(result, ex.name, text);
        renderDiagnostics(result.diagnostics, new Map([...(result.texts ?? []), [ex.name, text]]));
        const f = formatSource(ex.name, text);
        if ('formatted' in f) expect(formatSource(ex.name, f.formatted)).toEqual(f);
      }
      // The mutations must mostly break the file, or this test proves little.
      expect(failures).toBeGreaterThan(400);
    });
  }

  it('survives random bytes, truncations and pathological nesting', () => {
    const r = rng(42);
    const inputs: string[] = [];
    for (let k = 0; k < 200; k++) inputs.push(Array.from({ length: Math.floor(r() * 400) }, () => String.fromCharCode(Math.floor(r() * 256))).join(''));
    for (const ex of examples) for (let cut = 0; cut < ex.text.length; cut += 7) inputs.push(ex.text.slice(0, cut));
    inputs.push(`smke 1\nparam x = ${'['.repeat(10000)}${']'.repeat(10000)}\n`);
    inputs.push(`smke 1\nparam x = ${'('.repeat(10000)}`);
    inputs.push(`smke 1\nparam x = ${'-'.repeat(100000)}1\n`);
    inputs.push(`smke 1\nparam x = ${Array(50000).fill('1').join(' + ')}\n`);
    inputs.push(`smke 1\nparam x = "${'\\n'.repeat(200000)}"\n`);
    for (const text of inputs) {
      const result = compile({ file: 'fuzz.smke', text, projectDir: examplesDir, catalog, env: {} });
      if (!result.plan) expect(result.diagnostics.length).toBeGreaterThan(0);
      checkSpans(result, 'fuzz.smke', text);
    }
  });

  it('reads a large broken file only around its first error, with the diagnostics of a whole read', () => {
    const stages = Array.from({ length: 30000 }, (_, i) => `stage s${i} = exec {\n  argv = ["run", "${'x'.repeat(100)}"${i ? `, s${i - 1}.out` : ''}]\n}\n`);
    const big = `smke 1\n${stages.join('')}`;
    expect(big.length).toBeGreaterThan(RECOVERY_WINDOW);
    // One error near the end: the window's diagnostics are the whole file's.
    const late = `${big}stage broken = exec { argv = [ }\n`;
    const src = new SourceFile('big.smke', late);
    const windowed = parse(src);
    expect(windowed.diagnostics.map((d) => [d.code, d.message, d.span?.line, d.span?.column])).toEqual(
      parseWithRecovery(src).diagnostics.map((d) => [d.code, d.message, d.span?.line, d.span?.column]),
    );
    expect(windowed.diagnostics[0]?.span?.line).toBe(late.split('\n').length - 1);
    expect(windowed.ast.items).toHaveLength(30001);
    // An early error and a late one: the early one is reported, with a note that the rest was not read.
    const early = `smke 1\nstage a = exec { argv = [ }\n${big.slice(7)}stage z = exec { argv = ( }\n`;
    const r = compile({ file: 'big.smke', text: early, projectDir: examplesDir, catalog, env: {} });
    const syntax = r.diagnostics.filter((d) => d.code === 'E0001');
    expect(syntax.map((d) => d.span?.line)).toEqual([2]);
    expect(syntax[0]?.notes?.[0]).toMatch(/only the next 4 MB were read; errors after line \d+, column 1 are not reported/);
    checkSpans(r, 'big.smke', early);
  });

  it('reads 50 MB files: a long comment, a long string, and a broken stage after them', () => {
    const mb50 = 50 * 1024 * 1024;
    const comment = `smke 1\n#${'x'.repeat(mb50)}\nstage a = exec { argv = ["true"] }\n`;
    const ok = compile({ file: 'big.smke', text: comment, projectDir: examplesDir, catalog, env: {} });
    expect(ok.diagnostics).toEqual([]);
    expect(ok.plan?.instances.map((i) => i.id)).toEqual(['a']);

    const long = 'y'.repeat(mb50);
    const string = compile({
      file: 'big.smke',
      text: `smke 1\nparam big = "${long}"\nstage a = exec { argv = [big] }\n`,
      projectDir: examplesDir,
      catalog,
      env: {},
    });
    expect((string.plan?.instances[0]?.params.argv as string[])[0]).toHaveLength(mb50);

    const broken = `smke 1\nparam big = "${long}"\nstage a = exec { argv = [big }\n`;
    const bad = compile({ file: 'big.smke', text: broken, projectDir: examplesDir, catalog, env: {} });
    expect(bad.plan).toBeUndefined();
    expect(bad.diagnostics[0]?.span?.line).toBe(3);
    checkSpans(bad, 'big.smke', broken);
  });
});
