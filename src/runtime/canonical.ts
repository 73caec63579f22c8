// Canonical JSON: object keys sorted, no whitespace. Cache keys are hashes of
// this text, so two equal values must always serialise to the same bytes
// whatever order a compiler or a JSON file produced their keys in.

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    // JSON.stringify maps NaN/Infinity to null and undefined to nothing; a key
    // must never silently collapse two different values, so refuse them.
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`cannot fingerprint the number ${value}`);
    if (value === undefined) return 'null';
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  const parts: string[] = [];
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}
