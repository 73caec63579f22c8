// Renders a Report as Markdown and as one self-contained HTML page (inline
// CSS and SVG, no scripts, no external resources: it opens from the store, a
// CI artifact or an e-mail attachment the same way).

import { fmt, type Curve, type Report, type Row, type RowChange } from './model.js';

/**
 * What turns report.html into the page comparing it with an earlier run
 * (./compare.ts): two more columns, the earlier value and the change, and a
 * summary of what differs between the runs. The same renderer draws both.
 */
export interface PageComparison {
  /** Which earlier run the values come from, as the column heading says it: `run 2`. */
  previousLabel: string;
  /** Lines shown above the tables: the two runs, the instances that differ and why. */
  summary: string[];
  /** Row id -> its change; undefined when there are no earlier values to show. */
  rows?: Map<string, RowChange>;
  /** Why there are none, in the change column when `rows` is undefined (default: `no earlier run`). */
  unavailable?: string;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function status(r: Row): string {
  return r.ok === undefined ? '' : r.ok ? 'ok' : 'FAIL';
}

function provText(r: Row): string {
  const p = r.provenance;
  if (!p) return '';
  const parts = [p.stage, p.key.slice(0, 12)];
  if (p.finished) parts.push(p.finished.replace(/\.\d+Z$/, 'Z'));
  if (p.seconds !== undefined) parts.push(`${p.seconds.toFixed(1)} s`);
  if (p.backend) parts.push(p.backend);
  return parts.join(' · ');
}

// ---- Markdown ---------------------------------------------------------------

export function renderMarkdown(rep: Report): string {
  const out: string[] = [`# ${rep.title}`, '', `Profile **${rep.scale}**, generated ${rep.generated}.`, ''];
  if (rep.failures.length) {
    out.push('**Expectations failed:**', '', ...rep.failures.map((f) => `- ${f}`), '');
  }
  for (const t of rep.tables) {
    const rows = rep.rows.filter((r) => r.table === t.id);
    if (!rows.length) continue;
    out.push(`## ${t.title}`, '');
    if (t.note) out.push(t.note, '');
    out.push('| row | metric | measured | chance / majority | published | expect | | provenance |', '|---|---|--:|--:|--:|---|---|---|');
    for (const r of rows) {
      const base =
        r.baseline !== undefined
          ? `${fmt(r.baseline)}${r.baselineKind ? ` (${r.baselineKind})` : ''}${r.baselineSe !== undefined ? `, se ${fmt(r.baselineSe)}` : ''}`
          : '';
      out.push(
        `| ${r.label} | ${r.metric} | ${r.text ?? fmt(r.value)} | ${base} | ${r.published !== undefined ? fmt(r.published) : ''} | ${r.expect ? `\`${r.expect}\`` : ''} | ${status(r)} | ${provText(r)} |`,
      );
    }
    out.push('');
  }
  if (rep.curves.length) {
    out.push('## Training curves', '', `Loss and accuracy per step of ${rep.curves.length} training stages: see report.html (inline SVG) and report.json.`, '');
  }
  return out.join('\n');
}

// ---- SVG plots --------------------------------------------------------------

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

/** At most `max` points, evenly spaced, always keeping the last. */
function thin(points: [number, number][], max: number): [number, number][] {
  if (points.length <= max) return points;
  const step = points.length / max;
  const out: [number, number][] = [];
  for (let i = 0; i < max; i++) out.push(points[Math.floor(i * step)]!);
  out[out.length - 1] = points[points.length - 1]!;
  return out;
}

export function svgPlot(title: string, series: Record<string, [number, number][]>, width = 270, height = 150): string {
  const names = Object.keys(series).filter((n) => series[n]!.some(([, v]) => Number.isFinite(v)));
  const pad = { l: 44, r: 8, t: 18, b: 22 };
  const all = names.flatMap((n) => series[n]!.filter(([, v]) => Number.isFinite(v)));
  if (!all.length) return '';
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const w = width - pad.l - pad.r,
    h = height - pad.t - pad.b;
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * w;
  const sy = (y: number) => pad.t + h - ((y - y0) / (y1 - y0)) * h;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">`,
    `<title>${esc(title)}</title>`,
    `<rect x="${pad.l}" y="${pad.t}" width="${w}" height="${h}" fill="#fafafa" stroke="#ccc"/>`,
    `<text x="${pad.l}" y="12" font-size="11" font-weight="bold">${esc(title)}</text>`,
  ];
  for (const y of [y0, (y0 + y1) / 2, y1]) {
    parts.push(`<text x="${pad.l - 4}" y="${sy(y) + 3}" font-size="9" text-anchor="end">${esc(fmt(y))}</text>`);
    parts.push(`<line x1="${pad.l}" x2="${pad.l + w}" y1="${sy(y)}" y2="${sy(y)}" stroke="#e4e4e4"/>`);
  }
  parts.push(`<text x="${pad.l}" y="${height - 6}" font-size="9">${x0}</text>`);
  parts.push(`<text x="${pad.l + w}" y="${height - 6}" font-size="9" text-anchor="end">step ${x1}</text>`);
  names.forEach((n, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = thin(
      series[n]!.filter(([, v]) => Number.isFinite(v)),
      400,
    );
    if (pts.length === 1) parts.push(`<circle cx="${sx(pts[0]![0]).toFixed(1)}" cy="${sy(pts[0]![1]).toFixed(1)}" r="2.5" fill="${color}"/>`);
    else
      parts.push(
        `<polyline class="series" fill="none" stroke="${color}" stroke-width="1.4" points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`,
      );
    parts.push(`<text x="${pad.l + w - 4}" y="${pad.t + 11 + i * 11}" font-size="9" text-anchor="end" fill="${color}">${esc(n)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

// ---- HTML -------------------------------------------------------------------

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; }
th, td { border-bottom: 1px solid #e6e6e6; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.prov { font-size: 11px; color: #666; } code { font-size: 12px; }
tr.fail td { background: #fde8e8; } .ok { color: #1a7f37; } .fail { color: #c62828; font-weight: bold; }
.above { color: #1a7f37; } .below { color: #c62828; }
.failures { border: 1px solid #c62828; background: #fde8e8; padding: .5em 1em; }
.curves { display: flex; flex-wrap: wrap; gap: 12px; }
figure.curve { margin: 0; border: 1px solid #e6e6e6; padding: 6px; display: flex; flex-direction: column; gap: 4px; }
figure.curve figcaption { font-size: 12px; font-weight: bold; }
.note { color: #555; font-size: 13px; }
`;

// Only the comparison page has these: report.html stays byte for byte what its key says.
const COMPARE_CSS = `td.change.same, td.change.none { color: #888; white-space: nowrap; } td.change.changed { font-weight: bold; }
.noise { font-weight: normal; color: #555; font-size: 12px; }
.compared { border: 1px solid #9ab; background: #f2f6fa; padding: .5em 1em; }
`;

const signed = (d: number): string => `${d > 0 ? '+' : d < 0 ? '-' : ''}${fmt(Math.abs(d))}`;

/** The two comparison cells of a row: the earlier run's value, and the change with whether it is beyond noise. */
function changeCells(r: Row, cmp: PageComparison): string {
  const ch = cmp.rows?.get(r.id);
  if (!ch?.previous) {
    const why = cmp.rows ? 'new row' : (cmp.unavailable ?? 'no earlier run');
    return `<td class="n previous none">—</td><td class="change none">${why}</td>`;
  }
  const prev = ch.previous;
  const prevCell = `<td class="n previous" data-previous="${prev.value}">${esc(prev.text ?? fmt(prev.value))}</td>`;
  if (!ch.changed) return `${prevCell}<td class="change same" data-delta="0">no change</td>`;
  if (ch.delta === undefined) return `${prevCell}<td class="change changed">changed</td>`;
  const noise =
    ch.noise === undefined
      ? ''
      : ` <span class="noise">${Math.abs(ch.delta) > ch.noise ? 'beyond' : 'within'} noise (2 se of a difference: ${esc(fmt(ch.noise))})</span>`;
  const dir = ch.delta > 0 ? 'up' : 'down';
  return `${prevCell}<td class="change changed ${dir}" data-delta="${ch.delta}"${ch.noise === undefined ? '' : ` data-beyond-noise="${Math.abs(ch.delta) > ch.noise}"`}>${esc(signed(ch.delta))}${noise}</td>`;
}

function rowHtml(r: Row, cmp?: PageComparison): string {
  const above = r.baseline !== undefined && Number.isFinite(r.value) ? (r.value > r.baseline ? 'above' : 'below') : '';
  const base =
    r.baseline !== undefined
      ? `${esc(fmt(r.baseline))}${r.baselineKind ? ` <small>(${esc(r.baselineKind)})</small>` : ''}${r.baselineSe !== undefined ? ` <small>se ${esc(fmt(r.baselineSe))}</small>` : ''}`
      : '';
  const st = r.ok === undefined ? '' : r.ok ? '<span class="ok">ok</span>' : '<span class="fail">FAIL</span>';
  return (
    `<tr id="row-${esc(r.id)}" class="${r.ok === false ? 'fail' : ''}" data-row="${esc(r.id)}"><td>${esc(r.label)}</td><td>${esc(r.metric)}</td>` +
    `<td class="n measured ${above}">${esc(r.text ?? fmt(r.value))}</td>${cmp ? changeCells(r, cmp) : ''}<td class="n">${base}</td><td class="n">${r.published !== undefined ? esc(fmt(r.published)) : ''}</td>` +
    `<td>${r.expect ? `<code>${esc(r.expect)}</code>` : ''}</td><td>${st}</td><td class="prov">${esc(provText(r))}</td></tr>`
  );
}

export function curveFigure(c: Curve): string {
  const loss = svgPlot('loss', c.loss);
  const acc = svgPlot('accuracy / score', c.accuracy);
  if (!loss && !acc) return '';
  return `<figure class="curve" data-stage="${esc(c.label)}"><figcaption>${esc(c.label)}</figcaption>${loss}${acc}</figure>`;
}

/** report.html; with `cmp`, the same page compared with an earlier run (two more columns, a summary on top). */
export function renderHtml(rep: Report, cmp?: PageComparison): string {
  const title = cmp ? `${rep.title}, compared with ${cmp.previousLabel}` : rep.title;
  const body: string[] = [
    `<h1>${esc(title)}</h1>`,
    `<p>Profile <b>${esc(rep.scale)}</b>, generated ${esc(rep.generated)}. Each measured value stands beside its chance or majority-class baseline (computed from the evaluation data) and the published S-SMKE number; green: above the baseline.</p>`,
  ];
  if (cmp) body.push(`<div class="compared"><ul>${cmp.summary.map((l) => `<li>${esc(l)}</li>`).join('')}</ul></div>`);
  if (rep.failures.length)
    body.push(`<div class="failures"><b>Expectations failed</b><ul>${rep.failures.map((f) => `<li>${esc(f)}</li>`).join('')}</ul></div>`);
  for (const t of rep.tables) {
    const rows = rep.rows.filter((r) => r.table === t.id);
    if (!rows.length) continue;
    body.push(`<h2>${esc(t.title)}</h2>`);
    if (t.note) body.push(`<p class="note">${esc(t.note)}</p>`);
    body.push(
      `<table class="results" data-table="${esc(t.id)}"><thead><tr><th>row</th><th>metric</th><th>measured</th>${cmp ? `<th>previous run (${esc(cmp.previousLabel)})</th><th>change</th>` : ''}<th>chance / majority</th><th>published</th><th>expect</th><th></th><th>provenance (stage · key · finished · time · backend)</th></tr></thead><tbody>`,
    );
    body.push(...rows.map((r) => rowHtml(r, cmp)), '</tbody></table>');
  }
  const figs = rep.curves.map(curveFigure).filter(Boolean);
  if (figs.length) body.push('<h2>Training curves</h2>', `<div class="curves">${figs.join('')}</div>`);
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${CSS}${cmp ? COMPARE_CSS : ''}</style></head><body>\n${body.join('\n')}\n</body></html>\n`;
}
