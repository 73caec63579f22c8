// Data-parallel collectives for N training ranks without NCCL: every
// collective gathers one flat Float32 buffer from each rank at rank 0, which
// combines them in rank order (0, 1, ..., N-1) and sends the same result back
// to every rank. The combination is a fixed sequence of float additions, so a
// run is bitwise reproducible for a given N, and every rank holds identical
// bytes afterwards (parameters and the memory bank never drift apart).
// Two transports share that logic: an in-process group (tests, and one rank)
// and a Unix-socket group (one process per GPU, rank 0 listening).

import { createServer, connect, type Server, type Socket } from 'node:net';

export interface Communicator {
  readonly rank: number;
  readonly world: number;
  /** Element-wise mean over ranks, summed in rank order. */
  allReduceMean(buf: Float32Array): Promise<Float32Array>;
  /** Every rank's buffer, concatenated in rank order (buffers may differ in length). */
  allGather(buf: Float32Array): Promise<Float32Array>;
  close(): Promise<void>;
}

type Combine = (parts: Float32Array[]) => Float32Array;

/** Sum in rank order, then one multiplication by 1/N: the exact float operations are fixed. */
const meanInOrder: Combine = (parts) => {
  const n = parts[0]!.length;
  for (const [r, p] of parts.entries())
    if (p.length !== n) throw new Error(`allReduce: rank ${r} sent ${p.length} values, rank 0 sent ${n}; every rank must reduce buffers of the same size`);
  const out = parts[0]!.slice();
  for (let r = 1; r < parts.length; r++) {
    const p = parts[r]!;
    for (let i = 0; i < n; i++) out[i] = out[i]! + p[i]!;
  }
  if (parts.length > 1) {
    const inv = Math.fround(1 / parts.length);
    for (let i = 0; i < n; i++) out[i] = out[i]! * inv;
  }
  return out;
};

const concatInOrder: Combine = (parts) => {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
};

/** One rank alone: the collectives are identities (a copy), so single-GPU code runs the same path. */
export function soloCommunicator(): Communicator {
  return {
    rank: 0,
    world: 1,
    allReduceMean: async (b) => meanInOrder([b]),
    allGather: async (b) => b.slice(),
    close: async () => {},
  };
}

/** N communicators in one process (tests): each collective resolves when all N ranks have called it. */
export function inProcessGroup(world: number): Communicator[] {
  if (!Number.isInteger(world) || world < 1) throw new Error(`a data-parallel group needs a positive integer number of ranks, got ${world}`);
  let round: { parts: (Float32Array | undefined)[]; waiting: ((r: Float32Array) => void)[]; failing: ((e: unknown) => void)[]; combine: Combine } | undefined;
  const call = (rank: number, buf: Float32Array, combine: Combine) =>
    new Promise<Float32Array>((resolve, reject) => {
      round ??= { parts: new Array(world), waiting: [], failing: [], combine };
      const r = round;
      if (r.combine !== combine)
        return reject(
          new Error(`rank ${rank} called a different collective from the other ranks: every rank must call the same collectives in the same order`),
        );
      if (r.parts[rank]) return reject(new Error(`rank ${rank} called a collective twice before the others caught up`));
      r.parts[rank] = buf.slice();
      r.waiting[rank] = resolve;
      r.failing[rank] = reject;
      if (r.parts.filter(Boolean).length < world) return;
      round = undefined;
      try {
        const out = combine(r.parts as Float32Array[]);
        r.waiting.forEach((w) => w(out.slice()));
      } catch (err) {
        r.failing.forEach((f) => f(err));
      }
    });
  return Array.from({ length: world }, (_, rank) => ({
    rank,
    world,
    allReduceMean: (b) => call(rank, b, meanInOrder),
    allGather: (b) => call(rank, b, concatInOrder),
    close: async () => {},
  }));
}

// ---- Unix-socket transport: frames of [u32 op][u32 count][count float32]. ----

const OP_REDUCE = 1,
  OP_GATHER = 2,
  OP_RESULT = 3;
const HEADER = 8;

/** Reads length-prefixed frames from a socket in arrival order; a closed socket fails every later read. */
class FrameReader {
  private chunks: Buffer[] = [];
  private have = 0;
  /** Bytes of the frame being received (header included); -1 until its header is in. */
  private need = -1;
  private waiters: { resolve: (f: { op: number; data: Float32Array }) => void; reject: (e: unknown) => void }[] = [];
  private closed: Error | undefined;

  /** `peer` names the other end in errors (known once it has sent its rank). */
  constructor(
    sock: Socket,
    public peer: string,
  ) {
    sock.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.have += c.length;
      this.pump();
    });
    const fail = (why: string) => {
      this.closed ??= new Error(`data-parallel: ${this.peer} ${why}; the other ranks stop too (see that rank's log for its error)`);
      for (const w of this.waiters.splice(0)) w.reject(this.closed);
    };
    sock.on('error', (e) => fail(`failed (${e.message})`));
    sock.on('close', () => fail('disconnected'));
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.have = rest.length;
    return out;
  }

  private pump(): void {
    while (this.waiters.length && this.have >= HEADER) {
      // The frame's size is read once from its header; until the frame is complete nothing is copied
      // (a gradient frame is hundreds of MB arriving in small chunks).
      if (this.need < 0) {
        let k = 0;
        for (let got = 0; got < HEADER; k++) got += this.chunks[k]!.length;
        this.need = HEADER + Buffer.concat(this.chunks.slice(0, k), HEADER).readUInt32LE(4) * 4;
      }
      if (this.have < this.need) return;
      const frame = this.take(this.need);
      this.need = -1;
      const count = (frame.length - HEADER) / 4;
      // A view when the payload is 4-byte aligned (a fresh allocation is), else one copy.
      const at = frame.byteOffset + HEADER;
      const data = at % 4 === 0 ? new Float32Array(frame.buffer, at, count) : new Float32Array(frame.buffer.slice(at, at + count * 4));
      this.waiters.shift()!.resolve({ op: frame.readUInt32LE(0), data });
    }
  }

  next(): Promise<{ op: number; data: Float32Array }> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.pump();
    });
  }
}

/** A frame as two buffers (header, then the floats' own bytes: no copy of the payload). */
function frame(op: number, data: Float32Array): Buffer[] {
  const head = Buffer.alloc(HEADER);
  head.writeUInt32LE(op, 0);
  head.writeUInt32LE(data.length, 4);
  return [head, Buffer.from(data.buffer, data.byteOffset, data.byteLength)];
}

const write = (s: Socket, parts: Buffer[]) =>
  new Promise<void>((resolve, reject) => {
    for (const [i, b] of parts.entries()) {
      if (i < parts.length - 1) s.write(b);
      else s.write(b, (e) => (e ? reject(e) : resolve()));
    }
  });

/**
 * Rank 0 of a socket group: listens on `path` and waits for ranks 1..world-1 to connect (each sends its
 * rank first). Start it before the other ranks are started, so their connect finds the socket.
 */
export async function listenRoot(path: string, world: number, opts: { timeoutMs?: number } = {}): Promise<{ ready: Promise<Communicator>; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  const ready = new Promise<Communicator>((resolve, reject) => {
    const peers: (FrameReader | undefined)[] = new Array(world);
    const socks: (Socket | undefined)[] = new Array(world);
    let joined = 1;
    const timer = setTimeout(() => {
      reject(new Error(`data-parallel: only ${joined} of ${world} ranks connected within ${(opts.timeoutMs ?? 120_000) / 1000}s; see the missing ranks' logs`));
      server.close();
    }, opts.timeoutMs ?? 120_000);
    if (world === 1) {
      clearTimeout(timer);
      resolve(rootComm(server, peers, socks, world));
    }
    server.on('connection', (sock) => {
      const reader = new FrameReader(sock, 'a rank');
      reader.next().then(
        ({ data }) => {
          const r = data[0]!;
          if (!Number.isInteger(r) || r < 1 || r >= world || peers[r]) {
            sock.destroy();
            return;
          }
          reader.peer = `rank ${r}`;
          peers[r] = reader;
          socks[r] = sock;
          if (++joined === world) {
            clearTimeout(timer);
            resolve(rootComm(server, peers, socks, world));
          }
        },
        () => sock.destroy(),
      );
    });
  });
  ready.catch(() => {});
  return { ready, server };
}

function rootComm(server: Server, peers: (FrameReader | undefined)[], socks: (Socket | undefined)[], world: number): Communicator {
  const collective = async (op: number, buf: Float32Array, combine: Combine) => {
    const parts: Float32Array[] = [buf.slice()];
    for (let r = 1; r < world; r++) {
      const f = await peers[r]!.next();
      if (f.op !== op)
        throw new Error(`data-parallel: rank ${r} called a different collective from rank 0; every rank must call the same collectives in the same order`);
      parts.push(f.data);
    }
    const out = combine(parts);
    const msg = frame(OP_RESULT, out);
    await Promise.all(socks.slice(1).map((s) => write(s!, msg)));
    return out;
  };
  return {
    rank: 0,
    world,
    allReduceMean: (b) => collective(OP_REDUCE, b, meanInOrder),
    allGather: (b) => collective(OP_GATHER, b, concatInOrder),
    close: async () => {
      for (const s of socks) s?.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Rank `rank` (≥ 1) of a socket group whose rank 0 listens on `path`. */
export async function connectRank(path: string, rank: number, world: number): Promise<Communicator> {
  const sock = connect(path);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', (e) => reject(new Error(`data-parallel: rank ${rank} could not reach rank 0 at ${path} (${e.message})`)));
  });
  const reader = new FrameReader(sock, 'rank 0');
  await write(sock, frame(0, Float32Array.of(rank)));
  const collective = async (op: number, buf: Float32Array) => {
    await write(sock, frame(op, buf));
    const f = await reader.next();
    if (f.op !== OP_RESULT) throw new Error(`data-parallel: unexpected frame ${f.op} from rank 0`);
    return f.data;
  };
  return {
    rank,
    world,
    allReduceMean: (b) => collective(OP_REDUCE, b),
    allGather: (b) => collective(OP_GATHER, b),
    close: async () => {
      sock.end();
    },
  };
}

/**
 * This rank's share of a step's list (micro-batches or rows): a contiguous block, so concatenating
 * the ranks' shares in rank order (allGather) gives the list back in its order.
 */
export function rankShare<T>(items: readonly T[], rank: number, world: number): T[] {
  if (items.length % world !== 0) throw new Error(`${items.length} items cannot be shared evenly by ${world} ranks; make it a multiple of the number of GPUs`);
  const per = items.length / world;
  return items.slice(rank * per, (rank + 1) * per);
}
