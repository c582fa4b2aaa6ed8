// vitest globalSetup: build the shim, the test programs and dist/ once per run.
// The test programs must build (every integration test needs them). A failing
// shim or TypeScript build is recorded instead of aborting the run, so unit
// tests still run and each integration test fails with the build error as its
// message (see requireBuild in build-state.ts).
import { spawnSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { ROOT } from './paths.js';
import './provided.js';

function run(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  if (r.status === 0) return null;
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
  return `\`${cmd} ${args.join(' ')}\` failed (status ${r.status ?? r.signal}):\n${out || String(r.error)}`;
}

export default function setup(project: TestProject): void {
  const progs = run('make', ['-s', 'progs']);
  if (progs) throw new Error(progs);
  const errors: string[] = [];
  const shim = run('make', ['-s', 'all']);
  if (shim) errors.push(shim);
  const tsc = run('npx', ['tsc', '-p', '.']);
  if (tsc) errors.push(tsc);
  for (const e of errors) process.stderr.write(`global-setup: ${e}\n`);
  project.provide('buildErrors', errors);
}
