// `--json`: one JSON object per event on stdout, for tools and CI.
import type { RunEvent } from '../events.js';
import type { Renderer } from './renderer.js';
import { LineBatch } from './line-batch.js';

export class JsonRenderer implements Renderer {
  private readonly lines: LineBatch;
  constructor(out: NodeJS.WritableStream = process.stdout) {
    this.lines = new LineBatch(out);
  }
  handle(e: RunEvent): void {
    this.lines.write(JSON.stringify({ ...e, time: Date.now() }));
  }
  async close(): Promise<void> {
    this.lines.close();
  }
}
