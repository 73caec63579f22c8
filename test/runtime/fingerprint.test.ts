import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StageInstance } from '../../src/compiler/plan.js';
import { parseCacheKey, type CacheKey } from '../../src/runtime/cache-key.js';
import { Digester, MemoryStatCache } from '../../src/runtime/digest.js';
import { diffFingerprints, fingerprint, outputDigest, type Fingerprint } from '../../src/runtime/fingerprint.js';
import { exec, makePlan, ref, tempProject } from './helpers.js';

let proj: { dir: string; cleanup: () => void };
let digester: Digester;
beforeEach(async () => {
  proj = tempProject();
  digester = await Digester.create(new MemoryStatCache());
  mkdirSync(join(proj.dir, 'data'));
  writeFileSync(join(proj.dir, 'data/x.tsv'), 'a\t1\n');
  writeFileSync(join(proj.dir, 'data/y.tsv'), 'b\t2\n');
});
afterEach(() => proj.cleanup());

type Tweak = (up: StageInstance, down: StageInstance) => void;

/** Fingerprints of a two-instance plan (up -> down), after an optional tweak. */
function fps(tweak?: Tweak, env: Record<string, string> = { TOKEN: 'a' }): { up: Fingerprint; down: Fingerprint } {
  const plan = makePlan(proj.dir, [
    { id: 's_smke', kind: 'train.s_smke', kindVersion: 3, params: { lr: 2e-5, steps: 10 }, inputs: ['data/x.tsv'], env: ['TOKEN'] },
    { id: 'eval', params: exec(['eval', ref('s_smke', 'checkpoint')]), resources: { cpus: 1 } },
  ]);
  const [up, down] = plan.instances as [StageInstance, StageInstance];
  tweak?.(up, down);
  const keys = new Map<string, CacheKey>();
  const a = fingerprint({ inst: up, projectDir: proj.dir, upstreamKeys: keys, digester, env });
  keys.set(up.id, a.key);
  const b = fingerprint({ inst: down, projectDir: proj.dir, upstreamKeys: keys, digester, env });
  return { up: a, down: b };
}

describe('fingerprint', () => {
  it('is stable for the same inputs', () => {
    expect(fps().up.key).toBe(fps().up.key);
    expect(fps().up.key).toMatch(/^[0-9a-f]{64}$/);
  });

  const misses: [string, Tweak | 'input' | 'env', string][] = [
    [
      'kind name',
      (u) => {
        u.kind = 'train.other';
      },
      'kind train.s_smke -> train.other',
    ],
    [
      'kind version',
      (u) => {
        u.kindVersion = 4;
      },
      'kind train.s_smke version 3 -> 4',
    ],
    [
      'a param',
      (u) => {
        u.params.lr = 3e-5;
      },
      'param lr: 0.00002 -> 0.00003',
    ],
    [
      'a nested param',
      (u) => {
        u.params.opt = { beta: 1 };
      },
      'param opt: (unset) -> {"beta":1}',
    ],
    [
      'declared inputs',
      (u) => {
        u.inputs = ['data/x.tsv', 'data/y.tsv'];
      },
      'input data/y.tsv added',
    ],
    ['input content', 'input', 'input data/x.tsv changed'],
    ['a declared env value', 'env', 'env TOKEN changed'],
  ];
  for (const [what, tweak, reason] of misses) {
    it(`misses when ${what} changes, and says "${reason}"`, () => {
      const before = fps();
      let after;
      if (tweak === 'input') {
        writeFileSync(join(proj.dir, 'data/x.tsv'), 'a\t9\n');
        after = fps();
      } else if (tweak === 'env') after = fps(undefined, { TOKEN: 'b' });
      else after = fps(tweak);
      expect(after.up.key).not.toBe(before.up.key);
      expect(diffFingerprints(before.up, after.up)).toEqual([reason]);
      // The change propagates: the downstream key changes through the upstream key.
      expect(after.down.key).not.toBe(before.down.key);
      expect(diffFingerprints(before.down, after.down)).toEqual(['upstream s_smke changed']);
    });
  }

  it('misses when the store format changes', () => {
    const a = fps().up;
    const b = { ...a, parts: { ...a.parts, storeFormat: a.parts.storeFormat + 1 } };
    expect(diffFingerprints(a, b)).toEqual([`store format ${a.parts.storeFormat} -> ${a.parts.storeFormat + 1}`]);
  });

  it('does not miss for resources, retries, executor, or the input file being touched', () => {
    const before = fps();
    const t = new Date(Date.now() - 60_000);
    utimesSync(join(proj.dir, 'data/x.tsv'), t, t);
    const after = fps((u, d) => {
      u.resources = { cpus: 16, gpus: 8, memBytes: 1 << 30, timeSeconds: 3600 };
      u.retries = 5;
      u.executor = 'slurm';
      d.retries = 2;
      d.resources.gpus = 1;
    });
    expect(after.up.key).toBe(before.up.key);
    expect(after.down.key).toBe(before.down.key);
  });

  it('until the upstream output is known, holds a pending placeholder with the upstream key, not its name or path', () => {
    const { up, down } = fps();
    expect(down.parts.params.argv).toEqual(['eval', { $upstream: up.key, output: 'checkpoint' }]);
    expect(down.pending).toEqual(['s_smke']);
    expect(up.pending).toBeUndefined();
    expect(down.upstream).toEqual({ s_smke: up.key });
    expect(down.symbolic.argv).toEqual(['eval', 's_smke.checkpoint']);
  });

  it('keys on the content of the upstream output it reads once that is known (early cutoff)', () => {
    const plan = makePlan(proj.dir, [
      { id: 'up', params: { n: 1 } },
      { id: 'down', params: exec(['eval', ref('up', 'checkpoint')]) },
    ]);
    const [up, down] = plan.instances as [StageInstance, StageInstance];
    const keyWith = (upKey: string, content: string): Fingerprint =>
      fingerprint({
        inst: down,
        projectDir: proj.dir,
        upstreamKeys: new Map([[up.id, parseCacheKey(upKey.repeat(64), 'test')]]),
        upstreamOutput: () => content,
        digester,
        env: {},
      });
    const a = keyWith('1', 'd1');
    expect(a.pending).toBeUndefined();
    expect(a.parts.params.argv).toEqual(['eval', { $output: 'd1', output: 'checkpoint' }]);
    // Another upstream key, same bytes: same key. Same upstream key, other bytes: another key, and the reason says so.
    expect(keyWith('2', 'd1').key).toBe(a.key);
    const b = keyWith('1', 'd2');
    expect(b.key).not.toBe(a.key);
    expect(diffFingerprints(a, b)).toEqual(["upstream up's output changed"]);
    // A param changed and the bytes read did not: the param is the reason, not the upstream's output.
    const withParam = (p: string, content: string): Fingerprint =>
      fingerprint({
        inst: { ...down, params: exec(['eval', ref('up', 'checkpoint'), p]) },
        projectDir: proj.dir,
        upstreamKeys: new Map([[up.id, parseCacheKey('1'.repeat(64), 'test')]]),
        upstreamOutput: () => content,
        digester,
        env: {},
      });
    expect(diffFingerprints(withParam('x', 'd1'), withParam('y', 'd1'))).toEqual(['param argv[2]: x -> y']);
    expect(diffFingerprints(withParam('x', 'd1'), withParam('y', 'd2'))).toEqual(['param argv[2]: x -> y', "upstream up's output changed"]);
  });

  it("digests an output by the files under its path, not smke's own files", () => {
    const files = [
      { path: 'ckpt/w.bin', digest: 'aa' },
      { path: 'ckpt/meta.json', digest: 'bb' },
      { path: 'log.txt', digest: 'cc' },
      { path: '_smke/manifest.json', digest: '' },
      { path: 'ckpt2', digest: 'dd' },
    ];
    const ckpt = outputDigest(files, 'ckpt');
    expect(outputDigest([...files].reverse(), 'ckpt')).toBe(ckpt);
    expect(
      outputDigest(
        files.map((f) => (f.path === 'log.txt' ? { ...f, digest: 'ee' } : f)),
        'ckpt',
      ),
    ).toBe(ckpt);
    expect(
      outputDigest(
        files.map((f) => (f.path === 'ckpt/w.bin' ? { ...f, digest: 'ee' } : f)),
        'ckpt',
      ),
    ).not.toBe(ckpt);
    // 'ckpt2' is not under 'ckpt/'; the manifest is never part of an output.
    expect(
      outputDigest(
        files.filter((f) => f.path !== 'ckpt2'),
        'ckpt',
      ),
    ).toBe(ckpt);
    expect(
      outputDigest(
        files.filter((f) => !f.path.startsWith('_smke')),
        '.',
      ),
    ).toBe(outputDigest(files, '.'));
    expect(outputDigest(files, 'log.txt')).not.toBe(outputDigest(files, 'ckpt2'));
  });

  it('digests directories and globs by content', () => {
    const one = fps((u) => {
      u.inputs = ['data'];
    }).up;
    const glob = fps((u) => {
      u.inputs = ['data/*.tsv'];
    }).up;
    expect(Object.keys(glob.parts.inputs)).toEqual(['data/x.tsv', 'data/y.tsv']);
    writeFileSync(join(proj.dir, 'data/z.tsv'), 'c\n');
    const one2 = fps((u) => {
      u.inputs = ['data'];
    }).up;
    const glob2 = fps((u) => {
      u.inputs = ['data/*.tsv'];
    }).up;
    expect(one2.key).not.toBe(one.key);
    expect(diffFingerprints(one, one2)).toEqual(['input data changed']);
    expect(diffFingerprints(glob, glob2)).toEqual(['input data/z.tsv added']);
  });

  it('refuses a missing input with a message naming it', () => {
    expect(() =>
      fps((u) => {
        u.inputs = ['data/nope.tsv'];
      }),
    ).toThrow(/input 'data\/nope.tsv' does not exist/);
    expect(() =>
      fps((u) => {
        u.inputs = ['data/*.csv'];
      }),
    ).toThrow(/matches no file/);
  });
});
