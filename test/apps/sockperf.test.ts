// Checks: sockperf ping-pong over TCP (16 B, epoll on both ends), server and client under pdrun, completes with round-trip statistics and its connection on the ring.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { setupPdTest } from '../helpers/lifecycle.js';
import { watchTransports } from '../helpers/pd.js';
import { spawnProc } from '../helpers/proc.js';
import { freePort, requireCommand } from './app-helpers.js';

const pd = setupPdTest();

it('completes a ping-pong run on the ring', async () => {
  requireCommand('sockperf', 'sockperf');
  const opts = { pdrun: true, env: pd().env };
  const port = await freePort();
  // a feed file makes both ends use epoll (sockperf resolves epoll_* by dlsym)
  const feed = path.join(pd().dir, 'feed');
  writeFileSync(feed, `T:127.0.0.1:${port}\n`);
  const server = spawnProc('sockperf', ['server', '-f', feed, '-F', 'e'], { ...opts, name: 'pdrun sockperf server' });
  await server.waitStdout(/using epoll\(\) to block/, 20_000);
  const watch = watchTransports(pd().sock);
  // --mps: sockperf sizes its sequence array from it; its default overflows at a ring's rate
  const client = spawnProc('sockperf', ['ping-pong', '-f', feed, '-F', 'e', '-t', '1', '-m', '16', '--mps', '10000000', '--full-rtt'], { ...opts, name: 'pdrun sockperf ping-pong' });
  const r = await client.waitOk(60_000);
  const seen = await watch.stop();
  const out = `${r.stdout}\n${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
  const p50 = Number(out.match(/percentile 50\.000 =\s*([\d.]+)/)?.[1]);
  const received = Number(out.match(/\[Valid Duration\][^\n]*ReceivedMessages=(\d+)/)?.[1]);
  console.log(`sockperf ping-pong under pdrun: p50 RTT ${p50} us, ${received} round trips; connections seen: ${JSON.stringify(seen)}`);
  expect(out).not.toMatch(/ERROR/);
  expect(p50, out).toBeGreaterThan(0);
  expect(received, out).toBeGreaterThan(0);
  expect(seen.ring, `connections seen on the ring (${seen.samples} status samples)`).toBeGreaterThanOrEqual(1);
  server.kill('SIGTERM');
  await server.wait(20_000);
});
