import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { basicTokenize, WordPieceTokenizer } from '../../src/ml/tokenizer.js';

describe('WordPiece tokenizer', () => {
  it('basic tokenisation lowercases, strips accents and splits punctuation', () => {
    expect(basicTokenize("Héllo, World!  don't")).toEqual(['hello', ',', 'world', '!', 'don', "'", 't']);
  });

  it('reads a BERT vocab.txt and splits words greedily into ## pieces', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'smke-tok-'));
    const vocab = ['[PAD]', '[unused0]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'un', '##aff', '##able', 'the', 'a', '##ff', 'runn', '##ing', ','];
    await writeFile(join(dir, 'vocab.txt'), vocab.join('\n') + '\n');
    const tok = await WordPieceTokenizer.fromVocabFile(join(dir, 'vocab.txt'));
    await rm(dir, { recursive: true });
    expect(tok.size).toBe(15);
    expect(tok.cls).toBe(3);
    // "unaffable" -> un ##aff ##able (longest match first), unknown words -> [UNK]
    expect(tok.tokenize('UNAFFABLE running, xyz')).toEqual([6, 7, 8, 12, 13, 14, 2]);
    const e = tok.encode('the unaffable', 'a', 8);
    expect(e.ids).toEqual([3, 9, 6, 7, 8, 4, 10, 4]);
    expect(e.segments).toEqual([0, 0, 0, 0, 0, 0, 1, 1]);
    expect(e.mask).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    // truncation is longest-first, padding fills to maxLen
    const t = tok.encode('the the the the', 'a', 6);
    expect(t.ids).toEqual([3, 9, 9, 4, 10, 4]);
    const p = tok.encode('a', undefined, 5);
    expect(p.ids).toEqual([3, 10, 4, 0, 0]);
    expect(p.mask).toEqual([1, 1, 1, 0, 0]);
  });

  it('builds a small vocabulary from a corpus that never needs [UNK] on it', () => {
    const corpus = ['a red cube on a blue floor', 'two red spheres', 'the blue cube is big'];
    const tok = WordPieceTokenizer.build(corpus, 60);
    expect(tok.tokens.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    expect(tok.size).toBeLessThanOrEqual(60);
    // frequent whole words are single tokens
    expect(tok.tokenize('red cube')).toEqual([tok.vocab.get('red'), tok.vocab.get('cube')]);
    // unseen words fall back to characters, not [UNK]
    expect(tok.tokenize('bud')).not.toContain(tok.unk);
    const again = new WordPieceTokenizer(tok.toVocabText().trimEnd().split('\n'));
    expect(again.tokenize('two blue spheres')).toEqual(tok.tokenize('two blue spheres'));
  });
});
