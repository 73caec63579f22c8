import type { RunEvent } from '../events.js';

export interface Renderer {
  handle(e: RunEvent): void;
  /** Resolves once everything is written (listr2 finishes asynchronously). */
  close(): Promise<void>;
}
