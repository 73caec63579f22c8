// PyTorch checkpoint import: the fixtures in test/fixtures/pth are written by
// make_fixtures.py with the standard library's pickle and zipfile in
// torch.save's exact layout (torch itself cannot be installed here), and the
// reference activations there come from a numpy forward pass written from
// the published models' definitions, independently of this TypeScript.

import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ml/backend.js';
import { loadModel } from '../../src/ml/models.js';
import { vitForward } from '../../src/ml/vit.js';
import { gatherStrided, loadTorchCheckpoint, findStateDict, readTorchZip } from '../../src/ml/torch-checkpoint.js';
import { readPublishedVit, sincosPositions, findConfigValue } from '../../src/ml/import-vit.js';
import { unpickle, OpaqueObject } from '../../src/ml/pickle.js';
import { weightsConvertKind } from '../../src/stages/data/weights.js';
import type { StageContext } from '../../src/stages/stage-kind.js';

const FIX = join(__dirname, '..', 'fixtures', 'pth');
interface Ref {
  images_nchw: number[][][][];
  models: Record<string, { layout: string; heads: number; relPos?: string; tokens_pre_norm: number[][][]; tokens?: number[][][] }>;
  sincos_positions: number[];
  adversarial_marker: string;
}
const ref = JSON.parse(readFileSync(join(FIX, 'reference.json'), 'utf8')) as Ref;

let dir: string;
beforeAll(async () => {
  await selectBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'smke-pth-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function maxDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

function fakeCtx(outDir: string, logs: string[]): StageContext {
  const log = { debug: () => {}, info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m), error: (m: string) => logs.push(m) };
  return {
    instance: 'teacher',
    stage: 'teacher',
    key: 'k',
    outDir,
    scratchDir: outDir,
    projectDir: FIX,
    attempt: 1,
    seed: 0,
    resources: { gpuIds: [] },
    log,
    progress: () => {},
    metric: () => {},
    signal: new AbortController().signal,
    inputs: {},
  } as unknown as StageContext;
}

describe('PyTorch checkpoints: the published layouts forward exactly', () => {
  for (const file of Object.keys(ref.models)) {
    it(`${file}: weights.convert, then the forward matches the numpy reference to 1e-4`, async () => {
      const want = ref.models[file]!;
      const out = join(dir, file);
      const logs: string[] = [];
      await weightsConvertKind.run(fakeCtx(out, logs), { path: file, layout: 'auto', source: '' });
      expect(logs.join('\n')).toContain(want.layout);
      const config = JSON.parse(await readFile(join(out, 'model', 'config.json'), 'utf8'));
      expect(config.vit.heads).toBe(want.heads);
      expect(config.vit.relPos).toBe(want.relPos);
      const { ps, config: cfg } = await loadModel(join(out, 'model'));
      if (cfg.model !== 'vit') throw new Error('not a vit');
      // The fixtures take NCHW images as torch does; smke takes NHWC.
      const images = tf.tensor4d(ref.images_nchw.flat(3), [2, 3, 8, 8]).transpose([0, 2, 3, 1]);
      const pre = Array.from(tf.tidy(() => vitForward(ps, 'image', cfg.vit, images, { finalNorm: false })).dataSync());
      expect(maxDiff(pre, want.tokens_pre_norm.flat(2))).toBeLessThan(1e-4);
      if (want.tokens) {
        const post = Array.from(tf.tidy(() => vitForward(ps, 'image', cfg.vit, images)).dataSync());
        expect(maxDiff(post, want.tokens.flat(2))).toBeLessThan(1e-4);
      } else {
        expect(() => vitForward(ps, 'image', cfg.vit, images)).toThrow(/no final norm/);
      }
      // The first k blocks (S-SMKE keeps 6 of 12) are the same model truncated: one block differs from two.
      const one = Array.from(tf.tidy(() => vitForward(ps, 'image', cfg.vit, images, { finalNorm: false, layers: 1 })).dataSync());
      expect(maxDiff(one, pre)).toBeGreaterThan(1e-2);
      images.dispose();
      ps.dispose();
    });
  }

  it('reads the fairseq checkpoint under `model`, stubs its config objects, and finds heads in the omegaconf cfg', async () => {
    const root = (await loadTorchCheckpoint(join(FIX, 'data2vec2_tiny.pt'))) as Map<string, unknown>;
    expect([...root.keys()]).toEqual(['args', 'cfg', 'model', 'optimizer_history', 'task_state', 'extra_state']);
    expect(root.get('cfg')).toBeInstanceOf(OpaqueObject);
    expect((root.get('cfg') as OpaqueObject).cls).toBe('omegaconf.dictconfig.DictConfig');
    expect(findConfigValue(root, 'num_heads')).toBe(2);
    expect(findConfigValue(root, 'norm_eps')).toBe(1e-6);
    expect(findStateDict(root).under).toBe('model');
    const got = await readPublishedVit(join(FIX, 'data2vec2_tiny.pt'));
    expect(got.vit).toMatchObject({ preNorm: false, embedNorm: true, finalNorm: false, heads: 2, eps: 1e-6, depth: 2, dim: 16, imageSize: 8, patchSize: 4 });
    expect(got.skipped.sort()).toEqual(['_ema.blocks.0.norm1.weight', 'modality_encoders.IMAGE.decoder.blocks.0.0.weight', 'recon_proj.weight']);
  });

  it('reads BEiT under `model` (with an argparse Namespace beside it) and at the root', async () => {
    const wrapped = await readPublishedVit(join(FIX, 'beitv2_tiny.pth'));
    expect(wrapped.under).toBe('model');
    expect(wrapped.skipped.sort()).toEqual(['cls_pt_layers.0.norm1.weight', 'lm_head.bias', 'lm_head.weight', 'mask_token']);
    const root = (await loadTorchCheckpoint(join(FIX, 'beitv2_tiny.pth'))) as Map<string, unknown>;
    expect((root.get('args') as OpaqueObject).cls).toBe('argparse.Namespace');
    expect(findConfigValue(root, 'num_mask_patches')).toBe(75);
    const bare = await readPublishedVit(join(FIX, 'beit_blockrel_tiny.pth'));
    expect(bare.under).toBe('');
    expect(bare.vit.relPos).toBe('block');
  });

  it('honours storage offsets, strides and shared storages (bf16 and f16 widened exactly)', async () => {
    const root = (await loadTorchCheckpoint(join(FIX, 'beitv2_tiny.pth'))) as Map<string, unknown>;
    const sd = findStateDict(root).tensors;
    const qkv = sd.get('blocks.0.attn.qkv.weight')!;
    expect(qkv.shape).toEqual([48, 16]);
    // q_bias and v_bias are slices at offsets 0 and D+2 of one storage.
    const q = sd.get('blocks.0.attn.q_bias')!,
      v = sd.get('blocks.0.attn.v_bias')!;
    expect(q.data.length).toBe(16);
    expect(v.data.length).toBe(16);
    expect(sd.get('blocks.0.norm2.bias')!.dtype).toBe('bfloat16');
    expect(sd.get('blocks.0.gamma_1')!.dtype).toBe('float16');
    expect(sd.get('rel_pos_bias.relative_position_index')!.data).toBeInstanceOf(Int32Array);
    // gatherStrided against hand-computed views of [0..11]
    const s = Float32Array.from({ length: 12 }, (_, i) => i);
    expect(Array.from(gatherStrided(s, 0, [3, 4], [1, 3], 'x'))).toEqual([0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]);
    expect(Array.from(gatherStrided(s, 1, [2, 2], [5, 2], 'x'))).toEqual([1, 3, 6, 8]);
    expect(Array.from(gatherStrided(s, 4, [], [], 'x'))).toEqual([4]);
    expect(Array.from(gatherStrided(s, 11, [0, 5], [5, 1], 'x'))).toEqual([]);
    expect(Array.from(gatherStrided(s, 2, [3], [0], 'x'))).toEqual([2, 2, 2]); // expanded (stride 0)
  });

  it("computes Data2Vec2's fixed sin-cos positions as MAE does (for checkpoints that omit them)", () => {
    expect(maxDiff(Array.from(sincosPositions(16, 2)), ref.sincos_positions)).toBeLessThan(1e-6);
  });
});

describe('PyTorch checkpoints: hostile and broken files', () => {
  for (const [file, global] of [
    ['evil_os_system.pth', 'posix.system'],
    ['evil_eval_p4.pth', 'builtins.eval'],
    ['evil_getattr.pth', 'builtins.getattr'],
    ['evil_subprocess.pth', 'subprocess.call'],
  ] as const) {
    it(`${file}: refused, naming ${global}, nothing executed`, async () => {
      await rm(ref.adversarial_marker, { force: true });
      await expect(loadTorchCheckpoint(join(FIX, file))).rejects.toThrow(
        new RegExp(`refused to load the global ${global.replace('.', '\\.')}.*Nothing was executed`),
      );
      expect(existsSync(ref.adversarial_marker)).toBe(false);
    });
  }

  it('stubs fairseq config enums and torch dtypes as inert data, refuses other torch globals', async () => {
    const pkl = (body: string) => Buffer.from(`\x80\x02}(X\x03\x00\x00\x00cfg${body}u.`, 'latin1');
    const read = (body: string) =>
      readTorchZip({ path: 'p.pth', names: ['archive/data.pkl'], record: async (n) => (n === 'archive/data.pkl' ? pkl(body) : undefined) });
    const got = (await read('cfairseq.dataclass.constants\nStrEnum\n(X\x04\x00\x00\x00c10dtRX\x05\x00\x00\x00dtypectorch\nfloat16\n')) as Map<string, unknown>;
    expect(got.get('cfg')).toMatchObject({ cls: 'fairseq.dataclass.constants.StrEnum', args: ['c10d'] });
    expect((got.get('dtype') as { call?: unknown }).call).toBeTypeOf('function'); // a stub class, never called
    await expect(read('ctorch\nload\n(X\x01\x00\x00\x00xtR')).rejects.toThrow(/refused to load the global torch\.load/);
    await expect(read('ctorch.nn.modules.linear\nLinear\n)R')).rejects.toThrow(/refused to load the global torch\.nn\.modules\.linear\.Linear/);
  });

  it('a weights.convert stage on a hostile file fails with the same message', async () => {
    await expect(weightsConvertKind.run(fakeCtx(join(dir, 'evil'), []), { path: 'evil_os_system.pth', layout: 'auto', source: '' })).rejects.toThrow(
      /refused to load the global posix\.system/,
    );
  });

  it('a truncated archive says so', async () => {
    const whole = await readFile(join(FIX, 'beitv2_tiny.pth'));
    for (const cut of [whole.length - 10, Math.floor(whole.length / 2), 100]) {
      const p = join(dir, `cut-${cut}.pth`);
      await writeFile(p, whole.subarray(0, cut));
      await expect(loadTorchCheckpoint(p)).rejects.toThrow(/not a PyTorch checkpoint zip.*truncated/);
    }
  });

  it('a flipped byte inside a storage fails the CRC check', async () => {
    const bad = Buffer.from(await readFile(join(FIX, 'beitv2_tiny.pth')));
    const name = 'beitv2_tiny/data/2';
    const dataStart = Math.ceil((bad.indexOf(name) + name.length + 4) / 64) * 64; // records start 64-byte aligned
    bad[dataStart + 10]! ^= 0x40;
    const p = join(dir, 'flipped.pth');
    await writeFile(p, bad);
    await expect(loadTorchCheckpoint(p)).rejects.toThrow(/beitv2_tiny\/data\/2 fails its CRC check/);
  });

  it('a legacy (pre-1.6) torch.save file and an unsupported storage type say what they are', async () => {
    const legacy = join(dir, 'legacy.pth');
    await writeFile(legacy, Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]));
    await expect(loadTorchCheckpoint(legacy)).rejects.toThrow(/legacy torch\.save format \(before PyTorch 1\.6\)/);
    const pkl = Buffer.from('\x80\x02ctorch\nQInt8Storage\n.', 'latin1');
    await expect(
      readTorchZip({ path: 'q.pth', names: ['archive/data.pkl'], record: async (n) => (n === 'archive/data.pkl' ? pkl : undefined) }),
    ).rejects.toThrow(/torch\.QInt8Storage are not supported/);
  });

  it('a storage shorter than its numel says so', async () => {
    await expect(loadTorchCheckpoint(join(FIX, 'short_storage.pth'))).rejects.toThrow(/storage 0 \(float32\) holds 32 bytes, 16 elements need 64/);
  });

  it('a tensor reaching past its storage (size x stride) says so', async () => {
    await expect(loadTorchCheckpoint(join(FIX, 'stride_past_end.pth'))).rejects.toThrow(/reads element 13 of storage 0, which holds only 10/);
  });

  it('a truncated pickle, an unknown opcode and a non-checkpoint zip are clear errors', async () => {
    const g = { global: () => ({ call: () => new Map() }) };
    expect(() => unpickle(Uint8Array.from([0x80, 0x02, 0x7d]), g)).toThrow(/pickle truncated/);
    expect(() => unpickle(Uint8Array.from([0x80, 0x02, 0x58, 0xff, 0, 0, 0]), g)).toThrow(/pickle truncated/);
    expect(() => unpickle(Uint8Array.from([0x80, 0x02, 0xff]), g)).toThrow(/unsupported pickle opcode 0xff/);
    expect(() => unpickle(Uint8Array.from([0x80, 0x02, 0x82, 0x01]), g)).toThrow(/extension registry/);
    await expect(readTorchZip({ path: 'x.zip', names: ['readme.txt'], record: async () => undefined })).rejects.toThrow(/no <archive>\/data\.pkl/);
  });

  it('refuses a BEiT checkpoint whose relative position index is not BEiT’s (a layout it does not know)', async () => {
    const root = (await loadTorchCheckpoint(join(FIX, 'beitv2_tiny.pth'))) as Map<string, unknown>;
    const sd = findStateDict(root).tensors;
    const idx = sd.get('rel_pos_bias.relative_position_index')!;
    idx.data = Int32Array.from(idx.data, (x, i) => (i === 7 ? x + 1 : x));
    const { importVit } = await import('../../src/ml/import-vit.js');
    expect(() => importVit(sd, 'beitv2')).toThrow(/relative_position_index differs/);
    sd.set('blocks.1.attn.k_scale', { dtype: 'float32', shape: [16], data: new Float32Array(16) });
    sd.delete('rel_pos_bias.relative_position_index');
    expect(() => importVit(sd, 'beitv2')).toThrow(/blocks\.1\.attn\.k_scale cannot be mapped/);
  });
});
