// Rendering details the golden files do not cover: colour, long lines,
// labels in another file, JSON, and when colour is used at all.
import { afterEach, describe, expect, it } from 'vitest';
import { useColor } from '../../src/cli/compile.js';
import type { Diagnostic } from '../../src/compiler/diagnostic.js';
import { diagnosticsJson, renderDiagnostics } from '../../src/compiler/render-diagnostics.js';

const text = 'smke 1\nparam a = b\n';
const diag: Diagnostic = {
  code: 'E0008',
  severity: 'error',
  message: 'unknown name `b`',
  span: { file: 'm.smke', line: 2, column: 11, offset: 17, length: 1 },
  label: 'not a parameter',
  labels: [{ span: { file: 'lib.smke', line: 1, column: 1, offset: 0, length: 4 }, message: 'declared elsewhere' }],
  help: 'did you mean `a`?',
};

describe('rendering', () => {
  it('paints with ANSI colours only when asked', () => {
    const texts = new Map([
      ['m.smke', text],
      ['lib.smke', 'smke 1\n'],
    ]);
    const plain = renderDiagnostics([diag], texts);
    const painted = renderDiagnostics([diag], texts, { color: true });
    expect(plain).not.toContain('\x1b[');
    expect(painted).toContain('\x1b[31m');
    // eslint-disable-next-line no-control-regex -- strips the ANSI colour codes the renderer adds
    expect(painted.replace(/\x1b\[[0-9;]*m/g, '')).toBe(plain);
  });

  it('shows a label in another file under its own header', () => {
    const out = renderDiagnostics(
      [diag],
      new Map([
        ['m.smke', text],
        ['lib.smke', 'smke 1\n'],
      ]),
    );
    expect(out).toBe(
      [
        'error[E0008]: unknown name `b`',
        ' --> m.smke:2:11',
        '  |',
        '2 | param a = b',
        '  |           ^ not a parameter',
        ' ::: lib.smke:1:1',
        '  |',
        '1 | smke 1',
        '  | ---- declared elsewhere',
        '  |',
        '  = help: did you mean `a`?',
        '',
        'error: could not compile: 1 error',
        '',
      ].join('\n'),
    );
  });

  it('cuts a very long line to a window around the span', () => {
    const long = `smke 1\nparam a = "${'x'.repeat(10_000)}" + b\n`;
    const offset = long.indexOf('+ b') + 2;
    const out = renderDiagnostics(
      [{ ...diag, labels: [], span: { file: 'm.smke', line: 2, column: offset - 6, offset, length: 1 } }],
      new Map([['m.smke', long]]),
    );
    const lines = out.split('\n');
    const source = lines.find((l) => l.startsWith('2 | '))!;
    expect(source.length).toBeLessThan(200);
    const caret = lines[lines.indexOf(source) + 1]!;
    expect(source[caret.indexOf('^')]).toBe('b');
  });

  it('gives editors JSON with every field', () => {
    expect(diagnosticsJson([diag])).toEqual({
      errors: 1,
      diagnostics: [
        { code: 'E0008', severity: 'error', message: diag.message, span: diag.span, label: diag.label, labels: diag.labels, help: diag.help, notes: [] },
      ],
    });
  });
});

describe('useColor', () => {
  const saved = { NO_COLOR: process.env.NO_COLOR, TERM: process.env.TERM };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const tty = { isTTY: true } as NodeJS.WriteStream;

  it('colours a terminal, never a pipe, never with NO_COLOR', () => {
    delete process.env.NO_COLOR;
    process.env.TERM = 'xterm-256color';
    expect(useColor(tty)).toBe(true);
    expect(useColor({ isTTY: false } as NodeJS.WriteStream)).toBe(false);
    process.env.NO_COLOR = '1';
    expect(useColor(tty)).toBe(false);
  });
});
