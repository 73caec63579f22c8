// Evaluation metrics, as the method's reference computes them (docs/method.md,
// "Metrics"; docs/ml.md, "Agreement with the reference implementations"). Pure TS so that
// they are exact, cheap to test, and usable without loading tfjs.
//
// A NaN or infinite prediction or label fails the metric with an error (a
// diverged model must not get a score); in rankings a NaN or tied score never
// helps the model. test/reference/sci_reference.py computes the references.

export function accuracy(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  checkPair(pred, gold);
  let hit = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === gold[i]) hit++;
  return pred.length === 0 ? 0 : hit / pred.length;
}

/** Binary F1 of the positive class (label 1), as GLUE reports it for MRPC and QQP. */
export function f1(pred: ArrayLike<number>, gold: ArrayLike<number>, positive = 1): number {
  checkPair(pred, gold);
  let tp = 0,
    fp = 0,
    fn = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i] === positive,
      g = gold[i] === positive;
    if (p && g) tp++;
    else if (p) fp++;
    else if (g) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/** Matthews correlation of binary labels (CoLA); 0 when a marginal is empty, as sklearn does. */
export function matthews(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  checkPair(pred, gold);
  let tp = 0,
    tn = 0,
    fp = 0,
    fn = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i] === 1,
      g = gold[i] === 1;
    if (p && g) tp++;
    else if (!p && !g) tn++;
    else if (p) fp++;
    else fn++;
  }
  const den = Math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
  return den === 0 ? 0 : (tp * tn - fp * fn) / den;
}

/**
 * Pearson's r as scipy.stats.pearsonr computes it, except that a constant
 * vector (every value equal to the first, as scipy tests it) gives 0 where
 * scipy gives NaN: the correlation is undefined, "no correlation" is what a
 * constant predictor earns, and metrics.json cannot hold NaN (docs/ml.md).
 */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkPair(x, y);
  const n = x.length;
  if (isConstant(x) || isConstant(y)) return 0;
  const dx = deviations(x),
    dy = deviations(y);
  let sxy = 0,
    sxx = 0,
    syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += dx[i]! * dy[i]!;
    sxx += dx[i]! * dx[i]!;
    syy += dy[i]! * dy[i]!;
  }
  if (!(sxx > 0 && syy > 0)) return 0; // a spread lost to rounding: constant for all purposes
  const r = sxy / (Math.sqrt(sxx) * Math.sqrt(syy));
  return Math.max(-1, Math.min(1, r));
}

function isConstant(v: ArrayLike<number>): boolean {
  for (let i = 1; i < v.length; i++) if (v[i] !== v[0]) return false;
  return true;
}

/**
 * x - mean(x), scaled by its largest magnitude so that the sums of squares can
 * neither overflow (1e200-sized values) nor underflow. The mean is a running
 * one (no sum to overflow) taken before any scaling, which would cost the
 * digits of a small spread around a large offset.
 */
function deviations(v: ArrayLike<number>): number[] {
  let mean = 0;
  for (let i = 0; i < v.length; i++) mean += (v[i]! - mean) / (i + 1);
  const d = Array.from(v, (x) => x - mean);
  let max = 0;
  for (const x of d) max = Math.max(max, Math.abs(x));
  return d.map((x) => x / max);
}

/** Ranks from 1, ties sharing the mean of the ranks they span (scipy's rankdata 'average', what Spearman needs). */
export function averageRanks(v: ArrayLike<number>): number[] {
  // A comparator, not a subtraction: Infinity - Infinity is NaN, which sort reads as "equal" inconsistently.
  const idx = Array.from({ length: v.length }, (_, i) => i).sort((a, b) => (v[a]! < v[b]! ? -1 : v[a]! > v[b]! ? 1 : 0));
  const ranks = new Array<number>(v.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && v[idx[j + 1]!] === v[idx[i]!]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]!] = r;
    i = j + 1;
  }
  return ranks;
}

/** Spearman's rho: Pearson of the average ranks (scipy.stats.spearmanr); 0 for a constant vector, as pearson. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkPair(x, y);
  return pearson(averageRanks(x), averageRanks(y));
}

/**
 * The predicted class of each row of logits: the first maximum, as np.argmax
 * and torch.argmax pick it (so GLUE accuracy matches the reference scripts).
 * A NaN logit fails: it would otherwise be skipped (or, in first place, win).
 */
export function argmaxRows(scores: ArrayLike<number>, rows: number, cols: number): number[] {
  if (scores.length !== rows * cols) throw new Error(`scores have ${scores.length} entries, expected ${rows}x${cols}`);
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 0; c < cols; c++) {
      const v = scores[r * cols + c]!;
      if (Number.isNaN(v))
        throw new Error(`logits of example ${r} (class ${c}) are NaN: the model produced non-finite outputs (a diverged run? lower the learning rate)`);
      if (v > scores[r * cols + best]!) best = c;
    }
    out.push(best);
  }
  return out;
}

/**
 * Rank (0-based) a true item's score takes among wrong items: how many of
 * them do not score strictly below it. Ties count against the model, as does
 * a NaN wrong score (!(NaN < s)); a NaN true score is never a hit.
 */
function rankAgainst(trueScore: number, wrongScores: (each: (s: number) => void) => void): number {
  if (Number.isNaN(trueScore)) return Infinity;
  let rank = 0;
  wrongScores((s) => {
    if (!(s < trueScore)) rank++;
  });
  return rank;
}

/**
 * Top-k accuracy of a rows x cols score matrix (row-major) against `gold`
 * class indices, as a fraction per k. Ties and NaN scores count against the
 * model (a constant scorer gets top-1 = 0), as in retrievalRecall.
 */
export function topkAccuracy(scores: ArrayLike<number>, rows: number, cols: number, gold: ArrayLike<number>, ks: number[]): Record<number, number> {
  if (scores.length !== rows * cols) throw new Error(`scores have ${scores.length} entries, expected ${rows}x${cols}`);
  if (gold.length !== rows) throw new Error(`${gold.length} gold labels for ${rows} rows`);
  const ranks: number[] = [];
  for (let r = 0; r < rows; r++) {
    const g = gold[r]!;
    if (!Number.isInteger(g) || g < 0 || g >= cols) throw new Error(`gold label ${g} of row ${r} is not a class index in [0, ${cols})`);
    ranks.push(
      rankAgainst(scores[r * cols + g]!, (each) => {
        for (let c = 0; c < cols; c++) if (c !== g) each(scores[r * cols + c]!);
      }),
    );
  }
  const out: Record<number, number> = {};
  for (const k of ks) out[k] = rows === 0 ? 0 : ranks.filter((x) => x < k).length / rows;
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
 * the model (a tied wrong item ranks first) so a constant scorer scores 0; a
 * NaN score is never a hit and a NaN wrong score ranks first.
 */
export function retrievalRecall(sim: ArrayLike<number>, nImages: number, captionImage: ArrayLike<number>, ks: number[] = [1, 5, 10]): RetrievalScores {
  const nCaps = captionImage.length;
  if (sim.length !== nImages * nCaps) throw new Error(`similarity has ${sim.length} entries, expected ${nImages}x${nCaps}`);
  const tr: Record<number, number> = {},
    ir: Record<number, number> = {};
  // Best rank (0-based) of a correct item per query; a hit at k iff rank < k.
  for (let j = 0; j < nCaps; j++) {
    const c = captionImage[j]!;
    if (!Number.isInteger(c) || c < 0 || c >= nImages) throw new Error(`caption ${j} belongs to image ${c}, not one of the ${nImages} images`);
  }
  const trRank = new Array<number>(nImages).fill(Infinity);
  for (let i = 0; i < nImages; i++) {
    for (let j = 0; j < nCaps; j++) {
      if (captionImage[j] !== i) continue;
      // other true captions do not push a true one down
      const rank = rankAgainst(sim[i * nCaps + j]!, (each) => {
        for (let jj = 0; jj < nCaps; jj++) if (captionImage[jj] !== i) each(sim[i * nCaps + jj]!);
      });
      trRank[i] = Math.min(trRank[i]!, rank);
    }
  }
  const irRank = new Array<number>(nCaps);
  for (let j = 0; j < nCaps; j++) {
    const gi = captionImage[j]!;
    irRank[j] = rankAgainst(sim[gi * nCaps + j]!, (each) => {
      for (let i = 0; i < nImages; i++) if (i !== gi) each(sim[i * nCaps + j]!);
    });
  }
  for (const k of ks) {
    tr[k] = nImages === 0 ? 0 : trRank.filter((r) => r < k).length / nImages;
    ir[k] = nCaps === 0 ? 0 : irRank.filter((r) => r < k).length / nCaps;
  }
  return { tr, ir };
}

/** Same length, and every value finite: a NaN or infinite prediction must fail the metric, never score. */
function checkPair(pred: ArrayLike<number>, gold: ArrayLike<number>): void {
  if (pred.length !== gold.length) throw new Error(`length mismatch: ${pred.length} predictions vs ${gold.length} gold values`);
  for (const [what, v] of [
    ['prediction', pred],
    ['gold value', gold],
  ] as const) {
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i]!)) throw new Error(`${what} ${i} is ${v[i]}: metrics need finite values (a diverged model? lower the learning rate)`);
    }
  }
}
