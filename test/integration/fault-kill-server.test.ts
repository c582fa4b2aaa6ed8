// Checks: kill -9 of the server at random points of a two-way transfer (PD_FAULT_KILLS times, default 20; half sent by the test after a random delay, half raised by the server itself after a random byte count): the client sees EOF or ECONNRESET on read and EPIPE or ECONNRESET on write within 1 s, every byte it read is the byte sent (all of them after EOF), and the controller's accounting, its memfds and fds, and HugePages_Free return to their starting values after each kill.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hugepages, isRoot, reserveHugepages } from '../helpers/fault.js';
import { killLoop, KILLS } from '../helpers/fault-kill.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { pdStatusUntil, startController } from '../helpers/pd.js';

const pd = setupPdTest();
let restore: (() => void) | null = null;
beforeAll(() => {
  // Root: reserve hugepages so the arenas are hugepage-backed and HugePages_Free is part of the check.
  if (isRoot) restore = reserveHugepages(16);
});
afterAll(() => restore?.());

it(`kill -9 of the server, ${KILLS} times: the client ends cleanly within 1 s, nothing corrupt, everything reclaimed`, async () => {
  const ctl = await startController(pd().sock);
  const stats = await killLoop(pd().sock, ctl.pid, 'server', 2002);
  console.log(`kill server: ${JSON.stringify(stats)}; hugepages ${JSON.stringify(hugepages())}`);
  expect(stats.iterations).toBe(KILLS);
  // The loop must really exercise the ring, not only TCP before the upgrade.
  expect(stats.survivorOnRing, JSON.stringify(stats)).toBeGreaterThanOrEqual(Math.max(1, Math.floor(KILLS / 10)));
  if (isRoot) expect(stats.hugepagesInUse, `arenas were not hugepage-backed: ${JSON.stringify(stats)}`).toBeGreaterThan(0);
  const s = await pdStatusUntil(pd().sock, () => true);
  expect(s.connections).toEqual([]);
}, 60_000 + KILLS * 3000); // the suite's 20 kills fit the default; bench/soak.mjs --kills 200 needs more

