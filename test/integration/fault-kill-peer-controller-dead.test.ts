// Checks: with the controller dead (killed after the connection was upgraded), kill -9 of one end of a ring connection still ends the survivor's reads with EOF or ECONNRESET and its writes with EPIPE or ECONNRESET within 1 s, as TCP would: liveness must not depend on the controller (invariant 3).
import { expect, it } from 'vitest';
import {
  FAULT_STREAM, connLine, endLine, kill9, shimEnv, startFaultClient, startFaultServer,
} from '../helpers/fault.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { findConnection, pdStatusUntil, startController } from '../helpers/pd.js';

const pd = setupPdTest([FAULT_STREAM]);

for (const victimRole of ['client', 'server'] as const) {
  it(`controller dead, then the ${victimRole} killed: the survivor ends within 1 s`, async () => {
    const env = shimEnv(pd().sock);
    const ctl = await startController(pd().sock);
    const server = await startFaultServer(['--tx-seed', '2', '--rx-seed', '1', '--timeout', '60'], { env });
    const client = startFaultClient(server.port, ['--tx-seed', '1', '--rx-seed', '2', '--timeout', '60'], { env });
    const cl = await connLine(client);
    const sl = await connLine(server.proc);
    const st = await pdStatusUntil(pd().sock, (s) => {
      const c = findConnection(s, cl.local);
      return c?.transport === 'ring' && c.switched[0] && c.switched[1];
    });
    expect(findConnection(st, cl.local), JSON.stringify(st)).toMatchObject({ transport: 'ring', switched: [true, true] });
    kill9(ctl.pid);
    await ctl.wait(10_000);
    const [victim, survivor] = victimRole === 'client' ? [cl, server.proc] : [sl, client];
    const killNs = kill9(victim.pid);
    const end = await endLine(survivor, 10_000);
    const why = `${JSON.stringify(end)}\n--- survivor stderr ---\n${survivor.stderr}`;
    expect(['eof', 'ECONNRESET'], why).toContain(end.rx_end);
    expect(end.mismatch_at, why).toBe(-1);
    expect(['EPIPE', 'ECONNRESET'], `the survivor's writer did not end (${end.tx_end}):\n${why}`).toContain(end.tx_end);
    expect(BigInt(end.rx_end_ns) - killNs, why).toBeLessThan(1_000_000_000n);
    expect(BigInt(end.tx_end_ns) - killNs, why).toBeLessThan(1_000_000_000n);
  });
}
