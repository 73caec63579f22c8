// Errors the commands turn into exit codes.

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
