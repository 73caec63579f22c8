// Secrets, class 2: values a stage is given (exec `secret_env`, a kind's
// declared env) must reach the program but never the key, manifests,
// state.db, snapshots, job files or anything smke prints.
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fingerprint } from '../../src/runtime/fingerprint.js';
import { Digester } from '../../src/runtime/digest.js';
import { makePlan } from '../runtime/helpers.js';
import { filesContaining, project, type Project } from './secrets-project.js';

const TOKEN = 'ghp_ExecSecretValue_0123456789abcdef';
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

let p: Project;
beforeEach(() => {
  p = project('smke-adv-execenv-');
});
afterEach(() => p.cleanup());

// The program proves it got the token by writing its hash, never the token itself.
const PIPELINE = `smke 1
stage fetch = exec {
  argv = ["sh", "-c", "printf %s \\"$API_TOKEN\\" | sha256sum | cut -c1-64 > {out}/h.txt"]
  secret_env = ["API_TOKEN"]
  env = { MODE = "fast" }
  outputs = ["h.txt"]
}
stage use = exec {
  argv = ["sh", "-c", "cat \\"$0\\" > {out}/u.txt; echo \\"[$API_TOKEN]\\" >> {out}/u.txt", fetch.h]
  outputs = ["u.txt"]
}
`;

describe('exec secret_env', { timeout: 240_000 }, () => {
  it('passes the value to the program, and to nothing else: no file, no output of run/status/explain/history/log', () => {
    p.write('p.smke', PIPELINE);
    const outs: string[] = [];
    const run = (args: string[], env: Record<string, string> = { API_TOKEN: TOKEN }) => {
      const r = p.smke(args, env);
      outs.push(r.out, r.err);
      return r;
    };
    const r = run(['run', 'p.smke', '--progress', 'plain']);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(p.dir, 'results/fetch/h.txt'), 'utf8').trim()).toBe(sha(TOKEN));
    // A stage that did not ask for it does not see it.
    expect(readFileSync(join(p.dir, 'results/use/u.txt'), 'utf8')).toContain('[]');
    run(['run', 'p.smke', '--json']);
    run(['status', 'p.smke']);
    run(['status', 'p.smke', '--json']);
    const ex = run(['explain', 'p.smke', 'fetch']);
    expect(ex.out).toMatch(/API_TOKEN <secret>/);
    expect(run(['explain', 'p.smke', 'fetch'], {}).out).toMatch(/API_TOKEN \(unset\)/);
    run(['history']);
    run(['history', '--json']);
    run(['log', 'fetch']);
    for (const o of outs) expect(o).not.toContain(TOKEN);
    expect(filesContaining(join(p.dir, '.smke'), TOKEN)).toEqual([]);
  });

  it('keeps the value out of the key: a rotated token reruns nothing; the name is in the key', () => {
    p.write('p.smke', PIPELINE);
    expect(p.smke(['run', 'p.smke', '--progress', 'plain'], { API_TOKEN: TOKEN }).code).toBe(0);
    const key = readlinkSync(join(p.dir, 'results/fetch'));
    const again = p.smke(['run', 'p.smke', '--progress', 'plain', '--no-plan-cache'], { API_TOKEN: `${TOKEN}-rotated` });
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/0 ran, 2 cached/);
    expect(readlinkSync(join(p.dir, 'results/fetch'))).toBe(key);
    // Naming another secret is a different stage.
    p.write('p.smke', PIPELINE.replace('secret_env = ["API_TOKEN"]', 'secret_env = ["API_TOKEN", "OTHER_TOKEN"]'));
    const st = p.smke(['status', 'p.smke'], { API_TOKEN: TOKEN });
    expect(st.out).toMatch(/fetch\s+will run/);
  });

  it('fails the stage with a clear message when a declared secret is not set', () => {
    p.write('p.smke', PIPELINE);
    const r = p.smke(['run', 'p.smke', '--progress', 'plain'], { API_TOKEN: undefined });
    expect(r.code).toBe(1);
    const log = p.smke(['log', 'fetch']);
    expect(log.out + r.err + r.out).toMatch(/secret_env names API_TOKEN, which is not set in smke's environment/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('hides the value in what the program prints, also when it is split across writes', () => {
    p.write(
      'p.smke',
      `smke 1
stage leak = exec {
  argv = ["sh", "-c", "echo token=$API_TOKEN; printf %s $(printf %s $API_TOKEN | cut -c1-10); sleep 0.3; printf %s $API_TOKEN | cut -c11-; echo err:$API_TOKEN: >&2"]
  secret_env = ["API_TOKEN"]
}
`,
    );
    const r = p.smke(['run', 'p.smke', '--progress', 'plain'], { API_TOKEN: TOKEN });
    expect(r.code, r.err).toBe(0);
    const log = p.smke(['log', 'leak']).out;
    expect(log).toContain('token=<secret>');
    expect(log).toContain('err:<secret>:');
    expect(log.split('<secret>').length - 1).toBe(3);
    expect(filesContaining(join(p.dir, '.smke'), TOKEN)).toEqual([]);
  });

  it('the filtered output neither hangs on a background child holding it nor hides the exit code', () => {
    p.write(
      'p.smke',
      `smke 1
stage bg = exec {
  argv = ["sh", "-c", "echo hi $API_TOKEN; sleep 600 & echo started"]
  secret_env = ["API_TOKEN"]
}
stage bad = exec {
  argv = ["sh", "-c", "echo bye $API_TOKEN >&2; exit 3"]
  secret_env = ["API_TOKEN"]
}
`,
    );
    // A run that waited for the background child (600 s) fails on the test's timeout: no wall-clock bound.
    const r = p.smke(['run', 'p.smke', '-k', '--progress', 'plain'], { API_TOKEN: TOKEN });
    expect(r.code).toBe(1);
    expect(r.out + r.err).toMatch(/sh exited with code 3/);
    expect(p.smke(['log', 'bg']).out).toMatch(/hi <secret>\nstarted/);
    expect(p.smke(['log', 'bad']).out).toMatch(/bye <secret>/);
  });

  it('the filter matches a plain replace for any way of cutting the stream', async () => {
    const { redactor } = await import('../../src/stages/exec/redact.js');
    const secrets = ['abcabd', 'xyzw', 'aé€b'];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let trial = 0; trial < 200; trial++) {
      const parts = ['abcab', 'abcabd', 'xyz', 'xyzw', 'aé€b', 'aé', '€', 'q', '\n', 'abcabcabd'];
      let text = '';
      for (let i = 0; i < 12; i++) text += parts[rnd(parts.length)];
      const bytes = Buffer.from(text);
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length;) {
        const n = 1 + rnd(5);
        chunks.push(bytes.subarray(i, i + n));
        i += n;
      }
      const t = redactor(secrets);
      const out: string[] = [];
      t.on('data', (d: Buffer | string) => out.push(String(d)));
      const ended = new Promise((res) => t.on('end', res));
      for (const c of chunks) t.write(c);
      t.end();
      await ended;
      const want = secrets.reduce((s, v) => s.split(v).join('<secret>'), text);
      expect(out.join(''), JSON.stringify(text)).toBe(want);
    }
  });

  it('warns when a credential-shaped name is given a value through env = {...} instead', () => {
    p.write(
      'p.smke',
      `smke 1
stage s = exec {
  argv = ["true"]
  env = { WANDB_API_KEY = "k", AWS_SECRET_ACCESS_KEY = "a", MAX_TOKENS = "5", TOKENIZERS_PARALLELISM = "false" }
}
`,
    );
    expect(p.smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    const log = p.smke(['log', 's']).out;
    expect(log).toMatch(/env WANDB_API_KEY looks like a credential.*use secret_env = \["WANDB_API_KEY"\]/);
    expect(log).toMatch(/env AWS_SECRET_ACCESS_KEY looks like a credential/);
    expect(log).not.toMatch(/MAX_TOKENS|TOKENIZERS_PARALLELISM/);
  });

  it('rejects a secret_env entry that is not a variable name, at compile time', () => {
    for (const bad of ['"API TOKEN"', '"1X"', '"A=B"', '""']) {
      p.write('p.smke', PIPELINE.replace('secret_env = ["API_TOKEN"]', `secret_env = [${bad}]`));
      const r = p.smke(['check', 'p.smke']);
      expect(r.code, bad).toBe(1);
      expect(r.err + r.out, bad).toMatch(/E0012.*secret_env/s);
    }
  });
});

describe('declared environment variables in the key', { timeout: 240_000 }, () => {
  it('are digests in the fingerprint parts (hence manifests, state.db, snapshots), null when unset', async () => {
    const plan = makePlan(p.dir, [{ id: 'a', params: { argv: ['true'] }, env: ['SMKE_MIRROR', 'UNSET_ONE'] }]);
    const digester = await Digester.create();
    const fp = fingerprint({
      inst: plan.instances[0]!,
      projectDir: p.dir,
      upstreamKeys: new Map(),
      digester,
      env: { SMKE_MIRROR: 'https://user:pass@mirror.example' },
    });
    expect(fp.parts.env.SMKE_MIRROR).toBe(`sha256:${sha('https://user:pass@mirror.example')}`);
    expect(fp.parts.env.UNSET_ONE).toBeNull();
    expect(JSON.stringify(fp.parts)).not.toContain('pass@mirror');
    const other = fingerprint({ inst: plan.instances[0]!, projectDir: p.dir, upstreamKeys: new Map(), digester, env: { SMKE_MIRROR: 'https://other' } });
    const empty = fingerprint({
      inst: plan.instances[0]!,
      projectDir: p.dir,
      upstreamKeys: new Map(),
      digester,
      env: { SMKE_MIRROR: 'https://user:pass@mirror.example', UNSET_ONE: '' },
    });
    expect(other.key).not.toBe(fp.key);
    expect(empty.key).not.toBe(fp.key);
  });
});
