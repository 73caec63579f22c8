// Benchmark: the per-stage overhead of running trivial stages, side by side
// with ninja and Snakemake in the same run (the machine is shared and noisy:
// only ratios measured together mean anything).
//   wide:  N independent stages `echo i > out`, cold, -j 2
//   chain: M stages each reading the previous one's output, cold (serial latency)
//
//   nice node bench/exec-overhead.mjs [--wide 1000] [--chain 200] [--reps 1] [--only smke,ninja,snakemake,node-floor,smke-node-spawn]
//     [--snakemake-scheduler greedy] [--baseline DIR]   (--reps N: the tools take turns, median of N)
//
// node-floor (bench/lib/spawn-floor.mjs) runs the same commands from one bare
// Node process: what any orchestrator written in Node pays to start them
// (libuv forks). vfork-floor (bench/lib/vfork-floor.py, if python3 >= 3.10 is
// installed) starts them with vfork, as ninja's posix_spawn does. smke-node-spawn is smke with
// SMKE_PROGRAM_STARTER=node: its pooled workers start programs with Node instead of the program
// starter (src/runtime/program-starter.ts). --baseline DIR adds the row smke-baseline: the smke
// of another checkout (built: `git worktree add --detach DIR <commit>`, then `npm run build` there),
// for a before/after measured in one run.
//
// Run after `npx tsc -p tsconfig.json` (it uses dist/). Never part of `npm test`.
// The 10k no-op comparison is bench/runtime-noop.mjs.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1] ?? '']] : acc), []));
const WIDE = Number(args.wide ?? 1000);
const CHAIN = Number(args.chain ?? 200);
const REPS = Number(args.reps ?? 1);
const only = new Set((args.only ?? 'ninja,snakemake,vfork-floor,node-floor,smke').split(','));
if (args.baseline) only.add('smke-baseline');
const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin/smke.js');
const work = mkdtempSync(join(tmpdir(), 'smke-exec-bench-'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// CPU seconds of every process this one has waited for, and the ones they waited for (cutime +
// cstime, in USER_HZ ticks): on a shared, loaded machine a tool's CPU time varies far less than its
// wall time, so both are reported.
const childCpu = () => {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
};

function project(name, n, chained) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const smke = ['smke 1'];
  const ninja = [];
  const floor = [];
  for (let i = 0; i < n; i++) {
    const up = chained && i > 0;
    // The same shell command in all three tools (ninja and Snakemake run commands through a shell too).
    smke.push(
      `stage s${i} = exec {\n  argv = "${up ? 'cat \\"$UP\\" > {out}/o.txt; ' : ''}echo ${i} >> {out}/o.txt"\n  shell = true\n  outputs = ["o.txt"]${up ? `\n  env = { UP = s${i - 1}.o }` : ''}\n}`,
    );
    ninja.push(`build out/s${i}.txt: ${up ? 'catecho' : 'echo'}${up ? ` out/s${i - 1}.txt` : ''}`, `  i = ${i}`);
    floor.push(`${up ? `cat out/s${i - 1}.txt > out/s${i}.txt; ` : ''}echo ${i} >> out/s${i}.txt`);
  }
  writeFileSync(join(dir, 'floor.json'), JSON.stringify({ chained, commands: floor }));
  writeFileSync(join(dir, 'bench.smke'), `${smke.join('\n')}\n`);
  writeFileSync(
    join(dir, 'build.ninja'),
    `rule echo\n  command = echo $i > $out\nrule catecho\n  command = cat $in > $out; echo $i >> $out\n${ninja.join('\n')}\n`,
  );
  writeFileSync(
    join(dir, 'Snakefile'),
    `N = ${n}
rule all:
    input: expand("out/s{i}.txt", i=range(N))
${
  chained
    ? `rule first:
    output: "out/s0.txt"
    shell: "echo 0 > {output}"
rule s:
    input: lambda wc: f"out/s{int(wc.i) - 1}.txt"
    output: "out/s{i,[1-9][0-9]*}.txt"
    shell: "cat {input} > {output}; echo {wildcards.i} >> {output}"`
    : `rule s:
    output: "out/s{i}.txt"
    shell: "echo {wildcards.i} > {output}"`
}
`,
  );
  return dir;
}

/**
 * One cold run of a tool, in a fresh copy of the project: wall and CPU milliseconds.
 *
 * Nothing is deleted between runs (each gets its own copy; the work directory goes at the end).
 * This machine's ext4 has no journal, and there the kernel avoids reusing an inode freed in the
 * last minute or so: every file created after a mass deletion first walks past each recently
 * freed inode of its block group (fs/ext4/ialloc.c, recently_deleted). Deleting the last run's
 * outputs right before the next run made each file that run created cost up to ~0.5 ms, so the
 * tool that creates the most files (smke: about nine per stage, ninja one) paid for the
 * benchmark's own clean-up (docs/runtime.md, "Per-stage overhead").
 */
let runSeq = 0;
function once(template, cmd, argv, env = {}) {
  const dir = `${template}-run${++runSeq}`;
  const cp = spawnSync('cp', ['-a', template, dir]);
  if (cp.status !== 0) throw new Error(`cp -a ${template} ${dir} failed`);
  if (cmd === process.execPath && argv[1] === 'run') {
    // Compile into smke's plan cache first (a dry run; the cache is per project directory): cold
    // means the stages run, not that the file is parsed. Cold means no records either.
    const r = spawnSync(process.execPath, [argv[0], 'run', 'bench.smke', '--dry-run', '--progress', 'plain'], { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) rmSync(join(dir, '.smke', f), { force: true });
  }
  const t = performance.now();
  const c = childCpu();
  const r = spawnSync(cmd, argv, { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env }, maxBuffer: 1 << 28 });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return { ms, cpu: childCpu() - c };
}

const tools = {
  ninja: (j) => ['ninja', ['-j', String(j)]],
  'vfork-floor': (j) => ['python3', [join(root, 'bench/lib/vfork-floor.py'), 'floor.json', String(j)]],
  'node-floor': (j) => [process.execPath, [join(root, 'bench/lib/spawn-floor.mjs'), 'floor.json', String(j)]],
  // --snakemake-scheduler greedy: Snakemake's own advice for large DAGs (its default ILP scheduler
  // needed more than 9 minutes for 1,000 trivial jobs here).
  snakemake: (j) => ['snakemake', ['-c', String(j), '--quiet', ...(args['snakemake-scheduler'] ? ['--scheduler', args['snakemake-scheduler']] : [])]],
  smke: (j) => [process.execPath, [bin, 'run', 'bench.smke', '-j', String(j), '--progress', 'plain']],
  // The same smke with programs started by Node in the pooled workers instead of the program starter.
  'smke-node-spawn': (j) => [process.execPath, [bin, 'run', 'bench.smke', '-j', String(j), '--progress', 'plain'], { SMKE_PROGRAM_STARTER: 'node' }],
  'smke-baseline': (j) => [process.execPath, [join(args.baseline ?? '', 'bin/smke.js'), 'run', 'bench.smke', '-j', String(j), '--progress', 'plain']],
};
const snakeVersion = spawnSync('snakemake', ['--version'], { encoding: 'utf8' }).stdout?.trim();
if (!snakeVersion) only.delete('snakemake');
if (spawnSync('python3', ['-c', 'import sys; sys.exit(sys.version_info < (3, 10))']).status !== 0) only.delete('vfork-floor');
console.log(
  `# exec overhead: node ${process.version}, ninja ${spawnSync('ninja', ['--version'], { encoding: 'utf8' }).stdout.trim()}, snakemake ${snakeVersion ?? 'not installed'}, median of ${REPS}`,
);

for (const [name, n, chained, j] of [
  ['wide', WIDE, false, 2],
  ['chain', CHAIN, true, 2],
]) {
  if (!n) continue;
  const dir = project(name, n, chained);
  // Repetitions go round the tools in turn, so that a change of load on the shared machine falls on all of them alike.
  const runs = {};
  for (let rep = 0; rep < REPS; rep++) {
    for (const tool of ['ninja', 'snakemake', 'vfork-floor', 'node-floor', 'smke-node-spawn', 'smke-baseline', 'smke']) {
      if (!only.has(tool)) continue;
      const [cmd, argv, env] = tools[tool](j);
      (runs[tool] ??= []).push(once(dir, cmd, argv, env));
    }
  }
  const res = Object.fromEntries(Object.entries(runs).map(([tool, rs]) => [tool, { ms: median(rs.map((r) => r.ms)), cpu: median(rs.map((r) => r.cpu)) }]));
  console.log(`\n## ${name}: ${n} trivial stages${chained ? ' in one chain' : ''}, cold, -j ${j}`);
  for (const [tool, r] of Object.entries(res)) {
    const vs = tool !== 'ninja' && res.ninja ? `   = ${(r.ms / res.ninja.ms).toFixed(2)}x ninja` : '';
    const snake = tool === 'smke' && res.snakemake ? `, ${(res.snakemake.ms / r.ms).toFixed(2)}x faster than snakemake` : '';
    const floorVs = tool.startsWith('smke') && res['node-floor'] ? `, ${(r.ms / res['node-floor'].ms).toFixed(2)}x node-floor` : '';
    const cpu = `cpu ${r.cpu.toFixed(2)} s${tool !== 'ninja' && res.ninja ? ` = ${(r.cpu / res.ninja.cpu).toFixed(1)}x ninja` : ''}`;
    console.log(`${tool.padEnd(15)} ${(r.ms / 1000).toFixed(2)} s (${(r.ms / n).toFixed(1)} ms/stage)${vs}${snake}${floorVs}   [${cpu}]`);
  }
}
if (args.keep === undefined) rmSync(work, { recursive: true, force: true });
else console.log(`kept ${work}`);
