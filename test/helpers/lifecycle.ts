// Per-test lifecycle shared by the integration files: check the build, give
// the test its own PD_SOCKET, and afterwards kill every child still running,
// stop that test's controller and remove its temp dir.
import { afterEach, beforeEach } from 'vitest';
import { requireBuild } from './build-state.js';
import { PdEnv } from './pd.js';
import { killAll } from './proc.js';

export function setupPdTest(extraArtefacts: string[] = []): () => PdEnv {
  let pd: PdEnv | undefined;
  beforeEach(() => {
    requireBuild(extraArtefacts);
    pd = new PdEnv();
  });
  afterEach(async () => {
    await killAll();
    pd?.cleanup();
    pd = undefined;
  });
  return () => {
    if (!pd) throw new Error('setupPdTest: no PdEnv outside a test');
    return pd;
  };
}
