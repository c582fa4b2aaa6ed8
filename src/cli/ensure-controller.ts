// pdrun's half of the controller lifecycle: use the controller that answers at
// the socket, or start one on demand (detached, idle-exiting) and wait for it.
// The connection that proved it alive is kept open by pdrun for the child's
// whole life, so an idle-exiting controller stays up while the program runs.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { probeController } from '../control/client.js';
import { errorMessage } from '../control/errors.js';
import { makeDirs } from '../control/fsutil.js';
import { packageRoot } from '../control/options.js';
import { logFilePath } from '../control/paths.js';

export type Ensured =
  | { readonly ok: true; readonly fd: number; readonly started: boolean }
  | { readonly ok: false; readonly reason: string };

const START_TIMEOUT_MS = 3000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function lastLine(path: string): string {
  try {
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    return lines[lines.length - 1] ?? '';
  } catch {
    return '';
  }
}

/** The controller's environment: ours, minus any pipedevice shim (under a nested pdrun). */
export function controllerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  const kept = (env.LD_PRELOAD ?? '').split(/[\s:]+/).filter((p) => p !== '' && !isShim(p));
  if (kept.length > 0) out.LD_PRELOAD = kept.join(' ');
  else delete out.LD_PRELOAD;
  delete out.PD_NO_CONTROLLER;
  return out;
}

export function isShim(path: string): boolean {
  return /(^|\/)libpd(-[a-z]+)?\.so$/.test(path);
}

export async function ensureController(socketPath: string, idleExit: number): Promise<Ensured> {
  const first = probeController(socketPath);
  if (first.alive) return { ok: true, fd: first.fd, started: false };

  const dir = dirname(socketPath);
  try {
    makeDirs(dir, 0o700);
  } catch (e) {
    return { ok: false, reason: `cannot create ${dir}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}` };
  }
  const logPath = logFilePath(socketPath);
  let logFd: number | 'ignore' = 'ignore';
  try {
    logFd = openSync(logPath, 'a', 0o600);
  } catch {
    /* no log then */
  }
  const state: { exited: string | null } = { exited: null };
  const startedAt = Date.now();
  try {
    const child = spawn(process.execPath, [
      join(packageRoot(), 'dist', 'cli', 'pd.js'), 'controller', '--socket', socketPath, '--idle-exit', String(idleExit),
    ], { detached: true, stdio: ['ignore', 'ignore', logFd], env: controllerEnv(process.env) });
    child.on('error', (e) => (state.exited = errorMessage(e)));
    child.on('exit', (code, sig) => (state.exited = sig ? `killed by ${sig}` : `exit code ${code}`));
    child.unref();
  } catch (e) {
    return { ok: false, reason: `cannot start the controller: ${errorMessage(e)}` };
  } finally {
    if (typeof logFd === 'number') closeSync(logFd);
  }

  const deadline = startedAt + START_TIMEOUT_MS;
  let last = first.reason;
  for (let step = 5; ; step = Math.min(step * 2, 50)) {
    await sleep(step);
    const p = probeController(socketPath);
    if (p.alive) return { ok: true, fd: p.fd, started: true };
    last = p.reason;
    // Our controller gave up: maybe because another one won the race; keep
    // probing a little, then report what it said.
    if (state.exited !== null && Date.now() - startedAt > 500) {
      const said = lastLine(logPath);
      return { ok: false, reason: `the controller exited (${state.exited})${said ? `: ${said}` : ''}` };
    }
    if (Date.now() > deadline) {
      return { ok: false, reason: `the controller did not answer within ${START_TIMEOUT_MS / 1000} s (${last}); see ${logPath}` };
    }
  }
}
