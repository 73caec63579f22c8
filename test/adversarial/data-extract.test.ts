// Adversarial archives (an archive must never write outside a stage's directory): every
// archive here is built in the test and attacks extraction from another side.
// Each case checks the same three things: the extraction fails (or, in skip
// mode, leaves the entry out), nothing outside the output changed, and no
// half-extracted tree is left behind.

import { readFileSync, readdirSync, realpathSync, writeFileSync, lstatSync, existsSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createDeflateRaw, crc32, gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { DEFAULT_LIMITS, extractArchive, type ExtractOptions } from '../../src/data/extract.js';
import { tarFiles } from '../../src/data/tar-read.js';
import { ZipReader } from '../../src/data/zip.js';
import { downloadKind } from '../../src/stages/data/download.js';
import { makeCtx, tempDir, withDefaults } from '../data/ctx.js';
import { makeTar, makeZip, serveBytes, startServer } from '../data/server.js';

type TarEntry = Parameters<typeof makeTar>[0][number];

/** A victim file outside the output, and the directory extraction happens in. */
function scene(): { victim: string; work: string; dest: string } {
  const outside = tempDir('smke-victim-');
  const victim = join(outside, 'victim.txt');
  writeFileSync(victim, 'original');
  const work = tempDir('smke-extract-');
  return { victim, work, dest: join(work, 'out') };
}

/**
 * Links l0 -> ., l1 -> l0/.., l2 -> l1/.., ...: each stays inside lexically (`lK/..` is `.`), but
 * on disk each climbs one directory, so the last is `/`. `depth` covers the staging directory's depth.
 */
function chainToRoot(work: string, prefix = 'l'): { names: string[]; targets: string[]; top: string } {
  const depth = realpathSync(work).split('/').length + 2;
  const names: string[] = [];
  const targets: string[] = [];
  for (let i = 0; i <= depth; i++) {
    names.push(`${prefix}${i}`);
    targets.push(i === 0 ? '.' : `${prefix}${i - 1}/..`);
  }
  return { names, targets, top: names.at(-1)! };
}

/** `top/<absolute path without its slash>`: inside lexically, the absolute path on disk. */
const via = (top: string, abs: string) => `${top}/${realpathSync(abs).slice(1)}`;

async function tarOf(entries: TarEntry[], gz = false): Promise<Buffer> {
  const t = await makeTar(entries);
  return gz ? gzipSync(t) : t;
}

function expectUntouched(s: { victim: string; work: string }, archiveName: string): void {
  expect(readFileSync(s.victim, 'utf8')).toBe('original');
  expect(readdirSync(s.victim.replace(/\/victim\.txt$/, ''))).toEqual(['victim.txt']);
  // No staging directory, no partial output: only the archive.
  expect(readdirSync(s.work)).toEqual([archiveName]);
}

/** Every symbolic link under `dir` resolves inside it (or nowhere). */
function linksStayInside(dir: string): void {
  const root = realpathSync(dir);
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) {
        let real: string | undefined;
        try {
          real = realpathSync(p);
        } catch {
          real = undefined;
        }
        if (real !== undefined)
          expect(real === root || real.startsWith(root + '/'), `${relative(dir, p)} -> ${readlinkSync(p)} resolves to ${real}`).toBe(true);
      } else if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
}

/** Extract, expecting a refusal matching `reason`; then in skip mode, expecting the output to stay inside. */
async function refused(s: ReturnType<typeof scene>, name: string, bytes: Buffer, reason: RegExp, opts: ExtractOptions = {}): Promise<void> {
  const archive = join(s.work, name);
  writeFileSync(archive, bytes);
  await expect(extractArchive(archive, s.dest, undefined, opts)).rejects.toThrow(reason);
  expectUntouched(s, name);
  const res = await extractArchive(archive, s.dest, undefined, { ...opts, unsafe: 'skip' });
  expect(res.skipped.length).toBeGreaterThan(0);
  expect(readFileSync(s.victim, 'utf8')).toBe('original');
  linksStayInside(s.dest);
}

describe('extraction never writes outside the output (tar, tar.gz, zip)', () => {
  for (const gz of [false, true]) {
    const ext = gz ? 'tar.gz' : 'tar';
    test(`${ext}: a chain of lexically-inside links to /, then a file with a link's name (the reported case)`, async () => {
      const s = scene();
      const c = chainToRoot(s.work);
      const entries: TarEntry[] = c.names.map((n, i) => ({ name: n, type: 'symlink', linkname: c.targets[i] }));
      entries.push({ name: 'evil', type: 'symlink', linkname: via(c.top, s.victim) });
      entries.push({ name: 'evil', data: Buffer.from('pwned') });
      await refused(s, `a.${ext}`, await tarOf(entries, gz), /refusing entry "evil": it would replace the symbolic link evil/);
    });

    test(`${ext}: a directory reached through the chain, then a file inside it`, async () => {
      const s = scene();
      const c = chainToRoot(s.work);
      const entries: TarEntry[] = c.names.map((n, i) => ({ name: n, type: 'symlink', linkname: c.targets[i] }));
      entries.push({ name: 'd', type: 'symlink', linkname: via(c.top, join(s.victim, '..')) });
      entries.push({ name: 'd/new.txt', data: Buffer.from('pwned') });
      entries.push({ name: './d/./victim.txt', data: Buffer.from('pwned') });
      await refused(s, `b.${ext}`, await tarOf(entries, gz), /path goes through the symbolic link d/);
    });
  }

  test('tar: a link made before the link it climbs through (dangling, then filled) is judged at the end', async () => {
    const s = scene();
    // q -> p/.. is `.` lexically and dangles when made; once p -> . exists, q is the parent of the output.
    const entries: TarEntry[] = [
      { name: 'q', type: 'symlink', linkname: 'p/..' },
      { name: 'p', type: 'symlink', linkname: '.' },
      { name: 'ok.txt', data: Buffer.from('fine') },
    ];
    await refused(s, 'c.tar', await tarOf(entries), /refusing entry "q": symbolic link resolves outside/);
    expect(readFileSync(join(s.dest, 'ok.txt'), 'utf8')).toBe('fine');
    expect(existsSync(join(s.dest, 'q'))).toBe(false);
  });

  test('tar: hard links through a link, to a link, or to something not extracted are refused', async () => {
    for (const [i, evil] of (
      [
        // The victim reached through the chain: a hard link would share its inode, and a later write would change it.
        (c: ReturnType<typeof chainToRoot>, victim: string): TarEntry[] => [
          { name: 'h', type: 'link', linkname: via(c.top, victim) },
          { name: 'h', data: Buffer.from('pwned') },
        ],
        // A hard link to a symbolic link that leads out.
        (c: ReturnType<typeof chainToRoot>, victim: string): TarEntry[] => [
          { name: 's', type: 'symlink', linkname: via(c.top, victim) },
          { name: 'h', type: 'link', linkname: 's' },
        ],
        // A hard link to a name the archive never held.
        (): TarEntry[] => [{ name: 'h', type: 'link', linkname: 'never-extracted' }],
        // A hard link to a directory.
        (): TarEntry[] => [
          { name: 'dir', type: 'directory' },
          { name: 'h', type: 'link', linkname: 'dir' },
        ],
      ] as ((c: ReturnType<typeof chainToRoot>, v: string) => TarEntry[])[]
    ).entries()) {
      const s = scene();
      const c = chainToRoot(s.work);
      const entries: TarEntry[] = c.names.map((n, k) => ({ name: n, type: 'symlink', linkname: c.targets[k] }));
      await refused(s, `h${i}.tar`, await tarOf([...entries, ...evil(c, s.victim)]), /refusing entry "[hs]"/);
    }
  });

  test('tar: a later file of the same name as a hard link replaces it without changing the file it linked', async () => {
    const s = scene();
    writeFileSync(
      join(s.work, 'd.tar'),
      await tarOf([
        { name: 'f', data: Buffer.from('first') },
        { name: 'g', type: 'link', linkname: 'f' },
        { name: 'g', data: Buffer.from('second') },
      ]),
    );
    await extractArchive(join(s.work, 'd.tar'), s.dest);
    expect(readFileSync(join(s.dest, 'f'), 'utf8')).toBe('first');
    expect(readFileSync(join(s.dest, 'g'), 'utf8')).toBe('second');
  });

  test('tar: a link over an existing entry, a file over a directory, a directory over a file: refused, not crashed', async () => {
    const cases: [TarEntry[], RegExp][] = [
      [
        [
          { name: 'f', data: Buffer.from('x') },
          { name: 'f', type: 'symlink', linkname: 'elsewhere' },
        ],
        /a link would replace the existing entry f/,
      ],
      [
        [
          { name: 'd', type: 'directory' },
          { name: 'd', data: Buffer.from('x') },
        ],
        /a file would replace the directory d/,
      ],
      [
        [
          { name: 'f', data: Buffer.from('x') },
          { name: 'f/', type: 'directory' },
        ],
        /a directory would replace the file f/,
      ],
      [
        [
          { name: 'f', data: Buffer.from('x') },
          { name: 'f/g', data: Buffer.from('y') },
        ],
        /path goes through f, which is not a directory/,
      ],
      [[{ name: '.', data: Buffer.from('x') }], /names the output directory itself/],
    ];
    for (const [i, [entries, reason]] of cases.entries()) {
      const s = scene();
      await refused(s, `e${i}.tar`, await tarOf(entries), reason);
    }
  });

  test('tar and zip: absolute, `..`, backslash and drive-letter names, and links out, are refused', async () => {
    const cases: [string, Buffer, RegExp][] = [
      ['abs.tar', await tarOf([{ name: '/tmp/smke-evil-abs', data: Buffer.from('x') }]), /absolute path/],
      ['dots.tar', await tarOf([{ name: 'a/../../smke-evil', data: Buffer.from('x') }]), /contains '\.\.'/],
      ['abslink.tar', await tarOf([{ name: 'l', type: 'symlink', linkname: '/etc' }]), /link to absolute path/],
      ['uplink.tar', await tarOf([{ name: 'a/l', type: 'symlink', linkname: '../../x' }]), /link points outside/],
      ['back.zip', makeZip([{ name: 'a\\..\\..\\smke-evil', data: Buffer.from('x') }]), /contains '\.\.'/],
      ['drive.zip', makeZip([{ name: 'C:\\evil', data: Buffer.from('x') }]), /absolute path/],
      ['dots.zip', makeZip([{ name: '../smke-evil', data: Buffer.from('x') }]), /contains '\.\.'/],
      ['abslink.zip', makeZip([{ name: 'l', symlink: '/etc' }]), /link to absolute path/],
    ];
    for (const [name, bytes, reason] of cases) {
      const s = scene();
      await refused(s, name, bytes, reason);
    }
  });

  test('zip: the chain of links to /, then a file with a link name, then a file through a link', async () => {
    for (const last of ['evil', 'evil/victim.txt']) {
      const s = scene();
      const c = chainToRoot(s.work);
      const target = last === 'evil' ? via(c.top, s.victim) : via(c.top, join(s.victim, '..'));
      const zip = makeZip([
        ...c.names.map((n, i) => ({ name: n, symlink: c.targets[i] })),
        { name: 'evil', symlink: target },
        { name: last, data: Buffer.from('pwned') },
      ]);
      await refused(s, `z-${last.length}.zip`, zip, last === 'evil' ? /would replace the symbolic link evil/ : /goes through the symbolic link evil/);
    }
  });

  test('zip: a dangling link filled in later is judged at the end', async () => {
    const s = scene();
    await refused(
      s,
      'dangle.zip',
      makeZip([
        { name: 'q', symlink: 'p/..' },
        { name: 'p', symlink: '.' },
      ]),
      /"q": symbolic link resolves outside/,
    );
  });

  test('links that stay inside, and `./` entries, still extract', async () => {
    const s = scene();
    writeFileSync(
      join(s.work, 'ok.tar'),
      await tarOf([
        { name: './', type: 'directory' },
        { name: './a/', type: 'directory' },
        { name: './a/f.txt', data: Buffer.from('f') },
        { name: 'a/self', type: 'symlink', linkname: '.' },
        { name: 'a/up', type: 'symlink', linkname: '../a/f.txt' },
        { name: 'a/hard', type: 'link', linkname: 'a/f.txt' },
      ]),
    );
    const r = await extractArchive(join(s.work, 'ok.tar'), s.dest);
    expect(r).toMatchObject({ files: 1, links: 3, skipped: [] });
    expect(readFileSync(join(s.dest, 'a/up'), 'utf8')).toBe('f');
    expect(readFileSync(join(s.dest, 'a/hard'), 'utf8')).toBe('f');
  });
});

/** A tar.gz whose one entry declares `size` bytes of zeros, built from repeated gzip members (cheap to make, huge to inflate). */
async function gzipBomb(size: number): Promise<Buffer> {
  const header = (await makeTar([{ name: 'zeros.bin', data: Buffer.alloc(0) }])).subarray(0, 512);
  // Rewrite the size field (octal, 11 digits) and the checksum.
  header.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const mib = gzipSync(Buffer.alloc(2 ** 20));
  const parts = [gzipSync(header)];
  for (let i = 0; i < Math.ceil(size / 2 ** 20) + 1; i++) parts.push(mib);
  return Buffer.concat(parts);
}

/** A zip of one deflated entry of `size` zeros, whose header declares `declared` bytes (a liar when they differ). */
async function zipBomb(size: number, declared = size): Promise<Buffer> {
  const def = createDeflateRaw({ level: 9 });
  const out: Buffer[] = [];
  def.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((ok) => def.on('end', ok));
  const chunk = Buffer.alloc(2 ** 20);
  let crc = 0;
  for (let left = size; left > 0; left -= chunk.length) {
    const c = left >= chunk.length ? chunk : chunk.subarray(0, left);
    crc = crc32(c, crc);
    if (!def.write(c)) await new Promise((ok) => def.once('drain', ok));
  }
  def.end();
  await done;
  const data = Buffer.concat(out);
  const name = Buffer.from('zeros.bin');
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc >>> 0, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(declared, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc >>> 0, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(declared, 24);
  central.writeUInt16LE(name.length, 28);
  const cd = Buffer.concat([central, name]);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(30 + name.length + data.length, 16);
  return Buffer.concat([local, name, data, cd, end]);
}

describe('decompression bombs are stopped with an error that names the limit to raise', () => {
  test('a tar.gz declaring 4 GiB from ~4 MB is refused by the default ratio cap before a byte is written', async () => {
    const s = scene();
    const bomb = await gzipBomb(4 * 2 ** 30);
    expect(bomb.length).toBeLessThan(8 * 2 ** 20);
    writeFileSync(join(s.work, 'bomb.tar.gz'), bomb);
    await expect(extractArchive(join(s.work, 'bomb.tar.gz'), s.dest)).rejects.toThrow(/more than 200 times its own size .*raise `maxRatio`/);
    expectUntouched(s, 'bomb.tar.gz');
  });

  test('a zip entry of 96 MiB zeros is refused by the ratio cap; the same under a raised cap extracts', async () => {
    const s = scene();
    writeFileSync(join(s.work, 'bomb.zip'), await zipBomb(96 * 2 ** 20));
    const names: ExtractOptions['limitNames'] = { maxRatio: 'max_extract_ratio', maxBytes: 'max_extract_bytes' };
    await expect(extractArchive(join(s.work, 'bomb.zip'), s.dest, undefined, { limitNames: names })).rejects.toThrow(/raise `max_extract_ratio`/);
    expectUntouched(s, 'bomb.zip');
    await expect(extractArchive(join(s.work, 'bomb.zip'), s.dest, undefined, { limitNames: names, limits: { maxBytes: 2 ** 20 } })).rejects.toThrow(
      /more than 1048576 bytes .*raise `max_extract_bytes`/,
    );
    const r = await extractArchive(join(s.work, 'bomb.zip'), s.dest, undefined, { limits: { maxRatio: 1e6 } });
    expect(r.bytes).toBe(96 * 2 ** 20);
  });

  test('a zip whose header understates its entry fails without writing past what it declared', async () => {
    const s = scene();
    writeFileSync(join(s.work, 'liar.zip'), await zipBomb(8 * 2 ** 20, 1024));
    await expect(extractArchive(join(s.work, 'liar.zip'), s.dest)).rejects.toThrow(/too many bytes|extraction failed/);
    expectUntouched(s, 'liar.zip');
  });

  test('many entries, and many small files over the byte cap, through the download kind params', async () => {
    const srv = await startServer();
    try {
      const many = await tarOf(
        Array.from({ length: 300 }, (_, i) => ({ name: `f${i}`, data: Buffer.from('x') })),
        true,
      );
      srv.route('/many.tar.gz', serveBytes(many));
      const small = await tarOf(Array.from({ length: 20 }, (_, i) => ({ name: `g${i}`, data: Buffer.alloc(1000, i) })));
      srv.route('/small.tar', serveBytes(small));
      const run = async (params: Record<string, unknown>) => {
        const c = makeCtx();
        await downloadKind.run(c, await withDefaults(downloadKind.params, { retry_delay: 0.01, extract: true, ...params }));
        return c;
      };
      const c1 = makeCtx();
      await expect(
        downloadKind.run(c1, await withDefaults(downloadKind.params, { url: `${srv.url}/many.tar.gz`, extract: true, max_extract_entries: 200 })),
      ).rejects.toThrow(/more than 200 entries .*raise `max_extract_entries`/);
      expect(readdirSync(c1.outDir).filter((n) => n !== 'many.tar.gz')).toEqual([]);
      await expect(run({ url: `${srv.url}/small.tar`, max_extract_bytes: 15_000 })).rejects.toThrow(
        /more than 15000 bytes \(at "g15"\).*raise `max_extract_bytes`/,
      );
      const ok = await run({ url: `${srv.url}/small.tar`, max_extract_bytes: 20_000 });
      expect(readdirSync(join(ok.outDir, 'data'))).toHaveLength(20);
    } finally {
      await srv.close();
    }
  });

  test('the download kind documents the same default caps as the data layer', async () => {
    const p = await withDefaults(downloadKind.params, { url: 'http://x/a.tar' });
    expect([p.max_extract_bytes, p.max_extract_entries, p.max_extract_ratio]).toEqual([
      DEFAULT_LIMITS.maxBytes,
      DEFAULT_LIMITS.maxEntries,
      DEFAULT_LIMITS.maxRatio,
    ]);
  });

  test('archives read without extracting (dataset kinds) refuse an entry too large to hold in memory', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'big.tar.gz'), await gzipBomb(3 * 2 ** 30));
    const read = async () => {
      for await (const f of tarFiles(join(dir, 'big.tar.gz'))) void f;
    };
    await expect(read()).rejects.toThrow(/"zeros\.bin" is 3221225472 bytes, over the 1073741824 bytes/);
    writeFileSync(join(dir, 'big.zip'), await zipBomb(4 * 2 ** 20));
    const z = await ZipReader.open(join(dir, 'big.zip'));
    try {
      await expect(z.read('zeros.bin', 2 ** 20)).rejects.toThrow(/4194304 bytes uncompressed, over the 1048576 bytes/);
      expect((await z.read('zeros.bin')).length).toBe(4 * 2 ** 20);
    } finally {
      z.close();
    }
  });
});
