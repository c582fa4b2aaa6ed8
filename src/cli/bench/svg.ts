// A small SVG bar chart: per case and metric, each variant's median relative
// to kernel TCP (A = 1), on a log scale from 0.01x to 100x.
import type { CaseSummary } from './summary.js';
import { fmtRatio } from './stats.js';
import { VARIANTS, type VariantId } from './types.js';

const COLORS: Record<VariantId, string> = { kernel: '#888888', pdrun: '#1f77b4', 'pdrun-nospin': '#6baed6', unix: '#ff7f0e' };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function ratioChart(summaries: readonly CaseSummary[], title: string): string {
  const bars: { label: string; v: VariantId; ratio: number; better: string }[][] = [];
  for (const s of summaries) {
    for (const r of s.rows) {
      const group = Object.entries(r.ratios)
        .filter(([, x]) => Number.isFinite(x))
        .map(([v, x]) => ({ label: `${s.scenario}/${s.case}: ${r.metric.label}`, v: v as VariantId, ratio: x!, better: r.metric.better }));
      if (group.length) bars.push(group);
    }
  }
  const left = 330, width = 360, barH = 12, gap = 8, top = 44;
  const lo = -2, hi = 2; // log10 range
  const x = (ratio: number) => left + ((Math.min(hi, Math.max(lo, Math.log10(ratio))) - lo) / (hi - lo)) * width;
  let y = top;
  const parts: string[] = [];
  for (const g of bars) {
    parts.push(`<text x="${left - 6}" y="${y + barH * g.length / 2 + 4}" text-anchor="end">${esc(g[0]!.label)} (${g[0]!.better} is better)</text>`);
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
  const legend = (Object.keys(COLORS) as VariantId[])
    .filter((v) => v !== 'kernel')
    .map((v, i) => `<rect x="${left + i * 120}" y="${top - 30}" width="10" height="10" fill="${COLORS[v]}"/><text x="${left + i * 120 + 14}" y="${top - 21}">${VARIANTS[v].letter}: ${esc(VARIANTS[v].label)}</text>`)
    .join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 90}" height="${h}" font-family="sans-serif" font-size="11">\n` +
    `<text x="8" y="14" font-weight="bold">${esc(title)}: median relative to kernel TCP (A = 1x), log scale</text>\n` +
    `${legend}\n${grid.join('\n')}\n${parts.join('\n')}\n</svg>\n`
  );
}
