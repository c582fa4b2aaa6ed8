// A small SVG bar chart: per case and metric, each variant's median relative
// to kernel TCP (A = 1), on a log scale from 0.001x to 100x.
import { CPU_METRIC, type CaseSummary } from './summary.js';
import { fmtRatio } from './stats.js';
import { VARIANTS, type VariantId } from './types.js';

const COLORS: Record<VariantId, string> = { kernel: '#888888', pdrun: '#1f77b4', 'pdrun-nospin': '#6baed6', unix: '#ff7f0e' };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function ratioChart(summaries: readonly CaseSummary[], title: string): string {
  const bars: { label: string; v: VariantId; ratio: number; better: string }[][] = [];
  for (const s of summaries) {
    for (const r of s.rows) {
      if (r.metric.key === CPU_METRIC.key) continue; // absolute seconds depend on run length: the table has them
      const group = Object.entries(r.ratios)
        .filter(([, x]) => Number.isFinite(x))
        .map(([v, x]) => ({ label: `${s.scenario}/${s.case}: ${r.metric.label}`, v: v as VariantId, ratio: x!, better: r.metric.better }));
      if (group.length) bars.push(group);
    }
  }
  const labelOf = (g: (typeof bars)[number]) => `${g[0]!.label} (${g[0]!.better} is better)`;
  const charW = 6.2; // 11 px sans-serif, roughly
  const left = Math.max(200, Math.ceil(Math.max(0, ...bars.map((g) => labelOf(g).length)) * charW) + 16);
  const width = 360, barH = 12, gap = 8, top = 44;
  const lo = -3, hi = 2; // log10 range: 0.001x to 100x
  const x = (ratio: number) => left + ((Math.min(hi, Math.max(lo, Math.log10(ratio))) - lo) / (hi - lo)) * width;
  let y = top;
  const parts: string[] = [];
  for (const g of bars) {
    parts.push(`<text x="${left - 6}" y="${y + (barH * g.length) / 2 + 4}" text-anchor="end">${esc(labelOf(g))}</text>`);
    for (const b of g) {
      const x0 = x(1), x1 = x(b.ratio);
      parts.push(`<rect x="${Math.min(x0, x1)}" y="${y}" width="${Math.max(1, Math.abs(x1 - x0))}" height="${barH - 2}" fill="${COLORS[b.v]}"/>`);
      parts.push(`<text x="${Math.max(x0, x1) + 3}" y="${y + barH - 3}">${VARIANTS[b.v].letter} ${fmtRatio(b.ratio)}</text>`);
      y += barH;
    }
    y += gap;
  }
  const h = y + 30;
  const grid: string[] = [];
  for (let e = lo; e <= hi; e++) {
    const gx = x(10 ** e);
    grid.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${y}" stroke="${e === 0 ? '#000' : '#ddd'}"/>`);
    grid.push(`<text x="${gx}" y="${y + 14}" text-anchor="middle">${10 ** e}x</text>`);
  }
  const shown = new Set(bars.flat().map((b) => b.v));
  let lx = left;
  const legend = (Object.keys(COLORS) as VariantId[])
    .filter((v) => shown.has(v))
    .map((v) => {
      const text = `${VARIANTS[v].letter}: ${VARIANTS[v].label}`;
      const item = `<rect x="${lx}" y="${top - 30}" width="10" height="10" fill="${COLORS[v]}"/><text x="${lx + 14}" y="${top - 21}">${esc(text)}</text>`;
      lx += 14 + text.length * charW + 16;
      return item;
    })
    .join('');
  const heading = `${title}: median relative to kernel TCP (A = 1x), log scale`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.max(left + width + 90, Math.ceil(heading.length * (charW + 0.6)) + 16)}" height="${h}" font-family="sans-serif" font-size="11">\n` +
    `<text x="8" y="14" font-weight="bold">${esc(heading)}</text>\n` +
    `${legend}\n${grid.join('\n')}\n${parts.join('\n')}\n</svg>\n`
  );
}
