// data.synthetic's generator: the mini profile's datasets, in the same
// formats as the real ones, deterministic from one seed and made offline.

import { join } from 'node:path';
import { ImageDatasetWriter } from '../image-dataset.js';
import { Rng, deriveSeed } from '../rng.js';
import { GLUE_TASK_NAMES, TextTasksWriter, glueSpec, writeCorpus } from '../text-tasks.js';
import { corpusSentence, generateTask, taskSplits } from './glue-tasks.js';
import { knowledgeSentence } from './knowledge.js';
import { caption, captions, type Vocabulary } from './language.js';
import { renderScene } from './render-scene.js';
import { COLOR_NAMES, SHAPES, randomScene, type Color, type Scene, type SceneOptions, type Shape } from './scene.js';

export interface PairSetOptions {
  train: number;
  val: number;
  test: number;
}

export interface SyntheticOptions {
  seed: number;
  /** Side of the square images, in pixels. */
  imageSize: number;
  /** Std of per-pixel Gaussian noise (0-255 units). */
  noise: number;
  /** Up to this many unmentioned distractors per image. */
  distractors: number;
  captionsPerImage: number;
  coco: PairSetOptions;
  flickr: PairSetOptions;
  classify: { classes: number; trainPerClass: number; valPerClass: number };
  /** Train and evaluation examples per text task (RTE gets fewer, as in GLUE). */
  text: { train: number; eval: number };
  corpusLines: number;
  /** Share of the corpus that is world knowledge (knowledge.ts); 0 gives the corpus of captions and task sentences alone. */
  knowledgeFraction: number;
  /** The colour and shape words of the pair sets' training captions: every synonym, or the narrower `paired` part (language.ts). */
  trainVocabulary: Vocabulary;
  shardSize: number;
}

export const SYNTHETIC_DEFAULTS: SyntheticOptions = {
  seed: 42,
  imageSize: 64,
  noise: 6,
  distractors: 2,
  captionsPerImage: 5,
  coco: { train: 2000, val: 250, test: 250 },
  flickr: { train: 1000, val: 100, test: 100 },
  classify: { classes: 10, trainPerClass: 50, valPerClass: 20 },
  text: { train: 2000, eval: 1000 },
  corpusLines: 20000,
  knowledgeFraction: 0,
  trainVocabulary: 'full',
  shardSize: 1000,
};

export interface GenerateHooks {
  progress?(done: number, total: number, unit: string): void;
  log?(msg: string): void;
  signal?: AbortSignal;
}

/** Where each part lands inside the output directory. */
export const SYNTHETIC_LAYOUT = { coco: 'coco', flickr: 'flickr', classify: 'classify', glue: 'glue', corpus: 'corpus' } as const;

/** Class names for the classification set: distinct colour+shape pairs, the same words captions use. */
export function classNames(n: number, seed: number): { name: string; shape: Shape; color: Color }[] {
  const all: { name: string; shape: Shape; color: Color }[] = [];
  for (const shape of SHAPES) for (const color of COLOR_NAMES) all.push({ name: `${color} ${shape}`, shape, color });
  if (n < 2 || n > all.length) throw new Error(`classify.classes must be between 2 and ${all.length}, got ${n}`);
  return new Rng(deriveSeed(seed, 'classes')).shuffle(all).slice(0, n);
}

/** Render images with bounded concurrency, but add them to the writer in index order (determinism). */
async function renderAll(
  items: { id: string; split: string; scene: Scene; rngSeed: number; captions?: string[]; label?: number }[],
  writer: ImageDatasetWriter,
  o: SyntheticOptions,
  tick: () => void,
  signal?: AbortSignal,
): Promise<void> {
  const batch = 16;
  for (let i = 0; i < items.length; i += batch) {
    signal?.throwIfAborted();
    const slice = items.slice(i, i + batch);
    const images = await Promise.all(slice.map((it) => renderScene(it.scene, o.imageSize, o.noise, new Rng(it.rngSeed))));
    for (let k = 0; k < slice.length; k++) {
      const it = slice[k]!;
      await writer.add({
        id: it.id,
        split: it.split,
        data: images[k]!,
        ext: 'jpg',
        width: o.imageSize,
        height: o.imageSize,
        captions: it.captions,
        label: it.label,
      });
      tick();
    }
  }
}

function pairItems(set: 'coco' | 'flickr', sizes: PairSetOptions, o: SyntheticOptions) {
  // Flickr-like scenes are busier: more objects and clutter, like Flickr30K's people-and-places photos vs COCO's.
  const sceneOpts: SceneOptions =
    set === 'coco' ? { minObjects: 1, maxObjects: 3, distractors: o.distractors } : { minObjects: 2, maxObjects: 3, distractors: o.distractors + 2 };
  const items = [];
  for (const split of ['train', 'val', 'test'] as const) {
    for (let i = 0; i < sizes[split]; i++) {
      const rng = new Rng(deriveSeed(o.seed, set, split, i));
      const scene = randomScene(rng, sceneOpts);
      items.push({
        id: `${set}-${split}-${String(i).padStart(6, '0')}`,
        split,
        scene,
        rngSeed: deriveSeed(o.seed, set, split, i, 'render'),
        // Training captions only use the paired part of the vocabulary; val and test captions, like prompts, use all of it.
        captions: captions(scene, o.captionsPerImage, rng, split === 'train' ? o.trainVocabulary : 'full'),
      });
    }
  }
  return items;
}

function classifyItems(o: SyntheticOptions, classes: ReturnType<typeof classNames>) {
  const items = [];
  for (const [split, per] of [
    ['train', o.classify.trainPerClass],
    ['val', o.classify.valPerClass],
  ] as const) {
    for (let i = 0; i < per * classes.length; i++) {
      const label = i % classes.length;
      const rng = new Rng(deriveSeed(o.seed, 'classify', split, i));
      const c = classes[label]!;
      // One labelled object plus clutter; distractor objects would make the label ambiguous.
      const scene = randomScene(rng, { minObjects: 1, maxObjects: 1, distractors: o.distractors, first: { shape: c.shape, color: c.color } });
      items.push({ id: `cls-${split}-${String(i).padStart(6, '0')}`, split, scene, rngSeed: deriveSeed(o.seed, 'classify', split, i, 'render'), label });
    }
  }
  return items;
}

export interface SyntheticSummary {
  coco: Record<string, number>;
  flickr: Record<string, number>;
  classify: Record<string, number>;
  classes: string[];
  glue: Record<string, Record<string, number>>;
  corpusLines: number;
}

export async function generateSynthetic(outDir: string, opts: Partial<SyntheticOptions> = {}, hooks: GenerateHooks = {}): Promise<SyntheticSummary> {
  const o: SyntheticOptions = { ...SYNTHETIC_DEFAULTS, ...opts };
  const source = `data.synthetic seed=${o.seed}`;
  const classes = classNames(o.classify.classes, o.seed);
  const coco = pairItems('coco', o.coco, o);
  const flickr = pairItems('flickr', o.flickr, o);
  const cls = classifyItems(o, classes);
  const total = coco.length + flickr.length + cls.length;
  let done = 0;
  const tick = () => {
    done++;
    if (done % 50 === 0 || done === total) hooks.progress?.(done, total, 'images');
  };

  const summary: Partial<SyntheticSummary> = {};
  for (const [name, items] of [
    ['coco', coco],
    ['flickr', flickr],
  ] as const) {
    const w = new ImageDatasetWriter(join(outDir, SYNTHETIC_LAYOUT[name]), { type: 'image-text', name: `synthetic-${name}`, source, shardSize: o.shardSize });
    await renderAll(items, w, o, tick, hooks.signal);
    summary[name] = (await w.finish()).splits;
    hooks.log?.(`${name}-like pairs: ${items.length} images`);
  }
  const cw = new ImageDatasetWriter(join(outDir, SYNTHETIC_LAYOUT.classify), {
    type: 'image-class',
    name: 'synthetic-classify',
    source,
    shardSize: o.shardSize,
    classes: classes.map((c) => c.name),
  });
  await renderAll(cls, cw, o, tick, hooks.signal);
  summary.classify = (await cw.finish()).splits;
  summary.classes = classes.map((c) => c.name);

  hooks.signal?.throwIfAborted();
  const tw = new TextTasksWriter(join(outDir, SYNTHETIC_LAYOUT.glue), 'synthetic-glue', source);
  summary.glue = {};
  for (const task of GLUE_TASK_NAMES) {
    const splits = taskSplits(task, o.text.train, o.text.eval);
    const data = generateTask(task, splits, o.seed);
    await tw.addTask(task, glueSpec(task, {}), data);
    summary.glue[task] = splits;
  }
  await tw.finish();
  hooks.log?.(`text tasks: ${GLUE_TASK_NAMES.join(', ')}`);

  const rng = new Rng(deriveSeed(o.seed, 'corpus'));
  const lines: string[] = [];
  for (let i = 0; i < o.corpusLines; i++) {
    // The knowledge draw only when there is knowledge, so a corpus without it is the one made before knowledge existed.
    if (o.knowledgeFraction > 0 && rng.chance(o.knowledgeFraction)) {
      lines.push(knowledgeSentence(rng));
      continue;
    }
    lines.push(rng.chance(0.6) ? caption(randomScene(rng, { minObjects: 1, maxObjects: 3, distractors: 0 }), rng) : corpusSentence(rng));
  }
  await writeCorpus(join(outDir, SYNTHETIC_LAYOUT.corpus), 'synthetic-corpus', source, lines);
  summary.corpusLines = lines.length;
  return summary as SyntheticSummary;
}
