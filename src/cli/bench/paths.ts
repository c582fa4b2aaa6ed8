// Where the bench finds its pieces: dist/cli/bench/paths.js -> the package root.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const PDRUN_JS = path.join(ROOT, 'dist', 'cli', 'pdrun.js');
export const PD_JS = path.join(ROOT, 'dist', 'cli', 'pd.js');
export const BENCH_DIR = path.join(ROOT, 'bench');
export const PROGS_SRC = path.join(BENCH_DIR, 'progs');
export const PROGS_BIN = path.join(PROGS_SRC, 'bin');
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');
export const ECHO_AB = path.join(BENCH_DIR, 'echo-ab.mjs');
