// Checks: with the per-process arena quota reached (PD_ARENA_QUOTA_MB=2: one 2 MiB arena per process), an event-loop client's further connections stay on plain TCP while the first ones use the ring; every connection echoes byte-exact, no call fails, and `pd status` (JSON and text) names the quota as the reason.
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { holdEvClient, releaseEvClient, startEvServer, connOf } from '../helpers/ev.js';
import { shimEnv } from '../helpers/fault.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { PD_JS } from '../helpers/paths.js';
import { pdStatusUntil, startController } from '../helpers/pd.js';

const pd = setupPdTest();

it('connections beyond the arena quota stay on TCP, with the reason in pd status', async () => {
  await startController(pd().sock, { PD_ARENA_QUOTA_MB: '2', PD_SLOTS_PER_ARENA: '2' });
  const env = shimEnv(pd().sock);
  const server = await startEvServer('epoll-lt', ['--timeout', '120'], { env });
  const { proc, result } = await holdEvClient(server, 'epoll-lt', 8, 1024 * 1024, 5, { env });
  expect(result).toMatchObject({ ok: true, conns: 8 });
  const st = await pdStatusUntil(pd().sock, (s) => result.locals.every((l) => connOf(s, l)));
  const conns = result.locals.map((l) => connOf(st, l));
  const ring = conns.filter((c) => c?.transport === 'ring' || c?.state === 'assigned');
  const quota = conns.filter((c) => c?.state === 'declined' && /quota/.test(c.reason ?? ''));
  const why = JSON.stringify(conns.map((c) => c && `${c.transport} ${c.state} ${c.reason ?? ''}`));
  expect(st.arenas, why).toHaveLength(1);
  expect(ring.length, why).toBe(st.arenas[0]!.slots);
  expect(quota.length, why).toBe(8 - st.arenas[0]!.slots);
  expect(quota[0]!.reason, why).toMatch(/arena quota reached \(PD_ARENA_QUOTA_MB\).*shares 2 MiB/);
  const text = spawnSync(process.execPath, [PD_JS, 'status'], { env: { ...process.env, PD_SOCKET: pd().sock }, encoding: 'utf8' });
  expect(text.stdout).toMatch(/arena quota reached/);
  const err = await releaseEvClient(proc);
  expect(err).not.toMatch(/ev_client:/);
  server.proc.kill('SIGTERM');
  const e = await server.proc.wait(10_000);
  expect(e.stderr, 'the server saw a failing call').not.toMatch(/ev_server:/);
});
