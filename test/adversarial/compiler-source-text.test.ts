// Source text: whatever the bytes before, around or instead of
// the version line, and whichever way the file was saved (BOM, CRLF), the
// compile ends in a plan or a diagnostic with a code, both parsers agree,
// and strings hold the same text as from an LF file.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile, formatSource } from '../../src/compiler/index.js';
import { fastParse } from '../../src/compiler/fastparse.js';
import { MAX_DEPTH, parseWithRecovery } from '../../src/compiler/parser.js';
import { renderDiagnostics } from '../../src/compiler/render-diagnostics.js';
import { SourceFile } from '../../src/compiler/source.js';
import { catalog, compileText, planOf, project } from '../compiler/helpers.js';

const bin = new URL('../../bin/smke.js', import.meta.url).pathname;

describe('a missing or misplaced version line is a diagnostic wherever it is', () => {
  const headerless = ['\n', '\n\n\n', '\n# comment\n', '\r\n', '\n\nparam x = 1\n', '\nsmke\n', '\n  \t\n', '\nstage', '\n\u00a0\n', '\n"', ''];
  for (const text of headerless) {
    it(`${JSON.stringify(text)}: E0003 rendered, no exception`, () => {
      const r = compileText(text);
      expect(r.plan).toBeUndefined();
      expect(r.diagnostics.map((d) => d.code)).toContain('E0003');
      expect(r.rendered).toMatch(/error\[E0003\]/);
    });
  }

  it('a diagnostic at offset 0 of a file that starts with a newline renders', () => {
    const text = '\nx';
    const out = renderDiagnostics(
      [{ code: 'E0001', severity: 'error', message: 'm', span: { file: 'f', line: 1, column: 1, offset: 0, length: 1 }, label: 'here' }],
      new Map([['f', text]]),
    );
    expect(out).toContain('1 | \n  | ^ here');
  });

  for (const [text, line] of [
    ['param x = 1\nsmke 1\n', 2],
    ['smke 1\nsmke 1\n', 2],
    ['smke 1\nstage a = exec { argv = ["true"] }\nsmke 1\n', 3],
    ['# c\nsmke 1\nparam y = 2\n\nsmke 2\n', 5],
  ] as const) {
    it(`a version line after the start (line ${line}) is E0003 there`, () => {
      const r = compileText(text);
      const d = r.diagnostics.find((x) => x.code === 'E0003' && /after the start/.test(x.message));
      expect(d, r.rendered).toBeDefined();
      expect(d!.span!.line).toBe(line);
    });
  }

  it('the CLI exits 1 (never 70) on a headerless file that starts with a blank line', () => {
    const p = project({ 'p.smke': '\n\nstage a = exec { argv = ["true"] }\n', 'q.smke': '\n' });
    try {
      for (const [cmd, file] of [
        ['check', 'p.smke'],
        ['check', 'q.smke'],
        ['status', 'q.smke'],
        ['dag', 'q.smke'],
      ]) {
        const r = spawnSync(process.execPath, [bin, cmd!, file!], { cwd: p.dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
        expect(r.status, `${cmd} ${file}: ${r.stderr}`).toBe(1);
        expect(r.stderr).toMatch(/error\[E0003\]/);
        expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
      }
    } finally {
      p.cleanup();
    }
  });
});

const LF = 'smke 1\nparam who = "world"\nstage a = exec {\n  argv = ["sh", "-c", """\n    echo hello\n    echo ${who}\n  """]\n  env = { A = "x" }\n}\n';

describe('BOM and CRLF', () => {
  const variants: [string, string][] = [
    ['CRLF', LF.replace(/\n/g, '\r\n')],
    ['BOM', `\ufeff${LF}`],
    ['BOM + CRLF', `\ufeff${LF.replace(/\n/g, '\r\n')}`],
    ['mixed line ends', LF.replace(/\n/g, (_, i: number) => (i % 2 ? '\r\n' : '\n'))],
  ];

  for (const [what, text] of variants) {
    it(`${what}: the same plan as the LF file, no \\r in any string`, () => {
      const a = planOf(LF);
      const b = planOf(text);
      const strip = (p: typeof a) => JSON.stringify(p.instances.map((i) => i.params));
      expect(strip(b)).toBe(strip(a));
      expect(JSON.stringify(b.instances[0]!.params)).not.toContain('\\r');
      expect((b.instances[0]!.params.argv as string[])[2]).toBe('echo hello\necho world\n');
    });

    it(`${what}: both parsers agree`, () => {
      const src = new SourceFile('f.smke', text);
      const slow = parseWithRecovery(src);
      expect(slow.diagnostics).toEqual([]);
      const fast = fastParse(src, MAX_DEPTH);
      expect(fast).toBeDefined();
      expect(JSON.parse(JSON.stringify(fast))).toEqual(JSON.parse(JSON.stringify(slow.ast)));
    });

    it(`${what}: errors keep the line and column of the LF file`, () => {
      const bad = (t: string) => t.replace('env = { A = "x" }', 'env = { A = "x" } bogus = 1');
      const d1 = compileText(bad(LF)).diagnostics[0]!;
      const d2 = compileText(bad(text)).diagnostics[0]!;
      expect([d2.code, d2.span!.line, d2.span!.column]).toEqual([d1.code, d1.span!.line, d1.span!.column]);
    });
  }

  it('a BOM-only or BOM-then-blank file is E0003, rendered', () => {
    for (const t of ['\ufeff', '\ufeff\n', '\ufeff\r\n\r\n']) {
      const r = compileText(t);
      expect(r.diagnostics.map((d) => d.code)).toEqual(['E0003']);
      expect(r.rendered).toContain('E0003');
    }
  });

  it('a BOM in the middle of the file is still an error (only a leading one is skipped)', () => {
    const r = compileText('smke 1\n\ufeffparam x = 1\n');
    expect(r.diagnostics.map((d) => d.code)).toEqual(['E0002']);
  });

  it('the sha256 of each source is of its bytes on disk, as the plan cache checks it', () => {
    const text = `\ufeff${LF.replace(/\n/g, '\r\n')}`;
    const p = project({ 'p.smke': text });
    try {
      const r = compile({ file: 'p.smke', projectDir: p.dir, catalog, env: {} });
      expect(r.plan!.sources[0]!.sha256).toBe(
        createHash('sha256')
          .update(readFileSync(join(p.dir, 'p.smke')))
          .digest('hex'),
      );
    } finally {
      p.cleanup();
    }
  });

  it('fmt turns CRLF and BOM into the canonical LF text, and its errors point right', () => {
    const f = formatSource('f.smke', `\ufeff${LF.replace(/\n/g, '\r\n')}`);
    const plain = formatSource('f.smke', LF);
    expect('formatted' in f && f.formatted).toBe('formatted' in plain && plain.formatted);
    const p = project({ 'bad.smke': '\ufeffsmke 1\r\nparam x = [1,\r\n' });
    try {
      const r = spawnSync(process.execPath, [bin, 'fmt', 'bad.smke'], { cwd: p.dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/error\[E0001\]/);
      expect(r.stderr).not.toMatch(/internal error/);
      writeFileSync(join(p.dir, 'ok.smke'), LF.replace(/\n/g, '\r\n'));
      expect(spawnSync(process.execPath, [bin, 'fmt', 'ok.smke'], { cwd: p.dir }).status).toBe(0);
      expect(readFileSync(join(p.dir, 'ok.smke'), 'utf8')).not.toContain('\r');
    } finally {
      p.cleanup();
    }
  });
});
