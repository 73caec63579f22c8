import { describe, expect, it } from 'vitest';
import { Scheduler, type Grant, type Outcome, type Task } from '../../src/runtime/scheduler.js';

const res = (gpus = 0, cpus = 1) => ({ cpus, gpus, memBytes: 0, timeSeconds: 0 });
const task = (id: string, deps: string[] = [], gpus = 0, retries = 0): Task => ({ id, deps, resources: res(gpus), retries });
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('scheduler', () => {
  it('never gives one GPU to two running tasks, and never overlaps two 1-GPU tasks on a 1-GPU pool', async () => {
    const s = new Scheduler({ jobs: 8, keepGoing: false, pools: { cpus: 8, gpus: 1, memBytes: 1e12 } });
    let onGpu = 0;
    let maxOnGpu = 0;
    const grants: number[][] = [];
    const r = await s.run([task('g1', [], 1), task('g2', [], 1), task('c1'), task('c2')], {
      async run(t, _a, g: Grant): Promise<Outcome> {
        if (t.resources.gpus) {
          grants.push(g.gpuIds);
          onGpu++;
          maxOnGpu = Math.max(maxOnGpu, onGpu);
          await tick(20);
          onGpu--;
        } else await tick(5);
        return { status: 'succeeded' };
      },
    });
    expect(maxOnGpu).toBe(1);
    expect(grants).toEqual([[0], [0]]);
    expect([...r.values()].every((v) => v === 'succeeded')).toBe(true);
  });

  it('hands out distinct device indexes on a multi-GPU pool', async () => {
    const s = new Scheduler({ jobs: 8, keepGoing: false, pools: { cpus: 8, gpus: 3, memBytes: 1e12 } });
    const held = new Set<number>();
    let clash = false;
    const seen: number[][] = [];
    await s.run([task('a', [], 2), task('b', [], 1), task('c', [], 1), task('d', [], 2)], {
      async run(_t, _a, g) {
        for (const i of g.gpuIds) {
          if (held.has(i)) clash = true;
          held.add(i);
        }
        seen.push(g.gpuIds);
        await tick(10);
        for (const i of g.gpuIds) held.delete(i);
        return { status: 'succeeded' };
      },
    });
    expect(clash).toBe(false);
    expect(seen).toHaveLength(4);
    expect(seen.flat().every((i) => i >= 0 && i < 3)).toBe(true);
  });

  it('fails a task that needs more GPUs than the pool, with advice', async () => {
    const s = new Scheduler({ jobs: 2, keepGoing: true, pools: { cpus: 2, gpus: 0, memBytes: 1e12 } });
    const errors: string[] = [];
    const r = await s.run([task('big', [], 2), task('after', ['big']), task('other')], {
      run: async () => ({ status: 'succeeded' }),
      onFail: (_t, e) => errors.push(e),
    });
    expect(r.get('big')).toBe('failed');
    expect(r.get('after')).toBe('skipped');
    expect(r.get('other')).toBe('succeeded');
    expect(errors[0]).toMatch(/needs 2 GPU\(s\) but the pool has 0: pass --gpus N/);
  });

  it('respects -j and dependency order', async () => {
    const s = new Scheduler({ jobs: 2, keepGoing: false, pools: { cpus: 64, gpus: 0, memBytes: 1e12 } });
    let running = 0;
    let max = 0;
    const order: string[] = [];
    await s.run([task('a'), task('b'), task('c'), task('d', ['a', 'b', 'c']), task('e', ['d'])], {
      async run(t) {
        running++;
        max = Math.max(max, running);
        await tick(5);
        order.push(t.id);
        running--;
        return { status: 'succeeded' };
      },
    });
    expect(max).toBe(2);
    expect(order.slice(3)).toEqual(['d', 'e']);
  });

  it('stops launching after a failure without keep-going, goes on with independent branches with it', async () => {
    const tasks = [task('bad'), task('child', ['bad']), task('x1'), task('x2', ['x1']), task('x3', ['x2'])];
    const run = async (t: Task): Promise<Outcome> => {
      await tick(t.id === 'bad' ? 1 : 10);
      return t.id === 'bad' ? { status: 'failed', error: 'boom' } : { status: 'succeeded' };
    };
    const skipped: string[] = [];
    const stop = await new Scheduler({ jobs: 2, keepGoing: false, pools: { cpus: 2, gpus: 0, memBytes: 1e12 } }).run(tasks, {
      run,
      onSkip: (t, because) => skipped.push(`${t.id}: ${because}`),
    });
    expect(skipped).toEqual([
      'child: bad failed',
      'x2: not started after a failure (-k keeps going with independent stages)',
      'x3: not started after a failure (-k keeps going with independent stages)',
    ]);
    expect(stop.get('bad')).toBe('failed');
    expect(stop.get('child')).toBe('skipped');
    expect(stop.get('x1')).toBe('succeeded'); // already running: it finishes
    expect(stop.get('x3')).toBe('skipped');
    const go = await new Scheduler({ jobs: 2, keepGoing: true, pools: { cpus: 2, gpus: 0, memBytes: 1e12 } }).run(tasks, { run });
    expect(go.get('child')).toBe('skipped');
    expect(go.get('x3')).toBe('succeeded');
  });

  it('retries a failed task with the next attempt number', async () => {
    const attempts: number[] = [];
    const retried: number[] = [];
    const r = await new Scheduler({ jobs: 1, keepGoing: false, pools: { cpus: 1, gpus: 0, memBytes: 1e12 } }).run([task('flaky', [], 0, 2)], {
      async run(_t, attempt) {
        attempts.push(attempt);
        return attempt < 3 ? { status: 'failed', error: `try ${attempt}` } : { status: 'succeeded' };
      },
      onRetry: (_t, a) => retried.push(a),
    });
    expect(attempts).toEqual([1, 2, 3]);
    expect(retried).toEqual([1, 2]);
    expect(r.get('flaky')).toBe('succeeded');
  });

  it('on cancel stops launching and aborts what runs', async () => {
    const s = new Scheduler({ jobs: 1, keepGoing: false, pools: { cpus: 1, gpus: 0, memBytes: 1e12 } });
    const started: string[] = [];
    const p = s.run([task('a'), task('b'), task('c', ['a'])], {
      run: (t, _a, _g, signal) =>
        new Promise<Outcome>((resolve) => {
          started.push(t.id);
          signal.addEventListener('abort', () => resolve({ status: 'cancelled' }));
        }),
    });
    await tick(10);
    s.cancel();
    const r = await p;
    expect(started).toEqual(['a']);
    expect(r.get('a')).toBe('cancelled');
    expect(r.get('b')).toBe('cancelled');
    expect(r.get('c')).toBe('skipped');
  });

  it('caps cpus and memory requests at the pool instead of deadlocking', async () => {
    const s = new Scheduler({ jobs: 4, keepGoing: false, pools: { cpus: 2, gpus: 0, memBytes: 1000 } });
    const r = await s.run([{ id: 'huge', deps: [], retries: 0, resources: { cpus: 64, gpus: 0, memBytes: 1e9, timeSeconds: 0 } }], {
      run: async (_t, _a, g) => (g.cpus === 2 && g.memBytes === 1000 ? { status: 'succeeded' } : { status: 'failed', error: 'grant' }),
    });
    expect(r.get('huge')).toBe('succeeded');
  });
});
