// One iperf3 test under pdrun (server and client), for the iperf3-*.test.ts files.
import { expect } from 'vitest';
import type { PdEnv } from '../helpers/pd.js';
import { watchTransports } from '../helpers/pd.js';
import { spawnProc } from '../helpers/proc.js';
import { freePort, requireCommand } from './app-helpers.js';

export async function iperf3UnderPdrun(pd: PdEnv, clientArgs: string[], streams: number): Promise<void> {
  requireCommand('iperf3', 'iperf3');
  const opts = { pdrun: true, env: pd.env };
  const port = await freePort();
  const server = spawnProc('iperf3', ['-s', '-B', '127.0.0.1', '-p', String(port), '-1', '--forceflush'], { ...opts, name: 'pdrun iperf3 -s' });
  await server.waitStdout(/Server listening on/, 20_000);
  const watch = watchTransports(pd.sock);
  const client = spawnProc('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', '1', '-l', '64K', '-J', ...clientArgs], { ...opts, name: `pdrun iperf3 -c ${clientArgs.join(' ')}` });
  const r = await client.waitOk(60_000);
  const seen = await watch.stop();
  await server.waitOk(30_000);
  const doc = JSON.parse(r.stdout) as { end: { sum_received: { bytes: number; bits_per_second: number }; sum_sent: { bytes: number } } };
  const rx = doc.end.sum_received;
  console.log(`iperf3 ${clientArgs.join(' ')} under pdrun: ${(rx.bits_per_second / 8e9).toFixed(2)} GB/s, ${rx.bytes} B received; connections seen: ${JSON.stringify(seen)}`);
  expect(rx.bits_per_second).toBeGreaterThan(0);
  expect(rx.bytes).toBeGreaterThan(0);
  // every data stream on the ring (the control connection carries a few hundred bytes and may stay on TCP)
  expect(seen.ring, `connections seen on the ring (${seen.samples} status samples)`).toBeGreaterThanOrEqual(streams);
}
