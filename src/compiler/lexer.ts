// Tokens of the .smke language (docs/language.md has the grammar). Error
// tokens (unterminated strings) are real token types so that the lexer never
// gives up on a file: the parser turns them into diagnostics.

import { createToken, Lexer, type TokenType } from './chevrotain.js';

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED, line_breaks: true });
export const Comment = createToken({ name: 'Comment', pattern: /#[^\n]*/, group: 'comments' });

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: 'a name' });
const keyword = (name: string, word: string) => createToken({ name, pattern: new RegExp(word), longer_alt: Identifier, label: `\`${word}\`` });
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
// Strings are scanned by hand: a regular expression with a repeated group
// overflows V8's regexp stack on a multi-megabyte string.
type Match = [string] | null;
const QUOTE = 34;
const BACKSLASH = 92;
const NEWLINE = 10;

function isTriple(text: string, at: number): boolean {
  return text.charCodeAt(at) === QUOTE && text.charCodeAt(at + 1) === QUOTE && text.charCodeAt(at + 2) === QUOTE;
}

/** End of a one-line string starting at `at` (index after the closing quote), or -(index where it stops) when unterminated. */
export function scanOneLine(text: string, at: number): number {
  let i = at + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return i + 1;
    if (c === NEWLINE) return -i;
    if (c === BACKSLASH) {
      if (text.charCodeAt(i + 1) === NEWLINE || i + 1 >= text.length) return -(i + 1);
      i += 2;
    } else i++;
  }
  return -text.length;
}

const matchTriple = (text: string, at: number): Match => {
  if (!isTriple(text, at)) return null;
  const close = text.indexOf('"""', at + 3);
  return close === -1 ? null : [text.slice(at, close + 3)];
};
const matchUnterminatedTriple = (text: string, at: number): Match => (isTriple(text, at) ? [text.slice(at)] : null);
const matchString = (text: string, at: number): Match => {
  if (text.charCodeAt(at) !== QUOTE) return null;
  const end = scanOneLine(text, at);
  return end > 0 ? [text.slice(at, end)] : null;
};
const matchUnterminatedString = (text: string, at: number): Match => {
  if (text.charCodeAt(at) !== QUOTE) return null;
  const end = scanOneLine(text, at);
  return end > 0 ? null : [text.slice(at, -end)];
};

export const TripleString = createToken({
  name: 'TripleString',
  pattern: { exec: matchTriple },
  start_chars_hint: ['"'],
  line_breaks: true,
  label: 'a string',
});
export const UnterminatedTriple = createToken({
  name: 'UnterminatedTriple',
  pattern: { exec: matchUnterminatedTriple },
  start_chars_hint: ['"'],
  line_breaks: true,
  label: 'a string',
});
export const StringLit = createToken({
  name: 'StringLit',
  pattern: { exec: matchString },
  start_chars_hint: ['"'],
  line_breaks: false,
  label: 'a string',
});
export const UnterminatedString = createToken({
  name: 'UnterminatedString',
  pattern: { exec: matchUnterminatedString },
  start_chars_hint: ['"'],
  line_breaks: false,
  label: 'a string',
});

// Runs of characters the language never uses, as one token outside the
// parser's view: reported once per run, and far faster than the lexer's own
// character-by-character recovery on a large binary file.
const GARBAGE = /[^\s"#A-Za-z0-9_{}[\]().,=+\-*/%]+/;

/**
 * Chevrotain cannot analyse a complement set, and one unanalysable pattern
 * turns off its first-character dispatch for every token (a 3x slower
 * lexer). The hint lists every first character instead: each such Latin-1
 * code, and one code per 255-wide bucket above it, which is how chevrotain
 * groups the rest of the UTF-16 range.
 */
function garbageStartChars(): number[] {
  const codes: number[] = [];
  for (let c = 0; c < 256; c++) if (GARBAGE.test(String.fromCharCode(c))) codes.push(c);
  for (let c = 256; c < 65536; c += 255) codes.push(c);
  codes.push(65535);
  return codes;
}

export const Garbage = createToken({
  name: 'Garbage',
  pattern: GARBAGE,
  start_chars_hint: garbageStartChars(),
  group: 'garbage',
  line_breaks: false,
});

const punct = (name: string, pattern: string, categories?: TokenType[]) =>
  createToken({ name, pattern: new RegExp(pattern.replace(/[[\]{}()*+.\\/]/g, '\\$&')), label: `\`${pattern}\``, ...(categories ? { categories } : {}) });
export const LBrace = punct('LBrace', '{');
export const RBrace = punct('RBrace', '}');
export const LBracket = punct('LBracket', '[');
export const RBracket = punct('RBracket', ']');
export const LParen = punct('LParen', '(');
export const RParen = punct('RParen', ')');
export const Comma = punct('Comma', ',');
export const Equals = punct('Equals', '=');
export const Dot = punct('Dot', '.');
/** Any binary operator: one token category lets the parser take a whole chain in one loop. */
export const BinaryOp = createToken({ name: 'BinaryOp', pattern: Lexer.NA, label: 'an operator' });
const op = (name: string, pattern: string) => punct(name, pattern, [BinaryOp]);
export const Plus = op('Plus', '+');
export const Minus = op('Minus', '-');
export const Star = op('Star', '*');
export const Slash = op('Slash', '/');
export const Percent = op('Percent', '%');

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
  BinaryOp,
  Garbage,
];

let lexer: Lexer | undefined;

/** The lexer, built on first use (building it analyses every pattern). */
export function smkeLexer(): Lexer {
  // Only \n ends a line, as in SourceFile: a stray \r must not shift line numbers between the two.
  lexer ??= new Lexer(allTokens, {
    positionTracking: 'onlyStart',
    ensureOptimizations: false,
    skipValidations: true,
    lineTerminatorsPattern: /\n/g,
    lineTerminatorCharacters: ['\n'],
  });
  return lexer;
}
