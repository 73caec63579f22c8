// safetensors: 8-byte little-endian header length, a JSON header mapping each
// tensor name to {dtype, shape, data_offsets} (plus optional "__metadata__" of
// strings), then the raw little-endian data. This is the format PyTorch tools
// (safetensors.torch.load_file) read, so checkpoints leave the TS world intact.

import { open, readFile, rename } from 'node:fs/promises';
import { bf16ToF32, f16ToF32 } from './half.js';

export interface NamedTensor {
  shape: number[];
  data: Float32Array | Int32Array;
}

const DTYPES = { F32: Float32Array, I32: Int32Array } as const;
type DType = keyof typeof DTYPES;

function dtypeOf(data: Float32Array | Int32Array): DType {
  return data instanceof Float32Array ? 'F32' : 'I32';
}

export function encodeSafetensors(tensors: Map<string, NamedTensor>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new Error(`tensor '${name}': shape ${t.shape.join('x')} does not match ${t.data.length} values`);
    header[name] = { dtype: dtypeOf(t.data), shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned (what the Rust writer does).
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    // Node runs on little-endian hosts only, so the typed array's bytes are already LE.
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    pos += t.data.byteLength;
  }
  return out;
}

/** Bytes per element of every dtype the format defines (for validation; reading supports fewer). */
const DTYPE_SIZES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};
/** The reference reader's limit on the header (safetensors' MAX_HEADER_SIZE). */
const MAX_HEADER = 100_000_000;

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/**
 * Reads a safetensors buffer, refusing what the reference library
 * (safetensors' Metadata::validate and read_metadata) refuses: a header that
 * is too large, not JSON or not an object; tensor data that overlaps, leaves a
 * gap or does not start at 0 (sorted by offset, each tensor must start where
 * the previous one ends); a byte range that does not match dtype x shape; and
 * data that does not end exactly at the end of the file. F16 and BF16 are
 * widened to float32 (exact); F32 and I32 are read as they are.
 */
export function decodeSafetensors(buf: Buffer): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  if (buf.length < 8) throw new Error('not a safetensors file: shorter than 8 bytes');
  const n64 = buf.readBigUInt64LE(0);
  if (n64 > BigInt(MAX_HEADER)) throw new Error(`not a safetensors file: header of ${n64} bytes is over the ${MAX_HEADER}-byte limit`);
  const n = Number(n64);
  if (8 + n > buf.length) throw new Error(`not a safetensors file: header of ${n} bytes exceeds the file (${buf.length} bytes): truncated?`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n));
  } catch {
    throw new Error('not a safetensors file: the header is not UTF-8');
  }
  if (!text.startsWith('{')) throw new Error('not a safetensors file: the header does not start with {');
  let header: Record<string, HeaderEntry>;
  try {
    header = JSON.parse(text) as Record<string, HeaderEntry>;
  } catch (err) {
    throw new Error(`not a safetensors file: the header is not JSON (${(err as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new Error('not a safetensors file: the header is not a JSON object');
  let metadata: Record<string, string> = {};
  const entries: [string, HeaderEntry, number][] = [];
  const natural = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!h || typeof h !== 'object' || Object.values(h).some((v) => typeof v !== 'string'))
        throw new Error('safetensors __metadata__ must map names to strings');
      metadata = h as unknown as Record<string, string>;
      continue;
    }
    if (
      !h ||
      typeof h !== 'object' ||
      !Array.isArray(h.shape) ||
      !h.shape.every(natural) ||
      !Array.isArray(h.data_offsets) ||
      h.data_offsets.length !== 2 ||
      !h.data_offsets.every(natural)
    )
      throw new Error(`tensor '${name}': header entry needs dtype, shape (natural numbers) and data_offsets [begin, end]`);
    const size = DTYPE_SIZES[h.dtype];
    if (!size) throw new Error(`tensor '${name}': unknown dtype ${String(h.dtype)}`);
    const numel = h.shape.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(numel * size)) throw new Error(`tensor '${name}': shape ${h.shape.join('x')} is too large`);
    entries.push([name, h, numel]);
  }
  // The reference's validation: sorted by offsets, the ranges must tile [0, end) exactly.
  entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0] || a[1].data_offsets[1] - b[1].data_offsets[1]);
  let next = 0;
  for (const [name, h, numel] of entries) {
    const [s, e] = h.data_offsets;
    if (e < s) throw new Error(`tensor '${name}': data offsets [${s}, ${e}] end before they begin`);
    if (s < next)
      throw new Error(
        `tensor '${name}': data [${s}, ${e}) overlaps the previous tensor's (which ends at ${next}); the reference reader refuses overlapping tensors`,
      );
    if (s > next) throw new Error(`tensor '${name}': data starts at ${s}, leaving a gap after byte ${next}; the reference reader refuses gaps`);
    if (e - s !== numel * DTYPE_SIZES[h.dtype]!)
      throw new Error(`tensor '${name}': ${e - s} bytes of data, but ${h.dtype} ${JSON.stringify(h.shape)} needs ${numel * DTYPE_SIZES[h.dtype]!}`);
    next = e;
  }
  const base = 8 + n;
  if (base + next !== buf.length)
    throw new Error(
      `safetensors data ends at byte ${base + next} but the file has ${buf.length}: ${base + next > buf.length ? 'truncated' : 'trailing bytes'} (the reference reader refuses both)`,
    );
  const tensors = new Map<string, NamedTensor>();
  // In the file's header order, as the writer put them.
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [start, end] = h.data_offsets;
    const bytes = buf.subarray(base + start, base + end);
    tensors.set(name, { shape: h.shape, data: decodeData(name, h.dtype, bytes) });
  }
  return { tensors, metadata };
}

function decodeData(name: string, dtype: string, bytes: Buffer): Float32Array | Int32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F16' || dtype === 'BF16') {
    const out = new Float32Array(bytes.length / 2);
    const widen = dtype === 'F16' ? f16ToF32 : bf16ToF32;
    for (let i = 0; i < out.length; i++) out[i] = widen(dv.getUint16(2 * i, true));
    return out;
  }
  const Ctor = DTYPES[dtype as DType];
  if (!Ctor) throw new Error(`tensor '${name}': dtype ${dtype} is not read by smke (F32, F16, BF16, I32 are)`);
  // Copy: the slice may not be aligned for a typed-array view.
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Ctor(copy.buffer);
}

/** Writes via a temporary file and a rename, so a crash never leaves half a checkpoint. */
export async function saveSafetensors(path: string, tensors: Map<string, NamedTensor>, metadata: Record<string, string> = {}): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(encodeSafetensors(tensors, metadata));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export async function loadSafetensors(path: string): Promise<{ tensors: Map<string, NamedTensor>; metadata: Record<string, string> }> {
  return decodeSafetensors(await readFile(path));
}
