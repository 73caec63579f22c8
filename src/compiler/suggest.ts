// Did-you-mean: the closest known name to a misspelt one, if it is close
// enough to be a plausible typo rather than a different word.

/**
 * Edit distance where swapping two neighbouring letters counts as one edit
 * (optimal string alignment): `widht` is one typo away from `width`.
 * Stops early once every path exceeds `limit`.
 */
export function editDistance(a: string, b: string, limit = Infinity): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let prev2 = new Array<number>(b.length + 1).fill(0);
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  let cur = new Array<number>(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur[j] = d;
      if (d < rowMin) rowMin = d;
    }
    if (rowMin > limit) return limit + 1;
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[b.length]!;
}

/**
 * The known name closest to `name`, or undefined when none is within a third
 * of the name's length (at least 1, at most 3 edits) — beyond that a
 * suggestion is more often confusing than helpful.
 */
export function closest(name: string, known: Iterable<string>): string | undefined {
  const limit = Math.min(3, Math.max(1, Math.floor(name.length / 3)));
  let best: string | undefined;
  let bestD = limit + 1;
  const lower = name.toLowerCase();
  for (const k of known) {
    if (k === name) continue;
    // A difference in case alone is the likeliest typo of all.
    const d = k.toLowerCase() === lower ? 0 : editDistance(name, k, limit);
    if (d < bestD || (d === bestD && best !== undefined && k < best)) {
      best = k;
      bestD = d;
    }
  }
  return bestD <= limit ? best : undefined;
}

/** `help:` text for a did-you-mean, or undefined. */
export function didYouMean(name: string, known: Iterable<string>): string | undefined {
  const c = closest(name, known);
  return c === undefined ? undefined : `did you mean \`${c}\`?`;
}
