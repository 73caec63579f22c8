// CIFAR-10/100 binary distributions: fixed-size records of a label byte (two
// for CIFAR-100: coarse, fine) and 3072 planar pixel bytes (R, G, B planes).

export interface CifarLayout {
  labelBytes: 1 | 2;
  /** Which label byte is the label (CIFAR-100: 0 coarse, 1 fine). */
  labelIndex: number;
}

export const CIFAR_PIXELS = 32 * 32 * 3;

/** Records of one batch file as interleaved RGB pixels; a trailing partial record is an error (truncated file). */
export function* cifarRecords(buf: Buffer, layout: CifarLayout, source: string): Generator<{ label: number; rgb: Buffer }> {
  const size = layout.labelBytes + CIFAR_PIXELS;
  if (buf.length % size !== 0) throw new Error(`${source}: ${buf.length} bytes is not a whole number of ${size}-byte records; the file is truncated`);
  for (let off = 0; off < buf.length; off += size) {
    const label = buf[off + layout.labelIndex]!;
    const planes = buf.subarray(off + layout.labelBytes, off + size);
    const rgb = Buffer.allocUnsafe(CIFAR_PIXELS);
    for (let p = 0; p < 1024; p++) {
      rgb[p * 3] = planes[p]!;
      rgb[p * 3 + 1] = planes[1024 + p]!;
      rgb[p * 3 + 2] = planes[2048 + p]!;
    }
    yield { label, rgb };
  }
}

export function parseNames(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .map((n) => n.replace(/_/g, ' '));
}
