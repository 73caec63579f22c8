// WordPiece tokenisation as BERT-base-uncased does it: basic tokenisation
// (clean, lowercase, strip accents, split on whitespace and punctuation),
// then greedy longest-match-first over the vocabulary with "##" continuations.

import { readFile } from 'node:fs/promises';

export const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
const MAX_WORD_CHARS = 100;

export interface Encoded {
  ids: number[];
  /** 1 for real tokens, 0 for padding. */
  mask: number[];
  /** 0 for the first sentence (and its [CLS]/[SEP]), 1 for the second. */
  segments: number[];
}

function isPunctuation(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  // BERT treats all non-alphanumeric ASCII as punctuation, plus Unicode P* classes.
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return /\p{P}/u.test(ch);
}

/** BERT's `_is_chinese_char`: the CJK ideograph blocks, including those outside the BMP (planes 2 and the compatibility supplement). */
function isCjk(c: number): boolean {
  return (
    (c >= 0x4e00 && c <= 0x9fff) ||
    (c >= 0x3400 && c <= 0x4dbf) ||
    (c >= 0x20000 && c <= 0x2a6df) ||
    (c >= 0x2a700 && c <= 0x2b73f) ||
    (c >= 0x2b740 && c <= 0x2b81f) ||
    (c >= 0x2b820 && c <= 0x2ceaf) ||
    (c >= 0xf900 && c <= 0xfaff) ||
    (c >= 0x2f800 && c <= 0x2fa1f)
  );
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * BERT's `_clean_text` and `_tokenize_chinese_chars`, one code point at a time
 * (a regex over UTF-16 units missed the ideographs outside the BMP): NUL, U+FFFD
 * and every other-category (C*) character except tab, newline and CR are
 * dropped -- so format characters such as the soft hyphen, zero-width space
 * and BOM, and U+000B, join their neighbours instead of splitting them --;
 * tab, newline, CR and space separators (Zs) become a space; ideographs get a
 * space on each side.
 */
function cleanText(text: string): string {
  if (PRINTABLE_ASCII.test(text)) return text; // the common case: nothing to remove, no ideographs
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x20 && c < 0x7f) {
      out += ch; // printable ASCII: no class lookups
      continue;
    }
    if (ch === '\t' || ch === '\n' || ch === '\r' || /\p{Zs}/u.test(ch)) out += ' ';
    else if (ch === '\ufffd' || /\p{C}/u.test(ch)) continue;
    else if (isCjk(c)) out += ` ${ch} `;
    else out += ch;
  }
  return out;
}

/**
 * BERT's whitespace_tokenize after cleaning: Python's str.split(), whose
 * whitespace left after cleaning is the space and the line and paragraph
 * separators U+2028/U+2029 (JS's \s would also split at U+FEFF).
 */
const WHITESPACE = /[ \u2028\u2029]+/u;

/** Lowercase, strip accents, split on whitespace and punctuation (BERT's uncased BasicTokenizer). */
export function basicTokenize(text: string): string[] {
  const out: string[] = [];
  for (const token of cleanText(text).normalize('NFC').split(WHITESPACE)) {
    if (!token) continue;
    const lower = token.toLowerCase();
    const word = PRINTABLE_ASCII.test(lower) ? lower : lower.normalize('NFD').replace(/\p{Mn}/gu, '');
    let cur = '';
    for (const ch of word) {
      if (isPunctuation(ch)) {
        if (cur) out.push(cur);
        out.push(ch);
        cur = '';
      } else cur += ch;
    }
    if (cur) out.push(cur);
  }
  return out;
}

export class WordPieceTokenizer {
  readonly vocab: Map<string, number>;
  readonly tokens: string[];
  readonly pad: number;
  readonly unk: number;
  readonly cls: number;
  readonly sep: number;
  readonly maskId: number;
  /** [PAD], [UNK], [CLS], [SEP] and [MASK]: the ids masked-language modelling never masks or draws. */
  readonly specialIds: ReadonlySet<number>;

  constructor(tokens: string[]) {
    this.tokens = tokens;
    this.vocab = new Map(tokens.map((t, i) => [t, i]));
    const id = (t: string) => {
      const i = this.vocab.get(t);
      if (i === undefined) throw new Error(`vocabulary lacks ${t}`);
      return i;
    };
    this.pad = id('[PAD]');
    this.unk = id('[UNK]');
    this.cls = id('[CLS]');
    this.sep = id('[SEP]');
    this.maskId = id('[MASK]');
    this.specialIds = new Set([this.pad, this.unk, this.cls, this.sep, this.maskId]);
  }

  get size(): number {
    return this.tokens.length;
  }

  /** Reads a standard BERT vocab.txt: one token per line, the line number is the id. */
  static async fromVocabFile(path: string): Promise<WordPieceTokenizer> {
    const lines = (await readFile(path, 'utf8')).split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return new WordPieceTokenizer(lines.map((l) => l.replace(/\r$/, '')));
  }

  /** vocab.txt contents for this vocabulary. */
  toVocabText(): string {
    return this.tokens.join('\n') + '\n';
  }

  /**
   * A small vocabulary for the mini profile: the special tokens, every
   * character seen (alone and as a "##" continuation, so no word is ever
   * [UNK]), then whole words by descending frequency up to `size`.
   */
  static build(corpus: Iterable<string>, size: number): WordPieceTokenizer {
    const counts = new Map<string, number>();
    const chars = new Set<string>();
    for (const text of corpus) {
      for (const w of basicTokenize(text)) {
        counts.set(w, (counts.get(w) ?? 0) + 1);
        for (const ch of w) chars.add(ch);
      }
    }
    const tokens: string[] = [...SPECIALS];
    const seen = new Set<string>(tokens);
    const push = (t: string) => {
      if (!seen.has(t)) {
        seen.add(t);
        tokens.push(t);
      }
    };
    const sortedChars = [...chars].sort();
    for (const ch of sortedChars) push(ch);
    for (const ch of sortedChars) push(`##${ch}`);
    const words = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    for (const [w] of words) {
      if (tokens.length >= size) break;
      push(w);
    }
    return new WordPieceTokenizer(tokens);
  }

  /** WordPiece ids of a text, without special tokens. */
  tokenize(text: string): number[] {
    const ids: number[] = [];
    for (const word of basicTokenize(text)) {
      const chars = [...word];
      if (chars.length > MAX_WORD_CHARS) {
        ids.push(this.unk);
        continue;
      }
      const pieces: number[] = [];
      let start = 0;
      let bad = false;
      while (start < chars.length) {
        let end = chars.length;
        let found: number | undefined;
        while (start < end) {
          const sub = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
          found = this.vocab.get(sub);
          if (found !== undefined) break;
          end--;
        }
        if (found === undefined) {
          bad = true;
          break;
        }
        pieces.push(found);
        start = end;
      }
      if (bad) ids.push(this.unk);
      else ids.push(...pieces);
    }
    return ids;
  }

  /**
   * [CLS] a [SEP] (b [SEP]), truncated longest-first to `maxLen` and padded
   * with [PAD] to exactly `maxLen` tokens.
   */
  encode(a: string, b: string | undefined, maxLen: number): Encoded {
    const ta = this.tokenize(a);
    const tb = b === undefined ? [] : this.tokenize(b);
    const budget = maxLen - (b === undefined ? 2 : 3);
    if (budget < 0) throw new Error(`maxLen ${maxLen} is too small for the special tokens`);
    // BERT's _truncate_seq_pair: the longer loses a token; on a tie the second
    // does (so 8+4 at budget 7 keeps 4+3, as transformers' longest_first does).
    while (ta.length + tb.length > budget) (ta.length > tb.length ? ta : tb).pop();
    const ids = [this.cls, ...ta, this.sep];
    const segments = ids.map(() => 0);
    if (b !== undefined) {
      ids.push(...tb, this.sep);
      segments.push(...tb.map(() => 1), 1);
    }
    const mask = ids.map(() => 1);
    while (ids.length < maxLen) {
      ids.push(this.pad);
      mask.push(0);
      segments.push(0);
    }
    return { ids, mask, segments };
  }
}
