// The `pd bench` subcommand: its flags, checked, then run.ts.
import type { Command } from 'commander';
import { BenchError } from './errors.js';
import { listScenarios, reportFromJson, runBench, type BenchOptions } from './run.js';
import { VARIANTS, type VariantId } from './types.js';

function parseOptions(flags: Record<string, unknown>): BenchOptions {
  const reps = Number(flags.reps ?? 3);
  if (!Number.isInteger(reps) || reps < 1 || reps > 100) throw new BenchError('PD_E_BENCH_USAGE', `--reps takes an integer from 1 to 100, not ${String(flags.reps)}`);
  let variants: VariantId[] | undefined;
  if (typeof flags.variants === 'string') {
    variants = flags.variants.split(',').map((v) => v.trim()) as VariantId[];
    const bad = variants.filter((v) => !(v in VARIANTS));
    if (bad.length) throw new BenchError('PD_E_BENCH_USAGE', `--variants: unknown ${bad.join(', ')}; choose from ${Object.keys(VARIANTS).join(', ')}`);
  }
  return { reps, json: typeof flags.json === 'string' ? flags.json : undefined, quick: flags.quick === true, variants };
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('A/B of real applications in one run: kernel TCP (A), under pdrun (B), Unix sockets (C); `pd bench list` shows the scenarios')
    .argument('<scenario>', 'redis, latency, throughput, connect-rate, nginx, memcached, allreduce, containers, echo, all, or a comma-separated list; `list`; `report FILE.json` re-renders an earlier run')
    .argument('[file]', 'for `report`: the JSON of an earlier run')
    .option('--reps <n>', 'repetitions (each runs every variant once, alternating)', '3')
    .option('--json <file>', 'write the JSON here (default bench/results/<scenario>-<date>.json; the SVG goes next to it)')
    .option('--quick', 'short runs: a smoke test, not a measurement')
    .option('--variants <list>', `only these variants (${Object.keys(VARIANTS).join(',')})`)
    .action(async (scenario: string, file: string | undefined, flags: Record<string, unknown>) => {
      try {
        if (scenario === 'list') {
          process.stdout.write(listScenarios());
          return;
        }
        if (scenario === 'report') {
          if (!file) throw new BenchError('PD_E_BENCH_USAGE', 'pd bench report needs the JSON file of a run');
          process.exitCode = reportFromJson(file);
          return;
        }
        if (file) throw new BenchError('PD_E_BENCH_USAGE', `unexpected argument '${file}'`);
        process.exitCode = await runBench(scenario, parseOptions(flags));
      } catch (e) {
        process.stderr.write(`pd bench: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = e instanceof BenchError && e.code === 'PD_E_BENCH_USAGE' ? 2 : 1;
      }
    });
}
