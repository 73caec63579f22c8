// Shared by the Slurm tests: they run against the real single-node cluster of
// scripts/slurm-local.sh (started here when it is not running; `start` is
// idempotent). Outside CI a machine without sbatch skips them with a message;
// with CI=true they run and fail when Slurm cannot be started.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
export const BIN = join(REPO, 'bin/smke.js');
export const JOBCOMP = process.env.SMKE_SLURM_JOBCOMP ?? '/var/lib/smke-slurm/jobcomp.log';

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, cmd)));
}

/** Whether these tests run here; prints why not when they do not. */
export const slurmAvailable: boolean = (() => {
  if (process.env.CI === 'true') return true; // must run (and fail if Slurm cannot start)
  if (onPath('sbatch') || onPath('slurmctld')) return true;
  console.warn('test/slurm: skipped — sbatch is not installed (scripts/slurm-local.sh start installs a local cluster; with CI=true these tests fail instead)');
  return false;
})();

export function ensureSlurm(): void {
  try {
    execFileSync('sinfo', ['-h', '-o', '%T'], { stdio: 'pipe', timeout: 10_000 });
    const st = execFileSync('sinfo', ['-h', '-o', '%T'], { encoding: 'utf8' }).trim();
    if (/idle|mix|alloc/.test(st)) return;
  } catch {
    /* not running */
  }
  execFileSync(join(REPO, 'scripts/slurm-local.sh'), ['start'], { stdio: 'inherit', timeout: 300_000 });
}

export function project(pipeline: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'smke-slurm-'));
  writeFileSync(join(dir, 'p.smke'), pipeline);
  for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t);
  return dir;
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();

/** After each test: kill orchestrators a failed test left running, cancel the Slurm jobs of its projects, remove them. */
export function cleanup(): void {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
  if (!dirs.size) return;
  try {
    const out = execFileSync('squeue', ['-h', '-o', '%i %Z'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const ids = out
      .split('\n')
      .map((l) => l.trim().split(' '))
      .filter(([, d]) => d && dirs.has(d))
      .map(([i]) => i!);
    if (ids.length) execFileSync('scancel', ids, { stdio: 'ignore' });
  } catch {
    /* nothing to cancel */
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

export interface RunResult {
  code: number | null;
  events: Array<Record<string, unknown>>;
  stderr: string;
}

/** `smke run p.smke --json` in `dir` as a child process. */
export function start(
  dir: string,
  args: string[] = ['--executor', 'slurm'],
  env: Record<string, string> = {},
): { child: ChildProcess; done: Promise<RunResult>; events: Array<Record<string, unknown>> } {
  const child = spawn(process.execPath, [BIN, 'run', 'p.smke', '--json', ...args], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  dirs.add(dir);
  const events: Array<Record<string, unknown>> = [];
  let buf = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) {
      try {
        events.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        /* not JSON */
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<RunResult>((res) =>
    child.on('close', (code) => {
      live.delete(child);
      res({ code, events, stderr });
    }),
  );
  return { child, done, events };
}

export const run = (dir: string, args?: string[], env?: Record<string, string>): Promise<RunResult> => start(dir, args, env).done;

/** Jobcomp lines of jobs that ran in `dir` (WorkDir), as name -> count. */
export function jobcompNames(dir: string): Map<string, number> {
  const m = new Map<string, number>();
  let text = '';
  try {
    text = readFileSync(JOBCOMP, 'utf8');
  } catch {
    return m;
  }
  for (const line of text.split('\n')) {
    if (!line.includes(` WorkDir=${dir} `)) continue;
    const name = /Name=(\S+)/.exec(line)?.[1];
    if (name) m.set(name, (m.get(name) ?? 0) + 1);
  }
  return m;
}

/** Poll `f` until it returns truthy (or throw after `ms`). */
export async function until<T>(f: () => T | undefined | false | Promise<T | undefined | false>, ms = 30_000, what = 'condition'): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function squeue(ids: string[]): Map<string, string> {
  const m = new Map<string, string>();
  ids = ids.filter((i) => /^\d+$/.test(i)); // not the provisional ids of jobs being submitted
  if (!ids.length) return m;
  try {
    const out = execFileSync('squeue', ['-h', '-t', 'all', '-j', ids.join(','), '-o', '%i %T'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    for (const l of out.split('\n')) {
      const [i, s] = l.trim().split(/\s+/);
      if (i && s) m.set(i, s);
    }
  } catch {
    /* all forgotten */
  }
  return m;
}

/** Rows of the slurm_jobs table of a project whose job id is known (not the provisional `pending:` rows of a submission in progress). */
export async function slurmRows(dir: string): Promise<Array<{ job_id: string; key: string; instance: string; state: string | null }>> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(dir, '.smke/state.db'), { readonly: true });
  try {
    return db.prepare("SELECT job_id, key, instance, state FROM slurm_jobs WHERE job_id NOT LIKE 'pending:%' ORDER BY CAST(job_id AS INTEGER)").all() as Array<{
      job_id: string;
      key: string;
      instance: string;
      state: string | null;
    }>;
  } finally {
    db.close();
  }
}
