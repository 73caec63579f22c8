// Ordering the instance graph: a deterministic topological order (Kahn's
// algorithm, ties broken by declaration order) and, when that fails, the
// cycles written as paths. Iterative throughout: 100k-node graphs must not
// touch the stack limit.

/**
 * Edges by node index, in compressed form: the successors of node `n` are
 * `succ[start[n]]` up to (not including) `succ[start[n + 1]]`. Two typed
 * arrays instead of an array per node: a 100k-node graph is two allocations.
 */
export interface IndexGraph {
  size: number;
  start: Int32Array;
  succ: Int32Array;
}

/** The graph of edges `from[e] -> to[e]`; each node's successors keep the edges' order. */
export function indexGraph(size: number, from: readonly number[], to: readonly number[]): IndexGraph {
  const start = new Int32Array(size + 1);
  for (const f of from) start[f + 1]!++;
  for (let n = 0; n < size; n++) start[n + 1]! += start[n]!;
  const fill = start.slice(0, size);
  const succ = new Int32Array(from.length);
  for (let e = 0; e < from.length; e++) succ[fill[from[e]!]!++] = to[e]!;
  return { size, start, succ };
}

/** Nodes in topological order; nodes on or behind a cycle are left out. */
export function topoOrder(g: IndexGraph): number[] {
  const indeg = new Int32Array(g.size);
  for (const t of g.succ) indeg[t]!++;
  const heap = new MinHeap();
  for (let i = 0; i < g.size; i++) if (indeg[i] === 0) heap.push(i);
  const order: number[] = [];
  while (heap.size > 0) {
    const n = heap.pop();
    order.push(n);
    for (let e = g.start[n]!; e < g.start[n + 1]!; e++) {
      const t = g.succ[e]!;
      if (--indeg[t]! === 0) heap.push(t);
    }
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
      const end = g.start[top.node + 1]!;
      if (g.start[top.node]! + top.next >= end) {
        state[top.node] = 2;
        stack.pop();
        continue;
      }
      const t = g.succ[g.start[top.node]! + top.next++]!;
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
