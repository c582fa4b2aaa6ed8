// Integration tests call requireBuild() first: it fails the test with the
// build error recorded by global-setup.ts, or when a required artefact is missing.
import { existsSync } from 'node:fs';
import { inject } from 'vitest';
import { ECHO_CLIENT, ECHO_SERVER, PDRUN_JS, PD_JS, SHIM } from './paths.js';
import './provided.js';

export function requireBuild(extra: string[] = []): void {
  const errors = inject('buildErrors') ?? [];
  if (errors.length > 0) throw new Error(`the build failed, see global-setup:\n${errors.join('\n\n')}`);
  for (const f of [ECHO_SERVER, ECHO_CLIENT, PDRUN_JS, PD_JS, SHIM, ...extra]) {
    if (!existsSync(f)) throw new Error(`missing build artefact ${f}: run \`make all progs && npx tsc -p .\``);
  }
}
