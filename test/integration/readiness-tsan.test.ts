// Checks: under the TSan build of the shim (preload/libpd-tsan.so, preloaded before the TSan runtime), the epoll-lt ev_server/ev_client run (8 x 4 MiB each way, on the ring) and a 3-thread epoll-lt ev_server (one epoll loop per thread, shared listener) serving epoll-et and poll clients at once verify byte-exact with most connections on the ring (assignment can take hundreds of ms under TSan), with no ThreadSanitizer report.
import { beforeAll, beforeEach, expect, it } from 'vitest';
import { MiB } from '../helpers/echo.js';
import {
  EV_CLIENT, EV_SERVER, SHIM_TSAN, TSAN_REPORT, mostOnRing, expectMostOnRing, makeShim, mappedLibs, tsanCommand,
  type ClientMode, type EvResult, type EvServer,
} from '../helpers/ev.js';
import { pdStatusUntil, startController } from '../helpers/pd.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { parseJsonLine, spawnProc, type ExitInfo, type Proc } from '../helpers/proc.js';

const pd = setupPdTest([EV_SERVER, EV_CLIENT, SHIM_TSAN]);

beforeAll(() => {
  makeShim('preload/libpd-tsan.so');
});
beforeEach(async () => {
  await startController(pd().sock);
});

const CONNS = 8;
const BYTES = 4 * MiB;

async function tsanServer(args: string[]): Promise<EvServer> {
  const t = tsanCommand(EV_SERVER, args);
  const proc = spawnProc(t.cmd, t.args, { pdrun: true, env: pd().env, name: `pdrun tsan ev_server ${args.join(' ')}` });
  const port = Number((await proc.waitStdout(/^port (\d+)\n/, 30_000))[1]);
  expectTsanLoaded(proc, 'ev_server');
  return { proc, port, addr: `127.0.0.1:${port}` };
}

async function tsanClient(server: EvServer, mode: ClientMode, seed: number): Promise<{ proc: Proc; result: EvResult }> {
  const t = tsanCommand(EV_CLIENT, [mode, '127.0.0.1', String(server.port), String(CONNS), String(BYTES),
    '--seed', String(seed), '--rounds', '4', '--hold', '--timeout', '150']);
  const proc = spawnProc(t.cmd, t.args, { pdrun: true, env: pd().env, stdinPipe: true, name: `pdrun tsan ev_client ${mode}` });
  await proc.waitStdout(/^\{.*\}\n/, 100_000);
  expectTsanLoaded(proc, 'ev_client');
  return { proc, result: parseJsonLine<EvResult>(proc.stdout, proc.name) };
}

/** The running program maps the TSan shim and runtime (a preload that fails
 * to load is only a warning from ld.so: the run would then prove nothing). */
function expectTsanLoaded(proc: Proc, comm: string): void {
  const libs = mappedLibs(proc.pid, comm);
  expect(libs, `${comm} does not map the TSan shim:\n${proc.stderr}`).toContain(SHIM_TSAN);
  expect(libs.some((l) => /\/libtsan\.so/.test(l)), `${comm} does not map libtsan:\n${libs.join('\n')}`).toBe(true);
}

function noReport(r: ExitInfo, who: string): void {
  const at = r.stderr.search(TSAN_REPORT);
  expect(at, `${who}: ThreadSanitizer report:\n${r.stderr.slice(Math.max(0, at - 200), at + 6000)}`).toBe(-1);
  expect(r.code, `${who} exit status (TSan exits 66 after a report):\n${r.stderr.slice(-3000)}`).toBe(0);
}

it('epoll-lt server and client under the TSan shim: verified on the ring, no report', async () => {
  const server = await tsanServer(['--mode', 'epoll-lt', '--max-conns', String(CONNS)]);
  const { proc, result } = await tsanClient(server, 'epoll-lt', 501);
  expect(result).toMatchObject({ ok: true, conns: CONNS, bytes: BYTES });
  const status = await pdStatusUntil(pd().sock, (s) => mostOnRing(s, result.locals, 0.75), 5_000);
  expectMostOnRing(status, result.locals, 0.75, 'TSan epoll-lt');
  proc.closeStdin();
  noReport(await proc.wait(60_000), 'client');
  noReport(await server.proc.wait(60_000), 'server');
});

it('3-thread epoll-lt server with epoll-et and poll clients under the TSan shim: verified on the ring, no report', async () => {
  const server = await tsanServer(['--mode', 'epoll-lt', '--threads', '3', '--max-conns', String(2 * CONNS)]);
  const clients = await Promise.all([tsanClient(server, 'epoll-et', 502), tsanClient(server, 'poll', 503)]);
  for (const { result } of clients) expect(result).toMatchObject({ ok: true, conns: CONNS, bytes: BYTES });
  const locals = clients.flatMap((c) => c.result.locals);
  const status = await pdStatusUntil(pd().sock, (s) => mostOnRing(s, locals, 0.75), 5_000);
  expectMostOnRing(status, locals, 0.75, 'TSan threaded epoll-lt');
  for (const { proc } of clients) proc.closeStdin();
  for (const { proc } of clients) noReport(await proc.wait(60_000), proc.name);
  noReport(await server.proc.wait(60_000), 'server');
});
