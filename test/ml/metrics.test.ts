import { describe, expect, it } from 'vitest';
import { accuracy, averageRanks, f1, matthews, pearson, retrievalRecall, spearman, argmaxRows } from '../../src/ml/metrics.js';

describe('classification metrics', () => {
  const gold = [1, 1, 1, 0, 0, 0, 1, 0];
  const pred = [1, 0, 1, 1, 0, 0, 1, 0];
  // tp=3 fn=1 fp=1 tn=3
  it('accuracy', () => expect(accuracy(pred, gold)).toBe(6 / 8));
  it('F1 of the positive class', () => expect(f1(pred, gold)).toBeCloseTo((2 * 3) / (2 * 3 + 1 + 1), 12));
  it('Matthews correlation', () => {
    expect(matthews(pred, gold)).toBeCloseTo((3 * 3 - 1 * 1) / Math.sqrt(4 * 4 * 4 * 4), 12);
    expect(matthews([1, 1, 1], [1, 0, 1])).toBe(0); // one empty marginal
    expect(matthews([0, 1, 0, 1], [1, 0, 1, 0])).toBeCloseTo(-1, 12);
  });
  it('F1 is 0 without true positives', () => expect(f1([0, 0], [1, 1])).toBe(0));
  it('argmax per row', () => expect(argmaxRows([0.1, 0.9, 0.3, 5, 1, 2], 2, 3)).toEqual([1, 0]));
});

describe('correlations', () => {
  it('Pearson on a hand case', () => {
    // x mean 2, y mean 4; sxy = (-1)(-2)+0+(1)(2)=4, sxx=2, syy=8 -> 4/4 = 1
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    // sxy = (-1)(1)+0+(1)(-2) = -3 with y=[5,3,2] (mean 10/3): dy=[5/3,-1/3,-4/3]; sxy=-5/3-4/3=-3; syy=(25+1+16)/9=42/9
    expect(pearson([1, 2, 3], [5, 3, 2])).toBeCloseTo(-3 / Math.sqrt(2 * (42 / 9)), 12);
  });
  it('average ranks for ties', () => expect(averageRanks([10, 20, 10, 30, 20])).toEqual([1.5, 3.5, 1.5, 5, 3.5]));
  it('Spearman with ties equals Pearson of average ranks', () => {
    // ranks x = [1.5,1.5,3,4], y = [1,2,3,4]
    const rx = [1.5, 1.5, 3, 4],
      ry = [1, 2, 3, 4];
    expect(spearman([7, 7, 8, 9], [0.1, 0.2, 0.3, 0.4])).toBeCloseTo(pearson(rx, ry), 12);
    // hand value: mx=2.5, dx=[-1,-1,.5,1.5], dy=[-1.5,-.5,.5,1.5]; sxy=1.5+.5+.25+2.25=4.5; sxx=4.5; syy=5
    expect(spearman([7, 7, 8, 9], [0.1, 0.2, 0.3, 0.4])).toBeCloseTo(4.5 / Math.sqrt(4.5 * 5), 12);
  });
});

describe('retrieval recall with several captions per image', () => {
  // 3 images, 5 captions: captions 0,1 -> image 0; 2,3 -> image 1; 4 -> image 2.
  const capImg = [0, 0, 1, 1, 2];
  // rows are images, columns captions
  const sim = [
    0.1,
    0.8,
    0.9,
    0.0,
    0.0, // image 0: best caption is 2 (wrong), then 1 (right): TR rank 1
    0.5,
    0.1,
    0.4,
    0.3,
    0.0, // image 1: 0 (wrong) first, then 2 (right): TR rank 1
    0.0,
    0.0,
    0.0,
    0.1,
    0.7, // image 2: 4 (right) first: TR rank 0
  ];
  it('TR@k and IR@k match the hand count', () => {
    const r = retrievalRecall(sim, 3, capImg, [1, 2, 3]);
    expect(r.tr[1]).toBeCloseTo(1 / 3, 12);
    expect(r.tr[2]).toBe(1);
    // IR: caption 0 column [0.1,0.5,0.0] -> image 0 is rank 1; caption 1 [0.8,0.1,0] rank 0;
    // caption 2 [0.9,0.4,0] true image 1 -> rank 1; caption 3 [0,0.3,0.1] rank 0; caption 4 rank 0
    expect(r.ir[1]).toBeCloseTo(3 / 5, 12);
    expect(r.ir[2]).toBe(1);
    expect(r.ir[3]).toBe(1);
  });
  it('a constant scorer gets no hits at k=1', () => {
    const r = retrievalRecall(new Array(15).fill(0), 3, capImg, [1]);
    expect(r.tr[1]).toBe(0);
    expect(r.ir[1]).toBe(0);
  });
  it('rejects a similarity of the wrong size', () => expect(() => retrievalRecall([1, 2], 3, capImg)).toThrow());
});
