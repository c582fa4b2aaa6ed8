// redis: redis-benchmark SET and GET, 50 clients, no pipelining, against
// redis-server on 127.0.0.1 (A, B) or its Unix socket (C).
import path from 'node:path';
import { BenchError } from '../errors.js';
import { freePort } from '../net.js';
import type { Case, RunContext, Scenario } from '../types.js';

const CLIENTS = 50;
const requests = (quick: boolean) => (quick ? 50_000 : 100_000);

function serverArgs(port: number, sock: string | null, dir: string): string[] {
  return [
    '--port', String(port), '--bind', '127.0.0.1',
    ...(sock ? ['--unixsocket', sock, '--unixsocketperm', '700'] : []),
    '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--logfile', '',
  ];
}

interface CsvRow {
  rps: number;
  avg_ms: number;
  p50_ms: number;
  p99_ms: number;
}

/** redis-benchmark --csv: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms" */
export function parseRedisCsv(out: string): Record<string, CsvRow> {
  const rows: Record<string, CsvRow> = {};
  for (const line of out.split('\n')) {
    const f = line.trim().split(',').map((x) => x.replace(/^"|"$/g, ''));
    if (f.length < 8 || f[0] === 'test') continue;
    rows[f[0]!] = { rps: Number(f[1]), avg_ms: Number(f[2]), p50_ms: Number(f[4]), p99_ms: Number(f[6]) };
  }
  return rows;
}

const setGet: Case = {
  id: 'set-get',
  title: `redis-benchmark -t set,get -c ${CLIENTS}, no pipelining`,
  variants: ['kernel', 'pdrun', 'unix'],
  metrics: [
    { key: 'set_rps', label: 'SET requests/s', better: 'higher', target: '>= 2.5x' },
    { key: 'get_rps', label: 'GET requests/s', better: 'higher', target: '>= 2.5x' },
    { key: 'get_p50_ms', label: 'GET latency p50 (ms)', better: 'lower' },
    { key: 'get_p99_ms', label: 'GET latency p99 (ms)', better: 'lower' },
    { key: 'cpu_us_per_req', label: 'CPU us per request (all processes)', better: 'lower' },
  ],
  expectRing: (quick) => (quick ? CLIENTS : 2 * CLIENTS),
  commands: (quick) => [
    `redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --dir $DIR --daemonize no --logfile ''`,
    `redis-benchmark -h 127.0.0.1 -p 6379 -t set,get -c ${CLIENTS} -n ${requests(quick)} --csv`,
    `# B: both under pdrun; C: redis-server --unixsocket $DIR/redis.sock, redis-benchmark -s $DIR/redis.sock`,
  ],
  async run(ctx: RunContext) {
    const unix = ctx.variant.id === 'unix';
    const port = await freePort();
    const sock = unix ? path.join(ctx.dir, 'redis.sock') : null;
    const server = ctx.launch('redis-server', 'redis-server', serverArgs(port, sock, ctx.dir));
    await server.waitOutput(/Ready to accept connections/, 20_000);
    const n = requests(ctx.quick);
    const target = sock ? ['-s', sock] : ['-h', '127.0.0.1', '-p', String(port)];
    const client = ctx.launch('redis-benchmark', 'redis-benchmark', [...target, '-t', 'set,get', '-c', String(CLIENTS), '-n', String(n), '--csv']);
    await client.waitOk(ctx.quick ? 60_000 : 300_000);
    await server.stop();
    const rows = parseRedisCsv(client.stdout);
    const set = rows.SET, get = rows.GET;
    if (!set || !get) throw new BenchError('PD_E_BENCH_RUN', `redis-benchmark printed no SET/GET rows:\n${client.describe()}`);
    return {
      metrics: { set_rps: set.rps, get_rps: get.rps, get_p50_ms: get.p50_ms, get_p99_ms: get.p99_ms, requests: 2 * n },
      raw: rows,
    };
  },
  derive: (m, cpuS) => ({ cpu_us_per_req: (cpuS / m.requests!) * 1e6 }),
};

export const redis: Scenario = {
  id: 'redis',
  title: 'Redis SET/GET',
  needs: { 'redis-server': 'redis-server', 'redis-benchmark': 'redis-tools' },
  cases: [setGet],
};
