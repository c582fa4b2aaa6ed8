// Shared by the test/apps files: real applications under pdrun, each with its
// own PD_SOCKET (setupPdTest), bounded waits, and the transport check.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { expect } from 'vitest';
import { freePort, freePortRange } from '../../src/cli/bench/net.js';
import { findConnection, pdStatus, pdStatusUntil, type PdConnection, type PdStatus } from '../helpers/pd.js';
import { sleep, type Proc } from '../helpers/proc.js';
import { ssEnds, type TcpInfo } from '../helpers/ss.js';

/** Fails the test (with the apt-get line) when cmd is not installed. */
export function requireCommand(cmd: string, pkg: string): void {
  const r = spawnSync('sh', ['-c', `command -v "$1" || test -x "/usr/sbin/$1"`, 'sh', cmd], { timeout: 5000 });
  if (r.status !== 0) throw new Error(`${cmd} is not installed: apt-get install -y ${pkg} (scripts/setup.sh installs it)`);
}

/** Debian's python3 (what scripts/setup.sh installs), not a pyenv or venv shim on PATH. */
export function python3(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** A port free on 127.0.0.1 a moment ago (the bench's probe). */
export { freePort };

/** n consecutive ports on 127.0.0.1 that were all free a moment ago (the bench's probe). */
export async function freePorts(n: number): Promise<number> {
  const base = await freePortRange(n);
  if (base === 0) throw new Error(`found no ${n} consecutive free ports on 127.0.0.1`);
  return base;
}

/** Wait until something accepts on 127.0.0.1:port; fails early if the server exits. */
export async function waitListening(port: number, server: Proc, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      const done = (v: boolean) => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(1000, () => done(false));
      s.on('connect', () => done(true));
      s.on('error', () => done(false));
    });
    if (ok) return;
    const exited = await Promise.race([server.exited.then(() => true), sleep(0).then(() => false)]);
    if (exited) throw new Error(`${server.name} exited before listening on ${port}:\n${server.stderr}`);
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms:\n${server.stderr}`);
    await sleep(50);
  }
}

/** The connections whose ends include a socket on this port (either side). */
export function connectionsOnPort(s: PdStatus, port: number): PdConnection[] {
  const suffix = `:${port}`;
  return s.connections.filter((c) => c.ends.some((e) => e.local.endsWith(suffix) || e.peer.endsWith(suffix)));
}

/** Wait (bounded) until every connection to the server port is on the ring, at least n of them. */
export async function expectOnRing(sock: string, port: number, n: number, timeoutMs = 5000): Promise<PdConnection[]> {
  const ok = (s: PdStatus) => {
    const cs = connectionsOnPort(s, port);
    return cs.length >= n && cs.every((c) => c.transport === 'ring');
  };
  const s = await pdStatusUntil(sock, ok, timeoutMs);
  const cs = connectionsOnPort(s, port);
  expect(cs.length, `connections to port ${port} in pd status:\n${JSON.stringify(s.connections, null, 1)}`).toBeGreaterThanOrEqual(n);
  for (const c of cs) expect(c.transport, `connection ${c.id} (${JSON.stringify(c.ends)}): ${c.reason ?? ''}`).toBe('ring');
  return cs;
}

/** Wait (bounded) until the controller has given a connection to port a slot:
 * each end takes it at its next call on that connection, so what a program
 * held at a gate sends after the gate goes by the ring (from its next
 * message on: the first after the gate may still wake its idle peer by TCP). */
export async function expectAssigned(sock: string, port: number, timeoutMs = 10_000): Promise<PdConnection> {
  const find = (s: PdStatus) => connectionsOnPort(s, port).find((c) => c.state === 'assigned' || c.state === 'upgraded');
  const s = await pdStatusUntil(sock, (x) => find(x) !== undefined, timeoutMs);
  const c = find(s);
  expect(c, `no connection to port ${port} was assigned a slot:\n${JSON.stringify(connectionsOnPort(s, port), null, 1)}`).toBeDefined();
  return c!;
}

/** The connection whose end has this local address, on the ring, once it is. */
export async function expectConnOnRing(sock: string, local: string, timeoutMs = 5000): Promise<PdConnection> {
  const s = await pdStatusUntil(sock, (x) => findConnection(x, local)?.transport === 'ring', timeoutMs);
  const c = findConnection(s, local);
  expect(c, `no connection with end ${local} in pd status:\n${JSON.stringify(s.connections, null, 1)}`).toBeDefined();
  expect(c!.transport, `${JSON.stringify(c)}`).toBe('ring');
  return c!;
}

/** While an upgraded connection is held open: `ss -tin` must show both of its
 * kernel sockets, each having sent (bytes_acked) and received far fewer bytes
 * than the rings moved, beyond `allowance` (what the test let go by TCP before
 * its gate). Returns the two sockets as ss shows them. */
export function expectKernelIdle(conn: PdConnection, moved: number, netns: { client?: string; server?: string } = {}, allowance = 0): { client: TcpInfo; server: TcpInfo } {
  const c = conn.ends.find((e) => e.role === 0);
  expect(c, `no connecting end in ${JSON.stringify(conn)}`).toBeDefined();
  const { client, server } = ssEnds(c!.local, c!.peer, netns);
  expect(client, `ss -tin shows no socket ${c!.local} -> ${c!.peer}`).toBeDefined();
  expect(server, `ss -tin shows no socket ${c!.peer} -> ${c!.local}`).toBeDefined();
  const most = allowance + moved / 10;
  for (const k of [client!, server!]) {
    expect(k.bytesAcked, `kernel TCP carried more than ${allowance} B before the gate + a tenth of the ${moved} B the rings moved:\n${k.raw}`).toBeLessThan(most);
    expect(k.bytesReceived, `kernel TCP carried more than ${allowance} B before the gate + a tenth of the ${moved} B the rings moved:\n${k.raw}`).toBeLessThan(most);
  }
  console.log(`kernel TCP of ${c!.local} -> ${c!.peer}: client acked ${client!.bytesAcked} B, server acked ${server!.bytesAcked} B; rings ${conn.ringBytes.join(' B up, ')} B down`);
  return { client: client!, server: server! };
}

/** Bytes a socket sent by TCP, not counting retransmissions. */
export const tcpSent = (k: TcpInfo): number => k.bytesSent - k.bytesRetrans;

/** Stop reading p's stdout once it has printed n bytes (at once when it has):
 * the program then blocks writing beyond what the pipe holds, and holds its
 * connections open. `p.child.stdout.resume()` lets it go on. */
export function stopReadingAt(p: Proc, n: number): void {
  const out = p.child.stdout!;
  if (p.stdout.length >= n) {
    out.pause();
    return;
  }
  const check = () => {
    if (p.stdout.length < n) return;
    out.off('data', check);
    out.pause();
  };
  out.on('data', check);
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A named pipe: a program that opens it blocks until the test opens the other end. */
export function mkfifo(file: string): void {
  const r = spawnSync('mkfifo', [file], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) throw new Error(`mkfifo ${file} failed: ${r.stderr || String(r.error)}`);
}

/** Everything a program writes into the FIFO, up to its close. */
export function readFifo(file: string): Promise<Buffer> {
  return readFile(file);
}

export { pdStatus };
