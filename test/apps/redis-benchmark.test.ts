// Checks: redis-benchmark -t set,get -c 50 -n 20000 against redis-server, both under pdrun, completes with both tests reported, and pd status saw the 50 connections of each test on the ring.
import { expect, it } from 'vitest';
import { setupPdTest } from '../helpers/lifecycle.js';
import { watchTransports } from '../helpers/pd.js';
import { spawnProc } from '../helpers/proc.js';
import { freePort, requireCommand } from './app-helpers.js';

const pd = setupPdTest();

it('completes SET and GET with every benchmark connection on the ring', async () => {
  requireCommand('redis-server', 'redis-server');
  requireCommand('redis-benchmark', 'redis-tools');
  const opts = { pdrun: true, env: pd().env };
  const port = await freePort();
  const server = spawnProc('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--logfile', ''], { ...opts, name: 'pdrun redis-server' });
  await server.waitStdout(/Ready to accept connections/, 20_000);

  const watch = watchTransports(pd().sock);
  const bench = spawnProc('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', 'set,get', '-c', '50', '-n', '20000', '--csv'], { ...opts, name: 'pdrun redis-benchmark' });
  const r = await bench.waitOk(60_000);
  const seen = await watch.stop();

  const rps = (t: string) => Number(r.stdout.match(new RegExp(`^"${t}","([\\d.]+)"`, 'm'))?.[1]);
  expect(rps('SET'), r.stdout).toBeGreaterThan(0);
  expect(rps('GET'), r.stdout).toBeGreaterThan(0);
  console.log(`redis-benchmark under pdrun: SET ${rps('SET')} rps, GET ${rps('GET')} rps; connections seen: ${JSON.stringify(seen)}`);
  // 50 clients for SET, 50 more for GET; redis-benchmark's first CONFIG GET
  // connection is short and may end before it is upgraded
  expect(seen.ring, `connections seen on the ring (status samples: ${seen.samples})`).toBeGreaterThanOrEqual(100);
  server.kill('SIGTERM');
  await server.wait(20_000);
});
