// The GLUE-like tasks' labels are functions of their text, as designed: a
// rule-based reader written here from the task definitions (not from the
// generator's code) recovers each label from the words alone, up to the
// label noise the generator adds; and the splits are balanced as intended.

import { describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import {
  MRPC_ONE_ATTRIBUTE,
  MRPC_OTHER_OBJECT,
  MRPC_POSITIVE,
  QQP_DUPLICATE,
  corpusSentence,
  generateTask,
  mrpcPair,
  plural,
  taskSplits,
} from '../../src/data/synthetic/glue-tasks.js';
import { Rng } from '../../src/data/rng.js';
import { COLOR_WORDS, POSITION_WORDS, SHAPE_WORDS, SIZE_WORDS } from '../../src/data/synthetic/language.js';
import type { TextExample } from '../../src/data/dataset-format.js';
import { spearman } from '../../src/ml/metrics.js';

const N = 2000;
const CATEGORIES = { shape: SHAPE_WORDS, color: COLOR_WORDS, size: SIZE_WORDS, position: POSITION_WORDS } as Record<string, Record<string, string[]>>;

function examples(task: Parameters<typeof generateTask>[0], seed = 11): TextExample[] {
  return generateTask(task, { train: N }, seed).train!;
}

/** The attribute words a phrase uses, per category ('' when it names none), longest synonym first. */
function attributeWords(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [cat, values] of Object.entries(CATEGORIES)) {
    const words = Object.values(values)
      .flat()
      .sort((x, y) => y.length - x.length);
    out[cat] = words.find((w) => new RegExp(`(^| )${w}( |$)`).test(text)) ?? '';
  }
  return out;
}

function agreement(ex: TextExample[], rule: (e: TextExample) => number | undefined): { rate: number; decided: number } {
  let ok = 0,
    decided = 0;
  for (const e of ex) {
    const guess = rule(e);
    if (guess === undefined) continue;
    decided++;
    if (guess === e.label) ok++;
  }
  return { rate: ok / decided, decided };
}

const rate = (ex: TextExample[], f: (e: TextExample) => boolean) => ex.filter(f).length / ex.length;

describe('GLUE-like tasks: labels are functions of the text', () => {
  test('MRPC: paraphrase exactly when both sides name the same attribute words (shared attributes worded alike)', () => {
    const ex = examples('mrpc');
    const same = (e: TextExample) => {
      const a = attributeWords(e.text),
        b = attributeWords(e.text_pair!);
      return Object.keys(CATEGORIES).every((k) => a[k] === b[k]) ? 1 : 0;
    };
    // 3% label noise: the rule agrees with the rest.
    expect(agreement(ex, same).rate).toBeGreaterThan(0.95);
    expect(agreement(ex, same).rate).toBeLessThan(1);
    // Negatives really differ: a bag of words of one side alone says nothing.
    expect(rate(ex, (e) => e.label === 1)).toBeCloseTo(MRPC_POSITIVE, 1);
  });

  test('QQP: duplicate exactly when both ask the same kind of question about the same shape and colour', () => {
    const ex = examples('qqp');
    const kind = (q: string) => (q.startsWith('where') || q.startsWith('in which') ? 'where' : /colour/.test(q) ? 'colour' : 'exists');
    const rule = (e: TextExample) => {
      const a = attributeWords(e.text),
        b = attributeWords(e.text_pair!);
      const k = kind(e.text);
      if (k !== kind(e.text_pair!)) return 0;
      return a.shape === b.shape && (k === 'colour' || a.color === b.color) ? 1 : 0;
    };
    expect(agreement(ex, rule).rate).toBeGreaterThan(0.95);
    expect(rate(ex, (e) => e.label === 1)).toBeCloseTo(QQP_DUPLICATE, 1);
  });

  test('STS-B: the score ranks with the number of attributes both phrases share', () => {
    const ex = examples('stsb');
    const shared = ex.map((e) => {
      const a = attributeWords(e.text),
        b = attributeWords(e.text_pair!);
      return Object.keys(CATEGORIES).filter((k) => a[k] === b[k]).length;
    });
    expect(
      spearman(
        shared,
        ex.map((e) => e.label),
      ),
    ).toBeGreaterThan(0.9);
    // Every grade occurs: identical, unrelated and in between.
    expect(rate(ex, (e) => e.label >= 4.5)).toBeGreaterThan(0.1);
    expect(rate(ex, (e) => e.label <= 1.5)).toBeGreaterThan(0.1);
  });

  test('WNLI: the hypothesis is entailed exactly when it names the referent; number agreement decides half, the verb the other half', () => {
    const ex = examples('wnli');
    const plurals = new Set(
      Object.values(SHAPE_WORDS)
        .flat()
        .map((w) => plural(w).split(' ').at(-1)!),
    );
    const hasPlural = (s: string) => s.split(' ').some((w) => plurals.has(w));
    const SUBJECT = ['bigger', 'faster', 'brighter', 'stronger'];
    const OBJECT = ['smaller', 'slower', 'duller', 'lighter'];
    const byNumber = ex.filter((e) => hasPlural(e.text));
    const byKnowledge = ex.filter((e) => !hasPlural(e.text));
    // Half each, and within each half the labels are balanced.
    expect(byNumber.length / ex.length).toBeCloseTo(0.5, 1);
    expect(rate(byNumber, (e) => e.label === 1)).toBeCloseTo(0.5, 1);
    expect(rate(byKnowledge, (e) => e.label === 1)).toBeCloseTo(0.5, 1);
    // Number: the pronoun ("they"/"it") and the hypothesis' verb ("are"/"is") agree exactly when it names the referent.
    const numberRule = (e: TextExample) => (/ because they are /.test(e.text) === / are /.test(e.text_pair!) ? 1 : 0);
    expect(agreement(byNumber, numberRule).rate).toBeGreaterThan(0.93);
    // Knowledge: the adjective says whether the referent is the subject; the hypothesis names the subject or the object.
    const knowledgeRule = (e: TextExample) => {
      const [clause, reason] = e.text.split(' because ') as [string, string];
      const adj = reason.split(' ')[2]!;
      const subjectIsReferent = SUBJECT.includes(adj) ? true : OBJECT.includes(adj) ? false : undefined;
      const words = clause.split(' ');
      const subject = words.slice(0, 3).join(' '); // "the <colour> <shape>" (one-word shapes only)
      if (subjectIsReferent === undefined || !Object.values(SHAPE_WORDS).flat().includes(words[2]!)) return undefined;
      const namesSubject = e.text_pair!.startsWith(`${subject} is `);
      return namesSubject === subjectIsReferent ? 1 : 0;
    };
    const k = agreement(byKnowledge, knowledgeRule);
    expect(k.decided).toBeGreaterThan(byKnowledge.length / 3);
    expect(k.rate).toBeGreaterThan(0.93);
    // Neither half can be read from one side alone: the premise's pronoun is "they" as often in entailed as in other examples.
    const they = byNumber.filter((e) => / they /.test(e.text));
    expect(rate(they, (e) => e.label === 1)).toBeGreaterThan(0.4);
    expect(rate(they, (e) => e.label === 1)).toBeLessThan(0.6);
  });

  test('plural of shape phrases', () => {
    expect(['box', 'round dot', 'rhombus', 'plus sign', 'cross', 'six-sided shape'].map(plural)).toEqual([
      'boxes',
      'round dots',
      'rhombuses',
      'plus signs',
      'crosses',
      'six-sided shapes',
    ]);
  });

  test('splits: GLUE sizes (RTE small; WNLI as large as the rest, to be learned, not memorised), every label on both sides of each split, other seeds alike', () => {
    expect(taskSplits('rte', 2000, 400)).toEqual({ train: 500, validation: 200, test: 200 });
    expect(taskSplits('wnli', 2000, 1000)).toEqual({ train: 2000, validation: 1000, test: 1000 });
    expect(taskSplits('mnli', 2000, 1000)).toEqual({ train: 2000, validation_matched: 1000, validation_mismatched: 1000, test: 1000 });
    expect(taskSplits('mrpc', 2000, 400)).toEqual({ train: 2000, validation: 400, test: 400 });
    for (const seed of [1, 2, 3]) {
      for (const task of ['mrpc', 'qqp', 'wnli', 'rte', 'sst2', 'cola'] as const) {
        const data = generateTask(task, { train: 600, validation: 600 }, seed);
        const trainPos = rate(data.train!, (e) => e.label === 1);
        const valPos = rate(data.validation!, (e) => e.label === 1);
        // The eval split has the train split's balance (the same generator): within sampling error.
        expect(Math.abs(trainPos - valPos), `${task} seed ${seed}`).toBeLessThan(0.08);
        expect(trainPos).toBeGreaterThan(0.25);
        expect(trainPos).toBeLessThan(0.75);
      }
    }
  });
});

describe('MRPC negatives: graded in the task, one attribute in the MLM corpus', () => {
  /** Attributes the first sentence mentions and how many of them the second names differently, read from the words. */
  const diff = (e: { text: string; text_pair?: string }) => {
    const a = attributeWords(e.text),
      b = attributeWords(e.text_pair!);
    const cats = Object.keys(CATEGORIES).filter((k) => a[k] !== '');
    return { mentioned: cats.length, changed: cats.filter((k) => a[k] !== b[k]).length };
  };

  test('graded: of the negatives a share MRPC_ONE_ATTRIBUTE changes one attribute, MRPC_OTHER_OBJECT is another object, the rest change 2..all mentioned attributes uniformly; positives as before', () => {
    const rng = new Rng(5);
    const draws = Array.from({ length: 800 }, () => mrpcPair(rng));
    // The words say what the generator decided: each pair changes `changed` of the `mentioned` attributes.
    for (const d of draws) expect(diff(d)).toEqual({ mentioned: d.mentioned, changed: d.changed });
    for (const d of draws) expect(d.changed === 0).toBe(d.negative === undefined);
    const neg = draws.filter((d) => d.negative !== undefined);
    const share = <T>(xs: T[], f: (d: T) => boolean) => xs.filter(f).length / xs.length;
    // Binomial sampling error on ~360 negatives is at most 0.026: 0.08 is three of them.
    expect(Math.abs(share(draws, (d) => d.negative === undefined) - MRPC_POSITIVE)).toBeLessThan(0.06);
    expect(Math.abs(share(neg, (d) => d.negative === 'one-attribute') - MRPC_ONE_ATTRIBUTE)).toBeLessThan(0.08);
    expect(Math.abs(share(neg, (d) => d.negative === 'other-object') - MRPC_OTHER_OBJECT)).toBeLessThan(0.08);
    for (const d of neg) {
      if (d.negative === 'one-attribute') expect(d.changed).toBe(1);
      // Another object: nothing the first sentence says holds for it.
      else if (d.negative === 'other-object') expect(d.changed).toBe(d.mentioned);
      else expect(d.changed >= 2 && d.changed <= d.mentioned).toBe(true);
    }
    // Several: 2..n uniformly, so with four attributes mentioned each of 2, 3, 4 takes a third.
    for (const n of [3, 4]) {
      const several = neg.filter((d) => d.mentioned === n && d.negative === 'several');
      expect(several.length, `n = ${n}`).toBeGreaterThan(20);
      for (let k = 2; k <= n; k++) expect(Math.abs(share(several, (d) => d.changed === k) - 1 / (n - 1)), `n = ${n}, k = ${k}`).toBeLessThan(0.2);
    }
    // Another object may mention what the first sentence does not (its mention is drawn anew).
    expect(neg.some((d) => d.negative === 'other-object' && attributeWords(d.text).size === '' && attributeWords(d.text_pair).size !== '')).toBe(true);
    // The task's files are this generator: the shares read from the words of a split agree.
    const ex = generateTask('mrpc', { train: 800 }, 11).train!.map(diff);
    const exNeg = ex.filter((d) => d.changed > 0);
    expect(Math.abs(exNeg.length / ex.length - (1 - MRPC_POSITIVE))).toBeLessThan(0.06);
    expect(Math.abs(share(exNeg, (d) => d.changed === 1) - MRPC_ONE_ATTRIBUTE)).toBeLessThan(0.08);
  });

  test("one-attribute (the corpus's form): every negative changes exactly one attribute, and the corpus sentences are those drawn before the negatives were graded", () => {
    const rng = new Rng(5);
    const draws = Array.from({ length: 800 }, () => mrpcPair(rng, 'one-attribute'));
    for (const d of draws) expect(diff(d)).toEqual({ mentioned: d.mentioned, changed: d.negative === undefined ? 0 : 1 });
    expect(draws.every((d) => d.negative === undefined || d.negative === 'one-attribute')).toBe(true);
    expect(Math.abs(draws.filter((d) => d.negative === undefined).length / draws.length - MRPC_POSITIVE)).toBeLessThan(0.06);
    // sha256 of 3,000 corpusSentence draws from Rng(7), joined by newlines, computed with the build
    // before the change (commit bac32bc): the MLM corpus, and every encoder pretrained on it, are unchanged.
    const corpus = new Rng(7);
    const lines = Array.from({ length: 3000 }, () => corpusSentence(corpus));
    expect(createHash('sha256').update(lines.join('\n')).digest('hex')).toBe('1042ecd5a1f6114ac6aa4971fb03c3aa293017c5fa37f42f01bf6632d2266b43');
  });
});
