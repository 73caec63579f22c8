// The instance graph of a Plan as Graphviz dot, Mermaid or JSON, for
// `smke dag`. Node labels carry the kind and the key parameters.

import { isOutputRef, type Plan, type StageInstance, type Value } from './plan.js';
import { planGraph } from './plan-graph.js';

/**
 * Parameters worth showing on a node: the matrix cell, else the first few
 * parameters that say something (not false, empty or a reference, which the
 * edges already show).
 */
export function keyParams(inst: StageInstance, max = 2): string[] {
  const matrix = Object.entries(inst.matrix);
  if (matrix.length > 0) return matrix.map(([k, v]) => `${k}=${short(v)}`);
  const out: string[] = [];
  for (const [k, v] of Object.entries(inst.params)) {
    if (out.length >= max) break;
    if (v === false || v === null || v === '' || isOutputRef(v)) continue;
    if (typeof v === 'object' && Object.keys(v).length === 0) continue;
    out.push(`${k}=${short(v)}`);
  }
  return out;
}

function short(v: Value): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v, (_k, x: Value) => (isOutputRef(x) ? `${x.$ref.instance}.${x.$ref.output}` : x));
  return s.length > 32 ? `${s.slice(0, 29)}...` : s;
}

function edges(plan: Plan): { from: string; to: string; kind: 'data' | 'after' }[] {
  const graph = planGraph(plan);
  return graph.edges().map((e) => ({ from: e.v, to: e.w, kind: graph.edge(e)?.kind ?? 'data' }));
}

export function toDot(plan: Plan): string {
  const q = (s: string) => JSON.stringify(s);
  const lines = ['digraph smke {', '  rankdir=LR;', '  node [shape=box, fontname="monospace"];'];
  for (const inst of plan.instances) {
    const label = [inst.id, inst.kind, ...keyParams(inst)].join('\n');
    lines.push(`  ${q(inst.id)} [label=${q(label)}];`);
  }
  for (const e of edges(plan)) lines.push(`  ${q(e.from)} -> ${q(e.to)}${e.kind === 'after' ? ' [style=dashed]' : ''};`);
  lines.push('}');
  return lines.join('\n') + '\n';
}

export function toMermaid(plan: Plan): string {
  // Mermaid ids cannot hold brackets or dots, so nodes are numbered.
  const ids = new Map(plan.instances.map((inst, i) => [inst.id, `n${i}`]));
  const esc = (s: string) => s.replace(/"/g, '#quot;');
  const lines = ['flowchart LR'];
  for (const inst of plan.instances) {
    lines.push(`  ${ids.get(inst.id)}["${esc([`<b>${inst.id}</b>`, inst.kind, ...keyParams(inst)].join('<br/>'))}"]`);
  }
  for (const e of edges(plan)) lines.push(`  ${ids.get(e.from)} ${e.kind === 'after' ? '-.->' : '-->'} ${ids.get(e.to)}`);
  return lines.join('\n') + '\n';
}

export function toJson(plan: Plan): string {
  return (
    JSON.stringify(
      {
        file: plan.file,
        profile: plan.profile,
        params: plan.params,
        instances: plan.instances.map((i) => ({
          id: i.id,
          stage: i.stage,
          kind: i.kind,
          matrix: i.matrix,
          params: i.params,
          refs: i.refs,
          after: i.after,
          resources: i.resources,
          retries: i.retries,
          ...(i.executor ? { executor: i.executor } : {}),
        })),
        edges: edges(plan),
      },
      null,
      2,
    ) + '\n'
  );
}
