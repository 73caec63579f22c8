// The paper profile's first ML step, end to end through the CLI: with the
// fixture checkpoints placed where docs/paper-profile.md says the published
// ones go, `smke run pipelines/full.smke --profile paper --only teacher
// image_encoder` converts both (BEiTv2 and Data2Vec2 layouts), and the
// converted teacher gives train.s_smke's KD target (last-block CLS, final
// norm removed, L2-normalised) equal to the numpy reference's.

import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ml/backend.js';
import { loadModel, smkeFromUnimodal } from '../../src/ml/models.js';
import { ParamStore } from '../../src/ml/params.js';
import { defineText } from '../../src/ml/text.js';
import { saveCheckpoint } from '../../src/ml/checkpoint.js';
import { smkeImage, smkeImageTokens, smkeLoss } from '../../src/ml/smke.js';
import { teacherTargets } from '../../src/stages/ml/s-smke-run.js';
import { vitForward } from '../../src/ml/vit.js';

const root = resolve(__dirname, '..', '..');
const FIX = join(root, 'test', 'fixtures', 'pth');
const ref = JSON.parse(readFileSync(join(FIX, 'reference.json'), 'utf8')) as {
  images_nchw: number[][][][];
  models: Record<string, { tokens_pre_norm: number[][][] }>;
};
let dir: string;

beforeAll(async () => {
  await selectBackend('cpu');
  dir = mkdtempSync(join(tmpdir(), 'smke-paper-weights-'));
  mkdirSync(join(dir, 'data', 'models'), { recursive: true });
  cpSync(join(FIX, 'beitv2_tiny.pth'), join(dir, 'data', 'models', 'beitv2_base_patch16_224_pt1k.pth'));
  cpSync(join(FIX, 'data2vec2_tiny.pt'), join(dir, 'data', 'models', 'base_imagenet.pt'));
  cpSync(join(root, 'pipelines'), join(dir, 'pipelines'), { recursive: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('paper profile: the published weights stages on fixture checkpoints', () => {
  it('converts both and the teacher forward gives the reference KD targets', async () => {
    const r = spawnSync(
      process.execPath,
      [join(root, 'bin', 'smke.js'), 'run', 'pipelines/full.smke', '--profile', 'paper', '--only', 'teacher', 'image_encoder'],
      {
        cwd: dir,
        encoding: 'utf8',
        env: { ...process.env, SMKE_DATA: join(dir, 'data') },
        timeout: 120_000,
      },
    );
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 ran/);
    const images = tf.tensor4d(ref.images_nchw.flat(3), [2, 3, 8, 8]).transpose([0, 2, 3, 1]);
    const teacher = await loadModel(join(dir, 'results', 'teacher', 'model'));
    const tCfg = teacher.config;
    if (tCfg.model !== 'vit') throw new Error('teacher is not a vit');
    const got = Array.from(teacherTargets(teacher.ps, tCfg.vit, images).dataSync());
    const tokens = ref.models['beitv2_tiny.pth']!.tokens_pre_norm;
    const want = tokens.flatMap((seq) => {
      const cls = seq[0]!;
      const n = Math.hypot(...cls);
      return cls.map((v) => v / n);
    });
    expect(got.length).toBe(want.length);
    got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-4));
    const enc = await loadModel(join(dir, 'results', 'image_encoder', 'model'));
    const encCfg = enc.config;
    if (encCfg.model !== 'vit') throw new Error('image encoder is not a vit');
    expect(encCfg.vit).toMatchObject({ preNorm: false, embedNorm: true, finalNorm: false });
    const d2v = Array.from(tf.tidy(() => vitForward(enc.ps, 'image', encCfg.vit, images, { finalNorm: false })).dataSync());
    const d2vWant = ref.models['data2vec2_tiny.pt']!.tokens_pre_norm.flat(2);
    d2v.forEach((v, i) => expect(Math.abs(v - d2vWant[i]!)).toBeLessThan(1e-4));

    // S-SMKE starts from the converted Data2Vec2 encoder truncated to 1 of its 2 blocks (the paper
    // keeps 6 of 12): its image tokens before the token type are that block's output exactly.
    const text = new ParamStore(3);
    const textCfg = { vocabSize: 20, maxLen: 8, dim: 16, depth: 2, heads: 2, mlpRatio: 2, eps: 1e-12 };
    defineText(text, 'text', textCfg);
    await saveCheckpoint(join(dir, 'text'), text, { model: 'text', text: textCfg });
    text.dispose();
    const { ps, cfg } = await smkeFromUnimodal(join(dir, 'results', 'image_encoder', 'model'), join(dir, 'text'), {
      layers: 1,
      sharedHeads: 2,
      sharedMlpRatio: 4,
      teacherDim: tCfg.vit.dim,
      seed: 5,
    });
    expect(cfg.image).toMatchObject({ depth: 1, preNorm: false, embedNorm: true });
    const direct = Array.from(tf.tidy(() => vitForward(enc.ps, 'image', encCfg.vit, images, { finalNorm: false, layers: 1 })).dataSync());
    const viaSmke = Array.from(
      tf.tidy(() => tf.sub(smkeImageTokens(ps, cfg, images), tf.mul(ps.get('token_type.table').slice([1, 0], [1, -1]), ps.get('token_type.scale')))).dataSync(),
    );
    direct.forEach((v, i) => expect(Math.abs(v - viaSmke[i]!)).toBeLessThan(1e-5));
    // One S-SMKE loss with the converted teacher's targets is finite.
    const targets = teacherTargets(teacher.ps, tCfg.vit, images);
    const batch = {
      ids: tf.tensor2d(
        [
          [2, 5, 6, 3],
          [2, 7, 3, 0],
        ],
        [2, 4],
        'int32',
      ),
      mask: tf.tensor2d(
        [
          [1, 1, 1, 1],
          [1, 1, 1, 0],
        ],
        [2, 4],
        'int32',
      ),
    };
    const loss = tf.tidy(() => smkeLoss(ps, cfg, images, batch, targets, null).total.dataSync()[0]!);
    expect(Number.isFinite(loss)).toBe(true);
    expect(Array.from(tf.tidy(() => smkeImage(ps, cfg, images).x.dataSync())).every(Number.isFinite)).toBe(true);
    tf.dispose([targets, batch.ids, batch.mask]);
    ps.dispose();
    teacher.ps.dispose();
    enc.ps.dispose();
    images.dispose();
  }, 180_000);
});
