import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { kinds } from '../../src/stages/data/index.js';
import { withDefaults } from './ctx.js';

const REQUIRED: Record<string, Record<string, unknown>> = {
  download: { url: 'https://example.org/x.tar.gz' },
  'dataset.cc3m': { tsv: 'data/cc3m/Train-GCC-training.tsv' },
  'weights.file': { path: 'models/w.pth' },
};

const FILES: Record<string, string> = {
  download: 'download.ts',
  'data.synthetic': 'synthetic.ts',
  'dataset.cc3m': 'cc.ts',
  'dataset.cc12m': 'cc.ts',
  'dataset.coco': 'karpathy.ts',
  'dataset.flickr30k': 'karpathy.ts',
  'dataset.imagenet': 'imagenet.ts',
  'dataset.glue': 'glue.ts',
  'dataset.cifar': 'cifar.ts',
  'weights.file': 'weights.ts',
};

describe('data kinds', () => {
  test('all ten are registered', () => {
    expect(kinds.map((k) => k.name).sort()).toEqual(Object.keys(FILES).sort());
  });

  test.each(Object.keys(FILES))('%s: schema compiles strictly, defaults fill, outputs and resources are declared, no heavy imports at load', async (name) => {
    const kind = kinds.find((k) => k.name === name)!;
    expect(kind.version).toBeGreaterThanOrEqual(1);
    expect(kind.summary.length).toBeGreaterThan(10);
    const params = await withDefaults(kind.params, REQUIRED[name] ?? {});
    const outs = kind.outputs(params);
    expect(Object.keys(outs).length).toBeGreaterThan(0);
    for (const [out, spec] of Object.entries(outs)) {
      expect(out).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
      expect(spec.path.startsWith('/')).toBe(false);
    }
    expect(kind.env?.(params) ?? []).not.toContain('HF_TOKEN');
    const src = readFileSync(new URL(`../../src/stages/data/${FILES[name]}`, import.meta.url), 'utf8');
    expect(src).not.toMatch(/^import [^;]*from '(sharp|@tensorflow\/[^']+|tar-stream|yauzl)'/m);
    expect(src).not.toMatch(/^import [^;]*from '\.\.\/\.\.\/data\//m);
  });

  test('a param typo is caught by the schema', async () => {
    const kind = kinds.find((k) => k.name === 'dataset.cc12m')!;
    await expect(withDefaults(kind.params, { limt: 5 })).rejects.toThrow(/must NOT have additional properties/);
  });
});
