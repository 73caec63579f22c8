// Picks the renderer for a command line: --json, --progress, or the terminal.
import type { Renderer } from './renderer.js';
import { JsonRenderer } from './json.js';
import { PlainRenderer } from './plain.js';
import { TtyRenderer } from './tty.js';

export type { Renderer } from './renderer.js';

export function chooseRenderer(opts: { json?: boolean; progress?: string }): Renderer {
  if (opts.json) return new JsonRenderer();
  const tty = process.stdout.isTTY === true && process.env.CI === undefined;
  if (opts.progress === 'tty' || (opts.progress === undefined && tty)) return new TtyRenderer();
  return new PlainRenderer();
}
