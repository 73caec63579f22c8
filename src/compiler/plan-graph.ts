// The instance graph of a plan, built when first asked for (`smke dag`, tests)
// and kept: the runtime works from instances and their refs, and neither a
// compile (graphlib's setNode/setEdge were a quarter of a 100k-stage compile)
// nor a no-op run (loading graphlib is a few milliseconds of its start) pays
// for it otherwise. Compiled and cached plans get the same graph.
import { Graph } from '@dagrejs/graphlib';
import type { Plan, StageInstance } from './plan.js';

/** Node id = instance id, node label = StageInstance; edge upstream -> downstream. */
export type PlanGraph = Graph<unknown, StageInstance, { kind: 'data' | 'after' }>;

const graphs = new WeakMap<Plan, PlanGraph>();

/** An edge that is both a reference and an `after` is a data edge. */
export function planGraph(plan: Plan): PlanGraph {
  let graph = graphs.get(plan);
  if (!graph) {
    graph = new Graph<unknown, StageInstance, { kind: 'data' | 'after' }>({ directed: true });
    for (const i of plan.instances) graph.setNode(i.id, i);
    for (const i of plan.instances) {
      for (const r of i.refs) graph.setEdge(r.instance, i.id, { kind: 'data' });
      for (const a of i.after) if (!graph.hasEdge(a, i.id)) graph.setEdge(a, i.id, { kind: 'after' });
    }
    graphs.set(plan, graph);
  }
  return graph;
}
