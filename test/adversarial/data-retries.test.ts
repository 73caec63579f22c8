// The download kinds' own retry count, which the stage-level `retries` once
// shadowed when both had the same name. The stage
// setting `retries` reruns a failed stage; the kinds' per-request count is
// `http_retries`. Both are set in one stage here and each is checked to reach
// its own consumer.

import { describe, expect, test } from 'vitest';
import { compile } from '../../src/compiler/index.js';
import { cc12mKind, cc3mKind } from '../../src/stages/data/cc.js';
import { downloadKind } from '../../src/stages/data/download.js';
import { registry } from '../../src/stages/registry.js';
import { makeCtx, withDefaults } from '../data/ctx.js';
import { startServer } from '../data/server.js';

function build(body: string) {
  return compile({ file: 'p.smke', text: `smke 1\n\n${body}\n`, projectDir: '/tmp', catalog: registry(), env: {} });
}

describe('`retries` (stage) and `http_retries` (kind) are distinct and both work', () => {
  test('the compiler gives `retries` to the scheduler and `http_retries` to the kind', () => {
    const r = build('stage get = download {\n  url = "http://127.0.0.1:9/a.bin"\n  retries = 3\n  http_retries = 1\n}');
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const inst = r.plan!.instances.find((i) => i.stage === 'get')!;
    expect(inst.retries).toBe(3);
    expect(inst.params.http_retries).toBe(1);
    expect(inst.params).not.toHaveProperty('retries');
  });

  test('each alone keeps the other at its default', () => {
    const a = build('stage get = download {\n  url = "http://127.0.0.1:9/a.bin"\n  retries = 2\n}').plan!.instances[0]!;
    expect([a.retries, a.params.http_retries]).toEqual([2, 5]);
    const b = build('stage get = download {\n  url = "http://127.0.0.1:9/a.bin"\n  http_retries = 0\n}').plan!.instances[0]!;
    expect([b.retries, b.params.http_retries]).toEqual([0, 0]);
  });

  test('a bad http_retries is a compile error naming it', () => {
    const r = build('stage get = download {\n  url = "http://127.0.0.1:9/a.bin"\n  http_retries = -1\n}');
    const errs = r.diagnostics.filter((d) => d.severity === 'error');
    expect(errs.length).toBeGreaterThan(0);
    expect(JSON.stringify(errs)).toMatch(/http_retries/);
  });

  test('the kinds have no `retries` param of their own left to be shadowed', async () => {
    for (const k of [downloadKind, cc3mKind, cc12mKind]) {
      const props = (k.params as { properties: Record<string, unknown> }).properties;
      expect(props, k.name).not.toHaveProperty('retries');
      expect(props, k.name).toHaveProperty('http_retries');
    }
    await expect(withDefaults(downloadKind.params, { url: 'http://x/a', retries: 2 })).rejects.toThrow(/additional/);
  });

  test('http_retries decides how many requests one attempt makes', async () => {
    const srv = await startServer();
    try {
      srv.route('/busy.bin', (_req, res) => void res.writeHead(503, { 'content-length': 4 }).end('busy'));
      for (const n of [0, 2]) {
        const before = srv.hits.get('/busy.bin')?.length ?? 0;
        const c = makeCtx();
        await expect(
          downloadKind.run(c, await withDefaults(downloadKind.params, { url: `${srv.url}/busy.bin`, http_retries: n, retry_delay: 0.001 })),
        ).rejects.toThrow(new RegExp(`HTTP 503 .*gave up after ${n + 1} attempts`));
        expect(srv.hits.get('/busy.bin')!.length - before).toBe(n + 1);
      }
    } finally {
      await srv.close();
    }
  });
});
