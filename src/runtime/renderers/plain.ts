// Plain lines: without a terminal, in CI, or with `--progress plain`. Every
// line stands alone (greppable logs); cached instances are summarised in one
// line, since a no-op run of 10,000 instances must not print 10,000 lines.
import type { RunEvent } from '../events.js';
import { colours, progressText, seconds, shown, type ProgressStart } from './display-text.js';
import type { Renderer } from './renderer.js';
import { LineBatch } from './line-batch.js';

/** At most one progress line per instance per interval. */
const PROGRESS_EVERY_MS = 5000;

export class PlainRenderer implements Renderer {
  private readonly c;
  private cached = 0;
  private cachedShown = false;
  private readonly lastProgress = new Map<string, number>();
  /** Each stage's first progress report, from which its ETA is measured. */
  private readonly firstProgress = new Map<string, ProgressStart>();

  private readonly lines: LineBatch;

  constructor(out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout) {
    this.c = colours(out);
    this.lines = new LineBatch(out);
  }

  private line(s: string): void {
    this.lines.write(s);
  }

  private flushCached(): void {
    if (this.cached > 0 && !this.cachedShown) {
      this.line(`${this.c(2, 'cached ')} ${this.cached} instance${this.cached === 1 ? '' : 's'} up to date`);
      this.cachedShown = true;
    }
  }

  handle(e: RunEvent): void {
    const { c } = this;
    if (e.type === 'noop') {
      this.cached += e.count;
      return;
    }
    if (e.type === 'planned') {
      if (e.action === 'cached') this.cached++;
      else {
        this.toRun++;
        this.line(`${c(36, 'plan   ')} ${e.instance}: ${e.reasons.join('; ')}`);
      }
      return;
    }
    if (e.type === 'cached' && !e.reused && !e.cutoff) return;
    this.flushCached();
    switch (e.type) {
      case 'cached':
        if (e.cutoff) this.line(`${c(2, 'cutoff ')} ${e.instance}: ${e.cutoff}`);
        else if (e.pulled) this.line(`${c(2, 'pulled ')} ${e.instance} from the remote cache`);
        else this.line(`${c(2, 'reused ')} ${e.instance} (finished by another run)`);
        break;
      case 'pushed':
        this.line(`${c(2, 'pushed ')} ${e.instance} to the remote cache`);
        break;
      case 'waiting':
        this.line(`${c(33, 'wait   ')} ${e.instance}: another smke run (${e.holder}) is running it; will reuse its result`);
        break;
      case 'started':
        this.firstProgress.delete(e.instance);
        this.line(`${c(34, 'start  ')} ${e.instance}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}${e.gpuIds.length ? ` [GPU ${e.gpuIds.join(',')}]` : ''}`);
        break;
      case 'progress': {
        const now = Date.now();
        if (!this.firstProgress.has(e.instance)) this.firstProgress.set(e.instance, { ms: now, done: e.done });
        if (now - (this.lastProgress.get(e.instance) ?? 0) < PROGRESS_EVERY_MS) break;
        this.lastProgress.set(e.instance, now);
        this.line(`${c(2, '       ')} ${e.instance}: ${progressText(e.done, e.total, e.unit, this.firstProgress.get(e.instance), now)}`);
        break;
      }
      case 'succeeded':
        this.line(`${c(32, 'done   ')} ${e.instance} in ${seconds(e.seconds)}`);
        break;
      case 'failed':
        this.line(`${c(31, 'FAILED ')} ${e.instance}: ${e.error}${e.logPath ? ` — log: ${shown(e.logPath)}` : ''}`);
        break;
      case 'retried':
        this.line(`${c(33, 'retry  ')} ${e.instance}: attempt ${e.attempt} failed (${e.error}); trying again`);
        break;
      case 'skipped':
        this.line(`${c(2, 'skip   ')} ${e.instance} (${e.because})`);
        break;
      case 'cancelled':
        this.line(`${c(33, 'cancel ')} ${e.instance}`);
        break;
      case 'warning':
        this.line(`${c(33, 'warning:')} ${e.message}`);
        break;
      case 'summary':
        if (e.dryRun) {
          this.line(`dry run: ${this.planned()} would run, ${e.cached} cached`);
        } else {
          this.line(
            `${e.failed ? c(31, 'smke:') : 'smke:'} ${e.ran} ran, ${e.cached} cached, ${e.failed} failed` +
              `${e.skipped ? `, ${e.skipped} skipped` : ''}${e.cancelled ? `, ${e.cancelled} cancelled` : ''} in ${seconds(e.seconds)}`,
          );
        }
        break;
      default:
        break;
    }
  }

  private toRun = 0;
  private planned(): number {
    return this.toRun;
  }

  async close(): Promise<void> {
    this.lines.close();
  }
}
