// `pd status` for humans: the status document as three small tables.
import type { StatusDoc } from '../control/status.js';

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].map((l) => `  ${l}`).join('\n');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

export function formatStatus(doc: StatusDoc): string {
  const c = doc.controller;
  const out: string[] = [
    `controller pid ${c.pid}, up ${c.uptimeS} s, socket ${c.socket}`,
    `  rings ${formatBytes(c.ringSize)} per direction, hugepages ${c.hugepages ? 'yes' : 'no'}, ` +
      `${doc.sessions.length} session(s), ${c.launchers} launcher(s)`,
    '',
  ];
  if (doc.connections.length === 0) out.push('connections: none');
  else {
    out.push('connections:');
    out.push(table(
      ['ID', 'TRANSPORT', 'PIDS', 'LOCAL', 'PEER', 'BYTES 0->1', 'BYTES 1->0', 'REASON'],
      doc.connections.map((x) => {
        const e0 = x.ends[0];
        return [
          String(x.id),
          x.transport === 'ring' ? 'ring' : `tcp (${x.state})`,
          x.ends.map((e) => String(e.pid)).join(',') || '-',
          e0?.local ?? '?',
          e0?.peer ?? '?',
          formatBytes(x.ringBytes[0]),
          formatBytes(x.ringBytes[1]),
          x.reason ?? '',
        ];
      }),
    ));
  }
  out.push('');
  if (doc.arenas.length === 0) out.push('arenas: none');
  else {
    out.push('arenas:');
    out.push(table(
      ['ID', 'PIDS', 'MEMORY', 'HUGEPAGE', 'SLOTS USED'],
      doc.arenas.map((a) => [
        String(a.id), `${a.pids[0]},${a.pids[1]}`, formatBytes(a.bytes), a.hugepage ? 'yes' : 'no', `${a.slotsUsed}/${a.slots}`,
      ]),
    ));
  }
  return `${out.join('\n')}\n`;
}
