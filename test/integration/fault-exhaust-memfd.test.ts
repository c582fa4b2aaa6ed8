// Checks: when memfd_create fails in the controller (made to fail with EMFILE by a seccomp supervisor, test/progs/fault_seccomp.c, for arena memfds only), a new connection stays on plain TCP and works byte-exact, `pd status` shows why, the controller keeps running, and once memfd_create works again new connections are upgraded.
import { existsSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { KiB, MiB, holdStream, startServer } from '../helpers/echo.js';
import { FAULT_SECCOMP, shimEnv, waitController } from '../helpers/fault.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { PD_JS } from '../helpers/paths.js';
import { findConnection, pdStatusUntil } from '../helpers/pd.js';
import { spawnProc } from '../helpers/proc.js';

const pd = setupPdTest([FAULT_SECCOMP]);

it('memfd_create failing in the controller: new connections stay on TCP with the reason shown, and recover', async () => {
  const flag = path.join(pd().dir, 'fail-memfd');
  const ctl = spawnProc(FAULT_SECCOMP, [flag, 'pd-arena-', process.execPath, PD_JS, 'controller', '--idle-exit', '120'], {
    env: { PD_SOCKET: pd().sock }, name: 'fault_seccomp pd controller',
  });
  await waitController(pd().sock);
  const env = shimEnv(pd().sock);
  const server = await startServer(['--threads', '--timeout', '60'], { env });
  const ringOf = async (local: string) =>
    findConnection(await pdStatusUntil(pd().sock, (s) => findConnection(s, local)?.transport === 'ring'), local);

  // memfd_create fails: each new pair needs an arena, so its connection stays on TCP.
  writeFileSync(flag, '');
  const bad = await holdStream(server, 32 * MiB, 64 * KiB, { env });
  expect(bad.result).toMatchObject({ ok: true, bytes: 32 * MiB, verify: 'full' });
  const st = await pdStatusUntil(pd().sock, (s) => findConnection(s, bad.result.local)?.state === 'declined');
  const c = findConnection(st, bad.result.local);
  expect(c, JSON.stringify(st.connections)).toMatchObject({ transport: 'tcp', state: 'declined' });
  expect(c!.reason, JSON.stringify(c)).toMatch(/no arena memory could be allocated \(memfd_create\(pd-arena-\d+\): EMFILE/);
  expect(st.arenas).toEqual([]);
  expect(ctl.stderr).toMatch(/fault_seccomp: failed pd-arena-/);
  bad.proc.closeStdin();
  await bad.proc.waitOk(20_000);

  // It works again: upgraded.
  unlinkSync(flag);
  expect(existsSync(flag)).toBe(false);
  const good = await holdStream(server, 64 * MiB, 64 * KiB, { env });
  expect(good.result).toMatchObject({ ok: true, bytes: 64 * MiB });
  expect((await ringOf(good.result.local))?.transport).toBe('ring');
  good.proc.closeStdin();
  await good.proc.waitOk(20_000);
  expect(ctl.child.exitCode).toBeNull();
});
