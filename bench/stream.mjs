#!/usr/bin/env node
// Streaming RSS benchmark (run after `npx tsc -p tsconfig.json`): one epoch of
// src/data/stream.ts (shuffle buffer 1024, train augmentation, decode 2
// batches ahead, batch 64) over 10k and over 100k synthetic image-text pairs,
// each in a fresh process, measured in the same run. Streaming must keep the
// peak RSS the same (within 10%) at 10x the pairs. The in-memory path the
// mini profile uses (loadPairs: the whole split decoded once) is measured
// beside it for contrast. The pairs are written with src/data's
// ImageDatasetWriter (1,000 per tar shard) from 64 distinct tiny PNGs.
// Usage: node bench/stream.mjs [small] [large]   (default 10000 100000)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SIZE = 16; // decoded side: tiny, so the benchmark measures the data path, not sharp

async function generate(dir, n) {
  const sharp = (await import('sharp')).default;
  const { ImageDatasetWriter } = await import('../dist/data/image-dataset.js');
  const pngs = [];
  for (let i = 0; i < 64; i++) {
    const raw = Buffer.alloc(SIZE * SIZE * 3);
    for (let k = 0; k < raw.length; k++) raw[k] = (i * 37 + k * (i + 3)) & 255;
    pngs.push(await sharp(raw, { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toBuffer());
  }
  const w = new ImageDatasetWriter(dir, { type: 'image-text', name: 'bench-stream', source: 'bench/stream.mjs', shardSize: 1000 });
  for (let i = 0; i < n; i++) {
    await w.add({ id: `p${i}`, split: 'train', data: pngs[i % 64], ext: 'png', width: SIZE, height: SIZE, captions: [`a picture number ${i}`, `pair ${i % 997} of the benchmark`] });
  }
  await w.finish();
}

async function measure(dir, mode) {
  const t0 = performance.now();
  let images = 0, batches = 0, checksum = 0;
  if (mode === 'stream') {
    const { splitShards, streamBatches } = await import('../dist/data/stream.js');
    const src = await splitShards([dir], 'train');
    for await (const b of streamBatches(src, { split: 'train', seed: 1, epoch: 0, shuffle: true, shuffleBuffer: 1024, batchSize: 64, augment: { size: SIZE, train: true, scale: [0.9, 1], jitter: 0.4 } })) {
      images += b.size;
      batches++;
      checksum += b.images[0];
    }
  } else {
    const { loadImageSplit } = await import('../dist/stages/ml/images.js');
    const split = await loadImageSplit(dir, 'train', SIZE);
    images = split.records.length;
    checksum = split.pixels[0];
  }
  const seconds = (performance.now() - t0) / 1000;
  // maxRSS: the peak resident set of this process, in KiB.
  process.stdout.write(JSON.stringify({ mode, images, batches, seconds, peakRssMiB: process.resourceUsage().maxRSS / 1024, checksum }) + '\n');
}

const [cmd, a, b] = process.argv.slice(2);
if (cmd === '--generate') await generate(a, Number(b));
else if (cmd === '--measure') await measure(a, b);
else {
  const small = Number(cmd ?? 10000), large = Number(a ?? 100000);
  const root = mkdtempSync(join(tmpdir(), 'smke-bench-stream-'));
  const self = fileURLToPath(import.meta.url);
  const child = (...args) => {
    const r = spawnSync(process.execPath, [self, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`${args.join(' ')} failed:\n${r.stderr}`);
    return r.stdout.trim();
  };
  try {
    const rows = [];
    for (const n of [small, large]) {
      const dir = join(root, String(n));
      const g0 = performance.now();
      child('--generate', dir, String(n));
      console.error(`generated ${n} pairs in ${((performance.now() - g0) / 1000).toFixed(1)} s`);
      for (const mode of ['stream', 'memory']) {
        const r = JSON.parse(child('--measure', dir, mode));
        rows.push({ pairs: n, ...r });
        console.error(`${mode} ${n}: peak RSS ${r.peakRssMiB.toFixed(1)} MiB, ${r.images} images in ${r.seconds.toFixed(1)} s`);
      }
    }
    const peak = (n, m) => rows.find((r) => r.pairs === n && r.mode === m).peakRssMiB;
    const ratio = peak(large, 'stream') / peak(small, 'stream');
    console.log(JSON.stringify({ rows, streamRssRatio: ratio, memoryRssRatio: peak(large, 'memory') / peak(small, 'memory'), flat: Math.abs(ratio - 1) <= 0.1 }, null, 1));
    if (Math.abs(ratio - 1) > 0.1) process.exitCode = 1;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
