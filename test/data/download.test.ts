import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { extractArchive, unsafeReason } from '../../src/data/extract.js';
import { applyMirror, redactUrl } from '../../src/data/retry-policy.js';
import { downloadKind } from '../../src/stages/data/download.js';
import { makeCtx, tempDir, withDefaults, type TestCtx } from './ctx.js';
import { dropAfter, makeTar, makeZip, serveBytes, startServer, type TestServer } from './server.js';

let srv: TestServer;
const ctxs: TestCtx[] = [];
const body = randomBytes(300_000);
const sha = createHash('sha256').update(body).digest('hex');
const md5 = createHash('md5').update(body).digest('hex');

beforeAll(async () => {
  srv = await startServer();
});
afterAll(() => srv.close());
afterEach(() => {
  for (const c of ctxs.splice(0)) c.cleanup();
});

function ctx(root?: string): TestCtx {
  const c = makeCtx({ root });
  ctxs.push(c);
  return c;
}

const FAST = { retry_delay: 0.01, stall_timeout: 0.3 };

async function run(c: TestCtx, params: Record<string, unknown>): Promise<void> {
  await downloadKind.run(c, await withDefaults(downloadKind.params, { ...FAST, ...params }));
}

describe('download', () => {
  test('a plain download is verified (size, sha256, md5), reported in bytes and recorded', async () => {
    srv.route('/plain.bin', serveBytes(body));
    const c = ctx();
    await run(c, { url: `${srv.url}/plain.bin`, sha256: sha, md5, size: body.length });
    expect(readFileSync(join(c.outDir, 'plain.bin')).equals(body)).toBe(true);
    expect(c.progressed.at(-1)).toEqual({ done: body.length, total: body.length, unit: 'bytes' });
    expect(JSON.parse(readFileSync(join(c.outDir, 'download.json'), 'utf8'))).toMatchObject({ bytes: body.length, sha256: sha });
    expect(srv.hits.get('/plain.bin')![0]!.ua).toMatch(/^smke\//);
    expect(readdirSync(c.scratchDir)).toEqual([]);
  });

  test('a connection dropped mid-body is resumed with a Range request, not restarted', async () => {
    let calls = 0;
    const drop = dropAfter(body, 100_000);
    const full = serveBytes(body);
    srv.route('/drop.bin', (req, res, n) => {
      calls = n;
      return n <= 2 ? drop(req, res, n) : full(req, res, n);
    });
    const c = ctx();
    await run(c, { url: `${srv.url}/drop.bin`, sha256: sha });
    expect(readFileSync(join(c.outDir, 'drop.bin')).equals(body)).toBe(true);
    const ranges = srv.hits.get('/drop.bin')!.map((h) => h.range);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(Number(/=(\d+)-/.exec(ranges[2]!)![1])).toBeGreaterThan(Number(/=(\d+)-/.exec(ranges[1]!)![1]));
    expect(calls).toBe(3);
    expect(c.logs.filter((l) => l.level === 'warn')).toHaveLength(2);
    expect(c.metrics.find((m) => m.name === 'attempts')!.value).toBe(3);
  });

  test('a partial file left in the scratch dir by a killed attempt is resumed by the next attempt', async () => {
    srv.route('/resume.bin', serveBytes(body));
    const c = ctx();
    writeFileSync(join(c.scratchDir, 'resume.bin.part'), body.subarray(0, 123_456));
    await run(c, { url: `${srv.url}/resume.bin`, sha256: sha });
    expect(srv.hits.get('/resume.bin')!.map((h) => h.range)).toEqual(['bytes=123456-']);
    expect(readFileSync(join(c.outDir, 'resume.bin')).equals(body)).toBe(true);
  });

  test('a partial file of an older version is not spliced onto the new one (If-Range)', async () => {
    const v1 = Buffer.alloc(200_000, 1);
    // The first response (v1) carries its ETag; then the file changes upstream.
    const first = dropAfter(v1, 80_000);
    srv.route('/versioned.bin', (req, res, n) => {
      if (n === 1) {
        res.setHeader('etag', '"v1"');
        return first(req, res, n);
      }
      return serveBytes(body, 'application/octet-stream', '"v2"')(req, res, n);
    });
    const c = ctx();
    await run(c, { url: `${srv.url}/versioned.bin`, sha256: sha });
    // Two requests: the dropped v1, then a Range request that the server answers with all of v2 (not a
    // third one after a checksum failure, which is what splicing would have caused).
    expect(srv.hits.get('/versioned.bin')).toHaveLength(2);
    expect(srv.hits.get('/versioned.bin')![1]!.range).toMatch(/^bytes=\d+-$/);
    expect(readFileSync(join(c.outDir, 'versioned.bin')).equals(body)).toBe(true);
    expect(readdirSync(c.scratchDir)).toEqual([]);
  });

  test('a redirect during a ranged resume keeps Range and If-Range; credentials stop at another origin', async () => {
    const { downloadFile } = await import('../../src/data/download-file.js');
    const cdn = await startServer();
    try {
      cdn.route('/cdn/moved.bin', serveBytes(body, 'application/octet-stream', '"e1"'));
      srv.route('/moved.bin', (_req, res) => void res.writeHead(302, { location: `${cdn.url}/cdn/moved.bin?sig=x` }).end());
      srv.route('/hub/moved.bin', (_req, res) => void res.writeHead(307, { location: '/moved.bin' }).end());
      const dir = tempDir();
      /** Download through the redirects, continuing a partial `partial` fetched from the version `validator`. */
      const resume = async (name: string, partial: Buffer, validator: string) => {
        const part = join(dir, `${name}.part`);
        writeFileSync(part, partial);
        writeFileSync(`${part}.meta`, JSON.stringify({ validator, total: body.length }));
        const r = await downloadFile(`${srv.url}/hub/moved.bin`, join(dir, name), {
          partPath: part,
          sha256: sha,
          headers: { Authorization: 'Bearer hf_secret' },
        });
        expect(readFileSync(join(dir, name)).equals(body)).toBe(true);
        return r;
      };

      // The partial came from the same version: the CDN answers the redirected Range request with the rest.
      expect(await resume('a.bin', body.subarray(0, 100_000), '"e1"')).toMatchObject({ attempts: 1, resumed: 1 });
      expect(cdn.hits.get('/cdn/moved.bin')).toEqual([expect.objectContaining({ range: 'bytes=100000-', ifRange: '"e1"', auth: undefined })]);
      // The same-origin hop keeps the token; the hop to the CDN drops it.
      expect(srv.hits.get('/hub/moved.bin')!.at(-1)!.auth).toBe('Bearer hf_secret');
      expect(srv.hits.get('/moved.bin')!.at(-1)!.auth).toBe('Bearer hf_secret');

      // A partial of an older version is replaced, not spliced: If-Range made it through the redirects.
      expect(await resume('b.bin', Buffer.alloc(100_000, 7), '"e0"')).toMatchObject({ attempts: 1, resumed: 0 });
    } finally {
      await cdn.close();
    }
  });

  test('a download leaves no connection open behind it, so a stage process can exit', async () => {
    const { downloadFile } = await import('../../src/data/download-file.js');
    srv.route('/idle.bin', (req, res, n) => (n === 1 ? void res.writeHead(503, { 'content-length': 4 }).end('busy') : serveBytes(body)(req, res, n)));
    const r = await downloadFile(`${srv.url}/idle.bin`, join(tempDir(), 'idle.bin'), { sha256: sha, retry: { baseDelayMs: 1 } });
    expect(r.attempts).toBe(2);
    // Keep-alive agents hold idle sockets until destroyed; the download destroys its own.
    await expect.poll(() => srv.connections(), { timeout: 2000 }).toBe(0);
  });

  const shmOtherFs = existsSync('/dev/shm') && statSync('/dev/shm').dev !== statSync(tempDir()).dev;
  test.skipIf(!shmOtherFs)('a partial on another filesystem (tmpfs) is moved by copying', async () => {
    const { downloadFile } = await import('../../src/data/download-file.js');
    srv.route('/xdev.bin', serveBytes(body));
    const part = join(mkdtempSync('/dev/shm/smke-data-'), 'xdev.part');
    try {
      const dest = join(tempDir(), 'xdev.bin');
      const r = await downloadFile(`${srv.url}/xdev.bin`, dest, { partPath: part, sha256: sha });
      expect(r.bytes).toBe(body.length);
      expect(readFileSync(dest).equals(body)).toBe(true);
      expect(existsSync(part)).toBe(false);
    } finally {
      rmSync(join(part, '..'), { recursive: true, force: true });
    }
  });

  test('500s are retried with backoff; a 404 fails at once with a clear message', async () => {
    srv.route('/flaky.bin', (req, res, n) => (n < 3 ? void res.writeHead(500).end('oops') : serveBytes(body)(req, res, n)));
    const c = ctx();
    await run(c, { url: `${srv.url}/flaky.bin`, sha256: sha });
    expect(srv.hits.get('/flaky.bin')).toHaveLength(3);

    const c2 = ctx();
    await expect(run(c2, { url: `${srv.url}/missing.bin` })).rejects.toThrow(/HTTP 404 from http:\/\/127\.0\.0\.1:\d+\/missing\.bin/);
    expect(srv.hits.get('/missing.bin')).toHaveLength(1);
    expect(existsSync(join(c2.outDir, 'missing.bin'))).toBe(false);

    srv.route('/down.bin', (_req, res) => void res.writeHead(503).end());
    await expect(run(ctx(), { url: `${srv.url}/down.bin`, http_retries: 2 })).rejects.toThrow(/HTTP 503 .*gave up after 3 attempts/);
  });

  test('a stalled connection times out and the download resumes', async () => {
    srv.route('/stall.bin', (req, res, n) => {
      if (n === 1) {
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, 50_000)); // ...and then nothing, with the socket left open
        return;
      }
      return serveBytes(body)(req, res, n);
    });
    const c = ctx();
    await run(c, { url: `${srv.url}/stall.bin`, sha256: sha });
    expect(c.logs.some((l) => /stalled/.test(l.msg))).toBe(true);
    expect(srv.hits.get('/stall.bin')![1]!.range).toBe('bytes=50000-');
  });

  test('a wrong checksum is downloaded once more, then fails naming both digests; nothing is published', async () => {
    srv.route('/wrong.bin', serveBytes(body));
    const c = ctx();
    const bad = 'a'.repeat(64);
    await expect(run(c, { url: `${srv.url}/wrong.bin`, sha256: bad })).rejects.toThrow(new RegExp(`sha256 ${sha}, expected ${bad}`));
    expect(srv.hits.get('/wrong.bin')).toHaveLength(2);
    expect(readdirSync(c.outDir)).toEqual([]);
    expect(readdirSync(c.scratchDir)).toEqual([]);
  });

  test('file:// URLs are copied and their file is a declared input; SMKE_MIRROR rewrites http URLs', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'local.bin'), body);
    const url = pathToFileURL(join(dir, 'local.bin')).href;
    const p = await withDefaults(downloadKind.params, { url });
    expect(downloadKind.inputs!(p)).toEqual([join(dir, 'local.bin')]);
    expect(downloadKind.env!(p)).toEqual(['SMKE_MIRROR']);
    expect(downloadKind.env!({ ...p, sha256: sha })).toEqual([]);
    const c = ctx();
    await run(c, { url, md5 });
    expect(readFileSync(join(c.outDir, 'local.bin')).equals(body)).toBe(true);

    expect(applyMirror('https://images.cocodataset.org/zips/val2014.zip', 'http://mirror.local/data/')).toBe(
      'http://mirror.local/data/images.cocodataset.org/zips/val2014.zip',
    );
    expect(applyMirror('https://a.org/x/y', 'https://b.org/=http://m/b/;https://a.org/=http://m/a/')).toBe('http://m/a/x/y');
    expect(applyMirror('https://c.org/z', 'https://a.org/=http://m/a/')).toBe('https://c.org/z');
    srv.route('/mirror/example.org/data/file.bin', serveBytes(body));
    const old = process.env.SMKE_MIRROR;
    process.env.SMKE_MIRROR = `${srv.url}/mirror`;
    try {
      const c2 = ctx();
      await run(c2, { url: 'https://example.org/data/file.bin', sha256: sha });
      expect(readFileSync(join(c2.outDir, 'file.bin')).equals(body)).toBe(true);
    } finally {
      if (old === undefined) delete process.env.SMKE_MIRROR;
      else process.env.SMKE_MIRROR = old;
    }
    expect(redactUrl('https://user:secret@h.org/p?token=abc')).toBe('https://h.org/p?%E2%80%A6');
  });
});

describe('extraction', () => {
  const files = [
    { name: 'ds/', type: 'directory' as const },
    { name: 'ds/a.txt', data: Buffer.from('alpha') },
    { name: 'ds/sub/b.txt', data: Buffer.from('beta') },
    { name: 'ds/link-b', type: 'symlink' as const, linkname: 'sub/b.txt' },
  ];

  test('tar.gz and zip archives extract into `dir`, links inside the tree kept', async () => {
    srv.route('/good.tar.gz', serveBytes(gzipSync(await makeTar(files))));
    const c = ctx();
    await run(c, { url: `${srv.url}/good.tar.gz`, extract: true });
    expect(readFileSync(join(c.outDir, 'data/ds/sub/b.txt'), 'utf8')).toBe('beta');
    expect(readlinkSync(join(c.outDir, 'data/ds/link-b'))).toBe('sub/b.txt');
    expect(existsSync(join(c.outDir, 'good.tar.gz'))).toBe(false);
    expect(downloadKind.outputs(await withDefaults(downloadKind.params, { url: 'http://x/good.tar.gz', extract: true }))).toHaveProperty('dir');

    srv.route('/good.zip', serveBytes(makeZip([{ name: 'z/' }, { name: 'z/c.txt', data: Buffer.from('gamma') }, { name: 'z/l', symlink: 'c.txt' }])));
    const c2 = ctx();
    await run(c2, { url: `${srv.url}/good.zip`, extract: true, keep_archive: true });
    expect(readFileSync(join(c2.outDir, 'data/z/c.txt'), 'utf8')).toBe('gamma');
    expect(lstatSync(join(c2.outDir, 'data/z/l')).isSymbolicLink()).toBe(true);
    expect(existsSync(join(c2.outDir, 'good.zip'))).toBe(true);
  });

  test.each([
    ['absolute path', [{ name: '/tmp/evil.txt', data: Buffer.from('x') }], /absolute path/],
    ['dot-dot', [{ name: 'ds/../../evil.txt', data: Buffer.from('x') }], /contains '\.\.'/],
    ['symlink out', [{ name: 'ds/escape', type: 'symlink' as const, linkname: '../../../etc/passwd' }], /link points outside/],
    ['absolute symlink', [{ name: 'ds/abs', type: 'symlink' as const, linkname: '/etc/passwd' }], /link to absolute path/],
    ['hard link out', [{ name: 'ds/hard', type: 'link' as const, linkname: '../outside' }], /hard link points outside/],
    [
      'chain of symlinks',
      [
        { name: 'ds/up', type: 'symlink' as const, linkname: '..' },
        { name: 'ds/up/ds/x', type: 'symlink' as const, linkname: '..' },
      ],
      /goes through the symbolic link ds\/up/,
    ],
    [
      'file through a symlink',
      [
        { name: 'ds/l', type: 'symlink' as const, linkname: 'sub' },
        { name: 'ds/l/f.txt', data: Buffer.from('x') },
      ],
      /goes through the symbolic link ds\/l/,
    ],
  ])('tar with %s is refused and nothing is extracted', async (_n, evil, reason) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'evil.tar'), await makeTar([...files.slice(0, 2), ...evil]));
    await expect(extractArchive(join(dir, 'evil.tar'), join(dir, 'out'))).rejects.toThrow(reason);
    expect(readdirSync(dir)).toEqual(['evil.tar']);
    const res = await extractArchive(join(dir, 'evil.tar'), join(dir, 'out'), undefined, { unsafe: 'skip' });
    expect(res.skipped).toHaveLength(1);
    expect(res.files).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(['evil.tar', 'out']);
  });

  test('zip entries escaping the directory are refused', async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'a.zip'),
      makeZip([
        { name: 'ok.txt', data: Buffer.from('1') },
        { name: '../evil.txt', data: Buffer.from('2') },
      ]),
    );
    await expect(extractArchive(join(dir, 'a.zip'), join(dir, 'out'))).rejects.toThrow(/refusing entry "\.\.\/evil\.txt"/);
    writeFileSync(join(dir, 'b.zip'), makeZip([{ name: 'l', symlink: '../../etc' }]));
    await expect(extractArchive(join(dir, 'b.zip'), join(dir, 'out'))).rejects.toThrow(/link points outside/);
    expect(readdirSync(dir).sort()).toEqual(['a.zip', 'b.zip']);
    expect(unsafeReason('C:\\x')).toBe('absolute path');
  });

  test('truncated archives fail clearly and leave no partial tree', async () => {
    const dir = tempDir();
    const big = await makeTar([
      { name: 'f1', data: randomBytes(40_000) },
      { name: 'f2', data: randomBytes(40_000) },
    ]);
    writeFileSync(join(dir, 't.tar.gz'), gzipSync(big).subarray(0, 50_000));
    await expect(extractArchive(join(dir, 't.tar.gz'), join(dir, 'out'))).rejects.toThrow(/truncated or corrupt/);
    writeFileSync(join(dir, 't.tar'), big.subarray(0, 60_000));
    await expect(extractArchive(join(dir, 't.tar'), join(dir, 'out'))).rejects.toThrow(/truncated or corrupt/);
    const zip = makeZip([{ name: 'a', data: randomBytes(5000) }]);
    writeFileSync(join(dir, 't.zip'), zip.subarray(0, 3000));
    await expect(extractArchive(join(dir, 't.zip'), join(dir, 'out'), 'zip')).rejects.toThrow(/truncated or corrupt/);
    expect(readdirSync(dir).sort()).toEqual(['t.tar', 't.tar.gz', 't.zip']);
    writeFileSync(join(dir, 'x.bin'), 'not an archive');
    await expect(extractArchive(join(dir, 'x.bin'), join(dir, 'out'))).rejects.toThrow(/not a tar, tar.gz or zip archive/);
  });
});
