// Reading PyTorch checkpoints (`torch.save` since 1.6: a zip of
// <archive>/data.pkl, <archive>/data/<key> raw storages, <archive>/byteorder
// and <archive>/version) without PyTorch and without running the pickle.
// Tensors are rebuilt from (storage, offset, size, stride) exactly as
// torch._utils._rebuild_tensor_v2 does, so views (transposes, slices, several
// tensors in one storage) come out as the values torch would show.

import { OpaqueObject, PickleError, unpickle, type PickleGlobal, type PyDict } from './pickle.js';
import { f16ToF32, bf16ToF32 } from './half.js';

export interface TorchTensor {
  dtype: string;
  shape: number[];
  /** Contiguous values (row-major). Floating types are read as float32; integer and bool types as int32. */
  data: Float32Array | Int32Array;
}

export function isTorchTensor(v: unknown): v is TorchTensor {
  return (
    !!v &&
    typeof v === 'object' &&
    (v as TorchTensor).data instanceof Object &&
    Array.isArray((v as TorchTensor).shape) &&
    typeof (v as TorchTensor).dtype === 'string'
  );
}

/** torch.*Storage -> element size and how to read one element as a number. */
const STORAGES: Record<string, { dtype: string; size: number; float: boolean }> = {
  FloatStorage: { dtype: 'float32', size: 4, float: true },
  HalfStorage: { dtype: 'float16', size: 2, float: true },
  BFloat16Storage: { dtype: 'bfloat16', size: 2, float: true },
  DoubleStorage: { dtype: 'float64', size: 8, float: true },
  LongStorage: { dtype: 'int64', size: 8, float: false },
  IntStorage: { dtype: 'int32', size: 4, float: false },
  ShortStorage: { dtype: 'int16', size: 2, float: false },
  CharStorage: { dtype: 'int8', size: 1, float: false },
  ByteStorage: { dtype: 'uint8', size: 1, float: false },
  BoolStorage: { dtype: 'bool', size: 1, float: false },
};

/**
 * Classes a checkpoint may carry besides weights (training configs, run
 * metadata): built as OpaqueObject stubs, never called. Everything not here
 * and not a rebuild function is refused.
 */
const STUBBED = new Set([
  'argparse.Namespace',
  'omegaconf.dictconfig.DictConfig',
  'omegaconf.listconfig.ListConfig',
  'omegaconf.base.ContainerMetadata',
  'omegaconf.base.Metadata',
  'omegaconf.nodes.AnyNode',
  'omegaconf.nodes.StringNode',
  'omegaconf.nodes.IntegerNode',
  'omegaconf.nodes.FloatNode',
  'omegaconf.nodes.BooleanNode',
  'omegaconf.nodes.EnumNode',
  'typing.Any',
  'builtins.dict',
  'builtins.list',
  'builtins.set',
  'builtins.frozenset',
  'builtins.slice',
  'builtins.object',
  'collections.defaultdict',
  'copyreg._reconstructor',
  'pathlib.PosixPath',
  'pathlib.WindowsPath',
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
  'numpy.dtype',
  'numpy.core.multiarray._reconstruct',
  'numpy.ndarray',
  'torch.device',
  'torch.Size',
]);

/**
 * Whole modules whose classes only describe a training run in the published
 * checkpoints: omegaconf containers, fairseq's config dataclasses and enums
 * (fairseq saves its cfg with them), and data2vec's own configs (`examples.*`
 * in fairseq's tree). Stubbed, never imported.
 */
const STUBBED_MODULES = ['omegaconf', 'fairseq.dataclass', 'fairseq.models', 'fairseq.tasks', 'fairseq.criterions', 'fairseq.optim', 'examples.data2vec'];
/** torch dtypes (torch.float16, ...) appear in saved run arguments. */
const TORCH_DTYPE = /^(float|bfloat|half|double|int|uint|long|short|bool|complex|cfloat)\d*$/;

interface StorageRef {
  readonly storage: string;
  readonly key: string;
  readonly numel: number;
}

export interface TorchReadOptions {
  /** Reads one zip record (its bytes) by full name; undefined when absent. */
  record(name: string): Promise<Buffer | undefined>;
  names: string[];
  /** For messages. */
  path: string;
}

function dtypeOfStorage(name: string): { dtype: string; size: number; float: boolean } {
  const s = STORAGES[name];
  if (!s) throw new Error(`unsupported storage type torch.${name}`);
  return s;
}

function decodeStorage(bytes: Buffer, ref: StorageRef, bigEndian: boolean): Float32Array | Int32Array {
  const { dtype, size, float } = dtypeOfStorage(ref.storage);
  const n = ref.numel;
  if (bytes.length < n * size)
    throw new Error(`storage ${ref.key} (${dtype}) holds ${bytes.length} bytes, ${n} elements need ${n * size}: the file is truncated or corrupt`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = !bigEndian;
  // The common case (float32 on a little-endian host, which Node always is): one copy, no per-element reads.
  if (dtype === 'float32' && le) return new Float32Array(new Uint8Array(bytes.subarray(0, n * 4)).buffer);
  if (float) {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (dtype === 'float32') out[i] = dv.getFloat32(i * 4, le);
      else if (dtype === 'float64') out[i] = dv.getFloat64(i * 8, le);
      else if (dtype === 'float16') out[i] = f16ToF32(dv.getUint16(i * 2, le));
      else out[i] = bf16ToF32(dv.getUint16(i * 2, le));
    }
    return out;
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let v: number;
    if (dtype === 'int64') {
      const b = dv.getBigInt64(i * 8, le);
      if (b > 2147483647n || b < -2147483648n) throw new Error(`storage ${ref.key}: int64 value ${b} does not fit the int32 smke reads integer tensors as`);
      v = Number(b);
    } else if (dtype === 'int32') v = dv.getInt32(i * 4, le);
    else if (dtype === 'int16') v = dv.getInt16(i * 2, le);
    else if (dtype === 'int8') v = dv.getInt8(i);
    else v = dv.getUint8(i);
    out[i] = dtype === 'bool' ? (v ? 1 : 0) : v;
  }
  return out;
}

const int = (v: unknown, what: string): number => {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`${what} is ${String(v)}, not an integer`);
  return v;
};

/** Materialises a strided view of `storage` into a contiguous array, checking every index stays inside it. */
export function gatherStrided(storage: Float32Array | Int32Array, offset: number, size: number[], stride: number[], key: string): Float32Array | Int32Array {
  if (size.length !== stride.length) throw new Error(`tensor in storage ${key}: ${size.length} sizes but ${stride.length} strides`);
  const numel = size.reduce((a, b) => a * b, 1);
  const out = storage instanceof Float32Array ? new Float32Array(numel) : new Int32Array(numel);
  if (numel === 0) return out;
  if (offset < 0 || size.some((s) => s < 0) || stride.some((s) => s < 0)) throw new Error(`tensor in storage ${key}: negative offset, size or stride`);
  const last = offset + size.reduce((a, s, i) => a + (s - 1) * stride[i]!, 0);
  if (last >= storage.length)
    throw new Error(
      `tensor of size [${size.join(', ')}], stride [${stride.join(', ')}], offset ${offset} reads element ${last} of storage ${key}, which holds only ${storage.length}: the storage is shorter than the tensor needs`,
    );
  // Contiguous (row-major strides): a slice.
  let expect = 1,
    contiguous = true;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expect) contiguous = false;
    expect *= size[d]!;
  }
  if (contiguous) return storage.slice(offset, offset + numel);
  const rank = size.length;
  const idx = new Array<number>(rank).fill(0);
  let src = offset;
  for (let i = 0; i < numel; i++) {
    out[i] = storage[src]!;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      src += stride[d]!;
      if (idx[d]! < size[d]!) break;
      src -= stride[d]! * size[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * Unpickles a checkpoint's data.pkl. Storages are decoded once each (tensors
 * sharing one see the same values) and tensors materialised contiguous.
 */
export async function readTorchZip(opts: TorchReadOptions): Promise<unknown> {
  const pkl = opts.names.filter((n) => n === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(n));
  if (pkl.length !== 1)
    throw new Error(
      `${opts.path} is not a PyTorch checkpoint: ${pkl.length ? 'several' : 'no'} <archive>/data.pkl record${pkl.length ? 's' : ''} (legacy pre-1.6 torch.save files are not read: re-save with a newer torch)`,
    );
  const prefix = pkl[0]!.slice(0, -'data.pkl'.length);
  const order = (await opts.record(`${prefix}byteorder`))?.toString('latin1').trim() ?? 'little';
  if (order !== 'little' && order !== 'big') throw new Error(`${opts.path}: byteorder record says '${order}'`);
  const version = (await opts.record(`${prefix}version`))?.toString('latin1').trim();
  if (version !== undefined && !/^\d+$/.test(version)) throw new Error(`${opts.path}: version record says '${version}'`);
  const data = (await opts.record(pkl[0]!))!;

  // Storages are read lazily by key; pickling happens synchronously, so gather refs first, then load.
  const refs = new Map<string, StorageRef>();
  interface PendingTensor {
    ref: StorageRef;
    offset: number;
    size: number[];
    stride: number[];
    result: TorchTensor;
  }
  const pending: PendingTensor[] = [];
  const rebuild = (args: unknown[]): TorchTensor => {
    const [ref, offset, size, stride] = args as [StorageRef, unknown, unknown, unknown];
    if (!ref || !refs.has(ref.key)) throw new Error(`${opts.path}: a tensor is rebuilt from something that is not a storage`);
    if (!Array.isArray(size) || !Array.isArray(stride)) throw new Error(`${opts.path}: tensor size or stride is not a tuple`);
    const result: TorchTensor = { dtype: dtypeOfStorage(ref.storage).dtype, shape: size.map((s) => int(s, 'tensor size')), data: new Float32Array(0) };
    pending.push({ ref, offset: int(offset, 'storage offset'), size: result.shape, stride: stride.map((s) => int(s, 'tensor stride')), result });
    return result;
  };
  const fn = (call: (args: unknown[]) => unknown): PickleGlobal => ({ call });
  const globals = (module: string, name: string): PickleGlobal => {
    const full = `${module}.${name}`;
    if (full === 'torch._utils._rebuild_tensor_v2' || full === 'torch._utils._rebuild_tensor') return fn(rebuild);
    // nn.Parameter pickled directly: (data, requires_grad, backward_hooks).
    if (full === 'torch._utils._rebuild_parameter' || full === 'torch._utils._rebuild_parameter_with_state') return fn((a) => a[0]);
    if (full === 'collections.OrderedDict') return fn(() => new Map());
    if (module === 'torch' && name.endsWith('Storage') && !(name in STORAGES))
      throw new PickleError(
        `${opts.path}: tensors stored as torch.${name} are not supported (smke reads ${Object.keys(STORAGES)
          .map((k) => `torch.${k}`)
          .join(', ')})`,
      );
    if (module === 'torch' && name in STORAGES)
      return {
        call: () => {
          throw new PickleError(`${opts.path}: torch.${name} is constructed directly instead of through a persistent id`);
        },
        storage: name,
      } as PickleGlobal & { storage: string };
    if (STUBBED.has(full) || STUBBED_MODULES.some((m) => module === m || module.startsWith(`${m}.`)) || (module === 'torch' && TORCH_DTYPE.test(name)))
      return fn((args) => new OpaqueObject(full, args));
    throw new PickleError(
      `${opts.path}: refused to load the global ${full}: a PyTorch weights file needs only tensors, storages and OrderedDict, so this pickle may run code when torch.load opens it. Nothing was executed. If the file is trusted, re-save only its state dict (torch.save(model.state_dict(), path)).`,
    );
  };
  const persistentLoad = (pid: unknown): StorageRef => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new Error(`${opts.path}: unknown persistent id ${JSON.stringify(pid)}`);
    const [, type, key, , numel] = pid as [string, { storage?: string }, unknown, unknown, unknown];
    if (!type?.storage) throw new Error(`${opts.path}: persistent id names a storage type that is not a torch storage`);
    const k = String(key);
    const prev = refs.get(k);
    const ref: StorageRef = { storage: type.storage, key: k, numel: int(numel, 'storage size') };
    if (prev && (prev.storage !== ref.storage || prev.numel !== ref.numel))
      throw new Error(`${opts.path}: storage ${k} is declared twice with different types or sizes`);
    refs.set(k, prev ?? ref);
    return prev ?? ref;
  };
  let root: unknown;
  try {
    root = unpickle(data, { global: globals, persistentLoad });
  } catch (err) {
    if (err instanceof PickleError && !err.message.startsWith(opts.path)) throw new PickleError(`${opts.path}: ${err.message}`);
    throw err;
  }

  const storages = new Map<string, Float32Array | Int32Array>();
  for (const p of pending) {
    let s = storages.get(p.ref.key);
    if (!s) {
      const bytes = await opts.record(`${prefix}data/${p.ref.key}`);
      if (!bytes) throw new Error(`${opts.path}: storage record ${prefix}data/${p.ref.key} is missing: the archive is incomplete`);
      s = decodeStorage(bytes, p.ref, order === 'big');
      storages.set(p.ref.key, s);
    }
    p.result.data = gatherStrided(s, p.offset, p.size, p.stride, p.ref.key);
  }
  return root;
}

/** Opens a `.pth`/`.pt` file and unpickles it (see readTorchZip). */
export async function loadTorchCheckpoint(path: string): Promise<unknown> {
  const { ZipReader } = await import('../data/zip.js');
  const { open } = await import('node:fs/promises');
  const { crc32 } = await import('node:zlib');
  const zip = await ZipReader.open(path).catch(async (err: Error) => {
    // torch.save before 1.6 wrote a bare pickle stream (protocol 2 starts 0x80 0x02), not a zip.
    const head = Buffer.alloc(2);
    const fh = await open(path, 'r');
    await fh.read(head, 0, 2, 0).finally(() => fh.close());
    if (head[0] === 0x80 && head[1] === 0x02)
      throw new Error(
        `${path} is in the legacy torch.save format (before PyTorch 1.6), which smke does not read: re-save it with a newer torch (torch.save(torch.load(old), new))`,
      );
    throw new Error(`${path} is not a PyTorch checkpoint zip: ${err.message}`);
  });
  const fh = await open(path, 'r');
  // torch stores every record uncompressed: read those with one positioned read each (streaming
  // them through the zip library ran at a fraction of disk speed), checking the CRC as torch does.
  const stored = async (name: string): Promise<Buffer | undefined> => {
    const e = zip.entries.get(name);
    if (!e) return undefined;
    if (e.compressionMethod !== 0) return zip.read(name);
    const local = Buffer.alloc(30);
    await fh.read(local, 0, 30, e.relativeOffsetOfLocalHeader);
    if (local.readUInt32LE(0) !== 0x04034b50) throw new Error(`${path}: record ${name} has no local header: the archive is corrupt`);
    const start = e.relativeOffsetOfLocalHeader + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    const out = Buffer.alloc(e.compressedSize);
    const { bytesRead } = await fh.read(out, 0, out.length, start);
    if (bytesRead !== out.length) throw new Error(`${path}: record ${name} is cut short: the file is truncated`);
    if (crc32(out) >>> 0 !== e.crc32 >>> 0) throw new Error(`${path}: record ${name} fails its CRC check: the file is corrupt (download it again)`);
    return out;
  };
  try {
    return await readTorchZip({ path, names: [...zip.entries.keys()], record: stored });
  } finally {
    await fh.close();
    zip.close();
  }
}

/**
 * The state dict inside a loaded checkpoint: the dict of tensors under the
 * first of `keys` that holds one (fairseq and BEiT put weights under `model`),
 * else the root when it is itself a dict of tensors. Non-tensor entries
 * (a state dict's bookkeeping) are dropped.
 */
export function findStateDict(root: unknown, keys = ['model', 'module', 'state_dict']): { tensors: Map<string, TorchTensor>; under: string } {
  const tensorsOf = (d: unknown): Map<string, TorchTensor> | undefined => {
    if (!(d instanceof Map)) return undefined;
    const out = new Map<string, TorchTensor>();
    for (const [k, v] of d as PyDict) if (typeof k === 'string' && isTorchTensor(v)) out.set(k, v);
    return out.size ? out : undefined;
  };
  if (root instanceof Map) {
    for (const k of keys) {
      const t = tensorsOf(root.get(k));
      if (t) return { tensors: t, under: k };
    }
  }
  const t = tensorsOf(root);
  if (t) return { tensors: t, under: '' };
  const top = root instanceof Map ? [...root.keys()].map(String).join(', ') : typeof root;
  throw new Error(`no state dict found: neither the root nor ${keys.map((k) => `'${k}'`).join('/')} is a dict of tensors (top level: ${top})`);
}
