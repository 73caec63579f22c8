// Displayed dimensions of a JPEG or PNG read from its header in JS: what the
// loader needs to draw a crop, without a sharp metadata() call per image (a
// round trip through libuv's pool and libvips' header parser). Anything this
// does not fully understand — other formats, an EXIF orientation other than
// 1, a malformed header — answers undefined, and the caller asks sharp.

export interface Dims {
  width: number;
  height: number;
}

export function headerDims(b: Uint8Array): Dims | undefined {
  if (b.length > 24 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return pngDims(b);
  if (b.length > 4 && b[0] === 0xff && b[1] === 0xd8) return jpegDims(b);
  return undefined;
}

const be16 = (b: Uint8Array, i: number) => (b[i]! << 8) | b[i + 1]!;
const be32 = (b: Uint8Array, i: number) => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;

function pngDims(b: Uint8Array): Dims | undefined {
  // IHDR first; then make sure no eXIf chunk (which may carry an orientation) precedes the image data.
  if (String.fromCharCode(b[12]!, b[13]!, b[14]!, b[15]!) !== 'IHDR') return undefined;
  const width = be32(b, 16);
  const height = be32(b, 20);
  if (!width || !height) return undefined;
  for (let i = 8; i + 8 <= b.length;) {
    const len = be32(b, i);
    const type = String.fromCharCode(b[i + 4]!, b[i + 5]!, b[i + 6]!, b[i + 7]!);
    if (type === 'IDAT' || type === 'IEND') return { width, height };
    if (type === 'eXIf') return undefined;
    i += 12 + len;
  }
  return undefined;
}

function jpegDims(b: Uint8Array): Dims | undefined {
  let dims: Dims | undefined;
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return undefined;
    const m = b[i + 1]!;
    if (m === 0xff) {
      i++; // fill byte
      continue;
    }
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      i += 2;
      continue;
    }
    const len = be16(b, i + 2);
    if (len < 2 || i + 2 + len > b.length) return undefined;
    if (m === 0xda || m === 0xd9) return dims; // start of scan (or end): every header segment has been seen
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (dims || len < 7) return undefined;
      const height = be16(b, i + 5);
      const width = be16(b, i + 7);
      if (!width || !height) return undefined;
      dims = { width, height };
    } else if (m === 0xe1 && !exifUpright(b, i + 4, i + 2 + len)) {
      return undefined;
    }
    i += 2 + len;
  }
  return undefined;
}

/** True when the APP1 segment in [start, end) is not EXIF, or is EXIF whose IFD0 has no orientation or orientation 1. */
function exifUpright(b: Uint8Array, start: number, end: number): boolean {
  if (end - start < 14 || String.fromCharCode(b[start]!, b[start + 1]!, b[start + 2]!, b[start + 3]!) !== 'Exif') return true;
  const t = start + 6; // TIFF header
  const little = b[t] === 0x49 && b[t + 1] === 0x49;
  if (!little && !(b[t] === 0x4d && b[t + 1] === 0x4d)) return false;
  const u16 = (i: number) => (little ? b[i]! | (b[i + 1]! << 8) : be16(b, i));
  const u32 = (i: number) => (little ? (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0 : be32(b, i));
  const ifd = t + u32(t + 4);
  if (ifd + 2 > end) return false;
  const n = u16(ifd);
  if (ifd + 2 + n * 12 > end) return false;
  for (let k = 0; k < n; k++) {
    const e = ifd + 2 + k * 12;
    if (u16(e) === 0x0112) return u16(e + 2) === 3 && u16(e + 8) === 1; // SHORT, value 1: upright
  }
  return true;
}
