// Shared by the compiler tests: compile text or files against the real registry.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { compile, type CompileResult } from '../../src/compiler/index.js';
import { renderDiagnostics } from '../../src/compiler/render-diagnostics.js';
import { registry } from '../../src/stages/registry.js';

export const catalog = registry();

/** A temporary project directory holding `files`; removed by the returned cleanup. */
export function project(files: Record<string, string>): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'smke-test-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CompileTextOptions {
  profile?: string;
  set?: Record<string, string>;
  env?: Record<string, string | undefined>;
  files?: Record<string, string>;
}

/** Compiles `text` as main.smke in a fresh project (with any extra files). */
export function compileText(text: string, opts: CompileTextOptions = {}): CompileResult & { rendered: string } {
  const p = project({ 'main.smke': text, ...(opts.files ?? {}) });
  try {
    const r = compile({ file: 'main.smke', projectDir: p.dir, catalog, profile: opts.profile, set: opts.set, env: opts.env ?? {} });
    return { ...r, rendered: renderDiagnostics(r.diagnostics, r.texts ?? new Map()) };
  } finally {
    p.cleanup();
  }
}

/** The plan of text that must compile; fails the test with the rendered diagnostics otherwise. */
export function planOf(text: string, opts: CompileTextOptions = {}) {
  const r = compileText(text, opts);
  if (!r.plan) throw new Error(`expected a plan, got:\n${r.rendered}`);
  return r.plan;
}

export function codes(text: string, opts: CompileTextOptions = {}): string[] {
  return compileText(text, opts).diagnostics.map((d) => d.code);
}
