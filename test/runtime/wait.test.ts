// The two waits and their opposite abort contracts: the runtime's polling wait
// ends quietly on abort (the loop then answers 'cancelled'), while a download
// retry's delay rejects with the caller's reason (the retry loop stops).
// Each abort below comes long before the timer could fire, so a wait that
// ignored the signal would hang the test rather than pass it.
import { describe, expect, it } from 'vitest';
import { retryDelay } from '../../src/data/retry-policy.js';
import { waitUnlessAborted } from '../../src/runtime/wait.js';

const LONG = 600_000;

describe('waitUnlessAborted (runtime)', () => {
  it('resolves, without rejecting, when the signal aborts during the wait', async () => {
    const ac = new AbortController();
    const wait = waitUnlessAborted(LONG, ac.signal);
    ac.abort(new Error('cancelled'));
    await expect(wait).resolves.toBeUndefined();
  });

  it('resolves at once when the signal is already aborted', async () => {
    await expect(waitUnlessAborted(LONG, AbortSignal.abort())).resolves.toBeUndefined();
  });

  it('waits out its time when nothing aborts (with or without a signal)', async () => {
    await expect(waitUnlessAborted(1)).resolves.toBeUndefined();
    await expect(waitUnlessAborted(1, new AbortController().signal)).resolves.toBeUndefined();
  });
});

describe('retryDelay (data)', () => {
  it("rejects with the signal's own reason when it aborts during the wait", async () => {
    const ac = new AbortController();
    const reason = new Error('stage cancelled');
    const wait = retryDelay(LONG, ac.signal);
    ac.abort(reason);
    await expect(wait).rejects.toBe(reason);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const reason = new Error('already cancelled');
    await expect(retryDelay(LONG, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it('resolves when nothing aborts', async () => {
    await expect(retryDelay(1)).resolves.toBeUndefined();
    await expect(retryDelay(1, new AbortController().signal)).resolves.toBeUndefined();
  });
});
