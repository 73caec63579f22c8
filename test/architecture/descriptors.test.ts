// Kind descriptors must not load tfjs or sharp when imported: the CLI imports
// the registry to compile any pipeline, and those two take seconds to load.
// Checked in a fresh process on the built dist/ (as bin/smke.js runs it).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const REGISTRY = pathToFileURL(resolve(ROOT, 'dist', 'stages', 'registry.js')).href;
const HEAVY = /[\\/]node_modules[\\/](?:@tensorflow[\\/]|sharp[\\/]|@img[\\/])/;

/** Runs `body` (an ES module) in a fresh node and returns the files the CommonJS loader has loaded (tfjs and sharp are CommonJS). */
function loadedBy(body: string): { out: string; loaded: string[] } {
  const script = `import { createRequire } from 'node:module';\n${body}\nconsole.log('@@' + JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const at = r.stdout.lastIndexOf('@@');
  return { out: r.stdout.slice(0, at), loaded: JSON.parse(r.stdout.slice(at + 2)) as string[] };
}

describe('kind descriptors stay light', () => {
  it('importing every kind through the registry loads neither tfjs nor sharp', () => {
    expect(existsSync(new URL(REGISTRY)), 'run `npx tsc -p tsconfig.json` first').toBe(true);
    const { out, loaded } = loadedBy(
      `const { registry } = await import(${JSON.stringify(REGISTRY)});\n` +
        // Touch what the compiler reads of each descriptor, so a lazy getter that loads a model would show.
        `for (const k of registry().all()) JSON.stringify([k.name, k.version, k.summary, k.params]);\n` +
        `console.log(registry().names().join(' '));`,
    );
    expect(out.trim().split(' ').length).toBeGreaterThan(10);
    expect(loaded.filter((f) => HEAVY.test(f))).toEqual([]);
  });

  it('would see sharp and tfjs if they were loaded (the check is not blind)', () => {
    const { loaded } = loadedBy(`await import('sharp');`);
    expect(loaded.some((f) => HEAVY.test(f))).toBe(true);
  });
});
