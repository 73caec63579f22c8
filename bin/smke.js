#!/usr/bin/env node
// The smke command. Kept to one import so start-up stays fast: the CLI
// entry loads each command's module only when that command is used.
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`smke: internal error: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 70;
  },
);
