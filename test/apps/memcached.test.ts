// Checks: memcached and libmemcached's own clients, all under pdrun: memccp stores random values of 1 B to 3 MiB and memccat reads them back byte-exact; after a gate each client's values go by the ring, checked (with the kernel socket idle) while the client holds its connection open.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { setupPdTest } from '../helpers/lifecycle.js';
import { pdStatusUntil, type PdConnection, type PdStatus } from '../helpers/pd.js';
import { spawnProc } from '../helpers/proc.js';
import { connectionsOnPort, expectAssigned, expectKernelIdle, freePort, mkfifo, requireCommand, stopReadingAt, tcpSent, waitListening } from './app-helpers.js';

const pd = setupPdTest();
const SIZES: Record<string, number> = { v1: 1, v1k: 1024, v100k: 100 * 1024, v3m: 3 << 20, held: 300_000 };
// memccp stores them in this order. v1k and held are FIFOs: memccp blocks
// opening v1k (the gate: its connection exists, the controller assigns it a
// slot) and held (its connection held open after v100k and v3m went by).
const SET_ORDER = ['v1', 'v1k', 'v100k', 'v3m', 'held'];
const SET_FIFOS = ['v1k', 'held'];
// memccat prints them in this order; the test stops reading its stdout at
// first (the gate: it blocks printing v3m), then before the last v3m (held:
// blocked printing it, after every value came in).
const GET_ORDER = ['v1', 'v3m', 'v1k', 'v100k', 'held', 'v3m'];

// the text protocol as libmemcached and memcached speak it
const setCmd = (k: string) => `set ${k} 0 0 ${SIZES[k]}\r\n`.length + SIZES[k]! + 2;
const getCmd = (k: string) => `get ${k}\r\n`.length;
const getReply = (k: string) => `VALUE ${k} 0 ${SIZES[k]}\r\n`.length + SIZES[k]! + '\r\nEND\r\n'.length;
const sum = (ks: string[], f: (k: string) => number) => ks.reduce((a, k) => a + f(k), 0);

/** Once a connection to port is on the ring and carried `bytes` in direction d
 * (the client holds it open): its kernel socket is idle beyond what went
 * before the gate (`allowance`), and per direction, TCP bytes + ring bytes are
 * exactly what the two programs sent: [client, server]. */
async function heldOnRing(port: number, d: 0 | 1, bytes: number, allowance: number, sent: [number, number], who: string): Promise<PdConnection> {
  const find = (s: PdStatus) => connectionsOnPort(s, port).find((c) => c.transport === 'ring' && c.ringBytes[d] >= bytes);
  const s = await pdStatusUntil(pd().sock, (x) => find(x) !== undefined, 20_000);
  const conn = find(s);
  expect(conn, `${who}: no connection to ${port} on the ring with ${bytes} B in direction ${d}:\n${JSON.stringify(connectionsOnPort(s, port), null, 1)}`).toBeDefined();
  const k = expectKernelIdle(conn!, conn!.ringBytes[0] + conn!.ringBytes[1], {}, allowance);
  expect(tcpSent(k.client) + conn!.ringBytes[0], `${who}: client's TCP + ring bytes, ${k.client.raw}`).toBe(sent[0]);
  expect(tcpSent(k.server) + conn!.ringBytes[1], `${who}: server's TCP + ring bytes, ${k.server.raw}`).toBe(sent[1]);
  return conn!;
}

it('stores and reads back every value byte-exact, over the ring', async () => {
  requireCommand('memcached', 'memcached');
  requireCommand('memccp', 'libmemcached-tools');
  requireCommand('memccat', 'libmemcached-tools');
  const opts = { pdrun: true, env: pd().env };
  const port = await freePort();
  const root = process.getuid?.() === 0 ? ['-u', 'root'] : [];
  const server = spawnProc('memcached', ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-t', '1', '-m', '64', '-I', '4m', ...root], { ...opts, name: 'pdrun memcached' });
  await waitListening(port, server);
  const servers = `--servers=127.0.0.1:${port}`;
  const values = new Map(Object.entries(SIZES).map(([k, n]) => [k, randomBytes(n)]));
  const file = (k: string) => path.join(pd().dir, k);

  // set: memccp (its key is the file's name)
  for (const k of SET_ORDER) (SET_FIFOS.includes(k) ? mkfifo : (f: string) => writeFileSync(f, values.get(k)!))(file(k));
  const cp = spawnProc('memccp', [servers, ...SET_ORDER.map(file)], { ...opts, name: 'pdrun memccp' });
  await expectAssigned(pd().sock, port);
  await writeFile(file('v1k'), values.get('v1k')!);
  const setBytes = SIZES.v100k! + SIZES.v3m!;
  const stored = SET_ORDER.slice(0, 4);
  const set = await heldOnRing(port, 0, setBytes, sum(['v1', 'v1k'], setCmd), [sum(stored, setCmd), stored.length * 'STORED\r\n'.length], 'memccp');
  await writeFile(file('held'), values.get('held')!);
  await cp.waitOk(30_000);
  expect(cp.stderr, 'memccp complained').toBe('');
  await pdStatusUntil(pd().sock, (x) => connectionsOnPort(x, port).length === 0, 5_000);

  // get: memccat, one value per line
  const cat = spawnProc('memccat', [servers, ...GET_ORDER], { ...opts, name: 'pdrun memccat' });
  cat.child.stdout!.setEncoding('latin1'); // one char per byte
  stopReadingAt(cat, 0);
  await expectAssigned(pd().sock, port);
  const expected = Buffer.concat(GET_ORDER.flatMap((k) => [values.get(k)!, Buffer.from('\n')]));
  stopReadingAt(cat, expected.length - SIZES.v3m! - 1);
  cat.child.stdout!.resume();
  const getBytes = GET_ORDER.slice(2).reduce((a, k) => a + SIZES[k]!, 0);
  const get = await heldOnRing(port, 1, getBytes, sum(['v1', 'v3m'], getReply) + getCmd('v1k'), [sum(GET_ORDER, getCmd), sum(GET_ORDER, getReply)], 'memccat');
  cat.child.stdout!.resume();
  await cat.waitOk(30_000);
  const got = Buffer.from(cat.stdout, 'latin1');
  let at = 0;
  for (const k of GET_ORDER) {
    const v = values.get(k)!;
    expect(got.subarray(at, at + v.length).equals(v), `value ${k} (${v.length} B) at offset ${at} as memccat printed it`).toBe(true);
    at += v.length + 1;
  }
  expect(got.equals(expected), `memccat printed ${got.length} B, want ${expected.length}`).toBe(true);
  console.log(`memccp: ${set.ringBytes[0]} B by the ring (${setBytes} B of values after the gate); memccat: ${get.ringBytes[1]} B by the ring (${getBytes} B after the gate)`);
  server.kill('SIGTERM');
  await server.wait(20_000);
});
