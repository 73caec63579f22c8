import { describe, expect, it } from 'vitest';
import { blockFlops, vitFlops } from '../../src/ml/flops.js';

describe('FLOP counts', () => {
  it('one transformer block by hand', () => {
    // d=4, mlp 8, B=1, T=2: linears 2*2*(4*12 + 16 + 32 + 32) = 512; attention 2*2*1*4*4 = 64
    expect(blockFlops({ dim: 4, heads: 1, mlpRatio: 2, eps: 1e-6, preNorm: true, layerScale: 0 }, 1, 2)).toBe(512 + 64);
  });
  it('a ViT adds the patch embedding and scales with depth', () => {
    const c = { imageSize: 8, patchSize: 4, channels: 3, dim: 4, depth: 1, heads: 1, mlpRatio: 2, eps: 1e-6, layerScale: 0 };
    const patch = 2 * 4 * 48 * 4;
    const one = vitFlops(c, 1);
    expect(one).toBe(patch + blockFlops({ dim: 4, heads: 1, mlpRatio: 2, eps: 1e-6, preNorm: true, layerScale: 0 }, 1, 5));
    expect(vitFlops({ ...c, depth: 3 }, 1) - patch).toBe(3 * (one - patch));
  });
});
