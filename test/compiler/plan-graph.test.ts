// planGraph: the same graph for a compiled plan and one read back from the plan cache.
import { describe, expect, it } from 'vitest';
import { planGraph } from '../../src/compiler/plan-graph.js';
import { planOf } from './helpers.js';

const SOURCE = `smke 1
stage prep = exec { argv = "echo > {out}/d"  outputs = ["d"] }
stage train = exec { argv = ["cat", prep.d]  after = [prep] }
stage lint = exec { argv = "true"  after = [prep] }
`;

describe('planGraph', () => {
  it('makes an edge that is both a reference and an after a data edge, for compiled and cached plans alike', () => {
    const compiled = planOf(SOURCE);
    // A cached plan is the compiled one through JSON (src/runtime/plancache.ts).
    const cached = JSON.parse(JSON.stringify(compiled)) as typeof compiled;
    for (const plan of [compiled, cached]) {
      const g = planGraph(plan);
      expect(
        g
          .edges()
          .map((e) => `${e.v}->${e.w}:${g.edge(e)!.kind}`)
          .sort(),
      ).toEqual(['prep->lint:after', 'prep->train:data']);
      expect(g.node('train')).toBe(plan.instances.find((i) => i.id === 'train'));
      expect(planGraph(plan)).toBe(g); // built once per plan
    }
  });
});
