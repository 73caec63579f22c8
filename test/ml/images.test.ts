import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/data/rng.js';
import { imageBatch, epochBatches, type ImageSplit } from '../../src/stages/ml/images.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/augment.js';

const norm = (v: number, c: number) => (v - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;

function split(size: number, n: number): ImageSplit {
  const pixels = new Uint8Array(n * size * size * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 256;
  return { records: [], size, pixels, classes: [] };
}

describe('image batches', () => {
  it('without rng the images are only normalised', () => {
    const s = split(4, 3);
    const expected = [...s.pixels.subarray(2 * 48, 3 * 48), ...s.pixels.subarray(0, 48)].map((v, i) => norm(v / 255, i % 3));
    Array.from(imageBatch(s, [2, 0])).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
  });

  it('augmentation is deterministic per seed and stays in the valid pixel range', () => {
    const s = split(8, 2);
    const a = imageBatch(s, [0, 1], new Rng(5)),
      b = imageBatch(s, [0, 1], new Rng(5)),
      c = imageBatch(s, [0, 1], new Rng(6));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    for (let i = 0; i < a.length; i++) {
      expect(a[i]).toBeGreaterThanOrEqual(norm(0, i % 3) - 1e-5);
      expect(a[i]).toBeLessThanOrEqual(norm(1, i % 3) + 1e-5);
    }
  });

  it('a grey image stays grey under augmentation; jitter 0 leaves a flat image as it was', () => {
    const grey: ImageSplit = { records: [], size: 4, pixels: new Uint8Array(48).fill(128), classes: [] };
    const flat = imageBatch(grey, [0], new Rng(1), 0);
    flat.forEach((v, i) => expect(v).toBeCloseTo(norm(128 / 255, i % 3), 5));
    const raw = Array.from(imageBatch(grey, [0], new Rng(1), 0.4), (v, i) => v * IMAGENET_STD[i % 3]! + IMAGENET_MEAN[i % 3]!);
    for (let p = 0; p < 16; p++) {
      expect(raw[3 * p]).toBeCloseTo(raw[3 * p + 1]!, 5);
      expect(raw[3 * p + 1]).toBeCloseTo(raw[3 * p + 2]!, 5);
    }
    expect(raw[0]).not.toBeCloseTo(128 / 255, 3);
  });

  it('epoch batches: each epoch a permutation, the same for the same step', () => {
    const at = epochBatches(10, 4, 3);
    const epoch0 = [...at(0), ...at(1)];
    expect(new Set(epoch0).size).toBe(8);
    expect(at(1)).toEqual(epochBatches(10, 4, 3)(1));
    expect([...at(2), ...at(3)]).not.toEqual(epoch0);
  });
});
