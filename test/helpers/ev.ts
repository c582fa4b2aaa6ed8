// The event-loop programs (test/progs/ev_server.c, ev_client.c, idle_wait.c)
// as test building blocks, and the sanitizer preload environments.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { ROOT, PROGS_BIN, SHIM_ASAN } from './paths.js';
import { pdStatusUntil, type PdStatus, type PdConnection } from './pd.js';
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
  if (opts.pdrun) expectShimLoaded(proc, 'ev_server');
  const port = Number(m[1]);
  return { proc, port, addr: `127.0.0.1:${port}` };
}

/** A program started under pdrun really maps a pipedevice shim. (ld.so only
 * warns when a preload cannot be loaded, e.g. while libpd.so is being
 * rebuilt, and the program then runs on plain TCP with no session.) */
export function expectShimLoaded(proc: Proc, comm: string): void {
  const libs = mappedLibs(proc.pid, comm);
  expect(
    libs.some((l) => /\/libpd[^/]*\.so$/.test(l)),
    `${proc.name} (${comm}) runs without the pipedevice shim:\n${proc.stderr.slice(-2000)}\nmapped: ${libs.join(' ')}`,
  ).toBe(true);
}

/** Rounds per connection: the first is mostly sent before the connection is
 * upgraded (setup stays plain TCP, so a burst right after connect() fills the
 * kernel buffers first); the later ones start after a full echo came back and
 * run on a connection both ends have attached, so both directions switch
 * (with a gate, holdEvClient makes sure of that before round 2). */
export const ROUNDS = 4;

/** Start an ev_client with --hold and wait for its JSON line: every echo is
 * verified and the connections are still open. Close its stdin to finish.
 * With `gate`, the client stops after its first round (--gate) and `gate`
 * runs with its local addresses before the client is let go on. */
export async function holdEvClient(
  server: EvServer,
  mode: ClientMode,
  conns: number,
  bytes: number,
  seed: number,
  opts: SpawnOptions = {},
  timeoutMs = 60_000,
  rounds = ROUNDS,
  gate?: (locals: string[]) => Promise<void>,
): Promise<{ proc: Proc; result: EvResult }> {
  const proc = spawnProc(
    EV_CLIENT,
    [mode, '127.0.0.1', String(server.port), String(conns), String(bytes), '--seed', String(seed), '--hold',
      '--rounds', String(rounds), '--timeout', String(Math.ceil(timeoutMs / 1000) + 30), ...(gate ? ['--gate'] : [])],
    { name: `${opts.pdrun ? 'pdrun ' : ''}ev_client ${mode}`, stdinPipe: true, ...opts },
  );
  let gateLine = '';
  if (gate) {
    const m = await proc.waitStdout(/^gate (.*)\n/, timeoutMs);
    gateLine = m[0];
    await gate(m[1]!.split(','));
    proc.writeStdin('go\n');
  }
  await proc.waitStdout(/^(gate .*\n)?\{.*\}\n/, timeoutMs);
  if (opts.pdrun) expectShimLoaded(proc, 'ev_client');
  const result = parseJsonLine<EvResult>(proc.stdout.slice(gateLine.length), proc.name);
  return { proc, result };
}

/** A gate for holdEvClient: both ends of every one of the client's
 * connections attach (the controller shows it within timeoutMs) while both
 * programs sit idle in their event loops after the first round, so the rounds
 * after the gate run on the ring both ways whatever the first one took. */
export function attachedGate(sock: string, timeoutMs = 20_000): (locals: string[]) => Promise<void> {
  return async (locals) => {
    const t0 = Date.now();
    const both = (st: PdStatus): number =>
      locals.filter((l) => { const c = connOf(st, l); return !!c && c.attached[0] && c.attached[1]; }).length;
    const st = await pdStatusUntil(sock, (s) => both(s) === locals.length, timeoutMs);
    console.log(`gate: ${both(st)} of ${locals.length} connections attached at both ends after ${Date.now() - t0} ms`);
    expect(both(st), `connections idle in the event loops did not attach at both ends within ${timeoutMs} ms`).toBe(locals.length);
  };
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

/** What to add to a failure message about the upgrade: the tail of the
 * on-demand controller's log (next to its socket) and of the server's stderr. */
export function upgradeContext(sock: string, server?: Proc): string {
  let log = '';
  try {
    log = readFileSync(`${sock}.log`, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    log = '(no controller log)';
  }
  return `\n--- controller log ${sock}.log ---\n${log}${server ? `\n--- ${server.name} stderr ---\n${server.stderr.slice(-2000)}` : ''}`;
}

/** Assert allOnRing with a message that shows each connection's entry. */
export function expectAllOnRing(s: PdStatus, locals: string[], what: string, context = ''): void {
  const lines = locals.map((l) => {
    const c = connOf(s, l);
    return c
      ? `${l}: ${c.transport} state=${c.state} attached=${JSON.stringify(c.attached)} switched=${JSON.stringify(c.switched)} ringBytes=${JSON.stringify(c.ringBytes)}${c.reason ? ` (${c.reason})` : ''}; reported by ${c.ends.map((e) => `pid ${e.pid} ${e.local}->${e.peer}`).join(', ')}`
      : `${l}: not in pd status`;
  });
  const sessions = JSON.stringify(s.sessions);
  expect(allOnRing(s, locals), `${what}: not every connection is on the ring both ways:\n${lines.join('\n')}\nsessions: ${sessions}${context}`).toBe(true);
}

/** For the slow sanitizer builds, where the controller's assignment can take
 * hundreds of ms and an end attaches only at its next call: at least `share`
 * of the connections are upgraded (both ends attached), and ring bytes flowed
 * both ways over them. */
export function mostOnRing(s: PdStatus, locals: string[], share: number): boolean {
  const cs = locals.map((l) => connOf(s, l));
  const ring = cs.filter((c) => c?.transport === 'ring');
  return (
    ring.length >= Math.ceil(share * locals.length) &&
    ring.some((c) => c!.ringBytes[0] > 0) &&
    ring.some((c) => c!.ringBytes[1] > 0)
  );
}

export function expectMostOnRing(s: PdStatus, locals: string[], share: number, what: string): void {
  const lines = locals.map((l) => {
    const c = connOf(s, l);
    return c
      ? `${l}: ${c.transport} state=${c.state} switched=${JSON.stringify(c.switched)} ringBytes=${JSON.stringify(c.ringBytes)}${c.reason ? ` (${c.reason})` : ''}`
      : `${l}: not in pd status`;
  });
  expect(mostOnRing(s, locals, share), `${what}: fewer than ${share * 100}% of the connections are on the ring:\n${lines.join('\n')}`).toBe(true);
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

/** The command line that runs prog with the TSan shim under pdrun: pdrun
 * starts /usr/bin/env (with its ordinary shim, harmless there), which replaces
 * LD_PRELOAD with the TSan shim *first* and the TSan runtime after it. Shim
 * first matters: with libtsan first, the application's blocking calls
 * (epoll_wait, poll, recv, accept...) enter TSan's interceptors, which call the
 * shim inside BLOCK_REAL with interceptors ignored, so the shim's own
 * pthread_mutex_lock calls there are invisible to TSan and every access under
 * those locks is reported as a race (false positives). With the shim first, it
 * runs before TSan's interceptors and calls them as its "real" libc. The TSan
 * runtime is never loaded into pdrun (node) itself. */
export function tsanCommand(prog: string, args: string[]): { cmd: string; args: string[] } {
  return {
    cmd: '/usr/bin/env',
    args: [
      `LD_PRELOAD=${SHIM_TSAN} ${gccRuntime('libtsan.so')}`,
      'TSAN_OPTIONS=halt_on_error=0 second_deadlock_stack=1 history_size=4',
      prog,
      ...args,
    ],
  };
}

/** The shared objects mapped by the descendants of pid (pdrun -> env -> the
 * program) whose command name is comm: proof that a preload really loaded. */
export function mappedLibs(pid: number, comm: string): string[] {
  const libs = new Set<string>();
  const visit = (p: number, depth: number): void => {
    if (depth > 4) return;
    try {
      if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() === comm) {
        for (const line of readFileSync(`/proc/${p}/maps`, 'utf8').split('\n')) {
          const f = line.split(/\s+/)[5];
          if (f && f.includes('.so')) libs.add(f);
        }
      }
      for (const t of readdirSync(`/proc/${p}/task`)) {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/)) {
          if (c) visit(Number(c), depth + 1);
        }
      }
    } catch {
      /* exited meanwhile */
    }
  };
  visit(pid, 0);
  return [...libs];
}
