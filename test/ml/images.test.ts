import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/data/rng.js';
import { colorJitter, imageBatch, epochBatches, type ImageSplit } from '../../src/stages/ml/images.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/augment.js';

const norm = (v: number, c: number) => (v - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;

function split(size: number, n: number): ImageSplit {
  const pixels = new Float32Array(n * size * size * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = norm(((i * 37) % 101) / 100, i % 3);
  return { records: [], size, pixels, classes: [] };
}

describe('image batches', () => {
  it('without rng the images are copied unchanged', () => {
    const s = split(4, 3);
    expect(Array.from(imageBatch(s, [2, 0]))).toEqual([...s.pixels.subarray(2 * 48, 3 * 48), ...s.pixels.subarray(0, 48)]);
  });

  it('augmentation is deterministic per seed and stays in the valid pixel range', () => {
    const s = split(8, 2);
    const a = imageBatch(s, [0, 1], new Rng(5)), b = imageBatch(s, [0, 1], new Rng(5)), c = imageBatch(s, [0, 1], new Rng(6));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    for (let i = 0; i < a.length; i++) {
      expect(a[i]).toBeGreaterThanOrEqual(norm(0, i % 3) - 1e-5);
      expect(a[i]).toBeLessThanOrEqual(norm(1, i % 3) + 1e-5);
    }
  });

  it('colour jitter of a grey image keeps it grey; strength 0 is the identity', () => {
    const px = new Float32Array(12);
    for (let i = 0; i < 12; i++) px[i] = norm(0.5, i % 3);
    const same = px.slice();
    colorJitter(same, 0, new Rng(1));
    same.forEach((v, i) => expect(v).toBeCloseTo(px[i]!, 5));
    colorJitter(px, 0.4, new Rng(1));
    const raw = Array.from(px, (v, i) => v * IMAGENET_STD[i % 3]! + IMAGENET_MEAN[i % 3]!);
    for (let p = 0; p < 4; p++) {
      expect(raw[3 * p]).toBeCloseTo(raw[3 * p + 1]!, 5);
      expect(raw[3 * p + 1]).toBeCloseTo(raw[3 * p + 2]!, 5);
    }
  });

  it('epoch batches: each epoch a permutation, the same for the same step', () => {
    const at = epochBatches(10, 4, 3);
    const epoch0 = [...at(0), ...at(1)];
    expect(new Set(epoch0).size).toBe(8);
    expect(at(1)).toEqual(epochBatches(10, 4, 3)(1));
    expect([...at(2), ...at(3)]).not.toEqual(epoch0);
  });
});
