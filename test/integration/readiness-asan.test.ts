// Checks: under the ASan/UBSan build of the shim (preload/libpd-asan.so), ev_server and ev_client over epoll (level-triggered) and over poll, both under pdrun, echo 8 x 4 MiB each way byte-exact, most connections on the ring, and end with EOF, with no sanitizer report on stderr.
import { beforeAll, beforeEach, expect, it } from 'vitest';
import { MiB } from '../helpers/echo.js';
import {
  EV_CLIENT, EV_SERVER, SANITIZER_REPORT, mostOnRing, asanEnv, expectMostOnRing, holdEvClient, makeShim, mappedLibs,
  startEvServer,
  type ClientMode, type ServerMode,
} from '../helpers/ev.js';
import { pdStatusUntil, startController } from '../helpers/pd.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { SHIM_ASAN } from '../helpers/paths.js';

const pd = setupPdTest([EV_SERVER, EV_CLIENT, SHIM_ASAN]);
let env: Record<string, string>;

beforeAll(() => {
  makeShim('preload/libpd-asan.so');
  env = asanEnv();
});
beforeEach(async () => {
  // our own controller, so that it does not run with the ASan runtime preloaded
  await startController(pd().sock);
});

const CONNS = 8;
const BYTES = 4 * MiB;

for (const [sm, cm, seed] of [
  ['epoll-lt', 'epoll-lt', 401],
  ['poll', 'poll', 402],
] as [ServerMode, ClientMode, number][]) {
  it(`server ${sm}, client ${cm} under the ASan/UBSan shim: verified on the ring, no report`, async () => {
    const opts = { pdrun: true, env: { ...pd().env, ...env } };
    const server = await startEvServer(sm, ['--max-conns', String(CONNS)], opts);
    const { proc: client, result } = await holdEvClient(server, cm, CONNS, BYTES, seed, opts, 100_000);
    // both programs really run the ASan shim (a failed preload is only a warning)
    for (const [p, comm] of [[server.proc, 'ev_server'], [client, 'ev_client']] as const) {
      expect(mappedLibs(p.pid, comm), `${comm} does not map the ASan shim:\n${p.stderr}`).toContain(SHIM_ASAN);
    }
    expect(result).toMatchObject({ ok: true, conns: CONNS, bytes: BYTES });
    const status = await pdStatusUntil(pd().sock, (s) => mostOnRing(s, result.locals, 0.75), 5_000);
    expectMostOnRing(status, result.locals, 0.75, `ASan: server ${sm}, client ${cm}`);
    client.closeStdin();
    const c = await client.wait(60_000);
    const s = await server.proc.wait(60_000);
    expect(c.stderr, 'client stderr has a sanitizer report').not.toMatch(SANITIZER_REPORT);
    expect(s.stderr, 'server stderr has a sanitizer report').not.toMatch(SANITIZER_REPORT);
    expect(c.code, `client exit: ${c.stderr}`).toBe(0);
    expect(s.code, `server exit: ${s.stderr}`).toBe(0);
  });
}
