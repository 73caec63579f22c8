#!/usr/bin/env node
// Does a text encoder's CLS (the last layer's vector at position 0: what
// S-SMKE's shared block starts from for text) tell the zero-shot classes apart?
// A cheap gate before any S-SMKE run (docs/ml.md, "Sixth attempt (text side)"). Per model dir
// (a train.mlm output's model/):
// - prompts: the CLS of each class name in each template, normalised, averaged
//   over templates and renormalised (eval.zeroshot's class vectors); their mean
//   pairwise cosine (lower: more apart) and the mean cosine of two templates of
//   one class against two classes in one template;
// - captions: 20 one-object captions per class (the generator's own grammar and
//   synonyms, a scene whose object is the class's colour+shape, only captions that
//   name a colour), assigned to the class vector nearest by cosine: text-only
//   zero-shot top-1 (chance 1 in the number of classes); and leave-one-out
//   nearest-caption accuracy (the nearest other caption has the same class).
//
// Usage: npm run build && nice node bench/text-cls-probe.mjs CLASSIFY_DIR MODEL_DIR [MODEL_DIR ...]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, loadTokenizer } from '../dist/ml/models.js';
import { textTokens } from '../dist/stages/ml/encoders.js';
import { selectBackend } from '../dist/ml/backend.js';
import { COLOR_WORDS, SHAPE_WORDS, caption } from '../dist/data/synthetic/language.js';
import { randomScene } from '../dist/data/synthetic/scene.js';
import { Rng } from '../dist/data/rng.js';
import { DEFAULT_TEMPLATES } from '../dist/stages/eval/eval.js';

const [classifyDir, ...dirs] = process.argv.slice(2);
if (!dirs.length) throw new Error('usage: node bench/text-cls-probe.mjs CLASSIFY_DIR MODEL_DIR [MODEL_DIR ...]');
const { tf } = await selectBackend(process.env.SMKE_BACKEND);
const classes = JSON.parse(readFileSync(join(classifyDir, 'classes.json'), 'utf8'));
// Class names are "<colour word> <shape word>" with each value's canonical word.
const valueOf = (table, word) => Object.entries(table).find(([, ws]) => ws.includes(word))[0];
const classValues = classes.map((name) => {
  const [c, ...s] = name.split(' ');
  return { name, color: valueOf(COLOR_WORDS, c), shape: valueOf(SHAPE_WORDS, s.join(' ')) };
});
const rng = new Rng(2026);
const captions = [];
for (let k = 0; k < classValues.length; k++) {
  const { color, shape } = classValues[k];
  let n = 0;
  for (let tries = 0; n < 20 && tries < 400; tries++) {
    const scene = randomScene(rng, { minObjects: 1, maxObjects: 1, distractors: 0, first: { shape, color } });
    const text = caption(scene, rng);
    if (!COLOR_WORDS[color].some((w) => new RegExp(`\\b${w}\\b`).test(text))) continue;
    captions.push({ text, label: k });
    n++;
  }
}
const unit = (v) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

console.log(`classes: ${classes.join(', ')}; ${captions.length} captions, e.g. "${captions[0].text}", "${captions.at(-1).text}"`);
console.log('| model | class vectors: mean pairwise cos | prompts: same class / other class cos | caption -> class top-1 | nearest caption same class |');
console.log('|---|---|---|---|---|');
for (const dir of dirs) {
  const m = await loadModel(dir);
  const tok = await loadTokenizer(dir);
  const cfg = m.config.model === 'text' ? m.config.text : m.config.smke.text;
  const cls = (texts) => {
    const enc = texts.map((t) => tok.encode(t, undefined, cfg.maxLen));
    const out = tf.tidy(() => {
      const batch = {
        ids: tf.tensor2d(
          enc.map((e) => e.ids),
          undefined,
          'int32',
        ),
        mask: tf.tensor2d(
          enc.map((e) => e.mask),
          undefined,
          'int32',
        ),
      };
      return textTokens(m, batch).slice([0, 0, 0], [-1, 1, -1]).squeeze([1]);
    });
    const v = out.arraySync();
    out.dispose();
    return v.map(unit);
  };
  const nT = DEFAULT_TEMPLATES.length;
  const prompts = cls(classes.flatMap((c) => DEFAULT_TEMPLATES.map((t) => t.replaceAll('{}', c))));
  const classVec = classes.map((_, k) => unit(prompts.slice(k * nT, (k + 1) * nT).reduce((a, v) => a.map((x, i) => x + v[i]))));
  const pair = [];
  for (let i = 0; i < classVec.length; i++) for (let j = i + 1; j < classVec.length; j++) pair.push(dot(classVec[i], classVec[j]));
  const same = [],
    other = [];
  for (let a = 0; a < prompts.length; a++)
    for (let b = a + 1; b < prompts.length; b++) {
      const [ka, kb, ta, tb] = [Math.floor(a / nT), Math.floor(b / nT), a % nT, b % nT];
      if (ka === kb) same.push(dot(prompts[a], prompts[b]));
      else if (ta === tb) other.push(dot(prompts[a], prompts[b]));
    }
  const capVec = cls(captions.map((c) => c.text));
  const argmax = (xs) => xs.reduce((bi, x, i) => (x > xs[bi] ? i : bi), 0);
  const top1 = mean(capVec.map((v, i) => (argmax(classVec.map((c) => dot(v, c))) === captions[i].label ? 1 : 0)));
  const nn = mean(
    capVec.map((v, i) => {
      const sims = capVec.map((w, j) => (j === i ? -Infinity : dot(v, w)));
      return captions[argmax(sims)].label === captions[i].label ? 1 : 0;
    }),
  );
  console.log(
    `| ${dir} | ${mean(pair).toFixed(3)} | ${mean(same).toFixed(3)} / ${mean(other).toFixed(3)} | ${(top1 * 100).toFixed(1)} | ${(nn * 100).toFixed(1)} |`,
  );
  m.ps.dispose();
}
