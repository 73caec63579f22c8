// Retry policy and error classification shared by file downloads and the
// image scrapers: which failures are worth another try, and how long to wait.

import { setTimeout as delay } from 'node:timers/promises';
import type { Rng } from './rng.js';

/** A failure with a short machine-readable reason (stats files count by it). */
export class FetchError extends Error {
  override name = 'FetchError';
  constructor(
    message: string,
    readonly reason: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface RetryPolicy {
  /** Extra attempts after the first. */
  retries: number;
  /** First backoff; doubles each retry up to maxDelayMs; then full jitter in [0.5, 1.5) x. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 5, baseDelayMs: 500, maxDelayMs: 30_000 };

export function backoffMs(policy: RetryPolicy, attempt: number, rng: Rng): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  // Jitter spreads retries of many clients (or many scraper workers) so they do not hit a recovering server in lockstep.
  return Math.round(exp * (0.5 + rng.next()));
}

/**
 * Waits `ms` before the next attempt. An abort rejects at once with `signal.reason`, so a retry loop
 * ends with the caller's reason rather than retrying. (The runtime's polling waits have the opposite
 * contract, `waitUnlessAborted` in runtime/wait.ts: an abort there just ends the wait.)
 */
export async function retryDelay(ms: number, signal?: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch((err: unknown) => {
    throw signal?.aborted ? signal.reason : err;
  });
}

/** Classify an HTTP status: 408, 425, 429 and 5xx are transient; other 4xx are final. */
export function statusError(status: number, url: string, retryAfter?: string | null): FetchError {
  const transient = status === 408 || status === 425 || status === 429 || status >= 500;
  let after: number | undefined;
  if (retryAfter && /^\d+$/.test(retryAfter.trim())) after = Math.min(60_000, Number(retryAfter) * 1000);
  return new FetchError(`HTTP ${status} from ${redactUrl(url)}`, `http_${status}`, transient, after);
}

/** Turn a low-level fetch failure into a FetchError with a reason. */
export function networkError(err: unknown, url: string, stalled: boolean): FetchError {
  if (err instanceof FetchError) return err;
  if (stalled) return new FetchError(`no data from ${redactUrl(url)} within the timeout (stalled connection)`, 'timeout', true);
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const code = e.cause?.code ?? (e as NodeJS.ErrnoException).code;
  const detail = e.cause?.message ?? e.message;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new FetchError(`cannot resolve host of ${redactUrl(url)} (${detail})`, 'dns', code === 'EAI_AGAIN');
  if (code === 'ECONNREFUSED') return new FetchError(`connection refused by ${redactUrl(url)}`, 'refused', true);
  return new FetchError(`connection to ${redactUrl(url)} failed: ${detail}`, 'network', true);
}

/** Drop credentials and query strings (signed URLs carry tokens) from a URL before it reaches a log or an error. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    if (u.search) u.search = '?…';
    return u.toString();
  } catch {
    return url.slice(0, 200);
  }
}

/**
 * Apply SMKE_MIRROR. Either `prefix=replacement` pairs separated by `;` (the
 * first matching prefix is replaced), or a base URL under which the original
 * host and path are appended (`https://h/p` -> `<base>/h/p`).
 */
export function applyMirror(url: string, mirror: string | undefined): string {
  const m = mirror?.trim();
  if (!m || url.startsWith('file:')) return url;
  if (m.includes('=')) {
    for (const pair of m.split(';')) {
      const i = pair.indexOf('=');
      if (i <= 0) continue;
      const from = pair.slice(0, i).trim();
      if (url.startsWith(from)) return pair.slice(i + 1).trim() + url.slice(from.length);
    }
    return url;
  }
  const u = new URL(url);
  return `${m.replace(/\/+$/, '')}/${u.host}${u.pathname}${u.search}`;
}
