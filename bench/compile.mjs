#!/usr/bin/env node
// Compile-time benchmark (run after `npm run build`): generated pipelines of
// 1k, 10k and 100k stages, each stage referencing earlier ones, plus a sweep
// whose instances are gathered with `sweep[*]`; and `smke check` of a
// 50-stage pipeline timed from process start to exit.
// Usage: node bench/compile.mjs [sizes...]   (default: 1000 10000 100000)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile } from '../dist/compiler/index.js';
import { registry } from '../dist/stages/registry.js';

/** A pipeline of `n` instances: a chain with fan-in, and a 10x10 sweep gathered at the end. */
export function generate(n) {
  const lines = ['smke 1', 'param base = "data"', 'param lrs = [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001, 3e-5, 1e-5, 3e-6]', ''];
  const plain = Math.max(1, n - 101);
  for (let i = 0; i < plain; i++) {
    const deps = i === 0 ? '' : `, s${i - 1}.out${i >= 7 ? `, s${i - 7}.result` : ''}`;
    lines.push(
      `stage s${i} = exec {`,
      `  argv = ["run", "--in", "\${base}/part${i}.tsv"${deps}]`,
      `  outputs = { result = "r.json" }`,
      `  resources { cpus = ${1 + (i % 4)}, mem = ${1 + (i % 8)}GB }`,
      '}',
    );
  }
  lines.push(
    `stage sweep[lr in lrs, seed in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]] = exec {`,
    `  argv = ["train", "--lr", "\${lr}", "--seed", "\${seed}", s${plain - 1}.result]`,
    `  outputs = { metrics = "metrics.json" }`,
    '}',
    `stage report = exec { argv = ["report"] + sweep[*].metrics }`,
  );
  return lines.join('\n') + '\n';
}

/**
 * One compile of one size, in this (fresh) process, as `smke check` does it:
 * one compile per process, so each measurement starts from an empty heap and
 * pays the one-time costs (loading ajv, compiling the kinds' schemas) a user
 * pays. Prints wall and CPU milliseconds and the instance count as JSON.
 */
function measureOnce(n, dir) {
  const file = join(dir, `p${n}.smke`);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const res = compile({ file, catalog: registry(), projectDir: dir });
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  if (!res.plan) throw new Error(`bench pipeline did not compile: ${res.diagnostics[0]?.message}`);
  console.log(JSON.stringify({ wall, cpu: (c.user + c.system) / 1000, count: res.plan.instances.length }));
}

/** `runs` compiles of `n` stages, each in a fresh process; best and median. */
function measure(n, dir) {
  const source = generate(n);
  writeFileSync(join(dir, `p${n}.smke`), source);
  const runs = n >= 100000 ? 5 : 7;
  const results = [];
  for (let r = 0; r < runs; r++) {
    const child = spawnSync(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, '--one', String(n), dir], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(`measuring ${n} stages failed: ${child.stderr}`);
    results.push(JSON.parse(child.stdout));
  }
  const wall = results.map((x) => x.wall).sort((a, b) => a - b);
  const cpu = results.map((x) => x.cpu).sort((a, b) => a - b);
  console.log(
    `compile ${String(results[0].count).padStart(6)} instances: wall best ${wall[0].toFixed(0)} ms, median ${wall[runs >> 1].toFixed(0)} ms; ` +
      `cpu best ${cpu[0].toFixed(0)} ms (${(source.length / 1e6).toFixed(1)} MB of source; ${runs} fresh processes)`,
  );
}

if (process.argv[2] === '--one') {
  measureOnce(Number(process.argv[3]), process.argv[4]);
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'smke-bench-'));
try {
  const sizes = process.argv.slice(2).map(Number);
  for (const n of sizes.length ? sizes : [1000, 10000, 100000]) measure(n, dir);
  const small = join(dir, 'p50.smke');
  writeFileSync(small, generate(150).replace(/stage sweep[\s\S]*$/, ''));
  const bin = new URL('../bin/smke.js', import.meta.url).pathname;
  const cli = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    const p = spawnSync(process.execPath, [bin, 'check', small], { cwd: dir, encoding: 'utf8' });
    cli.push(performance.now() - t0);
    if (p.status !== 0) throw new Error(`smke check failed: ${p.stderr}`);
  }
  cli.sort((a, b) => a - b);
  console.log(`smke check (49 stages), process start to exit: best ${cli[0].toFixed(0)} ms, median ${cli[3].toFixed(0)} ms`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
