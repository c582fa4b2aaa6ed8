// The controller side of a test: a private PD_SOCKET per test, `pd status
// --json`, `pd stop`, and starting a controller explicitly.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PD_JS, ROOT } from './paths.js';
import { spawnProc, sleep, type Proc } from './proc.js';

export interface PdEnd {
  pid: number;
  session: number;
  connId: number;
  role: number;
  local: string;
  peer: string;
}

export interface PdConnection {
  id: number;
  transport: 'ring' | 'tcp';
  state: string;
  reason?: string;
  ends: PdEnd[];
  ringBytes: [number, number];
  switched: [boolean, boolean];
  attached: [boolean, boolean];
  arena?: number;
  slot?: number;
}

export interface PdArena {
  id: number;
  pids: number[];
  bytes: number;
  hugepage: boolean;
  slots: number;
  slotsUsed: number;
}

export interface PdStatus {
  controller: { hugepages: boolean } & Record<string, unknown>;
  sessions: unknown[];
  connections: PdConnection[];
  arenas: PdArena[];
}

/** A private controller socket for one test: PD_SOCKET=<tmp>/pd.sock. */
export class PdEnv {
  readonly dir: string;
  readonly sock: string;
  constructor(sock?: string) {
    this.dir = mkdtempSync('/tmp/pdtest-');
    this.sock = sock ?? path.join(this.dir, 'pd.sock');
  }
  get env(): Record<string, string> {
    return { PD_SOCKET: this.sock };
  }
  /** Stop the controller (if any) and remove the temp dir. */
  cleanup(): void {
    pdStop(this.sock);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function pd(sock: string, args: string[], timeoutMs = 10_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [PD_JS, ...args], {
    env: { ...process.env, PD_SOCKET: sock },
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

export function pdStatus(sock: string): PdStatus {
  const r = pd(sock, ['status', '--json']);
  if (r.status !== 0) throw new Error(`pd status --json failed (status ${r.status}):\n${r.stderr}${r.stdout}`);
  try {
    return JSON.parse(r.stdout) as PdStatus;
  } catch (e) {
    throw new Error(`pd status --json printed no JSON (${String(e)}):\n${r.stdout}`);
  }
}

/** `pd status --json` without blocking the event loop; null when it fails. */
export function pdStatusAsync(sock: string): Promise<PdStatus | null> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [PD_JS, 'status', '--json'],
      { env: { ...process.env, PD_SOCKET: sock }, timeout: 10_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout) => {
        if (err) return resolve(null);
        try {
          resolve(JSON.parse(stdout) as PdStatus);
        } catch {
          resolve(null);
        }
      },
    );
  });
}

type FetchStatus = (sock: string, timeoutMs?: number) => Promise<PdStatus>;
let fastFetch: FetchStatus | null | undefined;

/** The controller's own status client (dist/control/client.js fetchStatus), in
 * process: a few ms per query instead of ~100 ms for `pd status`. Falls back to
 * the CLI when that module or function is not there. */
async function statusFast(sock: string): Promise<PdStatus | null> {
  if (fastFetch === undefined) {
    try {
      const mod = (await import(pathToFileURL(path.join(ROOT, 'dist', 'control', 'client.js')).href)) as {
        fetchStatus?: FetchStatus;
      };
      fastFetch = typeof mod.fetchStatus === 'function' ? mod.fetchStatus : null;
    } catch {
      fastFetch = null;
    }
  }
  if (!fastFetch) return pdStatusAsync(sock);
  try {
    return await fastFetch(sock, 3000);
  } catch {
    return null;
  }
}

/** Sample the status until stop() is called: which connection ids were seen on which transport. */
export function watchTransports(sock: string, everyMs = 5): { stop: () => Promise<{ ring: number; tcp: number; samples: number }> } {
  const seen = new Map<number, 'ring' | 'tcp'>();
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const s = await statusFast(sock);
      if (s) {
        samples++;
        for (const c of s.connections) if (seen.get(c.id) !== 'ring') seen.set(c.id, c.transport);
      }
      await sleep(everyMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      const v = [...seen.values()];
      return { ring: v.filter((t) => t === 'ring').length, tcp: v.filter((t) => t === 'tcp').length, samples };
    },
  };
}

/** Poll status until pred holds (connections settle asynchronously). */
export async function pdStatusUntil(
  sock: string,
  pred: (s: PdStatus) => boolean,
  timeoutMs = 5_000,
): Promise<PdStatus> {
  const deadline = Date.now() + timeoutMs;
  let s = pdStatus(sock);
  while (!pred(s) && Date.now() < deadline) {
    await sleep(100);
    s = pdStatus(sock);
  }
  return s;
}

/** Stop the controller of sock; no error when none runs. */
export function pdStop(sock: string): void {
  pd(sock, ['stop'], 10_000);
}

/** Start a controller ourselves (outside pdrun) and wait until it answers. */
export async function startController(sock: string, env: Record<string, string | undefined> = {}): Promise<Proc> {
  const p = spawnProc(process.execPath, [PD_JS, 'controller', '--idle-exit', '120'], {
    env: { ...env, PD_SOCKET: sock },
    name: 'pd controller',
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = pd(sock, ['status', '--json'], 5_000);
    if (r.status === 0) return p;
    if (Date.now() > deadline) {
      p.kill();
      throw new Error(`controller at ${sock} did not answer within 10 s:\n${p.stderr}\n${r.stderr}`);
    }
    await sleep(100);
  }
}

/** The connection one of whose ends has this local or peer address. */
export function findConnection(s: PdStatus, addr: string): PdConnection | undefined {
  return s.connections.find((c) => c.ends.some((e) => e.local === addr || e.peer === addr));
}
