// src/ml's schedule, AdamW, metrics and tokenizer against values computed
// independently from the definitions (Hugging Face, PyTorch, scipy, sklearn,
// BERT) by test/reference/sci_reference.py. The fixtures are committed JSON;
// python is not needed to run these tests (the script says how to regenerate).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { AdamW, cosineWithWarmup, lossAndGrads } from '../../src/ml/optim.js';
import { ParamStore } from '../../src/ml/params.js';
import { accuracy, argmaxRows, averageRanks, f1, matthews, pearson, retrievalRecall, spearman, topkAccuracy } from '../../src/ml/metrics.js';
import { basicTokenize, WordPieceTokenizer } from '../../src/ml/tokenizer.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'reference');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const fixture = (name: string): any => JSON.parse(readFileSync(join(DIR, name), 'utf8'));
/** JSON has no NaN or infinities: the reference writes them as strings. */
const num = (v: number | string): number => (typeof v === 'number' ? v : Number(v));

describe('cosine schedule with warmup = transformers get_cosine_schedule_with_warmup, stepped once per update', () => {
  const { cases } = fixture('schedule.json') as { cases: { base: number; warmup: number; total: number; lr: number[] }[] };
  it('has cases', () => expect(cases.length).toBeGreaterThanOrEqual(5));
  for (const c of cases) {
    it(`base ${c.base}, warmup ${c.warmup}, total ${c.total}: every update's lr`, () => {
      const ours = c.lr.map((_, step) => cosineWithWarmup(step, c.base, c.warmup, c.total));
      ours.forEach((lr, step) => expect(lr, `update ${step}`).toBeCloseTo(c.lr[step]!, 14));
      if (c.warmup > 0) expect(ours[0]).toBe(0); // the first update does not move the weights
    });
  }
  it('the case of the issue: cosineWithWarmup(0, 1e-3, 10, 100) is 0, update 10 reaches the base', () => {
    expect(cosineWithWarmup(0, 1e-3, 10, 100)).toBe(0);
    expect(cosineWithWarmup(1, 1e-3, 10, 100)).toBeCloseTo(1e-4, 15);
    expect(cosineWithWarmup(10, 1e-3, 10, 100)).toBeCloseTo(1e-3, 15);
  });
});

describe('AdamW = torch.optim.AdamW, with per-parameter step counts', () => {
  interface Case {
    beta1: number;
    beta2: number;
    eps: number;
    weightDecay: number;
    params: Record<string, { shape: number[]; kind: 'matrix' | 'bias' | 'embedding'; init: number[] }>;
    steps: { lr: number; grads: Record<string, number[]> }[];
    after: Record<string, number[]>[];
    counts: Record<string, number>;
  }
  const { cases } = fixture('adamw.json') as { cases: Case[] };

  const build = (c: Case) => {
    const ps = new ParamStore(1);
    for (const [name, p] of Object.entries(c.params)) {
      ps.add(name, p.shape, { kind: 'const', value: 0 }, { embedding: p.kind === 'embedding' });
      ps.get(name).assign(tf.tensor(p.init, p.shape));
    }
    return { ps, opt: new AdamW(ps, { beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay }) };
  };
  const applyStep = (c: Case, ps: ParamStore, opt: AdamW, k: number) => {
    const s = c.steps[k]!;
    const grads = new Map(Object.entries(s.grads).map(([n, g]) => [n, tf.tensor(g, c.params[n]!.shape)] as const));
    opt.apply(grads, s.lr);
    for (const g of grads.values()) g.dispose();
  };
  const expectParams = (c: Case, ps: ParamStore, k: number) => {
    for (const [name, want] of Object.entries(c.after[k]!)) {
      const got = ps.get(name).dataSync();
      // f32 here, f64 in the reference: 5e-6 of the larger of the value and 1
      want.forEach((w, i) => expect(Math.abs(got[i]! - w), `${name}[${i}] after step ${k + 1}`).toBeLessThan(5e-6 * Math.max(1, Math.abs(w))));
    }
  };

  it('the fixture skips parameters on some steps (frozen then unfrozen, sparse)', () => {
    expect(cases.length).toBe(3);
    for (const c of cases) expect(new Set(Object.values(c.counts)).size).toBeGreaterThan(1);
  });
  cases.forEach((c, ci) => {
    it(`case ${ci} (betas ${c.beta1}/${c.beta2}, eps ${c.eps}, wd ${c.weightDecay}): parameters after every step`, () => {
      const { ps, opt } = build(c);
      for (let k = 0; k < c.steps.length; k++) {
        applyStep(c, ps, opt, k);
        expectParams(c, ps, k);
      }
      expect(opt.step).toBe(c.steps.length);
      opt.dispose();
      ps.dispose();
    });
  });

  it('through lossAndGrads: a parameter frozen for two updates gets a fresh first update when unfrozen', () => {
    const ps = new ParamStore(1);
    ps.add('w', [2], { kind: 'const', value: 1 });
    ps.add('b', [2], { kind: 'const', value: 1 });
    const opt = new AdamW(ps, { beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0 });
    // loss = w . (3, -2) + b . (0.5, -4): constant gradients
    const step = () => {
      const { loss, grads } = lossAndGrads(ps, () => ({
        loss: tf.add(tf.sum(tf.mul(ps.get('w'), tf.tensor1d([3, -2]))), tf.sum(tf.mul(ps.get('b'), tf.tensor1d([0.5, -4])))) as tf.Scalar,
      }));
      opt.apply(grads, 0.1);
      loss.dispose();
      for (const g of grads.values()) g.dispose();
    };
    ps.setTrainable('b', false);
    step();
    step();
    expect(Array.from(ps.get('b').dataSync())).toEqual([1, 1]);
    ps.setTrainable('b', true);
    step();
    // first update of b: m_hat = g, v_hat = g^2, so it moves by lr * sign(g) (a global count of 3 would move it by 0.063)
    const b = ps.get('b').dataSync();
    expect(b[0]).toBeCloseTo(1 - 0.1, 5);
    expect(b[1]).toBeCloseTo(1 + 0.1, 5);
    opt.dispose();
    ps.dispose();
  });

  it('a snapshot carries the per-parameter counts: restored mid-run, the run ends where an uninterrupted one does', async () => {
    const c = cases[0]!;
    const first = build(c);
    for (let k = 0; k < 3; k++) applyStep(c, first.ps, first.opt, k);
    const snap = await first.opt.snapshot();
    const params = await first.ps.snapshot();
    first.opt.dispose();
    first.ps.dispose();
    const second = build(c);
    second.ps.load(params as Map<string, { shape: number[]; data: Float32Array }>, { strict: true });
    second.opt.restore(snap, 3);
    for (let k = 3; k < c.steps.length; k++) {
      applyStep(c, second.ps, second.opt, k);
      expectParams(c, second.ps, k);
    }
    second.opt.dispose();
    second.ps.dispose();
  });
});

describe('BERT BasicTokenizer / WordpieceTokenizer (uncased)', () => {
  const tok = fixture('tokenizer.json') as { basic: { text: string; tokens: string[] }[]; vocab: string[]; wordpiece: { text: string; pieces: string[] }[] };
  it('has a broad fixture', () => expect(tok.basic.length).toBeGreaterThanOrEqual(15));
  for (const c of tok.basic) {
    it(`basic tokens of ${JSON.stringify(c.text).slice(0, 60)}`, () => expect(basicTokenize(c.text)).toEqual(c.tokens));
  }
  it('format characters and U+000B join their neighbours; astral CJK ideographs are split', () => {
    expect(basicTokenize('soft\u00adhyphen zero\u200bwidth b\ufeffom a\u000bb')).toEqual(['softhyphen', 'zerowidth', 'bom', 'ab']);
    expect(basicTokenize('a\u{20000}\u{2A700}b')).toEqual(['a', '\u{20000}', '\u{2A700}', 'b']);
  });
  it('every assigned code point, inside a word and alone, block by block', () => {
    const { blocks } = fixture('tokenizer-all.json') as { blocks: { base: number; ranges: [number, number][]; sha256: string }[] };
    expect(blocks.length).toBeGreaterThan(75); // planes 0-3 and 14-16
    const wrong: string[] = [];
    for (const b of blocks) {
      const h = createHash('sha256');
      for (const [lo, hi] of b.ranges) {
        for (let c = lo; c <= hi; c++) {
          const ch = String.fromCodePoint(c);
          h.update(`${c}:${basicTokenize(`xA${ch}Bx ${ch}`).join('\x01')}\x02`, 'utf8');
        }
      }
      if (h.digest('hex') !== b.sha256) wrong.push(`U+${b.base.toString(16).toUpperCase()}..`);
    }
    // A mismatch names the 4096-code-point block; rerun test/reference/sci_reference.py's exhaustive_blocks
    // by code point there to see which character (a Unicode version difference goes in UNICODE_VERSION_DIFFS).
    expect(wrong).toEqual([]);
  });
  const wp = new WordPieceTokenizer(tok.vocab);
  for (const c of tok.wordpiece) {
    it(`wordpieces of ${JSON.stringify(c.text).slice(0, 40)}`, () => expect(wp.tokenize(c.text).map((i) => wp.tokens[i])).toEqual(c.pieces));
  }
});

describe("pair truncation = transformers 'longest_first' = BERT's _truncate_seq_pair", () => {
  const { pairs, single } = fixture('truncation.json') as {
    pairs: { a: number; b: number; maxLen: number; keepA: number; keepB: number }[];
    single: { a: number; maxLen: number; keepA: number }[];
  };
  // One vocabulary word per token, so a sentence of n words is n tokens.
  const tok = new WordPieceTokenizer(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'b']);
  const words = (w: string, n: number) => Array.from({ length: n }, () => w).join(' ');
  const count = (ids: number[], w: string) => ids.filter((i) => i === tok.vocab.get(w)).length;

  it('the case of the issue: 8 and 4 tokens at max length 10 keep 4 + 3', () => {
    const e = tok.encode(words('a', 8), words('b', 4), 10);
    expect(e.ids.map((i) => tok.tokens[i])).toEqual(['[CLS]', 'a', 'a', 'a', 'a', '[SEP]', 'b', 'b', 'b', '[SEP]']);
    expect(e.segments).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
  });
  it(`${pairs.length} pairs of lengths and limits`, () => {
    for (const c of pairs) {
      const e = tok.encode(words('a', c.a), words('b', c.b), c.maxLen);
      expect([count(e.ids, 'a'), count(e.ids, 'b')], JSON.stringify(c)).toEqual([c.keepA, c.keepB]);
      expect(e.ids.length).toBe(c.maxLen);
    }
  });
  it(`${single.length} single sentences`, () => {
    for (const c of single) expect(count(tok.encode(words('a', c.a), undefined, c.maxLen).ids, 'a'), JSON.stringify(c)).toBe(c.keepA);
  });
});

describe('Pearson and Spearman = scipy, except 0 (not NaN) for a constant vector', () => {
  const { cases } = fixture('correlations.json') as {
    cases: { x: number[]; y: number[]; pearson: number | string; spearman: number | string; ranksX: number[] }[];
  };
  const expected = (v: number | string) => (Number.isNaN(num(v)) ? 0 : num(v));
  it('includes constant inputs (NaN in scipy)', () => expect(cases.filter((c) => Number.isNaN(num(c.pearson))).length).toBeGreaterThanOrEqual(4));
  cases.forEach((c, i) => {
    it(`case ${i} (n=${c.x.length})`, () => {
      expect(averageRanks(c.x)).toEqual(c.ranksX);
      expect(pearson(c.x, c.y)).toBeCloseTo(expected(c.pearson), 12);
      expect(spearman(c.x, c.y)).toBeCloseTo(expected(c.spearman), 12);
      expect(pearson(c.y, c.x)).toBeCloseTo(expected(c.pearson), 12);
    });
  });
});

describe('accuracy, F1, Matthews = sklearn', () => {
  const { cases } = fixture('classification.json') as { cases: { pred: number[]; gold: number[]; accuracy: number; f1: number; matthews: number }[] };
  cases.forEach((c, i) => {
    it(`case ${i} (n=${c.pred.length})`, () => {
      expect(accuracy(c.pred, c.gold)).toBeCloseTo(c.accuracy, 14);
      expect(f1(c.pred, c.gold)).toBeCloseTo(c.f1, 14);
      expect(matthews(c.pred, c.gold)).toBeCloseTo(c.matthews, 12);
    });
  });
});

describe('rankings: ties and NaN scores count against the model', () => {
  const fx = fixture('ranking.json') as {
    retrieval: {
      kind: string;
      nImages: number;
      captionImage: number[];
      sim: (number | string)[];
      ks: number[];
      tr: Record<string, number>;
      ir: Record<string, number>;
    }[];
    topk: { kind: string; rows: number; cols: number; gold: number[]; scores: (number | string)[]; ks: number[]; topk: Record<string, number> }[];
  };
  for (const c of fx.retrieval) {
    it(`retrieval recall, ${c.kind} scores (${c.nImages} images, ${c.captionImage.length} captions)`, () => {
      const r = retrievalRecall(c.sim.map(num), c.nImages, c.captionImage, c.ks);
      for (const k of c.ks) {
        expect(r.tr[k], `TR@${k}`).toBeCloseTo(c.tr[k]!, 14);
        expect(r.ir[k], `IR@${k}`).toBeCloseTo(c.ir[k]!, 14);
      }
    });
  }
  for (const c of fx.topk) {
    it(`top-k accuracy, ${c.kind} scores (${c.rows} x ${c.cols})`, () => {
      const acc = topkAccuracy(c.scores.map(num), c.rows, c.cols, c.gold, c.ks);
      for (const k of c.ks) expect(acc[k], `top-${k}`).toBeCloseTo(c.topk[k]!, 14);
    });
  }
  it('a constant scorer gets top-1 = 0 and top-k < 1 while k does not cover every class', () => {
    const acc = topkAccuracy(new Array(4 * 6).fill(0.3), 4, 6, [0, 1, 2, 5], [1, 5, 6]);
    expect(acc).toEqual({ 1: 0, 5: 0, 6: 1 });
  });
  it('a NaN true score is never a hit, even when k covers every competitor', () => {
    expect(topkAccuracy([NaN, 0, 0], 1, 3, [0], [1, 3, 10])).toEqual({ 1: 0, 3: 0, 10: 0 });
    expect(retrievalRecall([NaN, 0, 0, 1], 2, [0, 1], [1, 5])).toEqual({ tr: { 1: 0.5, 5: 0.5 }, ir: { 1: 0.5, 5: 0.5 } });
  });
  it('rejects gold labels and caption owners outside the range', () => {
    expect(() => topkAccuracy([0, 1], 1, 2, [2], [1])).toThrow(/not a class index/);
    expect(() => retrievalRecall([0, 1], 1, [0, 1], [1])).toThrow(/not one of the 1 images/);
  });
});

describe('non-finite predictions fail the metric instead of scoring', () => {
  it('accuracy, F1, Matthews, Pearson, Spearman name the bad entry', () => {
    for (const f of [accuracy, f1, matthews, pearson, spearman]) {
      expect(() => f([1, NaN, 0], [1, 0, 0]), f.name).toThrow(/prediction 1 is NaN/);
      expect(() => f([1, 0, 0], [1, 0, Infinity]), f.name).toThrow(/gold value 2 is Infinity/);
    }
  });
  it('a NaN logit fails argmax (it would win in first place, or be skipped elsewhere)', () => {
    expect(() => argmaxRows([NaN, 1, 0, 2], 2, 2)).toThrow(/example 0 \(class 0\) are NaN/);
    expect(() => argmaxRows([1, 0, 0, NaN], 2, 2)).toThrow(/example 1 \(class 1\)/);
  });
  it('infinite logits still rank; ties pick the first maximum, as np.argmax', () => {
    expect(argmaxRows([1, Infinity, -Infinity, -Infinity, 3, 3], 3, 2)).toEqual([1, 0, 0]);
  });
});
