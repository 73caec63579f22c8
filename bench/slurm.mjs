#!/usr/bin/env node
// Slurm executor benchmark (needs the local cluster: scripts/slurm-local.sh start).
//
//   node bench/slurm.mjs [--stages 200] [--inflight 50] [--window 60] [--calls-only]
//
// 1. Overhead per stage: N trivial independent exec stages run locally (-j 2,
//    the machine's cores) and through Slurm (the node's 2 CPUs), plus a chain of
//    20 trivial stages (latency of one stage end to end, nothing overlapping).
// 2. Controller calls while `inflight` jobs are in flight (sleeping): every
//    sbatch/squeue/scancel the executor makes is logged (SMKE_SLURM_CALLS_LOG),
//    counted over a `window`-second steady state, then the run is cancelled.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const arg = (n, d) => { const i = process.argv.indexOf(`--${n}`); return i > 0 ? Number(process.argv[i + 1]) : d; };
const STAGES = arg('stages', 200), INFLIGHT = arg('inflight', 50), WINDOW = arg('window', 60);
const BIN = resolve(import.meta.dirname, '../bin/smke.js');

function project(text) {
  const dir = mkdtempSync(join(tmpdir(), 'smke-bench-slurm-'));
  writeFileSync(join(dir, 'p.smke'), text);
  return dir;
}
function smke(dir, args, env = {}) {
  const child = spawn(process.execPath, [BIN, 'run', 'p.smke', '--progress', 'plain', ...args], { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const t0 = performance.now();
  const done = new Promise((res) => child.on('close', (code) => res({ code, seconds: (performance.now() - t0) / 1000, out })));
  return { child, done };
}
const independent = (n) => 'smke 1\n' + Array.from({ length: n }, (_, i) => `stage s${i} = exec { argv = ["sh", "-c", "echo ${i} > {out}/x"] outputs = ["x"] }\n`).join('');
const chain = (n) => 'smke 1\nstage c0 = exec { argv = ["sh", "-c", "echo 0 > {out}/x"] outputs = { x = "x" } }\n' +
  Array.from({ length: n - 1 }, (_, i) => `stage c${i + 1} = exec { argv = ["sh", "-c", "cat $1 > {out}/x; echo ${i + 1} >> {out}/x", "c", c${i}.x] outputs = { x = "x" } }\n`).join('');

async function timed(text, args) {
  const r = await smke(project(text), args).done;
  if (r.code !== 0) throw new Error(`smke run ${args.join(' ')} failed:\n${r.out.slice(-2000)}`);
  return r.seconds;
}

const rows = [];
const overhead = process.argv.includes('--calls-only') ? [] : [[`${STAGES} independent stages`, independent(STAGES), STAGES], ['chain of 20 stages', chain(20), 20]];
for (const [what, text, n] of overhead) {
  const local = await timed(text, ['-j', '2']);
  const slurm = await timed(text, ['--executor', 'slurm']);
  rows.push({ what, local_s: +local.toFixed(1), slurm_s: +slurm.toFixed(1), local_ms_per_stage: Math.round((local / n) * 1000), slurm_ms_per_stage: Math.round((slurm / n) * 1000) });
}
if (rows.length) console.table(rows);

// Controller calls with INFLIGHT jobs in flight.
const calls = join(mkdtempSync(join(tmpdir(), 'smke-bench-calls-')), 'calls.log');
writeFileSync(calls, '');
const sleepers = 'smke 1\n' + Array.from({ length: INFLIGHT }, (_, i) => `stage z${i} = exec { argv = ["sleep", "${600 + i}"] }\n`).join('');
const dir = project(sleepers);
const r = smke(dir, ['--executor', 'slurm'], { SMKE_SLURM_CALLS_LOG: calls });
const read = () => readFileSync(calls, 'utf8').split('\n').filter(Boolean).map((l) => { const [t, cmd, n] = l.split(' '); return { t: Number(t), cmd, n: Number(n) }; });
const t0 = Date.now();
while (read().filter((c) => c.cmd === 'sbatch').length < INFLIGHT && Date.now() - t0 < 120_000) await new Promise((res) => setTimeout(res, 200));
const submitted = Date.now();
await new Promise((res) => setTimeout(res, WINDOW * 1000));
const inWindow = read().filter((c) => c.t >= submitted && c.t < submitted + WINDOW * 1000);
r.child.kill('SIGINT');
const end = await r.done;
const all = read();
const count = (list, cmd) => list.filter((c) => c.cmd === cmd).length;
console.log(`submitting ${INFLIGHT} jobs: ${count(all.filter((c) => c.t < submitted), 'sbatch')} sbatch, ${count(all.filter((c) => c.t < submitted), 'squeue')} squeue in ${((submitted - t0) / 1000).toFixed(1)} s`);
console.log(`steady state with ${INFLIGHT} jobs in flight, ${WINDOW} s: squeue ${count(inWindow, 'squeue')} (${(count(inWindow, 'squeue') * 60 / WINDOW).toFixed(1)}/min, each for ${Math.max(0, ...inWindow.filter((c) => c.cmd === 'squeue').map((c) => c.n))} job ids), sbatch ${count(inWindow, 'sbatch')}, scancel ${count(inWindow, 'scancel')}`);
console.log(`Ctrl-C: ${count(all.filter((c) => c.t >= submitted + WINDOW * 1000), 'scancel')} scancel call(s) for ${INFLIGHT} jobs; run exited ${end.code}`);
