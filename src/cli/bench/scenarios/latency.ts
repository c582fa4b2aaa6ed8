// latency: sockperf ping-pong over TCP, 16 B messages, server and client both
// under pdrun for B (and B0: spinning off). Two cases: epoll on both ends (a
// feed file with -F e, the brief's bar) and sockperf's default (a single
// socket blocks in recvfrom).
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { freePort } from '../net.js';
import type { Case, CaseResult, RunContext, Scenario } from '../types.js';
import { num } from './common.js';

const SIZE = 16;
const seconds = (quick: boolean) => (quick ? 1 : 4);
// sockperf sizes its per-message arrays from --mps (its "max" assumes about
// 1M/s and aborts with "_seqN > m_maxSequenceNo" when a ring does 5M round
// trips/s): give a rate no variant reaches. Memory grows with messages sent
// (~60 B each: ~1.3 GB for 5 s at 0.2 us).
const MPS = '10000000';

export function parseSockperf(out: string): Record<string, number> {
  const clean = out.replace(/\x1b\[[0-9;]*m/g, '');
  return {
    rtt_avg_us: num(clean, /avg-rtt=([\d.]+)/, 'avg-rtt'),
    rtt_p50_us: num(clean, /percentile 50\.000 =\s*([\d.]+)/, 'p50'),
    rtt_p99_us: num(clean, /percentile 99\.000 =\s*([\d.]+)/, 'p99'),
    round_trips: num(clean, /\[Total Run\][^\n]*ReceivedMessages=(\d+)/, 'ReceivedMessages'),
  };
}

function pingpong(id: string, title: string, epoll: boolean, target?: string): Case {
  const args = (port: number, feed: string | null) => (feed ? ['-f', feed, '-F', 'e'] : ['--tcp', '-i', '127.0.0.1', '-p', String(port)]);
  return {
    id,
    title,
    variants: ['kernel', 'pdrun', 'pdrun-nospin'],
    metrics: [
      { key: 'rtt_p50_us', label: `${SIZE} B round trip p50 (us)`, better: 'lower', target },
      { key: 'rtt_avg_us', label: 'round trip mean (us)', better: 'lower' },
      { key: 'rtt_p99_us', label: 'round trip p99 (us)', better: 'lower' },
      { key: 'cpu_us_per_rtt', label: 'CPU us per round trip', better: 'lower' },
    ],
    expectRing: 1,
    commands: (quick) =>
      epoll
        ? [
            `echo T:127.0.0.1:11111 > feed   # TCP; -F e: epoll on both ends`,
            'sockperf server -f feed -F e',
            `sockperf ping-pong -f feed -F e -t ${seconds(quick)} -m ${SIZE} --mps ${MPS} --full-rtt`,
          ]
        : ['sockperf server --tcp -i 127.0.0.1 -p 11111', `sockperf ping-pong --tcp -i 127.0.0.1 -p 11111 -t ${seconds(quick)} -m ${SIZE} --mps ${MPS} --full-rtt`],
    async run(ctx: RunContext): Promise<CaseResult> {
      const port = await freePort();
      let feed: string | null = null;
      if (epoll) {
        feed = path.join(ctx.dir, 'feed');
        writeFileSync(feed, `T:127.0.0.1:${port}\n`);
      }
      const server = ctx.launch('sockperf server', 'sockperf', ['server', ...args(port, feed)]);
      await server.waitOutput(/to block on socket/, 20_000, 'any');
      const client = ctx.launch('sockperf ping-pong', 'sockperf', ['ping-pong', ...args(port, feed), '-t', String(seconds(ctx.quick)), '-m', String(SIZE), '--mps', MPS, '--full-rtt']);
      await client.waitOk(seconds(ctx.quick) * 1000 + 60_000);
      await server.stop();
      return { metrics: parseSockperf(`${client.stdout}\n${client.stderr}`) };
    },
    derive: (m, cpuS) => ({ cpu_us_per_rtt: (cpuS / m.round_trips!) * 1e6 }),
  };
}

export const latency: Scenario = {
  id: 'latency',
  title: 'sockperf ping-pong',
  needs: { sockperf: 'sockperf' },
  cases: [
    pingpong('pingpong-epoll', `sockperf ping-pong, TCP, ${SIZE} B, epoll on both ends`, true, '<= 0.02x (B0: <= 0.75x)'),
    pingpong('pingpong-blocking', `sockperf ping-pong, TCP, ${SIZE} B, blocking recvfrom (sockperf's default)`, false),
  ],
};
