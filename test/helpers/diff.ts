// Differential behaviour tests (issue 3): a scenario of test/progs/behave.h
// (or behave.py, behave.mjs) runs once on plain kernel TCP and once with both
// ends under pdrun, the connection asserted upgraded before the scenario
// starts; the two traces must be identical, per end, line for line.
//
// The protocol (see behave.h): the server prints "= port N"; the client
// connects, prints "= local ADDR" and "= ready" and warms the connection up
// (1-byte echoes) until it reads "go" on stdin; both run the scenario, print
// their trace and "= end", then wait for stdin EOF. Lines starting with "= "
// are the harness's; every other stdout line is the trace.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'vitest';
import { PROGS_BIN, ROOT } from './paths.js';
import { pdStatusAsync, startController, type PdConnection, type PdEnv, type PdStatus } from './pd.js';
import { sleep, spawnProc, type ExitInfo, type Proc } from './proc.js';

export const BEHAVE = path.join(PROGS_BIN, 'behave');
export const BEHAVE_FORTIFY = path.join(PROGS_BIN, 'behave_fortify');
export const BEHAVE_PY = path.join(ROOT, 'test', 'progs', 'behave.py');
export const BEHAVE_MJS = path.join(ROOT, 'test', 'progs', 'behave.mjs');

export type Program = 'c' | 'c-fortify' | 'python' | 'node';

/** Which directions of the connection the scenario writes (role 0, the
 * connecting end, writes direction 0). */
export type Writes = 'both' | 'c2s' | 's2c' | 'none';

export interface Scenario {
  /** scenario name, as the program knows it */
  name: string;
  /** what it checks, for the test title */
  what: string;
  writes: Writes;
  program?: Program;
  /** per run, for both processes (default 30 s) */
  timeoutMs?: number;
}

export interface RunOptions {
  pdrun: boolean;
  /** instead of pdrun: run both ends with this LD_PRELOAD (a sanitizer
   * runtime and a shim variant) and the test's PD_SOCKET, against a
   * controller the test started (pdrun is a Node program: a sanitizer
   * runtime preloaded into it would be preloaded into Node too) */
  preload?: string;
  /** PdEnv of the test: its PD_SOCKET, for the pdrun run */
  pd?: PdEnv;
  /** environment added to both processes */
  env?: Record<string, string>;
  /** extra pdrun flags */
  pdrunArgs?: string[];
  program?: Program;
  timeoutMs?: number;
}

export interface RunResult {
  /** both processes printed "= end" and exited 0 */
  ok: boolean;
  /** the trace of each end; an end that did not finish gets a last line
   * saying how it ended, so the diff shows it */
  server: string[];
  client: string[];
  serverStderr: string;
  clientStderr: string;
  local: string;
  /** pdrun runs: the connection as the status showed it right before go */
  before?: PdConnection;
  /** pdrun runs: the connection after both printed "= end", if still listed */
  after?: PdConnection;
  ms: number;
}

/** The command of one end; the client reads "port N" from its stdin ("-"). */
function command(program: Program, scen: string, role: 'server' | 'client'): [string, string[]] {
  const tail = role === 'server' ? [scen, 'server'] : [scen, 'client', '-'];
  switch (program) {
    case 'c':
      return [BEHAVE, tail];
    case 'c-fortify':
      return [BEHAVE_FORTIFY, tail];
    case 'python':
      return ['python3', [BEHAVE_PY, ...tail]];
    case 'node':
      return [process.execPath, [BEHAVE_MJS, ...tail]];
  }
}

type FetchStatus = (sock: string, timeoutMs?: number) => Promise<PdStatus>;
let fetchFast: FetchStatus | null | undefined;

/** The controller's status, in process when dist/control/client.js offers it
 * (a few ms), else through `pd status --json`; null when nobody answers. */
export async function statusNow(sock: string): Promise<PdStatus | null> {
  if (fetchFast === undefined) {
    try {
      const mod = (await import(pathToFileURL(path.join(ROOT, 'dist', 'control', 'client.js')).href)) as {
        fetchStatus?: FetchStatus;
      };
      fetchFast = typeof mod.fetchStatus === 'function' ? mod.fetchStatus : null;
    } catch {
      fetchFast = null;
    }
  }
  if (!fetchFast) return pdStatusAsync(sock);
  try {
    return await fetchFast(sock, 3000);
  } catch {
    return null;
  }
}

export function connOfLocal(s: PdStatus | null, local: string): PdConnection | undefined {
  return s?.connections.find((c) => c.ends.some((e) => e.local === local || e.peer === local));
}

function describeConn(c: PdConnection | undefined): string {
  if (!c) return 'not in pd status';
  return `${c.transport} state=${c.state} attached=${JSON.stringify(c.attached)} switched=${JSON.stringify(c.switched)} ringBytes=${JSON.stringify(c.ringBytes)}${c.reason ? ` (${c.reason})` : ''}`;
}

function upgradedBothWays(c: PdConnection | undefined): boolean {
  return !!c && c.transport === 'ring' && c.attached[0] && c.attached[1] && c.switched[0] && c.switched[1] &&
    c.ringBytes[0] > 0 && c.ringBytes[1] > 0;
}

/** The trace: stdout lines that are not the harness's ("= ..."). */
export function traceLines(stdout: string): string[] {
  const lines = stdout.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.filter((l) => !l.startsWith('= '));
}

/** Run one scenario once, on plain TCP or with both ends under pdrun. */
export async function runScenario(scen: string, opts: RunOptions): Promise<RunResult> {
  const program = opts.program ?? 'c';
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const shimmed = opts.pdrun || opts.preload !== undefined;
  const env: Record<string, string> = { ...(opts.pd?.env ?? {}), ...(opts.env ?? {}) };
  if (opts.preload !== undefined) env.LD_PRELOAD = opts.preload;
  const spawnOpts = { pdrun: opts.pdrun && opts.preload === undefined, pdrunArgs: opts.pdrunArgs, env, stdinPipe: true };
  const tag = `${opts.preload !== undefined ? 'preloaded ' : opts.pdrun ? 'pdrun ' : ''}${program} ${scen}`;
  const t0 = Date.now();

  // Both ends start at once (under pdrun, two Node launches that overlap);
  // the client learns the port on its stdin.
  const [scmd, sargs] = command(program, scen, 'server');
  const server = spawnProc(scmd, sargs, { ...spawnOpts, name: `${tag} server` });
  const [ccmd, cargs] = command(program, scen, 'client');
  const client = spawnProc(ccmd, cargs, { ...spawnOpts, name: `${tag} client` });
  const port = Number((await server.waitStdout(/^= port (\d+)$/m, 20_000))[1]);
  client.child.stdin!.write(`port ${port}\n`);
  const local = (await client.waitStdout(/^= local (\S+)\n= ready$/m, 20_000))[1]!;

  let before: PdConnection | undefined;
  if (shimmed) {
    if (!opts.pd) throw new Error('runScenario: a run under the shim needs the test PdEnv');
    // The warm-up echoes 1 byte each way until both ends have attached and
    // sent again, which switches both directions: wait for that, so that
    // every byte of the scenario goes by the ring.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const st = await statusNow(opts.pd.sock);
      before = connOfLocal(st, local);
      if (upgradedBothWays(before)) break;
      if (Date.now() > deadline) {
        server.kill();
        client.kill();
        throw new Error(`${tag}: connection ${local} not upgraded both ways within 15 s of the warm-up: ${describeConn(before)}\n` +
          `status: ${st ? JSON.stringify({ sessions: st.sessions, connections: st.connections }) : 'no answer'}\n` +
          `server stderr:\n${server.stderr}\nclient stderr:\n${client.stderr}`);
      }
      await sleep(10);
    }
  }

  client.child.stdin!.write('go\n');
  const ends = await settleBoth(server, client, timeoutMs);
  let after: PdConnection | undefined;
  if (shimmed) after = connOfLocal(await statusNow(opts.pd!.sock), local);
  server.closeStdin();
  client.closeStdin();
  const [s, c] = await Promise.all([exitOf(server), exitOf(client)]);
  const trace = (p: ExitInfo, finished: boolean): string[] => {
    const t = traceLines(p.stdout);
    if (!finished) t.push(`(ended without finishing the scenario: exit code ${p.code}, signal ${p.signal})`);
    else if (p.code !== 0) t.push(`(exit code ${p.code}, signal ${p.signal})`);
    return t;
  };
  return {
    ok: ends.server && ends.client && s.code === 0 && c.code === 0,
    server: trace(s, ends.server),
    client: trace(c, ends.client),
    serverStderr: s.stderr,
    clientStderr: c.stderr,
    local,
    before,
    after,
    ms: Date.now() - t0,
  };
}

/** Wait until both ends printed "= end". An end that exits or hangs
 * instead (a failing scenario) gives the other 3 s more, then both are
 * killed: which ends finished. */
async function settleBoth(server: Proc, client: Proc, timeoutMs: number): Promise<{ server: boolean; client: boolean }> {
  const procs = { server, client };
  const exited = { server: false, client: false };
  for (const k of ['server', 'client'] as const) void procs[k].exited.then(() => (exited[k] = true));
  const done = (k: 'server' | 'client'): boolean => /^= end$/m.test(procs[k].stdout);
  const deadline = Date.now() + timeoutMs;
  let grace = Infinity;
  for (;;) {
    const settled = (['server', 'client'] as const).every((k) => done(k) || exited[k]);
    if (settled) break;
    if ((['server', 'client'] as const).some((k) => !done(k) && exited[k])) grace = Math.min(grace, Date.now() + 3000);
    if (Date.now() > Math.min(deadline, grace)) {
      for (const k of ['server', 'client'] as const) if (!done(k)) procs[k].kill();
      break;
    }
    await sleep(20);
  }
  return { server: done('server'), client: done('client') };
}

/** The exit of a process whose stdin was closed; killed after 15 s. */
async function exitOf(p: Proc): Promise<ExitInfo> {
  try {
    return await p.wait(15_000);
  } catch {
    return p.exited;
  }
}

/** A run that must have gone cleanly (the kernel TCP reference, the sanitizer runs). */
export function requireClean(r: RunResult, what: string): void {
  if (r.ok) return;
  throw new Error(`${what}: the scenario did not run to its end:\n--- server trace ---\n${r.server.join('\n')}\n--- server stderr ---\n${r.serverStderr}\n` +
    `--- client trace ---\n${r.client.join('\n')}\n--- client stderr ---\n${r.clientStderr}`);
}

/** A line diff (longest common subsequence) of a against b: '  ' common, '- ' only in a, '+ ' only in b. */
export function lineDiff(a: string[], b: string[]): string[] {
  const n = a.length;
  const m = b.length;
  const L: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) L[i]![j] = a[i] === b[j] ? L[i + 1]![j + 1]! + 1 : Math.max(L[i + 1]![j]!, L[i]![j + 1]!);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out.push(`  ${a[i]}`);
      i++;
      j++;
    } else if (i < n && (j === m || L[i + 1]![j]! >= L[i]![j + 1]!)) {
      out.push(`- ${a[i]}`);
      i++;
    } else {
      out.push(`+ ${b[j]}`);
      j++;
    }
  }
  return out;
}

/** Only the differing lines of a diff, each with its predecessor as context. */
export function diffSummary(d: string[]): string {
  const keep = new Set<number>();
  d.forEach((l, k) => {
    if (!l.startsWith('  ')) {
      keep.add(k);
      if (k > 0) keep.add(k - 1);
    }
  });
  const out: string[] = [];
  let last = -2;
  [...keep].sort((x, y) => x - y).forEach((k) => {
    if (k !== last + 1 && out.length > 0) out.push('  ...');
    out.push(d[k]!);
    last = k;
  });
  return out.join('\n');
}

/** Directions a scenario writes: 0 = client to server, 1 = server to client. */
function dirs(w: Writes): number[] {
  return w === 'both' ? [0, 1] : w === 'c2s' ? [0] : w === 's2c' ? [1] : [];
}

/**
 * The differential test: run on plain TCP, then under pdrun (connection
 * upgraded both ways before the scenario starts), and require identical
 * traces per end. Fails with the differing lines of each end.
 */
export async function expectSameBehaviour(s: Scenario, pd: PdEnv, extra: Partial<RunOptions> = {}): Promise<void> {
  const base = { program: s.program ?? 'c', timeoutMs: s.timeoutMs, ...extra };
  // The test's controller starts while the reference runs (pdrun then finds
  // it instead of starting one: same controller, less waiting).
  const controller = startController(pd.sock);
  controller.catch(() => {}); // awaited below
  const tcp = await runScenario(s.name, { ...base, pdrun: false, preload: undefined });
  requireClean(tcp, `${s.name} on kernel TCP (the reference)`);
  await controller;
  const ring = await runScenario(s.name, { ...base, pdrun: true, pd });

  const report: string[] = [];
  for (const end of ['server', 'client'] as const) {
    const a = tcp[end];
    const b = ring[end];
    if (a.join('\n') === b.join('\n')) continue;
    report.push(`${end} trace differs (- kernel TCP, + pdrun ring):\n${diffSummary(lineDiff(a, b))}`);
    const err = end === 'server' ? ring.serverStderr : ring.clientStderr;
    if (err.trim()) report.push(`${end} stderr under pdrun:\n${err.trim()}`);
  }
  console.log(
    `${s.program ?? 'c'} ${s.name}: tcp ${tcp.ms} ms, pdrun ${ring.ms} ms; ` +
      `${report.length ? 'DIFFERS' : 'same'} (${tcp.server.length}+${tcp.client.length} trace lines); ` +
      `ring ${describeConn(ring.before)} -> ${ring.after ? describeConn(ring.after) : 'closed'}`,
  );
  if (report.length > 0) expect.fail(`${s.name}: the application can tell it is on the ring.\n${report.join('\n\n')}`);
  // A scenario that traced nothing proves nothing.
  expect(tcp.server.length + tcp.client.length, `${s.name}: empty trace`).toBeGreaterThan(0);

  // The scenario's bytes went by the ring: both directions were switched
  // before go (a switched sender writes only to the ring from then on); and
  // when the connection is still listed after the scenario, each direction
  // it writes carried more ring bytes than at go.
  for (const d of dirs(s.writes)) {
    if (ring.after && ring.before && ring.after.transport === 'ring') {
      expect(ring.after.switched[d], `direction ${d} not switched after the scenario: ${describeConn(ring.after)}`).toBe(true);
      expect(ring.after.ringBytes[d], `direction ${d}: no ring bytes written by the scenario (before ${describeConn(ring.before)}, after ${describeConn(ring.after)})`)
        .toBeGreaterThan(ring.before.ringBytes[d]);
    }
  }
}

