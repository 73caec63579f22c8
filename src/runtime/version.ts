// smke's own version, for manifests and the plan cache key.
import { readFileSync } from 'node:fs';

let cached: string | undefined;
export function smkeVersion(): string {
  cached ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return cached;
}
