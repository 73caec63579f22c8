// Text tasks in the formats of the 9 GLUE tasks: `<task>/<split>.jsonl` with
// normalised fields (text, text_pair, label) plus each task's spec in
// dataset.json, so a finetuning stage needs no per-task code.

import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  DATASET_FORMAT,
  DATASET_VERSION,
  DatasetFormatError,
  readDescriptor,
  writeDescriptor,
  type TextCorpusDescriptor,
  type TextExample,
  type TextTaskSpec,
  type TextTasksDescriptor,
} from './dataset-format.js';
import { writeFileAtomic } from './atomic.js';
import { JsonlIndex, readJsonlAll, writeJsonlAtomic } from './jsonl.js';

export const GLUE_TASK_NAMES = ['cola', 'sst2', 'mrpc', 'qqp', 'stsb', 'mnli', 'qnli', 'rte', 'wnli'] as const;
export type GlueTask = (typeof GLUE_TASK_NAMES)[number];

/** GLUE's own label orders and metrics (as the HF `nyu-mll/glue` dataset and the GLUE paper define them). */
export const GLUE_SPECS: Record<GlueTask, Omit<TextTaskSpec, 'splits'> & { fields: [string, string?] }> = {
  cola: {
    input: 'single',
    problem: 'classification',
    labels: ['unacceptable', 'acceptable'],
    metric: 'matthews',
    metrics: ['matthews', 'accuracy'],
    eval_split: 'validation',
    fields: ['sentence'],
  },
  sst2: {
    input: 'single',
    problem: 'classification',
    labels: ['negative', 'positive'],
    metric: 'accuracy',
    metrics: ['accuracy'],
    eval_split: 'validation',
    fields: ['sentence'],
  },
  mrpc: {
    input: 'pair',
    problem: 'classification',
    labels: ['not_equivalent', 'equivalent'],
    metric: 'f1',
    metrics: ['f1', 'accuracy'],
    eval_split: 'validation',
    fields: ['sentence1', 'sentence2'],
  },
  qqp: {
    input: 'pair',
    problem: 'classification',
    labels: ['not_duplicate', 'duplicate'],
    metric: 'f1',
    metrics: ['f1', 'accuracy'],
    eval_split: 'validation',
    fields: ['question1', 'question2'],
  },
  stsb: {
    input: 'pair',
    problem: 'regression',
    labels: [],
    range: [0, 5],
    metric: 'spearman',
    metrics: ['spearman', 'pearson'],
    eval_split: 'validation',
    fields: ['sentence1', 'sentence2'],
  },
  mnli: {
    input: 'pair',
    problem: 'classification',
    labels: ['entailment', 'neutral', 'contradiction'],
    metric: 'accuracy',
    metrics: ['accuracy'],
    eval_split: 'validation_matched',
    fields: ['premise', 'hypothesis'],
  },
  qnli: {
    input: 'pair',
    problem: 'classification',
    labels: ['entailment', 'not_entailment'],
    metric: 'accuracy',
    metrics: ['accuracy'],
    eval_split: 'validation',
    fields: ['question', 'sentence'],
  },
  rte: {
    input: 'pair',
    problem: 'classification',
    labels: ['entailment', 'not_entailment'],
    metric: 'accuracy',
    metrics: ['accuracy'],
    eval_split: 'validation',
    fields: ['sentence1', 'sentence2'],
  },
  wnli: {
    input: 'pair',
    problem: 'classification',
    labels: ['not_entailment', 'entailment'],
    metric: 'accuracy',
    metrics: ['accuracy'],
    eval_split: 'validation',
    fields: ['sentence1', 'sentence2'],
  },
};

/** The spec of a GLUE task without the GLUE field names (those only matter when converting). */
export function glueSpec(task: GlueTask, splits: Record<string, number>): TextTaskSpec {
  const { fields: _fields, ...spec } = GLUE_SPECS[task];
  return { ...spec, splits };
}

/** Check one example against its task spec; returns a reason when it is unusable. */
export function checkExample(spec: TextTaskSpec, ex: TextExample): string | undefined {
  if (typeof ex.text !== 'string' || ex.text.trim() === '') return 'empty text';
  if (spec.input === 'pair' && (typeof ex.text_pair !== 'string' || ex.text_pair.trim() === '')) return 'empty text_pair';
  if (typeof ex.label !== 'number' || Number.isNaN(ex.label)) return 'label is not a number';
  if (ex.label === -1) return undefined;
  if (spec.problem === 'classification' && (!Number.isInteger(ex.label) || ex.label < 0 || ex.label >= spec.labels.length)) {
    return `label ${ex.label} is not in [0, ${spec.labels.length})`;
  }
  if (spec.problem === 'regression' && spec.range && (ex.label < spec.range[0] || ex.label > spec.range[1])) {
    return `score ${ex.label} is outside [${spec.range[0]}, ${spec.range[1]}]`;
  }
  return undefined;
}

/** Writes a text-tasks dataset; each task's splits are written as they are added. */
export class TextTasksWriter {
  private readonly tasks: Record<string, TextTaskSpec> = {};

  constructor(
    readonly dir: string,
    private readonly name: string,
    private readonly source: string,
  ) {}

  async addTask(task: string, spec: Omit<TextTaskSpec, 'splits'>, splits: Record<string, TextExample[]>): Promise<void> {
    if (!/^[a-z][a-z0-9_]*$/.test(task)) throw new Error(`task name ${JSON.stringify(task)} must be lower-case letters, digits and _`);
    const counts: Record<string, number> = {};
    const full: TextTaskSpec = { ...spec, splits: counts };
    await mkdir(join(this.dir, task), { recursive: true });
    for (const [split, examples] of Object.entries(splits)) {
      for (const ex of examples) {
        const bad = checkExample(full, ex);
        if (bad) throw new Error(`task ${task}, split ${split}, idx ${ex.idx}: ${bad}`);
      }
      await writeJsonlAtomic(join(this.dir, task, `${split}.jsonl`), examples);
      counts[split] = examples.length;
    }
    if (!(spec.eval_split in counts)) throw new Error(`task ${task}: eval split '${spec.eval_split}' was not written`);
    this.tasks[task] = full;
  }

  async finish(): Promise<TextTasksDescriptor> {
    const d: TextTasksDescriptor = {
      format: DATASET_FORMAT,
      version: DATASET_VERSION,
      type: 'text-tasks',
      name: this.name,
      source: this.source,
      tasks: this.tasks,
    };
    await writeDescriptor(this.dir, d);
    return d;
  }
}

export class TextTasks {
  private constructor(
    readonly dir: string,
    readonly descriptor: TextTasksDescriptor,
  ) {}

  static async open(dir: string): Promise<TextTasks> {
    const abs = resolve(dir);
    return new TextTasks(abs, await readDescriptor<TextTasksDescriptor>(abs, 'text-tasks'));
  }

  get names(): string[] {
    return Object.keys(this.descriptor.tasks);
  }

  spec(task: string): TextTaskSpec {
    const s = this.descriptor.tasks[task];
    if (!s) throw new DatasetFormatError(`${this.dir} has no task '${task}' (it has: ${this.names.join(', ')})`);
    return s;
  }

  private splitFile(task: string, split: string): string {
    const spec = this.spec(task);
    if (!(split in spec.splits)) {
      throw new DatasetFormatError(`task ${task} in ${this.dir} has no split '${split}' (it has: ${Object.keys(spec.splits).join(', ')})`);
    }
    return join(this.dir, task, `${split}.jsonl`);
  }

  async examples(task: string, split: string): Promise<TextExample[]> {
    return readJsonlAll<TextExample>(this.splitFile(task, split));
  }

  /** The split by position, read on demand (streaming): only the record offsets are held. */
  async index(task: string, split: string): Promise<JsonlIndex<TextExample>> {
    return JsonlIndex.open<TextExample>(this.splitFile(task, split));
  }
}

export async function writeCorpus(dir: string, name: string, source: string, lines: Iterable<string>): Promise<TextCorpusDescriptor> {
  await mkdir(dir, { recursive: true });
  const all: string[] = [];
  for (const l of lines) {
    // One line per sentence is the format: a newline inside one would split it silently.
    all.push(l.replace(/[\r\n]+/g, ' '));
  }
  await writeFileAtomic(join(dir, 'corpus.txt'), all.join('\n') + '\n');
  const d: TextCorpusDescriptor = {
    format: DATASET_FORMAT,
    version: DATASET_VERSION,
    type: 'text-corpus',
    name,
    source,
    file: 'corpus.txt',
    lines: all.length,
  };
  await writeDescriptor(dir, d);
  return d;
}

export async function readCorpus(dir: string): Promise<string[]> {
  const abs = resolve(dir);
  const d = await readDescriptor<TextCorpusDescriptor>(abs, 'text-corpus');
  const text = await readFile(join(abs, d.file), 'utf8');
  return text.split('\n').filter((l) => l.length > 0);
}
