// The TextMate grammar, run by the same engine VS Code uses (vscode-textmate +
// Oniguruma), over the shipped examples and hand-picked lines.
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import * as oniguruma from 'vscode-oniguruma';
import * as textmate from 'vscode-textmate';
import { DURATION_UNITS, SIZE_UNITS } from '../../src/compiler/literals.js';

const require = createRequire(import.meta.url);
const GRAMMAR_PATH = new URL('../../editors/vscode/syntaxes/smke.tmLanguage.json', import.meta.url);

async function loadGrammar(): Promise<textmate.IGrammar> {
  const wasm = readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({ createOnigScanner: (p) => new oniguruma.OnigScanner(p), createOnigString: (s) => new oniguruma.OnigString(s) }),
    loadGrammar: async () => textmate.parseRawGrammar(readFileSync(GRAMMAR_PATH, 'utf8'), GRAMMAR_PATH.pathname),
  });
  const g = await registry.loadGrammar('source.smke');
  if (!g) throw new Error('grammar did not load');
  return g;
}

/** Each token's text with its innermost scope, for every line of `text`. */
function tokens(grammar: textmate.IGrammar, text: string): { text: string; scope: string }[] {
  let state = textmate.INITIAL;
  const out: { text: string; scope: string }[] = [];
  for (const line of text.split('\n')) {
    const r = grammar.tokenizeLine(line, state);
    for (const t of r.tokens) out.push({ text: line.slice(t.startIndex, t.endIndex), scope: t.scopes[t.scopes.length - 1]! });
    state = r.ruleStack;
  }
  return out;
}
const scopeOf = (ts: { text: string; scope: string }[], text: string) => ts.find((t) => t.text === text)?.scope;

describe('the TextMate grammar', () => {
  it('scopes declarations, kinds, keys, references, numbers with units, strings, interpolation and comments', async () => {
    const g = await loadGrammar();
    const src = [
      'smke 1',
      'import "lib/common.smke"   # shared',
      'param lr = 3e-4',
      'profile paper default {',
      '  param mem = 32GiB',
      '}',
      'stage train[seed in [1, 2]] = train.s_smke {',
      '  argv = ["run", "--out", "{out}", "${data}/x", prep.table, glue[*].metrics]',
      '  script = """',
      '  echo ${seed} # not a comment',
      '  """',
      '  resources { time = 2h }',
      '}',
    ].join('\n');
    const ts = tokens(g, src);
    expect(scopeOf(ts, 'smke')).toBe('keyword.other.smke');
    expect(scopeOf(ts, 'stage')).toBe('storage.type.stage.smke');
    expect(scopeOf(ts, 'train')).toBe('entity.name.function.stage.smke');
    expect(scopeOf(ts, 'seed')).toBe('variable.parameter.axis.smke');
    expect(scopeOf(ts, 'train.s_smke')).toBe('entity.name.type.kind.smke');
    expect(scopeOf(ts, 'paper')).toBe('entity.name.section.profile.smke');
    expect(scopeOf(ts, 'default')).toBe('storage.modifier.default.smke');
    expect(scopeOf(ts, 'argv')).toBe('variable.parameter.key.smke');
    expect(scopeOf(ts, '32GiB')).toBe('constant.numeric.smke');
    expect(scopeOf(ts, '3e-4')).toBe('constant.numeric.smke');
    expect(scopeOf(ts, '2h')).toBe('constant.numeric.smke');
    expect(scopeOf(ts, '{out}')).toBe('variable.language.out.smke');
    expect(scopeOf(ts, 'data')).toBe('variable.other.interpolated.smke');
    expect(scopeOf(ts, 'table')).toBe('variable.other.property.output.smke');
    expect(scopeOf(ts, '# shared')).toBe('comment.line.number-sign.smke');
    // Inside a """ script, `#` is text, and interpolation still works.
    expect(ts.find((t) => t.text.includes('# not a comment'))?.scope).toBe('string.quoted.triple.smke');
  });

  it('sees an unterminated """ string run on to the end (the check below can fail)', async () => {
    const g = await loadGrammar();
    const top = g.tokenizeLine('', textmate.INITIAL).ruleStack;
    let state = textmate.INITIAL;
    for (const line of ['smke 1', 'stage a = exec {', '  script = """', '  echo', '}']) state = g.tokenizeLine(line, state).ruleStack;
    expect(state.equals(top)).toBe(false);
  });

  it('knows every unit the compiler accepts', async () => {
    const g = await loadGrammar();
    for (const unit of [...Object.keys(SIZE_UNITS), ...Object.keys(DURATION_UNITS)]) {
      expect(scopeOf(tokens(g, `param x = 12${unit}`), `12${unit}`), unit).toBe('constant.numeric.smke');
    }
  });

  it('tokenises every shipped pipeline and example without leaving a string open at the end', async () => {
    const g = await loadGrammar();
    const files = [
      ...readdirSync(new URL('../../pipelines/', import.meta.url)).map((f) => new URL(`../../pipelines/${f}`, import.meta.url)),
      ...readdirSync(new URL('../../examples/', import.meta.url))
        .filter((f) => f.endsWith('.smke'))
        .map((f) => new URL(`../../examples/${f}`, import.meta.url)),
    ].filter((u) => u.pathname.endsWith('.smke'));
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) {
      // The top-level state, as it stands after a line that opens nothing.
      const top = g.tokenizeLine('', textmate.INITIAL).ruleStack;
      let state = textmate.INITIAL;
      for (const line of readFileSync(f, 'utf8').split('\n')) state = g.tokenizeLine(line, state).ruleStack;
      // Back at the top level: no string or interpolation swallowed the rest of the file.
      expect(state.equals(top), f.pathname).toBe(true);
    }
  });
});
