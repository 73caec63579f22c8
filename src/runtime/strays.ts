// Processes a stage left behind. A stage's result is what its output
// directory holds when the stage returns: a background child still writing
// there afterwards would change an entry after its manifest was written
// (wrong data published as success). So before publishing (and before giving
// up on a failed attempt, whose scratch directory the next attempt reuses)
// the worker kills every process that belongs to the attempt.
//
// Node cannot make the worker a child subreaper (prctl) or move a stage into
// its own cgroup without privileges, so "belongs to" is read from /proc, the
// way Jenkins' ProcessTreeKiller does it:
//   - the worker's process group (the local executor starts each worker as a
//     group leader; a stage's children inherit the group);
//   - SMKE_OUT=<the attempt's output directory> in the environment, which
//     is unique per attempt and survives setsid and double forks, which leave
//     the group;
//   - a working directory or an open file inside the output or scratch
//     directory, which catches a child that cleared its environment but still
//     holds an output open.
// Not caught (docs/runtime.md, "Guarantees"): a process that left the group,
// cleared its environment, and holds nothing open under those directories
// when the stage returns, and only reopens an output by path later. Published
// entries are checked against their manifests, so such a late write makes
// the entry corrupt (rerun), never silently different.

import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface Stray {
  pid: number;
  command: string;
  /** Which mark tied it to the attempt. */
  why: string;
}

function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function command(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').slice(0, 120) || `pid ${pid}`;
  } catch {
    return `pid ${pid}`;
  }
}

const inside = (p: string, dirs: string[]): boolean => dirs.some((d) => p === d || p.startsWith(`${d}/`));

/**
 * Why `pid` belongs to the attempt, or undefined. Processes of other users are
 * unreadable and never match. Only processes started after this worker can be
 * the stage's, so older ones cost one read of their stat file.
 */
function belongs(pid: number, group: number | undefined, since: number, marker: string, dirs: string[]): string | undefined {
  const f = statFields(pid);
  // Gone, or a zombie: it cannot write any more.
  if (!f || f[0] === 'Z' || f[0] === 'X') return undefined;
  if (group !== undefined && Number(f[2]) === group) return 'in the stage’s process group';
  if (Number(f[19]) < since) return undefined;
  try {
    if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker)) return 'carries the attempt’s SMKE_OUT';
  } catch {
    /* not ours, or gone */
  }
  try {
    if (inside(readlinkSync(`/proc/${pid}/cwd`), dirs)) return 'works in the output directory';
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (inside(target, dirs)) return `holds ${target} open`;
    }
  } catch {
    /* not ours, or gone */
  }
  return undefined;
}

function scan(marker: string, dirs: string[], groupOnly: boolean): Stray[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc');
  } catch {
    return []; // no /proc (not Linux): nothing can be found; documented
  }
  const self = process.pid;
  const own = statFields('self');
  // The group is ours to empty only when we lead it (the local executor); under
  // Slurm the group is the batch script's.
  const group = own && Number(own[2]) === self ? self : undefined;
  const since = own ? Number(own[19]) : 0;
  const found: Stray[] = [];
  for (const name of pids) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === self) continue;
    const why = groupOnly
      ? group !== undefined && Number(statFields(pid)?.[2]) === group && alive(pid)
        ? 'in the stage’s process group'
        : undefined
      : belongs(pid, group, since, marker, dirs);
    if (why) found.push({ pid, command: command(pid), why });
  }
  return found;
}

const alive = (pid: number): boolean => {
  const f = statFields(pid);
  return f !== undefined && f[0] !== 'Z' && f[0] !== 'X';
};

/**
 * Kill every process left by the attempt whose output directory is `outDir`
 * (see above), and return once they are gone. Throws when one outlives
 * SIGKILL for `waitMs` (uninterruptible I/O): its writes could still land.
 */
export async function reapStrays(outDir: string, otherDirs: string[] = [], waitMs = 5000): Promise<Stray[]> {
  const marker = `SMKE_OUT=${outDir}`;
  const dirs = [outDir, ...otherDirs];
  const killed: Stray[] = [];
  const deadline = Date.now() + waitMs;
  // A process killed while forking may leave a child the previous scan missed: rescan until one
  // finds none. The group first: one cheap read per process keeps the window for forks short.
  for (let groupOnly = true; ;) {
    const found = scan(marker, dirs, groupOnly);
    if (found.length === 0 && groupOnly) {
      groupOnly = false;
      continue;
    }
    if (found.length === 0) return killed;
    if (Date.now() > deadline)
      throw new Error(`the stage keeps starting processes (${found.length} found after ${killed.length} killed); nothing was published`);
    for (const s of found) {
      try {
        process.kill(s.pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
      if (!killed.some((k) => k.pid === s.pid)) killed.push(s);
    }
    // They are not our children (reparented when the stage exited): poll until /proc shows them gone.
    while (found.some((s) => alive(s.pid))) {
      if (Date.now() > deadline) {
        const left = found.filter((s) => alive(s.pid)).map((s) => `pid ${s.pid} (${s.command})`);
        throw new Error(`the stage left processes that did not stop after SIGKILL: ${left.join(', ')}; nothing was published`);
      }
      await new Promise((res) => setTimeout(res, 10));
    }
  }
}
