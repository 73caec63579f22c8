// Errors the commands turn into exit codes, and the codes themselves.

/** The exit codes of smke's commands (docs/runtime.md, "Exit codes"); 70, a bug in smke, is set by bin/smke.js. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** A mistake on the command line (exit 2). */
export class UsageError extends Error {}

/**
 * The project's or the store's files are not as smke left them (a results/
 * that is a file, an unreadable job file): the message says what and how to
 * fix it (exit 1, no stack).
 */
export class SetupError extends Error {
  override name = 'SetupError';
}
