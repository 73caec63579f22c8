// A remote cache on any S3-compatible service, shared between people and
// machines (docs/remote-cache.md). One store entry is uploaded as
//
//   <prefix>/entries/<key>/<path>    every file of the entry, _smke/ included
//   <prefix>/index/<key>.json        written last: the list of files with size and digest
//
// An entry exists remotely exactly when its index object exists, so an upload
// cut off half-way is never visible, and a reader never sees half an entry.
// A pulled entry is checked file by file against the index and then, like any
// entry, against its own manifest before it is published into the local store
// by one rename. Credentials come from the AWS SDK's usual chain (environment,
// shared profile, instance role) and are never written anywhere by smke.

import { createWriteStream, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { CacheKey } from './cache-key.js';
import type { Digester } from './digest.js';
import { UsageError } from './errors.js';
import { checkEntry } from './store.js';

export type RemoteMode = 'read-write' | 'pull' | 'push' | 'off';
const MODES: readonly RemoteMode[] = ['read-write', 'pull', 'push', 'off'];

export interface RemoteConfig {
  /** `s3://bucket/prefix`. */
  url: string;
  /** The service's URL for anything but AWS itself (MinIO, Ceph, a university's S3): `http://host:9000`. */
  endpoint?: string;
  region?: string;
  mode: RemoteMode;
}

/** What an index object holds. */
export interface RemoteIndex {
  format: 1;
  key: string;
  files: { path: string; size: number; digest: string }[];
}

const KEY = /^[0-9a-f]{64}$/;

/**
 * The remote cache configuration: smke.json's `remote` object, then the
 * environment (SMKE_REMOTE, SMKE_REMOTE_MODE), then the command line
 * (--remote, --remote-mode), each overriding the one before. Undefined when no
 * remote is configured or the mode is `off`.
 */
export function remoteConfig(
  projectDir: string,
  over: { url?: string; mode?: string } = {},
  env: Record<string, string | undefined> = process.env,
): RemoteConfig | undefined {
  let file: Partial<RemoteConfig> = {};
  const path = join(projectDir, 'smke.json');
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    // No smke.json: nothing configured there.
  }
  if (text !== undefined) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`smke.json is not valid JSON (${(e as Error).message}): fix it or remove it`);
    }
    const remote = (doc as { remote?: unknown }).remote;
    if (remote !== undefined) {
      if (remote === null || typeof remote !== 'object' || Array.isArray(remote))
        throw new UsageError('smke.json: "remote" must be an object like {"url": "s3://bucket/prefix"}');
      for (const k of Object.keys(remote)) {
        if (!['url', 'endpoint', 'region', 'mode'].includes(k)) {
          throw new UsageError(
            `smke.json: unknown remote setting "${k}" (known: url, endpoint, region, mode; credentials come from the AWS environment or profile, never from smke.json)`,
          );
        }
      }
      file = remote as Partial<RemoteConfig>;
    }
  }
  const url = over.url ?? env.SMKE_REMOTE ?? file.url;
  const mode = over.mode ?? env.SMKE_REMOTE_MODE ?? file.mode ?? 'read-write';
  if (!MODES.includes(mode as RemoteMode)) throw new UsageError(`remote mode must be one of ${MODES.join(', ')}, got '${mode}'`);
  if (mode === 'off' || !url) return undefined;
  parseUrl(url);
  if (file.endpoint !== undefined) parseEndpoint(file.endpoint);
  const endpoint = env.SMKE_REMOTE_ENDPOINT ?? file.endpoint;
  return { url, endpoint, region: file.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION, mode: mode as RemoteMode };
}

function parseUrl(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/@:]+)(?:\/(.*))?$/.exec(url);
  if (!m)
    throw new UsageError(`the remote must look like s3://bucket/prefix, got '${url}' (credentials never go in the URL: use the AWS environment or a profile)`);
  const prefix = (m[2] ?? '').replace(/\/+$/, '');
  return { bucket: m[1]!, prefix: prefix ? `${prefix}/` : '' };
}

function parseEndpoint(endpoint: string): void {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new UsageError(`the remote endpoint must be a URL like http://host:9000, got '${endpoint}'`);
  }
  if (u.username || u.password) throw new UsageError('the remote endpoint must not hold credentials: use the AWS environment or a profile');
}

/** A path from an index is used only if it stays inside the entry: a hostile index must not write elsewhere. */
function safeRelative(path: string): boolean {
  if (!path || path.startsWith('/') || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

export class RemoteError extends Error {}

export class RemoteStore {
  private client: S3Client | undefined;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(readonly config: RemoteConfig) {
    ({ bucket: this.bucket, prefix: this.prefix } = parseUrl(config.url));
  }

  get pulls(): boolean {
    return this.config.mode === 'read-write' || this.config.mode === 'pull';
  }

  get pushes(): boolean {
    return this.config.mode === 'read-write' || this.config.mode === 'push';
  }

  /** Where the remote is, for messages. */
  describe(): string {
    return `${this.config.url}${this.config.endpoint ? ` at ${this.config.endpoint}` : ''}`;
  }

  private async s3(): Promise<{ client: S3Client; sdk: typeof import('@aws-sdk/client-s3') }> {
    // The SDK warns on every start that releases after January 2027 will need Node 22; the pinned one works on 20.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const sdk = await import('@aws-sdk/client-s3');
    this.client ??= new sdk.S3Client({
      endpoint: this.config.endpoint,
      region: this.config.region ?? 'us-east-1',
      // Path-style addressing and checksums only where required: what non-AWS services (MinIO, Ceph, s3rver) accept.
      forcePathStyle: this.config.endpoint !== undefined,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
    });
    return { client: this.client, sdk };
  }

  private indexKey(key: string): string {
    return `${this.prefix}index/${key}.json`;
  }

  private fileKey(key: string, path: string): string {
    return `${this.prefix}entries/${key}/${path}`;
  }

  /** The index of `key`, or undefined when the remote does not have it. */
  async index(key: string): Promise<RemoteIndex | undefined> {
    if (!KEY.test(key)) return undefined;
    const { client, sdk } = await this.s3();
    let text: string;
    try {
      const r = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.indexKey(key) }));
      text = await r.Body!.transformToString();
    } catch (e) {
      if (notFound(e)) return undefined;
      throw new RemoteError(`reading ${this.indexKey(key)} from ${this.describe()}: ${message(e)}`);
    }
    let idx: RemoteIndex;
    try {
      idx = JSON.parse(text) as RemoteIndex;
    } catch {
      throw new RemoteError(`the remote index of ${key.slice(0, 12)} is not valid JSON`);
    }
    if (idx.format !== 1 || idx.key !== key || !Array.isArray(idx.files))
      throw new RemoteError(`the remote index of ${key.slice(0, 12)} is not an index of this key`);
    const seen = new Set<string>();
    for (const f of idx.files) {
      if (
        typeof f?.path !== 'string' ||
        !safeRelative(f.path) ||
        seen.has(f.path) ||
        !Number.isSafeInteger(f.size) ||
        f.size < 0 ||
        typeof f.digest !== 'string'
      ) {
        throw new RemoteError(`the remote index of ${key.slice(0, 12)} lists an unusable file ${JSON.stringify(f?.path)}: refusing it`);
      }
      seen.add(f.path);
    }
    return idx;
  }

  /**
   * Downloads `key` into `tmpDir` and checks every file against the index and
   * the entry against its manifest. Returns false when the remote does not
   * have the key; throws RemoteError when what it has is damaged (nothing is
   * left behind: the caller runs the stage instead).
   */
  async pull(key: CacheKey, tmpDir: string, digester: Digester, signal?: AbortSignal): Promise<boolean> {
    const idx = await this.index(key);
    if (!idx) return false;
    const { client, sdk } = await this.s3();
    rmSync(tmpDir, { recursive: true, force: true });
    try {
      for (const f of idx.files) {
        const dest = join(tmpDir, f.path);
        mkdirSync(dirname(dest), { recursive: true });
        try {
          const r = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.fileKey(key, f.path) }), { abortSignal: signal });
          await pipeline(r.Body as Readable, createWriteStream(dest, { mode: 0o644 }), { signal });
        } catch (e) {
          throw new RemoteError(`downloading ${f.path} of ${key.slice(0, 12)}: ${message(e)}`);
        }
        const size = statSync(dest).size;
        const digest = size === f.size ? digester.file(dest) : '';
        if (size !== f.size || digest !== f.digest) {
          throw new RemoteError(
            `${f.path} of ${key.slice(0, 12)} does not match the remote index (${size} bytes${digest ? `, digest ${digest.slice(0, 12)}` : ''}; expected ${f.size} bytes, ${f.digest.slice(0, 12)}): the remote copy is damaged`,
          );
        }
      }
      const check = checkEntry(tmpDir, key, digester);
      if (check.state !== 'ok')
        throw new RemoteError(`the pulled entry ${key.slice(0, 12)} is not whole: ${check.state === 'corrupt' ? check.problem : 'no manifest'}`);
      return true;
    } catch (e) {
      rmSync(tmpDir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Uploads a published entry: every file, then the index. Nothing to do when the remote has it already. */
  async push(key: string, entryDir: string, digester: Digester): Promise<'pushed' | 'present'> {
    if (!KEY.test(key)) throw new RemoteError(`not a store key: ${key}`);
    if (await this.index(key)) return 'present';
    const { client, sdk } = await this.s3();
    const files = [...digester.tree(entryDir)].map(([path, v]) => ({ path, size: v.size, digest: v.digest }));
    try {
      for (const f of files) {
        await client.send(
          new sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.fileKey(key, f.path), Body: readFileSync(join(entryDir, f.path)), ContentLength: f.size }),
        );
      }
      const index: RemoteIndex = { format: 1, key, files };
      // Last: from here on the entry exists for every reader.
      await client.send(
        new sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.indexKey(key), Body: JSON.stringify(index), ContentType: 'application/json' }),
      );
    } catch (e) {
      throw new RemoteError(`uploading ${key.slice(0, 12)} to ${this.describe()}: ${message(e)}`);
    }
    return 'pushed';
  }

  /** Every object under `prefix` (paged through the listing), as its name below the prefix and the time it was written. */
  private async *objects(prefix: string): AsyncGenerator<{ name: string; written: Date }> {
    const { client, sdk } = await this.s3();
    let token: string | undefined;
    do {
      const r = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of r.Contents ?? []) if (o.Key) yield { name: o.Key.slice(prefix.length), written: o.LastModified ?? new Date(0) };
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  /** Every entry on the remote, with the time its index was written. */
  async list(): Promise<{ key: string; written: Date }[]> {
    const out: { key: string; written: Date }[] = [];
    for await (const o of this.objects(`${this.prefix}index/`)) {
      const key = o.name.replace(/\.json$/, '');
      if (KEY.test(key)) out.push({ key, written: o.written });
    }
    return out;
  }

  /**
   * Removes one entry: the index first (from then on no reader sees it), then
   * its files. Also removes files of uploads that never got an index.
   */
  async remove(key: string): Promise<void> {
    const { client, sdk } = await this.s3();
    await client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.indexKey(key) }));
    const files: { Key: string }[] = [];
    for await (const o of this.objects(`${this.prefix}entries/${key}/`)) files.push({ Key: this.fileKey(key, o.name) });
    // DeleteObjects takes at most 1,000 keys per request.
    for (let i = 0; i < files.length; i += 1000) {
      await client.send(new sdk.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: files.slice(i, i + 1000), Quiet: true } }));
    }
  }

  /**
   * The retention rule of `smke gc --remote`: entries whose index was written
   * more than `keepDays` ago go, except the `protect`ed keys (what this
   * project's last run used). Uploads that never got an index (cut off) go
   * after a day, whatever keepDays says.
   */
  async collect(o: { keepDays: number; protect: Set<string>; dryRun: boolean; now?: Date }): Promise<{ removed: string[]; kept: number; orphans: string[] }> {
    const now = (o.now ?? new Date()).getTime();
    const entries = await this.list();
    const old = entries.filter((e) => now - e.written.getTime() > o.keepDays * 86_400_000 && !o.protect.has(e.key));
    const indexed = new Set(entries.map((e) => e.key));
    const orphans = (await this.uploads()).filter((u) => !indexed.has(u.key) && now - u.written.getTime() > 86_400_000).map((u) => u.key);
    if (!o.dryRun) for (const key of [...old.map((e) => e.key), ...orphans]) await this.remove(key);
    return { removed: old.map((e) => e.key), kept: entries.length - old.length, orphans };
  }

  /** Keys with files under entries/ and the newest time any of their files was written. */
  private async uploads(): Promise<{ key: string; written: Date }[]> {
    const newest = new Map<string, number>();
    for await (const o of this.objects(`${this.prefix}entries/`)) {
      const key = o.name.split('/')[0]!;
      if (KEY.test(key)) newest.set(key, Math.max(newest.get(key) ?? 0, o.written.getTime()));
    }
    return [...newest].map(([key, t]) => ({ key, written: new Date(t) }));
  }

  close(): void {
    this.client?.destroy();
  }
}

function notFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata?.httpStatusCode === 404;
}

function message(e: unknown): string {
  const err = e as { name?: string; message?: string; code?: string };
  if (err.name === 'CredentialsProviderError') return 'no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)';
  return err.message || err.name || err.code || String(e);
}
