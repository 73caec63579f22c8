#!/usr/bin/env node
// Builds smke's optional native helper, the program starter
// (native/spawn-server.c -> dist/native/spawn-server), with the system's C
// compiler. Optional: without a compiler (or off Linux) smke starts programs
// with Node, which is slower per program but otherwise the same
// (src/runtime/program-starter.ts). Run by `npm run build`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'spawn-server.c');
const target = join(root, 'dist', 'native', 'spawn-server');

const mtime = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};

if (process.platform !== 'linux') {
  console.log('build-native: not Linux: programs will be started with Node (slower per program)');
  process.exit(0);
}
if (mtime(target) >= mtime(source)) process.exit(0); // up to date
const cc = process.env.CC || 'cc';
mkdirSync(dirname(target), { recursive: true });
// Built beside the target and renamed, so a worker never runs a half-written binary.
const tmp = `${target}.${process.pid}.tmp`;
const r = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-o', tmp, source], { stdio: 'inherit' });
if (r.status !== 0) {
  rmSync(tmp, { force: true });
  const why = r.error ? `${cc} could not be run (${r.error.code ?? r.error.message})` : `${cc} failed`;
  console.log(`build-native: ${why}: programs will be started with Node (slower per program); install a C compiler and rerun npm run build`);
  process.exit(0);
}
renameSync(tmp, target);
