// The original GLUE distribution (the TSV files of download_glue_data.py)
// converted to the text-tasks format: per-task columns and label encodings.

import type { TextExample } from './dataset-format.js';
import { GLUE_SPECS, type GlueTask } from './text-tasks.js';

interface Columns {
  a: string;
  b?: string;
  label: string;
}

/** Column names in GLUE's TSV headers (CoLA's train/dev have no header; see parseGlueTsv). */
export const GLUE_COLUMNS: Record<GlueTask, Columns> = {
  cola: { a: 'sentence', label: 'label' },
  sst2: { a: 'sentence', label: 'label' },
  mrpc: { a: '#1 String', b: '#2 String', label: 'Quality' },
  qqp: { a: 'question1', b: 'question2', label: 'is_duplicate' },
  stsb: { a: 'sentence1', b: 'sentence2', label: 'score' },
  mnli: { a: 'sentence1', b: 'sentence2', label: 'gold_label' },
  qnli: { a: 'question', b: 'sentence', label: 'label' },
  rte: { a: 'sentence1', b: 'sentence2', label: 'label' },
  wnli: { a: 'sentence1', b: 'sentence2', label: 'label' },
};

export interface ParsedSplit {
  examples: TextExample[];
  malformed: number;
}

function encodeLabel(task: GlueTask, raw: string | undefined): number | undefined {
  const spec = GLUE_SPECS[task];
  if (raw === undefined || raw === '') return undefined;
  if (spec.problem === 'regression') {
    const v = Number(raw);
    return Number.isFinite(v) ? v : undefined;
  }
  const byName = spec.labels.indexOf(raw);
  if (byName >= 0) return byName;
  if (/^\d+$/.test(raw) && Number(raw) < spec.labels.length) return Number(raw);
  return undefined;
}

/** Parse one GLUE TSV. `labelled` false for test files (labels become -1). */
export function parseGlueTsv(task: GlueTask, text: string, labelled: boolean): ParsedSplit {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  const examples: TextExample[] = [];
  let malformed = 0;
  const cols = GLUE_COLUMNS[task];
  let header: string[];
  let body: string[];
  if (task === 'cola' && labelled) {
    // CoLA train/dev: source, label, original judgement, sentence — no header row.
    header = ['source', 'label', 'original', 'sentence'];
    body = lines;
  } else {
    header = (lines[0] ?? '').split('\t');
    body = lines.slice(1);
  }
  const ia = header.indexOf(cols.a);
  const ib = cols.b ? header.indexOf(cols.b) : -1;
  const il = header.indexOf(cols.label);
  if (ia < 0 || (cols.b && ib < 0) || (labelled && il < 0)) {
    throw new Error(
      `GLUE ${task}: the TSV header lacks ${[cols.a, cols.b, labelled ? cols.label : undefined].filter(Boolean).join(', ')} (header: ${header.join(' | ')})`,
    );
  }
  for (const line of body) {
    const f = line.split('\t');
    // MNLI rows carry a variable number of annotator labels, so only too-short rows are malformed.
    if (f.length < header.length && !(task === 'mnli' && f.length > Math.max(ia, ib, il))) {
      malformed++;
      continue;
    }
    const a = f[ia]?.trim();
    const b = ib >= 0 ? f[ib]?.trim() : undefined;
    const label = labelled ? encodeLabel(task, task === 'mnli' ? f.at(-1)?.trim() : f[il]?.trim()) : -1;
    if (!a || (cols.b && !b) || label === undefined) {
      malformed++;
      continue;
    }
    const ex: TextExample = { idx: examples.length, text: a, label };
    if (b !== undefined) ex.text_pair = b;
    examples.push(ex);
  }
  return { examples, malformed };
}

/** GLUE's MRPC split: the MSR paraphrase train file minus the dev ids is train; the dev ids are dev. */
export function splitMrpc(trainText: string, devIds: string): { train: string; dev: string } {
  const ids = new Set(
    devIds
      .split(/\r?\n/)
      .filter(Boolean)
      .map((l) =>
        l
          .split('\t')
          .map((s) => s.trim())
          .join('\t'),
      ),
  );
  const [header, ...rows] = trainText.split(/\r?\n/).filter(Boolean);
  const train = [header];
  const dev = [header];
  for (const r of rows) {
    const f = r.split('\t');
    (ids.has(`${f[1]?.trim()}\t${f[2]?.trim()}`) ? dev : train).push(r);
  }
  return { train: train.join('\n') + '\n', dev: dev.join('\n') + '\n' };
}
