#!/usr/bin/env node
// Does a text encoder know which colour and shape words mean the same thing?
// For each model directory (a train.mlm or train.s_smke output's model/), per
// attribute (colours, shapes): the mean cosine between synonyms of one value,
// the mean cosine between words of different values, and how often a value's
// canonical word (the one class names use, which the paired training captions
// leave out under `--train-vocab paired`) has one of its own synonyms as its
// nearest neighbour among all the attribute's words (chance about 1/7).
// Measured on the input embeddings (mean over a word's WordPiece pieces) and on
// the encoder's last-layer vectors of the word in the prompt "a photo of a WORD."
// (mean over its pieces), which is what zero-shot prompts feed the model.
//
// Usage: npm run build && nice node bench/vocab-probe.mjs DIR [DIR ...]
import { loadModel, loadTokenizer } from '../dist/ml/models.js';
import { textTokens } from '../dist/stages/ml/encoders.js';
import { selectBackend } from '../dist/ml/backend.js';
import { COLOR_WORDS, SHAPE_WORDS } from '../dist/data/synthetic/language.js';

const dirs = process.argv.slice(2);
if (!dirs.length) throw new Error('usage: node bench/vocab-probe.mjs MODEL_DIR [MODEL_DIR ...] (a train.mlm output model/ directory)');
const { tf } = await selectBackend(process.env.SMKE_BACKEND);

const cos = (a, b) => {
  let d = 0,
    na = 0,
    nb = 0;
  for (let i = 0; i < a.length; i++) [d, na, nb] = [d + a[i] * b[i], na + a[i] * a[i], nb + b[i] * b[i]];
  return d / Math.sqrt(na * nb);
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

function scores(table, vec) {
  const words = Object.entries(table).flatMap(([value, ws]) => ws.map((w) => ({ value, w, v: vec(w) })));
  const same = [],
    diff = [];
  for (let i = 0; i < words.length; i++)
    for (let j = i + 1; j < words.length; j++) (words[i].value === words[j].value ? same : diff).push(cos(words[i].v, words[j].v));
  let hits = 0,
    n = 0;
  for (const [value, ws] of Object.entries(table)) {
    if (ws.length < 2) continue;
    const canon = words.find((x) => x.w === ws[0]);
    const others = words.filter((x) => x !== canon);
    const best = others.reduce((a, b) => (cos(canon.v, b.v) > cos(canon.v, a.v) ? b : a));
    n++;
    if (best.value === value) hits++;
  }
  return { same: mean(same), diff: mean(diff), nn: `${hits}/${n}` };
}

for (const dir of dirs) {
  const m = await loadModel(dir);
  const tok = await loadTokenizer(dir);
  const cfg = m.config.model === 'text' ? m.config.text : m.config.smke.text;
  const word = m.ps.get('text.word').arraySync();
  const pieces = (w) => tok.tokenize(w);
  const embed = (w) => {
    const rows = pieces(w).map((id) => word[id]);
    return rows[0].map((_, k) => mean(rows.map((r) => r[k])));
  };
  const contextual = (w) => {
    const prefix = pieces('a photo of a').length + 1;
    const n = pieces(w).length;
    const e = tok.encode(`a photo of a ${w}.`, undefined, cfg.maxLen);
    const out = tf.tidy(() => {
      const batch = { ids: tf.tensor2d([e.ids], undefined, 'int32'), mask: tf.tensor2d([e.mask], undefined, 'int32') };
      return textTokens(m, batch).slice([0, prefix, 0], [1, n, -1]).mean(1).squeeze([0]);
    });
    const v = out.arraySync();
    out.dispose();
    return v;
  };
  const unk = [...Object.values(COLOR_WORDS), ...Object.values(SHAPE_WORDS)].flat().filter((w) => pieces(w).includes(tok.unk));
  console.log(`${dir}${unk.length ? ` (unknown words: ${unk.join(', ')})` : ''}`);
  for (const [name, table] of [
    ['colours', COLOR_WORDS],
    ['shapes', SHAPE_WORDS],
  ]) {
    for (const [how, vec] of [
      ['input embeddings', embed],
      ['last layer in "a photo of a WORD."', contextual],
    ]) {
      const s = scores(table, vec);
      console.log(
        `  ${name.padEnd(8)} ${how.padEnd(36)} synonyms ${s.same.toFixed(3)}  other values ${s.diff.toFixed(3)}  canonical word's nearest is a synonym ${s.nn}`,
      );
    }
  }
}
