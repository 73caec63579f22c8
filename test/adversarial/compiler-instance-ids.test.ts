// Instance id collisions: matrix values holding the id's own
// separators must not make two cells share an id (one would never run and
// the run would report success). Ids are unique by construction; what is
// left (a string and a number written alike) is a compile error.
import { describe, expect, it } from 'vitest';
import { resolveNames } from '../../src/runtime/analyse.js';
import { compileText, planOf } from '../compiler/helpers.js';

/** The values of an id `name[v1,v2]`: bare words or JSON strings, split at top-level commas. */
function parseId(id: string): { stage: string; values: (string | number | boolean)[] } {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)\[(.*)\]$/s.exec(id);
  if (!m) throw new Error(`not a matrix id: ${id}`);
  const values: (string | number | boolean)[] = [];
  const inner = m[2]!;
  let i = 0;
  while (i <= inner.length) {
    if (inner[i] === '"') {
      let j = i + 1;
      while (inner[j] !== '"') j += inner[j] === '\\' ? 2 : 1;
      values.push(JSON.parse(inner.slice(i, j + 1)) as string);
      i = j + 1;
    } else {
      let j = inner.indexOf(',', i);
      if (j === -1) j = inner.length;
      const word = inner.slice(i, j);
      expect(word).not.toMatch(/[\s"[\]*]/);
      values.push(word);
      i = j;
    }
    if (i < inner.length) expect(inner[i]).toBe(',');
    i++;
  }
  return { stage: m[1]!, values };
}

const axisText = (vs: unknown[]) => `[${vs.map((v) => JSON.stringify(v)).join(', ')}]`;

describe('matrix ids are unique by construction', () => {
  it('separators inside values: the issue example and its mirror', () => {
    const plan = planOf(`smke 1\nstage s[a in ${axisText(['a,b', 'a'])}, b in ${axisText(['c', 'b,c'])}] = exec { argv = ["echo", "\${a}", "\${b}"] }\n`);
    const ids = plan.instances.map((i) => i.id);
    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);
    expect(ids).toContain('s["a,b","b,c"]');
    expect(ids).toContain('s[a,c]');
    // Every id reads back as the cell's own values.
    for (const inst of plan.instances) {
      const { values } = parseId(inst.id);
      expect(values).toEqual(Object.values(inst.matrix).map(String));
    }
  });

  const hostile = ['x]', '[x', 'x"y', 'x\\y', 'a b', '', '*', 'x\ny', 'a,', ',', '"', 'é', '\t', 'a]b[c', 'plain'];
  it('hostile values on three axes: every cell its own id, each id parseable', () => {
    const plan = planOf(`smke 1\nstage s[a in ${axisText(hostile)}, b in ${axisText(hostile.slice(0, 5))}, c in [1, 2.5, true]] = exec { argv = ["true"] }\n`);
    expect(plan.instances).toHaveLength(hostile.length * 5 * 3);
    expect(new Set(plan.instances.map((i) => i.id)).size).toBe(plan.instances.length);
    for (const inst of plan.instances) {
      const { values } = parseId(inst.id);
      expect(values.map(String)).toEqual(Object.values(inst.matrix).map(String));
    }
  });

  it('a string and a number written alike are refused with both spans (E0023)', () => {
    const pairs: [string, string][] = [
      ['"1"', '1'],
      ['true', '"true"'],
      ['"2.5"', '2.5'],
      ['"0.1"', '0.1'],
    ];
    for (const [a, b] of pairs) {
      const r = compileText(`smke 1\nstage s[v in [${a}, ${b}]] = exec { argv = ["true"] }\n`);
      expect(r.plan).toBeUndefined();
      const d = r.diagnostics.find((x) => x.code === 'E0023');
      expect(d, r.rendered).toBeDefined();
      expect(d!.span!.column).toBe(15 + a.length + 2);
      expect(d!.labels?.[0]?.span.column).toBe(15);
    }
  });

  it('the same value twice stays a duplicate (E0007), also through a parameter', () => {
    expect(compileText('smke 1\nstage s[v in ["a,b", "a,b"]] = exec { argv = ["true"] }\n').diagnostics.map((d) => d.code)).toContain('E0007');
    const r = compileText('smke 1\nparam vs = ["1", 1]\nstage s[v in vs] = exec { argv = ["true"] }\n');
    expect(
      r.diagnostics.map((d) => d.code),
      r.rendered,
    ).toContain('E0023');
  });

  it('selections reach the right cell when values hold separators', () => {
    const plan = planOf(`smke 1
stage s[a in ["a,b", "a"], b in ["c", "b,c"]] = exec { argv = ["sh", "-c", "echo > {out}/o"], outputs = ["o"] }
stage one = exec { argv = ["cat", s["a,b", "c"].o] }
stage other = exec { argv = ["cat", s["a", "b,c"].o] }
stage some = exec { argv = ["cat"] + s["a,b", *].o }
`);
    const byId = new Map(plan.instances.map((i) => [i.id, i]));
    expect(byId.get('one')!.refs.map((r) => r.instance)).toEqual(['s["a,b",c]']);
    expect(byId.get('other')!.refs.map((r) => r.instance)).toEqual(['s[a,"b,c"]']);
    expect(byId.get('some')!.refs.map((r) => r.instance)).toEqual(['s["a,b",c]', 's["a,b","b,c"]']);
  });

  it('ids are accepted where ids are given (--only, --force, explain): exactly one cell each', () => {
    const plan = planOf(`smke 1\nstage s[a in ["a,b", "a", "x]"], b in ["c", "b,c"]] = exec { argv = ["true"] }\n`);
    for (const inst of plan.instances) expect([...resolveNames(plan, [inst.id])]).toEqual([inst.id]);
    expect(resolveNames(plan, ['s']).size).toBe(6);
    expect(() => resolveNames(plan, ['s[a,b,c]'])).toThrow(/no stage or instance named/);
  });

  it('no two instances share an id across a big generated matrix of near-collisions', () => {
    const vals = ['', ',', ',,', 'a', 'a,', ',a', 'a,a', '"', '""', '[', ']', '[]'];
    const plan = planOf(`smke 1\nstage s[x in ${axisText(vals)}, y in ${axisText(vals)}, z in ${axisText(vals)}] = exec { argv = ["true"] }\n`);
    expect(plan.instances).toHaveLength(vals.length ** 3);
    expect(new Set(plan.instances.map((i) => i.id)).size).toBe(vals.length ** 3);
  });
});
