// Checks: a hostile peer that rewrites the arena header (a consistent but false geometry) before the server takes its next assignment in that arena, and plants a fake slot control block where the false geometry puts the new slot (inside another connection's ring), cannot make the server attach there: the server maps each assignment where the controller put it (geometry read once, when the arena was first mapped), so it never writes outside its slot (20 attempts, ASan/UBSan shim on the server).
import { expect, it } from 'vitest';
import { startServer } from '../helpers/echo.js';
import { SANITIZER_REPORT, asanEnv, makeShim } from '../helpers/ev.js';
import { HOSTILE_PEER } from '../helpers/fault.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { SHIM_ASAN } from '../helpers/paths.js';
import { startController } from '../helpers/pd.js';
import { spawnProc } from '../helpers/proc.js';

const pd = setupPdTest([HOSTILE_PEER, SHIM_ASAN]);

it('a forged arena header does not move the server\'s slot', async () => {
  makeShim('preload/libpd-asan.so');
  await startController(pd().sock);
  const server = await startServer(['--threads', '--timeout', '120'], { pdrun: true, env: { ...pd().env, ...asanEnv() } });
  const h = spawnProc(HOSTILE_PEER, [String(server.port), '--forge-header', '20', '--timeout', '100'], {
    pdrun: true, env: { ...pd().env, PD_LOG: 'quiet' }, name: 'hostile_peer --forge-header',
  });
  const r = await h.wait(110_000);
  const why = `${r.stdout}\n${r.stderr}\n--- server stderr ---\n${server.proc.stderr.slice(-3000)}`;
  expect(server.proc.stderr, why).not.toMatch(SANITIZER_REPORT);
  const res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { forged_attached?: number; real_attached?: number; skipped?: number };
  console.log(`forged header: ${r.stdout.trim()}`);
  expect(res.forged_attached, `the server attached a slot where the forged header put it (outside the slot the controller assigned):\n${why}`).toBe(0);
  expect(r.code, why).toBe(0);
  expect(res.skipped ?? 20, why).toBeLessThan(20);
  expect(server.proc.child.exitCode, why).toBeNull();
});
