// Shared by the secrets-* and isolation-* adversarial tests: a temporary
// project driven through the real CLI (bin/smke.js, the compiled dist/), and
// ways to look for a secret in everything smke left on disk.

import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = new URL('../../bin/smke.js', import.meta.url).pathname;

export interface Project {
  dir: string;
  write(name: string, text: string): void;
  /** Run smke in the project; `env` is added to (or, with undefined values, removed from) this process's environment. */
  smke(args: string[], env?: Record<string, string | undefined>, opts?: { umask?: string; as?: 'nobody' }): { code: number | null; out: string; err: string };
  cleanup(): void;
}

export function project(prefix: string): Project {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    write: (name, text) => writeFileSync(join(dir, name), text),
    smke(args, env = {}, opts = {}) {
      const e: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', ...env };
      for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k];
      let cmd = process.execPath;
      let argv = [BIN, ...args];
      if (opts.umask || opts.as) {
        const inner = `${opts.umask ? `umask ${opts.umask}; ` : ''}exec "$0" "$@"`;
        argv = ['-c', inner, process.execPath, ...argv];
        cmd = '/bin/sh';
        if (opts.as === 'nobody') {
          argv = ['--reuid=65534', '--regid=65534', '--clear-groups', cmd, ...argv];
          cmd = 'setpriv';
        }
      }
      const r = spawnSync(cmd, argv, { cwd: dir, encoding: 'utf8', env: e as NodeJS.ProcessEnv, timeout: 120_000 });
      return { code: r.status, out: r.stdout, err: r.stderr };
    },
    cleanup: () => {
      // Entries are read-only; root ignores that, and the non-root tests make their own trees writable again.
      spawnSync('chmod', ['-R', 'u+w', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every regular file under `dir` (links not followed), relative paths. */
export function filesUnder(dir: string, rel = ''): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(join(dir, rel));
  } catch {
    return out;
  }
  for (const n of names) {
    const r = rel ? `${rel}/${n}` : n;
    const st = lstatSync(join(dir, r));
    if (st.isDirectory()) out.push(...filesUnder(dir, r));
    else if (st.isFile()) out.push(r);
  }
  return out;
}

/** Files under `dir` whose bytes contain `needle` (also as UTF-16, which SQLite may use). */
export function filesContaining(dir: string, needle: string): string[] {
  const a = Buffer.from(needle, 'utf8');
  const b = Buffer.from(needle, 'utf16le');
  return filesUnder(dir).filter((f) => {
    const buf = readFileSync(join(dir, f));
    return buf.includes(a) || buf.includes(b);
  });
}

/** Whether the uid `nobody` can run this checkout's smke (not when the clone sits under a private home, as in CI). */
export const nobodyCanRun: boolean = (() => {
  const r = spawnSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(BIN)}, 4)`],
    { encoding: 'utf8' },
  );
  if (r.status === 0 && process.getuid?.() === 0) return true;
  console.warn('test/adversarial: the non-root cases are skipped — needs root with setpriv, and a checkout the uid nobody can read');
  return false;
})();
