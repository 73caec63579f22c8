import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ImageDataset } from '../../src/data/image-dataset.js';
import { TextTasks, readCorpus, GLUE_TASK_NAMES } from '../../src/data/text-tasks.js';
import { syntheticKind } from '../../src/stages/data/synthetic.js';
import { makeCtx, withDefaults, type TestCtx } from './ctx.js';

const SMALL = {
  seed: 7,
  coco: { train: 60, val: 10, test: 10 },
  flickr: { train: 20, val: 5, test: 5 },
  classify: { classes: 4, train_per_class: 30, val_per_class: 10 },
  text: { train: 1000, eval: 400 },
  corpus_lines: 500,
  shard_size: 25,
};

function digestTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

let a: TestCtx;
let b: TestCtx;
let c: TestCtx;
let d: TestCtx;

beforeAll(async () => {
  const params = await withDefaults(syntheticKind.params, SMALL);
  [a, b, c, d] = [makeCtx(), makeCtx(), makeCtx(), makeCtx()];
  await syntheticKind.run(a, params);
  await syntheticKind.run(b, params);
  await syntheticKind.run(c, { ...params, seed: 8 });
  await syntheticKind.run(d, { ...params, text: { train: 300, eval: 100 } });
});
afterAll(() => [a, b, c, d].forEach((x) => x?.cleanup()));

describe('data.synthetic', () => {
  test('schema defaults are complete and the descriptor stays light (no sharp at import)', async () => {
    const p = await withDefaults(syntheticKind.params, {});
    expect(p).toMatchObject({
      seed: 42,
      image_size: 64,
      coco: { train: 2000, val: 250, test: 250 },
      classify: { classes: 10 },
      text: { train: 2000, eval: 1000 },
    });
    const outs = syntheticKind.outputs(p);
    expect(Object.keys(outs).sort()).toEqual(['classes', 'corpus', 'flickr', 'images', 'out', 'pairs', 'tasks']);
    const src = readFileSync(new URL('../../src/stages/data/synthetic.ts', import.meta.url), 'utf8');
    expect(src).not.toMatch(/^import .*(sharp|tfjs)/m);
  });

  test('is deterministic: the same seed gives byte-identical files, another seed different ones', () => {
    const da = digestTree(a.outDir);
    expect(Object.keys(da).length).toBeGreaterThan(20);
    expect(digestTree(b.outDir)).toEqual(da);
    const dc = digestTree(c.outDir);
    expect(dc['coco/index.jsonl']).not.toBe(da['coco/index.jsonl']);
    expect(dc['glue/sst2/train.jsonl']).not.toBe(da['glue/sst2/train.jsonl']);
  });

  test("the MLM corpus and the images do not depend on the text tasks' sizes, so resizing a task keeps the pretrained start", () => {
    const da = digestTree(a.outDir);
    const dd = digestTree(d.outDir);
    const same = (prefix: string) => Object.keys(da).filter((k) => k.startsWith(prefix));
    for (const k of [...same('corpus/'), ...same('coco/'), ...same('classify/')]) expect(dd[k], k).toBe(da[k]);
    expect(same('corpus/').length).toBeGreaterThan(0);
    expect(dd['glue/wnli/train.jsonl']).not.toBe(da['glue/wnli/train.jsonl']);
  });

  test('writes every part in the common formats, readable by the readers', async () => {
    const outs = syntheticKind.outputs({});
    const coco = await ImageDataset.open(join(a.outDir, outs.pairs!.path), 'image-text');
    expect(coco.descriptor.splits).toEqual({ train: 60, val: 10, test: 10 });
    const recs = await coco.records('val');
    expect(recs).toHaveLength(10);
    for (const r of recs) {
      expect(r.captions).toHaveLength(5);
      expect(new Set(r.captions).size).toBeGreaterThan(1);
      const meta = await sharp(await coco.readImage(r)).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 64, 64]);
    }
    const flickr = await ImageDataset.open(join(a.outDir, outs.flickr!.path));
    expect(flickr.descriptor.splits).toEqual({ train: 20, val: 5, test: 5 });

    const cls = await ImageDataset.open(join(a.outDir, outs.images!.path), 'image-class');
    expect(cls.classes).toHaveLength(4);
    expect(JSON.parse(readFileSync(join(a.outDir, outs.classes!.path), 'utf8'))).toEqual(cls.classes);
    for (const name of cls.classes) expect(name).toMatch(/^[a-z]+ [a-z]+$/);
    const labels = (await cls.records('train')).map((r) => r.label);
    expect(new Set(labels).size).toBe(4);

    const tasks = await TextTasks.open(join(a.outDir, outs.tasks!.path));
    expect(tasks.names).toEqual([...GLUE_TASK_NAMES]);
    expect(tasks.spec('mnli').eval_split).toBe('validation_matched');
    expect(tasks.spec('rte').splits.train).toBe(250);
    expect(tasks.spec('wnli').splits).toEqual({ train: 1000, validation: 400, test: 400 });
    expect((await readCorpus(join(a.outDir, outs.corpus!.path))).length).toBe(500);

    expect(a.metrics.find((m) => m.name === 'images')?.value).toBe(80 + 30 + 160);
    expect(a.progressed.at(-1)).toEqual({ done: 270, total: 270, unit: 'images' });
  });

  test('classification images carry real signal: nearest class mean on 8x8 thumbnails beats chance by far', async () => {
    const cls = await ImageDataset.open(join(a.outDir, 'classify'));
    // Feature: mean colour of the most saturated pixels (the labelled object, not the grey-ish background).
    const feats = async (split: string) =>
      Promise.all(
        (await cls.records(split)).map(async (r) => {
          const px = await sharp(await cls.readImage(r))
            .raw()
            .toBuffer();
          const sat: [number, number][] = [];
          for (let i = 0; i < px.length; i += 3)
            sat.push([Math.max(px[i]!, px[i + 1]!, px[i + 2]!) - Math.min(px[i]!, px[i + 1]!, px[i + 2]!) + (px[i]! + px[i + 1]! + px[i + 2]!) / 6, i]);
          sat.sort((x, y) => y[0] - x[0]);
          const top = sat.slice(0, 100);
          const x = [0, 1, 2].map((c) => top.reduce((s, [, i]) => s + px[i + c]!, 0) / top.length);
          return { label: r.label!, x };
        }),
      );
    const train = await feats('train');
    const val = await feats('val');
    const means = cls.classes.map((_, k) => {
      const rows = train.filter((t) => t.label === k);
      return [0, 1, 2].map((i) => rows.reduce((s, r) => s + r.x[i]!, 0) / rows.length);
    });
    let correct = 0;
    for (const v of val) {
      const d = means.map((m) => m.reduce((s, mi, i) => s + (mi - v.x[i]!) ** 2, 0));
      if (d.indexOf(Math.min(...d)) === v.label) correct++;
    }
    expect(correct / val.length).toBeGreaterThan(0.4);
  });

  test('text tasks are learnable but not trivial: a bag-of-words model beats chance on sst2 and does not solve cola', async () => {
    const tasks = await TextTasks.open(join(a.outDir, 'glue'));
    async function nbAccuracy(task: string): Promise<number> {
      const train = await tasks.examples(task, 'train');
      const val = await tasks.examples(task, tasks.spec(task).eval_split);
      const k = tasks.spec(task).labels.length;
      const counts = Array.from({ length: k }, () => new Map<string, number>());
      const totals = new Array(k).fill(0);
      const prior = new Array(k).fill(0);
      for (const ex of train) {
        prior[ex.label]++;
        for (const w of `${ex.text} ${ex.text_pair ?? ''}`.split(/\s+/)) {
          counts[ex.label]!.set(w, (counts[ex.label]!.get(w) ?? 0) + 1);
          totals[ex.label]++;
        }
      }
      let ok = 0;
      for (const ex of val) {
        const scores = prior.map((p, c) =>
          `${ex.text} ${ex.text_pair ?? ''}`.split(/\s+/).reduce((s, w) => s + Math.log(((counts[c]!.get(w) ?? 0) + 1) / (totals[c] + 1000)), Math.log(p)),
        );
        if (scores.indexOf(Math.max(...scores)) === ex.label) ok++;
      }
      return ok / val.length;
    }
    const sst2Bow = await nbAccuracy('sst2');
    expect(sst2Bow).toBeGreaterThan(0.6);
    // A reader that understands negation and "but" (the last evaluative word wins) does far better: the labels are consistent.
    const pos = /\b(beautiful|lovely|pleasant|charming|delightful|wonderful|elegant|cheerful)\b/g;
    const neg = /\b(ugly|dull|boring|awful|gloomy|dreadful|clumsy|dreary)\b/g;
    let oracle = 0;
    const sval = await tasks.examples('sst2', 'validation');
    for (const ex of sval) {
      const lastPos = Math.max(-1, ...[...ex.text.matchAll(pos)].map((m) => m.index!));
      const lastNeg = Math.max(-1, ...[...ex.text.matchAll(neg)].map((m) => m.index!));
      let guess = lastPos > lastNeg ? 1 : 0;
      if (/ not /.test(ex.text)) guess = 1 - guess;
      if (guess === ex.label) oracle++;
    }
    expect(oracle / sval.length).toBeGreaterThan(0.93);
    expect(oracle / sval.length).toBeGreaterThan(sst2Bow + 0.1);
    // CoLA's negatives reuse the same words in a broken order: word counts alone cannot tell them apart well.
    expect(await nbAccuracy('cola')).toBeLessThan(0.85);
    for (const task of tasks.names) {
      const ex = await tasks.examples(task, 'train');
      const spec = tasks.spec(task);
      if (spec.problem === 'classification') {
        const seen = new Set(ex.map((e) => e.label));
        expect(seen.size, `${task} uses every label`).toBe(spec.labels.length);
      }
    }
    // STS-B: the score follows how much two descriptions share.
    const st = await tasks.examples('stsb', 'train');
    const hi = st.filter((e) => e.label >= 4).length;
    const lo = st.filter((e) => e.label <= 1.5).length;
    expect(hi).toBeGreaterThan(30);
    expect(lo).toBeGreaterThan(30);
  });
});
