// Checks: an application near RLIMIT_NOFILE (test/progs/fault_nofile.c: only 24 descriptor numbers left) holds as many connections under pipedevice as on plain TCP, less the shim's session socket: the shim refuses its ASSIGNs rather than take the descriptors the application needs, every connection echoes byte-exact, no call fails with anything but the EMFILE of the limit itself, and the refused connections show the reason in `pd status`. With PD_FD_RESERVE=0 an ASSIGN truncated by the kernel (MSG_CTRUNC) leaves that one connection on TCP and the session working.
import { expect, it } from 'vitest';
import { startServer } from '../helpers/echo.js';
import { FAULT_NOFILE, shimEnv } from '../helpers/fault.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { pdStatus, pdStatusUntil, startController, type PdStatus } from '../helpers/pd.js';
import { parseJsonLine, spawnProc, type Proc } from '../helpers/proc.js';

const pd = setupPdTest([FAULT_NOFILE]);
const FREE = 24;

interface NofileResult {
  ok: boolean;
  held: number;
  stopped_by: string;
  errors: number;
}

async function run(port: number, env: Record<string, string>, who: string): Promise<{ r: NofileResult; stderr: string }> {
  const p = spawnProc(FAULT_NOFILE, [String(port), '--limit', '256', '--free', String(FREE), '--timeout', '15'], { env, name: `fault_nofile ${who}` });
  const e = await p.wait(25_000);
  if (e.code === 3) throw new Error(`${p.name} hung (watchdog, 15 s):\n${e.stderr}`);
  return { r: parseJsonLine<NofileResult>(e.stdout, p.name), stderr: e.stderr };
}

/** Like run, with --hold: returns once the JSON line is out and the connections are still open. */
async function runHeld(port: number, env: Record<string, string>, who: string): Promise<{ r: NofileResult; proc: Proc }> {
  const proc = spawnProc(FAULT_NOFILE, [String(port), '--limit', '256', '--free', String(FREE), '--timeout', '30', '--hold'],
    { env, name: `fault_nofile ${who}`, stdinPipe: true });
  await proc.waitStdout(/\}\n/, 25_000);
  return { r: parseJsonLine<NofileResult>(proc.stdout, proc.name), proc };
}

// The shim's descriptors of an upgraded connection (four doorbells, a pidfd)
// count against the application's RLIMIT_NOFILE, so it takes none once the
// table is within PD_FD_RESERVE (default: an eighth of the limit, at least 32)
// of the limit: here 24 numbers are left, so every connection stays on TCP,
// refused by the shim with the reason in `pd status`.
it(`near RLIMIT_NOFILE (${FREE} fds left): as many connections as on TCP, none failing, each refused with a reason`, async () => {
  await startController(pd().sock);
  const env = shimEnv(pd().sock);
  const debugEnv = { ...env, PD_LOG: 'debug' };
  const server = await startServer(['--threads', '--timeout', '120'], { env });
  const plain = await run(server.port, {}, 'plain');
  expect(plain.r, plain.stderr).toMatchObject({ ok: true, held: FREE, stopped_by: 'socket: EMFILE', errors: 0 });
  const { r, proc } = await runHeld(server.port, debugEnv, 'under the shim');
  console.log(`plain TCP held ${plain.r.held}, under the shim ${r.held} (${r.stopped_by})`);
  expect(r.errors, `a call failed under the shim:\n${proc.stderr}`).toBe(0);
  expect(r, proc.stderr).toMatchObject({ ok: true, stopped_by: 'socket: EMFILE' });
  expect(r.held, `the shim took the application's descriptors: ${r.held} connections instead of ${plain.r.held}\n${proc.stderr}`)
    .toBeGreaterThanOrEqual(plain.r.held - 1);
  // every connection is on TCP, refused by the client's shim with the reason
  const st = await pdStatusUntil(pd().sock, (s) => refusals(s) >= r.held, 5_000);
  expect(refusals(st), `not every connection shows the RLIMIT_NOFILE refusal:\n${JSON.stringify(st.connections, null, 1)}`)
    .toBe(r.held);
  for (const c of st.connections) expect(c.transport, JSON.stringify(c)).toBe('tcp');
  proc.closeStdin();
  await proc.waitOk(10_000);
});

// With no reserve (PD_FD_RESERVE=0) the shim takes descriptors until an
// ASSIGN no longer fits: the kernel installs what fits, closes the rest and
// says MSG_CTRUNC. That connection stays on TCP and the session goes on, so
// the connections upgraded before it keep their rings, nothing hangs and no
// byte is lost; the application runs out of numbers sooner (the shim holds
// some), which is what the reserve is there to avoid.
it('PD_FD_RESERVE=0: an ASSIGN truncated at RLIMIT_NOFILE leaves that connection on TCP and the session working', async () => {
  await startController(pd().sock);
  const env = { ...shimEnv(pd().sock), PD_FD_RESERVE: '0', PD_LOG: 'info' };
  const server = await startServer(['--threads', '--timeout', '120'], { env: shimEnv(pd().sock) });
  const { r, proc } = await runHeld(server.port, env, 'under the shim, no reserve');
  console.log(`no reserve: held ${r.held} (${r.stopped_by})`);
  expect(r.errors, `a call failed under the shim:\n${proc.stderr}`).toBe(0);
  expect(r, proc.stderr).toMatchObject({ ok: true, stopped_by: 'socket: EMFILE' });
  expect(proc.stderr, 'no ASSIGN was truncated').toMatch(/out of descriptors/);
  expect(proc.stderr, 'the shim lost its session').not.toMatch(/lost its descriptors|no controller|warning/);
  const st = pdStatus(pd().sock);
  const show = JSON.stringify(st.connections, null, 1);
  expect(st.connections.filter((c) => /truncated the ASSIGN/.test(c.reason ?? '')).length, show).toBeGreaterThan(0);
  // the connections upgraded before the limit was reached keep their rings
  expect(st.connections.filter((c) => c.transport === 'ring').length, show).toBeGreaterThan(0);
  proc.closeStdin();
  await proc.waitOk(10_000);
});

function refusals(st: PdStatus): number {
  return st.connections.filter((c) => c.transport === 'tcp' && /RLIMIT_NOFILE/.test(c.reason ?? '')).length;
}
