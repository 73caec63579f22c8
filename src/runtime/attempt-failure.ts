// Why an attempt did not succeed, as data. Events carry it (`failed`,
// `retried`), the state database keeps it (attempts.failure, as JSON), and
// the words people read are rendered from it here and nowhere else, so a
// renderer, `smke history` and a test can tell a timeout from a crash
// without matching prose.

export type AttemptFailure =
  /** The worker ended without reporting a result. */
  | { kind: 'exit'; code: number | null }
  | { kind: 'signal'; signal: string }
  /** Past `resources.time`: the attempt was stopped. */
  | { kind: 'timeout'; limitS: number }
  /** Another run took the instance's lock over while this attempt held it. */
  | { kind: 'lost-lock' }
  /** The stage finished but did not create these declared outputs (`name (path)`). */
  | { kind: 'missing-output'; outputs: string[] }
  /** The worker reported success, but the store entry is not there or not intact. */
  | { kind: 'bad-entry'; state: 'missing' | 'corrupt' }
  /** A reused entry disappeared between its check and its use. */
  | { kind: 'entry-vanished' }
  | { kind: 'cancelled' }
  /** The executor could not start the job. */
  | { kind: 'not-started'; message: string }
  /** The orchestrator died while the attempt was running (found by the next run). */
  | { kind: 'orchestrator-killed' }
  /** The stage or the executor said what went wrong in words (and rows recorded before this union existed). */
  | { kind: 'error'; message: string };

/** The one place an attempt failure becomes text. */
export function describeFailure(f: AttemptFailure): string {
  switch (f.kind) {
    case 'exit':
      return `the worker exited with code ${f.code} before reporting a result`;
    case 'signal':
      return `the worker was killed by ${f.signal} before reporting a result`;
    case 'timeout':
      return `timed out after ${f.limitS}s (resources.time); stopped`;
    case 'lost-lock':
      return 'the instance lock was taken over by another run';
    case 'missing-output':
      return `declared output(s) not created: ${f.outputs.join(', ')}`;
    case 'bad-entry':
      return `the worker reported success but the store entry is ${f.state}`;
    case 'entry-vanished':
      return 'internal: entry vanished';
    case 'cancelled':
      return 'cancelled';
    case 'not-started':
      return `could not start: ${f.message}`;
    case 'orchestrator-killed':
      return 'the orchestrator was killed';
    case 'error':
      return f.message;
  }
}

const KINDS = new Set<AttemptFailure['kind']>([
  'exit',
  'signal',
  'timeout',
  'lost-lock',
  'missing-output',
  'bad-entry',
  'entry-vanished',
  'cancelled',
  'not-started',
  'orchestrator-killed',
  'error',
]);

/**
 * The failure of a recorded attempt. Rows written before the `failure`
 * column existed (or by a newer smke with kinds this one does not know)
 * have only the text: it is kept as an `error`.
 */
export function failureOfRow(row: { failure?: string | null; error: string | null }): AttemptFailure | undefined {
  if (row.failure) {
    try {
      const f = JSON.parse(row.failure) as { kind?: unknown } | null;
      if (f && typeof f === 'object' && KINDS.has(f.kind as AttemptFailure['kind'])) return f as AttemptFailure;
    } catch {
      // fall through to the text
    }
  }
  return row.error === null ? undefined : { kind: 'error', message: row.error };
}

/** Thrown where a failure is known as data (the worker's output check): the catch reports `failure` as well as the text. */
export class AttemptFailed extends Error {
  constructor(readonly failure: AttemptFailure) {
    super(describeFailure(failure));
  }
}
