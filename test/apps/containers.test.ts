// Checks: across network namespaces joined by veth pairs (as containers on one host), with the controller in the root namespace, an echo server and client both under pdrun (root, PD_CROSS_NETNS=same-user) stream 64 MiB each way byte-exact, mostly on the ring (TCP + ring bytes exactly the stream); a client from a third namespace not under pdrun is served byte-exact on TCP.
import { spawnSync } from 'node:child_process';
import { afterAll, expect, it } from 'vitest';
import { clientIp, createNetns, deleteNetns, serverIp, type NetnsSpec } from '../../src/cli/bench/scenarios/containers.js';
import { KiB, MiB, holdStream } from '../helpers/echo.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { findConnection, pdStatusUntil, startController } from '../helpers/pd.js';
import { spawnProc } from '../helpers/proc.js';
import { ECHO_SERVER } from '../helpers/paths.js';
import { ssEnds } from '../helpers/ss.js';
import { tcpSent } from './app-helpers.js';

const pd = setupPdTest();
const BYTES = 64 * MiB;
const tag = process.pid % 100000;
// server namespace, the pdrun client's, the plain client's; private addresses 10.204.{0,1}.0/24
const SPEC: NetnsSpec = { server: `pdtest-${tag}-srv`, clients: [`pdtest-${tag}-cli`, `pdtest-${tag}-plain`], veth: `pdt${tag}`, net: 204 };
afterAll(() => deleteNetns(SPEC));

function whyNot(): string | null {
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return `\`ip netns\` is unavailable (${(r.stderr || String(r.error)).trim()}): apt-get install -y iproute2`;
  return null;
}

it('pairs a server and a client in two namespaces onto the ring; a plain client stays on TCP', async (ctx) => {
  const why = whyNot();
  if (why) ctx.skip(`containers: ${why}`);
  createNetns(SPEC);
  await startController(pd().sock); // in the root namespace; the shims reach it by its socket path
  const [nsServer, nsClient, nsPlain] = [SPEC.server, ...SPEC.clients] as [string, string, string];
  const server = spawnProc(ECHO_SERVER, ['--bind', '0.0.0.0', '--threads', '--max-conns', '2'], { pdrun: true, env: pd().env, netns: nsServer, name: `[${nsServer}] pdrun echo_server` });
  const port = Number((await server.waitStdout(/^port (\d+)\n/, 20_000))[1]);

  // under pdrun in the client namespace: on the ring
  const target = { proc: server, port, addr: `${serverIp(SPEC, 0)}:${port}` };
  const viaRing = await holdStream(target, BYTES, 64 * KiB, { pdrun: true, env: pd().env, netns: nsClient });
  expect(viaRing.result).toMatchObject({ ok: true, bytes: BYTES, sent: BYTES, verify: 'full', local: expect.stringMatching(`^${clientIp(SPEC, 0)}:`) });
  const s = await pdStatusUntil(pd().sock, (x) => findConnection(x, viaRing.result.local)?.transport === 'ring', 10_000);
  const conn = findConnection(s, viaRing.result.local);
  expect(conn?.transport, `pd status: ${JSON.stringify(s.connections, null, 1)}`).toBe('ring');
  // the switch is asynchronous (no gate here): what went before it travelled
  // by the veth; per direction, TCP + ring is the stream, exactly
  const k = ssEnds(viaRing.result.local, target.addr, { client: nsClient, server: nsServer });
  expect(k.client && k.server, `ss in the namespaces shows no socket for ${viaRing.result.local} <-> ${target.addr}`).toBeTruthy();
  expect(tcpSent(k.client!) + conn!.ringBytes[0], `client -> server: ${k.client!.raw}`).toBe(BYTES);
  expect(tcpSent(k.server!) + conn!.ringBytes[1], `server -> client: ${k.server!.raw}`).toBe(BYTES);
  for (const d of [0, 1] as const) expect(conn!.ringBytes[d], `most of the stream on the ring: ${JSON.stringify(conn)}`).toBeGreaterThan(BYTES / 2);

  // not under pdrun, from a third namespace: served, on TCP
  const plainTarget = { proc: server, port, addr: `${serverIp(SPEC, 1)}:${port}` };
  const plain = await holdStream(plainTarget, BYTES, 64 * KiB, { netns: nsPlain });
  expect(plain.result).toMatchObject({ ok: true, bytes: BYTES, sent: BYTES, verify: 'full' });
  const s2 = await pdStatusUntil(pd().sock, (x) => findConnection(x, plain.result.local) !== undefined, 2_000);
  const c2 = findConnection(s2, plain.result.local);
  if (c2) expect(c2.transport, JSON.stringify(c2)).toBe('tcp');
  const k2 = ssEnds(plain.result.local, plainTarget.addr, { client: nsPlain, server: nsServer });
  for (const x of [k2.client, k2.server]) {
    expect(x, `ss in the namespaces shows no socket for ${plain.result.local} <-> ${plainTarget.addr}`).toBeDefined();
    expect(tcpSent(x!), `the plain client's connection carried the stream by TCP:\n${x!.raw}`).toBeGreaterThanOrEqual(BYTES);
  }
  console.log(`containers: ring ${conn!.ringBytes.join('/')} B, kernel ${tcpSent(k.client!)}/${tcpSent(k.server!)} B; plain client kernel ${tcpSent(k2.client!)}/${tcpSent(k2.server!)} B`);

  for (const c of [viaRing.proc, plain.proc]) c.closeStdin();
  await Promise.all([viaRing.proc.waitOk(30_000), plain.proc.waitOk(30_000)]);
  await server.waitOk(30_000);
});
