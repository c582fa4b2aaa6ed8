// Small pieces the scenarios share.
import { BenchError } from '../errors.js';
import { waitListening } from '../net.js';
import type { BenchProc } from '../spawn.js';

/** Wait until the server accepts at target; fail at once if it exits first. */
export async function listening(server: BenchProc, target: { host: string; port: number } | { path: string }, timeoutMs = 20_000): Promise<void> {
  await Promise.race([
    waitListening(target, timeoutMs, server.name),
    server.exited.then(() => {
      throw new BenchError('PD_E_BENCH_RUN', `${server.name} exited before it listened\n${server.describe()}`);
    }),
  ]);
}

/** The first capture of re in text as a number; throws with the text when absent. */
export function num(text: string, re: RegExp, what: string): number {
  const m = text.match(re);
  const v = m ? Number(m[1]) : NaN;
  if (!Number.isFinite(v)) throw new BenchError('PD_E_BENCH_RUN', `no ${what} (${re}) in the output:\n${text.slice(-2000)}`);
  return v;
}

/** Milliseconds from a wrk-style duration: 512.00us, 1.23ms, 2.00s. */
export function durationMs(s: string): number {
  const m = s.match(/^([\d.]+)(us|ms|s|m)$/);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60_000;
}
