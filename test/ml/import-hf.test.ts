import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ml/backend.js';
import { saveSafetensors } from '../../src/ml/safetensors.js';
import { isHfBert } from '../../src/ml/import-hf.js';
import { loadModel } from '../../src/ml/models.js';
import { textForward } from '../../src/ml/text.js';
import { Rng } from '../../src/data/rng.js';

// A tiny BERT in Hugging Face's layout, and BERT's forward pass written out
// with plain loops straight from the HF weights: the reference the imported
// model must reproduce.
const H = 8,
  HEADS = 2,
  I = 16,
  V = 12,
  P = 10,
  L = 2;
const rng = new Rng(4);
const hf = new Map<string, { shape: number[]; data: Float32Array }>();
const rand = (name: string, shape: number[], scale = 0.3) =>
  hf.set(name, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal() * scale) });
rand('bert.embeddings.word_embeddings.weight', [V, H]);
rand('bert.embeddings.position_embeddings.weight', [P, H]);
rand('bert.embeddings.token_type_embeddings.weight', [2, H]);
rand('bert.embeddings.LayerNorm.gamma', [H]); // old TF-converted names must work too
rand('bert.embeddings.LayerNorm.beta', [H]);
for (let l = 0; l < L; l++) {
  const p = `bert.encoder.layer.${l}`;
  for (const n of ['query', 'key', 'value']) {
    rand(`${p}.attention.self.${n}.weight`, [H, H]);
    rand(`${p}.attention.self.${n}.bias`, [H]);
  }
  rand(`${p}.attention.output.dense.weight`, [H, H]);
  rand(`${p}.attention.output.dense.bias`, [H]);
  rand(`${p}.attention.output.LayerNorm.weight`, [H]);
  rand(`${p}.attention.output.LayerNorm.bias`, [H]);
  rand(`${p}.intermediate.dense.weight`, [I, H]);
  rand(`${p}.intermediate.dense.bias`, [I]);
  rand(`${p}.output.dense.weight`, [H, I]);
  rand(`${p}.output.dense.bias`, [H]);
  rand(`${p}.output.LayerNorm.weight`, [H]);
  rand(`${p}.output.LayerNorm.bias`, [H]);
}
rand('cls.predictions.bias', [V]); // heads the encoder does not use are ignored

const W = (n: string) => hf.get(n.startsWith('bert.') ? n : `bert.${n}`)!.data;
const dense = (x: number[], n: string) => {
  const w = W(`${n}.weight`),
    b = W(`${n}.bias`);
  const out = b.length;
  const inn = x.length;
  return Array.from({ length: out }, (_, o) => b[o]! + x.reduce((s, v, i) => s + v * w[o * inn + i]!, 0));
};
const ln = (x: number[], g: Float32Array, b: Float32Array) => {
  const m = x.reduce((a, c) => a + c) / x.length;
  const v = x.reduce((a, c) => a + (c - m) ** 2, 0) / x.length;
  return x.map((c, i) => ((c - m) / Math.sqrt(v + 1e-12)) * g[i]! + b[i]!);
};
const erf = (x: number) => {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
};
function referenceBert(ids: number[], segs: number[], mask: number[]): number[][] {
  let h = ids.map((id, t) =>
    ln(
      Array.from(
        { length: H },
        (_, k) =>
          W('embeddings.word_embeddings.weight')[id * H + k]! +
          W('embeddings.position_embeddings.weight')[t * H + k]! +
          W('embeddings.token_type_embeddings.weight')[segs[t]! * H + k]!,
      ),
      W('embeddings.LayerNorm.gamma'),
      W('embeddings.LayerNorm.beta'),
    ),
  );
  const dh = H / HEADS;
  for (let l = 0; l < L; l++) {
    const p = `encoder.layer.${l}`;
    const q = h.map((x) => dense(x, `${p}.attention.self.query`)),
      k = h.map((x) => dense(x, `${p}.attention.self.key`)),
      v = h.map((x) => dense(x, `${p}.attention.self.value`));
    const ctx = h.map((_, t) => {
      const out: number[] = [];
      for (let hd = 0; hd < HEADS; hd++) {
        const s = k.map((kk, u) =>
          mask[u] ? q[t]!.slice(hd * dh, (hd + 1) * dh).reduce((a, c, j) => a + c * kk[hd * dh + j]!, 0) / Math.sqrt(dh) : -Infinity,
        );
        const mx = Math.max(...s);
        const e = s.map((z) => Math.exp(z - mx));
        const z = e.reduce((a, c) => a + c);
        for (let j = 0; j < dh; j++) out.push(e.reduce((a, c, u) => a + (c / z) * v[u]![hd * dh + j]!, 0));
      }
      return out;
    });
    h = h.map((x, t) =>
      ln(
        dense(ctx[t]!, `${p}.attention.output.dense`).map((c, i) => c + x[i]!),
        W(`${p}.attention.output.LayerNorm.weight`),
        W(`${p}.attention.output.LayerNorm.bias`),
      ),
    );
    h = h.map((x) =>
      ln(
        dense(
          dense(x, `${p}.intermediate.dense`).map((c) => 0.5 * c * (1 + erf(c / Math.SQRT2))),
          `${p}.output.dense`,
        ).map((c, i) => c + x[i]!),
        W(`${p}.output.LayerNorm.weight`),
        W(`${p}.output.LayerNorm.bias`),
      ),
    );
  }
  return h;
}

let dir: string;
beforeAll(async () => {
  await selectBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'smke-hfbert-'));
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'bert',
      vocab_size: V,
      hidden_size: H,
      num_hidden_layers: L,
      num_attention_heads: HEADS,
      intermediate_size: I,
      max_position_embeddings: P,
      layer_norm_eps: 1e-12,
      hidden_act: 'gelu',
      type_vocab_size: 2,
    }),
  );
  await saveSafetensors(join(dir, 'model.safetensors'), hf);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('Hugging Face BERT import', () => {
  it('is recognised, and reproduces a hand-written BERT forward pass from the HF weights', async () => {
    expect(await isHfBert(dir)).toBe(true);
    const { ps, config } = await loadModel(dir);
    expect(config.model).toBe('text');
    if (config.model !== 'text') return;
    expect(config.text.maxLen).toBe(P); // min(64, max_position_embeddings)
    const ids = [2, 5, 7, 3, 9, 3, 0],
      segs = [0, 0, 0, 0, 1, 1, 0],
      mask = [1, 1, 1, 1, 1, 1, 0];
    const want = referenceBert(ids, segs, mask);
    const got = tf.tidy(
      () =>
        textForward(ps, 'text', config.text, {
          ids: tf.tensor2d([ids], [1, 7], 'int32'),
          mask: tf.tensor2d([mask], [1, 7], 'int32'),
          segments: tf.tensor2d([segs], [1, 7], 'int32'),
        }).arraySync() as number[][][],
    );
    for (let t = 0; t < 6; t++) for (let k = 0; k < H; k++) expect(got[0]![t]![k]).toBeCloseTo(want[t]![k]!, 4);
    ps.dispose();
  });
});
