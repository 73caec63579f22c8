// The worker's one-kind loader names, for every kind, the very object the registry holds.
import { describe, expect, it } from 'vitest';
import { loadKind } from '../../src/stages/kind-loader.js';
import { registry } from '../../src/stages/registry.js';

describe('loadKind', () => {
  it('loads each registered kind, the same object the registry has', async () => {
    for (const name of registry().names()) expect(await loadKind(name), name).toBe(registry().get(name));
  });

  it('knows no kind the registry lacks', async () => {
    expect(await loadKind('no.such.kind')).toBeUndefined();
    expect(await loadKind('toString')).toBeUndefined();
    expect(await loadKind('__proto__')).toBeUndefined();
  });
});
