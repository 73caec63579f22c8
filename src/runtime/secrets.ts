// Secrets and the environment a stage sees (docs/runtime.md, "Secrets").
//
// Three rules, each enforced here and only here:
//   1. smke never writes an environment variable's value to disk. What it must
//      remember (the plan cache, the no-op snapshot, the key) is a digest; where
//      a digest of a short secret could be guessed offline (project-local files)
//      it is keyed with a random per-project key kept 0600.
//   2. Files under .smke/ are private: the directory is 0700, the files smke
//      writes there 0600, whatever the umask.
//   3. A stage's process does not inherit smke's whole environment: only a
//      fixed allow-list of system variables plus the names its kind or the
//      stage declares (a credential such as HF_TOKEN reaches only the stages
//      that ask for it).

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** How a secret value is shown wherever smke prints one. */
export const SHOWN_SECRET = '<secret>';

/** A valid environment variable name (what `secret_env` accepts). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// --- private files -------------------------------------------------------------

/** Create `dir` (and parents) and make it 0700, also when it already existed with a wider mode. */
export function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    chmodSync(dir, 0o700);
  } catch {
    /* not ours (a shared mount): its owner decides */
  }
}

/** Write a file readable by its owner only, atomically (tmp + rename). */
export function writePrivateFile(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  // mode applies only when the file is created: the tmp name is always new.
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, path);
}

/**
 * Narrow an SQLite database and its -wal/-shm files to 0600 (called right
 * after opening it: SQLite creates them with the umask's mode; they sit in
 * the 0700 .smke/ meanwhile). Missing files are fine.
 */
export function privateDb(path: string): void {
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      chmodSync(p, 0o600);
    } catch {
      /* absent, or not ours */
    }
  }
}

// --- digests -------------------------------------------------------------------

/**
 * The unkeyed digest of an environment value, for the cache key: keys must be
 * equal across projects sharing a store, so no per-project key can be mixed
 * in. Only variables a kind declares as changing its result go into the key,
 * never credentials (see `passEnv`), so what this hides is not a secret.
 */
export function envValueDigest(value: string | undefined): string | null {
  return value === undefined ? null : `sha256:${createHash('sha256').update(value).digest('hex')}`;
}

const projectKeys = new Map<string, Buffer>();

/**
 * The per-project random key (32 bytes, `.smke/secret.key`, 0600) that makes
 * digests of environment values in project-local files unguessable offline.
 * Losing it only invalidates the plan cache.
 */
export function projectKey(smkeDir: string): Buffer {
  const known = projectKeys.get(smkeDir);
  if (known) return known;
  const path = join(smkeDir, 'secret.key');
  let key: Buffer;
  try {
    key = Buffer.from(readFileSync(path, 'utf8').trim(), 'hex');
    if (key.length !== 32) throw new Error('bad key');
  } catch {
    privateDir(smkeDir);
    key = randomBytes(32);
    try {
      // 'wx': two processes racing both write a key; the loser reads the winner's.
      writeFileSync(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    } catch {
      try {
        const other = Buffer.from(readFileSync(path, 'utf8').trim(), 'hex');
        if (other.length === 32) key = other;
        else writePrivateFile(path, `${key.toString('hex')}\n`);
      } catch {
        /* unwritable: this process keeps its own key, the cache just misses */
      }
    }
  }
  projectKeys.set(smkeDir, key);
  return key;
}

/** HMAC-SHA256 of an environment value under the project key (null when unset). */
export function keyedEnvDigest(key: Buffer, value: string | undefined): string | null {
  return value === undefined ? null : `hmac:${createHmac('sha256', key).update(value).digest('hex')}`;
}

/** The project key of the .smke/ directory that holds `plansDir`. */
export function projectKeyFor(plansDir: string): Buffer {
  return projectKey(dirname(plansDir));
}

// --- the environment of a stage --------------------------------------------------

/**
 * What every stage process gets from smke's environment: what programs need
 * to start and find their tools, locale, temporary directory, proxies and CA
 * bundles (downloads), GPU and Slurm variables, Python/Node/BLAS settings, and
 * smke's own SMKE_* settings. Nothing else (no *_TOKEN, *_KEY, cloud
 * credentials) unless the stage's kind or the stage itself names it.
 */
const ALLOWED = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'TERM',
  'TZ',
  'LANG',
  'LANGUAGE',
  'TMPDIR',
  'TEMP',
  'TMP',
  'NO_COLOR',
  'CI',
  'LD_LIBRARY_PATH',
  'HOSTNAME',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'all_proxy',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'REQUESTS_CA_BUNDLE',
  'CURL_CA_BUNDLE',
  'NODE_EXTRA_CA_CERTS',
  'NODE_OPTIONS',
  'NODE_PATH',
  'NODE_V8_COVERAGE',
  'PYTHONPATH',
  'PYTHONHASHSEED',
  'PYTHONUNBUFFERED',
  'VIRTUAL_ENV',
  'CONDA_PREFIX',
  'CONDA_DEFAULT_ENV',
]);
const ALLOWED_PREFIXES = ['LC_', 'XDG_', 'CUDA_', 'NVIDIA_', 'SLURM_', 'SMKE_', 'OMP_', 'MKL_', 'OPENBLAS_', 'TF_'];

/** Whether smke passes `name` to every stage (the allow-list above). */
export function passedToEveryStage(name: string): boolean {
  return ALLOWED.has(name) || ALLOWED_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * The environment a stage's process starts with: the allow-list, plus the
 * variables named in `declared` (the kind's `env` and `passEnv`, an exec
 * stage's `secret_env`), taken from `from`.
 */
export function stageEnv(from: Record<string, string | undefined>, declared: Iterable<string> = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(from)) if (v !== undefined && passedToEveryStage(k)) out[k] = v;
  for (const k of declared) {
    const v = from[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
