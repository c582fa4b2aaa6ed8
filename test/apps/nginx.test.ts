// Checks: nginx (sendfile on, keep-alive) and curl, both under pdrun, serve random files of 1 B to 3 MiB over one keep-alive connection byte-exact (sha256); after a gate the bodies go by the ring, checked while curl holds the connection open, with its kernel socket idle; then wrk under pdrun loads it for 2 s with no error and every connection on the ring.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { parseWrk, prepareNginx } from '../../src/cli/bench/scenarios/nginx.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { pdStatusUntil, watchTransports, type PdStatus } from '../helpers/pd.js';
import { spawnProc } from '../helpers/proc.js';
import { connectionsOnPort, expectAssigned, expectKernelIdle, freePort, mkfifo, readFifo, requireCommand, sha256, waitListening } from './app-helpers.js';

const pd = setupPdTest();
const FILES: [string, number][] = [['f1.bin', 1], ['f1k.bin', 1024], ['f100k.bin', 100 * 1024], ['f3m.bin', 3 << 20]];
const WRK_CONNS = 4;

it('serves files byte-exact over a keep-alive connection on the ring, and wrk load without errors', async () => {
  requireCommand('nginx', 'nginx');
  requireCommand('curl', 'curl');
  requireCommand('wrk', 'wrk');
  const opts = { pdrun: true, env: pd().env };
  const dir = path.join(pd().dir, 'nginx');
  const out = path.join(pd().dir, 'out');
  mkdirSync(out, { recursive: true });
  const port = await freePort();
  // the bench's config: daemon off, one worker, sendfile on, keep-alive, everything under dir
  const conf = prepareNginx(dir, port);
  const bodies = new Map(FILES.map(([name, n]) => [name, randomBytes(n)]));
  for (const [name, b] of bodies) writeFileSync(path.join(dir, 'www', name), b);
  const server = spawnProc('nginx', ['-c', conf, '-p', dir, '-e', path.join(dir, 'error.log')], { ...opts, name: 'pdrun nginx' });
  await waitListening(port, server);

  // curl fetches every file over one connection. The first goes to a FIFO
  // (the gate: curl blocks opening it until the controller assigned the
  // connection a slot), then the others, then the 3 MiB one again into a
  // second FIFO, which holds the connection open for the checks.
  const url = (f: string) => `http://127.0.0.1:${port}/${f}`;
  const [gate, hold] = [path.join(out, 'gate'), path.join(out, 'held')];
  mkfifo(gate);
  mkfifo(hold);
  const args = ['-sS', '--fail', '-w', '%{http_code} %{num_connects}\\n'];
  for (const [name] of FILES) args.push('-o', name === 'f1.bin' ? gate : path.join(out, name), url(name));
  args.push('-o', hold, url('f3m.bin'));
  const curl = spawnProc('curl', args, { ...opts, name: 'pdrun curl' });
  await expectAssigned(pd().sock, port);
  const first = await readFifo(gate);
  const after = FILES.slice(1).reduce((a, [, n]) => a + n, 0);
  const held = (s: PdStatus) => connectionsOnPort(s, port).find((c) => c.transport === 'ring' && c.ringBytes[1] >= after);
  const s = await pdStatusUntil(pd().sock, (x) => held(x) !== undefined, 20_000);
  const conn = held(s);
  expect(conn, `no connection to ${port} on the ring that carried ${after} B:\n${JSON.stringify(connectionsOnPort(s, port), null, 1)}\ncurl: ${curl.stderr}`).toBeDefined();
  // before the switch: the gate's response and the next request went by TCP
  expectKernelIdle(conn!, conn!.ringBytes[0] + conn!.ringBytes[1], {}, 4096);

  const last = await readFifo(hold);
  await curl.waitOk(30_000);
  expect(sha256(first), 'f1.bin as curl received it').toBe(sha256(bodies.get('f1.bin')!));
  for (const [name, b] of [...bodies].slice(1)) expect(sha256(readFileSync(path.join(out, name))), `${name} (${b.length} B) as curl received it`).toBe(sha256(b));
  expect(sha256(last), 'f3m.bin fetched a second time').toBe(sha256(bodies.get('f3m.bin')!));
  const lines = curl.stdout.trim().split('\n').map((l) => l.split(' ').map(Number));
  expect(lines.map((l) => l[0]), curl.stdout).toEqual(Array(FILES.length + 1).fill(200));
  expect(lines.reduce((a, l) => a + l[1]!, 0), `curl opened more than one connection:\n${curl.stdout}`).toBe(1);

  // wrk: WRK_CONNS keep-alive connections for 2 s, every one on the ring (wrk
  // also opens and closes one probe connection first, which carries no byte)
  await pdStatusUntil(pd().sock, (x) => connectionsOnPort(x, port).length === 0, 5_000);
  const watch = watchTransports(pd().sock);
  const wrk = spawnProc('wrk', ['-t', '1', '-c', String(WRK_CONNS), '-d', '2s', url('f1k.bin')], { ...opts, name: 'pdrun wrk' });
  const r = await wrk.waitOk(30_000);
  const seen = await watch.stop();
  const m = parseWrk(r.stdout); // throws on non-2xx/3xx responses
  console.log(`wrk under pdrun: ${m.rps} requests/s, ${m.requests} requests; connections seen ${JSON.stringify(seen)}\n${r.stdout}`);
  const errorLog = () => { try { return readFileSync(path.join(dir, 'error.log'), 'utf8'); } catch { return ''; } };
  expect(r.stdout, `wrk reported socket errors; nginx error.log:\n${errorLog()}`).not.toMatch(/Socket errors/);
  expect(m.requests).toBeGreaterThan(0);
  expect(seen.ring, `wrk connections seen on the ring (${seen.samples} status samples)`).toBeGreaterThanOrEqual(WRK_CONNS);
  server.kill('SIGTERM');
  await server.wait(20_000);
});
