// A StageContext for calling a kind's run() directly, as the worker would,
// with everything the stage reports collected for assertions.

import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { StageContext } from '../../src/stages/stage-kind.js';

export interface TestCtx extends StageContext {
  logs: { level: string; msg: string }[];
  metrics: { name: string; value: number; step?: number }[];
  progressed: { done: number; total: number; unit?: string }[];
  controller: AbortController;
  root: string;
  cleanup(): void;
}

const made: string[] = [];

/** A fresh temporary directory, removed after the test file that made it. */
export function tempDir(prefix = 'smke-data-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

// Registered while the importing test file is collected, so it runs after that file's tests.
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

export function makeCtx(opts: { root?: string; projectDir?: string; seed?: number; attempt?: number } = {}): TestCtx {
  const root = opts.root ?? tempDir();
  const outDir = join(root, 'out');
  const scratchDir = join(root, 'scratch');
  mkdirSync(outDir, { recursive: true });
  mkdirSync(scratchDir, { recursive: true });
  const logs: TestCtx['logs'] = [];
  const metrics: TestCtx['metrics'] = [];
  const progressed: TestCtx['progressed'] = [];
  const controller = new AbortController();
  const log = (level: string) => (msg: string) => void logs.push({ level, msg });
  return {
    instance: 'test',
    stage: 'test',
    key: 'k'.repeat(64),
    outDir,
    scratchDir,
    projectDir: opts.projectDir ?? root,
    attempt: opts.attempt ?? 1,
    seed: opts.seed ?? 1,
    resources: { cpus: 2, gpus: 0, memBytes: 0, timeSeconds: 0, gpuIds: [] },
    log: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    progress: (done, total, unit) => void progressed.push({ done, total, unit }),
    metric: (name, value, step) => void metrics.push({ name, value, step }),
    signal: controller.signal,
    logs,
    metrics,
    progressed,
    controller,
    root,
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Fill schema defaults the way the compiler does (ajv, useDefaults). */
export async function withDefaults(schema: Record<string, unknown>, params: Record<string, unknown>): Promise<Record<string, any>> {
  const { Ajv } = await import('ajv');
  const ajv = new Ajv({ useDefaults: true, strict: true, allErrors: true });
  const validate = ajv.compile(schema);
  const copy = structuredClone(params);
  if (!validate(copy)) throw new Error(`params invalid: ${ajv.errorsText(validate.errors)}`);
  return copy;
}
