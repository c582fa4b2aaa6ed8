// Paths of everything the integration tests run, resolved from the repo root.
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PROGS_BIN = path.join(ROOT, 'test', 'progs', 'bin');
export const ECHO_SERVER = path.join(PROGS_BIN, 'echo_server');
export const ECHO_CLIENT = path.join(PROGS_BIN, 'echo_client');
export const PDRUN_JS = path.join(ROOT, 'dist', 'cli', 'pdrun.js');
export const PD_JS = path.join(ROOT, 'dist', 'cli', 'pd.js');
export const SHIM = path.join(ROOT, 'preload', 'libpd.so');
export const SHIM_ASAN = path.join(ROOT, 'preload', 'libpd-asan.so');
