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
import { loadModel } from '../../src/ml/models.js';
import { teacherTargets } from '../../src/stages/ml/s_smke-run.js';
import { vitForward } from '../../src/ml/vit.js';

const root = resolve(__dirname, '..', '..');
const FIX = join(root, 'test', 'fixtures', 'pth');
const ref = JSON.parse(readFileSync(join(FIX, 'reference.json'), 'utf8')) as { images_nchw: number[][][][]; models: Record<string, { tokens_pre_norm: number[][][] }> };
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
    const r = spawnSync(process.execPath, [join(root, 'bin', 'smke.js'), 'run', 'pipelines/full.smke', '--profile', 'paper', '--only', 'teacher', 'image_encoder'], {
      cwd: dir, encoding: 'utf8', env: { ...process.env, SMKE_DATA: join(dir, 'data') }, timeout: 120_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 ran/);
    const images = tf.tensor4d(ref.images_nchw.flat(3), [2, 3, 8, 8]).transpose([0, 2, 3, 1]);
    const teacher = await loadModel(join(dir, 'results', 'teacher', 'model'));
    if (teacher.config.model !== 'vit') throw new Error('teacher is not a vit');
    const got = Array.from(teacherTargets(teacher.ps, teacher.config.vit, images).dataSync());
    const tokens = ref.models['beitv2_tiny.pth']!.tokens_pre_norm;
    const want = tokens.flatMap((seq) => { const cls = seq[0]!; const n = Math.hypot(...cls); return cls.map((v) => v / n); });
    expect(got.length).toBe(want.length);
    got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-4));
    const enc = await loadModel(join(dir, 'results', 'image_encoder', 'model'));
    if (enc.config.model !== 'vit') throw new Error('image encoder is not a vit');
    expect(enc.config.vit).toMatchObject({ preNorm: false, embedNorm: true, finalNorm: false });
    const d2v = Array.from(tf.tidy(() => vitForward(enc.ps, 'image', enc.config.vit, images, { finalNorm: false })).dataSync());
    const d2vWant = ref.models['data2vec2_tiny.pt']!.tokens_pre_norm.flat(2);
    d2v.forEach((v, i) => expect(Math.abs(v - d2vWant[i]!)).toBeLessThan(1e-4));
    teacher.ps.dispose();
    enc.ps.dispose();
    images.dispose();
  }, 180_000);
});
