// Tokens of the .smke language (docs/language.md has the grammar). Error
// tokens (unterminated strings) are real token types so that the lexer never
// gives up on a file: the parser turns them into diagnostics.

import { createToken, Lexer, type TokenType } from 'chevrotain';

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED, line_breaks: true });
export const Comment = createToken({ name: 'Comment', pattern: /#[^\n]*/, group: 'comments' });

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: 'a name' });
const keyword = (name: string, word: string) =>
  createToken({ name, pattern: new RegExp(word), longer_alt: Identifier, label: `\`${word}\`` });
export const Smke = keyword('Smke', 'smke');
export const Import = keyword('Import', 'import');
export const Param = keyword('Param', 'param');
export const Profile = keyword('Profile', 'profile');
export const Stage = keyword('Stage', 'stage');
export const Default = keyword('Default', 'default');
export const In = keyword('In', 'in');
export const True = keyword('True', 'true');
export const False = keyword('False', 'false');
export const Null = keyword('Null', 'null');

// Digits with an optional fraction, exponent and unit suffix (`10GB`, `2h`).
// The unit is checked when the AST is built, so `10XB` is a clear error
// about units rather than two confusing tokens.
export const NumberLit = createToken({
  name: 'NumberLit',
  pattern: /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[A-Za-z_]*/,
  label: 'a number',
});
export const TripleString = createToken({ name: 'TripleString', pattern: /"""[\s\S]*?"""/, line_breaks: true, label: 'a string' });
export const UnterminatedTriple = createToken({ name: 'UnterminatedTriple', pattern: /"""[\s\S]*/, line_breaks: true, label: 'a string' });
export const StringLit = createToken({ name: 'StringLit', pattern: /"(?:[^"\\\n]|\\.)*"/, label: 'a string' });
export const UnterminatedString = createToken({ name: 'UnterminatedString', pattern: /"(?:[^"\\\n]|\\.)*/, label: 'a string' });

const punct = (name: string, pattern: string) =>
  createToken({ name, pattern: new RegExp(pattern.replace(/[[\]{}()*+.\\/]/g, '\\$&')), label: `\`${pattern}\`` });
export const LBrace = punct('LBrace', '{');
export const RBrace = punct('RBrace', '}');
export const LBracket = punct('LBracket', '[');
export const RBracket = punct('RBracket', ']');
export const LParen = punct('LParen', '(');
export const RParen = punct('RParen', ')');
export const Comma = punct('Comma', ',');
export const Equals = punct('Equals', '=');
export const Dot = punct('Dot', '.');
export const Plus = punct('Plus', '+');
export const Minus = punct('Minus', '-');
export const Star = punct('Star', '*');
export const Slash = punct('Slash', '/');
export const Percent = punct('Percent', '%');

export const allTokens: TokenType[] = [
  WhiteSpace,
  Comment,
  TripleString,
  UnterminatedTriple,
  StringLit,
  UnterminatedString,
  NumberLit,
  Smke,
  Import,
  Param,
  Profile,
  Stage,
  Default,
  In,
  True,
  False,
  Null,
  Identifier,
  LBrace,
  RBrace,
  LBracket,
  RBracket,
  LParen,
  RParen,
  Comma,
  Equals,
  Dot,
  Plus,
  Minus,
  Star,
  Slash,
  Percent,
];

let lexer: Lexer | undefined;

/** The lexer, built on first use (building it analyses every pattern). */
export function smkeLexer(): Lexer {
  lexer ??= new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false, skipValidations: true });
  return lexer;
}
