// Resource exhaustion: no source, however long or strange, may
// overflow the compiler's stack, take unbounded memory or time, or hang on
// what it reads. Each case ends in a plan or a diagnostic with a code.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile, formatSource } from '../../src/compiler/index.js';
import { MAX_IMPORT_DEPTH, MAX_SOURCE_BYTES, readSource } from '../../src/compiler/load-sources.js';
import { MAX_DEPTH } from '../../src/compiler/parser.js';
import { catalog, compileText, planOf, project } from '../compiler/helpers.js';

/** `n` parameters, each the one before plus one, declared last-first. */
function reverseChain(n: number, first = '1'): string {
  const lines = ['smke 1'];
  for (let i = n; i >= 1; i--) lines.push(`param p${i} = ${i === 1 ? first : `p${i - 1} + 1`}`);
  return lines.join('\n') + '\n';
}

describe('parameter chains resolve without recursion per link', () => {
  it('5,000 parameters chained in reverse order', () => {
    const plan = planOf(reverseChain(5000) + 'stage a = exec { argv = ["echo", "${p5000}"] }\n');
    expect(plan.params.p5000).toBe(5000);
    expect(plan.params.p1).toBe(1);
  });

  it('a 5,000-long chain closed into a cycle is one E0014, not a stack overflow', () => {
    const r = compileText(reverseChain(5000, 'p5000'));
    expect(r.diagnostics.map((d) => d.code)).toEqual(['E0014']);
    expect(r.diagnostics[0]!.message).toMatch(/^parameter cycle: p\d+ -> .* -> p\d+$/);
  });

  it('chains through interpolation, env defaults, parentheses, joins and map selections', () => {
    const lines = ['smke 1'];
    const n = 3000;
    for (let i = n; i >= 1; i--) {
      const prev = `q${i - 1}`;
      const forms = [`"\${${prev}}x"`, `env("SMKE_UNSET_${i}", ${prev})`, `(${prev})`, `${prev} + "y"`, `m${i}[k]`];
      if (i % forms.length === 4) lines.push(`param m${i} = { k = ${prev} }`);
      lines.push(`param q${i} = ${i === 1 ? '"0"' : forms[i % forms.length]}`);
    }
    const plan = planOf(lines.join('\n') + '\n');
    expect(typeof plan.params[`q${n}`]).toBe('string');
    // Two of the five forms add one character each.
    expect(plan.params[`q${n}`]).toMatch(/^0[xy]{1200}$/);
  });

  it('values nested through 5,000 parameters (p2 = [p1] ...) are E0004, not a stack overflow later', () => {
    const lines = ['smke 1'];
    for (let i = 5000; i >= 1; i--) lines.push(`param w${i} = ${i === 1 ? '1' : i % 2 ? `[w${i - 1}]` : `{ k = w${i - 1} }`}`);
    const r = compileText(lines.join('\n') + '\n');
    expect(r.plan).toBeUndefined();
    expect(new Set(r.diagnostics.map((d) => d.code))).toEqual(new Set(['E0004']));
    const ok = ['smke 1'];
    for (let i = 60; i >= 1; i--) ok.push(`param w${i} = ${i === 1 ? '1' : `[w${i - 1}]`}`);
    expect(planOf(ok.join('\n') + '\n').params.w60).toBeDefined();
  });

  it('a matrix of 20,000 cells whose axis is the end of a 3,000-long chain', () => {
    const text =
      reverseChain(3000) +
      `param cells = [${Array.from({ length: 20000 }, (_, i) => i).join(', ')}]\nstage s[i in cells] = exec { argv = ["echo", "\${i}", "\${p3000}"] }\n`;
    const plan = planOf(text);
    expect(plan.instances).toHaveLength(20000);
  });
});

describe('the CLI on a very large plan', () => {
  it('`smke status` with 200,000 instances and 1,500 parameters chained in reverse order', () => {
    const p = project({
      'big.smke': `${reverseChain(1500)}stage m[i in [${Array.from({ length: 200000 }, (_, i) => i).join(',')}]] = exec { argv = ["echo", "\${p1500}"] }\n`,
    });
    try {
      const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
      const r = spawnSync(process.execPath, [bin, 'status', 'big.smke'], {
        cwd: p.dir,
        encoding: 'utf8',
        maxBuffer: 1 << 28,
        env: { ...process.env, NO_COLOR: '1' },
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/0 cached, 200000 to run/);
    } finally {
      p.cleanup();
    }
  }, 600_000);

  it('`smke fmt` of a list with 200,000 comment lines inside', () => {
    const text = `smke 1\nparam x = [\n  1,\n${'  # c\n'.repeat(200000)}  2,\n]\n`;
    const f = formatSource('f.smke', text);
    expect('formatted' in f && f.formatted.split('\n').length).toBeGreaterThan(200000);
  });
});

describe('many errors cost what the reported ones cost', () => {
  it('20,000 misspelt references: the first 100 errors, and a note counting the rest', () => {
    const lines = ['smke 1'];
    for (let i = 0; i < 20000; i++) lines.push(`stage s${i} = exec { argv = ["x", missing${i}.out] }`);
    const r = compileText(lines.join('\n') + '\n');
    expect(r.diagnostics).toHaveLength(100);
    expect(new Set(r.diagnostics.map((d) => d.code))).toEqual(new Set(['E0008']));
    expect(r.diagnostics[99]!.notes).toEqual(['19900 more errors not shown: only the first 100 are reported']);
  });

  it('10,000 selections of cells a 10,000-cell matrix does not have', () => {
    const lines = ['smke 1', `stage m[i in [${Array.from({ length: 10000 }, (_, i) => i).join(', ')}]] = exec { argv = ["true"] }`];
    for (let i = 0; i < 10000; i++) lines.push(`stage s${i} = exec { argv = ["x", m[${i + 20000}].out] }`);
    const r = compileText(lines.join('\n') + '\n');
    expect(r.diagnostics).toHaveLength(100);
    expect(new Set(r.diagnostics.map((d) => d.code))).toEqual(new Set(['E0015']));
  });
});

describe('long operator chains take linear time', () => {
  it('100,000 strings joined with +', () => {
    const plan = planOf(`smke 1\nparam x = ${Array.from({ length: 100000 }, (_, i) => `"s${i}"`).join(' + ')}\n`);
    const x = plan.params.x as string;
    expect(x.length).toBe(Array.from({ length: 100000 }, (_, i) => `s${i}`).join('').length);
    expect(x.endsWith('s99999')).toBe(true);
  });

  it('50,000 lists concatenated with +, and a string/number mix', () => {
    const plan = planOf(
      `smke 1\nparam l = ${Array.from({ length: 50000 }, (_, i) => `[${i}]`).join(' + ')}\nparam m = "n" + ${Array.from({ length: 50000 }, (_, i) => i).join(' + ')}\n`,
    );
    const l = plan.params.l as number[];
    expect(l).toHaveLength(50000);
    expect(l[49999]).toBe(49999);
    expect((plan.params.m as string).startsWith('n012345')).toBe(true);
  });

  it('a list chain does not change the lists it starts from', () => {
    const plan = planOf('smke 1\nparam a = [1]\nparam b = a + [2] + [3]\nparam c = a + [4]\n');
    expect(plan.params).toMatchObject({ a: [1], b: [1, 2, 3], c: [1, 4] });
  });

  it('an invalid operand in a long chain is one E0013 pointing at its operator', () => {
    const r = compileText(`smke 1\nparam x = ${Array.from({ length: 20000 }, (_, i) => (i === 15000 ? '[1]' : `"s"`)).join(' + ')}\n`);
    expect(r.diagnostics.map((d) => d.code)).toEqual(['E0013']);
  });
});

describe('nesting is bounded everywhere the parser recurses', () => {
  const deep = MAX_DEPTH + 1;
  for (const [what, open, close] of [
    ['lists', '[', ']'],
    ['maps', '{ k = ', ' }'],
    ['parentheses', '(', ')'],
    ['call arguments', 'env("X", ', ')'],
  ] as const) {
    it(`${deep} and 100,000 nested ${what} are E0004`, () => {
      for (const n of [deep, 100000]) {
        const r = compileText(`smke 1\nparam x = ${open.repeat(n)}1${close.repeat(n)}\n`);
        expect(r.diagnostics.map((d) => d.code)).toEqual(['E0004']);
      }
    });
  }

  it('100,000 unary minus signs and unclosed brackets are E0004', () => {
    expect(compileText(`smke 1\nparam x = ${'-'.repeat(100000)}1\n`).diagnostics.map((d) => d.code)).toEqual(['E0004']);
    expect(compileText(`smke 1\nparam x = ${'['.repeat(100000)}\n`).diagnostics.map((d) => d.code)).toContain('E0004');
  });
});

describe('imports read regular files only, bounded in size and depth', () => {
  it('a device, a directory, a FIFO and a socket are refused at once (E0005)', async () => {
    const p = project({ 'dir/x.smke': 'smke 1\n' });
    const server = createServer();
    try {
      execFileSync('mkfifo', [join(p.dir, 'fifo.smke')]);
      await new Promise<void>((res) => server.listen(join(p.dir, 'sock.smke'), res));
      for (const [target, why] of [
        ['/dev/zero', /a device, not a regular file/],
        ['/dev/null', /a device/],
        ['dir', /a directory/],
        ['fifo.smke', /a FIFO/],
        ['sock.smke', /a socket|no such device/],
      ] as const) {
        writeFileSync(join(p.dir, 'main.smke'), `smke 1\nimport "${target}"\n`);
        const r = compile({ file: 'main.smke', projectDir: p.dir, catalog, env: {} });
        expect(
          r.diagnostics.map((d) => d.code),
          target,
        ).toEqual(['E0005']);
        expect(r.diagnostics[0]!.message, target).toMatch(why);
        expect(r.diagnostics[0]!.span?.line).toBe(2);
      }
      // The root file too: a FIFO given on the command line is refused, not waited on.
      const r = compile({ file: 'fifo.smke', projectDir: p.dir, catalog, env: {} });
      expect(r.diagnostics.map((d) => d.code)).toEqual(['E0005']);
    } finally {
      server.close();
      p.cleanup();
    }
  });

  it('a file over the size limit is refused before it is read', () => {
    expect(MAX_SOURCE_BYTES).toBeGreaterThanOrEqual(64 * 1024 * 1024);
    const p = project({ 'big.smke': `smke 1\n# ${'x'.repeat(5000)}\n` });
    try {
      const r = readSource(join(p.dir, 'big.smke'), 1000);
      expect(r).toMatchObject({ tooLarge: true });
      expect('error' in r && r.error).toMatch(/more than the limit of 1000/);
      const ok = readSource(join(p.dir, 'big.smke'));
      expect('text' in ok && ok.text.length).toBe(5010);
    } finally {
      p.cleanup();
    }
  });

  it(`an import chain deeper than ${MAX_IMPORT_DEPTH} files is E0004; one within the limit compiles`, () => {
    const files = (n: number) => {
      const f: Record<string, string> = {};
      for (let i = 0; i < n; i++) f[`f${i}.smke`] = `smke 1\n${i + 1 < n ? `import "f${i + 1}.smke"\n` : ''}param v${i} = ${i}\n`;
      return f;
    };
    for (const [n, codes] of [
      [MAX_IMPORT_DEPTH, []],
      [MAX_IMPORT_DEPTH + 1, ['E0004']],
      [500, ['E0004']],
    ] as const) {
      const p = project(files(n));
      try {
        const r = compile({ file: 'f0.smke', projectDir: p.dir, catalog, env: {} });
        expect(
          r.diagnostics.map((d) => d.code),
          String(n),
        ).toEqual(codes);
      } finally {
        p.cleanup();
      }
    }
  });

  it('a 300-file import cycle, and a wide diamond of imports, end in a diagnostic or a plan', () => {
    const f: Record<string, string> = {};
    for (let i = 0; i < 300; i++) f[`c${i}.smke`] = `smke 1\nimport "c${(i + 1) % 300}.smke"\n`;
    const p = project(f);
    try {
      const r = compile({ file: 'c0.smke', projectDir: p.dir, catalog, env: {} });
      expect(r.plan).toBeUndefined();
      expect(r.diagnostics.map((d) => d.code)).toEqual(['E0004']);
    } finally {
      p.cleanup();
    }
    const wide: Record<string, string> = { 'leaf.smke': 'smke 1\nparam leaf = 1\n' };
    const imports: string[] = [];
    for (let i = 0; i < 200; i++) {
      wide[`w${i}.smke`] = 'smke 1\nimport "leaf.smke"\n';
      imports.push(`import "w${i}.smke"`);
    }
    wide['main.smke'] = `smke 1\n${imports.join('\n')}\n`;
    const q = project(wide);
    try {
      const r = compile({ file: 'main.smke', projectDir: q.dir, catalog, env: {} });
      expect(r.diagnostics).toEqual([]);
      expect(r.plan!.sources).toHaveLength(202);
    } finally {
      q.cleanup();
    }
  });

  it('a directory named like a pipeline, given on the command line, is E0005', () => {
    const p = project({ 'x/a.smke': 'smke 1\n' });
    try {
      mkdirSync(join(p.dir, 'p.smke'));
      const r = compile({ file: 'p.smke', projectDir: p.dir, catalog, env: {} });
      expect(r.diagnostics.map((d) => d.code)).toEqual(['E0005']);
    } finally {
      p.cleanup();
    }
  });
});
