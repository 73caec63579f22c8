// The on-disk dataset formats (docs/datasets.md is the reference). Every
// dataset directory holds a `dataset.json` descriptor; readers check its
// format name and version before trusting anything else in the directory.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic.js';

export const DATASET_FORMAT = 'smke-dataset';
/** Bump when a reader of the previous version could misread the new layout. */
export const DATASET_VERSION = 1;
export const DESCRIPTOR = 'dataset.json';

export type DatasetType = 'image-text' | 'image-class' | 'text-tasks' | 'text-corpus';

interface DescriptorBase {
  format: typeof DATASET_FORMAT;
  version: number;
  type: DatasetType;
  /** Human name, e.g. `coco-karpathy` or `synthetic-coco`. */
  name: string;
  /** Where the data came from (URL, archive name, or `data.synthetic seed=…`). */
  source: string;
}

export interface ImageDescriptor extends DescriptorBase {
  type: 'image-text' | 'image-class';
  /** Record counts per split. */
  splits: Record<string, number>;
  /** The JSON-lines index, relative to the dataset directory. */
  index: string;
  /** `shards`: images in tar shards (webdataset layout); `files`: one file per image. */
  storage: 'shards' | 'files';
  /** Image encoding and, when every image has it, the common size. */
  image: { format: 'jpeg' | 'png' | 'mixed'; width?: number; height?: number };
  /** Class names, by label index (image-class only). */
  classes?: string[];
}

export interface TextTaskSpec {
  /** `single`: one text; `pair`: text + text_pair. */
  input: 'single' | 'pair';
  problem: 'classification' | 'regression';
  /** Label names by index (classification); empty for regression. */
  labels: string[];
  /** Inclusive range of the target (regression only). */
  range?: [number, number];
  /** The task's headline metric and any secondary ones. */
  metric: TextMetric;
  metrics: TextMetric[];
  /** Record counts per split. */
  splits: Record<string, number>;
  /** Split to report (GLUE reports dev sets: `validation`, MNLI `validation_matched`). */
  eval_split: string;
}

export type TextMetric = 'accuracy' | 'f1' | 'matthews' | 'spearman' | 'pearson';

export interface TextTasksDescriptor extends DescriptorBase {
  type: 'text-tasks';
  /** Task name -> spec; records live in `<task>/<split>.jsonl`. */
  tasks: Record<string, TextTaskSpec>;
}

export interface TextCorpusDescriptor extends DescriptorBase {
  type: 'text-corpus';
  /** UTF-8 text, one sentence or document per line. */
  file: string;
  lines: number;
}

export type DatasetDescriptor = ImageDescriptor | TextTasksDescriptor | TextCorpusDescriptor;

/** One image in an image-text or image-class index. */
export interface ImageRecord {
  id: string;
  split: string;
  /** Shard file (relative to the dataset dir) holding the image, for `shards` storage. */
  shard?: string;
  /** Member name inside the shard, or the file path relative to the dataset dir for `files` storage. */
  path: string;
  /** Byte offset and length of the image data inside the shard (random access without scanning the tar). */
  offset?: number;
  size?: number;
  width?: number;
  height?: number;
  /** image-text: every caption of this image. */
  captions?: string[];
  /** image-class: index into the descriptor's `classes`. */
  label?: number;
}

/** One example of a text task. */
export interface TextExample {
  idx: number;
  text: string;
  text_pair?: string;
  /** Class index, or the score for regression; -1 when the split has no labels (GLUE test). */
  label: number;
}

export class DatasetFormatError extends Error {
  override name = 'DatasetFormatError';
}

export async function writeDescriptor(dir: string, d: DatasetDescriptor): Promise<void> {
  await writeFileAtomic(join(dir, DESCRIPTOR), JSON.stringify(d, null, 2) + '\n');
}

/** Read and check `dir/dataset.json`; `expect` narrows the accepted types. */
export async function readDescriptor<T extends DatasetDescriptor = DatasetDescriptor>(dir: string, expect?: DatasetType | DatasetType[]): Promise<T> {
  const path = join(dir, DESCRIPTOR);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DatasetFormatError(
        `${dir} is not a smke dataset: ${DESCRIPTOR} is missing. Point the stage at the output of a data stage (dataset.*, data.synthetic).`,
      );
    }
    throw err;
  }
  let d: DatasetDescriptor;
  try {
    d = JSON.parse(text) as DatasetDescriptor;
  } catch (err) {
    throw new DatasetFormatError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (d.format !== DATASET_FORMAT) {
    throw new DatasetFormatError(`${path}: format is ${JSON.stringify(d.format)}, expected "${DATASET_FORMAT}"`);
  }
  if (typeof d.version !== 'number' || d.version > DATASET_VERSION) {
    throw new DatasetFormatError(
      `${path}: dataset format version ${d.version} is newer than this smke reads (${DATASET_VERSION}); upgrade smke or regenerate the dataset`,
    );
  }
  const types = expect === undefined ? undefined : Array.isArray(expect) ? expect : [expect];
  if (types && !types.includes(d.type)) {
    throw new DatasetFormatError(`${dir} holds a ${d.type} dataset, but a ${types.join(' or ')} dataset is needed here`);
  }
  return d as T;
}
