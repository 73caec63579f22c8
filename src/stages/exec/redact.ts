// Hides the values of an exec stage's secret_env in what its program prints
// (the stage's log, copied into the entry): a program that echoes its token
// must not publish it. Streaming: an occurrence split across chunks is held
// back until it is complete or proven not to be one.

import { StringDecoder } from 'node:string_decoder';
import { Transform } from 'node:stream';

/** Shorter values are left alone: hiding every "1" in a log would destroy it and protect nothing. */
export const MIN_REDACTED = 4;
const SHOWN = '<secret>';

export function redactor(values: string[]): Transform {
  const secrets = [...new Set(values.filter((v) => v.length >= MIN_REDACTED))].sort((a, b) => b.length - a.length);
  const decoder = new StringDecoder('utf8');
  let pending = '';
  const replace = (s: string): string => secrets.reduce((t, v) => t.split(v).join(SHOWN), s);
  /** Length of the longest suffix of `s` that begins some secret. */
  const heldBack = (s: string): number => {
    let best = 0;
    for (const v of secrets) {
      for (let n = Math.min(v.length - 1, s.length); n > best; n--) {
        if (s.endsWith(v.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const text = replace(pending + decoder.write(chunk));
      const keep = heldBack(text);
      pending = text.slice(text.length - keep);
      done(null, text.slice(0, text.length - keep));
    },
    flush(done) {
      done(null, replace(pending + decoder.end()));
    },
  });
}
