// Runs one stage kind in this process, as the worker would, for the ML benchmarks
// (bench/mini-ablation.mjs, bench/glue-text.mjs): params checked and defaulted by
// the kind's schema, outputs in DIR/NAME/out, and a finished stage (its
// metrics.json written) reused instead of run again, so a benchmark can be
// stopped and resumed.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';

const ajv = new Ajv({ useDefaults: true, strict: false });

/** Returns the stage's output directory and metrics; `ran` tells whether it ran now, with its wall and CPU seconds. */
export async function runStage({ kinds, dir, projectDir, name, kind: kindName, params, seed }) {
  const outDir = join(dir, name, 'out');
  const scratchDir = join(dir, name, 'scratch');
  const metricsFile = join(outDir, 'metrics.json');
  if (existsSync(metricsFile)) return { outDir, m: JSON.parse(readFileSync(metricsFile, 'utf8')) };
  const kind = kinds.get(kindName);
  if (!kind) throw new Error(`${name}: no stage kind ${kindName}`);
  const p = structuredClone(params);
  if (!ajv.compile(kind.params)(p)) throw new Error(`${name}: bad params ${JSON.stringify(params)}`);
  mkdirSync(outDir, { recursive: true });
  mkdirSync(scratchDir, { recursive: true });
  const ctx = {
    instance: name,
    stage: name,
    key: name,
    outDir,
    scratchDir,
    projectDir,
    attempt: 1,
    seed,
    resources: { cpus: 1, gpus: 0, memBytes: 0, timeSeconds: 0, gpuIds: [] },
    backend: process.env.SMKE_BACKEND || undefined,
    log: { debug() {}, info() {}, warn: (m) => console.log(`  [${name}] warn ${m}`), error: (m) => console.log(`  [${name}] error ${m}`) },
    progress() {},
    // STAGE_TRACE=N prints every N-th step's metrics (and every evaluation's) as the stage runs.
    metric(n, v, step) {
      const every = Number(process.env.STAGE_TRACE || 0);
      if (every && n !== 'throughput' && step !== undefined && (step % every === 0 || n.startsWith('eval')))
        console.log(`  [${name}] ${n} ${v.toFixed(4)} @${step}`);
    },
    signal: new AbortController().signal,
  };
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await kind.run(ctx, p);
  const c1 = process.cpuUsage(c0);
  return {
    outDir,
    m: JSON.parse(readFileSync(metricsFile, 'utf8')),
    ran: { wallSeconds: (performance.now() - t0) / 1000, cpuSeconds: (c1.user + c1.system) / 1e6 },
  };
}
