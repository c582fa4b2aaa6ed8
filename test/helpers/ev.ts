// The event-loop programs (test/progs/ev_server.c, ev_client.c, idle_wait.c)
// as test building blocks, and the sanitizer preload environments.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';
import { ROOT, PROGS_BIN, SHIM_ASAN } from './paths.js';
import type { PdStatus, PdConnection } from './pd.js';
import { parseJsonLine, spawnProc, type Proc, type SpawnOptions } from './proc.js';

export const EV_SERVER = path.join(PROGS_BIN, 'ev_server');
export const EV_CLIENT = path.join(PROGS_BIN, 'ev_client');
export const IDLE_WAIT = path.join(PROGS_BIN, 'idle_wait');
export const SHIM_TSAN = path.join(ROOT, 'preload', 'libpd-tsan.so');

export type ServerMode = 'epoll-lt' | 'epoll-et' | 'epoll-oneshot' | 'epoll-pwait' | 'poll' | 'ppoll' | 'select';
export type ClientMode = 'epoll-lt' | 'epoll-et' | 'poll' | 'select';

export interface EvResult {
  ok: boolean;
  mode: ClientMode;
  conns: number;
  bytes: number;
  total: number;
  rounds: number;
  seconds: number;
  peer: string;
  locals: string[];
}

export interface EvServer {
  proc: Proc;
  port: number;
  addr: string;
}

export async function startEvServer(mode: ServerMode, args: string[], opts: SpawnOptions = {}): Promise<EvServer> {
  const proc = spawnProc(EV_SERVER, ['--mode', mode, ...args], {
    name: `${opts.pdrun ? 'pdrun ' : ''}ev_server ${mode}`,
    ...opts,
  });
  const m = await proc.waitStdout(/^port (\d+)\n/, 20_000);
  const port = Number(m[1]);
  return { proc, port, addr: `127.0.0.1:${port}` };
}

/** Rounds per connection: the first is mostly sent before the connection is
 * upgraded (setup stays plain TCP, so a burst right after connect() fills the
 * kernel buffers first); the later ones start after a full echo came back and
 * run on a connection both ends have attached, so both directions switch. */
export const ROUNDS = 4;

/** Start an ev_client with --hold and wait for its JSON line: every echo is
 * verified and the connections are still open. Close its stdin to finish. */
export async function holdEvClient(
  server: EvServer,
  mode: ClientMode,
  conns: number,
  bytes: number,
  seed: number,
  opts: SpawnOptions = {},
  timeoutMs = 60_000,
  rounds = ROUNDS,
): Promise<{ proc: Proc; result: EvResult }> {
  const proc = spawnProc(
    EV_CLIENT,
    [mode, '127.0.0.1', String(server.port), String(conns), String(bytes), '--seed', String(seed), '--hold',
      '--rounds', String(rounds), '--timeout', String(Math.ceil(timeoutMs / 1000) + 30)],
    { name: `${opts.pdrun ? 'pdrun ' : ''}ev_client ${mode}`, stdinPipe: true, ...opts },
  );
  await proc.waitStdout(/^\{.*\}\n/, timeoutMs);
  const result = parseJsonLine<EvResult>(proc.stdout, proc.name);
  return { proc, result };
}

/** Let a held client shut its connections down; it must see EOF after the last byte on each and exit 0. */
export async function releaseEvClient(proc: Proc, timeoutMs = 30_000): Promise<string> {
  proc.closeStdin();
  const r = await proc.waitOk(timeoutMs);
  return r.stderr;
}

/** The connection whose client end is `local` (ends[].local or ends[].peer). */
export function connOf(s: PdStatus, local: string): PdConnection | undefined {
  return s.connections.find((c) => c.ends.some((e) => e.local === local || e.peer === local));
}

/** Every client connection is on the ring, attached and switched both ways,
 * with ring bytes in both directions. */
export function allOnRing(s: PdStatus, locals: string[]): boolean {
  return locals.every((l) => {
    const c = connOf(s, l);
    return (
      c?.transport === 'ring' &&
      c.switched[0] && c.switched[1] &&
      c.ringBytes[0] > 0 && c.ringBytes[1] > 0
    );
  });
}

/** Assert allOnRing with a message that shows each connection's entry. */
export function expectAllOnRing(s: PdStatus, locals: string[], what: string): void {
  const lines = locals.map((l) => {
    const c = connOf(s, l);
    return c
      ? `${l}: ${c.transport} state=${c.state} attached=${JSON.stringify(c.attached)} switched=${JSON.stringify(c.switched)} ringBytes=${JSON.stringify(c.ringBytes)}${c.reason ? ` (${c.reason})` : ''}; reported by ${c.ends.map((e) => `pid ${e.pid} ${e.local}->${e.peer}`).join(', ')}`
      : `${l}: not in pd status`;
  });
  const sessions = JSON.stringify(s.sessions);
  expect(allOnRing(s, locals), `${what}: not every connection is on the ring both ways:\n${lines.join('\n')}\nsessions: ${sessions}`).toBe(true);
}

export const SANITIZER_REPORT =
  /ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer/;
export const TSAN_REPORT = /WARNING: ThreadSanitizer|ThreadSanitizer: |FATAL: ThreadSanitizer/;

/** The sanitizer runtime gcc links against (absolute path), or throws. */
export function gccRuntime(name: 'libasan.so' | 'libtsan.so'): string {
  const p = spawnSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' }).stdout.trim();
  if (!p.startsWith('/')) throw new Error(`cannot find ${name} (gcc says ${p})`);
  return p;
}

/** Build one shim variant with make, or throw with make's output. */
export function makeShim(target: string): void {
  const mk = spawnSync('make', ['-s', target], { cwd: ROOT, encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`make ${target} failed:\n${mk.stdout}${mk.stderr}`);
}

/** pdrun environment for the ASan/UBSan shim: the runtime first in LD_PRELOAD, pdrun appends PD_PRELOAD. */
export function asanEnv(): Record<string, string> {
  return {
    LD_PRELOAD: gccRuntime('libasan.so'),
    PD_PRELOAD: SHIM_ASAN,
    ASAN_OPTIONS: 'detect_leaks=0:halt_on_error=1:abort_on_error=0',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  };
}
