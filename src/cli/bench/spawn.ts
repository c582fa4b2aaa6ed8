// Processes of a bench run: every one goes through cpuwrap (which reports the
// CPU of its whole tree when it exits), under pdrun for the pdrun variants,
// inside a network namespace when asked; each runs in its own process group,
// has a hard lifetime, and is killed with its group when the bench ends.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { BenchError } from './errors.js';
import { readRusageFile, type Rusage } from './cpu.js';
import { PDRUN_JS } from './paths.js';

export interface LaunchOptions {
  /** environment added for this process */
  env?: Record<string, string>;
  /** run inside this network namespace (ip netns exec) */
  netns?: string;
  /** SIGKILL the group after this long, whatever happens (default 10 min) */
  lifetimeMs?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnSpec {
  name: string;
  cmd: string;
  args: string[];
  pdrun: boolean;
  cpuwrap: string;
  rusageFile: string;
  env: Record<string, string>;
  netns?: string;
  lifetimeMs: number;
}

const live = new Set<BenchProc>();

/** The argv that runs spec: [ip netns exec NS] [node pdrun.js --] cpuwrap OUT cmd args. */
export function commandLine(spec: SpawnSpec): string[] {
  let argv = [spec.cpuwrap, spec.rusageFile, spec.cmd, ...spec.args];
  if (spec.pdrun) argv = [process.execPath, PDRUN_JS, '--', ...argv];
  if (spec.netns) argv = ['ip', 'netns', 'exec', spec.netns, ...argv];
  return argv;
}

export class BenchProc {
  readonly name: string;
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | null = null;
  private waiters: Array<() => void> = [];
  private readonly lifetime: NodeJS.Timeout;
  private readonly rusageFile: string;

  constructor(spec: SpawnSpec) {
    this.name = spec.name;
    this.rusageFile = spec.rusageFile;
    const [file, ...argv] = commandLine(spec);
    this.child = spawn(file!, argv, { env: spec.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this);
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      if (this.stdout.length < 4 << 20) this.stdout += d;
      this.notify();
    });
    this.child.stderr!.on('data', (d: string) => {
      if (this.stderr.length < 1 << 20) this.stderr += d;
      this.notify();
    });
    this.lifetime = setTimeout(() => {
      this.stderr += `\n[bench: killed after its lifetime of ${spec.lifetimeMs} ms]\n`;
      this.kill();
    }, spec.lifetimeMs);
    this.exited = new Promise<ExitInfo>((resolve) => {
      let settled = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(this.lifetime);
        live.delete(this);
        this.exitInfo = { code, signal };
        this.notify();
        resolve(this.exitInfo);
      };
      this.child.on('error', (e) => {
        this.stderr += `spawn error: ${e.message}\n`;
        finish(null, null);
      });
      // 'exit', then a moment for the pipes: an on-demand controller or a
      // daemonised grandchild may hold them open forever.
      this.child.on('exit', (code, signal) => {
        const t = setTimeout(() => {
          this.child.stdout?.destroy();
          this.child.stderr?.destroy();
          finish(code, signal);
        }, 200);
        this.child.on('close', () => {
          clearTimeout(t);
          finish(code, signal);
        });
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get done(): boolean {
    return this.exitInfo !== null;
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  describe(): string {
    const tail = (s: string) => s.trim().split('\n').slice(-15).join('\n');
    return `${this.name} (pid ${this.pid})\n--- stdout ---\n${tail(this.stdout)}\n--- stderr ---\n${tail(this.stderr)}`;
  }

  /** Wait until stdout (or stderr, or either) matches re. Kills the group on timeout. */
  async waitOutput(re: RegExp, timeoutMs: number, stream: 'stdout' | 'stderr' | 'any' = 'stdout'): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = stream === 'stdout' ? this.stdout : stream === 'stderr' ? this.stderr : `${this.stdout}\n${this.stderr}`;
      const m = text.match(re);
      if (m) return m;
      if (this.exitInfo) {
        throw new BenchError('PD_E_BENCH_RUN', `${this.name} exited (code ${this.exitInfo.code}) before printing ${re}\n${this.describe()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        this.kill();
        throw new BenchError('PD_E_BENCH_RUN', `${this.name}: no ${re} within ${timeoutMs} ms\n${this.describe()}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Wait for exit; kills the group and throws after timeoutMs. */
  async wait(timeoutMs: number): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const msg = `${this.name}: did not exit within ${timeoutMs} ms\n${this.describe()}`;
        this.kill();
        reject(new BenchError('PD_E_BENCH_RUN', msg));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Wait for exit and require status 0. */
  async waitOk(timeoutMs: number): Promise<ExitInfo> {
    const r = await this.wait(timeoutMs);
    if (r.code !== 0) throw new BenchError('PD_E_BENCH_RUN', `${this.name} failed: code ${r.code}, signal ${r.signal}\n${this.describe()}`);
    return r;
  }

  /**
   * Ask it to end (SIGTERM to the launcher, which relays: pdrun to cpuwrap,
   * cpuwrap to the program), so cpuwrap can report; SIGKILL the group after
   * graceMs.
   */
  async stop(graceMs = 10_000, sig: NodeJS.Signals = 'SIGTERM'): Promise<ExitInfo> {
    if (!this.exitInfo) {
      try {
        process.kill(this.pid, sig);
      } catch {
        /* already gone */
      }
    }
    try {
      return await this.wait(graceMs);
    } catch {
      return this.exited;
    }
  }

  /** SIGKILL the whole process group (launcher, cpuwrap, program, its children). */
  kill(): void {
    if (this.exitInfo || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }

  /** The CPU seconds of the program's tree, once it exited through cpuwrap. */
  rusage(): Rusage | null {
    return readRusageFile(this.rusageFile);
  }
}

/** SIGKILL every process still running (the bench is ending or was interrupted). */
export async function killAllProcs(): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.kill();
  await Promise.all(procs.map((p) => p.exited));
}

export function rusagePath(dir: string, name: string, n: number): string {
  return path.join(dir, `rusage-${n}-${name.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
}
