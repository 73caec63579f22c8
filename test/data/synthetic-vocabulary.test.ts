// The synthetic world's two vocabularies and its world knowledge: the paired
// sets' training captions use the narrower `paired` part of the colour and
// shape words, everything else (val/test captions, class names, the corpus)
// all of them; the corpus's knowledge sentences tie each value's words alike
// to things of that value.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ImageDataset } from '../../src/data/image-dataset.js';
import { Rng } from '../../src/data/rng.js';
import { readCorpus } from '../../src/data/text-tasks.js';
import { generateSynthetic, classNames } from '../../src/data/synthetic/index.js';
import { COLOR_THINGS, SHAPE_THINGS, knowledgeSentence } from '../../src/data/synthetic/knowledge.js';
import { COLOR_WORDS, SHAPE_WORDS, captions, wordsOf } from '../../src/data/synthetic/language.js';
import { randomScene } from '../../src/data/synthetic/scene.js';

const has = (text: string, word: string) => new RegExp(`(^|[^a-z-])${word}($|[^a-z-])`).test(text);
/** The canonical words the paired vocabulary leaves out: each value's first word, where it has others. */
const HELD_OUT = [...Object.values(COLOR_WORDS), ...Object.values(SHAPE_WORDS)].filter((ws) => ws.length > 1).map((ws) => ws[0]!);
const ALL_WORDS = [...Object.values(COLOR_WORDS), ...Object.values(SHAPE_WORDS)].flat();

function sceneCaptions(vocabulary: 'full' | 'paired', n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const rng = new Rng(1000 + i);
    out.push(...captions(randomScene(rng, { minObjects: 1, maxObjects: 3, distractors: 0 }), 5, rng, vocabulary));
  }
  return out;
}

describe('vocabularies', () => {
  test('wordsOf: the paired part drops the canonical word where a value has synonyms, and keeps a lone word', () => {
    expect(wordsOf(COLOR_WORDS.red, 'paired')).toEqual(['crimson', 'scarlet']);
    expect(wordsOf(SHAPE_WORDS.circle, 'paired')).toEqual(['disc', 'round dot']);
    expect(wordsOf(SHAPE_WORDS.star, 'paired')).toEqual(['star']);
    expect(wordsOf(COLOR_WORDS.blue, 'full')).toEqual(COLOR_WORDS.blue);
  });

  test('paired captions never use a held-out word and use every paired word; full captions use the held-out words too', () => {
    const paired = sceneCaptions('paired', 400);
    const full = sceneCaptions('full', 400);
    for (const w of HELD_OUT) {
      expect(
        paired.filter((c) => has(c, w)),
        w,
      ).toEqual([]);
      expect(
        full.some((c) => has(c, w)),
        w,
      ).toBe(true);
    }
    for (const ws of [...Object.values(COLOR_WORDS), ...Object.values(SHAPE_WORDS)])
      for (const w of wordsOf(ws, 'paired'))
        expect(
          paired.some((c) => has(c, w)),
          w,
        ).toBe(true);
  });

  test('class names use held-out words for every value that has synonyms', () => {
    for (const c of classNames(49, 3)) {
      const [color, shape] = c.name.split(' ');
      expect(color).toBe(COLOR_WORDS[c.color][0]);
      expect(shape).toBe(SHAPE_WORDS[c.shape][0]);
    }
  });
});

describe('knowledge sentences', () => {
  const draw = (seed: number, n: number) => {
    const rng = new Rng(seed);
    return Array.from({ length: n }, () => knowledgeSentence(rng));
  };

  test('are deterministic per seed and differ between seeds', () => {
    expect(draw(5, 50)).toEqual(draw(5, 50));
    expect(draw(6, 50)).not.toEqual(draw(5, 50));
  });

  test('mention every colour and shape word; a thing only beside words of its own value, two synonyms only of one value', () => {
    const sentences = draw(11, 3000);
    for (const w of ALL_WORDS)
      expect(
        sentences.some((s) => has(s, w)),
        w,
      ).toBe(true);
    const things = [
      ...Object.entries(COLOR_THINGS).map(([v, ts]) => ({ words: COLOR_WORDS[v as keyof typeof COLOR_WORDS], ts })),
      ...Object.entries(SHAPE_THINGS).map(([v, ts]) => ({ words: SHAPE_WORDS[v as keyof typeof SHAPE_WORDS], ts })),
    ];
    const values = [...Object.values(COLOR_WORDS), ...Object.values(SHAPE_WORDS)];
    let synonymSentences = 0;
    for (const s of sentences) {
      const owners = things.filter(({ ts }) => ts.some(([one, many]) => has(s, one) || has(s, many)));
      expect(owners.length, s).toBeLessThanOrEqual(1);
      // The attribute words said besides a thing's own name ("a starfish is shaped like a star").
      const rest = (owners[0]?.ts.flat() ?? []).reduce((t, name) => t.replace(new RegExp(`\\b${name}\\b`, 'g'), '_'), s);
      const said = ALL_WORDS.filter((w) => has(rest, w));
      if (owners.length) {
        expect(said.length, s).toBe(1);
        expect(owners[0]!.words, s).toContain(said[0]);
      } else {
        synonymSentences++;
        expect(said.length, s).toBe(2);
        expect(said[0], s).not.toBe(said[1]);
        expect(
          values.some((ws) => ws.includes(said[0]!) && ws.includes(said[1]!)),
          s,
        ).toBe(true);
      }
    }
    expect(synonymSentences).toBeGreaterThan(3000 * 0.3);
    expect(synonymSentences).toBeLessThan(3000 * 0.5);
  });
});

describe('generateSynthetic with the paired training vocabulary and knowledge', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smke-vocab-'));
    await generateSynthetic(dir, {
      seed: 3,
      imageSize: 16,
      coco: { train: 80, val: 20, test: 20 },
      flickr: { train: 4, val: 2, test: 2 },
      classify: { classes: 2, trainPerClass: 1, valPerClass: 1 },
      text: { train: 20, eval: 10 },
      corpusLines: 2000,
      knowledgeFraction: 0.3,
      trainVocabulary: 'paired',
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('training captions use the paired part only; val and test captions and the corpus use the full vocabulary', async () => {
    const coco = await ImageDataset.open(join(dir, 'coco'), 'image-text');
    const text = async (split: string) => (await coco.records(split)).flatMap((r) => r.captions ?? []);
    const train = await text('train');
    const heldOut = (lines: string[]) => HELD_OUT.filter((w) => lines.some((c) => has(c, w)));
    expect(heldOut(train)).toEqual([]);
    expect(heldOut([...(await text('val')), ...(await text('test'))]).length).toBeGreaterThan(HELD_OUT.length / 2);
    const corpus = await readCorpus(join(dir, 'corpus'));
    expect(heldOut(corpus)).toEqual(HELD_OUT);
    const things = [...Object.values(COLOR_THINGS), ...Object.values(SHAPE_THINGS)].flat();
    const knowledge = corpus.filter((l) => things.some(([one, many]) => has(l, one) || has(l, many)));
    // A share of 0.3 of 2,000 lines, 0.6 of them about things: 360, binomial sd ~18.
    expect(knowledge.length).toBeGreaterThan(300);
    expect(knowledge.length).toBeLessThan(420);
  });
});
