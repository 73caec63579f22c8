// The safetensors reader against files built by hand here (header JSON and
// bytes written directly, not by encodeSafetensors) and by make_fixtures.py
// with numpy: it must refuse what the reference library's validation refuses
// (Metadata::validate: sorted by offset, the tensors tile [0, end) with no
// overlap and no gap, each range is dtype x shape bytes; read_metadata: the
// data ends exactly at the end of the buffer), and widen F16 / BF16 exactly.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeSafetensors } from '../../src/ml/safetensors.js';

function file(header: Record<string, unknown>, data: Buffer | number[], pad = 0): Buffer {
  const json = Buffer.from(JSON.stringify(header) + ' '.repeat(pad), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.isBuffer(data) ? data : Buffer.from(data)]);
}
const f32 = (...v: number[]) => Buffer.from(new Float32Array(v).buffer);

describe('safetensors: the reference validation rules', () => {
  it('accepts tensors that tile the data exactly, in any header order, with zero-size ones', () => {
    const buf = file(
      {
        b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        z: { dtype: 'F32', shape: [0, 3], data_offsets: [12, 12] },
      },
      f32(1, 2, 3),
      5,
    );
    const t = decodeSafetensors(buf).tensors;
    expect(Array.from(t.get('a')!.data)).toEqual([1, 2]);
    expect(Array.from(t.get('b')!.data)).toEqual([3]);
    expect(t.get('z')!.data.length).toBe(0);
  });

  it('refuses overlapping tensor data (partial, identical and nested ranges)', () => {
    for (const [a, b] of [
      [
        [0, 8],
        [4, 12],
      ],
      [
        [0, 8],
        [0, 8],
      ],
      [
        [0, 12],
        [4, 8],
      ],
    ] as [number[], number[]][]) {
      const buf = file(
        { a: { dtype: 'F32', shape: [(a[1]! - a[0]!) / 4], data_offsets: a }, b: { dtype: 'F32', shape: [(b[1]! - b[0]!) / 4], data_offsets: b } },
        f32(1, 2, 3),
      );
      expect(() => decodeSafetensors(buf), JSON.stringify([a, b])).toThrow(/overlaps/);
    }
  });

  it('refuses a gap between tensors and data that does not start at 0', () => {
    expect(() =>
      decodeSafetensors(file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, f32(1, 2, 3))),
    ).toThrow(/gap after byte 4/);
    expect(() => decodeSafetensors(file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(1, 2)))).toThrow(/gap after byte 0/);
  });

  it('refuses out-of-range offsets, trailing bytes and reversed ranges', () => {
    expect(() => decodeSafetensors(file({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } }, f32(1, 2)))).toThrow(/truncated/);
    expect(() => decodeSafetensors(file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1, 2)))).toThrow(/trailing bytes/);
    expect(() => decodeSafetensors(file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, f32(1)))).toThrow(/end before they begin/);
    expect(() => decodeSafetensors(file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, -4] } }, f32(1)))).toThrow(/data_offsets/);
  });

  it('refuses a byte range that does not match dtype x shape', () => {
    expect(() => decodeSafetensors(file({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(1, 2)))).toThrow(
      /8 bytes of data, but F32 \[3\] needs 12/,
    );
    expect(() => decodeSafetensors(file({ a: { dtype: 'F16', shape: [2], data_offsets: [0, 8] } }, f32(1, 2)))).toThrow(/needs 4/);
  });

  it('refuses a malformed header: not JSON, not an object, not UTF-8, too long, unknown dtype, non-string metadata', () => {
    const raw = (s: Buffer) => {
      const l = Buffer.alloc(8);
      l.writeBigUInt64LE(BigInt(s.length));
      return Buffer.concat([l, s]);
    };
    expect(() => decodeSafetensors(raw(Buffer.from('{"a": ')))).toThrow(/not JSON/);
    expect(() => decodeSafetensors(raw(Buffer.from('[1, 2]')))).toThrow(/does not start with \{/);
    expect(() => decodeSafetensors(raw(Buffer.from([0x7b, 0xff, 0x7d])))).toThrow(/not UTF-8/);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(200_000_000n);
    expect(() => decodeSafetensors(huge)).toThrow(/over the 100000000-byte limit/);
    expect(() => decodeSafetensors(file({ a: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, f32(1)))).toThrow(/unknown dtype Q7/);
    expect(() => decodeSafetensors(file({ __metadata__: { n: 3 } }, []))).toThrow(/__metadata__ must map names to strings/);
  });
});

describe('safetensors: F16 and BF16 are read as float32', () => {
  it('known bit patterns', () => {
    // F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), -0, +inf; BF16: 1, -3.140625, 2^-133 (subnormal)
    const h = Buffer.from(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00]).buffer);
    const b = Buffer.from(new Uint16Array([0x3f80, 0xc049, 0x0001]).buffer);
    const t = decodeSafetensors(
      file({ h: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 12] }, b: { dtype: 'BF16', shape: [3], data_offsets: [12, 18] } }, Buffer.concat([h, b])),
    ).tensors;
    expect(t.get('h')!.data).toBeInstanceOf(Float32Array);
    expect(Array.from(t.get('h')!.data)).toEqual([1, -2, 65504, 2 ** -24, -0, Infinity]);
    expect(t.get('h')!.shape).toEqual([2, 3]);
    expect(Array.from(t.get('b')!.data)).toEqual([1, -3.140625, Math.fround(2 ** -133)]);
  });

  it('a file numpy wrote (make_fixtures.py) reads back to numpy values', () => {
    const dir = join(__dirname, '..', 'fixtures', 'pth');
    const want = (JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as { half_safetensors: Record<string, number[]> }).half_safetensors;
    const t = decodeSafetensors(readFileSync(join(dir, 'half.safetensors'))).tensors;
    for (const k of ['a', 'b', 'c']) expect(Array.from(t.get(k)!.data), k).toEqual(want[k]);
  });
});
