// Any kind plugs into the compiler through the catalog alone: its schema
// (defaults, formats, nested values), its outputs for the given params, its
// resources, inputs and env.
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compiler/index.js';
import type { KindCatalog, KindInfo } from '../../src/compiler/kind-catalog.js';

const fetchKind: KindInfo = {
  name: 'data.fetch',
  version: 3,
  summary: 'Fetch a dataset',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', format: 'uri' },
      since: { type: 'string', format: 'date', default: '2020-01-01' },
      splits: { type: 'array', items: { type: 'string' }, default: ['train', 'test'] },
      opts: { type: 'object', properties: { retries: { type: 'integer', default: 3 } }, default: {} },
    },
  },
  outputs: (p) => Object.fromEntries((p.splits as string[]).map((s) => [s, { type: 'file' as const, path: `${s}.tsv`, description: s }])),
  resources: () => ({ cpus: 2, memBytes: 1e9 }),
  inputs: (p) => [`cache/${String(p.since)}`],
  env: () => ['HF_TOKEN'],
};
const useKind: KindInfo = {
  name: 'use',
  version: 1,
  summary: 'Use a file',
  params: { type: 'object', properties: { file: { type: 'string' } } },
  outputs: () => ({}),
};
const catalog: KindCatalog = {
  get: (n) => [fetchKind, useKind].find((k) => k.name === n),
  names: () => ['data.fetch', 'use'],
};

function run(text: string) {
  return compile({ file: 'p.smke', text, projectDir: '/tmp', catalog, env: {} });
}

describe('a kind from the catalog', () => {
  it('gets its defaults, resources, inputs and env, and outputs computed from its params', () => {
    const r = run('smke 1\nstage d = data.fetch { url = "https://example.org/d", splits = ["dev"] }\nstage u = use { file = d.dev }\n');
    expect(r.diagnostics).toEqual([]);
    const d = r.plan!.instances[0]!;
    expect(d.kindVersion).toBe(3);
    expect(d.params).toEqual({ url: 'https://example.org/d', since: '2020-01-01', splits: ['dev'], opts: { retries: 3 } });
    expect(d.resources).toEqual({ cpus: 2, gpus: 0, memBytes: 1e9, timeSeconds: 0 });
    expect(d.inputs).toEqual(['cache/2020-01-01']);
    expect(d.env).toEqual(['HF_TOKEN']);
  });

  it('checks formats and references against the outputs for those params', () => {
    const r = run(
      'smke 1\nstage d = data.fetch { url = "not a uri", since = "yesterday" }\nstage e = data.fetch { url = "https://x.org" }\nstage u = use { file = e.dev }\n',
    );
    expect(r.diagnostics.map((d) => d.message)).toEqual([
      'invalid value for `url`: must match format "uri"',
      'invalid value for `since`: must match format "date"',
      'stage `e` has no output `dev`',
    ]);
    expect(r.diagnostics[2]!.help).toBe('its outputs are `train`, `test`');
  });
});
