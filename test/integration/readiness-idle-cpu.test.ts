// Checks: a process blocked 2 s on an idle upgraded (ring) socket, in epoll_wait (on the socket's set, on a set holding that set, and poll on the set's fd), in poll, in select and in a blocking recv with SO_RCVTIMEO, times out as TCP would and uses under 10 ms of CPU doing it (the brief's bar: the kernel still does the sleeping).
import { expect, it } from 'vitest';
import { startServer } from '../helpers/echo.js';
import { IDLE_WAIT, connOf } from '../helpers/ev.js';
import { pdStatus } from '../helpers/pd.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { spawnProc, sleep } from '../helpers/proc.js';

const pd = setupPdTest([IDLE_WAIT]);

const CPU_BAR_MS = 10;
const IDLE_MS = 2000;

interface IdleResult {
  ok: boolean;
  mode: string;
  ret: number;
  errno: string;
  wall_ms: number;
  cpu_ms: number;
  user_ms: number;
  sys_ms: number;
  local: string;
}

for (const mode of ['epoll', 'epoll-nested', 'epoll-polled', 'poll', 'select', 'recv'] as const) {
  it(`${mode}: 2 s on an idle ring socket costs under ${CPU_BAR_MS} ms of CPU`, async () => {
    const opts = { pdrun: true, env: pd().env };
    const server = await startServer(['--max-conns', '1'], opts);
    const proc = spawnProc(IDLE_WAIT, [mode, '127.0.0.1', String(server.port), '--ms', String(IDLE_MS)], {
      ...opts,
      stdinPipe: true,
      name: `pdrun idle_wait ${mode}`,
    });
    const local = (await proc.waitStdout(/^connected (\S+)\n/, 20_000))[1]!;

    // Exchange pings until the connection is upgraded both ways, then one more
    // (so the last bytes went by the ring and both ends read from it).
    let pings = 0;
    const ping = async (): Promise<void> => {
      proc.child.stdin!.write('ping\n');
      await proc.waitStdout(new RegExp(`^pong ${++pings}\\n`, 'm'), 10_000);
    };
    let upgraded = false;
    for (let i = 0; i < 100 && !upgraded; i++) {
      await ping();
      const c = connOf(pdStatus(pd().sock), local);
      upgraded = c?.transport === 'ring' && c.switched[0] && c.switched[1];
      if (!upgraded) await sleep(20);
    }
    const c = connOf(pdStatus(pd().sock), local);
    expect(upgraded, `connection ${local} not upgraded both ways after ${pings} pings: ${JSON.stringify(c)}`).toBe(true);
    await ping();
    const before = connOf(pdStatus(pd().sock), local);
    expect(before?.transport, `connection ${local} left the ring: ${JSON.stringify(before)}`).toBe('ring');

    proc.child.stdin!.write('idle\n');
    const m = await proc.waitStdout(/^(\{.*\})\n/m, IDLE_MS + 20_000);
    const r = JSON.parse(m[1]!) as IdleResult;
    console.log(
      `${mode}: waited ${r.wall_ms.toFixed(1)} ms on ring socket ${local} (after ${pings} pings), ` +
        `cpu ${r.cpu_ms.toFixed(3)} ms (user ${r.user_ms.toFixed(3)}, sys ${r.sys_ms.toFixed(3)})`,
    );
    expect(r.ok, `the ${mode} wait did not time out as TCP would: ${JSON.stringify(r)}`).toBe(true);
    expect(r.cpu_ms, `CPU used in a ${IDLE_MS} ms idle ${mode} wait: ${JSON.stringify(r)}`).toBeLessThan(CPU_BAR_MS);
    await proc.waitOk(10_000);
    await server.proc.waitOk(10_000);
  });
}
