// Prefetching: running a producer ahead of its consumer, with bounded memory.

/**
 * Run `source` ahead of its consumer, holding at most `depth` finished items:
 * the producer (decoding) overlaps with the consumer (training) but cannot run away with memory.
 */
export async function* prefetch<T>(source: AsyncIterable<T>, depth: number): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  const queue: Promise<IteratorResult<T>>[] = [];
  const pull = () => {
    const p = it.next();
    p.catch(() => {});
    queue.push(p);
  };
  try {
    for (let k = 0; k < Math.max(1, depth); k++) pull();
    for (;;) {
      const r = await queue.shift()!;
      if (r.done) return;
      pull();
      yield r.value;
    }
  } finally {
    await Promise.allSettled(queue);
    await it.return?.(undefined);
  }
}

/** A counting semaphore (global and per-host limits in the scraper). */
export class Semaphore {
  private waiting: (() => void)[] = [];
  private active = 0;

  constructor(private readonly limit: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    };
  }
}
