// Checks: with only one end under pdrun (server under pdrun and client plain, then the reverse), 64 MiB each way still arrives byte-exact, the connection stays on 'tcp' in `pd status`, and `ss -tin` shows the kernel connection carried all the bytes.
import { expect, it } from 'vitest';
import { KiB, MiB, holdStream, startServer } from '../helpers/echo.js';
import { findConnection, pdStatusUntil } from '../helpers/pd.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { ssPair } from '../helpers/ss.js';

const pd = setupPdTest();

const BYTES = 64 * MiB;

for (const [name, serverPdrun, clientPdrun] of [
  ['server under pdrun, client plain', true, false],
  ['client under pdrun, server plain', false, true],
] as const) {
  it(`${name}: verified and stays on tcp`, async () => {
    const server = await startServer(['--max-conns', '1'], { pdrun: serverPdrun, env: pd().env });
    const { proc: client, result } = await holdStream(server, BYTES, 64 * KiB, { pdrun: clientPdrun, env: pd().env });
    expect(result).toMatchObject({ ok: true, bytes: BYTES, sent: BYTES, verify: 'full' });

    // Give the controller time to see the one report it will ever get.
    const status = await pdStatusUntil(pd().sock, (s) => findConnection(s, result.local) !== undefined, 1_000);
    const conn = findConnection(status, result.local);
    if (conn) expect(conn.transport, JSON.stringify(conn)).toBe('tcp');

    const { client: kc, server: ks } = ssPair(result.local, server.addr);
    expect(kc, `ss shows no socket ${result.local} -> ${server.addr}`).toBeDefined();
    expect(ks).toBeDefined();
    for (const k of [kc!, ks!]) {
      expect(k.bytesSent, k.raw).toBeGreaterThanOrEqual(BYTES);
      expect(k.bytesReceived, k.raw).toBeGreaterThanOrEqual(BYTES);
    }
    client.closeStdin();
    await client.waitOk(30_000);
    await server.proc.waitOk(30_000);
  });
}
