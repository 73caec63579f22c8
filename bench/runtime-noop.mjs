// Benchmark: no-op `smke run` of 10,000 cached exec stages, side by side
// with ninja and Snakemake 7 on the equivalent build; plus digest throughput
// of a 1 GB file and a re-check of 100,000 unchanged files.
//
//   nice node bench/runtime-noop.mjs [--stages 10000] [--files 100000] [--gb 1] [--reps 5]
//
// Run after `npx tsc -p tsconfig.json` (it uses dist/). Never part of `npm test`.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1] ?? '']] : acc), []));
const N = Number(args.stages ?? 10000);
const FILES = Number(args.files ?? 100000);
const GB = Number(args.gb ?? 1);
const REPS = Number(args.reps ?? 5);
const CHAIN = 100;
const old = new Date(Date.now() - 3600_000);
let t;
const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin/smke.js');
const dist = (p) => join(root, 'dist', p);

const { Digester } = await import(dist('runtime/digest.js'));
const { StateDb } = await import(dist('runtime/state.js'));
const { layout } = await import(dist('runtime/layout.js'));
const { upstreamOutputs } = await import(dist('runtime/analyse.js'));
const { fingerprint } = await import(dist('runtime/fingerprint.js'));
const { checkEntry, publish } = await import(dist('runtime/store.js'));
const { realDisk } = await import(dist('runtime/disk.js'));
const { smkeVersion } = await import(dist('runtime/version.js'));

const work = mkdtempSync(join(tmpdir(), 'smke-bench-'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function time(cmd, argv, cwd, reps = REPS) {
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    ts.push(performance.now() - t);
    if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
    if (i === reps - 1) time.last = r.stdout.trim().split('\n').slice(-1)[0];
  }
  return median(ts);
}
const ms = (x) => `${x.toFixed(0)} ms`;

if (args['skip-dag'] === undefined) {
// --- the DAG: N stages in chains of CHAIN; stage i copies in/i.txt after stage i-1 of its chain.
const dag = join(work, 'dag');
mkdirSync(join(dag, 'in'), { recursive: true });
const smke = ['smke 1'];
const ninja = ['rule cp', '  command = cp $in_file $out', ''];
for (let i = 0; i < N; i++) {
  writeFileSync(join(dag, 'in', `${i}.txt`), `${i}\n`);
  const prev = i % CHAIN ? i - 1 : -1;
  smke.push(
    // The upstream reference sits in env: a data edge in the key (like ninja's implicit dependency) that cp ignores.
    `stage s${i} = exec {\n  argv = ["cp", "in/${i}.txt", "{out}/o.txt"]\n  inputs = ["in/${i}.txt"]\n  outputs = ["o.txt"]${prev >= 0 ? `\n  env = { UP = s${prev}.o }` : ''}\n}`,
  );
  ninja.push(`build out/s${i}.txt: cp in/${i}.txt${prev >= 0 ? ` | out/s${prev}.txt` : ''}`, `  in_file = in/${i}.txt`);
}
writeFileSync(join(dag, 'bench.smke'), `${smke.join('\n')}\n`);
writeFileSync(join(dag, 'build.ninja'), `${ninja.join('\n')}\n`);
writeFileSync(
  join(dag, 'Snakefile'),
  `N = ${N}
CHAIN = ${CHAIN}
def deps(wc):
    i = int(wc.i)
    return [f"in/{i}.txt"] + ([f"out/s{i-1}.txt"] if i % CHAIN else [])
rule all:
    input: expand("out/s{i}.txt", i=range(N))
rule s:
    input: deps
    output: "out/s{i}.txt"
    shell: "cp in/{wildcards.i}.txt {output}"
`,
);
// Inputs older than outputs, as after a real build.
for (let i = 0; i < N; i++) utimesSync(join(dag, 'in', `${i}.txt`), old, old);

console.log(`# smke runtime benchmark: ${N} exec stages (chains of ${CHAIN}), smke ${smkeVersion()}, node ${process.version}`);

// Build everything once. ninja runs its 10k `cp`s; smke's store is filled by
// publishing what each stage's command produces (starting 10,000 workers
// would take minutes and is not what is measured here).
t = performance.now();
execFileSync('ninja', ['-C', dag, '-j', '16'], { stdio: 'ignore' });
console.log(`setup: ninja build ${ms(performance.now() - t)}`);
t = performance.now();
const compileOut = spawnSync(process.execPath, [bin, 'run', 'bench.smke', '--dry-run', '--progress', 'plain'], { cwd: dag, encoding: 'utf8' });
if (compileOut.status !== 0) throw new Error(compileOut.stderr);
console.log(`setup: smke first compile + dry run ${ms(performance.now() - t)}`);
{
  const { compileForCli } = await import(dist('cli/compile.js'));
  const { plan } = await compileForCli(join(dag, 'bench.smke'), { projectDir: dag });
  const lay = layout(dag);
  const state = new StateDb(lay.dbPath);
  const digester = await Digester.create(state);
  // Keys in plan order, each from the outputs just published upstream (early
  // cutoff: a dependant keys on the content of what it reads).
  const files = new Map();
  const keys = new Map();
  const upstreamOutput = upstreamOutputs(new Map(plan.instances.map((i) => [i.id, i])), (id) => files.get(id));
  const noSync = { ...realDisk, fsync() {} };
  for (const inst of plan.instances) {
    const fp = fingerprint({ inst, projectDir: dag, upstreamKeys: keys, upstreamOutput, digester, env: process.env });
    keys.set(inst.id, fp.key);
    const i = Number(inst.id.slice(1));
    const tmp = join(lay.tmpDir, `bench-${i}`);
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, 'o.txt'), `${i}\n`);
    const entryDir = join(lay.storeDir, fp.key);
    await publish({
      tmpDir: tmp, entryDir, digester, disk: noSync,
      manifest: { format: 1, key: fp.key, instance: inst.id, stage: inst.stage, kind: 'exec', kindVersion: 1, params: fp.symbolic,
        fingerprint: fp.parts, upstream: fp.upstream, metrics: {}, timings: { started: '', finished: '', seconds: 0 }, attempt: 1, smkeVersion: smkeVersion(), host: 'bench' },
    });
    const check = checkEntry(entryDir, fp.key, digester);
    files.set(inst.id, check.files);
  }
  state.close();
}
// The first run after the store was filled verifies every entry once and records it.
t = performance.now();
const first = spawnSync(process.execPath, [bin, 'run', 'bench.smke', '--progress', 'plain'], { cwd: dag, encoding: 'utf8' });
console.log(`setup: smke first run over the filled store (full verification) ${ms(performance.now() - t)}: ${first.stdout.trim().split('\n').pop()}`);

const results = {};
// The three take turns, one run each per round, so that a change of load on the shared machine
// falls on all of them alike; each gets the median of its runs.
const rounds = { node: [], ninja: [], smke: [] };
let ninjaSays, smkeSays;
for (let i = 0; i < REPS; i++) {
  rounds.node.push(time(process.execPath, ['-e', '0'], dag, 1));
  rounds.ninja.push(time('ninja', ['-C', dag], dag, 1));
  ninjaSays = time.last;
  rounds.smke.push(time(process.execPath, [bin, 'run', 'bench.smke', '--progress', 'plain'], dag, 1));
  smkeSays = time.last;
}
for (const [tool, ts] of Object.entries(rounds)) results[tool] = median(ts);
results.smkeCompile = time(process.execPath, [bin, 'run', 'bench.smke', '--progress', 'plain', '--no-plan-cache'], dag, 1);
let snake = 'not installed';
if (spawnSync('snakemake', ['--version']).status === 0) {
  results.snakemake = time('snakemake', ['-c', '1', '--quiet'], dag, 1);
  snake = `${ms(results.snakemake)} (${spawnSync('snakemake', ['--version'], { encoding: 'utf8' }).stdout.trim()})`;
}
console.log('\n## no-op, all cached (median of %d)', REPS);
console.log(`empty node process        ${ms(results.node)}`);
console.log(`ninja                     ${ms(results.ninja)}   (${ninjaSays})`);
console.log(`smke run (plan cached)    ${ms(results.smke)}   = ${(results.smke / results.ninja).toFixed(2)}x ninja   (${smkeSays})`);
console.log(`smke run --no-plan-cache  ${ms(results.smkeCompile)}   (compiles ${N} stages)`);
console.log(`snakemake -c 1            ${snake}${results.snakemake ? `   = ${(results.snakemake / results.smke).toFixed(0)}x smke` : ''}`);

}

// --- scheduling alone: 10,000 tasks (chains of 100) through the scheduler with no work.
{
  const { Scheduler } = await import(dist('runtime/scheduler.js'));
  const tasks = Array.from({ length: N }, (_, i) => ({ id: `s${i}`, deps: i % CHAIN ? [`s${i - 1}`] : [], resources: { cpus: 1, gpus: 0, memBytes: 0, timeSeconds: 0 }, retries: 0 }));
  const s = new Scheduler({ jobs: 8, keepGoing: false, pools: { cpus: 8, gpus: 0, memBytes: 1e12 } });
  t = performance.now();
  await s.run(tasks, { run: async () => ({ status: 'succeeded' }) });
  console.log(`\n## scheduler\n${N} tasks scheduled and completed (no work, -j 8): ${ms(performance.now() - t)}`);
}

// --- digests
const big = join(work, 'big.bin');
{
  const fd = openSync(big, 'w');
  const chunk = Buffer.alloc(64 << 20);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (let w = 0; w < GB * 16; w++) writeSync(fd, chunk);
  closeSync(fd);
}
const d = await Digester.create();
t = performance.now();
d.file(big);
const s = (performance.now() - t) / 1000;
console.log(`\n## digests\nfirst digest of a ${GB} GiB file (xxh128, page cache warm): ${(GB * 1.073741824 / s).toFixed(2)} GB/s (${ms(s * 1000)})`);
rmSync(big);

const many = join(work, 'many');
for (let i = 0; i < FILES; i++) {
  if (i % 1000 === 0) mkdirSync(join(many, `d${i / 1000}`), { recursive: true });
  const p = join(many, `d${Math.floor(i / 1000)}`, `f${i}`);
  writeFileSync(p, `file ${i}\n`);
  utimesSync(p, old, old);
}
const db = new StateDb(join(work, 'state.db'));
const d1 = await Digester.create(db);
t = performance.now();
d1.input(work, 'many');
db.flushStats();
const firstMany = performance.now() - t;
const d2 = await Digester.create(db);
t = performance.now();
d2.input(work, 'many');
const again = performance.now() - t;
// The floor: walking the same tree and stat-ing every file, nothing else.
t = performance.now();
for (const sub of readdirSync(many)) for (const f of readdirSync(join(many, sub))) statSync(join(many, sub, f), { bigint: true });
const floor = performance.now() - t;
console.log(`${FILES} files: first digest ${ms(firstMany)}, re-check unchanged ${ms(again)} (${d2.reads} files read; a bare readdir+stat walk of the same tree: ${ms(floor)})`);
db.close();
if (args.keep === undefined) rmSync(work, { recursive: true, force: true });
else console.log(`kept ${work}`);
