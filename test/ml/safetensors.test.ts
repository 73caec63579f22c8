import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ml/backend.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/ml/safetensors.js';
import { ParamStore } from '../../src/ml/params.js';
import { defineSmke, smkeImage } from '../../src/ml/smke.js';
import { readCheckpoint, saveCheckpoint } from '../../src/ml/checkpoint.js';
import { TINY, tinyBatch, disposeBatch } from './tiny.js';

let dir: string;
beforeAll(async () => {
  await selectBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'smke-ml-st-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('safetensors', () => {
  it('lays out the bytes as the format specifies', () => {
    const buf = encodeSafetensors(
      new Map([
        ['a', { shape: [2], data: new Float32Array([1.5, -2]) }],
        ['b', { shape: [1, 1], data: new Int32Array([7]) }],
      ]),
      { k: 'v' },
    );
    const n = Number(buf.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(buf.subarray(8, 8 + n).toString());
    expect(header.__metadata__).toEqual({ k: 'v' });
    expect(header.a).toEqual({ dtype: 'F32', shape: [2], data_offsets: [0, 8] });
    expect(header.b).toEqual({ dtype: 'I32', shape: [1, 1], data_offsets: [8, 12] });
    expect(buf.readFloatLE(8 + n)).toBe(1.5);
    expect(buf.readFloatLE(8 + n + 4)).toBe(-2);
    expect(buf.readInt32LE(8 + n + 8)).toBe(7);
    const back = decodeSafetensors(buf);
    expect(Array.from(back.tensors.get('a')!.data)).toEqual([1.5, -2]);
    expect(back.tensors.get('b')!.data).toBeInstanceOf(Int32Array);
    expect(back.metadata).toEqual({ k: 'v' });
  });

  it('rejects truncated files', () => {
    const buf = encodeSafetensors(new Map([['a', { shape: [4], data: new Float32Array(4) }]]));
    expect(() => decodeSafetensors(buf.subarray(0, buf.length - 4))).toThrow(/truncated/);
    expect(() => decodeSafetensors(Buffer.alloc(3))).toThrow();
  });

  it('round-trips an S-SMKE checkpoint: same outputs after loading into a fresh model', async () => {
    const a = new ParamStore(1);
    defineSmke(a, TINY);
    await saveCheckpoint(join(dir, 'ck'), a, { model: 's_smke', smke: TINY });
    const { config, tensors } = await readCheckpoint(join(dir, 'ck'));
    expect(config.model).toBe('s_smke');
    const b = new ParamStore(2); // different init
    defineSmke(b, TINY);
    expect(b.load(tensors, { strict: true }).length).toBe(a.names().length);
    const batch = tinyBatch(3);
    const xa = tf.tidy(() => Array.from(smkeImage(a, TINY, batch.images).x.dataSync()));
    const xb = tf.tidy(() => Array.from(smkeImage(b, TINY, batch.images).x.dataSync()));
    expect(xb).toEqual(xa);
    expect(await readFile(join(dir, 'ck', 'config.json'), 'utf8')).toContain('"teacherDim"');
    disposeBatch(batch);
    a.dispose();
    b.dispose();
  });
});
