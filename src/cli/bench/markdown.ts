// The markdown table `pd bench` prints: medians per variant, ratios to kernel TCP.
import type { CaseSummary } from './summary.js';
import { fmt, fmtRatio } from './stats.js';
import { VARIANTS } from './types.js';

export function caseTable(s: CaseSummary): string {
  const others = s.variants.filter((v) => v !== 'kernel');
  const pdVariants = s.variants.filter((v) => VARIANTS[v].pdrun);
  const ringOk = s.ringRuns.runs > 0 && s.ringRuns.verified === s.ringRuns.runs;
  const mark = pdVariants.length > 0 && s.ringRuns.runs > 0 && !ringOk ? ' †' : '';
  const head = ['metric', ...s.variants.map((v) => `${VARIANTS[v].label} (${VARIANTS[v].letter})`), ...others.map((v) => `${VARIANTS[v].letter}/A`), 'target B/A'];
  let out = `### ${s.scenario}: ${s.title}\n\n`;
  out += `| ${head.join(' | ')} |\n| ${head.map(() => '---').join(' | ')} |\n`;
  for (const r of s.rows) {
    const cells = s.variants.map((v) => {
      const c = r.cells[v];
      if (!c || c.n === 0) return 'n/a';
      return `${fmt(c.median)}${VARIANTS[v].pdrun ? mark : ''}`;
    });
    const ratios = others.map((v) => fmtRatio(r.ratios[v] ?? NaN));
    out += `| ${r.metric.label} | ${cells.join(' | ')} | ${ratios.join(' | ')} | ${r.metric.target ?? ''} |\n`;
  }
  const ns = s.variants.map((v) => `${VARIANTS[v].letter} ${s.rows[0]?.cells[v]?.n ?? 0}`).join(', ');
  out += `\nmedians of ${ns} run(s)`;
  if (pdVariants.length > 0) {
    if (s.ringRuns.runs === 0 && s.ringRuns.unchecked > 0) out += '; pdrun transport not checked (connections too short-lived to upgrade)';
    else if (s.ringRuns.runs === 0) out += '; pdrun transport: no pdrun run completed';
    else if (ringOk) out += `; pdrun's connections were seen on the ring in ${s.ringRuns.verified}/${s.ringRuns.runs} runs`;
    else out += `; † pdrun's connections were NOT all on the ring in ${s.ringRuns.runs - s.ringRuns.verified}/${s.ringRuns.runs} runs: ${s.ringRuns.notes.join('; ')}`;
  }
  if (s.failures > 0) out += `; ${s.failures} run(s) FAILED (see the JSON)`;
  out += `.\n\n\`\`\`\n${s.commands.join('\n')}\n\`\`\`\n`;
  return out;
}
