// Checks: kill -9 of the controller at random points of a two-way transfer (PD_FAULT_KILLS times, default 20): both ends finish byte-exact (every byte, then EOF) whether their connection was still on TCP, mid-upgrade or on the ring; a connection opened while the controller is dead works on plain TCP; after the processes exit HugePages_Free is back at its starting value.
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  FAULT_STREAM, type FaultEnd, connLine, endLine, hugepages, isRoot, kill9, prng, reserveHugepages, shimEnv, startFaultClient,
  startFaultServer, waitHugeReclaimed,
} from '../helpers/fault.js';
import { KILLS, MiB } from '../helpers/fault-kill.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { startController } from '../helpers/pd.js';
import { sleep, type Proc } from '../helpers/proc.js';

const pd = setupPdTest([FAULT_STREAM]);
let restore: (() => void) | null = null;
beforeAll(() => {
  if (isRoot) restore = reserveHugepages(16);
});
afterAll(() => restore?.());

/** A fault_stream pair moving `bytes` each way; resolves with both ends' results. */
async function pair(env: Record<string, string>, bytes: number, seed: number): Promise<{ server: Proc; client: Proc }> {
  const server = await startFaultServer(['--bytes', String(bytes), '--tx-seed', String(seed + 1), '--rx-seed', String(seed), '--timeout', '60'], { env });
  const client = startFaultClient(server.port, ['--bytes', String(bytes), '--tx-seed', String(seed), '--rx-seed', String(seed + 1), '--timeout', '60'], { env });
  return { server: server.proc, client };
}

function complete(end: FaultEnd, bytes: number, who: string, p: Proc): void {
  const why = `${who}: ${JSON.stringify(end)}\n--- stderr ---\n${p.stderr.slice(-3000)}`;
  expect(end.ok, why).toBe(true);
  expect(end.rx_end, why).toBe('eof');
  expect(end.rx, why).toBe(bytes);
  expect(end.tx_end, why).toBe('done');
  expect(end.tx, why).toBe(bytes);
}

it(`kill -9 of the controller, ${KILLS} times mid-transfer: both ends finish byte-exact`, async () => {
  const rnd = prng(3003);
  const env = { ...shimEnv(pd().sock), PD_LOG: 'debug' };
  const huge = hugepages();
  const seen = { attachedBoth: 0, tcpOnly: 0 };
  for (let i = 0; i < KILLS; i++) {
    const ctl = await startController(pd().sock);
    const bytes = Math.floor((4 + rnd() * 60) * MiB);
    const delayMs = Math.floor(rnd() ** 2 * 40);
    const ctx = JSON.stringify({ i, bytes, delayMs });
    const { server, client } = await pair(env, bytes, 100 + i * 2);
    await connLine(client);
    if (delayMs > 0) await sleep(delayMs);
    kill9(ctl.pid);
    // A connection made while the controller is dead: plain TCP, and it works.
    const late = await pair(env, MiB, 7);
    for (const [p, who] of [[client, 'client'], [server, 'server'], [late.client, 'late client'], [late.server, 'late server']] as const) {
      const end = await endLine(p, 30_000).catch((e: Error) => {
        throw new Error(`${ctx} ${who}: ${e.message}`);
      });
      complete(end, who.startsWith('late') ? MiB : bytes, `${ctx} ${who}`, p);
      expect((await p.wait(10_000)).code, `${ctx} ${who}`).toBe(0);
    }
    if (/attached/.test(client.stderr) && /attached/.test(server.stderr)) seen.attachedBoth++;
    else seen.tcpOnly++;
    expect(late.client.stderr, 'the late connection was upgraded with no controller').not.toMatch(/attached/);
    await ctl.wait(10_000);
    await waitHugeReclaimed(huge, `after ${ctx}`);
  }
  console.log(`kill controller: ${KILLS} iterations, ${JSON.stringify(seen)}`);
  expect(seen.attachedBoth, JSON.stringify(seen)).toBeGreaterThan(0);
}, 60_000 + KILLS * 3000); // the suite's 20 kills fit the default; bench/soak.mjs --kills 200 needs more

