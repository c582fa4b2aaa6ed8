// Checks: one ev_server under pdrun serves at the same time a client under pdrun (its connections upgrade to the ring) and a plain client (its connections stay on kernel TCP, which carries all their bytes): both verify 4 x 4 MiB each way (4 rounds; after the first, the pdrun client's connections attach at both ends while the programs idle in their event loops) byte-exact and end with EOF, the server reports no failed connection.
import { expect, it } from 'vitest';
import { MiB } from '../helpers/echo.js';
import {
  EV_CLIENT, EV_SERVER, allOnRing, attachedGate, upgradeContext, connOf, expectAllOnRing, holdEvClient, releaseEvClient, startEvServer,
  type ClientMode, type ServerMode,
} from '../helpers/ev.js';
import { pdStatusUntil } from '../helpers/pd.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { ssConn } from '../helpers/ss.js';

const pd = setupPdTest([EV_SERVER, EV_CLIENT]);

const CONNS = 4;
const BYTES = 4 * MiB;
const CASES: [ServerMode, ClientMode, ClientMode][] = [
  ['epoll-lt', 'epoll-et', 'epoll-lt'],
  ['epoll-et', 'epoll-lt', 'poll'],
  ['poll', 'poll', 'epoll-et'],
  ['select', 'select', 'select'],
];

let seed = 300;
for (const [sm, ringMode, plainMode] of CASES) {
  const s = ++seed;
  it(`server ${sm} under pdrun: ${ringMode} client under pdrun on the ring, plain ${plainMode} client on tcp, both verified`, async () => {
    const server = await startEvServer(sm, ['--max-conns', String(2 * CONNS)], { pdrun: true, env: pd().env });
    const [ringClient, plainClient] = await Promise.all([
      holdEvClient(server, ringMode, CONNS, BYTES, s, { pdrun: true, env: pd().env }, undefined, undefined, attachedGate(pd().sock)),
      holdEvClient(server, plainMode, CONNS, BYTES, s + 1000, { pdrun: false, env: pd().env }),
    ]);
    for (const c of [ringClient, plainClient]) expect(c.result).toMatchObject({ ok: true, conns: CONNS, bytes: BYTES });

    const status = await pdStatusUntil(pd().sock, (st) => allOnRing(st, ringClient.result.locals), 5_000);
    expectAllOnRing(status, ringClient.result.locals, `pdrun client of server ${sm}`, upgradeContext(pd().sock, server.proc));
    for (const l of plainClient.result.locals) {
      // the server end reported it; nothing ever matched it, so it is not on the ring
      const c = connOf(status, l);
      if (c) expect(c.transport, `plain client connection ${l}: ${JSON.stringify(c)}`).toBe('tcp');
      const k = ssConn(l, server.addr);
      expect(k, `ss shows no socket ${l} -> ${server.addr}`).toBeDefined();
      expect(k!.bytesSent, `plain client ${l} did not send everything by TCP:\n${k!.raw}`).toBeGreaterThanOrEqual(BYTES);
      expect(k!.bytesReceived, `plain client ${l} did not receive everything by TCP:\n${k!.raw}`).toBeGreaterThanOrEqual(BYTES);
    }

    await Promise.all([releaseEvClient(ringClient.proc), releaseEvClient(plainClient.proc)]);
    await server.proc.waitOk(30_000);
  });
}
