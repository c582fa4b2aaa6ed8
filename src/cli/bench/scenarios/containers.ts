// containers: two network namespaces joined by a veth pair, as two containers
// on one host would be; the server in one, the client in the other, talking
// over 10.203.0.0/24. The harness creates both namespaces before the first
// run and deletes them after the last (root only). pdrun's controller runs in
// the root namespace and matches the two ends by their (non-loopback) addresses.
import { spawnSync } from 'node:child_process';
import { BenchError } from '../errors.js';
import type { Case, CaseResult, RunContext, Scenario } from '../types.js';
import { parseRedisCsv } from './redis.js';
import { parseIperf } from './throughput.js';

const tag = `${process.pid % 100000}`;
const NS_SERVER = `pdbench-${tag}-srv`;
const NS_CLIENT = `pdbench-${tag}-cli`;
const VETH_S = `pdb${tag}s`;
const VETH_C = `pdb${tag}c`;
const SERVER_IP = '10.203.0.1';
const CLIENT_IP = '10.203.0.2';

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new BenchError('PD_E_BENCH_RUN', `ip ${args.join(' ')} failed: ${r.stderr || String(r.error)}`);
}

/** Network namespaces as containers on one host: `server` joined to each of
 * `clients` by its own veth pair (`${veth}s`/`${veth}c`, then with the client's
 * index), client i on 10.`net`.i.0/24: the server's end .1, the client's .2. */
export interface NetnsSpec {
  server: string;
  clients: string[];
  veth: string;
  net: number;
}

export const serverIp = (spec: NetnsSpec, i: number): string => `10.${spec.net}.${i}.1`;
export const clientIp = (spec: NetnsSpec, i: number): string => `10.${spec.net}.${i}.2`;
const vethNames = (spec: NetnsSpec, i: number): [string, string] => [`${spec.veth}s${i || ''}`, `${spec.veth}c${i || ''}`];

/** Deletes the namespaces (and with them their veths) and any veth left in this namespace; never throws. */
export function deleteNetns(spec: NetnsSpec): void {
  for (const ns of [spec.server, ...spec.clients]) spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
  for (const i of spec.clients.keys()) spawnSync('ip', ['link', 'del', vethNames(spec, i)[0]], { timeout: 10_000, stdio: 'ignore' });
}

/** Creates them (root only); on a failure deletes what it made and throws. */
export function createNetns(spec: NetnsSpec): void {
  try {
    ip(['netns', 'add', spec.server]);
    ip(['-n', spec.server, 'link', 'set', 'lo', 'up']);
    for (const [i, ns] of spec.clients.entries()) {
      const [vs, vc] = vethNames(spec, i);
      ip(['netns', 'add', ns]);
      ip(['link', 'add', vs, 'type', 'veth', 'peer', 'name', vc]);
      ip(['link', 'set', vs, 'netns', spec.server]);
      ip(['link', 'set', vc, 'netns', ns]);
      ip(['-n', spec.server, 'addr', 'add', `${serverIp(spec, i)}/24`, 'dev', vs]);
      ip(['-n', ns, 'addr', 'add', `${clientIp(spec, i)}/24`, 'dev', vc]);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', spec.server, 'link', 'set', vs, 'up']);
      ip(['-n', ns, 'link', 'set', vc, 'up']);
    }
  } catch (e) {
    deleteNetns(spec);
    throw e;
  }
}

const SPEC: NetnsSpec = { server: NS_SERVER, clients: [NS_CLIENT], veth: `pdb${tag}`, net: 203 };

async function setup(log: (m: string) => void): Promise<() => Promise<void>> {
  createNetns(SPEC);
  log(`namespaces ${NS_SERVER} (${SERVER_IP}) and ${NS_CLIENT} (${CLIENT_IP}) joined by veth ${VETH_S}/${VETH_C}`);
  return async () => deleteNetns(SPEC);
}

const requests = (quick: boolean) => (quick ? 10_000 : 100_000);
const seconds = (quick: boolean) => (quick ? 1 : 5);

const redisCase: Case = {
  id: 'redis-veth',
  title: 'redis-benchmark -t set,get -c 50 from one namespace to redis-server in another (veth)',
  variants: ['kernel', 'pdrun'],
  metrics: [
    { key: 'set_rps', label: 'SET requests/s', better: 'higher' },
    { key: 'get_rps', label: 'GET requests/s', better: 'higher' },
    { key: 'cpu_us_per_req', label: 'CPU us per request', better: 'lower' },
  ],
  expectRing: (quick) => (quick ? 50 : 100),
  commands: (quick) => [
    `ip netns exec ${NS_SERVER.replace(tag, '$ID')} redis-server --bind ${SERVER_IP} --port 6379 --protected-mode no --save '' --appendonly no`,
    `ip netns exec ${NS_CLIENT.replace(tag, '$ID')} redis-benchmark -h ${SERVER_IP} -p 6379 -t set,get -c 50 -n ${requests(quick)} --csv`,
  ],
  async run(ctx: RunContext): Promise<CaseResult> {
    const server = ctx.launch('redis-server', 'redis-server',
      ['--port', '6379', '--bind', SERVER_IP, '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', ctx.dir, '--daemonize', 'no', '--logfile', ''],
      { netns: NS_SERVER });
    await server.waitOutput(/Ready to accept connections/, 20_000);
    const n = requests(ctx.quick);
    const client = ctx.launch('redis-benchmark', 'redis-benchmark',
      ['-h', SERVER_IP, '-p', '6379', '-t', 'set,get', '-c', '50', '-n', String(n), '--csv'], { netns: NS_CLIENT });
    await client.waitOk(ctx.quick ? 60_000 : 300_000);
    await server.stop();
    const rows = parseRedisCsv(client.stdout);
    if (!rows.SET || !rows.GET) throw new BenchError('PD_E_BENCH_RUN', `redis-benchmark printed no SET/GET rows:\n${client.describe()}`);
    return { metrics: { set_rps: rows.SET.rps, get_rps: rows.GET.rps, requests: 2 * n }, raw: rows };
  },
  derive: (m, cpuS) => ({ cpu_us_per_req: (cpuS / m.requests!) * 1e6 }),
};

const iperfCase: Case = {
  id: 'iperf3-veth',
  title: 'iperf3 one stream, 64 KiB writes, between the two namespaces (veth)',
  variants: ['kernel', 'pdrun'],
  metrics: [
    { key: 'gbytes_s', label: 'GB/s received', better: 'higher' },
    { key: 'cpu_s_per_gb', label: 'CPU seconds per GB', better: 'lower' },
  ],
  expectRing: 1,
  commands: (quick) => [
    `ip netns exec ${NS_SERVER.replace(tag, '$ID')} iperf3 -s -B ${SERVER_IP} -p 5201 -1 --forceflush`,
    `ip netns exec ${NS_CLIENT.replace(tag, '$ID')} iperf3 -c ${SERVER_IP} -p 5201 -t ${seconds(quick)} -l 64K -J`,
  ],
  async run(ctx: RunContext): Promise<CaseResult> {
    const server = ctx.launch('iperf3 -s', 'iperf3', ['-s', '-B', SERVER_IP, '-p', '5201', '-1', '--forceflush'], { netns: NS_SERVER });
    await server.waitOutput(/Server listening on/, 20_000);
    const client = ctx.launch('iperf3 -c', 'iperf3', ['-c', SERVER_IP, '-p', '5201', '-t', String(seconds(ctx.quick)), '-l', '64K', '-J'], { netns: NS_CLIENT });
    await client.waitOk(seconds(ctx.quick) * 1000 + 60_000);
    await server.waitOk(30_000);
    const r = parseIperf(client.stdout);
    return { metrics: { gbytes_s: r.bytes / r.seconds / 1e9, bytes: r.bytes } };
  },
  derive: (m, cpuS) => ({ cpu_s_per_gb: cpuS / (m.bytes! / 1e9) }),
};

export const containers: Scenario = {
  id: 'containers',
  title: 'two network namespaces (veth)',
  needs: { ip: 'iproute2', 'redis-server': 'redis-server', 'redis-benchmark': 'redis-tools', iperf3: 'iperf3' },
  root: true,
  setup,
  cases: [redisCase, iperfCase],
};
