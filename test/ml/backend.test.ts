import { describe, expect, it } from 'vitest';
import { normaliseBackendName, selectBackend } from '../../src/ml/backend.js';

describe('backend selection', () => {
  it('falls back past unavailable native and GPU backends to wasm, and logs the choice', async () => {
    const lines: string[] = [];
    const choice = await selectBackend(undefined, (m) => lines.push(m));
    // No GPU and no libtensorflow on CI machines: wasm is the fastest that loads.
    expect(['wasm', 'tensorflow', 'tensorflow-gpu', 'webgpu']).toContain(choice.backend);
    expect(choice.tf.getBackend()).toBe(choice.backend === 'tensorflow-gpu' ? 'tensorflow' : choice.backend);
    expect(lines[0]).toMatch(/tfjs backend: /);
  }, 60_000);

  it('honours an explicit request and rejects unknown names', async () => {
    const choice = await selectBackend('cpu');
    expect(choice.tf.getBackend()).toBe('cpu');
    expect(() => normaliseBackendName('tpu')).toThrow(/unknown tfjs backend/);
    await selectBackend('wasm');
  });
});

describe('webgpu adapter selection (Dawn flags)', () => {
  it('passes SMKE_WEBGPU_ADAPTER as the name filter, nothing otherwise (Dawn ignores CUDA_VISIBLE_DEVICES)', async () => {
    const { dawnFlags } = await import('../../src/ml/backend.js');
    expect(dawnFlags({})).toEqual([]);
    expect(dawnFlags({ CUDA_VISIBLE_DEVICES: '1' })).toEqual([]);
    expect(dawnFlags({ SMKE_WEBGPU_ADAPTER: 'NVIDIA H100' })).toEqual(['adapter=NVIDIA H100']);
  });
});
