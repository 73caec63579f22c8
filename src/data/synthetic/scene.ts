// The synthetic world: scenes of coloured shapes on a background. Images,
// captions, class labels and the GLUE-like text tasks are all drawn from
// this one model, so an encoder pretrained on the pairs has seen the words
// and concepts the downstream tasks ask about.

import { Rng } from '../rng.js';

export const SHAPES = ['circle', 'square', 'triangle', 'star', 'cross', 'diamond', 'hexagon'] as const;
export type Shape = (typeof SHAPES)[number];

/** Named colours with their sRGB value; names are the canonical words, synonyms live in language.ts. */
export const COLORS = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [240, 220, 40],
  purple: [140, 50, 180],
  orange: [245, 140, 30],
  white: [245, 245, 245],
} as const satisfies Record<string, readonly [number, number, number]>;
export type Color = keyof typeof COLORS;
export const COLOR_NAMES = Object.keys(COLORS) as Color[];

export const SIZES = ['small', 'large'] as const;
export type Size = (typeof SIZES)[number];

/** Where an object sits, in a 3x3 grid; the word comes from the cell. */
export const POSITIONS = ['left', 'right', 'top', 'bottom', 'center'] as const;
export type Position = (typeof POSITIONS)[number];

export const BACKGROUNDS = {
  black: [15, 15, 15],
  gray: [110, 110, 110],
  brown: [100, 70, 40],
} as const satisfies Record<string, readonly [number, number, number]>;
export type Background = keyof typeof BACKGROUNDS;
export const BACKGROUND_NAMES = Object.keys(BACKGROUNDS) as Background[];

export interface SceneObject {
  shape: Shape;
  color: Color;
  size: Size;
  position: Position;
  /** Centre in [0,1]^2 and radius as a fraction of the image side. */
  cx: number;
  cy: number;
  r: number;
  rotation: number;
}

export interface Distractor {
  kind: 'dot' | 'line';
  x: number;
  y: number;
  x2: number;
  y2: number;
  gray: number;
}

export interface Scene {
  background: Background;
  objects: SceneObject[];
  /** Unmentioned clutter: captions never describe it. */
  distractors: Distractor[];
}

const CELL_FOR: Record<Position, [number, number][]> = {
  left: [
    [0, 1],
    [0, 0],
    [0, 2],
  ],
  right: [
    [2, 1],
    [2, 0],
    [2, 2],
  ],
  top: [[1, 0]],
  bottom: [[1, 2]],
  center: [[1, 1]],
};

export interface SceneOptions {
  minObjects: number;
  maxObjects: number;
  distractors: number;
  /** Restrict the first object (classification sets fix shape and colour). */
  first?: { shape: Shape; color: Color };
}

/** Draw one object at a free position; `used` keeps objects apart so no caption describes an occluded shape. */
export function randomObject(rng: Rng, used: Set<Position>, fixed?: { shape: Shape; color: Color }): SceneObject {
  const free = POSITIONS.filter((p) => !used.has(p));
  const position = rng.pick(free.length ? free : POSITIONS);
  used.add(position);
  const [col, row] = rng.pick(CELL_FOR[position]);
  const size: Size = rng.pick(SIZES);
  // Large objects must still look larger than small ones after jitter: the ranges do not overlap.
  const r = size === 'small' ? rng.range(0.08, 0.11) : rng.range(0.14, 0.17);
  const jitter = 0.04;
  return {
    shape: fixed?.shape ?? rng.pick(SHAPES),
    color: fixed?.color ?? rng.pick(COLOR_NAMES),
    size,
    position,
    cx: (col + 0.5) / 3 + rng.range(-jitter, jitter),
    cy: (row + 0.5) / 3 + rng.range(-jitter, jitter),
    r,
    rotation: rng.range(-15, 15),
  };
}

export function randomScene(rng: Rng, opts: SceneOptions): Scene {
  const n = opts.minObjects + rng.int(opts.maxObjects - opts.minObjects + 1);
  const used = new Set<Position>();
  const objects: SceneObject[] = [];
  for (let i = 0; i < n; i++) {
    let obj = randomObject(rng, used, i === 0 ? opts.first : undefined);
    // Two identical-looking objects would make "the red circle" ambiguous in captions and tasks.
    for (let tries = 0; tries < 10 && objects.some((o) => o.shape === obj.shape && o.color === obj.color); tries++) {
      used.delete(obj.position);
      obj = randomObject(rng, used);
    }
    objects.push(obj);
  }
  const distractors: Distractor[] = [];
  const nd = opts.distractors > 0 ? rng.int(opts.distractors + 1) : 0;
  for (let i = 0; i < nd; i++) {
    const x = rng.next();
    const y = rng.next();
    distractors.push({ kind: rng.chance(0.5) ? 'dot' : 'line', x, y, x2: x + rng.range(-0.2, 0.2), y2: y + rng.range(-0.2, 0.2), gray: 60 + rng.int(120) });
  }
  return { background: rng.pick(BACKGROUND_NAMES), objects, distractors };
}
