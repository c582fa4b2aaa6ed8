// Checks: a controller out of file descriptors (its RLIMIT_NOFILE lowered with prlimit to where its next fd would go) neither spins nor blames the shims: a new process cannot open a session and a running one's report cannot carry its socket, so their connection stays on plain TCP and works byte-exact; the running process keeps its session (no protocol violation, its ring connections untouched), `pd status` shows the reason once fds are back, accept failures are logged once, and new connections are upgraded again.
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { KiB, MiB, holdStream, startServer } from '../helpers/echo.js';
import { hardNofile, lowestFreeFd, shimEnv } from '../helpers/fault.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { findConnection, pdStatusUntil, startController } from '../helpers/pd.js';
import { sleep } from '../helpers/proc.js';

const pd = setupPdTest();

function prlimit(pid: number, soft: number | string, hard: string): void {
  const r = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:${hard}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`prlimit: ${r.stderr}`);
}

it('a controller out of fds: connections stay on TCP, sessions survive, it recovers', async () => {
  const ctl = await startController(pd().sock);
  const env = shimEnv(pd().sock);
  const server = await startServer(['--threads', '--timeout', '120'], { env });
  const first = await holdStream(server, 64 * MiB, 64 * KiB, { env });
  const up = await pdStatusUntil(pd().sock, (s) => findConnection(s, first.result.local)?.transport === 'ring');
  expect(findConnection(up, first.result.local)?.transport).toBe('ring');
  const serverSession = up.sessions.length;

  const hard = hardNofile(ctl.pid);
  prlimit(ctl.pid, lowestFreeFd(ctl.pid), hard);
  let during;
  try {
    during = await holdStream(server, 32 * MiB, 64 * KiB, { env });
    expect(during.result).toMatchObject({ ok: true, bytes: 32 * MiB, verify: 'full' });
    await sleep(500);
  } finally {
    prlimit(ctl.pid, hard, hard);
  }
  // The server's report of that connection arrived without its socket (the
  // controller could not take it): declined, with the reason. The client's
  // session was accepted later, once fds were back; its report waits in vain.
  const oom = (s: typeof up) => s.connections.find((x) => /out of file descriptors/.test(x.reason ?? ''));
  const st = await pdStatusUntil(pd().sock, (s) => oom(s) !== undefined);
  const c = oom(st);
  expect(c, `${JSON.stringify(st.connections)}\n${ctl.stderr}`).toBeDefined();
  expect(c!.transport).toBe('tcp');
  expect(c!.ends.map((e) => e.pid)).toEqual([server.proc.pid]);
  expect(ctl.stderr, 'a session was blamed for the controller\'s own shortage').not.toMatch(/protocol violation/);
  expect(st.sessions.length, JSON.stringify(st.sessions)).toBeGreaterThanOrEqual(serverSession);
  expect(findConnection(st, first.result.local)?.transport, 'the ring connection was disturbed').toBe('ring');
  expect((ctl.stderr.match(/accept: /g) ?? []).length, `accept failures logged in a loop:\n${ctl.stderr.slice(-2000)}`).toBeLessThanOrEqual(2);

  const after = await holdStream(server, 64 * MiB, 64 * KiB, { env });
  const ok = await pdStatusUntil(pd().sock, (s) => findConnection(s, after.result.local)?.transport === 'ring');
  expect(findConnection(ok, after.result.local)?.transport).toBe('ring');
  for (const p of [first.proc, during.proc, after.proc]) {
    p.closeStdin();
    await p.waitOk(20_000);
  }
});
