// `download`: fetch one file over http(s) or from a file:// URL, verify it,
// and optionally extract it (tar, tar.gz, zip) safely. The partial file is
// kept in the scratch dir, so a retried or rerun stage resumes it.

import { fileURLToPath } from 'node:url';
import { defineKind, type ObjectSchema, type OutputSpec, type ParamsOf, type Symbolic } from '../stage-kind.js';
import { KIND_VERSIONS } from '../kind-versions.js';

/** The file name a URL downloads to when `filename` is not given. */
export function downloadName(params: Symbolic<Pick<DownloadParams, 'url' | 'filename'>>): string {
  if (typeof params.filename === 'string' && params.filename) return params.filename;
  const url = String(params.url ?? '');
  try {
    const last = decodeURIComponent(new URL(url).pathname.split('/').filter(Boolean).pop() ?? '');
    if (/^[A-Za-z0-9._+-]{1,200}$/.test(last) && !last.startsWith('.')) return last;
  } catch {
    // fall through to the generic name
  }
  return 'download';
}

const downloadParams = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', pattern: '^(https?|file)://', description: 'http(s) or file URL. SMKE_MIRROR rewrites http(s) URLs (see docs/datasets.md).' },
    filename: { type: 'string', pattern: '^[A-Za-z0-9._+-]+$', description: 'Name of the downloaded file (default: the last segment of the URL).' },
    sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$', description: 'Expected sha256 of the file; a mismatch fails the stage.' },
    md5: { type: 'string', pattern: '^[0-9a-fA-F]{32}$', description: 'Expected md5 (for sources that only publish md5).' },
    size: { type: 'integer', minimum: 0, description: 'Expected size in bytes.' },
    extract: { type: 'boolean', default: false, description: 'Extract the archive (format detected from its bytes) into `dir`.' },
    keep_archive: { type: 'boolean', default: false, description: 'With extract, keep the archive as `file` too.' },
    unsafe_entries: {
      enum: ['fail', 'skip'],
      default: 'fail',
      description:
        'Entries that could write outside the output (absolute, .., through or over a link, links leading out): fail the stage, or skip and count them.',
    },
    // The same defaults as src/data/extract.ts's DEFAULT_LIMITS (not imported: a kind's module stays light).
    max_extract_bytes: {
      type: 'integer',
      minimum: 1,
      default: 64 * 2 ** 30,
      description: 'With extract: stop (and keep nothing) past this many extracted bytes (64 GiB).',
    },
    max_extract_entries: { type: 'integer', minimum: 1, default: 1_000_000, description: 'With extract: stop past this many archive entries.' },
    max_extract_ratio: {
      type: 'number',
      exclusiveMinimum: 0,
      default: 200,
      description: 'With extract: stop when the extracted bytes exceed this many times the archive size (only past 64 MiB): a decompression bomb.',
    },
    http_retries: {
      type: 'integer',
      minimum: 0,
      maximum: 50,
      default: 5,
      description:
        'Requests retried within one attempt after transient failures (network, 5xx, 429, stalls, a resume that does not fit), with backoff and jitter. The stage setting `retries` reruns the whole stage instead (resuming the partial file).',
    },
    retry_delay: { type: 'number', minimum: 0, default: 0.5, description: 'First backoff in seconds; doubles per retry (capped at 30 s), with jitter.' },
    stall_timeout: {
      type: 'number',
      exclusiveMinimum: 0,
      default: 60,
      description: 'Seconds without a byte before a connection counts as stalled and is retried.',
    },
  },
} as const satisfies ObjectSchema;

export type DownloadParams = ParamsOf<typeof downloadParams>;

export const downloadKind = defineKind({
  name: 'download',
  version: KIND_VERSIONS['download'],
  summary: 'Download a file (http, https, file) with resume, retries and checksum checks; optionally extract tar/tar.gz/zip safely',
  params: downloadParams,
  outputs(params) {
    const name = downloadName(params);
    const outs: Record<string, OutputSpec> = { out: { type: 'dir', path: '.', description: 'The output directory' } };
    if (params.extract) outs.dir = { type: 'dir', path: 'data', description: 'The extracted archive' };
    if (!params.extract || params.keep_archive) outs.file = { type: 'file', path: name, description: 'The downloaded file' };
    return outs;
  },
  resources() {
    return { cpus: 1 };
  },
  inputs(params) {
    // A local file's content decides the result, so it belongs in the key.
    const url = String(params.url ?? '');
    return url.startsWith('file:') ? [fileURLToPath(url)] : [];
  },
  env(params) {
    // With a checksum the mirror cannot change the result; without one it can.
    return params.sha256 || params.md5 ? [] : ['SMKE_MIRROR'];
  },
  async run(ctx, params) {
    const { runDownload } = await import('./download-run.js');
    await runDownload(ctx, params);
  },
});
