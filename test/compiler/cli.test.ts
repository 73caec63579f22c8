// The compiler's commands, spawned as a user runs them (dist is built by `npm test` before vitest).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { project } from './helpers.js';

const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
const examples = new URL('../../examples/', import.meta.url).pathname;

function smke(args: string[], cwd = examples, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const bad = project({
  'bad.smke': 'smke 1\nparam width = 1\nstage a = exec { argv = ["x", "${widht}"] }\nstage b = exec { argv = ["x" }\n',
  'ugly.smke': 'smke 1\nstage   a=exec{argv=["x"]}\n',
});
afterAll(() => bad.cleanup());

describe('smke check', () => {
  it('exits 0 on a valid pipeline and says how many instances it has', () => {
    const r = smke(['check', 'sweep.smke']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('ok: 9 stage instances\n');
  });

  it('prints every error rustc-style without colour when not on a terminal, and exits 1', () => {
    const r = smke(['check', 'bad.smke'], bad.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error[E0008]: unknown name `widht`\n --> bad.smke:3:32\n');
    expect(r.stderr).toContain('= help: did you mean `width`?');
    expect(r.stderr).toContain('error[E0001]:');
    expect(r.stderr).toContain('error: could not compile: 2 errors');
    expect(r.stderr).not.toContain('\x1b[');
  });

  it('emits JSON diagnostics for editors', () => {
    const r = smke(['check', 'bad.smke', '--format', 'json'], bad.dir);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.errors).toBe(2);
    expect(doc.diagnostics[1]).toMatchObject({ code: 'E0001', severity: 'error', span: { file: 'bad.smke', line: 4, column: 30 } });
    expect(JSON.parse(smke(['check', 'hello.smke', '--format', 'json']).stdout)).toEqual({ errors: 0, diagnostics: [] });
  });

  it('selects a profile and applies --set', () => {
    expect(smke(['check', 'profiles.smke', '--profile', 'full', '--set', 'steps=5', '--set', 'width=8']).code).toBe(0);
    const r = smke(['check', 'profiles.smke', '--profile', 'ful']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error[E0011]: unknown profile `ful`');
  });

  it('exits 2 on usage errors', () => {
    expect(smke(['check']).code).toBe(2);
    expect(smke(['check', 'hello.smke', '--set', 'novalue']).code).toBe(2);
    expect(smke(['check', 'hello.smke', '--format', 'xml']).code).toBe(2);
    expect(smke(['check', 'hello.smke', '--bogus']).code).toBe(2);
  });

  it('reports a missing file as a diagnostic', () => {
    const r = smke(['check', 'nope.smke']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error[E0005]: cannot read `nope.smke`: no such file');
  });
});

describe('smke dag', () => {
  it('prints dot, mermaid and json', () => {
    const dot = smke(['dag', 'hello.smke']);
    expect(dot.code).toBe(0);
    expect(dot.stdout).toMatch(/^digraph smke \{/);
    expect(dot.stdout).toContain('"make" -> "shout";');
    const mermaid = smke(['dag', 'sweep.smke', '--format', 'mermaid']).stdout;
    expect(mermaid).toMatch(/^flowchart LR\n/);
    expect(mermaid).toContain('<b>train[0.1,1]</b><br/>exec<br/>lr=0.1<br/>seed=1');
    expect(mermaid).toContain('n0 -.-> n7');
    const json = JSON.parse(smke(['dag', 'sweep.smke', '--format', 'json']).stdout);
    expect(json.instances).toHaveLength(9);
    expect(json.edges).toContainEqual({ from: 'data', to: 'best', kind: 'after' });
  });

  it('prints diagnostics and exits 1 for a broken pipeline', () => {
    const r = smke(['dag', 'bad.smke'], bad.dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
  });
});

describe('smke kinds and explain-error', () => {
  it('lists kinds and describes one from its schema', () => {
    expect(smke(['kinds']).stdout).toMatch(/^exec\s+Run a program/m);
    const exec = smke(['kinds', 'exec']);
    expect(exec.stdout).toContain('argv  (a list of strings or a string, required)');
    expect(exec.stdout).toContain('shell  (a boolean, default false)');
    const typo = smke(['kinds', 'exce']);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('Did you mean `exec`?');
  });

  it('explains a code with its docs entry', () => {
    const r = smke(['explain-error', 'E0014']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^## E0014: dependency cycle/);
    expect(r.stdout).toContain('**Fix:**');
    expect(smke(['explain-error', 'e14']).stdout).toMatch(/^## E0014/);
    expect(smke(['explain-error', 'E9999']).code).toBe(1);
  });
});

describe('smke fmt', () => {
  it('checks, then rewrites, a file', () => {
    const file = join(bad.dir, 'ugly.smke');
    const check = smke(['fmt', '--check', 'ugly.smke'], bad.dir);
    expect(check.code).toBe(1);
    expect(check.stdout).toBe('ugly.smke\n');
    expect(smke(['fmt', 'ugly.smke'], bad.dir).code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe('smke 1\n\nstage a = exec {\n  argv = ["x"]\n}\n');
    expect(smke(['fmt', '--check', 'ugly.smke'], bad.dir).code).toBe(0);
  });

  it('leaves a file with syntax errors alone', () => {
    writeFileSync(join(bad.dir, 'broken.smke'), 'smke 1\nstage a = {\n');
    const r = smke(['fmt', 'broken.smke'], bad.dir);
    expect(r.code).toBe(1);
    expect(readFileSync(join(bad.dir, 'broken.smke'), 'utf8')).toBe('smke 1\nstage a = {\n');
  });
});
