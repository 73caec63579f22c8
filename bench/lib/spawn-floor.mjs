// The floor of any Node.js orchestrator on this machine: the same shell
// commands as the other tools, started with node:child_process.spawn from one
// Node process at -j N, with nothing else done (no store, no state, no locks).
// Node (libuv 1.46) forks on Linux where ninja uses posix_spawn (vfork), so
// the gap between this row and ninja is what starting a program from Node
// costs, and the gap between smke and this row is smke's own overhead.
//
//   node bench/lib/spawn-floor.mjs COMMANDS.json J
// COMMANDS.json: { "chained": bool, "commands": ["sh command", ...] }
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

const { chained, commands } = JSON.parse(readFileSync(process.argv[2], 'utf8'));
mkdirSync('out', { recursive: true });
const jobs = chained ? 1 : Number(process.argv[3] ?? 2);
const run = (cmd) =>
  new Promise((res, rej) => {
    const p = spawn('/bin/sh', ['-c', cmd], { stdio: 'ignore' });
    p.once('error', rej);
    p.once('exit', (code) => (code === 0 ? res() : rej(new Error(`${cmd}: exit ${code}`))));
  });
let next = 0;
await Promise.all(
  Array.from({ length: jobs }, async () => {
    while (next < commands.length) await run(commands[next++]);
  }),
);
console.log(`${commands.length} commands`);
