// `--json`: one JSON object per event on stdout, for tools and CI.
import type { RunEvent } from '../events.js';
import type { Renderer } from './renderer.js';

export class JsonRenderer implements Renderer {
  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}
  handle(e: RunEvent): void {
    this.out.write(`${JSON.stringify({ ...e, time: Date.now() })}\n`);
  }
  async close(): Promise<void> {}
}
