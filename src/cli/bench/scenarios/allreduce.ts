// allreduce: bench/progs/allreduce.c, a ring allreduce of float32 sums across
// 4 processes (reduce-scatter then all-gather, non-blocking sockets and poll),
// as a data-parallel training job on one host does it over TCP. The result is
// verified on every rank.
import { BenchError } from '../errors.js';
import { freePortRange } from '../net.js';
import type { BenchProc } from '../spawn.js';
import type { Case, CaseResult, RunContext, Scenario } from '../types.js';

const RANKS = 4;

function ring(id: string, title: string, floats: number, iters: (quick: boolean) => number, target?: string): Case {
  return {
    id,
    title,
    variants: ['kernel', 'pdrun', 'unix'],
    metrics: [
      { key: 'us_per_op', label: 'time per allreduce (us)', better: 'lower', target },
      { key: 'busbw_gbytes_s', label: 'bus bandwidth (GB/s)', better: 'higher' },
      { key: 'cpu_us_per_op', label: 'CPU us per allreduce (4 ranks)', better: 'lower' },
    ],
    expectRing: RANKS,
    commands: (quick) => [
      `for r in 0 1 2 3; do allreduce --ranks ${RANKS} --rank $r --port 24100 --floats ${floats} --iters ${iters(quick)} & done   # bench/progs/allreduce.c`,
      '# C: --unix $DIR instead of --port',
    ],
    async run(ctx: RunContext): Promise<CaseResult> {
      const bin = ctx.prog('allreduce');
      // RANKS consecutive free ports, each probed by listening on it (a port
      // next to a free one may be another connection's local port)
      const base = ctx.variant.id === 'unix' ? 0 : await freePortRange(RANKS);
      if (ctx.variant.id !== 'unix' && base === 0) {
        throw new BenchError('PD_E_BENCH_RUN', `no ${RANKS} consecutive free ports on 127.0.0.1`);
      }
      const where = ctx.variant.id === 'unix' ? ['--unix', ctx.dir] : ['--port', String(base)];
      const procs: BenchProc[] = [];
      for (let r = RANKS - 1; r >= 0; r--) {
        procs.push(ctx.launch(`allreduce rank ${r}`, bin,
          ['--ranks', String(RANKS), '--rank', String(r), ...where, '--floats', String(floats), '--iters', String(iters(ctx.quick))]));
      }
      await Promise.all(procs.map((p) => p.waitOk(ctx.quick ? 60_000 : 300_000)));
      const rank0 = procs[procs.length - 1]!;
      let r: { ok: boolean; us_per_op: number; busbw_gbytes_s: number; iters: number };
      try {
        r = JSON.parse(rank0.stdout.trim()) as typeof r;
      } catch {
        throw new BenchError('PD_E_BENCH_RUN', `allreduce rank 0 printed no JSON:\n${rank0.describe()}`);
      }
      return { metrics: { us_per_op: r.us_per_op, busbw_gbytes_s: r.busbw_gbytes_s, iters: r.iters }, raw: r };
    },
    derive: (m, cpuS) => ({ cpu_us_per_op: (cpuS / m.iters!) * 1e6 }),
  };
}

export const allreduce: Scenario = {
  id: 'allreduce',
  title: 'ring allreduce, 4 processes',
  needs: { cc: 'gcc' },
  cases: [
    ring('small-4KiB', `ring allreduce of 4 KiB (1024 floats), ${RANKS} processes`, 1024, (q) => (q ? 2000 : 10_000)),
    ring('large-16MiB', `ring allreduce of 16 MiB (4M floats), ${RANKS} processes`, 4 << 20, (q) => (q ? 10 : 30)),
  ],
};
