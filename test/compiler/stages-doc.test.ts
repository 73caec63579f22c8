// docs/stages.md is generated from the registered kinds and must match them.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stagesMarkdown } from '../../src/compiler/kind-docs.js';
import { registry } from '../../src/stages/registry.js';

describe('docs/stages.md', () => {
  it('is current with the kinds registry (regenerate: npm run build && node scripts/gen-stages-doc.mjs)', () => {
    const onDisk = readFileSync(new URL('../../docs/stages.md', import.meta.url), 'utf8');
    expect(onDisk).toBe(stagesMarkdown(registry().all()));
  });

  it('documents every kind, with its parameters', () => {
    const md = stagesMarkdown(registry().all());
    for (const kind of registry().all()) {
      expect(md).toContain(`## \`${kind.name}\``);
      for (const p of Object.keys((kind.params.properties as object | undefined) ?? {})) expect(md).toContain(`| \`${p}\` |`);
    }
  });
});
