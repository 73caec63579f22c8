// Image-caption index files (CC3M: caption TAB url; CC12M: url TAB caption).
// Malformed rows are counted with a reason, never fatal: web-scale indexes
// always have a few.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

export interface CaptionRow {
  /** 0-based row number in the file: the stable id of the pair across reruns. */
  row: number;
  url: string;
  caption: string;
}

export interface TsvResult {
  rows: CaptionRow[];
  /** Malformed rows by reason. */
  malformed: Record<string, number>;
  lines: number;
}

export async function readCaptionTsv(path: string, order: 'caption-url' | 'url-caption', limit = 0): Promise<TsvResult> {
  const rows: CaptionRow[] = [];
  const malformed: Record<string, number> = {};
  const bad = (reason: string) => void (malformed[reason] = (malformed[reason] ?? 0) + 1);
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  let first = true;
  for await (const line of lines) {
    const cols = line.split('\t');
    // CC12M's header row ("url\tcaption") is not data: it neither counts towards `limit` nor takes a row number.
    if (first && /^(url|caption)$/i.test(cols[0]!.trim())) {
      first = false;
      continue;
    }
    first = false;
    if (limit > 0 && n >= limit) break;
    const row = n++;
    if (line.trim() === '') {
      bad('empty_row');
      continue;
    }
    if (cols.length !== 2) {
      bad('wrong_column_count');
      continue;
    }
    const [url, caption] = order === 'caption-url' ? [cols[1]!.trim(), cols[0]!.trim()] : [cols[0]!.trim(), cols[1]!.trim()];
    if (!/^https?:\/\/[^\s/]+/i.test(url)) {
      bad('bad_url');
      continue;
    }
    if (!caption) {
      bad('empty_caption');
      continue;
    }
    rows.push({ row, url, caption });
  }
  return { rows, malformed, lines: n };
}
