// throughput: iperf3, 64 KiB writes, one stream and four (-P 4), to a one-off
// server on 127.0.0.1. GB/s is what the receiver got (end.sum_received).
import { BenchError } from '../errors.js';
import { freePort } from '../net.js';
import type { Case, CaseResult, RunContext, Scenario } from '../types.js';

const seconds = (quick: boolean) => (quick ? 1 : 5);

interface IperfJson {
  error?: string;
  end?: { sum_received?: { bytes: number; seconds: number }; sum_sent?: { bytes: number; seconds: number } };
}

export function parseIperf(out: string): { bytes: number; seconds: number } {
  let doc: IperfJson;
  try {
    doc = JSON.parse(out) as IperfJson;
  } catch {
    throw new BenchError('PD_E_BENCH_RUN', `iperf3 -J printed no JSON:\n${out.slice(-2000)}`);
  }
  if (doc.error) throw new BenchError('PD_E_BENCH_RUN', `iperf3: ${doc.error}`);
  const r = doc.end?.sum_received;
  if (!r || !(r.seconds > 0)) throw new BenchError('PD_E_BENCH_RUN', `iperf3 JSON has no end.sum_received:\n${out.slice(-2000)}`);
  return { bytes: r.bytes, seconds: r.seconds };
}

function stream(streams: number): Case {
  const p = streams > 1 ? ['-P', String(streams)] : [];
  return {
    id: streams > 1 ? `streams-${streams}` : 'one-stream',
    title: `iperf3, ${streams > 1 ? `${streams} streams` : 'one stream'}, 64 KiB writes`,
    variants: ['kernel', 'pdrun'],
    metrics: [
      { key: 'gbytes_s', label: 'GB/s received', better: 'higher', target: streams === 1 ? '>= 5x' : undefined },
      { key: 'cpu_s_per_gb', label: 'CPU seconds per GB', better: 'lower', target: '<= 0.25x' },
    ],
    // the data streams; iperf3's control connection may stay small
    expectRing: streams,
    commands: (quick) => ['iperf3 -s -B 127.0.0.1 -p 5201 -1 --forceflush', `iperf3 -c 127.0.0.1 -p 5201 -t ${seconds(quick)} -l 64K ${p.join(' ')} -J`.replace('  ', ' ')],
    async run(ctx: RunContext): Promise<CaseResult> {
      const port = await freePort();
      const server = ctx.launch('iperf3 -s', 'iperf3', ['-s', '-B', '127.0.0.1', '-p', String(port), '-1', '--forceflush']);
      await server.waitOutput(/Server listening on/, 20_000);
      const client = ctx.launch('iperf3 -c', 'iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds(ctx.quick)), '-l', '64K', ...p, '-J']);
      await client.waitOk(seconds(ctx.quick) * 1000 + 60_000);
      await server.waitOk(30_000);
      const r = parseIperf(client.stdout);
      return { metrics: { gbytes_s: r.bytes / r.seconds / 1e9, bytes: r.bytes } };
    },
    derive: (m, cpuS) => ({ cpu_s_per_gb: cpuS / (m.bytes! / 1e9) }),
  };
}

export const throughput: Scenario = {
  id: 'throughput',
  title: 'iperf3 streams',
  needs: { iperf3: 'iperf3' },
  cases: [stream(1), stream(4)],
};
