// Every diagnostic code with its exact rendered message. The inputs are the
// examples of docs/errors.md (checked to be identical below), so the docs
// show what smke really prints. Regenerate the .txt files after an
// intended change with UPDATE_GOLDEN=1 and review the diff.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compiler/index.js';
import { renderDiagnostics } from '../../src/compiler/render-diagnostics.js';
import { catalog } from './helpers.js';

const dir = new URL('./golden/', import.meta.url).pathname;
const docs = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const sections = new Map(
  docs
    .split(/^(?=## E\d{4}\b)/m)
    .slice(1)
    .map((s) => [s.slice(3, 8), s] as const),
);
const cases = readdirSync(dir)
  .filter((f) => /^E\d{4}\.smke$/.test(f))
  .map((f) => f.slice(0, 5))
  .sort();

function options(code: string): { profile?: string; set: Record<string, string> } {
  const argsFile = join(dir, `${code}.args`);
  const out: { profile?: string; set: Record<string, string> } = { set: {} };
  if (!existsSync(argsFile)) return out;
  const args = readFileSync(argsFile, 'utf8').trim().split(/\s+/);
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] === '--profile') out.profile = args[i + 1];
    else if (args[i] === '--set') {
      const [k, v] = args[i + 1]!.split('=');
      out.set[k!] = v!;
    }
  }
  return out;
}

describe('golden diagnostics', () => {
  it('has a case for every documented code, and documents every code the compiler emits', () => {
    expect(cases).toEqual([...sections.keys()].sort());
    const src = readdirSync(new URL('../../src/compiler/', import.meta.url).pathname)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(new URL(`../../src/compiler/${f}`, import.meta.url), 'utf8'))
      .join('\n');
    const used = new Set([...src.matchAll(/'(E\d{4})'/g)].map((m) => m[1]!));
    expect([...used].sort()).toEqual([...sections.keys()].sort());
  });

  for (const code of cases) {
    it(`${code} renders exactly as recorded`, () => {
      const section = sections.get(code)!;
      // The docs' examples are these files, verbatim.
      const blocks = [...section.matchAll(/```smke\n([\s\S]*?)```/g)].map((m) => m[1]!);
      expect(blocks[0]).toBe(readFileSync(join(dir, `${code}.smke`), 'utf8'));
      for (const b of blocks.slice(1)) {
        const name = /^# file: (\S+)\n/.exec(b)![1]!;
        expect(b).toBe(readFileSync(join(dir, name), 'utf8'));
      }
      const opts = options(code);
      const r = compile({ file: `${code}.smke`, projectDir: dir, catalog, env: {}, profile: opts.profile, set: opts.set });
      expect(r.plan).toBeUndefined();
      expect(r.diagnostics.map((d) => d.code)).toContain(code);
      const rendered = renderDiagnostics(r.diagnostics, r.texts ?? new Map());
      const golden = join(dir, `${code}.txt`);
      if (process.env.UPDATE_GOLDEN) writeFileSync(golden, rendered);
      expect(rendered).toBe(readFileSync(golden, 'utf8'));
    });
  }
});
