// The runtime's one way to wait: a polling loop (a lock held by another run, a
// Slurm controller that did not answer) waits a while, or less when the run is
// cancelled, and then looks again. An abort is not an error here: the loop
// checks its signal itself and answers 'cancelled'. (src/data has the opposite
// contract for its retries, `retryDelay` in data/retry-policy.ts: there an
// abort ends the download with the caller's reason. Both are Node's timer
// promise, so the abort listener goes with the timer.)

import { setTimeout as delay } from 'node:timers/promises';

/** Resolves after `ms`, or as soon as `signal` aborts; never rejects on abort. */
export async function waitUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch((err: unknown) => {
    if (!signal?.aborted) throw err;
  });
}
