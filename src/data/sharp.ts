// sharp (libvips), loaded on first use and then kept: commands that never
// touch an image do not pay for loading it, and code that decodes hundreds of
// images a second does not pay for a dynamic import per image.

type Sharp = typeof import('sharp').default;

let loaded: Promise<Sharp> | undefined;

export function loadSharp(): Promise<Sharp> {
  return (loaded ??= import('sharp').then((m) => m.default));
}
