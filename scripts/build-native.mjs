#!/usr/bin/env node
// Builds smke's optional native helpers with the system's C compiler:
//   native/spawn-server.c -> dist/native/spawn-server (the program starter, src/runtime/program-starter.ts)
//   native/stat-check.c   -> dist/native/stat-check   (the no-op stat check, src/runtime/stat-list.ts)
// Optional: without a compiler (or off Linux) smke does the same work in Node,
// more slowly but otherwise the same. Run by `npm run build`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const programs = [
  { name: 'spawn-server', flags: [], without: 'programs will be started with Node (slower per program)' },
  { name: 'stat-check', flags: ['-pthread'], without: 'the no-op check will stat with Node (slower on large projects)' },
];

const mtime = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};

if (process.platform !== 'linux') {
  for (const p of programs) console.log(`build-native: not Linux: ${p.without}`);
  process.exit(0);
}
const cc = process.env.CC || 'cc';
for (const p of programs) {
  const source = join(root, 'native', `${p.name}.c`);
  const target = join(root, 'dist', 'native', p.name);
  if (mtime(target) >= mtime(source)) continue; // up to date
  mkdirSync(dirname(target), { recursive: true });
  // Built beside the target and renamed, so nothing ever runs a half-written binary.
  const tmp = `${target}.${process.pid}.tmp`;
  const r = spawnSync(cc, ['-O2', '-Wall', '-Wextra', ...p.flags, '-o', tmp, source], { stdio: 'inherit' });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    const why = r.error ? `${cc} could not be run (${r.error.code ?? r.error.message})` : `${cc} failed on ${p.name}.c`;
    console.log(`build-native: ${why}: ${p.without}; install a C compiler and rerun npm run build`);
    continue;
  }
  renameSync(tmp, target);
}
