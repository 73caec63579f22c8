// report.html is a page people open: render it in a real headless Chromium
// (Debian's package; without the networking flags below it floods a closed
// network with refused connections) and check that the tables
// and plots are laid out and visible, not merely present in the markup.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry } from '../../src/stages/registry.js';
import { makeFixture, type Fixture } from './fixtures.js';

const CHROMIUM = process.env.SMKE_CHROMIUM ?? '/usr/bin/chromium';
// CI installs chromium (.ci/run); a developer machine without it skips, saying why.
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`browser test skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);

describe.skipIf(!haveChromium)('report.html in headless Chromium', () => {
  let fx: Fixture;
  let browser: BrowserContext;
  let profileDir: string;
  let html: string;

  beforeAll(async () => {
    fx = makeFixture();
    const out = join(fx.root, 'out');
    mkdirSync(out, { recursive: true });
    const ctx = {
      instance: 'report',
      stage: 'report',
      key: 'k',
      outDir: out,
      scratchDir: out,
      projectDir: out,
      attempt: 1,
      seed: 1,
      resources: { cpus: 1, gpus: 0, memBytes: 0, timeSeconds: 0, gpuIds: [] },
      log: { debug() {}, info() {}, warn() {}, error() {} },
      progress() {},
      metric() {},
      signal: new AbortController().signal,
    };
    await registry()
      .get('report.paper')!
      .run(ctx as never, { ...fx.params, expect: { 'glue.sst2': '>= chance' } });
    html = join(out, 'report.html');
    profileDir = mkdtempSync(join(tmpdir(), 'smke-chromium-'));
    // A fresh profile directory per run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    fx?.cleanup();
  });

  it('shows the tables with their rows and the training curves', async () => {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(html).href);

    expect(await page.title()).toBe('Fixture report');
    const tables = page.locator('table.results');
    expect(await tables.count()).toBe(6);
    for (let i = 0; i < 6; i++) await expect.poll(() => tables.nth(i).isVisible()).toBe(true);

    // A row is visible, has a measured value, and the glue.sst2 expectation shows as met.
    const sst2 = page.locator('tr[data-row="glue.sst2"]');
    expect(await sst2.isVisible()).toBe(true);
    expect(await sst2.locator('td.measured').innerText()).toBe('80.0');
    expect(await sst2.innerText()).toContain('ok');
    const box = await sst2.boundingBox();
    expect(box!.height).toBeGreaterThan(10);

    // Curves: SVGs with a drawn polyline of real size.
    const plots = page.locator('figure.curve svg.plot');
    expect(await plots.count()).toBeGreaterThanOrEqual(4);
    const first = await plots.first().boundingBox();
    expect(first!.width).toBeGreaterThan(200);
    expect(first!.height).toBeGreaterThan(100);
    const line = page.locator('figure.curve[data-stage="s_smke"] polyline.series').first();
    expect(await line.isVisible()).toBe(true);
    const lineBox = await line.boundingBox();
    expect(lineBox!.width).toBeGreaterThan(100);

    // Self-contained: the page asked for nothing but itself.
    expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([]);
    await page.close();
  }, 60_000);

  it('shows, on the page compared with the previous run, each row beside its earlier value and the change', async () => {
    // The previous run: the same report with SST2 10 points lower.
    const prevDir = join(fx.root, 'prev');
    mkdirSync(prevDir, { recursive: true });
    const rep = JSON.parse(readFileSync(html.replace(/report\.html$/, 'report.json'), 'utf8')) as { rows: { id: string; value: number }[] };
    rep.rows.find((r) => r.id === 'glue.sst2')!.value = 70;
    writeFileSync(join(prevDir, 'report.json'), JSON.stringify(rep));
    const run = (n: number, dir: string) => ({ run: n, started: '2026-01-01T00:00:00.000Z', dir, key: String(n).repeat(64) });
    const compared = join(fx.root, 'report.compare.html');
    const kind = registry().get('report.paper')!;
    writeFileSync(
      compared,
      await kind.compare!({
        instance: 'report',
        current: run(3, html.replace(/\/report\.html$/, '')),
        previous: run(2, prevDir),
        changes: ['glue[sst2]: param lr: 1 -> 2'],
      }),
    );

    const page = await browser.newPage();
    await page.goto(pathToFileURL(compared).href);
    expect(await page.title()).toBe('Fixture report, compared with run 2');
    expect(await page.locator('.compared').innerText()).toContain('Differs between the runs: glue[sst2]: param lr: 1 -> 2');
    const head = page.locator('table.results[data-table="glue"] thead th');
    expect(await head.allInnerTexts()).toEqual(expect.arrayContaining(['measured', 'previous run (run 2)', 'change']));
    const sst2 = page.locator('tr[data-row="glue.sst2"]');
    expect(await sst2.locator('td.previous').innerText()).toBe('70.0');
    expect(await sst2.locator('td.change').isVisible()).toBe(true);
    // 4 examples, 3 positive: se = 100 sqrt(.75 .25 / 4) = 21.65; 2 sqrt(2) se = 61.2.
    expect(await sst2.locator('td.change').innerText()).toBe('+10.0 within noise (2 se of a difference: 61.2)');
    expect(await page.locator('tr[data-row="glue.mrpc"] td.change').innerText()).toBe('no change');
    await page.close();
  }, 60_000);
});
