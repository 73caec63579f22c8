// The work of dataset.glue (descriptor in ./glue.ts).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TextExample } from '../../data/dataset-format.js';
import { parseGlueTsv, splitMrpc } from '../../data/glue-tsv.js';
import { writeJsonAtomic } from '../../data/image-dataset.js';
import { TextTasksWriter, glueSpec, type GlueTask } from '../../data/text-tasks.js';
import { ZipReader } from '../../data/zip.js';
import type { StageContext } from '../stage-kind.js';
import type { GlueParams } from './glue.js';
import { obtain, using } from './obtain.js';

/** Zip name, directory inside it, and split -> [file, labelled]. */
const ZIPS: Record<Exclude<GlueTask, 'mrpc'>, { zip: string; files: Record<string, [string, boolean]> }> = {
  cola: { zip: 'CoLA.zip', files: { train: ['train.tsv', true], validation: ['dev.tsv', true], test: ['test.tsv', false] } },
  sst2: { zip: 'SST-2.zip', files: { train: ['train.tsv', true], validation: ['dev.tsv', true], test: ['test.tsv', false] } },
  qqp: { zip: 'QQP-clean.zip', files: { train: ['train.tsv', true], validation: ['dev.tsv', true], test: ['test.tsv', false] } },
  stsb: { zip: 'STS-B.zip', files: { train: ['train.tsv', true], validation: ['dev.tsv', true], test: ['test.tsv', false] } },
  mnli: {
    zip: 'MNLI.zip',
    files: {
      train: ['train.tsv', true],
      validation_matched: ['dev_matched.tsv', true],
      validation_mismatched: ['dev_mismatched.tsv', true],
      test_matched: ['test_matched.tsv', false],
      test_mismatched: ['test_mismatched.tsv', false],
    },
  },
  qnli: { zip: 'QNLIv2.zip', files: { train: ['train.tsv', true], validation: ['dev.tsv', true], test: ['test.tsv', false] } },
  rte: { zip: 'RTE.zip', files: { train: ['train.tsv', true], validation: ['dev.tsv', true], test: ['test.tsv', false] } },
  wnli: { zip: 'WNLI.zip', files: { train: ['train.tsv', true], validation: ['dev.tsv', true], test: ['test.tsv', false] } },
};

export async function runGlue(ctx: StageContext, params: GlueParams): Promise<void> {
  const base = params.base_url.replace(/\/+$/, '');
  const writer = new TextTasksWriter(join(ctx.outDir, 'glue'), 'glue', base);
  const stats: Record<string, Record<string, { examples: number; malformed: number }>> = {};
  for (const task of params.tasks) {
    ctx.signal.throwIfAborted();
    const splits: Record<string, TextExample[]> = {};
    stats[task] = {};
    const take = (split: string, text: string, labelled: boolean) => {
      const parsed = parseGlueTsv(task, text, labelled);
      splits[split] = parsed.examples;
      stats[task]![split] = { examples: parsed.examples.length, malformed: parsed.malformed };
      if (parsed.malformed) ctx.log.warn(`GLUE ${task} ${split}: ${parsed.malformed} malformed rows skipped`);
    };
    if (task === 'mrpc') {
      const mbase = params.mrpc_url.replace(/\/+$/, '');
      const trainFile = await obtain(ctx, { name: 'msr_paraphrase_train.txt', url: `${mbase}/msr_paraphrase_train.txt` });
      const testFile = await obtain(ctx, { name: 'msr_paraphrase_test.txt', url: `${mbase}/msr_paraphrase_test.txt` });
      const idsFile = await obtain(ctx, { name: 'mrpc_dev_ids.tsv', url: `${base}/mrpc_dev_ids.tsv` });
      const { train, dev } = splitMrpc(await readFile(trainFile, 'utf8'), await readFile(idsFile, 'utf8'));
      take('train', train, true);
      take('validation', dev, true);
      // The MSR test file is labelled, but GLUE treats MRPC test as hidden; keep it unlabelled like the other tasks.
      take('test', await readFile(testFile, 'utf8'), false);
    } else {
      const { zip: zipName, files } = ZIPS[task];
      const path = await obtain(ctx, { name: zipName, url: `${base}/${zipName}`, format: 'zip' });
      await using(ctx, path, async () => {
        const zip = await ZipReader.open(path);
        try {
          for (const [split, [file, labelled]] of Object.entries(files)) {
            const member = zip.find(file);
            if (!member) {
              ctx.log.warn(`GLUE ${task}: ${zipName} has no ${file}; split ${split} left out`);
              continue;
            }
            take(split, (await zip.read(member)).toString('utf8'), labelled);
          }
        } finally {
          zip.close();
        }
      });
    }
    await writer.addTask(task, glueSpec(task, {}), splits);
    ctx.log.info(
      `GLUE ${task}: ${Object.entries(stats[task]!)
        .map(([s, v]) => `${s} ${v.examples}`)
        .join(', ')}`,
    );
  }
  await writer.finish();
  await writeJsonAtomic(join(ctx.outDir, 'stats.json'), stats);
}
