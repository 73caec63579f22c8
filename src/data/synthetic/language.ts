// The scene language: a small grammar with synonyms. Captions of one image
// differ in wording and in which attributes they mention, as human captions
// do; the text tasks reuse the same phrases.

import type { Rng } from '../rng.js';
import type { Background, Color, Position, Scene, SceneObject, Shape, Size } from './scene.js';

export const SHAPE_WORDS: Record<Shape, string[]> = {
  circle: ['circle', 'disc', 'round dot'],
  square: ['square', 'box', 'block'],
  triangle: ['triangle', 'wedge'],
  star: ['star'],
  cross: ['cross', 'plus sign'],
  diamond: ['diamond', 'rhombus'],
  hexagon: ['hexagon', 'six-sided shape'],
};

export const COLOR_WORDS: Record<Color, string[]> = {
  red: ['red', 'crimson', 'scarlet'],
  green: ['green', 'emerald'],
  blue: ['blue', 'navy', 'cobalt'],
  yellow: ['yellow', 'golden'],
  purple: ['purple', 'violet'],
  orange: ['orange', 'amber'],
  white: ['white', 'ivory'],
};

export const SIZE_WORDS: Record<Size, string[]> = {
  small: ['small', 'little', 'tiny'],
  large: ['large', 'big', 'huge'],
};

export const POSITION_WORDS: Record<Position, string[]> = {
  left: ['on the left', 'at the left side', 'to the left'],
  right: ['on the right', 'at the right side', 'to the right'],
  top: ['at the top', 'near the top', 'up top'],
  bottom: ['at the bottom', 'near the bottom', 'down below'],
  center: ['in the middle', 'in the center', 'at the centre'],
};

export const BACKGROUND_WORDS: Record<Background, string[]> = {
  black: ['black', 'dark'],
  gray: ['gray', 'grey'],
  brown: ['brown', 'wooden'],
};

/**
 * Which part of the language a caption draws its colour and shape words from.
 * `full`: every synonym. `paired`: the paired sets' training captions, which
 * in the real world use a narrow vocabulary while text corpora and the
 * evaluation prompts know the rarer words (zero-shot class names such as
 * ImageNet's are often words the caption sets hardly use). In this world the
 * held-out word of a colour or shape is its canonical one, the word class
 * names use; a value with a single word keeps it.
 */
export type Vocabulary = 'full' | 'paired';

/** The words of one attribute value a caption of `vocabulary` may use. */
export function wordsOf(words: readonly string[], vocabulary: Vocabulary): readonly string[] {
  return vocabulary === 'paired' && words.length > 1 ? words.slice(1) : words;
}

/** Which attributes a phrase mentions (shape is always mentioned: it is the noun). */
export interface Mention {
  color: boolean;
  size: boolean;
  position: boolean;
}

export const ALL: Mention = { color: true, size: true, position: true };

export function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/** One synonym chosen for every attribute value: the two sides of a pair task word the attributes they share alike. */
export interface Wording {
  shape: Record<Shape, string>;
  color: Record<Color, string>;
  size: Record<Size, string>;
  position: Record<Position, string>;
}

export function pickWording(rng: Rng): Wording {
  const one = <K extends string>(words: Record<K, string[]>) =>
    Object.fromEntries(Object.entries<string[]>(words).map(([k, ws]) => [k, rng.pick(ws)])) as Record<K, string>;
  return { shape: one(SHAPE_WORDS), color: one(COLOR_WORDS), size: one(SIZE_WORDS), position: one(POSITION_WORDS) };
}

/**
 * "a small crimson disc on the left" (without the article when `bare`). Each
 * attribute's word is a random synonym of the `vocabulary` (full by default),
 * or the `wording`'s when one is given.
 */
export function nounPhrase(
  o: Pick<SceneObject, 'shape' | 'color' | 'size' | 'position'>,
  m: Mention,
  rng: Rng,
  opts: { bare?: boolean; definite?: boolean; wording?: Wording; vocabulary?: Vocabulary } = {},
): string {
  const w = opts.wording;
  const vocabulary = opts.vocabulary ?? 'full';
  const words: string[] = [];
  if (m.size) words.push(w ? w.size[o.size] : rng.pick(SIZE_WORDS[o.size]));
  if (m.color) words.push(w ? w.color[o.color] : rng.pick(wordsOf(COLOR_WORDS[o.color], vocabulary)));
  words.push(w ? w.shape[o.shape] : rng.pick(wordsOf(SHAPE_WORDS[o.shape], vocabulary)));
  let np = words.join(' ');
  if (!opts.bare) np = `${opts.definite ? 'the' : article(np)} ${np}`;
  if (m.position) np += ' ' + (w ? w.position[o.position] : rng.pick(POSITION_WORDS[o.position]));
  return np;
}

/** A random mention set that always says something beyond the shape, most often the colour. */
export function randomMention(rng: Rng): Mention {
  const m = { color: rng.chance(0.85), size: rng.chance(0.5), position: rng.chance(0.5) };
  if (!m.color && !m.size && !m.position) m.color = true;
  return m;
}

const ONE_OBJECT = [
  (np: string) => np,
  (np: string) => `there is ${np}`,
  (np: string) => `a picture of ${np}`,
  (np: string) => `an image showing ${np}`,
  (np: string) => `${np} is visible`,
  (np: string) => `we can see ${np}`,
];

function relation(a: SceneObject, b: SceneObject): string | undefined {
  const dx = a.cx - b.cx;
  const dy = a.cy - b.cy;
  if (Math.abs(dx) > Math.abs(dy) + 0.1) return dx < 0 ? 'to the left of' : 'to the right of';
  if (Math.abs(dy) > Math.abs(dx) + 0.1) return dy < 0 ? 'above' : 'below';
  return undefined;
}

/** One caption of a scene, its colour and shape words drawn from `vocabulary`. */
export function caption(scene: Scene, rng: Rng, vocabulary: Vocabulary = 'full'): string {
  const objs = scene.objects;
  const np = (o: SceneObject, m: Mention) => nounPhrase(o, m, rng, { vocabulary });
  let text: string;
  if (objs.length === 1) {
    text = rng.pick(ONE_OBJECT)(np(objs[0]!, randomMention(rng)));
  } else {
    const order = rng.shuffle(objs.slice());
    const a = order[0]!;
    const b = order[1]!;
    const rel = relation(a, b);
    const noPos = (): Mention => ({ ...randomMention(rng), position: false });
    if (rel && rng.chance(0.5)) {
      text = `${np(a, noPos())} ${rel} ${np(b, noPos())}`;
    } else {
      const nps = order.map((o) => np(o, randomMention(rng)));
      const list = nps.length === 2 ? `${nps[0]} and ${nps[1]}` : `${nps.slice(0, -1).join(', ')} and ${nps.at(-1)}`;
      text = rng.pick([(l: string) => l, (l: string) => `there are ${l}`, (l: string) => `${numberWord(nps.length)} shapes: ${l}`])(list);
    }
  }
  if (rng.chance(0.3)) text += ` on a ${rng.pick(BACKGROUND_WORDS[scene.background])} background`;
  return text;
}

export function numberWord(n: number): string {
  return ['zero', 'one', 'two', 'three', 'four', 'five'][n] ?? String(n);
}

/** `n` distinct captions where the grammar allows (a retry budget, then duplicates are accepted). */
export function captions(scene: Scene, n: number, rng: Rng, vocabulary: Vocabulary = 'full'): string[] {
  const out = new Set<string>();
  for (let tries = 0; out.size < n && tries < n * 8; tries++) out.add(caption(scene, rng, vocabulary));
  const list = [...out];
  while (list.length < n) list.push(caption(scene, rng, vocabulary));
  return list;
}
