// Checks: a controller killed and restarted under running programs: an upgraded connection keeps moving verified bytes on the ring while the controller is dead and after a new one starts; a connection opened while it is dead runs on plain TCP (the kernel carries every byte); after the restart, new connections of the same (still running) server are upgraded again, and the old connection is not disturbed by them.
import { expect, it } from 'vitest';
import { ECHO_SERVER } from '../helpers/paths.js';
import { startServer } from '../helpers/echo.js';
import { FAULT_STREAM, connLine, endLine, kill9, resume, shimEnv, startFaultClient } from '../helpers/fault.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { findConnection, pdStatusUntil, startController } from '../helpers/pd.js';
import { sleep } from '../helpers/proc.js';
import { ssConn } from '../helpers/ss.js';

const pd = setupPdTest([FAULT_STREAM, ECHO_SERVER]);
const MiB = 1024 * 1024;
const PHASE = 32 * MiB;

it('upgraded connections survive a controller restart; new ones use TCP while it is down, the ring after', async () => {
  const env = shimEnv(pd().sock);
  const ctlA = await startController(pd().sock);
  const server = await startServer(['--threads', '--timeout', '120'], { env });
  // The long-lived connection: an echo stream the client verifies, paused every 32 MiB.
  const echoArgs = (bytes: number, seed: number, extra: string[] = []) =>
    ['--bytes', String(bytes), '--rx-bytes', String(bytes), '--no-shutdown', '--tx-seed', String(seed), '--rx-seed', String(seed),
      '--linger', '--timeout', '100', ...extra];
  const c1 = startFaultClient(server.port, echoArgs(3 * PHASE, 5, ['--pause-every', String(PHASE)]), { env, stdinPipe: true, name: 'c1' });
  const l1 = await connLine(c1);
  await c1.waitStdout(/^paused 33554432\n/m, 30_000);
  const up = await pdStatusUntil(pd().sock, (s) => {
    const c = findConnection(s, l1.local);
    return c?.transport === 'ring' && c.switched[0] && c.switched[1] && c.ringBytes[0] > 0 && c.ringBytes[1] > 0;
  });
  expect(findConnection(up, l1.local), JSON.stringify(up)).toMatchObject({ transport: 'ring', switched: [true, true] });

  // The controller dies. The ring connection goes on.
  kill9(ctlA.pid);
  await ctlA.wait(10_000);
  resume(c1);
  await c1.waitStdout(/^paused 67108864\n/m, 30_000);

  // A new connection while it is dead: plain TCP, byte-exact.
  const c2 = startFaultClient(server.port, echoArgs(4 * MiB, 6), { env, stdinPipe: true, name: 'c2' });
  const l2 = await connLine(c2);
  const e2 = await endLine(c2, 30_000);
  expect(e2, c2.stderr).toMatchObject({ ok: true, rx: 4 * MiB, rx_end: 'complete', tx_end: 'done' });
  const k2 = ssConn(l2.local, server.addr);
  expect(k2, `ss has no ${l2.local}`).toBeDefined();
  // bytes_acked counts the SYN too; bytes_sent counts retransmissions.
  expect(k2!.bytesAcked, `the connection made while the controller was dead did not carry every byte on TCP:\n${k2!.raw}`).toBeGreaterThanOrEqual(4 * MiB);
  expect(k2!.bytesReceived, k2!.raw).toBe(4 * MiB);
  c2.closeStdin();
  expect((await c2.wait(10_000)).code).toBe(0);

  // A new controller: the server's shim opens a new session (it retries once a
  // second) and its new connections are upgraded again.
  await startController(pd().sock);
  let upgraded = false;
  const attempts: string[] = [];
  for (let i = 0; i < 10 && !upgraded; i++) {
    const c3 = startFaultClient(server.port, echoArgs(8 * MiB, 10 + i), { env, stdinPipe: true, name: `c3.${i}` });
    const l3 = await connLine(c3);
    const e3 = await endLine(c3, 30_000);
    expect(e3, `c3.${i}: ${c3.stderr}\nserver: ${server.proc.stderr}\nc1: ${c1.stderr}`).toMatchObject({ ok: true, rx: 8 * MiB, rx_end: 'complete', tx_end: 'done' });
    const s = await pdStatusUntil(pd().sock, (x) => findConnection(x, l3.local)?.transport === 'ring', 2000);
    const c = findConnection(s, l3.local);
    attempts.push(`${l3.local}: ${c ? `${c.transport} ${c.state} ${c.reason ?? ''}` : 'not reported'}`);
    upgraded = c?.transport === 'ring';
    c3.closeStdin();
    expect((await c3.wait(10_000)).code).toBe(0);
    if (!upgraded) await sleep(300);
  }
  expect(upgraded, `no new connection was upgraded after the restart:\n${attempts.join('\n')}`).toBe(true);

  // The old connection finishes its last third, untouched by the new ones.
  resume(c1);
  const e1 = await endLine(c1, 30_000);
  expect(e1, `c1: ${c1.stderr}`).toMatchObject({ ok: true, rx: 3 * PHASE, rx_end: 'complete', tx: 3 * PHASE, tx_end: 'done', mismatch_at: -1 });
  const k1 = ssConn(l1.local, server.addr);
  expect(k1, `ss has no ${l1.local}`).toBeDefined();
  expect(k1!.bytesSent, `the old connection's bytes after the upgrade went by TCP:\n${k1!.raw}`).toBeLessThan(PHASE);
  c1.closeStdin();
  expect((await c1.wait(10_000)).code).toBe(0);
  expect(server.proc.stderr, 'the server saw an error on a connection').not.toMatch(/echo_server: conn/);
});
