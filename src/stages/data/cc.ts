// `dataset.cc3m` and `dataset.cc12m`: Conceptual Captions, scraped from the
// image URLs of their TSV index. CC3M's index is downloaded by hand (Google's
// terms); CC12M's is fetched. Both share the scraper in ./cc-run.ts.

import { defineKind, type ObjectSchema, type ParamsOf } from '../stage-kind.js';
import { KIND_VERSIONS } from '../kind-versions.js';

export const CC3M_HELP =
  'Download Train-GCC-training.tsv from https://ai.google.com/research/ConceptualCaptions/download (accept the terms), and set `tsv` to its path';
export const CC12M_URL = 'https://storage.googleapis.com/conceptual_12m/cc12m.tsv';

const scrapeParams = {
  limit: { type: 'integer', minimum: 0, default: 0, description: 'Use only the first N rows of the index (0: all). S-SMKE used the first 3M rows of CC12M.' },
  image_size: {
    type: 'integer',
    minimum: 16,
    maximum: 2048,
    default: 256,
    description: 'Shorter side of stored images (never enlarged); training crops 224 from it.',
  },
  concurrency: { type: 'integer', minimum: 1, maximum: 1024, default: 64, description: 'Requests in flight overall.' },
  per_host: { type: 'integer', minimum: 1, maximum: 256, default: 8, description: 'Requests in flight per host (be polite to image hosts).' },
  timeout: { type: 'number', exclusiveMinimum: 0, default: 5, description: 'Seconds per request (S-SMKE: 5).' },
  http_retries: {
    type: 'integer',
    minimum: 0,
    maximum: 10,
    default: 2,
    description: 'Extra tries of one image after a transient failure (S-SMKE: 3 tries in all). The stage setting `retries` reruns the whole stage instead.',
  },
  retry_delay: { type: 'number', minimum: 0, default: 0.5, description: 'First backoff in seconds (doubles, with jitter).' },
  user_agent: {
    type: 'string',
    default: 'smke/0.1 (image-caption dataset research; +https://github.com/smke)',
    description: 'User-Agent sent to image hosts.',
  },
  min_side: { type: 'integer', minimum: 1, default: 10, description: 'Images with a smaller side are placeholders and dropped.' },
  max_bytes: { type: 'integer', minimum: 1024, default: 20_000_000, description: 'Larger responses are dropped.' },
  shard_size: { type: 'integer', minimum: 1, default: 1000, description: 'Images per tar shard.' },
} as const;

const outputs = () => ({
  out: { type: 'dir' as const, path: '.', description: 'The output directory' },
  pairs: { type: 'dir' as const, path: 'pairs', description: 'Image-text pairs (split train), the images that survived scraping' },
  stats: { type: 'metrics' as const, path: 'stats.json', description: 'Rows attempted, ok, failed by reason, malformed rows' },
});

const cc3mParams = {
  type: 'object',
  additionalProperties: false,
  required: ['tsv'],
  properties: {
    tsv: { type: 'string', minLength: 1, description: `Path of Train-GCC-training.tsv (project-relative or absolute). ${CC3M_HELP}.` },
    ...scrapeParams,
  },
} as const satisfies ObjectSchema;

export type Cc3mParams = ParamsOf<typeof cc3mParams>;

export const cc3mKind = defineKind({
  name: 'dataset.cc3m',
  version: KIND_VERSIONS['dataset.cc3m'],
  summary: 'Conceptual Captions 3M: scrape the images of a user-supplied Train-GCC-training.tsv (caption TAB url) into image-text pairs',
  params: cc3mParams,
  outputs,
  resources: () => ({ cpus: 2, memBytes: 2 << 30 }),
  inputs: (params) => [String(params.tsv)],
  async run(ctx, params) {
    const { runCc3m } = await import('./cc-run.js');
    await runCc3m(ctx, params);
  },
});

const cc12mParams = {
  type: 'object',
  additionalProperties: false,
  properties: {
    url: { type: 'string', pattern: '^(https?|file)://', default: CC12M_URL, description: 'Where the index is downloaded from (SMKE_MIRROR applies).' },
    tsv: { type: 'string', description: 'Use this local index instead of downloading one.' },
    sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$', description: 'Expected sha256 of the downloaded index.' },
    ...scrapeParams,
  },
} as const satisfies ObjectSchema;

export type Cc12mParams = ParamsOf<typeof cc12mParams>;

export const cc12mKind = defineKind({
  name: 'dataset.cc12m',
  version: KIND_VERSIONS['dataset.cc12m'],
  summary: 'Conceptual 12M: download cc12m.tsv (url TAB caption) and scrape its images into image-text pairs',
  params: cc12mParams,
  outputs,
  resources: () => ({ cpus: 2, memBytes: 2 << 30 }),
  inputs: (params) => (typeof params.tsv === 'string' ? [params.tsv] : []),
  // The scrape depends on the live web either way; the mirror only matters for the index, and only without a checksum.
  env: (params) => (params.sha256 || params.tsv ? [] : ['SMKE_MIRROR']),
  async run(ctx, params) {
    const { runCc12m } = await import('./cc-run.js');
    await runCc12m(ctx, params);
  },
});
