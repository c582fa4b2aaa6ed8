// Checks: redis-server and redis-cli, both under pdrun, once their connection is on the ring (a PING, then a second once a slot is assigned: redis-cli idles on stdin and attaches at its next call on the socket), SET then GET binary values of 1 B to 1 MiB (around the ring size) and read every one back byte-exact.
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { setupPdTest } from '../helpers/lifecycle.js';
import { sleep, spawnProc } from '../helpers/proc.js';
import { expectAssigned, expectOnRing, freePort, requireCommand } from './app-helpers.js';

const pd = setupPdTest();
const SIZES = [1, 15, 16, 1000, 4096, 65535, 65536, 100_000, 262_143, 262_144, 262_145, 524_288, 1 << 20];

const quote = (b: Buffer) => `"${[...b].map((c) => `\\x${c.toString(16).padStart(2, '0')}`).join('')}"`;

it('reads back every value it set, byte-exact, over the ring', async () => {
  requireCommand('redis-server', 'redis-server');
  requireCommand('redis-cli', 'redis-tools');
  const opts = { pdrun: true, env: pd().env };
  const port = await freePort();
  const server = spawnProc('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--logfile', ''], { ...opts, name: 'pdrun redis-server' });
  await server.waitStdout(/Ready to accept connections/, 20_000);

  // redis-cli reads commands from stdin, one per line, on one connection; its
  // raw output (stdout is not a terminal) is "PONG\n", "OK\n", value "\n".
  const cli = spawnProc('redis-cli', ['-p', String(port)], { ...opts, stdinPipe: true, name: 'pdrun redis-cli' });
  cli.child.stdout!.setEncoding('latin1'); // one char per byte: cli.stdout holds the raw bytes
  cli.child.stdin!.write('PING\n');
  await cli.waitStdout(/^PONG\n/, 10_000);
  // redis-cli then blocks reading stdin, not on its socket: it takes the
  // slot the controller assigns at its next call on the connection. The
  // gate: another PING once the slot is assigned, after which both ends are
  // attached (the server already is: it idles in epoll_wait, which attaches).
  await expectAssigned(pd().sock, port);
  cli.child.stdin!.write('PING\n');
  await cli.waitStdout(/^PONG\nPONG\n/, 10_000);
  await expectOnRing(pd().sock, port, 1);

  const values = SIZES.map((n) => randomBytes(n));
  const parts: Buffer[] = [Buffer.from('PONG\nPONG\n')];
  const offsets: number[] = [];
  let at = 10;
  for (const [i, v] of values.entries()) {
    cli.child.stdin!.write(`SET k${i} ${quote(v)}\nGET k${i}\n`);
    parts.push(Buffer.from('OK\n'), v, Buffer.from('\n'));
    offsets.push(at + 3);
    at += 3 + v.length + 1;
  }
  const expected = Buffer.concat(parts);
  const deadline = Date.now() + 60_000;
  while (cli.stdout.length < expected.length && Date.now() < deadline && cli.pid > 0) await sleep(20);
  // still connected: the values went both ways over the ring, not over TCP
  const [conn] = await expectOnRing(pd().sock, port, 1);
  const total = SIZES.reduce((a, b) => a + b, 0);
  expect(conn!.ringBytes[0], `client->server ring bytes ${JSON.stringify(conn)}`).toBeGreaterThan(total);
  expect(conn!.ringBytes[1], `server->client ring bytes ${JSON.stringify(conn)}`).toBeGreaterThan(total);
  cli.closeStdin();
  await cli.waitOk(60_000);
  const got = Buffer.from(cli.stdout, 'latin1');
  for (const [i, v] of values.entries()) {
    const back = got.subarray(offsets[i]!, offsets[i]! + v.length);
    expect(back.equals(v), `value ${i} (${v.length} B) differs from what was set`).toBe(true);
  }
  expect(got.length, 'bytes redis-cli printed').toBe(expected.length);
  expect(got.equals(expected)).toBe(true);
  server.kill('SIGTERM');
  await server.wait(20_000);
});
