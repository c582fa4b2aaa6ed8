// memcached: memaslap (Debian's libmemcached-tools names it memcaslap), one
// thread, 50 connections, its default 90% get / 10% set mix, against
// memcached with one worker thread on 127.0.0.1.
import { freePort } from '../net.js';
import type { CaseResult, RunContext, Scenario } from '../types.js';
import { listening, num } from './common.js';

const CONNS = 50;
const seconds = (quick: boolean) => (quick ? 1 : 5);

export const memcached: Scenario = {
  id: 'memcached',
  title: 'memcached get/set',
  needs: { memcached: 'memcached', memcaslap: 'libmemcached-tools' },
  cases: [
    {
      id: 'memaslap',
      title: `memcached -t 1, memaslap -T 1 -c ${CONNS} (90% get, 10% set)`,
      variants: ['kernel', 'pdrun'],
      metrics: [
        { key: 'tps', label: 'operations/s', better: 'higher' },
        { key: 'cpu_us_per_op', label: 'CPU us per operation', better: 'lower' },
      ],
      expectRing: CONNS,
      commands: (quick) => [
        `memcached -l 127.0.0.1 -p 11211 -U 0 -t 1${process.getuid?.() === 0 ? ' -u root' : ''}`,
        `memcaslap -s 127.0.0.1:11211 -T 1 -c ${CONNS} -t ${seconds(quick)}s`,
      ],
      async run(ctx: RunContext): Promise<CaseResult> {
        const port = await freePort();
        const root = process.getuid?.() === 0 ? ['-u', 'root'] : [];
        const server = ctx.launch('memcached', 'memcached', ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-t', '1', ...root]);
        await listening(server, { host: '127.0.0.1', port });
        const client = ctx.launch('memcaslap', 'memcaslap', ['-s', `127.0.0.1:${port}`, '-T', '1', '-c', String(CONNS), '-t', `${seconds(ctx.quick)}s`]);
        await client.waitOk(seconds(ctx.quick) * 1000 + 60_000);
        await server.stop();
        const out = client.stdout;
        const ops = num(out, /Ops: (\d+)/, 'Ops');
        return { metrics: { tps: num(out, /TPS: (\d+)/, 'TPS'), ops }, raw: out.split('\n').slice(-3).join('\n') };
      },
      derive: (m, cpuS) => ({ cpu_us_per_op: (cpuS / m.ops!) * 1e6 }),
    },
  ],
};
