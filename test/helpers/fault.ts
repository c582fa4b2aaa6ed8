// Building blocks of the fault and hostile-peer tests: the shim's environment
// without pdrun (for tight kill loops), test/progs/fault_stream, the
// controller's resources as the kernel sees them (/proc/<pid>/fd), hugepages,
// and a "nothing leaked" baseline.
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROGS_BIN, SHIM } from './paths.js';
import { pdStatusAsync, type PdStatus } from './pd.js';
import { spawnProc, sleep, type Proc, type SpawnOptions } from './proc.js';

export const FAULT_STREAM = path.join(PROGS_BIN, 'fault_stream');
export const HOSTILE_PEER = path.join(PROGS_BIN, 'hostile_peer');
export const FAULT_NOFILE = path.join(PROGS_BIN, 'fault_nofile');
export const FAULT_HUGEHOG = path.join(PROGS_BIN, 'fault_hugehog');

export const isRoot = process.getuid?.() === 0;

/** What pdrun gives a program, without pdrun's node start-up: the shim and the socket. */
export function shimEnv(sock: string, shim = SHIM): Record<string, string> {
  return { LD_PRELOAD: shim, PD_SOCKET: sock };
}

/** CLOCK_MONOTONIC in ns, the clock the C programs print (libuv's hrtime is CLOCK_MONOTONIC). */
export function monoNs(): bigint {
  return process.hrtime.bigint();
}

/** SIGKILL one process (not its group) and return the monotonic time just before. */
export function kill9(pid: number): bigint {
  const t = monoNs();
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  return t;
}

/** The line fault_stream prints once connected. */
export interface ConnLine {
  pid: number;
  local: string;
  peer: string;
}

/** The JSON line fault_stream prints at its end. */
export interface FaultEnd {
  ok: boolean;
  rx: number;
  rx_end: string;
  rx_end_ns: number;
  tx: number;
  tx_end: string;
  tx_end_ns: number;
  mismatch_at: number;
}

export async function startFaultServer(args: string[], opts: SpawnOptions): Promise<{ proc: Proc; port: number }> {
  const proc = spawnProc(FAULT_STREAM, ['server', ...args], { name: 'fault_stream server', ...opts });
  const m = await proc.waitStdout(/^port (\d+)\n/, 10_000);
  return { proc, port: Number(m[1]) };
}

export function startFaultClient(port: number, args: string[], opts: SpawnOptions): Proc {
  return spawnProc(FAULT_STREAM, ['client', String(port), ...args], { name: 'fault_stream client', ...opts });
}

export async function connLine(proc: Proc, timeoutMs = 10_000): Promise<ConnLine> {
  const m = await proc.waitStdout(/^conn (\d+) (\S+) (\S+)\n/m, timeoutMs);
  return { pid: Number(m[1]), local: m[2]!, peer: m[3]! };
}

/** The end line of a fault_stream, waiting up to timeoutMs for it (the process may linger). */
export async function endLine(proc: Proc, timeoutMs: number): Promise<FaultEnd> {
  const m = await proc.waitStdout(/^(\{.*\})\n/m, timeoutMs);
  return JSON.parse(m[1]!) as FaultEnd;
}

/** Writes a line to a process's stdin (fault_stream --pause-every resumes on it). */
export function resume(proc: Proc): void {
  proc.child.stdin?.write('\n');
}

// ---------------------------------------------------------------- resources

export interface FdCounts {
  total: number;
  memfd: number;
  eventfd: number;
}

/** The open fds of a process by kind, from /proc/<pid>/fd. */
export function fdCounts(pid: number): FdCounts {
  const out: FdCounts = { total: 0, memfd: 0, eventfd: 0 };
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while we looked
    }
    out.total++;
    if (link.startsWith('/memfd:')) out.memfd++;
    if (link === 'anon_inode:[eventfd]') out.eventfd++;
  }
  return out;
}

export interface Hugepages {
  total: number;
  free: number;
  rsvd: number;
}

export function hugepages(): Hugepages {
  const info = readFileSync('/proc/meminfo', 'utf8');
  const num = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return { total: num('HugePages_Total'), free: num('HugePages_Free'), rsvd: num('HugePages_Rsvd') };
}

const NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages';

/**
 * Reserves `extra` more 2 MiB pages (root only); returns a function that gives
 * them back. Relative both ways, so that runs on one machine that reserve
 * pages at overlapping times do not leave a count behind (an absolute restore
 * did: a later restore wrote back what an earlier run had added).
 */
export function reserveHugepages(extra: number): () => void {
  const now = () => Number(readFileSync(NR_HUGEPAGES, 'utf8').trim());
  writeFileSync(NR_HUGEPAGES, `${now() + extra}\n`);
  return () => writeFileSync(NR_HUGEPAGES, `${Math.max(0, now() - extra)}\n`);
}

/** Everything the controller accounts for, plus what the kernel says it holds. */
export interface Snapshot {
  sessions: number;
  launchers: number;
  connections: number;
  arenas: number;
  fds: FdCounts;
  huge: Hugepages;
}

export async function snapshot(sock: string, ctlPid: number): Promise<Snapshot | null> {
  const s: PdStatus | null = await pdStatusAsync(sock);
  if (!s) return null;
  const c = s.controller as { launchers?: number };
  return {
    sessions: s.sessions.length,
    launchers: c.launchers ?? 0,
    connections: s.connections.length,
    arenas: s.arenas.length,
    fds: fdCounts(ctlPid),
    huge: hugepages(),
  };
}

/** Hugepage numbers only (for when the controller is dead). */
export function sameHuge(a: Hugepages, b: Hugepages): boolean {
  return a.total === b.total && a.free === b.free && a.rsvd === b.rsvd;
}

function same(a: Snapshot, b: Snapshot): boolean {
  return a.sessions === b.sessions && a.launchers === b.launchers && a.connections === b.connections &&
    a.arenas === b.arenas && a.fds.total === b.fds.total && a.fds.memfd === b.fds.memfd &&
    a.fds.eventfd === b.fds.eventfd && sameHuge(a.huge, b.huge);
}

/**
 * Waits until the controller's accounting, its fds and the hugepages are back
 * at the baseline; throws with both snapshots after timeoutMs (reclaim is
 * asynchronous: the controller learns of a death when the session closes).
 */
export async function waitReclaimed(sock: string, ctlPid: number, base: Snapshot, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: Snapshot | null = null;
  for (;;) {
    last = await snapshot(sock, ctlPid);
    if (last && same(last, base)) return;
    if (Date.now() > deadline) break;
    await sleep(20);
  }
  const st = await pdStatusAsync(sock);
  throw new Error(`${what}: not reclaimed within ${timeoutMs} ms\nbaseline ${JSON.stringify(base)}\nnow      ${JSON.stringify(last)}\n` +
    `status ${JSON.stringify(st)}`);
}

/** Waits until the hugepage counters are back at the baseline. */
export async function waitHugeReclaimed(base: Hugepages, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = hugepages();
    if (sameHuge(h, base)) return;
    if (Date.now() > deadline) throw new Error(`${what}: hugepages not back: baseline ${JSON.stringify(base)} now ${JSON.stringify(h)}`);
    await sleep(20);
  }
}

/** A small deterministic PRNG (the kill points must be reproducible from the seed in the test name). */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

export const FAULT_SECCOMP = path.join(PROGS_BIN, 'fault_seccomp');

/** Waits until the controller at sock answers `pd status`; throws after timeoutMs. */
export async function waitController(sock: string, timeoutMs = 10_000): Promise<PdStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await pdStatusAsync(sock);
    if (s) return s;
    if (Date.now() > deadline) throw new Error(`no controller answers at ${sock} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** The lowest fd number a process does not use (where its next fd would go). */
export function lowestFreeFd(pid: number): number {
  const used = new Set(readdirSync(`/proc/${pid}/fd`).map(Number));
  let n = 0;
  while (used.has(n)) n++;
  return n;
}

/** The hard RLIMIT_NOFILE of a process. */
export function hardNofile(pid: number): string {
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  if (!m) throw new Error(`no Max open files in /proc/${pid}/limits`);
  return m[1]!;
}
