// Checks: ev_server in each epoll mode (level-triggered, edge-triggered, EPOLLONESHOT, epoll_pwait) with ev_client over epoll LT and ET, both under pdrun: 8 connections x 4 MiB each way (in 4 rounds, each sent once the previous one came back; after the first, both programs idle in their event loops until every connection is attached at both ends) echo back byte-exact, all 8 are on the ring both ways while held, each ends with EOF after its last byte, and the server reports no failed connection.
import { expect, it } from 'vitest';
import { MiB } from '../helpers/echo.js';
import {
  EV_CLIENT, EV_SERVER, allOnRing, attachedGate, upgradeContext, expectAllOnRing, holdEvClient, releaseEvClient, startEvServer,
  type ClientMode, type ServerMode,
} from '../helpers/ev.js';
import { pdStatusUntil } from '../helpers/pd.js';
import { setupPdTest } from '../helpers/lifecycle.js';

const pd = setupPdTest([EV_SERVER, EV_CLIENT]);

const CONNS = 8;
const BYTES = 4 * MiB;
const SERVER_MODES: ServerMode[] = ['epoll-lt', 'epoll-et', 'epoll-oneshot', 'epoll-pwait'];
const CLIENT_MODES: ClientMode[] = ['epoll-lt', 'epoll-et'];

let seed = 100;
for (const sm of SERVER_MODES) {
  for (const cm of CLIENT_MODES) {
    const s = ++seed;
    it(`server ${sm}, client ${cm}: ${CONNS} x 4 MiB verified, all on the ring`, async () => {
      const opts = { pdrun: true, env: pd().env };
      const server = await startEvServer(sm, ['--max-conns', String(CONNS)], opts);
      const { proc: client, result } = await holdEvClient(server, cm, CONNS, BYTES, s, opts, undefined, undefined, attachedGate(pd().sock));
      expect(result).toMatchObject({ ok: true, mode: cm, conns: CONNS, bytes: BYTES });
      expect(result.locals).toHaveLength(CONNS);
      console.log(`server ${sm}, client ${cm}: ${CONNS} x ${BYTES} B each way in ${result.seconds.toFixed(3)} s`);

      // The connections moved data both ways and are now idle: the status must
      // show each of them upgraded, both directions switched, ring bytes both ways.
      const status = await pdStatusUntil(pd().sock, (st) => allOnRing(st, result.locals), 5_000);
      expectAllOnRing(status, result.locals, `server ${sm}, client ${cm}`, upgradeContext(pd().sock, server.proc));

      await releaseEvClient(client);
      await server.proc.waitOk(30_000);
    });
  }
}
