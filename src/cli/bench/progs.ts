// The bench's own C programs (bench/progs/*.c), compiled with cc on first use
// into bench/progs/bin/, again whenever the source is newer than the binary.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { BenchError } from './errors.js';
import { PROGS_BIN, PROGS_SRC } from './paths.js';

const built = new Map<string, string>();

export function benchProg(name: string): string {
  const done = built.get(name);
  if (done) return done;
  const src = path.join(PROGS_SRC, `${name}.c`);
  const bin = path.join(PROGS_BIN, name);
  if (!existsSync(src)) throw new BenchError('PD_E_BENCH_BUILD', `no source ${src}`);
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(PROGS_BIN, { recursive: true });
    const tmp = `${bin}.${process.pid}.tmp`;
    const cc = process.env.CC || 'cc';
    const r = spawnSync(cc, ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', tmp, src, '-lm'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (r.status !== 0) {
      throw new BenchError('PD_E_BENCH_BUILD', `${cc} ${src} failed (install gcc: apt-get install -y gcc):\n${r.stderr || String(r.error)}`);
    }
    renameSync(tmp, bin);
  }
  built.set(name, bin);
  return bin;
}
