// safetensors: 8-byte little-endian header length, a JSON header mapping each
// tensor name to {dtype, shape, data_offsets} (plus optional "__metadata__" of
// strings), then the raw little-endian data. This is the format PyTorch tools
// (safetensors.torch.load_file) read, so checkpoints leave the TS world intact.

import { open, readFile, rename } from 'node:fs/promises';

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

export function decodeSafetensors(buf: Buffer): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  if (buf.length < 8) throw new Error('not a safetensors file: shorter than 8 bytes');
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) throw new Error(`not a safetensors file: header of ${n} bytes exceeds the file`);
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + n;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = h as unknown as Record<string, string>;
      continue;
    }
    const Ctor = DTYPES[h.dtype as DType];
    if (!Ctor) throw new Error(`tensor '${name}': unsupported dtype ${h.dtype}`);
    const [start, end] = h.data_offsets;
    if (base + end > buf.length || end < start) throw new Error(`tensor '${name}': data offsets out of range`);
    // Copy: the slice may not be aligned for a typed-array view.
    const bytes = new Uint8Array(end - start);
    bytes.set(buf.subarray(base + start, base + end));
    const data = new Ctor(bytes.buffer);
    if (data.length !== h.shape.reduce((a, b) => a * b, 1)) throw new Error(`tensor '${name}': shape does not match its data`);
    tensors.set(name, { shape: h.shape, data });
  }
  return { tensors, metadata };
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
