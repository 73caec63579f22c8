// A real HTTP server on 127.0.0.1 for download and scraping tests, with the
// misbehaviours real servers have: dropped connections, errors, stalls.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';

export type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void | Promise<void>;

export interface TestServer {
  url: string;
  /** Requests seen per path (with their Range header). */
  hits: Map<string, { range?: string; ifRange?: string; ua?: string; auth?: string }[]>;
  route(path: string, h: Handler): void;
  /** Connections open now (a client that keeps idle sockets shows here). */
  connections(): number;
  close(): Promise<void>;
}

export async function startServer(): Promise<TestServer> {
  const routes = new Map<string, Handler>();
  const hits = new Map<string, { range?: string; ifRange?: string; ua?: string; auth?: string }[]>();
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((req, res) => {
    const path = new URL(req.url!, 'http://x').pathname;
    const list = hits.get(path) ?? [];
    list.push({ range: req.headers.range, ifRange: req.headers['if-range'], ua: req.headers['user-agent'], auth: req.headers.authorization });
    hits.set(path, list);
    const h = routes.get(path);
    if (!h) {
      res.writeHead(404, { 'content-type': 'text/html' }).end('<html><body>404 Not Found</body></html>');
      return;
    }
    Promise.resolve(h(req, res, list.length)).catch((err) => {
      res.destroy(err as Error);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    route: (p, h) => void routes.set(p, h),
    connections: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

/** Serve `body` honouring Range (and If-Range against `etag`, when given), as static file servers do. */
export function serveBytes(body: Buffer, type = 'application/octet-stream', etag?: string): Handler {
  return (req, res) => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (etag) res.setHeader('etag', etag);
    if (m && (ifRange === undefined || ifRange === etag)) {
      const start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-type': type, 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-type': type, 'content-length': body.length });
    res.end(body);
  };
}

/** Send the headers and `upTo` bytes of the response `h` would send, then cut the connection. */
export function dropAfter(body: Buffer, upTo: number): Handler {
  return (req, res) => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const headers: Record<string, string | number> = { 'content-length': body.length - start };
    if (m) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    res.writeHead(m ? 206 : 200, headers);
    res.write(body.subarray(start, Math.min(body.length, start + upTo)), () => setTimeout(() => res.socket?.destroy(), 20));
  };
}

/** A minimal zip writer (stored entries) for tests: there is no zip writer among the dependencies. */
export function makeZip(entries: { name: string; data?: Buffer; symlink?: string }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const data = e.symlink !== undefined ? Buffer.from(e.symlink) : (e.data ?? Buffer.alloc(0));
    const name = Buffer.from(e.name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0, 6);
    local.writeUInt16LE(0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, data);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(0x0314, 4); // made by unix, so external attributes carry a mode
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    const mode = e.symlink !== undefined ? 0o120777 : e.name.endsWith('/') ? 0o040755 : 0o100644;
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** A tar built with tar-stream, including hostile entries when asked. */
export async function makeTar(
  entries: { name: string; data?: Buffer; type?: 'file' | 'symlink' | 'link' | 'directory'; linkname?: string }[],
): Promise<Buffer> {
  const tar = await import('tar-stream');
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === 'symlink' || e.type === 'link') pack.entry({ name: e.name, type: e.type, linkname: e.linkname });
    else if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory' });
    else pack.entry({ name: e.name, size: e.data!.length }, e.data!);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
