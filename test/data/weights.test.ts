import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { weightsFileKind } from '../../src/stages/data/weights.js';
import { makeCtx, withDefaults, type TestCtx } from './ctx.js';

const ctxs: TestCtx[] = [];
afterEach(() => ctxs.splice(0).forEach((c) => c.cleanup()));

test('weights.file copies the file, declares it as an input and checks sha256', async () => {
  const c = makeCtx();
  ctxs.push(c);
  mkdirSync(join(c.projectDir, 'models'));
  const data = randomBytes(100_000);
  writeFileSync(join(c.projectDir, 'models/beitv2.pth'), data);
  const sha = createHash('sha256').update(data).digest('hex');
  const p = await withDefaults(weightsFileKind.params, { path: 'models/beitv2.pth', sha256: sha });
  expect(weightsFileKind.inputs!(p)).toEqual(['models/beitv2.pth']);
  expect(weightsFileKind.outputs(p)).toEqual({ file: { type: 'file', path: 'beitv2.pth', description: 'The weights file' } });
  await weightsFileKind.run(c, p);
  expect(readFileSync(join(c.outDir, 'beitv2.pth')).equals(data)).toBe(true);

  const c2 = makeCtx({ root: undefined });
  ctxs.push(c2);
  mkdirSync(join(c2.projectDir, 'models'));
  writeFileSync(join(c2.projectDir, 'models/beitv2.pth'), data.subarray(0, 5000));
  await expect(weightsFileKind.run(c2, p)).rejects.toThrow(/has sha256 [0-9a-f]{64}, expected [0-9a-f]{64}: it is a different file/);
});

test('a missing weights file names the path and where to get it', async () => {
  const c = makeCtx();
  ctxs.push(c);
  const p = await withDefaults(weightsFileKind.params, {
    path: 'models/base_imagenet.pt',
    source: 'https://dl.fbaipublicfiles.com/fairseq/data2vec2/base_imagenet.pt',
  });
  await expect(weightsFileKind.run(c, p)).rejects.toThrow(
    `weights file not found: ${join(c.projectDir, 'models/base_imagenet.pt')}. Obtain it from https://dl.fbaipublicfiles.com/fairseq/data2vec2/base_imagenet.pt and place it there.`,
  );
});
