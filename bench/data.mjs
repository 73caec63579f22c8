#!/usr/bin/env node
// Data benchmarks (run after `npm run build`):
//  scrape  — dataset.cc3m over N ~512x512 JPEGs served from 127.0.0.1 by a
//            separate server process, resized to 224 and written to shards;
//            images/s and CPU (cores busy) of the scraping process.
//  loader  — imageBatches (train augmentation: random resized crop, flip,
//            colour jitter, normalisation) at 224x224 into tfjs tensors.
//  Both beside a plain sharp loop over the same files (resize to 224, 8 in
//  flight): the local limit of this machine.
// Usage: node bench/data.mjs [scrape|loader|all] [images]   (default: all 10000)
import { fork } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ImageDataset, ImageDatasetWriter } from '../dist/data/image-dataset.js';
import { imageBatches } from '../dist/data/loader.js';
import { toTensor } from '../dist/data/tensor.js';
import { cc3mKind } from '../dist/stages/data/cc.js';

const what = process.argv[2] ?? 'all';
const N = Number(process.argv[3] ?? 10000);
const DISTINCT = 256; // distinct source images; URLs and rows are all distinct

if (process.env.BENCH_SERVER) {
  // Child: a static image server, so serving does not count against the scraper's CPU.
  const { createServer } = await import('node:http');
  const imgs = await makeImages(DISTINCT, 512);
  const srv = createServer((req, res) => {
    const i = Number(/\/img\/(\d+)\.jpg/.exec(req.url ?? '')?.[1] ?? -1);
    if (i < 0) return void res.writeHead(404).end();
    const body = imgs[i % DISTINCT];
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body);
  });
  srv.keepAliveTimeout = 30_000;
  srv.listen(0, '127.0.0.1', () => process.send({ port: srv.address().port }));
} else {
  await main();
}

/** Photo-like test images: gradients, shapes and noise, so JPEG sizes and decode costs are realistic (~40-90 KB). */
async function makeImages(n, side) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${side}" height="${side}"><defs><linearGradient id="g" x2="1" y2="1"><stop offset="0" stop-color="hsl(${(i * 37) % 360},70%,60%)"/><stop offset="1" stop-color="hsl(${(i * 91) % 360},60%,30%)"/></linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/>${Array.from({ length: 12 }, (_, k) => `<circle cx="${(i * 13 + k * 47) % side}" cy="${(i * 29 + k * 71) % side}" r="${20 + ((i + k) % 60)}" fill="hsl(${(i * k * 17) % 360},80%,50%)" opacity="0.7"/>`).join('')}</svg>`;
    const raw = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer();
    for (let p = 0; p < raw.length; p++) raw[p] = Math.max(0, Math.min(255, raw[p] + ((p * 2654435761 + i) % 23) - 11));
    out.push(await sharp(raw, { raw: { width: side, height: side, channels: 3 } }).jpeg({ quality: 85 }).toBuffer());
  }
  return out;
}

function ctxFor(root) {
  mkdirSync(join(root, 'out'), { recursive: true });
  mkdirSync(join(root, 'scratch'), { recursive: true });
  const noop = () => {};
  return {
    instance: 'bench', stage: 'bench', key: 'bench', outDir: join(root, 'out'), scratchDir: join(root, 'scratch'), projectDir: root,
    attempt: 1, seed: 1, resources: { cpus: 2, gpus: 0, memBytes: 0, timeSeconds: 0, gpuIds: [] },
    log: { debug: noop, info: noop, warn: console.warn, error: console.error }, progress: noop, metric: noop, signal: new AbortController().signal,
  };
}

async function plainLoop(bufs, size, encode = false) {
  const t = performance.now();
  let i = 0;
  const worker = async () => {
    while (i < bufs.length) {
      const b = bufs[i++];
      const img = sharp(b).resize(size, size, { fit: 'cover' });
      await (encode ? img.jpeg({ quality: 90 }) : img.raw()).toBuffer();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return bufs.length / ((performance.now() - t) / 1000);
}

async function benchScrape(root) {
  const child = fork(new URL(import.meta.url).pathname, [], { env: { ...process.env, BENCH_SERVER: '1' } });
  const { port } = await new Promise((ok) => child.once('message', ok));
  try {
    const tsv = join(root, 'index.tsv');
    writeFileSync(tsv, Array.from({ length: N }, (_, i) => `bench caption ${i}\thttp://127.0.0.1:${port}/img/${i}.jpg`).join('\n') + '\n');
    const params = { tsv, limit: 0, image_size: 224, concurrency: 16, per_host: 16, timeout: 30, retries: 2, retry_delay: 0.5, user_agent: 'smke-bench', min_side: 10, max_bytes: 20_000_000, shard_size: 1000 };
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await cc3mKind.run(ctxFor(join(root, 'scrape')), params);
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const ds = await ImageDataset.open(join(root, 'scrape/out/pairs'));
    const kept = (await ds.records('train')).length;
    console.log(`scrape: ${kept}/${N} images in ${secs.toFixed(1)} s = ${(N / secs).toFixed(0)} images/s; scraper CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s = ${((cpu.user + cpu.system) / 1e6 / secs).toFixed(2)} cores busy (sharp's libuv threads included)`);
  } finally {
    child.kill();
  }
  const bufs = await makeImages(DISTINCT, 512);
  const all = Array.from({ length: Math.min(N, 3000) }, (_, i) => bufs[i % DISTINCT]);
  console.log(`scrape baseline: plain sharp 512->224 resize loop, 8 in flight: ${(await plainLoop(all, 224)).toFixed(0)} images/s to raw pixels, ${(await plainLoop(all, 224, true)).toFixed(0)} images/s to JPEG (what a scraper must store)`);
}

async function benchLoader(root) {
  // The loader reads what scraping stores: JPEGs with a 256 shorter side.
  const count = Math.min(N, 2048);
  const src = await makeImages(DISTINCT, 512);
  const small = await Promise.all(src.map((b) => sharp(b).resize(256, 256, { fit: 'outside' }).jpeg({ quality: 90 }).toBuffer()));
  const w = new ImageDatasetWriter(join(root, 'ds'), { type: 'image-text', name: 'bench', source: 'bench' });
  for (let i = 0; i < count; i++) await w.add({ id: `b${i}`, split: 'train', data: small[i % DISTINCT], ext: 'jpg', captions: ['x'] });
  await w.finish();
  const ds = await ImageDataset.open(join(root, 'ds'));
  // tfjs is optional here so the benchmark can run on a machine carrying only sharp; the tensor step is then skipped (and said so).
  const tf = await import('@tensorflow/tfjs').catch(() => undefined);
  if (tf) {
    tf.env().set('PROD', true);
    await tf.setBackend('cpu');
  } else console.log('loader: @tensorflow/tfjs not installed: measuring up to the Float32Array batches, without toTensor');
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let n = 0;
  for await (const b of imageBatches(ds, { split: 'train', batchSize: 64, seed: 1, augment: { size: 224, train: true, scale: [0.9, 1], jitter: 0.4 }, concurrency: 6, prefetch: 2 })) {
    if (tf) {
      const t = toTensor(tf, b);
      t.images.dispose();
    }
    n += b.size;
  }
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  console.log(`loader: ${n} augmented 224x224 images into tensors in ${secs.toFixed(1)} s = ${(n / secs).toFixed(0)} images/s (${((cpu.user + cpu.system) / 1e6 / secs).toFixed(2)} cores busy)`);
  const files = Array.from({ length: count }, (_, i) => small[i % DISTINCT]);
  console.log(`loader baseline: plain sharp 256->224 resize loop, 8 in flight: ${(await plainLoop(files, 224)).toFixed(0)} images/s`);
}

async function main() {
  const root = mkdtempSync(join(tmpdir(), 'smke-bench-data-'));
  try {
    const os = await import('node:os');
    // The load average says whether other work shares the cores: figures are comparable only near 0.
    console.log(`machine: ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, sharp concurrency ${sharp.concurrency()}, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? 'default (4)'}`);
    if (what === 'scrape' || what === 'all') await benchScrape(root);
    if (what === 'loader' || what === 'all') await benchLoader(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
