// connect-rate: bench/progs/connect_loop.c, a client that connects, waits for
// the server's close and closes, COUNT times; the server accepts and closes.
// The echo case adds one byte each way before the close, so both ends use
// (and under pdrun report) every connection, as an HTTP/1.0 exchange would.
import path from 'node:path';
import type { Case, CaseResult, RunContext, Scenario } from '../types.js';
import { BenchError } from '../errors.js';

const count = (quick: boolean) => (quick ? 2000 : 20_000);
const limitS = (quick: boolean) => (quick ? 10 : 30);

/** The loop, without or with a 1-byte echo (--echo) before the close. */
function loopCase(echo: boolean): Case {
  const extra = echo ? ['--echo'] : [];
  const flag = echo ? ' --echo' : '';
  return {
    id: echo ? 'connect-echo-close' : 'connect-close',
    title: echo
      ? 'connect, 1-byte echo, close loop (connect_loop --echo): both ends use the connection, so both report it'
      : 'connect/accept/close loop (bench/progs/connect_loop.c), one client',
    variants: ['kernel', 'pdrun', 'unix'],
    metrics: [
      // the brief's bar is the plain loop; the echo case is shown beside it
      { key: 'conns_per_s', label: 'connections/s', better: 'higher', ...(echo ? {} : { target: '>= 0.95x' }) },
      { key: 'cpu_us_per_conn', label: 'CPU us per connection', better: 'lower' },
    ],
    // short-lived: they close before any upgrade could pay; not checked
    expectRing: null,
    commands: (quick) => [`connect_loop server 127.0.0.1:PORT${flag}`, `connect_loop client 127.0.0.1:PORT ${count(quick)}${flag} --seconds ${limitS(quick)}`, '# C: unix:$DIR/cl.sock'],
    async run(ctx: RunContext): Promise<CaseResult> {
      const bin = ctx.prog('connect_loop');
      let addr: string;
      const server =
        ctx.variant.id === 'unix'
          ? ctx.launch('connect_loop server', bin, ['server', (addr = `unix:${path.join(ctx.dir, 'cl.sock')}`), ...extra])
          : ctx.launch('connect_loop server', bin, ['server', '127.0.0.1:0', ...extra]);
      const m = await server.waitOutput(/^(?:port (\d+)|ready)\n/, 20_000);
      if (m[1]) addr = `127.0.0.1:${m[1]}`;
      const client = ctx.launch('connect_loop client', bin, ['client', addr!, String(count(ctx.quick)), ...extra, '--seconds', String(limitS(ctx.quick))]);
      await client.waitOk(limitS(ctx.quick) * 1000 + 60_000);
      await server.stop();
      const line = client.stdout.trim().split('\n').pop() ?? '';
      let r: { ok: boolean; conns: number; per_s: number };
      try {
        r = JSON.parse(line) as typeof r;
      } catch {
        throw new BenchError('PD_E_BENCH_RUN', `connect_loop client printed no JSON:\n${client.describe()}`);
      }
      return { metrics: { conns_per_s: r.per_s, conns: r.conns }, raw: r };
    },
    derive: (m, cpuS) => ({ cpu_us_per_conn: (cpuS / m.conns!) * 1e6 }),
  };
}

export const connectRate: Scenario = {
  id: 'connect-rate',
  title: 'connection setup',
  needs: { cc: 'gcc' },
  cases: [
    loopCase(false),
    loopCase(true),
  ],
};
