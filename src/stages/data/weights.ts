// `weights.file`: a checkpoint the user provides (e.g. BEiTv2's
// beitv2_base_patch16_224_pt1k.pth placed in <data>/models). Its content is
// digested into the key through inputs(), and checked against sha256 if given.

import { basename } from 'node:path';
import type { Value } from '../../compiler/plan.js';
import type { StageKind } from '../kind.js';

export function weightsName(params: Record<string, Value>): string {
  return basename(String(params.path ?? 'weights'));
}

export const weightsFileKind: StageKind = {
  name: 'weights.file',
  version: 1,
  summary: 'A user-provided weights file (path, optional sha256), copied into the store and digested into the key',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: {
      path: { type: 'string', minLength: 1, description: 'The weights file, project-relative or absolute.' },
      sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$', description: 'Expected sha256; a mismatch fails the stage.' },
      source: { type: 'string', default: '', description: 'Where to obtain the file, shown when it is missing (a URL or instructions).' },
    },
  },
  outputs(params) {
    return { file: { type: 'file', path: weightsName(params), description: 'The weights file' } };
  },
  inputs(params) {
    return [String(params.path)];
  },
  async run(ctx, params) {
    const { copyFile, stat } = await import('node:fs/promises');
    const { createReadStream, constants: fsConstants } = await import('node:fs');
    const { createHash } = await import('node:crypto');
    const { join, resolve } = await import('node:path');
    const src = resolve(ctx.projectDir, String(params.path));
    let size: number;
    try {
      const st = await stat(src);
      if (!st.isFile()) throw new Error(`${src} is not a file`);
      size = st.size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const how = params.source ? ` Obtain it from ${params.source} and place it there.` : ' Place the file there or fix `path`.';
      throw new Error(`weights file not found: ${src}.${how}`);
    }
    const dest = join(ctx.outDir, weightsName(params));
    // A reflink where the filesystem has them (multi-GB checkpoints then cost little), a plain copy
    // otherwise; never a hard link, through which an edit of the user's file would change the store.
    await copyFile(src, dest, fsConstants.COPYFILE_FICLONE);
    const hash = createHash('sha256');
    let done = 0;
    for await (const chunk of createReadStream(dest)) {
      hash.update(chunk as Buffer);
      done += (chunk as Buffer).length;
      ctx.progress(done, size, 'bytes');
    }
    const digest = hash.digest('hex');
    if (params.sha256 && digest !== String(params.sha256).toLowerCase()) {
      throw new Error(`weights file ${src} has sha256 ${digest}, expected ${String(params.sha256).toLowerCase()}: it is a different file (wrong version or a partial copy)`);
    }
    ctx.log.info(`weights ${weightsName(params)}: ${size} bytes, sha256 ${digest}`);
    ctx.metric('bytes', size);
  },
};
