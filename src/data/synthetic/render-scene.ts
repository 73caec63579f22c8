// Scene -> image: an SVG drawn by sharp (librsvg), then pixel noise, then
// JPEG. sharp is imported lazily so that describing a scene stays cheap.

import type { Rng } from '../rng.js';
import { BACKGROUNDS, COLORS, type Scene, type SceneObject } from './scene.js';
import { loadSharp } from '../sharp.js';

function points(cx: number, cy: number, radii: number[], n: number, rot: number): string {
  const pts: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = ((rot - 90) * Math.PI) / 180 + (2 * Math.PI * i) / n;
    const rr = radii[i % radii.length]!;
    pts.push(`${(cx + rr * Math.cos(a)).toFixed(2)},${(cy + rr * Math.sin(a)).toFixed(2)}`);
  }
  return pts.join(' ');
}

function shapeSvg(o: SceneObject, side: number, fill: string): string {
  const cx = o.cx * side;
  const cy = o.cy * side;
  const r = o.r * side;
  switch (o.shape) {
    case 'circle':
      return `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${fill}"/>`;
    case 'square':
      return `<polygon points="${points(cx, cy, [r * 1.2], 4, o.rotation + 45)}" fill="${fill}"/>`;
    case 'diamond':
      return `<polygon points="${points(cx, cy, [r * 1.25, r * 0.8], 4, o.rotation * 0.3)}" fill="${fill}"/>`;
    case 'triangle':
      return `<polygon points="${points(cx, cy, [r * 1.25], 3, o.rotation)}" fill="${fill}"/>`;
    case 'hexagon':
      return `<polygon points="${points(cx, cy, [r * 1.1], 6, o.rotation)}" fill="${fill}"/>`;
    case 'star':
      return `<polygon points="${points(cx, cy, [r * 1.3, r * 0.55], 10, o.rotation)}" fill="${fill}"/>`;
    case 'cross': {
      const w = r * 0.7;
      return `<g transform="rotate(${o.rotation} ${cx} ${cy})" fill="${fill}"><rect x="${cx - r * 1.2}" y="${cy - w / 2}" width="${r * 2.4}" height="${w}"/><rect x="${cx - w / 2}" y="${cy - r * 1.2}" width="${w}" height="${r * 2.4}"/></g>`;
    }
  }
}

function rgb([r, g, b]: readonly number[], rng: Rng, jitter: number): string {
  const j = () => Math.round(rng.range(-jitter, jitter));
  const c = (v: number) => Math.max(0, Math.min(255, v + j()));
  return `rgb(${c(r!)},${c(g!)},${c(b!)})`;
}

export function sceneSvg(scene: Scene, side: number, rng: Rng): string {
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${side}" height="${side}">`];
  parts.push(`<rect width="${side}" height="${side}" fill="${rgb(BACKGROUNDS[scene.background], rng, 12)}"/>`);
  for (const d of scene.distractors) {
    const g = `rgb(${d.gray},${d.gray},${d.gray})`;
    if (d.kind === 'dot') parts.push(`<circle cx="${d.x * side}" cy="${d.y * side}" r="${side * 0.02}" fill="${g}"/>`);
    else
      parts.push(
        `<line x1="${d.x * side}" y1="${d.y * side}" x2="${d.x2 * side}" y2="${d.y2 * side}" stroke="${g}" stroke-width="${Math.max(1, side * 0.015)}"/>`,
      );
  }
  // Colour jitter keeps "red" a range of reds, so a model cannot key on one exact pixel value.
  for (const o of scene.objects) parts.push(shapeSvg(o, side, rgb(COLORS[o.color], rng, 18)));
  parts.push('</svg>');
  return parts.join('');
}

/** Render a scene to an encoded image. `noise` is the std of per-pixel Gaussian noise in 0-255 units. */
export async function renderScene(scene: Scene, side: number, noise: number, rng: Rng, format: 'jpg' | 'png' = 'jpg'): Promise<Buffer> {
  const sharp = await loadSharp();
  const svg = sceneSvg(scene, side, rng);
  const { data, info } = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (noise > 0) {
    for (let i = 0; i < data.length; i++) {
      const v = data[i]! + rng.normal() * noise;
      data[i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  const img = sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } });
  return format === 'jpg' ? img.jpeg({ quality: 90 }).toBuffer() : img.png().toBuffer();
}
