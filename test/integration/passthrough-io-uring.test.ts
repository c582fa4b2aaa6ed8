// Checks: a program that moves its bytes with io_uring (test/progs/uring_client.c: IORING_OP_SEND/RECV by raw syscalls) works under pdrun against an echo server under pdrun, 16 MiB echoed and verified, and its connection is left on kernel TCP (the shim does not interpose io_uring, and a connection used only through it is never reported); the same program on plain TCP as the reference.
import path from 'node:path';
import { expect, it } from 'vitest';
import { startServer } from '../helpers/echo.js';
import { connOf } from '../helpers/ev.js';
import { PROGS_BIN } from '../helpers/paths.js';
import { pdStatus } from '../helpers/pd.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { parseJsonLine, spawnProc } from '../helpers/proc.js';

const URING_CLIENT = path.join(PROGS_BIN, 'uring_client');
const pd = setupPdTest([URING_CLIENT]);
const BYTES = 16 * 1024 * 1024;

for (const pdrun of [true, false]) {
  it(`an io_uring client${pdrun ? ' under pdrun' : ' on plain TCP (the reference)'}: 16 MiB echoed and verified${pdrun ? ', its connection left on TCP' : ''}`, async () => {
    const opts = pdrun ? { pdrun: true, env: pd().env } : {};
    const server = await startServer(['--max-conns', '1'], opts);
    const proc = spawnProc(URING_CLIENT, ['127.0.0.1', String(server.port), String(BYTES)], { ...opts, name: 'uring_client' });
    await proc.waitStdout(/^\{.*\}\n/m, 50_000);
    const r = parseJsonLine<{ ok: boolean; bytes: number; local: string }>(proc.stdout, proc.name);
    expect(r, proc.stderr).toMatchObject({ ok: true, bytes: BYTES });
    if (pdrun) {
      const c = connOf(pdStatus(pd().sock), r.local);
      expect(c?.transport ?? 'tcp', JSON.stringify(c)).toBe('tcp');
    }
    await proc.waitOk(10_000);
  });
}
