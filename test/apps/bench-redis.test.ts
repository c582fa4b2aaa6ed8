// Checks: `pd bench redis --quick --reps 1` runs kernel TCP, pdrun and Unix-socket runs, prints the markdown table, and writes JSON (every run ok, CPU accounted for every process, the pdrun run's connections verified on the ring) and an SVG next to it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { setupPdTest } from '../helpers/lifecycle.js';
import { PD_JS } from '../helpers/paths.js';
import { spawnProc } from '../helpers/proc.js';
import { requireCommand } from './app-helpers.js';

const pd = setupPdTest();

interface Sample {
  variant: string;
  ok: boolean;
  error?: string;
  metrics: Record<string, number>;
  cpu: { total: number | null; unreported: string[]; controller: number | null };
  transport?: { verified: boolean; ring: number; expected: number };
}

it('measures A, B and C and verifies B on the ring', async () => {
  requireCommand('redis-server', 'redis-server');
  requireCommand('redis-benchmark', 'redis-tools');
  const json = path.join(pd().dir, 'bench.json');
  const p = spawnProc(process.execPath, [PD_JS, 'bench', 'redis', '--quick', '--reps', '1', '--json', json], { name: 'pd bench redis' });
  const r = await p.waitOk(120_000);
  expect(r.stdout).toMatch(/\| SET requests\/s \|/);
  expect(r.stdout).toMatch(/\| metric \| kernel TCP \(A\) \| pdrun \(B\) \| Unix socket \(C\) \| B\/A \| C\/A \|/);
  const doc = JSON.parse(readFileSync(json, 'utf8')) as { samples: Sample[] };
  expect(doc.samples.map((s) => s.variant).sort()).toEqual(['kernel', 'pdrun', 'unix']);
  for (const s of doc.samples) {
    expect(s.ok, `${s.variant}: ${s.error}`).toBe(true);
    expect(s.metrics.set_rps).toBeGreaterThan(0);
    expect(s.cpu.unreported, `${s.variant}: processes without CPU figures`).toEqual([]);
    expect(s.cpu.total).toBeGreaterThan(0);
  }
  const b = doc.samples.find((s) => s.variant === 'pdrun')!;
  expect(b.cpu.controller, 'the controller CPU is counted for pdrun').not.toBeNull();
  expect(b.transport?.verified, JSON.stringify(b.transport)).toBe(true);
  expect(existsSync(json.replace(/\.json$/, '.svg'))).toBe(true);
});
