// nginx: a 1 KiB static file, sendfile on, one worker, served on 127.0.0.1;
// wrk, one thread, 50 keep-alive connections.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BenchError } from '../errors.js';
import { freePort } from '../net.js';
import type { CaseResult, RunContext, Scenario } from '../types.js';
import { durationMs, listening, num } from './common.js';

const CONNS = 50;
const seconds = (quick: boolean) => (quick ? 1 : 5);

/** A self-contained nginx.conf: everything under dir, listening on 127.0.0.1:port only. */
export function nginxConf(dir: string, port: number): string {
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `# written by pd bench nginx
${user}worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  keepalive_requests 100000000;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  types { application/octet-stream bin; }
  server {
    listen 127.0.0.1:${port};
    root ${dir}/www;
    location / { }
  }
}
`;
}

/** Writes the conf and the 1 KiB file; returns the conf path. */
export function prepareNginx(dir: string, port: number): string {
  mkdirSync(path.join(dir, 'www'), { recursive: true });
  writeFileSync(path.join(dir, 'www', '1k.bin'), Buffer.alloc(1024, 'x'));
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConf(dir, port));
  return conf;
}

export function parseWrk(out: string): Record<string, number> {
  const bad = out.match(/Non-2xx or 3xx responses: (\d+)/);
  if (bad) throw new BenchError('PD_E_BENCH_RUN', `wrk saw ${bad[1]} non-2xx/3xx responses:\n${out}`);
  const errors = out.match(/Socket errors: ([^\n]+)/);
  const pct = (p: string) => {
    const m = out.match(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm'));
    return m ? durationMs(m[1]!) : NaN;
  };
  return {
    rps: num(out, /Requests\/sec:\s+([\d.]+)/, 'Requests/sec'),
    requests: num(out, /(\d+) requests in/, 'request count'),
    p50_ms: pct('50'),
    p99_ms: pct('99'),
    socket_errors: errors ? 1 : 0,
  };
}

export const nginx: Scenario = {
  id: 'nginx',
  title: 'nginx static file',
  needs: { nginx: 'nginx', wrk: 'wrk' },
  cases: [
    {
      id: '1k-keepalive',
      title: `nginx 1 KiB file (sendfile on, 1 worker), wrk -t 1 -c ${CONNS} keep-alive`,
      variants: ['kernel', 'pdrun'],
      metrics: [
        { key: 'rps', label: 'requests/s', better: 'higher', target: '>= 2x' },
        { key: 'p50_ms', label: 'latency p50 (ms)', better: 'lower' },
        { key: 'p99_ms', label: 'latency p99 (ms)', better: 'lower' },
        { key: 'cpu_us_per_req', label: 'CPU us per request', better: 'lower' },
      ],
      expectRing: CONNS,
      commands: (quick) => [
        'nginx -c $DIR/nginx.conf -p $DIR -e $DIR/error.log   # conf: src/cli/bench/scenarios/nginx.ts, listen 127.0.0.1',
        `wrk -t 1 -c ${CONNS} -d ${seconds(quick)}s --latency http://127.0.0.1:PORT/1k.bin`,
      ],
      async run(ctx: RunContext): Promise<CaseResult> {
        const port = await freePort();
        const conf = prepareNginx(ctx.dir, port);
        const server = ctx.launch('nginx', 'nginx', ['-c', conf, '-p', ctx.dir, '-e', path.join(ctx.dir, 'error.log')]);
        await listening(server, { host: '127.0.0.1', port });
        const client = ctx.launch('wrk', 'wrk', ['-t', '1', '-c', String(CONNS), '-d', `${seconds(ctx.quick)}s`, '--latency', `http://127.0.0.1:${port}/1k.bin`]);
        await client.waitOk(seconds(ctx.quick) * 1000 + 60_000);
        await server.stop();
        const m = parseWrk(client.stdout);
        return { metrics: m, raw: client.stdout };
      },
      derive: (m, cpuS) => ({ cpu_us_per_req: (cpuS / m.requests!) * 1e6 }),
    },
  ],
};
