// The terminal renderer: listr2, one line per running stage with its
// progress and ETA; cached instances summarised in one line. Stages that have
// not started have no title, which listr2 does not render, so a plan of
// thousands of instances shows only what is happening.
import type { ListrTaskWrapper } from 'listr2';
import type { RunEvent } from '../events.js';
import { progressText, seconds, shown, type ProgressStart } from './display-text.js';
import type { Renderer } from './renderer.js';

interface Slot {
  resolve: () => void;
  reject: (e: Error) => void;
  task?: ListrTaskWrapper<unknown, never, never>;
  /** The first progress report, from which the ETA is measured. */
  firstProgress?: ProgressStart;
  pending: (() => void)[];
}

export class TtyRenderer implements Renderer {
  private cached = 0;
  private readonly slots = new Map<string, Slot>();
  private readonly queued: string[] = [];
  private run: Promise<unknown> | undefined;
  private summary: string | undefined;
  private readonly warnings: string[] = [];

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {}

  private withTask(id: string, fn: (t: ListrTaskWrapper<unknown, never, never>, s: Slot) => void): void {
    const s = this.slots.get(id);
    if (!s) return;
    if (s.task) fn(s.task, s);
    else s.pending.push(() => fn(s.task!, s));
  }

  private start(): void {
    if (this.run) return;
    const ids = this.queued.splice(0);
    const cached = this.cached;
    this.run = import('listr2').then(async ({ Listr }) => {
      const tasks = [
        { title: cached ? `${cached} cached` : undefined, task: async (): Promise<void> => {} },
        ...ids.map((id) => ({
          task: (_ctx: unknown, task: ListrTaskWrapper<unknown, never, never>): Promise<void> => {
            const s = this.slots.get(id)!;
            s.task = task;
            for (const f of s.pending.splice(0)) f();
            return new Promise<void>((res, rej) => {
              s.resolve = res;
              s.reject = rej;
            });
          },
        })),
      ];
      const listr = new Listr(tasks as never, {
        concurrent: true,
        exitOnError: false,
        rendererOptions: { collapseErrors: false, showErrorMessage: true },
      });
      await listr.run().catch(() => undefined);
    });
  }

  handle(e: RunEvent): void {
    switch (e.type) {
      case 'noop':
        this.cached += e.count;
        break;
      case 'planned':
        if (e.action === 'cached') this.cached++;
        break;
      case 'queued':
        this.queued.push(e.instance);
        this.slots.set(e.instance, { resolve: () => {}, reject: () => {}, pending: [] });
        break;
      case 'started':
        this.start();
        this.withTask(e.instance, (t, s) => {
          s.firstProgress = undefined;
          t.title = `${e.instance}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}${e.gpuIds.length ? ` [GPU ${e.gpuIds.join(',')}]` : ''}`;
        });
        break;
      case 'waiting':
        this.start();
        this.withTask(e.instance, (t) => {
          t.title = `${e.instance} (waiting for another smke run)`;
        });
        break;
      case 'progress':
        this.withTask(e.instance, (t, s) => {
          s.firstProgress ??= { ms: Date.now(), done: e.done };
          t.output = progressText(e.done, e.total, e.unit, s.firstProgress);
        });
        break;
      case 'cached':
        if (e.cutoff)
          this.withTask(e.instance, (t, s) => {
            t.title = `${e.instance} (${e.cutoff})`;
            s.resolve();
          });
        else if (e.reused)
          this.withTask(e.instance, (t, s) => {
            t.title = `${e.instance} (${e.pulled ? 'pulled from the remote cache' : 'reused from another run'})`;
            s.resolve();
          });
        break;
      case 'succeeded':
        this.withTask(e.instance, (t, s) => {
          t.title = `${e.instance} ${seconds(e.seconds)}`;
          s.resolve();
        });
        break;
      case 'failed':
        this.start();
        this.withTask(e.instance, (t, s) => {
          t.title = e.instance;
          s.reject(new Error(`${e.instance}: ${e.error}${e.logPath ? ` — log: ${shown(e.logPath)}` : ''}`));
        });
        break;
      case 'retried':
        this.withTask(e.instance, (t) => {
          t.output = `attempt ${e.attempt} failed (${e.error}); retrying`;
        });
        break;
      case 'skipped':
        // Skipped stages stay hidden: the failure that caused them is shown.
        this.withTask(e.instance, (_t, s) => s.resolve());
        break;
      case 'cancelled':
        this.withTask(e.instance, (t, s) => {
          t.title = e.instance;
          s.reject(new Error(`${e.instance}: cancelled`));
        });
        break;
      case 'warning':
        this.warnings.push(e.message);
        break;
      case 'summary':
        this.start();
        for (const s of this.slots.values()) {
          if (s.task) s.resolve();
          else s.pending.push(() => s.resolve());
        }
        this.summary = e.dryRun
          ? `dry run: ${this.slots.size} would run, ${e.cached} cached`
          : `smke: ${e.ran} ran, ${e.cached} cached, ${e.failed} failed${e.skipped ? `, ${e.skipped} skipped` : ''}` +
            `${e.cancelled ? `, ${e.cancelled} cancelled` : ''} in ${seconds(e.seconds)}`;
        break;
      default:
        break;
    }
  }

  async close(): Promise<void> {
    this.start();
    await this.run;
    for (const w of this.warnings) this.out.write(`warning: ${w}\n`);
    if (this.summary) this.out.write(`${this.summary}\n`);
  }
}
