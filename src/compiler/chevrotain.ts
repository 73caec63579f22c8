// chevrotain, loaded from its single-file bundle. The package's entry
// (lib/src/api.js) pulls in lodash-es as some six hundred separate modules,
// which costs over half a second at every `smke` start; the bundle the
// package ships next to it (lib/chevrotain.mjs, the same code) loads in
// ~50 ms. The exports map hides the bundle, so it is found relative to the
// resolved entry, with the entry itself as the fallback.
import type * as Chevrotain from 'chevrotain';

export type { IParserErrorMessageProvider, IToken, TokenType } from 'chevrotain';

async function load(): Promise<typeof Chevrotain> {
  try {
    const bundle = new URL('../chevrotain.mjs', import.meta.resolve('chevrotain'));
    return (await import(bundle.href)) as typeof Chevrotain;
  } catch {
    return import('chevrotain');
  }
}

const chevrotain = await load();

export const { createToken, EmbeddedActionsParser, EOF } = chevrotain;
export const Lexer = chevrotain.Lexer;
export type Lexer = Chevrotain.Lexer;
