// `sandbox = true` for exec stages (Linux): the program runs under bubblewrap
// (bwrap) in its own mount namespace, where the file system holds only
//   - the system, read-only: /usr (with /bin, /lib* as on the host), /etc, /opt, /sys;
//   - a minimal /dev (plus GPU device nodes) and /proc;
//   - the stage's declared inputs and its upstream store entries, read-only;
//   - its output directory and its scratch directory, writable;
//   - an empty, throw-away home directory and /tmp.
// Everything else — other store entries, .smke/, undeclared project files,
// the user's home — does not exist for the program, and writes outside {out},
// scratch, /tmp and $HOME fail. Read-only binds hold for root too (chmod does
// not). The network, the user id and other processes' view are not isolated.
// See docs/runtime.md, "Isolation".

import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import type { StageContext } from '../stage-kind.js';

/** The read-only system directories a program needs to start. */
const SYSTEM = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/opt', '/sys'];

export class SandboxError extends Error {}

function onPath(cmd: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (d && existsSync(join(d, cmd))) return join(d, cmd);
  }
  return undefined;
}

let probed: { bwrap: string } | { error: string } | undefined;

/** bwrap's path, once it has shown it can create the namespaces we use; a clear error otherwise. */
function bwrap(): string {
  if (!probed) {
    const path = process.platform === 'linux' ? onPath('bwrap') : undefined;
    if (process.platform !== 'linux') probed = { error: `exec: sandbox = true needs Linux (bubblewrap); this is ${process.platform}: set sandbox = false` };
    else if (!path) {
      probed = {
        error:
          'exec: sandbox = true needs bubblewrap (bwrap), which is not on PATH: install it (Debian/Ubuntu: apt-get install bubblewrap) or set sandbox = false',
      };
    } else {
      try {
        execFileSync(path, [...NAMESPACES, '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', 'true'], { stdio: 'pipe', timeout: 10_000 });
        probed = { bwrap: path };
      } catch (e) {
        const why = String((e as { stderr?: Buffer }).stderr ?? '').trim() || (e as Error).message;
        probed = {
          error:
            `exec: sandbox = true: bubblewrap cannot create namespaces here (${why}); allow unprivileged user namespaces ` +
            '(sysctl kernel.unprivileged_userns_clone=1 or user.max_user_namespaces > 0), run in a container that permits them, or set sandbox = false',
        };
      }
    }
  }
  if ('error' in probed) throw new SandboxError(probed.error);
  return probed.bwrap;
}

/** A new pid namespace, so killing bwrap ends everything the program started; ipc and uts for hygiene. */
const NAMESPACES = ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--die-with-parent'];

/** The store entry directory (…/<64 hex key>) that holds an upstream output path. */
function entryOf(path: string): string {
  const m = /^(.*?\/[0-9a-f]{64})(?:\/|$)/.exec(path);
  return m ? m[1]! : path;
}

/** A glob exposes the directory before its first wildcard (bwrap binds paths, not patterns). */
function literalPrefix(pattern: string): string {
  const i = pattern.search(/[*?[{]/);
  return i < 0 ? pattern : dirname(pattern.slice(0, i) + 'x');
}

export interface SandboxSpec {
  /** Declared inputs (project-relative or absolute paths and globs). */
  inputs: string[];
  /** Absolute paths of the upstream outputs the stage references. */
  upstream: string[];
  cwd: string;
}

/** The bwrap command line that runs `file args` in the stage's sandbox. */
export function sandboxArgv(ctx: StageContext, spec: SandboxSpec, file: string, args: string[]): string[] {
  const bin = bwrap();
  const a: string[] = [...NAMESPACES];
  for (const d of SYSTEM) {
    let st;
    try {
      st = lstatSync(d);
    } catch {
      continue;
    }
    // Merged /usr: /bin -> usr/bin must stay a link, or it would be a second, unrelated mount.
    if (st.isSymbolicLink()) a.push('--symlink', readlinkSync(d), d);
    else a.push('--ro-bind', d, d);
  }
  a.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  // GPUs: the device nodes a CUDA program opens (the minimal /dev has none).
  for (const n of safeList('/dev')) if (/^nvidia/.test(n)) a.push('--dev-bind', `/dev/${n}`, `/dev/${n}`);
  if (existsSync('/dev/dri')) a.push('--dev-bind', '/dev/dri', '/dev/dri');
  a.push('--setenv', 'TMPDIR', '/tmp');
  // The project gets its own (empty) file system, so that it is read-only below
  // even when it sits under /tmp; programs write caches under $HOME, so that is
  // an empty one that vanishes with the sandbox. The outer one is mounted first.
  const home = process.env.HOME;
  const fresh = [ctx.projectDir, ...(home && isAbsolute(home) ? [resolve(home)] : [])].sort((x, y) => x.length - y.length);
  for (const d of new Set(fresh)) a.push('--tmpfs', d);
  for (const p of spec.inputs) {
    const abs = resolve(ctx.projectDir, literalPrefix(p));
    a.push('--ro-bind-try', abs, abs);
  }
  for (const e of new Set(spec.upstream.map(entryOf))) a.push('--ro-bind-try', e, e);
  a.push('--bind', ctx.outDir, ctx.outDir, '--bind', ctx.scratchDir, ctx.scratchDir);
  // A working directory nothing exposes is an empty one (not an error: the program may only write to {out}).
  a.push('--dir', spec.cwd, '--chdir', spec.cwd);
  // Everything not mounted above (the project directory's skeleton) is read-only:
  // a program writing beside its inputs gets an error, not a write that silently vanishes.
  a.push('--remount-ro', ctx.projectDir, '--remount-ro', '/');
  return [bin, ...a, '--', file, ...args];
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
