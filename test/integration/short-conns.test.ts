// Checks: 1,000 short connections under pdrun on both sides, each sending a pseudo-random size right after connect() (so bytes straddle the handover), come back in order and byte-exact, with client ends attached to their rings during the run (counted from the shim's debug log); also 300 against a thread-per-connection server.
import { expect, it } from 'vitest';
import { runClient, startServer, type ShortResult } from '../helpers/echo.js';
import { watchTransports } from '../helpers/pd.js';
import { setupPdTest } from '../helpers/lifecycle.js';

const pd = setupPdTest();

for (const [n, serverArgs, seed] of [
  [1000, [], '1'],
  [300, ['--threads'], '7'],
] as const) {
  it(`${n} short connections, server ${serverArgs.length ? 'threaded' : 'sequential'}, byte-exact`, async () => {
    const opts = { pdrun: true, env: pd().env };
    const server = await startServer([...serverArgs, '--max-conns', String(n)], opts);
    // Sample pd status during the run: the connections must really be upgraded,
    // or the test would not exercise the handover at all.
    const watch = watchTransports(pd().sock);
    let seen: { ring: number; tcp: number; samples: number };
    let attached = 0;
    let switched = 0;
    try {
      // PD_LOG=debug: the client's shim logs each attach, so the count below
      // covers every connection, not just the ones a status sample caught.
      const { result, stderr } = await runClient<ShortResult>(
        ['short', '127.0.0.1', String(server.port), String(n), '--seed', seed],
        { ...opts, env: { ...opts.env, PD_LOG: 'debug' } },
        110_000,
      );
      attached = stderr.match(/ attached, \d+ us after/g)?.length ?? 0;
      switched = stderr.match(/sending direction switched/g)?.length ?? 0;
      expect(result).toMatchObject({ ok: true, mode: 'short', conns: n });
      expect(result.bytes).toBeGreaterThan(0);
      console.log(`${n} conns, ${result.bytes} B in ${result.seconds.toFixed(2)} s`);
    } finally {
      seen = await watch.stop();
    }
    await server.proc.waitOk(30_000);
    console.log(`pd status samples: ${seen.samples}, connections seen on ring: ${seen.ring}, only on tcp: ${seen.tcp}; ` +
      `client ends attached: ${attached}, client sending directions switched: ${switched}`);
    expect(attached, 'no client end attached to its ring during the run').toBeGreaterThan(0);
  });
}
