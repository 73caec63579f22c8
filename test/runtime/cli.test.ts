// The commands end to end: real .smke files, the compiler, `node bin/smke.js`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempProject } from './helpers.js';

const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-cli-');
});
afterEach(() => proj.cleanup());

function smke(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: proj.dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const PIPELINE = `smke 1
param lr = 0.1

stage prep = exec {
  argv = ["sh", "-c", "cat data.txt > {out}/clean.txt"]
  inputs = ["data.txt"]
  outputs = { clean = "clean.txt" }
}

stage train = exec {
  argv = ["sh", "-c", "echo lr=\${lr} >> {out}/model.txt; cat \\"$1\\" >> {out}/model.txt", "train", prep.clean]
  outputs = { model = "model.txt" }
}
`;

describe('smke run / status / explain / log / history / gc / verify', () => {
  it('runs, caches, explains why, and prints the log', () => {
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    writeFileSync(join(proj.dir, 'data.txt'), 'rows\n');
    const r1 = smke(['run', 'p.smke', '--progress', 'plain']);
    expect(r1.err).toBe('');
    expect(r1.code).toBe(0);
    expect(r1.out).toMatch(/plan\s+prep: never run/);
    expect(r1.out).toMatch(/smke: 2 ran, 0 cached, 0 failed in/);
    expect(readFileSync(join(proj.dir, 'results/train/model.txt'), 'utf8')).toBe('lr=0.1\nrows\n');
    expect(existsSync(join(proj.dir, '.smke/plans'))).toBe(true);

    const r2 = smke(['run', 'p.smke', '--progress', 'plain']);
    expect(r2.out).toMatch(/cached\s+2 instances up to date/);
    expect(r2.out).toMatch(/smke: 0 ran, 2 cached, 0 failed/);

    const st = smke(['status', 'p.smke', '--set', 'lr=0.2']);
    expect(st.code).toBe(0);
    expect(st.out).toMatch(/prep\s+cached/);
    expect(st.out).toMatch(/train\s+will run\s+[0-9a-f]{12}\s+param argv\[2\]: .*lr=0\.1.* -> .*lr=0\.2/);

    writeFileSync(join(proj.dir, 'data.txt'), 'more rows\n');
    const ex = smke(['explain', 'p.smke', 'prep']);
    expect(ex.code).toBe(0);
    expect(ex.out).toMatch(/status\s+will run: input data.txt changed/);
    expect(ex.out).toMatch(/\*\s+data.txt\s+[0-9a-f]{16}\s+\(changed\)/);
    expect(ex.out).toMatch(/not in the key: resources, executor, retries, log level/);

    const dry = smke(['run', 'p.smke', '--dry-run', '--progress', 'plain']);
    expect(dry.out).toMatch(/plan\s+prep: input data.txt changed/);
    expect(dry.out).toMatch(/plan\s+train: upstream prep changed/);
    expect(dry.out).toMatch(/dry run: 2 would run, 0 cached/);

    const log = smke(['log', 'train']);
    expect(log.code).toBe(0);
    expect(log.err).toMatch(/# train, run 1, attempt 1, succeeded/);
    const hist = smke(['history']);
    expect(hist.out).toMatch(/run 2 .* succeeded\s+0 ran, 2 cached, 0 failed/);
    expect(hist.out).toMatch(/run 1 .* succeeded\s+2 ran, 0 cached, 0 failed/);
  });

  it('a no-op begins its stat check early on the hint the last run with the same arguments left, and a stale hint changes no answer', () => {
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    writeFileSync(join(proj.dir, 'data.txt'), 'rows\n');
    const past = (f: string): void => utimesSync(join(proj.dir, f), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    past('data.txt'); // (an input modified within the racy window keeps a run from writing a snapshot)
    const hint = (): { argv: string[]; statList: string } => JSON.parse(readFileSync(join(proj.dir, '.smke/plans/early-check.json'), 'utf8')) as never;
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    expect(hint().argv).toEqual(['p.smke', '--progress', 'plain']); // left by the run that wrote the snapshot
    expect(existsSync(hint().statList)).toBe(true);
    // Other arguments: answered without the early check, and the hint is now theirs.
    const other = smke(['run', 'p.smke', '--progress', 'plain', '-j', '1']);
    expect(other.out).toMatch(/smke: 0 ran, 2 cached/);
    expect(hint().argv).toEqual(['p.smke', '--progress', 'plain', '-j', '1']);
    // The hint matches: an input changed since is still seen (the early check's verdict), and the stages rerun.
    writeFileSync(join(proj.dir, 'data.txt'), 'other rows\n');
    past('data.txt');
    const rerun = smke(['run', 'p.smke', '--progress', 'plain', '-j', '1']);
    expect(rerun.out).toMatch(/smke: 2 ran, 0 cached/);
    expect(readFileSync(join(proj.dir, 'results/train/model.txt'), 'utf8')).toBe('lr=0.1\nother rows\n');
    // A hint naming a list that is gone, or garbage: the run answers as it would without one.
    writeFileSync(join(proj.dir, '.smke/plans/early-check.json'), JSON.stringify({ ...hint(), statList: join(proj.dir, 'gone.stat') }));
    expect(smke(['run', 'p.smke', '--progress', 'plain', '-j', '1']).out).toMatch(/smke: 0 ran, 2 cached/);
    writeFileSync(join(proj.dir, '.smke/plans/early-check.json'), '{"argv": "not a list"');
    expect(smke(['run', 'p.smke', '--progress', 'plain', '-j', '1']).out).toMatch(/smke: 0 ran, 2 cached/);
    expect(hint().argv).toEqual(['p.smke', '--progress', 'plain', '-j', '1']);
  });

  it('exit codes: 1 with one line pointing at the log, 2 for usage, 1 for a compile error; --json events', () => {
    writeFileSync(join(proj.dir, 'bad.smke'), `smke 1\nstage boom = exec { argv = ["sh", "-c", "echo kaput >&2; exit 7"] }\n`);
    const r = smke(['run', 'bad.smke', '--progress', 'plain']);
    expect(r.code).toBe(1);
    const line = r.out.split('\n').find((l) => l.startsWith('FAILED'))!;
    expect(line).toMatch(/^FAILED\s+boom: exec: sh exited with code 7 — log: \.smke\/logs\/1\/boom\.1\.log$/);
    expect(readFileSync(join(proj.dir, '.smke/logs/1/boom.1.log'), 'utf8')).toContain('kaput');
    expect(smke(['run', 'bad.smke', '-j', 'zero']).code).toBe(2);
    expect(smke(['run', 'missing.smke']).code).toBe(2);
    expect(smke(['run', 'bad.smke', '--only', 'nope']).err).toMatch(/no stage or instance named 'nope'/);
    writeFileSync(join(proj.dir, 'broken.smke'), 'smke 1\nstage x = exec {\n');
    expect(smke(['run', 'broken.smke']).code).toBe(1);
    const js = smke(['run', 'bad.smke', '--json']);
    const events = js.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['planned', 'queued', 'started', 'failed', 'summary']));
  });

  it('gc keeps what recent runs used; verify reports a corrupted entry', () => {
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    writeFileSync(join(proj.dir, 'data.txt'), 'v1\n');
    smke(['run', 'p.smke', '--progress', 'plain']);
    writeFileSync(join(proj.dir, 'data.txt'), 'v2\n');
    smke(['run', 'p.smke', '--progress', 'plain']);
    const store = join(proj.dir, '.smke/store');
    expect(readdirSync(store).filter((n) => !n.startsWith('.'))).toHaveLength(4);
    expect(smke(['gc', '--dry-run']).out).toMatch(/0 entries would be removed/);
    expect(smke(['gc', '--keep-last', '1', '--dry-run']).out).toMatch(/2 entries would be removed/);
    expect(smke(['gc', '--keep-last', '1']).out).toMatch(/removed 2 entries/);
    expect(readdirSync(store)).toHaveLength(2);
    expect(smke(['verify']).code).toBe(0);
    const link = join(proj.dir, 'results/prep/clean.txt');
    writeFileSync(link, 'tampered\n');
    const v = smke(['verify']);
    expect(v.code).toBe(1);
    expect(v.out).toMatch(/CORRUPT [0-9a-f]{64}: output clean.txt does not match its digest/);
    const again = smke(['run', 'p.smke', '--progress', 'plain']);
    // prep reruns (same key, rebuilt entry); train's key does not depend on prep's bytes: cached.
    expect(again.out).toMatch(/smke: 1 ran, 1 cached/);
    expect(readFileSync(join(proj.dir, 'results/train/model.txt'), 'utf8')).toContain('v2');
  });

  it('two concurrent runs sharing an instance run it once', async () => {
    writeFileSync(
      join(proj.dir, 'p.smke'),
      `smke 1
stage slow = exec {
  argv = ["sh", "-c", "echo ran >> count.txt; sleep 2; echo done > {out}/x"]
  outputs = ["x"]
}
`,
    );
    // Compile once so both start equally fast from the plan cache.
    smke(['run', 'p.smke', '--dry-run']);
    const go = () =>
      new Promise<{ code: number | null; out: string }>((res) => {
        const p = spawn(process.execPath, [bin, 'run', 'p.smke', '--progress', 'plain'], { cwd: proj.dir, env: { ...process.env, NO_COLOR: '1' } });
        let out = '';
        p.stdout.on('data', (d) => (out += d));
        p.on('close', (code) => res({ code, out }));
      });
    const [a, b] = await Promise.all([go(), go()]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(readFileSync(join(proj.dir, 'count.txt'), 'utf8')).toBe('ran\n');
    expect(`${a.out}\n${b.out}`).toMatch(/reused\s+slow \(finished by another run\)/);
  });

  it('Ctrl-C: stops the running stage, records it as cancelled, exits 130', async () => {
    writeFileSync(
      join(proj.dir, 'p.smke'),
      `smke 1
stage slow = exec { argv = ["sh", "-c", "touch started; sleep 30"] }
`,
    );
    const p = spawn(process.execPath, [bin, 'run', 'p.smke', '--progress', 'plain'], { cwd: proj.dir, env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    const closed = new Promise<number | null>((res) => p.on('close', (code) => res(code)));
    const t0 = Date.now();
    while (!existsSync(join(proj.dir, 'started')) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
    p.kill('SIGINT');
    expect(await closed).toBe(130);
    expect(out).toMatch(/cancel\s+slow/);
    expect(smke(['history']).out).toMatch(/run 1 .* cancelled .*\n\s+slow#1\s+cancelled/);
    expect(readdirSync(join(proj.dir, '.smke/store'))).toEqual([]);
  });

  it('lists stages waiting for a missing input, and refuses to start with every missing input named', () => {
    writeFileSync(
      join(proj.dir, 'p.smke'),
      PIPELINE +
        `
stage other = exec {
  argv = ["sh", "-c", "echo ok > {out}/ok.txt"]
}
`,
    );
    const st = smke(['status', 'p.smke']);
    expect(st.code).toBe(0);
    expect(st.out).toMatch(/^prep\s+waiting\s+-\s+needs data\.txt$/m);
    expect(st.out).toMatch(/^train\s+waiting\s+-\s+waits for prep$/m);
    expect(st.out).toMatch(/^other\s+will run\s+[0-9a-f]{12}\s+never run$/m);
    expect(st.out).toMatch(/0 cached, 1 to run, 2 waiting for inputs/);

    const run = smke(['run', 'p.smke', '--progress', 'plain']);
    expect(run.code).toBe(1);
    expect(run.err).toContain('inputs are missing, so nothing was started:\n  prep: needs data.txt\n  (and 1 stage instance downstream of them)');
    expect(existsSync(join(proj.dir, 'results/other'))).toBe(false);

    writeFileSync(join(proj.dir, 'data.txt'), 'rows\n');
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
  });
});
