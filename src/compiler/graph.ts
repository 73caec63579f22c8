// Ordering the instance graph: a deterministic topological order (Kahn's
// algorithm, ties broken by declaration order) and, when that fails, the
// cycles written as paths. Iterative throughout: 100k-node graphs must not
// touch the stack limit.

/** Edges by node index; `from` feeds `to`. */
export interface IndexGraph {
  size: number;
  succ: number[][];
}

/** Nodes in topological order; nodes on or behind a cycle are left out. */
export function topoOrder(g: IndexGraph): number[] {
  const indeg = new Int32Array(g.size);
  for (const outs of g.succ) for (const t of outs) indeg[t]!++;
  const heap = new MinHeap();
  for (let i = 0; i < g.size; i++) if (indeg[i] === 0) heap.push(i);
  const order: number[] = [];
  while (heap.size > 0) {
    const n = heap.pop();
    order.push(n);
    for (const t of g.succ[n]!) if (--indeg[t]! === 0) heap.push(t);
  }
  return order;
}

/**
 * Up to `limit` distinct cycles among the nodes not in `ordered`, each as a
 * node path whose last node is its first.
 */
export function findCycles(g: IndexGraph, ordered: number[], limit = 5): number[][] {
  const done = new Uint8Array(g.size);
  for (const n of ordered) done[n] = 2;
  const state = new Uint8Array(g.size); // 0 unvisited, 1 on stack, 2 finished
  state.set(done);
  const cycles: number[][] = [];
  for (let root = 0; root < g.size && cycles.length < limit; root++) {
    if (state[root] !== 0) continue;
    const stack: { node: number; next: number }[] = [{ node: root, next: 0 }];
    state[root] = 1;
    while (stack.length > 0 && cycles.length < limit) {
      const top = stack[stack.length - 1]!;
      const outs = g.succ[top.node]!;
      if (top.next >= outs.length) {
        state[top.node] = 2;
        stack.pop();
        continue;
      }
      const t = outs[top.next++]!;
      if (state[t] === 1) {
        const from = stack.findIndex((f) => f.node === t);
        const path = stack.slice(from).map((f) => f.node);
        path.push(t);
        cycles.push(path);
        // Finish this cycle's nodes so that the same cycle is not found twice.
      } else if (state[t] === 0) {
        state[t] = 1;
        stack.push({ node: t, next: 0 });
      }
    }
    for (const f of stack) state[f.node] = 2;
  }
  return cycles;
}

class MinHeap {
  private readonly a: number[] = [];

  get size(): number {
    return this.a.length;
  }

  push(v: number): void {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= v) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = v;
  }

  pop(): number {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const c = r < a.length && a[r]! < a[l]! ? r : l;
        if (a[c]! >= last) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}
