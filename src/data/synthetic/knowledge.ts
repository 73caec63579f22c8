// World knowledge for the MLM corpus: sentences that give each colour and
// shape (and every synonym of it alike) contexts of its own, as real text
// does ("ripe tomatoes are crimson", "the sky is navy", "a wheel is round
// like a disc"). Captions alone give every colour word the same contexts, so
// masked language modelling cannot tell "crimson" from "navy" nor group it
// with "red"; these sentences are what lets a text encoder pretrained on the
// corpus know words the paired training captions never use (language.ts,
// `Vocabulary`).

import type { Rng } from '../rng.js';
import { COLOR_WORDS, SHAPE_WORDS, article } from './language.js';
import type { Color, Shape } from './scene.js';

/** Things of each colour, singular and plural. */
export const COLOR_THINGS: Record<Color, [string, string][]> = {
  red: [
    ['tomato', 'tomatoes'],
    ['strawberry', 'strawberries'],
    ['cherry', 'cherries'],
    ['fire truck', 'fire trucks'],
  ],
  green: [
    ['leaf', 'leaves'],
    ['frog', 'frogs'],
    ['lime', 'limes'],
    ['cucumber', 'cucumbers'],
  ],
  blue: [
    ['sky', 'skies'],
    ['sapphire', 'sapphires'],
    ['blueberry', 'blueberries'],
    ['ocean', 'oceans'],
  ],
  yellow: [
    ['banana', 'bananas'],
    ['lemon', 'lemons'],
    ['sunflower', 'sunflowers'],
    ['canary', 'canaries'],
  ],
  purple: [
    ['plum', 'plums'],
    ['grape', 'grapes'],
    ['lavender flower', 'lavender flowers'],
    ['eggplant', 'eggplants'],
  ],
  orange: [
    ['carrot', 'carrots'],
    ['pumpkin', 'pumpkins'],
    ['tangerine', 'tangerines'],
    ['goldfish', 'goldfish'],
  ],
  white: [
    ['snowball', 'snowballs'],
    ['cloud', 'clouds'],
    ['swan', 'swans'],
    ['egg', 'eggs'],
  ],
};

/** Things of each shape, singular and plural. */
export const SHAPE_THINGS: Record<Shape, [string, string][]> = {
  circle: [
    ['wheel', 'wheels'],
    ['coin', 'coins'],
    ['plate', 'plates'],
    ['full moon', 'full moons'],
  ],
  square: [
    ['window pane', 'window panes'],
    ['chessboard', 'chessboards'],
    ['floor tile', 'floor tiles'],
    ['napkin', 'napkins'],
  ],
  triangle: [
    ['pyramid side', 'pyramid sides'],
    ['sail', 'sails'],
    ['pizza slice', 'pizza slices'],
    ['warning sign', 'warning signs'],
  ],
  star: [
    ['starfish', 'starfish'],
    ['sheriff badge', 'sheriff badges'],
    ['sparkle', 'sparkles'],
    ['flag emblem', 'flag emblems'],
  ],
  cross: [
    ['crossroad', 'crossroads'],
    ['first aid sign', 'first aid signs'],
    ['church steeple', 'church steeples'],
    ['window frame', 'window frames'],
  ],
  diamond: [
    ['kite', 'kites'],
    ['playing card pip', 'playing card pips'],
    ['gemstone', 'gemstones'],
    ['road marker', 'road markers'],
  ],
  hexagon: [
    ['honeycomb cell', 'honeycomb cells'],
    ['nut', 'nuts'],
    ['snowflake', 'snowflakes'],
    ['soccer ball patch', 'soccer ball patches'],
  ],
};

const COLOR_TEMPLATES: ((one: string, many: string, word: string) => string)[] = [
  (one, _many, word) => `${article(one)} ${one} is ${word}`,
  (_one, many, word) => `ripe ${many} are ${word}`,
  (one, _many, word) => `the ${one} was bright ${word}`,
  (_one, many, word) => `most ${many} are ${word} in colour`,
  (one, _many, word) => `she painted it ${word} like ${article(one)} ${one}`,
  (one, _many, word) => `the colour of ${article(one)} ${one} is ${word}`,
];

const SHAPE_TEMPLATES: ((one: string, many: string, word: string) => string)[] = [
  (one, _many, word) => `${article(one)} ${one} is shaped like a ${word}`,
  (_one, many, word) => `${many} have the shape of a ${word}`,
  (one, _many, word) => `he drew a ${word} that looked like ${article(one)} ${one}`,
  (one, _many, word) => `the outline of ${article(one)} ${one} is a ${word}`,
  (_one, many, word) => `children cut ${many} out of paper in the form of a ${word}`,
];

/** What dictionaries and ordinary text say of two words for one colour or shape. */
const COLOR_SYNONYM_TEMPLATES: ((a: string, b: string) => string)[] = [
  (a, b) => `${a} is another word for ${b}`,
  (a, b) => `${a} is a shade of ${b}`,
  (a, b) => `the dress was ${a}, almost ${b}`,
  (a, b) => `${a} and ${b} are the same colour`,
];
const SHAPE_SYNONYM_TEMPLATES: ((a: string, b: string) => string)[] = [
  (a, b) => `${article(a)} ${a} is also called ${article(b)} ${b}`,
  (a, b) => `${article(a)} ${a} is just ${article(b)} ${b}`,
  (a, b) => `${a} and ${b} name the same shape`,
];

function synonymSentence<K extends string>(rng: Rng, words: Record<K, string[]>, templates: ((a: string, b: string) => string)[]): string {
  const withSynonyms = Object.values<string[]>(words).filter((ws) => ws.length > 1);
  const [a, b] = rng.shuffle(rng.pick(withSynonyms).slice());
  return rng.pick(templates)(a!, b!);
}

/**
 * One sentence of world knowledge: a colour or a shape tied to things that
 * have it, worded with any of its synonyms, so that synonyms of one value
 * share contexts and different values do not; or (a fifth of the time each
 * for colours and shapes) two synonyms said to mean the same.
 */
export function knowledgeSentence(rng: Rng): string {
  const r = rng.next();
  if (r < 0.3) {
    const color = rng.pick(Object.keys(COLOR_WORDS) as Color[]);
    const [one, many] = rng.pick(COLOR_THINGS[color]);
    return rng.pick(COLOR_TEMPLATES)(one, many, rng.pick(COLOR_WORDS[color]));
  }
  if (r < 0.6) {
    const shape = rng.pick(Object.keys(SHAPE_WORDS) as Shape[]);
    const [one, many] = rng.pick(SHAPE_THINGS[shape]);
    return rng.pick(SHAPE_TEMPLATES)(one, many, rng.pick(SHAPE_WORDS[shape]));
  }
  return r < 0.8 ? synonymSentence(rng, COLOR_WORDS, COLOR_SYNONYM_TEMPLATES) : synonymSentence(rng, SHAPE_WORDS, SHAPE_SYNONYM_TEMPLATES);
}
