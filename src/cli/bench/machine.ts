// What the report says about where and how it was measured.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { ROOT } from './paths.js';

export interface Machine {
  cpus: number;
  cpu: string;
  kernel: string;
  node: string;
  hugepages: number | null;
  packages: Record<string, string>;
  /** 1-minute load average when the bench started and when it ended: other work on the machine skews every number */
  load: { start: number; end: number };
}

export function machine(packages: readonly string[], loadAtStart: number): Machine {
  let hugepages: number | null = null;
  try {
    hugepages = Number(readFileSync('/proc/sys/vm/nr_hugepages', 'utf8').trim());
  } catch {
    /* not Linux */
  }
  const versions: Record<string, string> = {};
  for (const p of new Set(packages)) {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Version}', p], { encoding: 'utf8', timeout: 5000 });
    versions[p] = r.status === 0 ? r.stdout.trim() : 'unknown';
  }
  return {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    kernel: os.release(),
    node: process.version,
    hugepages,
    packages: versions,
    load: { start: loadAtStart, end: os.loadavg()[0]! },
  };
}

export function gitRevision(): { rev: string; dirty: boolean } {
  const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', timeout: 5000 }).stdout?.trim() || 'unknown';
  const st = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8', timeout: 5000 });
  return { rev, dirty: (st.stdout ?? '').trim() !== '' };
}

export function describeMachine(m: Machine): string {
  return `${m.cpus} x ${m.cpu}, Linux ${m.kernel}, Node ${m.node}, nr_hugepages ${m.hugepages ?? 'n/a'}, ` +
    `load average ${m.load.start.toFixed(2)} at the start, ${m.load.end.toFixed(2)} at the end`;
}
