// `npm run bench` lists the benchmarks with the usage from each file's header;
// `npm run bench -- NAME [args...]` runs bench/NAME.mjs with the args, and
// `npm run bench -- NAME --help` prints that header without running anything
// (the benchmarks themselves take positional args and would start on --help).
// None runs by default: several take many minutes or need Slurm or a GPU.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const dir = import.meta.dirname;
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.mjs') && f !== basename(import.meta.filename))
  .map((f) => f.slice(0, -'.mjs'.length))
  .sort();

/** The leading `//` comment block of a benchmark: what it measures and its usage line. */
function header(name) {
  const lines = [];
  for (const line of readFileSync(join(dir, `${name}.mjs`), 'utf8').split('\n')) {
    if (line.startsWith('#!')) continue;
    if (!line.startsWith('//')) break;
    lines.push(line.replace(/^\/\/ ?/, ''));
  }
  return lines.join('\n').trim();
}

const [name, ...args] = process.argv.slice(2);
if (name === undefined || name === '--help' || name === '-h') {
  console.log('usage: npm run bench -- NAME [args...]   (build first: npm run build)\n');
  for (const b of benches) {
    const usage = header(b)
      .split('\n')
      .find((l) => /Usage:|node bench\//.test(l));
    console.log(`${b.padEnd(14)} ${usage ? usage.trim().replace(/^Usage:\s*/, '') : `node bench/${b}.mjs`}`);
  }
  console.log('gpu/run.sh     on the lent GPU machine only (see its header and docs/ml.md)');
  console.log('\nnpm run bench -- NAME --help   prints what NAME measures and its options');
} else if (!benches.includes(name)) {
  console.error(`error: no benchmark named '${name}' in bench/ (there are: ${benches.join(', ')})`);
  process.exitCode = 2;
} else if (args.includes('--help') || args.includes('-h')) {
  console.log(header(name));
} else {
  const r = spawnSync(process.execPath, [join(dir, `${name}.mjs`), ...args], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
}
