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
import { procStatFields, readProc } from './proc.js';

export interface Stray {
  pid: number;
  command: string;
  /** Which mark tied it to the attempt. */
  why: string;
}

/**
 * What a scan needs to know about the moment the stage started, so that it
 * looks only at processes created since: none older can be the stage's.
 */
export interface ProcMark {
  /** /proc/<pid>/stat's clock: ticks of USER_HZ since boot (USER_HZ is 100 in Linux's ABI everywhere Node runs). */
  ticks: number;
  /** The last pid the kernel gave out (/proc/sys/kernel/ns_last_pid), if readable. */
  lastPid?: number;
  /** Processes and threads created since boot (/proc/stat), and those alive (/proc/loadavg). */
  forks?: number;
  tasks?: number;
}

/** The last pid the kernel gave out (NaN if unreadable). */
const lastPidNow = (): number => Number(readProc('/proc/sys/kernel/ns_last_pid', true));
/** Processes and threads created since boot (NaN if unreadable). */
const forksSinceBoot = (): number => Number(/^processes (\d+)$/m.exec(readProc('/proc/stat', true) ?? '')?.[1]);

/** Now, as a ProcMark (fields that cannot be read are left out). */
export function procMark(): ProcMark {
  const uptime = Number(readProc('/proc/uptime', true)?.split(' ')[0]);
  const lastPid = lastPidNow();
  const forks = forksSinceBoot();
  const tasks = Number(readProc('/proc/loadavg', true)?.split(' ')[3]?.split('/')[1]);
  return {
    ticks: Number.isFinite(uptime) ? Math.floor(uptime * 100) : 0,
    ...(lastPid > 0 && { lastPid }),
    ...(forks > 0 && { forks }),
    ...(tasks > 0 && { tasks }),
  };
}

let pidMax: number | undefined;
let sameNamespace: boolean | undefined;

/**
 * Which pids the kernel can have given out between `from` and now: Linux
 * hands out pids cyclically after the last one (ns_last_pid), wrapping at
 * pid_max to 300, so every process created since `from` has a pid in
 * (from.lastPid, lastPid now], cyclically, as long as the cursor cannot have
 * gone round the whole range: that takes more creations than free pids, and
 * there were at least pid_max - 300 - (tasks + forks) free, so
 * 2 * forks + tasks + 300 < pid_max rules it out. Undefined (look at every
 * process) when anything needed cannot be read, or when /proc shows another
 * pid namespace than ns_last_pid counts in. Only a privileged process can
 * choose its pid (clone3 set_tid, or writing ns_last_pid).
 */
export function createdSince(from: ProcMark | undefined, nowLastPid: number | undefined): PidRange | undefined {
  if (!from?.lastPid || from.forks === undefined || from.tasks === undefined || nowLastPid === undefined) return undefined;
  pidMax ??= Number(readProc('/proc/sys/kernel/pid_max')) || 0;
  sameNamespace ??= readProc('/proc/self/stat')?.split(' ')[0] === String(process.pid);
  const forks = forksSinceBoot() - from.forks;
  if (!sameNamespace || !(forks >= 0) || 2 * forks + from.tasks + 300 >= pidMax) return undefined;
  return new PidRange(from.lastPid, nowLastPid, pidMax);
}

/** The pids in (after, upTo], cyclically: after wrapping at pid_max, the kernel starts again at 300. */
export class PidRange {
  constructor(
    readonly after: number,
    readonly upTo: number,
    private readonly max: number,
  ) {}
  has(pid: number): boolean {
    return this.after <= this.upTo ? pid > this.after && pid <= this.upTo : pid > this.after || pid <= this.upTo;
  }
  /** How many pids it holds, counting the wrap as the whole tail (an upper bound). */
  get size(): number {
    return this.after <= this.upTo ? this.upTo - this.after : this.max - this.after + this.upTo;
  }
  *pids(): Generator<number> {
    if (this.after <= this.upTo) {
      for (let p = this.after + 1; p <= this.upTo; p++) yield p;
      return;
    }
    for (let p = this.after + 1; p < this.max; p++) yield p;
    for (let p = 1; p <= this.upTo; p++) yield p;
  }
}

/**
 * Up to this many pids given out since the stage started, probing each one's
 * /proc entry costs less than listing /proc (hundreds of entries on a busy
 * machine, most of a trivial stage's scan).
 */
const PROBE_LIMIT = 512;

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
  const f = procStatFields(pid);
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

function scan(marker: string, dirs: string[], from: ProcMark | undefined, spare: number | undefined): Stray[] {
  const lastPid = lastPidNow();
  const range = createdSince(from, lastPid > 0 ? lastPid : undefined);
  let pids: Iterable<number>;
  // Probing /proc/<n> directly also finds threads (listing /proc shows only
  // processes), and their ids come from the same counter: this worker's own
  // threads started during the stage are in the range and in its group, and
  // kill() of a thread id signals its whole process. A matching thread
  // therefore stands for its process, which counts only if the stage can
  // have started it (created since the start, and not this worker).
  let probed = false;
  if (range && range.size <= PROBE_LIMIT) {
    // Every process the stage can have started has a pid in the range (read before the probes).
    pids = range.pids();
    probed = true;
  } else {
    try {
      pids = readdirSync('/proc').map(Number);
    } catch {
      return []; // no /proc (not Linux): nothing can be found; documented
    }
  }
  const self = process.pid;
  const own = procStatFields('self');
  // The group is ours to empty only when we lead it (the local executor); under
  // Slurm the group is the batch script's.
  const group = own && Number(own[2]) === self ? self : undefined;
  // /proc/uptime has a resolution of one tick and start times are rounded down: a tick of slack.
  const since = Math.max(own ? Number(own[19]) : 0, from ? from.ticks - 1 : 0);
  const found: Stray[] = [];
  for (const pid of pids) {
    if (!(pid > 0) || pid === self || pid === spare || (range && !range.has(pid))) continue;
    const why = belongs(pid, group, since, marker, dirs);
    if (!why) continue;
    const proc = probed ? processOf(pid) : pid;
    if (proc === undefined || proc === self || proc === spare || found.some((f) => f.pid === proc)) continue;
    if (proc !== pid && !range?.has(proc)) continue; // a new thread of an older process
    found.push({ pid: proc, command: command(proc), why });
  }
  return found;
}

/** The process (thread group) a thread id belongs to: itself for a process's main thread. */
function processOf(id: number): number | undefined {
  const tgid = Number(/^Tgid:\s*(\d+)$/m.exec(readProc(`/proc/${id}/status`) ?? '')?.[1]);
  return tgid > 0 ? tgid : undefined;
}

const alive = (pid: number): boolean => {
  const f = procStatFields(pid);
  return f !== undefined && f[0] !== 'Z' && f[0] !== 'X';
};

/**
 * Kill every process left by the attempt whose output directory is `outDir`
 * (see above), and return once they are gone. Throws when one outlives
 * SIGKILL for `waitMs` (uninterruptible I/O): its writes could still land.
 * `startedAt` (procMark() taken before the stage started) narrows the search
 * to processes created since, which is all a stage can have started: without
 * it, every process on the machine costs a read of its stat file, every stage.
 * `spare` is a process of the worker's own in its group that the stage did not
 * start (the program starter, ./program-starter.ts).
 */
export async function reapStrays(
  outDir: string,
  otherDirs: string[] = [],
  opts: { startedAt?: ProcMark; waitMs?: number; spare?: number } = {},
): Promise<Stray[]> {
  const marker = `SMKE_OUT=${outDir}`;
  const dirs = [outDir, ...otherDirs];
  const killed: Stray[] = [];
  const deadline = Date.now() + (opts.waitMs ?? 5000);
  // A process killed while forking may leave a child the previous scan missed: rescan until one finds none.
  for (;;) {
    const found = scan(marker, dirs, opts.startedAt, opts.spare);
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
