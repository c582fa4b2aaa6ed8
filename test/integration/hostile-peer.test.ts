// Checks: a hostile client (test/progs/hostile_peer.c, 10,000 rounds) writing random and adversarial values into the ring control block and data of its upgraded connections (indices past the end, huge lengths, wrapped counters, flipped magic, flags) makes the server, running the ASan/UBSan shim, reset those connections (ECONNRESET) and carry on: no sanitizer report, no crash, a control connection of the same pair (same arena) stays byte-exact, the arena header never changes, and the server still serves an upgraded, verified stream afterwards.
import { expect, it } from 'vitest';
import { KiB, MiB, runClient, type StreamResult } from '../helpers/echo.js';
import { EV_SERVER, SANITIZER_REPORT, asanEnv, makeShim, startEvServer } from '../helpers/ev.js';
import { HOSTILE_PEER } from '../helpers/fault.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { SHIM_ASAN } from '../helpers/paths.js';
import { findConnection, pdStatusUntil, startController, watchTransports } from '../helpers/pd.js';
import { spawnProc, type Proc } from '../helpers/proc.js';
import { startServer } from '../helpers/echo.js';

const ROUNDS = Number(process.env.PD_HOSTILE_ROUNDS ?? 10_000);
const pd = setupPdTest([HOSTILE_PEER, SHIM_ASAN, EV_SERVER]);

interface HostileResult {
  ok: boolean;
  rounds: number;
  conns: number;
  upgraded: number;
  resets: number;
  silent: number;
  not_upgraded: number;
  ctl_checks: number;
  ctl_bytes: number;
}

async function attack(victim: Proc, port: number, rounds: number, seed: number): Promise<void> {
  const opts = { pdrun: true, env: { ...pd().env, PD_LOG: 'quiet' } };
  const h = spawnProc(HOSTILE_PEER, [String(port), '--rounds', String(rounds), '--seed', String(seed), '--timeout', '170'], {
    ...opts, name: 'hostile_peer',
  });
  const r = await h.wait(180_000);
  const why = `hostile_peer: code ${r.code} signal ${r.signal}\n${r.stdout}\n${r.stderr.slice(-3000)}\n--- victim stderr ---\n${victim.stderr.slice(-4000)}`;
  expect(victim.stderr, `the victim has a sanitizer report:\n${victim.stderr.slice(-6000)}`).not.toMatch(SANITIZER_REPORT);
  expect(r.code, why).toBe(0);
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as HostileResult;
  console.log(`hostile (seed ${seed}): ${JSON.stringify(res)}`);
  expect(res, why).toMatchObject({ ok: true, rounds });
  expect(res.upgraded, why).toBeGreaterThan(rounds / 50);
  expect(res.resets, why).toBeGreaterThan(0);
  // The victim's shim found the corruption itself (not only our own shim).
  expect(victim.stderr, why).toMatch(/peer published a (head past the ring|tail past the head): connection reset/);
  expect(victim.child.exitCode, `the victim exited:\n${victim.stderr.slice(-4000)}`).toBeNull();

  // The victim carries on: a fresh client gets an upgraded, verified stream.
  const watch = watchTransports(pd().sock);
  const { result } = await runClient<StreamResult>(['stream', '127.0.0.1', String(port), String(64 * MiB), String(64 * KiB)], opts);
  const seen = await watch.stop();
  expect(result).toMatchObject({ ok: true, bytes: 64 * MiB, verify: 'full' });
  expect(seen.ring, 'the stream after the attack was not upgraded').toBeGreaterThan(0);
  expect(victim.stderr).not.toMatch(SANITIZER_REPORT);
  // Everything of the attack is reclaimed.
  const st = await pdStatusUntil(pd().sock, (s) => s.connections.length === 0);
  expect(st.connections, JSON.stringify(st.connections.slice(0, 5))).toEqual([]);
  expect(findConnection(st, result.local)).toBeUndefined();
}

it(`${ROUNDS} hostile rounds against a thread-per-connection server (blocking reads and writes)`, async () => {
  makeShim('preload/libpd-asan.so');
  await startController(pd().sock);
  const server = await startServer(['--threads', '--timeout', '300'], { pdrun: true, env: { ...pd().env, ...asanEnv() } });
  await attack(server.proc, server.port, ROUNDS, 11);
  server.proc.kill('SIGTERM');
  const e = await server.proc.wait(20_000);
  expect(e.stderr).not.toMatch(SANITIZER_REPORT);
});

it(`${Math.ceil(ROUNDS / 2)} hostile rounds against an edge-triggered epoll server`, async () => {
  makeShim('preload/libpd-asan.so');
  await startController(pd().sock);
  const server = await startEvServer('epoll-et', ['--timeout', '300'], { pdrun: true, env: { ...pd().env, ...asanEnv() } });
  await attack(server.proc, server.port, Math.ceil(ROUNDS / 2), 12);
  server.proc.kill('SIGTERM');
  const e = await server.proc.wait(20_000);
  expect(e.stderr).not.toMatch(SANITIZER_REPORT);
});
