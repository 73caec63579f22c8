// `smke diff` and `smke history --metrics` end to end: real runs of a real
// pipeline whose exec stages write metrics files.
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempProject } from './helpers.js';

const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-diff-');
});
afterEach(() => proj.cleanup());

function smke(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: proj.dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// `train` turns lr into an accuracy; `eval` reads train's model; `report` is the last stage.
const PIPELINE = `smke 1
param lr = 0.1

stage data = exec {
  argv = ["sh", "-c", "seq 1 10 > {out}/rows.txt"]
  outputs = { rows = "rows.txt" }
}

stage train[seed in [1, 2]] = exec {
  argv = ["sh", "-c", "echo \\"{\\\\\\"acc\\\\\\": $(echo \${lr} \${seed} | awk '{print $1 * 2 + $2 / 100}'), \\\\\\"loss\\\\\\": {\\\\\\"final\\\\\\": 0.5}, \\\\\\"note\\\\\\": \\\\\\"x\\\\\\"}\\" > {out}/m.json; cp \\"$1\\" {out}/model", "t", data.rows]
  outputs = { model = "model" }
  metrics = "m.json"
}

stage report = exec {
  argv = ["sh", "-c", "echo '{\\"rows\\": 2}' > {out}/r.json", "r"] + train[*].model
  metrics = "r.json"
}
`;

describe('smke diff', () => {
  it('names the instances that changed with the reason, and every metric that differs, as text and JSON', () => {
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    const r2 = smke(['run', 'p.smke', '--progress', 'plain', '--set', 'lr=0.3']);
    expect(r2.code, r2.err).toBe(0);

    const d = smke(['diff']);
    expect(d.code, d.err).toBe(0);
    expect(d.out).toMatch(/^run 1 -> run 2: 3 instances differ, 1 the same/);
    expect(d.out).toMatch(/train\[1\]\s+reran: param argv\[2\]: .*0\.1.* -> .*0\.3/);
    expect(d.out).toMatch(/report\s+reran: upstream train\[1\] changed; upstream train\[2\] changed/);
    expect(d.out).not.toMatch(/^\s+data\s/m);
    // 0.1*2 + 1/100 = 0.21 -> 0.3*2 + 0.01 = 0.61; the nested loss and the report's rows did not change.
    expect(d.out).toMatch(/train\[1\]\.acc\s+0\.21\s+0\.61\s+0\.4/);
    expect(d.out).toMatch(/train\[2\]\.acc\s+0\.22\s+0\.62\s+0\.4/);
    expect(d.out).not.toMatch(/loss\.final/);
    expect(d.out).not.toMatch(/report\.rows/);

    const j = JSON.parse(smke(['diff', '1', '2', '--json']).out) as {
      instances: { instance: string; change: string; reasons: string[] }[];
      metrics: { instance: string; metric: string; a: number; b: number }[];
    };
    expect(j.instances.find((i) => i.instance === 'data')!.change).toBe('same');
    expect(j.instances.find((i) => i.instance === 'train[2]')!.change).toBe('changed');
    expect(j.metrics).toEqual([
      { instance: 'train[1]', metric: 'acc', a: 0.21, b: 0.61 },
      { instance: 'train[2]', metric: 'acc', a: 0.22, b: 0.62 },
    ]);

    // Back to lr=0.1: everything comes from the store, and the diff against run 2 says so.
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    const back = smke(['diff']);
    expect(back.out).toMatch(/^run 2 -> run 3: 3 instances differ/);
    expect(back.out).toMatch(/train\[1\]\s+changed \(from the store\): param argv\[2\]/);
    // One run named: compared with the one before it.
    expect(smke(['diff', '2']).out).toMatch(/^run 1 -> run 2:/);
    // A run that repeated the last one (the no-op fast path) differs in nothing.
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    expect(smke(['diff']).out).toMatch(/^run 3 -> run 4: 0 instances differ, 4 the same\nno metric differs/);
  });

  it('history --metrics shows the last stages by default, and any metric by pattern', () => {
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    expect(smke(['run', 'p.smke', '--progress', 'plain', '--set', 'lr=0.3']).code).toBe(0);
    const h = smke(['history', '--metrics']);
    expect(h.code, h.err).toBe(0);
    expect(h.out.match(/metrics {2}report\.rows=2\n/g)).toHaveLength(2);
    const p = smke(['history', '--metrics', 'train*.acc']);
    expect(p.out).toMatch(/metrics {2}train\[1\]\.acc=0\.61 {2}train\[2\]\.acc=0\.62/);
    expect(p.out).toMatch(/metrics {2}train\[1\]\.acc=0\.21 {2}train\[2\]\.acc=0\.22/);
    const json = smke(['history', '--json', '--metrics', '*.loss.final'])
      .out.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { metrics: Record<string, number> });
    expect(json[0]!.metrics).toEqual({ 'train[1].loss.final': 0.5, 'train[2].loss.final': 0.5 });
  });

  it('says what to do when there is nothing to compare, a run is unknown, or an entry was collected', () => {
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    const none = smke(['diff']);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no runs recorded here/);
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    expect(smke(['diff']).err).toMatch(/only one finished run is recorded here: run the pipeline twice/);
    expect(smke(['diff', '1', '7']).err).toMatch(/no run 7 is recorded here/);
    expect(smke(['diff', 'x']).code).toBe(2);

    expect(smke(['run', 'p.smke', '--progress', 'plain', '--set', 'lr=0.3']).code).toBe(0);
    // The first run's train entries are removed by hand: the diff still lists them, and says why it cannot compare parts.
    const j = JSON.parse(smke(['diff', '--json']).out) as { instances: { instance: string; keyA: string }[] };
    rmSync(join(proj.dir, '.smke/store', j.instances.find((i) => i.instance === 'train[1]')!.keyA), { recursive: true, force: true });
    expect(smke(['diff']).out).toMatch(/train\[1\]\s+reran: the store entry of run 1 is gone \(smke gc\)/);
  });

  it('a metrics file that is missing or not an object fails the stage with the file named', () => {
    writeFileSync(
      join(proj.dir, 'p.smke'),
      'smke 1\nstage a = exec {\n  argv = ["sh", "-c", "echo [1] > {out}/m.json"]\n  metrics = "m.json"\n}\nstage b = exec {\n  argv = ["true"]\n  metrics = "none.json"\n}\n',
    );
    const r = smke(['run', 'p.smke', '--progress', 'plain', '-k']);
    expect(r.code).toBe(1);
    expect(r.out + r.err).toMatch(/metrics file \{out\}\/m\.json must hold a JSON object/);
    expect(r.out + r.err).toMatch(/metrics file \{out\}\/none\.json was not created/);
  });
});
