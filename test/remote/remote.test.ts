// The remote cache against a real S3 server (s3rver) on 127.0.0.1: two
// projects share it, damaged and partial uploads are never used, a remote
// that is down costs a warning, and gc applies its retention rule.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
const SECRET = 'S3RVER-secret-never-stored';
const BUCKET = 'cache';

let root: string;
let server: S3rver;
let endpoint: string;
let s3: S3Client;
let prefix: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'smke-remote-'));
  // s3rver checks signatures against its own fixed key pair; the secret the client signs with must match it.
  server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: join(root, 's3'), configureBuckets: [{ name: BUCKET, configs: [] }] });
  const addr = (await server.run()) as { port: number };
  endpoint = `http://127.0.0.1:${addr.port}`;
  s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
});
afterAll(async () => {
  s3?.destroy();
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
beforeEach(() => {
  prefix = `t${++n}`; // each test its own corner of the bucket
});

const PIPELINE = `smke 1
param n = 3

stage data = exec {
  argv = ["sh", "-c", "seq 1 \${n} > {out}/rows.txt; mkdir -p {out}/sub; echo deep > {out}/sub/x.txt"]
  outputs = { rows = "rows.txt" }
}

stage sum = exec {
  argv = ["sh", "-c", "awk '{s+=$1} END {print s}' \\"$1\\" > {out}/sum.txt", "sum", data.rows]
  outputs = { total = "sum.txt" }
}
`;

/** A fresh project (as a fresh clone would be) configured for this test's remote. */
function project(name: string, remote: Record<string, unknown> = {}): string {
  const dir = join(root, `${prefix}-${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'p.smke'), PIPELINE);
  writeFileSync(join(dir, 'smke.json'), JSON.stringify({ remote: { url: `s3://${BUCKET}/${prefix}`, endpoint, ...remote } }));
  return dir;
}

/**
 * Runs the CLI without blocking this process: the S3 server lives in this
 * process, and a synchronous spawn would stop it from answering the child.
 */
function smke(dir: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string; all: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', SMKE_TEST_SECRET: SECRET, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('close', (code) => res({ code, out, err, all: out + err }));
  });
}
const run = (dir: string, extra: string[] = [], env?: Record<string, string>) => smke(dir, ['run', 'p.smke', '--progress', 'plain', ...extra], env);

async function keys(p = prefix): Promise<string[]> {
  const r = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${p}/` }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}
const indexKeys = async () => (await keys()).filter((k) => k.includes('/index/')).map((k) => k.replace(/^.*\/index\/|\.json$/g, ''));

describe('the remote cache', () => {
  it('a second fresh project runs nothing: it pulls every entry, checked, and gets the same results', async () => {
    const a = project('a');
    const r1 = await run(a);
    expect(r1.code, r1.all).toBe(0);
    expect(r1.out).toMatch(/smke: 2 ran, 0 cached/);
    expect(r1.out.match(/^pushed\s/gm)).toHaveLength(2);
    expect(await indexKeys()).toHaveLength(2);
    expect((await keys()).some((k) => k.endsWith('/sub/x.txt'))).toBe(true);

    const b = project('b');
    const r2 = await run(b);
    expect(r2.code, r2.all).toBe(0);
    expect(r2.out).toMatch(/smke: 0 ran, 2 cached/);
    expect(r2.out).toMatch(/pulled\s+data from the remote cache/);
    expect(r2.out).toMatch(/pulled\s+sum from the remote cache/);
    expect(readFileSync(join(b, 'results/sum/sum.txt'), 'utf8')).toBe('6\n');
    expect(readFileSync(join(b, 'results/data/sub/x.txt'), 'utf8')).toBe('deep\n');
    expect((await smke(b, ['verify'])).code).toBe(0);
    // Nothing was pushed twice, and the second project's next run is a plain no-op.
    expect(r2.out).not.toMatch(/^pushed/m);
    expect((await run(b)).out).toMatch(/smke: 0 ran, 2 cached/);
  });

  it('keeps credentials out of every file it writes', async () => {
    const a = project('a');
    expect((await run(a, [], { AWS_SECRET_ACCESS_KEY: 'S3RVER', SMKE_TEST_SECRET: SECRET })).code).toBe(0);
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) files.push(p);
      }
    };
    walk(a);
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) expect(readFileSync(f).includes('S3RVER'), f).toBe(false);
  });

  it('pull-only mode (CI) takes what is there and pushes nothing', async () => {
    const a = project('a');
    expect((await run(a)).code).toBe(0);
    const ci = project('ci', { mode: 'pull' });
    const r = await run(ci, ['--set', 'n=4']);
    expect(r.code, r.all).toBe(0);
    // data changed (n=4): run here, not pushed; the remote still holds only the first project's two entries.
    expect(r.out).toMatch(/smke: 2 ran, 0 cached/);
    expect(r.out).not.toMatch(/^pushed/m);
    expect(await indexKeys()).toHaveLength(2);
    // --remote-mode on the command line overrides smke.json.
    expect((await run(ci, ['--set', 'n=5', '--remote-mode', 'read-write'])).out.match(/^pushed\s/gm)).toHaveLength(2);
  });

  it('a damaged remote file is caught against the index, and the stage runs here instead', async () => {
    const a = project('a');
    expect((await run(a)).code).toBe(0);
    const target = (await keys()).find((k) => k.endsWith('/rows.txt'))!;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: target, Body: '1\n2\n9\n' }));
    const b = project('b');
    const r = await run(b);
    expect(r.code, r.all).toBe(0);
    expect(r.all).toMatch(/rows\.txt of [0-9a-f]{12} does not match the remote index .*the remote copy is damaged; running the stage here instead/);
    expect(r.out).toMatch(/smke: 1 ran, 1 cached/); // data ran here; sum's key depends on data's key only, so it was pulled
    expect(readFileSync(join(b, 'results/data/rows.txt'), 'utf8')).toBe('1\n2\n3\n');
    expect((await smke(b, ['verify'])).code).toBe(0);
  });

  it('a manifest that disagrees with its files is caught too (a consistent-looking but wrong upload)', async () => {
    const a = project('a');
    expect((await run(a)).code).toBe(0);
    // Rewrite both the file and its index entry consistently: only the entry's own manifest can tell.
    const idxKey = (await keys()).find((k) => k.includes('/index/') && true)!;
    const idx = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: idxKey }))).Body!.transformToString()) as {
      key: string;
      files: { path: string; size: number; digest: string }[];
    };
    const file = idx.files.find((f) => !f.path.startsWith('_smke/'))!;
    const { Digester } = await import('../../src/runtime/digest.js');
    const d = await Digester.create();
    const bytes = Buffer.from('tampered\n');
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/entries/${idx.key}/${file.path}`, Body: bytes }));
    file.size = bytes.length;
    file.digest = d.bytes(bytes);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: idxKey, Body: JSON.stringify(idx) }));
    const b = project('b');
    const r = await run(b);
    expect(r.code, r.all).toBe(0);
    expect(r.all).toMatch(/the pulled entry [0-9a-f]{12} is not whole: output .* does not match its digest/);
    expect(r.out).toMatch(/smke: 1 ran, 1 cached/);
  });

  it('an upload cut off before its index is invisible, and a hostile index cannot write outside the entry', async () => {
    const a = project('a');
    expect((await run(a)).code).toBe(0);
    const [k1, k2] = await indexKeys();
    // Cut off: the files are there but the index is not.
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${prefix}/index/${k1}.json` }));
    // Hostile: an index that names a path outside the entry.
    const evil = join(root, `${prefix}-evil.txt`);
    const hostile = { format: 1, key: k2, files: [{ path: `../../../../${prefix}-evil.txt`, size: 4, digest: '0'.repeat(32) }] };
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/index/${k2}.json`, Body: JSON.stringify(hostile) }));
    const b = project('b');
    const r = await run(b);
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(/smke: 2 ran, 0 cached/);
    expect(r.all).toMatch(/lists an unusable file "\.\.\/.*evil\.txt": refusing it/);
    expect(() => statSync(evil)).toThrow();
    // The cut-off key was uploaded again whole by b (read-write), so a third project pulls it.
    expect((await indexKeys()).includes(k1!)).toBe(true);
  });

  it('a remote that is down costs a warning, never the run', async () => {
    const dir = project('down');
    writeFileSync(join(dir, 'smke.json'), JSON.stringify({ remote: { url: `s3://${BUCKET}/${prefix}`, endpoint: 'http://127.0.0.1:9' } }));
    const r = await run(dir);
    expect(r.code, r.all).toBe(0);
    expect(r.out).toMatch(/smke: 2 ran, 0 cached/);
    expect(r.all).toMatch(/remote cache: .*running the stage here instead/);
    expect(r.all).toMatch(/remote cache: .*the result is in the local store/);
  });

  it('bad configuration is a usage error that says what to write', async () => {
    const dir = project('cfg');
    const cases: [string, RegExp][] = [
      ['{"remote": {"url": "http://bucket/x"}}', /must look like s3:\/\/bucket\/prefix/],
      ['{"remote": {"url": "s3://key:secret@bucket/x"}}', /credentials never go in the URL/],
      ['{"remote": {"url": "s3://b/x", "secret_access_key": "x"}}', /unknown remote setting "secret_access_key".*never from smke.json/],
      ['{"remote": {"url": "s3://b/x", "endpoint": "http://u:p@host:9000"}}', /must not hold credentials/],
      ['{"remote": {"url": "s3://b/x", "mode": "sometimes"}}', /remote mode must be one of read-write, pull, push, off/],
      ['{"remote": ', /smke.json is not valid JSON/],
    ];
    for (const [text, msg] of cases) {
      writeFileSync(join(dir, 'smke.json'), text);
      const r = await run(dir);
      expect(r.code, text).toBe(2);
      expect(r.err, text).toMatch(msg);
    }
    // Mode off: no remote at all, even with one configured.
    writeFileSync(join(dir, 'smke.json'), JSON.stringify({ remote: { url: `s3://${BUCKET}/${prefix}`, endpoint, mode: 'off' } }));
    expect((await run(dir)).out).not.toMatch(/pushed/);
  });

  it('gc --remote removes entries past the retention, keeps what the last run used, and clears cut-off uploads', async () => {
    const a = project('a');
    expect((await run(a)).code).toBe(0);
    expect((await run(a, ['--set', 'n=4'])).code).toBe(0);
    expect(await indexKeys()).toHaveLength(4);
    // keep-days 0: everything is past the retention except the last run's two entries.
    const dry = await smke(a, ['gc', '--remote', '--keep-days', '0', '--dry-run']);
    expect(dry.code, dry.all).toBe(0);
    expect(dry.out).toMatch(/2 entries older than 0 days would be removed, 2 kept/);
    expect(await indexKeys()).toHaveLength(4);
    const real = await smke(a, ['gc', '--remote', '--keep-days', '0']);
    expect(real.out).toMatch(/2 entries older than 0 days removed, 2 kept/);
    expect(await indexKeys()).toHaveLength(2);
    // Their files went with them.
    const left = new Set((await keys()).filter((k) => k.includes('/entries/')).map((k) => k.split('/')[2]));
    expect([...left].sort()).toEqual((await indexKeys()).sort());
    // The default keeps 30 days: nothing goes.
    expect((await smke(a, ['gc', '--remote'])).out).toMatch(/0 entries older than 30 days removed, 2 kept/);
    const none = await smke(project('nocfg'), ['gc', '--remote']);
    rmSync(join(root, `${prefix}-nocfg`, 'smke.json'));
    expect((await smke(join(root, `${prefix}-nocfg`), ['gc', '--remote'])).err).toMatch(/no remote cache is configured/);
    expect(none.code).toBe(0);
  });
});
