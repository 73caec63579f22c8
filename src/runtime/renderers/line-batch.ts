// Lines for stdout, written once per turn of the event loop instead of once
// per line. Writing to a pipe is synchronous and wakes the reader: one write
// per event cost about a millisecond of the orchestrator's time per stage on
// a busy 2-core machine (two to four lines per stage), as much as the rest of
// its bookkeeping. A line waits at most for the current turn to end, and
// everything pending is written before the process exits.

export class LineBatch {
  private pending = '';
  private scheduled = false;
  private readonly flushOnExit = (): void => this.flush();

  constructor(private readonly out: NodeJS.WritableStream) {
    process.once('exit', this.flushOnExit);
  }

  write(line: string): void {
    this.pending += `${line}\n`;
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Write everything pending now. */
  flush(): void {
    this.scheduled = false;
    if (!this.pending) return;
    const text = this.pending;
    this.pending = '';
    this.out.write(text);
  }

  /** Flush, and stop watching for the process's exit. */
  close(): void {
    this.flush();
    process.removeListener('exit', this.flushOnExit);
  }
}
