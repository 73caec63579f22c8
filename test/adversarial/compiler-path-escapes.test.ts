// Path escapes: a declared output or a matrix value must never
// name anything outside the stage's directory, and results/ cell names are
// one safe path segment whatever the values are.
import { spawnSync } from 'node:child_process';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { outputPathProblem } from '../../src/compiler/output-paths.js';
import { cellName } from '../../src/runtime/layout.js';
import { compileText, planOf, project } from '../compiler/helpers.js';

const execWith = (outputs: string) => `smke 1\nstage a = exec {\n  argv = ["true"]\n  outputs = ${outputs}\n}\n`;

describe('output paths are refused at compile time when they leave the stage directory', () => {
  const bad: [string, RegExp][] = [
    ['["../x"]', /goes up out of/],
    ['["/etc/passwd"]', /is absolute/],
    ['["a/../../x"]', /goes up out of/],
    ['["a/b/.."]', /goes up out of/],
    ['["./../x"]', /goes up out of/],
    ['[""]', /is empty/],
    ['["."]', /names the output directory itself/],
    ['["./"]', /names the output directory itself/],
    ['["_smke/manifest.json"]', /_smke/],
    ['["./_smke/log"]', /_smke/],
    ['{ m = "../m" }', /goes up out of/],
    ['{ m = "//etc/x" }', /is absolute/],
  ];
  for (const [outputs, why] of bad) {
    it(`outputs = ${outputs}`, () => {
      const r = compileText(execWith(outputs));
      expect(r.plan).toBeUndefined();
      const d = r.diagnostics.find((x) => x.code === 'E0022');
      expect(d, r.rendered).toBeDefined();
      expect(d!.message).toMatch(why);
      // The caret is on the string that made the path, on the outputs line.
      expect(d!.span!.line).toBe(4);
      expect(r.rendered).not.toMatch(/\n\s+at /);
    });
  }

  it('accepts paths that stay inside', () => {
    const plan = planOf(execWith('["x", "./y.txt", "a/b/c.json", "a//d", "a/./e", "..x", "x..", "_smke_not/x", ".hidden"]'));
    expect(plan.instances).toHaveLength(1);
  });

  it('points at the interpolated string of the one matrix cell whose value escapes', () => {
    const r = compileText('smke 1\nstage s[v in ["ok", "..", "/abs"]] = exec {\n  argv = ["true"]\n  outputs = ["${v}/x", "fixed"]\n}\n');
    const e = r.diagnostics.filter((d) => d.code === 'E0022');
    expect(e.map((d) => d.message).sort()).toEqual(
      [
        'output `x` of `s[..]` has the path "../x", which goes up out of the stage\'s directory (`..`)',
        'output `x` of `s[/abs]` has the path "/abs/x", which is absolute',
      ].sort(),
    );
    for (const d of e) expect([d.span!.line, d.span!.column]).toEqual([4, 14]);
  });

  it('catches paths a kind builds from its params (download: filename and URL name)', () => {
    for (const body of ['url = "https://example.org/a.bin", filename = ".."', 'url = "https://example.org/a.bin", filename = "."']) {
      const r = compileText(`smke 1\nstage d = download { ${body} }\n`);
      expect(
        r.diagnostics.map((d) => d.code),
        r.rendered,
      ).toContain('E0022');
    }
  });

  it('outputPathProblem refuses NUL and keeps `.` for a directory output', () => {
    expect(outputPathProblem('a\0b', 'file')).toMatch(/NUL/);
    expect(outputPathProblem('.', 'dir')).toBeUndefined();
    expect(outputPathProblem('.', 'metrics')).toMatch(/itself/);
    expect(outputPathProblem('sub/dir', 'dir')).toBeUndefined();
  });
});

describe('results/ cell names are one safe, distinct path segment', () => {
  const hostile = [
    '.',
    '..',
    '...',
    'a/b',
    '../x',
    '/abs',
    '',
    ' ',
    'a\0b',
    '%',
    '%2E',
    '%2E.',
    'a,b',
    'a%2Cb',
    'a b',
    'a_b',
    '\n',
    'é',
    'e\u0301',
    '\ud800',
    '\udc00',
    '~',
    'x'.repeat(300),
    'x'.repeat(300) + 'y',
    'CON',
    '-rf',
  ];
  it('for hostile single values', () => {
    const names = hostile.map((v) => cellName({ matrix: { v } })!);
    for (const [i, n] of names.entries()) {
      expect(n, JSON.stringify(hostile[i])).not.toMatch(/[/\0]/);
      expect(['', '.', '..']).not.toContain(n);
      expect(n.startsWith('.')).toBe(false);
      expect(Buffer.byteLength(n)).toBeLessThanOrEqual(255);
    }
    expect(new Set(names).size).toBe(names.length);
  });

  it('for values across axes, types included', () => {
    const cells = [
      { a: 'x,y', b: 'z' },
      { a: 'x', b: 'y,z' },
      { a: 1, b: 'z' },
      { a: 1.5, b: true },
      { a: '1.5', b: 'false' },
    ];
    const names = cells.map((matrix) => cellName({ matrix })!);
    expect(new Set(names.slice(0, 3)).size).toBe(3);
    expect(names[0]).toBe('x%2Cy,z');
    expect(names[3]).toBe('1.5,true');
    expect(cellName({ matrix: {} })).toBeUndefined();
  });

  it('keeps ordinary names as they were', () => {
    expect(cellName({ matrix: { task: 'cola' } })).toBe('cola');
    expect(cellName({ matrix: { lr: 0.1, seed: 3 } })).toBe('0.1,3');
    expect(cellName({ matrix: { x: 'a-b_c.d=e+f' } })).toBe('a-b_c.d=e+f');
  });
});

describe('a run with hostile matrix values', () => {
  it('runs every cell, writes every result link inside results/<stage>/, and results/ stays a directory', () => {
    const p = project({
      'p.smke': `smke 1
stage s[v in [".", "..", "a/b", "x,y", "x", "", "%2E"], w in ["y", "y,z"]] = exec {
  argv = ["sh", "-c", "printf '%s|%s' \\"$1\\" \\"$2\\" > {out}/v.txt", "s", "\${v}", "\${w}"]
  outputs = ["v.txt"]
}
stage after = exec { argv = ["sh", "-c", "echo done > {out}/d.txt"], outputs = ["d.txt"] }
`,
    });
    try {
      const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
      const r = spawnSync(process.execPath, [bin, 'run', 'p.smke', '--progress', 'plain'], {
        cwd: p.dir,
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1' },
      });
      expect(r.status, r.stderr + r.stdout).toBe(0);
      expect(r.stdout).toMatch(/15 ran, 0 cached, 0 failed/);
      const results = join(p.dir, 'results');
      expect(lstatSync(results).isDirectory()).toBe(true);
      expect(readdirSync(results).sort()).toEqual(['after', 's']);
      expect(lstatSync(join(results, 'after')).isSymbolicLink()).toBe(true);
      const cells = readdirSync(join(results, 's'));
      expect(cells).toHaveLength(14);
      const seen = new Set<string>();
      for (const c of cells) {
        const link = join(results, 's', c);
        expect(lstatSync(link).isSymbolicLink()).toBe(true);
        expect(readlinkSync(link)).toMatch(/^\.\.\/\.\.\/\.smke\/store\/[0-9a-f]+$/);
        seen.add(readFileSync(join(link, 'v.txt'), 'utf8'));
      }
      // Each cell's own output, none overwritten by another.
      expect(seen.size).toBe(14);
      expect(seen).toContain('..|y,z');
      expect(seen).toContain('x,y|y');
      expect(seen).toContain('x|y,z');
      // Nothing was written next to the project.
      expect(readdirSync(p.dir).sort()).toEqual(['.smke', 'p.smke', 'results']);
    } finally {
      p.cleanup();
    }
  });
});
