// Every construct of the language, compiled to a Plan and checked value by value.
import { describe, expect, it } from 'vitest';
import { isOutputRef } from '../../src/compiler/plan.js';
import { planGraph } from '../../src/compiler/plan-graph.js';
import { codes, compileText, planOf } from './helpers.js';

const ref = (instance: string, output: string) => ({ $ref: { instance, output } });
const inst = (plan: ReturnType<typeof planOf>, id: string) => {
  const i = plan.instances.find((x) => x.id === id);
  if (!i) throw new Error(`no instance ${id} in ${plan.instances.map((x) => x.id).join(', ')}`);
  return i;
};

describe('values and expressions', () => {
  it('evaluates literals, units, arithmetic, concatenation and interpolation', () => {
    const plan = planOf(`smke 1
# comments anywhere
param n = 2 + 3 * 4        # precedence: 14
param m = (2 + 3) * 4 % 7  # 20 % 7 = 6
param neg = -n + 1
param f = 3e-5
param size = 10GB
param ksize = 2KiB
param dur = 2h + 30m
param s = "a" + 1 + "b"
param l = [1, 2,] + [3]
param map = { a = 1, "b c" = [true, false, null], }
param t = "\${s}/x\\t\\"q\\" \\\${literal}"
param later = early * 2
param early = 21
param bytes = 1.5MB
`);
    expect(plan.params).toEqual({
      n: 14,
      m: 6,
      neg: -13,
      f: 3e-5,
      size: 10e9,
      ksize: 2048,
      dur: 9000,
      s: 'a1b',
      l: [1, 2, 3],
      map: { a: 1, 'b c': [true, false, null] },
      t: 'a1b/x\t"q" ${literal}',
      later: 42,
      early: 21,
      bytes: 1.5e6,
    });
  });

  it('reads multi-line strings with the common indentation removed and backslashes kept', () => {
    const plan = planOf(`smke 1
param who = "world"
param script = """
    echo hello \${who}
      echo "indented" \\n stays
    """
`);
    expect(plan.params.script).toBe('echo hello world\n  echo "indented" \\n stays\n');
  });

  it('takes env() values, typed by the default, and the default when unset', () => {
    const text = `smke 1
param data = env("DATA", "data")
param steps = env("STEPS", 100)
param other = env("OTHER", 5)
`;
    expect(planOf(text, { env: {} }).params).toEqual({ data: 'data', steps: 100, other: 5 });
    expect(planOf(text, { env: { DATA: '/d', STEPS: '200', OTHER: 'five' } }).params).toEqual({ data: '/d', steps: 200, other: 'five' });
  });

  it('reports arithmetic on a reference, division by zero and unknown functions', () => {
    expect(
      codes(`smke 1
param z = 1 / 0
stage a = exec { argv = ["x"] }
stage b = exec { argv = [a.out + "/f"] }
param q = len([1])
`),
    ).toEqual(['E0013', 'E0013', 'E0016']);
  });

  it('reports every syntax error of a file, not only the first', () => {
    const r = compileText(`smke 1
stage a = exec { argv = ["x" }
stage b = exec { argv = ["y"] shell = }
stage c = exec { argv = [1 2] }
`);
    const syntax = r.diagnostics.filter((d) => d.code === 'E0001');
    expect(syntax.length).toBeGreaterThanOrEqual(3);
    expect(new Set(syntax.map((d) => d.span!.line))).toEqual(new Set([2, 3, 4]));
  });

  it('reports a parameter cycle as a path', () => {
    const r = compileText('smke 1\nparam a = b + 1\nparam b = c\nparam c = a\n');
    expect(r.diagnostics.map((d) => d.message)).toEqual(['parameter cycle: a -> b -> c -> a']);
  });

  it('says where a required version line is missing or unsupported', () => {
    expect(codes('stage a = exec { argv = ["x"] }\n')).toEqual(['E0003']);
    expect(codes('smke 2\n')).toEqual(['E0003']);
    expect(codes('')).toEqual(['E0003']);
  });
});

describe('stages', () => {
  it('builds an exec stage with defaults filled in, inputs and resources', () => {
    const plan = planOf(`smke 1
stage prep = exec {
  argv = ["python", "prep.py", "{out}"]
  inputs = ["prep.py", "data/*.tsv"]
  outputs = { train = "train.tsv", test = "test.tsv" }
  resources { cpus = 2, gpus = 1, mem = 16GB, time = 90m }
  retries = 2
  executor = "slurm"
}
`);
    const p = inst(plan, 'prep');
    expect(p.kind).toBe('exec');
    expect(p.kindVersion).toBe(1);
    expect(p.params).toEqual({
      argv: ['python', 'prep.py', '{out}'],
      inputs: ['prep.py', 'data/*.tsv'],
      outputs: { train: 'train.tsv', test: 'test.tsv' },
      shell: false,
      env: {},
      cwd: '.',
    });
    expect(p.inputs).toEqual(['prep.py', 'data/*.tsv']);
    expect(p.resources).toEqual({ cpus: 2, gpus: 1, memBytes: 16e9, timeSeconds: 5400 });
    expect(p.retries).toBe(2);
    expect(p.executor).toBe('slurm');
    expect(p.span).toMatchObject({ file: 'main.smke', line: 2, column: 7 });
  });

  it('turns references into OutputRefs and edges, ordered upstream first', () => {
    const plan = planOf(`smke 1
stage report = exec { argv = ["cat", train.model, prep.train] }
stage train = exec { argv = ["train", prep.train], outputs = { model = "m.bin" } }
stage prep = exec { argv = ["prep"], outputs = ["train.tsv"] }
stage lint = exec { argv = ["lint"], after = [prep] }
`);
    expect(plan.instances.map((i) => i.id)).toEqual(['prep', 'train', 'report', 'lint']);
    expect(inst(plan, 'report').params.argv).toEqual(['cat', ref('train', 'model'), ref('prep', 'train')]);
    expect(inst(plan, 'report').refs).toEqual([
      { instance: 'train', output: 'model' },
      { instance: 'prep', output: 'train' },
    ]);
    expect(inst(plan, 'lint').after).toEqual(['prep']);
    const graph = planGraph(plan);
    const edges = graph.edges().map((e) => `${e.v}->${e.w}:${graph.edge(e)!.kind}`);
    expect(edges.sort()).toEqual(['prep->lint:after', 'prep->report:data', 'prep->train:data', 'train->report:data']);
    expect(graph.node('train')).toBe(inst(plan, 'train'));
  });

  it('orders independent stages by declaration, deterministically', () => {
    const text = `smke 1
${Array.from({ length: 30 }, (_, i) => `stage s${(i * 7) % 30} = exec { argv = ["x"${i % 3 === 0 && i > 0 ? `, s${((i - 3) * 7) % 30}.out` : ''}] }`).join('\n')}
`;
    const a = planOf(text).instances.map((i) => i.id);
    expect(planOf(text).instances.map((i) => i.id)).toEqual(a);
    const pos = new Map(a.map((id, i) => [id, i]));
    for (const i of planOf(text).instances) for (const r of i.refs) expect(pos.get(r.instance)!).toBeLessThan(pos.get(i.id)!);
  });

  it('reports a dependency cycle through several stages with a label at each edge', () => {
    const r = compileText(`smke 1
stage a = exec { argv = ["x", c.out] }
stage b = exec { argv = ["x", a.out] }
stage c = exec { argv = ["x"], after = [b] }
`);
    expect(r.diagnostics).toHaveLength(1);
    const d = r.diagnostics[0]!;
    expect(d.message).toBe('dependency cycle: a -> b -> c -> a');
    expect([d.span!.line, ...d.labels!.map((l) => l.span.line)]).toEqual([3, 4, 2]);
  });

  it('suggests names for unknown stages, params, kinds and outputs', () => {
    const r = compileText(`smke 1
param width = 3
stage prepare = exec { argv = ["x"], outputs = { table = "t.tsv" } }
stage a = exec { argv = ["x", prepar.out, prepare.tabel, "\${widht}"] }
stage b = exce { argv = ["x"] }
`);
    expect(r.diagnostics.map((d) => [d.code, d.help])).toEqual([
      ['E0008', 'did you mean `prepare`?'],
      ['E0010', 'did you mean `table`?'],
      ['E0008', 'did you mean `width`?'],
      ['E0009', 'did you mean `exec`?'],
    ]);
  });

  it('rejects resources and settings of the wrong kind', () => {
    expect(
      codes(`smke 1
stage a = exec { argv = ["x"], resources { cpus = 0, gpus = 1.5, time = 4GB, disk = 1 } }
stage b = exec { argv = ["x"], executor = 3, retries = 1.5, env { A = "b" } }
stage c = exec { argv = ["x"], resources = 3 }
`),
    ).toEqual(['E0017', 'E0017', 'E0017', 'E0017', 'E0021', 'E0021', 'E0021', 'E0017']);
  });

  it('accepts only the executors smke has, with a did-you-mean', () => {
    const r = compileText(`smke 1
stage a = exec { argv = ["x"], executor = "kubernetes" }
stage b = exec { argv = ["x"], executor = "slrum" }
stage c = exec { argv = ["x"], executor = "local" }
`);
    expect(r.diagnostics.map((d) => [d.code, d.message, d.help])).toEqual([
      ['E0021', 'unknown executor `kubernetes`', expect.stringContaining('the executors are `"local"` and `"slurm"`')],
      ['E0021', 'unknown executor `slrum`', expect.stringContaining('slurm')],
    ]);
  });

  it('reports duplicates of every sort', () => {
    expect(
      codes(`smke 1
param p = 1
param p = 2
stage a = exec { argv = ["x"], argv = ["y"] }
stage m[x in [1, 1]] = exec { argv = ["x"] }
stage n[x in [1], x in [2]] = exec { argv = ["x"] }
param map = { k = 1, k = 2 }
`),
    ).toEqual(['E0007', 'E0007', 'E0007', 'E0007', 'E0007']);
  });
});

describe('matrix stages', () => {
  const sweep = `smke 1
param lrs = [0.1, 0.01]
stage glue[task in ["cola", "sst2", "mrpc"]] = exec {
  argv = ["ft", "\${task}"]
  outputs = { metrics = "m.json" }
}
stage sweep[lr in lrs, seed in [1, 2, 3]] = exec {
  argv = ["train", "--lr", "\${lr}", "--seed", "\${seed}"]
  outputs = { metrics = "m.json" }
}
stage eval[task in ["cola", "sst2"]] = exec { argv = ["eval", glue[task].metrics] }
stage table = exec { argv = ["table"] + glue[*].metrics }
stage one = exec { argv = ["one", glue[cola].metrics, sweep[0.01, 3].metrics] }
stage seeds = exec { argv = ["seeds"] + sweep[*, 2].metrics }
`;

  it('expands one axis and the cartesian product of two, first axis outermost', () => {
    const plan = planOf(sweep);
    const ids = plan.instances.map((i) => i.id);
    expect(ids.filter((i) => i.startsWith('glue'))).toEqual(['glue[cola]', 'glue[sst2]', 'glue[mrpc]']);
    expect(ids.filter((i) => i.startsWith('sweep'))).toEqual([
      'sweep[0.1,1]',
      'sweep[0.1,2]',
      'sweep[0.1,3]',
      'sweep[0.01,1]',
      'sweep[0.01,2]',
      'sweep[0.01,3]',
    ]);
    const cell = inst(plan, 'sweep[0.01,2]');
    expect(cell.stage).toBe('sweep');
    expect(cell.matrix).toEqual({ lr: 0.01, seed: 2 });
    expect(cell.params.argv).toEqual(['train', '--lr', '0.01', '--seed', '2']);
  });

  it('addresses instances one by one, by wildcard, and by the current cell', () => {
    const plan = planOf(sweep);
    expect(inst(plan, 'eval[sst2]').params.argv).toEqual(['eval', ref('glue[sst2]', 'metrics')]);
    expect(inst(plan, 'table').params.argv).toEqual(['table', ...['cola', 'sst2', 'mrpc'].map((t) => ref(`glue[${t}]`, 'metrics'))]);
    expect(inst(plan, 'one').params.argv).toEqual(['one', ref('glue[cola]', 'metrics'), ref('sweep[0.01,3]', 'metrics')]);
    expect(inst(plan, 'seeds').params.argv).toEqual(['seeds', ref('sweep[0.1,2]', 'metrics'), ref('sweep[0.01,2]', 'metrics')]);
    expect(planGraph(plan).predecessors('table')!.sort()).toEqual(['glue[cola]', 'glue[mrpc]', 'glue[sst2]']);
  });

  it('reports bad selections', () => {
    const r = compileText(`${sweep}
stage bad1 = exec { argv = ["x", glue[qqp].metrics] }
stage bad2 = exec { argv = ["x", sweep[0.1].metrics] }
stage bad3 = exec { argv = ["x", table[1].out] }
stage bad4 = exec { argv = ["x", glue.metrics] }
stage bad5 = exec { argv = ["x", glue[*]] }
stage bad6[a in []] = exec { argv = ["x"] }
`);
    expect(r.diagnostics.map((d) => d.code)).toEqual(['E0015', 'E0015', 'E0015', 'E0015', 'E0010', 'E0013']);
  });

  it('looks a map parameter up by key, so each instance can take its own setting', () => {
    const text = `smke 1
param lr_cola = 0.001
param lrs = { cola = lr_cola, sst2 = 0.002 }
stage g[task in ["cola", "sst2"]] = exec { argv = ["x", "\${task}"], env = { LR = "" + lrs[task] } }
stage h = exec { argv = ["x", "" + lrs[sst2], "" + lrs["cola"]] }
`;
    const plan = planOf(text, { set: { lr_cola: '0.003' } });
    expect(inst(plan, 'g[cola]').params.env).toEqual({ LR: '0.003' });
    expect(inst(plan, 'g[sst2]').params.env).toEqual({ LR: '0.002' });
    expect(inst(plan, 'h').params.argv).toEqual(['x', '0.002', '0.003']);
    const bad = compileText(text.replace('lrs[sst2]', 'lrs[sts2]').replace('lrs["cola"]', 'lrs[*]'));
    expect(bad.diagnostics.map((d) => d.code)).toEqual(['E0015', 'E0015']);
    expect(bad.rendered).toContain('has no key `sts2`');
  });
});

describe('profiles and --set', () => {
  const text = `smke 1
param steps = 100
param width = 64
param label = "w\${width}"
param spare = 0
profile mini default { param steps = 10 }
profile paper {
  param steps = 1000
  param width = 768
  stage teacher = exec { argv = ["download", "teacher"], outputs = { model = "t.bin" }, resources { gpus = 1 } }
}
stage teacher = exec { argv = ["train-teacher", "\${steps}"], outputs = { model = "t.bin" } }
stage student = exec { argv = ["train", teacher.model, "\${steps}", label] }
`;

  it('applies the default profile when none is chosen', () => {
    const plan = planOf(text);
    expect(plan.profile).toBe('mini');
    expect(plan.params).toEqual({ steps: 10, width: 64, label: 'w64', spare: 0 });
    expect(inst(plan, 'teacher').params.argv).toEqual(['train-teacher', '10']);
  });

  it('applies a chosen profile: overrides and whole-stage replacements, same DAG shape', () => {
    const plan = planOf(text, { profile: 'paper' });
    expect(plan.params).toEqual({ steps: 1000, width: 768, label: 'w768', spare: 0 });
    expect(inst(plan, 'teacher').params.argv).toEqual(['download', 'teacher']);
    expect(inst(plan, 'teacher').resources.gpus).toBe(1);
    expect(inst(plan, 'student').params.argv).toEqual(['train', ref('teacher', 'model'), '1000', 'w768']);
  });

  it('applies --set after the profile, reading values as literals where possible', () => {
    const plan = planOf(text, { set: { steps: '5', width: '2KiB', label: 'plain text' } });
    expect(plan.params).toEqual({ steps: 5, width: 2048, label: 'plain text', spare: 0 });
    expect(planOf(text, { set: { spare: '[1, "a", -2h]' } }).params.spare).toEqual([1, 'a', -7200]);
    expect(planOf(text, { set: { spare: '"quoted"' } }).params.spare).toBe('quoted');
    expect(planOf(text, { set: { spare: 'x + 1' } }).params.spare).toBe('x + 1');
    expect(planOf(text, { set: { spare: 'true' } }).params.spare).toBe(true);
    expect(planOf(text, { set: { spare: '' } }).params.spare).toBe('');
  });

  it('reports unknown profiles and --set names with suggestions', () => {
    const r = compileText(text, { profile: 'papr', set: { stpes: '1' } });
    expect(r.diagnostics.map((d) => [d.code, d.help])).toEqual([
      ['E0011', 'did you mean `paper`?'],
      ['E0019', 'did you mean `steps`?'],
    ]);
  });

  it('requires a default profile when profiles are declared', () => {
    expect(codes('smke 1\nprofile a { }\nprofile b { }\n')).toEqual(['E0018']);
    expect(planOf('smke 1\nprofile a { }\n', { profile: 'a' }).profile).toBe('a');
  });
});

describe('imports', () => {
  it('reads imports relative to the importing file and shares their declarations', () => {
    const plan = planOf('smke 1\nimport "lib/a.smke"\nstage main = exec { argv = ["x", shared.out, "${base}"] }\n', {
      files: {
        'lib/a.smke': 'smke 1\nimport "b.smke"\nstage shared = exec { argv = ["x", "${base}"] }\n',
        'lib/b.smke': 'smke 1\nparam base = "data"\n',
      },
    });
    expect(plan.instances.map((i) => i.id)).toEqual(['shared', 'main']);
    expect(inst(plan, 'main').params.argv).toEqual(['x', ref('shared', 'out'), 'data']);
    expect(plan.sources.map((s) => s.path.split('/').slice(-2).join('/'))).toEqual(
      ['x/main.smke', 'lib/a.smke', 'lib/b.smke'].map((p, i) => (i === 0 ? plan.sources[0]!.path.split('/').slice(-2).join('/') : p)),
    );
    expect(plan.sources.every((s) => /^[0-9a-f]{64}$/.test(s.sha256))).toBe(true);
  });

  it('imports a shared file once when two files import it', () => {
    const plan = planOf('smke 1\nimport "a.smke"\nimport "b.smke"\n', {
      files: { 'a.smke': 'smke 1\nimport "c.smke"\n', 'b.smke': 'smke 1\nimport "c.smke"\n', 'c.smke': 'smke 1\nstage c = exec { argv = ["x"] }\n' },
    });
    expect(plan.instances.map((i) => i.id)).toEqual(['c']);
  });

  it('reports an import cycle with the chain', () => {
    const r = compileText('smke 1\nimport "a.smke"\n', { files: { 'a.smke': 'smke 1\nimport "main.smke"\n' } });
    expect(r.diagnostics.map((d) => d.message)).toEqual(['import cycle: main.smke -> a.smke -> main.smke']);
  });
});

describe('the plan', () => {
  it('records the project directory, the absolute file and no OutputRef outside params', () => {
    const r = compileText('smke 1\nstage a = exec { argv = ["x"] }\n');
    expect(r.plan!.file).toBe(`${r.plan!.projectDir}/main.smke`);
    expect(r.plan!.profile).toBe('');
    expect(isOutputRef(r.plan!.instances[0]!.params.argv)).toBe(false);
  });
});

describe('docs/language.md', () => {
  it('has examples that all compile', async () => {
    const { readFileSync } = await import('node:fs');
    const md = readFileSync(new URL('../../docs/language.md', import.meta.url), 'utf8');
    const blocks = [...md.matchAll(/```smke\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    for (const b of blocks) planOf(b, { files: { 'lib/common.smke': 'smke 1\n' } });
  });
});

describe('duplicate detection in long lists', () => {
  it('finds a repeated key among many, reporting each repeat against the first', () => {
    const keys = Array.from({ length: 30 }, (_, i) => `k${i} = ${i}`);
    keys.push('k7 = 99', 'k7 = 100');
    const line = `param m = { ${keys.join(', ')} }`;
    const r = compileText(`smke 1\n${line}\n`);
    const first = line.indexOf('k7 =') + 1;
    const again = [line.indexOf('k7 = 99') + 1, line.indexOf('k7 = 100') + 1];
    expect(r.diagnostics.map((d) => [d.code, d.span!.column, d.labels![0]!.span.column])).toEqual([
      ['E0007', again[0], first],
      ['E0007', again[1], first],
    ]);
  });
});
