// Errors the commands turn into exit codes.

/** A mistake on the command line (exit 2). */
export class UsageError extends Error {}
