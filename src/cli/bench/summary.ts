// Medians per case, metric and variant, and their ratios to kernel TCP.
import type { Sample } from './harness.js';
import { median } from './stats.js';
import { VARIANTS, type Case, type Metric, type Scenario, type VariantId } from './types.js';

export const CPU_METRIC: Metric = { key: 'cpu_s', label: 'CPU seconds, all processes + controller', better: 'lower' };

export interface Cell {
  median: number;
  n: number;
  samples: number[];
}

export interface MetricRow {
  metric: Metric;
  cells: Partial<Record<VariantId, Cell>>;
  /** median of the variant / median of kernel TCP */
  ratios: Partial<Record<VariantId, number>>;
}

export interface CaseSummary {
  scenario: string;
  case: string;
  title: string;
  commands: string[];
  variants: VariantId[];
  rows: MetricRow[];
  /** pdrun runs whose connections were seen on the ring as expected, of the pdrun runs checked (short-lived connections are not) */
  ringRuns: { verified: number; runs: number; unchecked: number; notes: string[] };
  failures: number;
}

export function summarise(sc: Scenario, c: Case, samples: readonly Sample[], quick: boolean): CaseSummary {
  const mine = samples.filter((s) => s.scenario === sc.id && s.case === c.id);
  const variants = c.variants.filter((v) => mine.some((s) => s.variant === v));
  const metrics = [...c.metrics, CPU_METRIC];
  const rows: MetricRow[] = metrics.map((metric) => {
    const cells: MetricRow['cells'] = {};
    for (const v of variants) {
      const xs = mine.filter((s) => s.ok && s.variant === v && Number.isFinite(s.metrics[metric.key])).map((s) => s.metrics[metric.key]!);
      cells[v] = { median: median(xs), n: xs.length, samples: xs };
    }
    const ratios: MetricRow['ratios'] = {};
    const base = cells.kernel?.median;
    for (const v of variants) if (v !== 'kernel' && base) ratios[v] = cells[v]!.median / base;
    return { metric, cells, ratios };
  });
  const pdAll = mine.filter((s) => s.ok && VARIANTS[s.variant].pdrun && s.transport);
  const pd = pdAll.filter((s) => s.transport!.expected !== null);
  const notes: string[] = [];
  for (const s of pd) {
    const t = s.transport!;
    if (!t.verified) {
      notes.push(`rep ${s.rep + 1} ${VARIANTS[s.variant].label}: ${t.ring} of ${t.seen} connections seen on the ring, expected >= ${t.expected}` +
        (t.tcpReasons.length ? ` (tcp: ${t.tcpReasons.join('; ')})` : ''));
    }
  }
  return {
    scenario: sc.id,
    case: c.id,
    title: c.title,
    commands: c.commands(quick),
    variants,
    rows: rows.filter((r) => Object.values(r.cells).some((x) => x && x.n > 0)),
    ringRuns: { verified: pd.filter((s) => s.transport!.verified).length, runs: pd.length, unchecked: pdAll.length - pd.length, notes },
    failures: mine.filter((s) => !s.ok).length,
  };
}
