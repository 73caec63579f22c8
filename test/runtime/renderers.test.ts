import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { JsonRenderer } from '../../src/runtime/renderers/json.js';
import { PlainRenderer } from '../../src/runtime/renderers/plain.js';
import { colours, progressText } from '../../src/runtime/renderers/display-text.js';
import type { RunEvent } from '../../src/runtime/events.js';

function sink(isTTY = false) {
  const chunks: string[] = [];
  return {
    isTTY,
    write: (s: string) => {
      chunks.push(s);
      return true;
    },
    text: () => chunks.join(''),
    writes: () => chunks.length,
  } as unknown as NodeJS.WritableStream & { isTTY: boolean; text: () => string; writes: () => number };
}

const run: RunEvent[] = [
  { type: 'planned', instance: 'a', stage: 'a', key: 'k1', action: 'cached', reasons: [] },
  { type: 'planned', instance: 'b', stage: 'b', key: 'k2', action: 'run', reasons: ['param lr: 0.1 -> 0.2'] },
  { type: 'cached', instance: 'a', key: 'k1' },
  { type: 'started', instance: 'b', key: 'k2', attempt: 1, logPath: '/x/.smke/logs/1/b.1.log', gpuIds: [1] },
  { type: 'progress', instance: 'b', done: 5, total: 10, unit: 'steps' },
  { type: 'progress', instance: 'b', done: 6, total: 10, unit: 'steps' },
  { type: 'failed', instance: 'b', key: 'k2', error: 'exec: sh exited with code 2', logPath: '/x/.smke/logs/1/b.1.log', attempt: 1 },
  { type: 'summary', ran: 0, cached: 1, failed: 1, skipped: 0, cancelled: 0, seconds: 1.5, dryRun: false },
];

describe('renderers', () => {
  it('plain: one line per event, cached summarised, failures point at the log, progress throttled', async () => {
    const out = sink();
    const r = new PlainRenderer(out);
    run.forEach((e) => r.handle(e));
    await r.close();
    const lines = out.text().trim().split('\n');
    expect(lines[0]).toBe('plan    b: param lr: 0.1 -> 0.2');
    expect(lines[1]).toBe('cached  1 instance up to date');
    expect(lines[2]).toBe('start   b [GPU 1]');
    expect(lines[3]).toMatch(/^ {8}b: 5\/10 steps \(50%/);
    expect(lines[4]).toMatch(/^FAILED {2}b: exec: sh exited with code 2 — log: \/x\/\.smke\/logs\/1\/b\.1\.log$/);
    expect(lines[5]).toBe('smke: 0 ran, 1 cached, 1 failed in 1.50s');
    expect(lines).toHaveLength(6);
  });

  it('colours only on a terminal and never with NO_COLOR', () => {
    const saved = process.env.NO_COLOR;
    try {
      delete process.env.NO_COLOR;
      expect(colours({ isTTY: true })(31, 'x')).toBe('\x1b[31mx\x1b[0m');
      expect(colours({ isTTY: false })(31, 'x')).toBe('x');
      process.env.NO_COLOR = '1';
      expect(colours({ isTTY: true })(31, 'x')).toBe('x');
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  });

  it('json: every event, one object per line', async () => {
    const out = sink();
    const r = new JsonRenderer(out);
    run.forEach((e) => r.handle(e));
    await r.close();
    const parsed = out
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as RunEvent);
    expect(parsed.map((e) => e.type)).toEqual(run.map((e) => e.type));
  });

  it('lines of one turn of the event loop go out in one write, each turn before the next; close writes what is pending', async () => {
    for (const make of [(o: NodeJS.WritableStream) => new PlainRenderer(o), (o: NodeJS.WritableStream) => new JsonRenderer(o)]) {
      const out = sink();
      const r = make(out);
      run.slice(0, 4).forEach((e) => r.handle(e));
      expect(out.writes()).toBe(0);
      await new Promise((res) => setImmediate(res));
      expect(out.writes()).toBe(1);
      const firstTurn = out.text();
      run.slice(4).forEach((e) => r.handle(e));
      await r.close();
      expect(out.writes()).toBe(2);
      expect(out.text().startsWith(firstTurn)).toBe(true);
      expect(out.text()).toMatch(/1 failed|"failed":1/);
    }
  });

  it('what is pending is written when the process exits without closing the renderer', () => {
    const r = spawnSync(
      process.execPath,
      // dist/ is built before the tests run (npm test).
      [
        '--input-type=module',
        '-e',
        `import { PlainRenderer } from './dist/runtime/renderers/plain.js'; const r = new PlainRenderer(); r.handle({ type: 'warning', message: 'last words' }); process.exit(3);`,
      ],
      { encoding: 'utf8', cwd: new URL('../..', import.meta.url).pathname },
    );
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('warning: last words\n');
  });

  it('progress with ETA', () => {
    expect(progressText(25, 100, 'steps', { ms: 0, done: 0 }, 10_000)).toBe('25/100 steps (25%, ETA 30.0s)');
    expect(progressText(0, 100, undefined, { ms: 0, done: 0 }, 10_000)).toBe('0/100 (0%)');
    // The rate counts from the first report, not the stage's start: 40 s of setup, then 1 s a step.
    expect(progressText(1, 80, 'steps', { ms: 40_000, done: 1 }, 40_000)).toBe('1/80 steps (1%)');
    expect(progressText(11, 80, 'steps', { ms: 40_000, done: 1 }, 50_000)).toBe('11/80 steps (13%, ETA 1m09s)');
  });
});
