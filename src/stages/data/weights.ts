// `weights.file`: a checkpoint the user provides (e.g. BEiTv2's
// beitv2_base_patch16_224_pt1k.pth placed in <data>/models). Its content is
// digested into the key through inputs(), and checked against sha256 if given.
// `weights.convert`: the same file converted to a smke image-encoder
// checkpoint (src/ml/import-vit.ts), which the ML kinds read directly.

import { basename } from 'node:path';
import { defineKind, type ObjectSchema, type ParamsOf, type StageContext, type Symbolic } from '../stage-kind.js';
import { KIND_VERSIONS } from '../kind-versions.js';

export function weightsName(params: Symbolic<{ path: string }>): string {
  // `smke kinds` and docs/stages.md show the outputs of a kind's bare defaults, without the required path.
  return basename(String(params.path ?? 'weights'));
}

/** The user's weights file, or a message that says where to get it. */
async function locateWeights(ctx: StageContext, params: WeightsFileParams): Promise<{ src: string; size: number }> {
  const { stat } = await import('node:fs/promises');
  const { resolve } = await import('node:path');
  const src = resolve(ctx.projectDir, params.path);
  try {
    const st = await stat(src);
    if (!st.isFile()) throw new Error(`${src} is not a file`);
    return { src, size: st.size };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const how = params.source ? ` Obtain it from ${params.source} and place it there.` : ' Place the file there or fix `path`.';
    throw new Error(`weights file not found: ${src}.${how}`);
  }
}

/** sha256 of `file` (with progress), checked against `sha256` when the stage gives one. */
async function digestWeights(ctx: StageContext, params: WeightsFileParams, src: string, file: string, size: number): Promise<string> {
  const { createReadStream } = await import('node:fs');
  const { createHash } = await import('node:crypto');
  const hash = createHash('sha256');
  let done = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    done += (chunk as Buffer).length;
    ctx.progress(done, size, 'bytes');
  }
  const digest = hash.digest('hex');
  if (params.sha256 && digest !== params.sha256.toLowerCase()) {
    throw new Error(
      `weights file ${src} has sha256 ${digest}, expected ${params.sha256.toLowerCase()}: it is a different file (wrong version or a partial copy)`,
    );
  }
  return digest;
}

const commonParams = {
  path: { type: 'string', minLength: 1, description: 'The weights file, project-relative or absolute.' },
  sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$', description: 'Expected sha256; a mismatch fails the stage.' },
  source: { type: 'string', default: '', description: 'Where to obtain the file, shown when it is missing (a URL or instructions).' },
} as const;

const weightsFileParams = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  properties: { ...commonParams },
} as const satisfies ObjectSchema;

export type WeightsFileParams = ParamsOf<typeof weightsFileParams>;

export const weightsFileKind = defineKind({
  name: 'weights.file',
  version: KIND_VERSIONS['weights.file'],
  summary: 'A user-provided weights file (path, optional sha256), copied into the store and digested into the key',
  params: weightsFileParams,
  outputs(params) {
    return { file: { type: 'file', path: weightsName(params), description: 'The weights file' } };
  },
  inputs(params) {
    return [String(params.path)];
  },
  async run(ctx, params) {
    const { copyFile } = await import('node:fs/promises');
    const { constants: fsConstants } = await import('node:fs');
    const { join } = await import('node:path');
    const { src, size } = await locateWeights(ctx, params);
    const dest = join(ctx.outDir, weightsName(params));
    // A reflink where the filesystem has them (multi-GB checkpoints then cost little), a plain copy
    // otherwise; never a hard link, through which an edit of the user's file would change the store.
    await copyFile(src, dest, fsConstants.COPYFILE_FICLONE);
    const digest = await digestWeights(ctx, params, src, dest, size);
    ctx.log.info(`weights ${weightsName(params)}: ${size} bytes, sha256 ${digest}`);
    ctx.metric('bytes', size);
  },
});

const weightsConvertParams = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  properties: {
    ...commonParams,
    layout: {
      type: 'string',
      enum: ['auto', 'beitv2', 'data2vec2'],
      default: 'auto',
      description: 'Which published layout the state dict is in; auto tells them apart by their keys.',
    },
    heads: {
      type: 'integer',
      minimum: 1,
      description: 'Attention heads; default: from the relative position table (BEiT) or the checkpoint config (Data2Vec2), else width / 64.',
    },
    eps: {
      type: 'number',
      exclusiveMinimum: 0,
      description: "LayerNorm epsilon; default: the checkpoint config's norm_eps, else 1e-6 (both published models).",
    },
  },
} as const satisfies ObjectSchema;

export type WeightsConvertParams = ParamsOf<typeof weightsConvertParams>;

export const weightsConvertKind = defineKind({
  name: 'weights.convert',
  version: KIND_VERSIONS['weights.convert'],
  summary: 'A published PyTorch image encoder (BEiTv2 .pth, Data2Vec2 .pt) converted to a smke ViT checkpoint, without running its pickle',
  params: weightsConvertParams,
  outputs() {
    return { model: { type: 'dir', path: 'model', description: 'smke ViT checkpoint (config.json + model.safetensors)' } };
  },
  inputs(params) {
    return [String(params.path)];
  },
  async run(ctx, params) {
    const { join } = await import('node:path');
    const { readPublishedVit } = await import('../../ml/import-vit.js');
    const { saveTensorCheckpoint } = await import('../../ml/checkpoint.js');
    const { src, size } = await locateWeights(ctx, params);
    const digest = await digestWeights(ctx, params, src, src, size);
    const opts = {
      layout: params.layout,
      ...(params.heads !== undefined ? { heads: params.heads } : {}),
      ...(params.eps !== undefined ? { eps: params.eps } : {}),
    };
    const got = await readPublishedVit(src, opts);
    const { vit } = got;
    ctx.log.info(
      `${weightsName(params)}: ${got.layout} under '${got.under || '(root)'}', ${vit.depth} blocks, width ${vit.dim}, ${vit.heads} heads, ${vit.imageSize} px / patch ${vit.patchSize}` +
        `${vit.relPos ? `, relative position bias (${vit.relPos})` : ''}${vit.preNorm === false ? ', post-LN' : ''}; skipped ${got.skipped.length} tensors outside the encoder${got.skipped.length ? ` (${got.skipped.slice(0, 4).join(', ')}${got.skipped.length > 4 ? ', ...' : ''})` : ''}`,
    );
    await saveTensorCheckpoint(join(ctx.outDir, 'model'), got.tensors, {
      model: 'vit',
      vit,
      imported_from: { file: weightsName(params), sha256: digest, layout: got.layout, under: got.under, skipped: got.skipped },
    });
    ctx.metric(
      'parameters',
      [...got.tensors.values()].reduce((s, t) => s + t.data.length, 0),
    );
  },
});
