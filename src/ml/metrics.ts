// Evaluation metrics, as s-smke.md's reference computes them. Pure TS so that
// they are exact, cheap to test, and usable without loading tfjs.

export function accuracy(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  checkLengths(pred, gold);
  let hit = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === gold[i]) hit++;
  return pred.length === 0 ? 0 : hit / pred.length;
}

/** Binary F1 of the positive class (label 1), as GLUE reports it for MRPC and QQP. */
export function f1(pred: ArrayLike<number>, gold: ArrayLike<number>, positive = 1): number {
  checkLengths(pred, gold);
  let tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i] === positive, g = gold[i] === positive;
    if (p && g) tp++;
    else if (p) fp++;
    else if (g) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/** Matthews correlation of binary labels (CoLA); 0 when a marginal is empty, as sklearn does. */
export function matthews(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  checkLengths(pred, gold);
  let tp = 0, tn = 0, fp = 0, fn = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i] === 1, g = gold[i] === 1;
    if (p && g) tp++;
    else if (!p && !g) tn++;
    else if (p) fp++;
    else fn++;
  }
  const den = Math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
  return den === 0 ? 0 : (tp * tn - fp * fn) / den;
}

export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkLengths(x, y);
  const n = x.length;
  if (n === 0) return 0;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) { mx += x[i]!; my += y[i]!; }
  mx /= n; my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx, dy = y[i]! - my;
    sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
  }
  return sxx === 0 || syy === 0 ? 0 : sxy / Math.sqrt(sxx * syy);
}

/** Ranks from 1, ties sharing the mean of the ranks they span (what Spearman needs). */
export function averageRanks(v: ArrayLike<number>): number[] {
  const idx = Array.from({ length: v.length }, (_, i) => i).sort((a, b) => v[a]! - v[b]!);
  const ranks = new Array<number>(v.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && v[idx[j + 1]!] === v[idx[i]!]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]!] = r;
    i = j + 1;
  }
  return ranks;
}

export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkLengths(x, y);
  return pearson(averageRanks(x), averageRanks(y));
}

export function argmaxRows(scores: ArrayLike<number>, rows: number, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (scores[r * cols + c]! > scores[r * cols + best]!) best = c;
    out.push(best);
  }
  return out;
}

export interface RetrievalScores {
  /** Text retrieval (image -> captions) recall at k, as a fraction. */
  tr: Record<number, number>;
  /** Image retrieval (caption -> images) recall at k, as a fraction. */
  ir: Record<number, number>;
}

/**
 * Recall@k with several captions per image. `sim` is images x captions
 * (row-major), `captionImage[j]` is the image caption j describes. TR@k: an
 * image is a hit if any of its top-k captions belongs to it. IR@k: a caption
 * is a hit if its image is among its top-k images. Ties are broken against
 * the model (a tied wrong item ranks first) so a constant scorer scores 0.
 */
export function retrievalRecall(
  sim: ArrayLike<number>,
  nImages: number,
  captionImage: ArrayLike<number>,
  ks: number[] = [1, 5, 10],
): RetrievalScores {
  const nCaps = captionImage.length;
  if (sim.length !== nImages * nCaps) throw new Error(`similarity has ${sim.length} entries, expected ${nImages}x${nCaps}`);
  const tr: Record<number, number> = {}, ir: Record<number, number> = {};
  // Best rank (0-based) of a correct item per query; a hit at k iff rank < k.
  const trRank = new Array<number>(nImages).fill(Infinity);
  for (let i = 0; i < nImages; i++) {
    for (let j = 0; j < nCaps; j++) {
      if (captionImage[j] !== i) continue;
      const s = sim[i * nCaps + j]!;
      let rank = 0;
      for (let jj = 0; jj < nCaps; jj++) {
        if (captionImage[jj] === i) continue; // other true captions do not push a true one down
        if (sim[i * nCaps + jj]! >= s) rank++;
      }
      trRank[i] = Math.min(trRank[i]!, rank);
    }
  }
  const irRank = new Array<number>(nCaps);
  for (let j = 0; j < nCaps; j++) {
    const gi = captionImage[j]!;
    const s = sim[gi * nCaps + j]!;
    let rank = 0;
    for (let i = 0; i < nImages; i++) if (i !== gi && sim[i * nCaps + j]! >= s) rank++;
    irRank[j] = rank;
  }
  for (const k of ks) {
    tr[k] = nImages === 0 ? 0 : trRank.filter((r) => r < k).length / nImages;
    ir[k] = nCaps === 0 ? 0 : irRank.filter((r) => r < k).length / nCaps;
  }
  return { tr, ir };
}

function checkLengths(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
}
