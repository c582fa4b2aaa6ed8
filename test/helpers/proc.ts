// Spawning the test programs, with or without pdrun, with bounded waits.
// Every child runs in its own process group (detached) so that killing it also
// kills what pdrun started under it; every child is registered, and
// killAll() (call it in afterEach) SIGKILLs whatever is still running.
import { spawn, type ChildProcess } from 'node:child_process';
import { PDRUN_JS } from './paths.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface SpawnOptions {
  /** run under `node dist/cli/pdrun.js --` */
  pdrun?: boolean;
  /** extra pdrun flags, e.g. ['--preload', path] */
  pdrunArgs?: string[];
  /** environment added to process.env (undefined values delete a variable) */
  env?: Record<string, string | undefined>;
  /** keep stdin open as a pipe (for --hold); default: /dev/null */
  stdinPipe?: boolean;
  /** name used in error messages */
  name?: string;
  /** run inside this network namespace (`ip netns exec NS ...`, root only) */
  netns?: string;
}

const live = new Set<Proc>();

export class Proc {
  readonly child: ChildProcess;
  readonly name: string;
  stdout = '';
  stderr = '';
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | null = null;
  private waiters: Array<() => void> = [];

  constructor(cmd: string, args: string[], opts: SpawnOptions = {}) {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...opts.env })) if (v !== undefined) env[k] = v;
    let argv = opts.pdrun ? [PDRUN_JS, ...(opts.pdrunArgs ?? []), '--', cmd, ...args] : args;
    let file = opts.pdrun ? process.execPath : cmd;
    if (opts.netns) [file, argv] = ['ip', ['netns', 'exec', opts.netns, file, ...argv]];
    this.name = opts.name ?? `${opts.netns ? `[${opts.netns}] ` : ''}${opts.pdrun ? 'pdrun ' : ''}${cmd.split('/').pop()} ${args.join(' ')}`;
    this.child = spawn(file, argv, {
      env,
      detached: true,
      stdio: [opts.stdinPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    live.add(this);
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      this.stdout += d;
      this.notify();
    });
    this.child.stderr!.on('data', (d: string) => {
      this.stderr += d;
      this.notify();
    });
    this.child.stdin?.on('error', () => {});
    this.exited = new Promise<ExitInfo>((resolve) => {
      let settled = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (settled) return;
        settled = true;
        live.delete(this);
        this.exitInfo = { code, signal, stdout: this.stdout, stderr: this.stderr };
        this.notify();
        resolve(this.exitInfo);
      };
      this.child.on('error', (err) => {
        this.stderr += `spawn error: ${err.message}\n`;
        finish(null, null);
      });
      // 'exit' rather than 'close': a grandchild (an on-demand controller) that
      // inherited our pipes must not keep the wait alive. Give the pipes a moment
      // to drain what the process itself wrote, then stop waiting for them.
      this.child.on('exit', (code, signal) => {
        let done = false;
        const t = setTimeout(() => {
          if (done) return;
          done = true;
          this.child.stdout?.destroy();
          this.child.stderr?.destroy();
          finish(code, signal);
        }, 300);
        this.child.on('close', () => {
          if (done) return;
          done = true;
          clearTimeout(t);
          finish(code, signal);
        });
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private describe(): string {
    return `${this.name} (pid ${this.pid})\n--- stdout ---\n${this.stdout.slice(-4000)}\n--- stderr ---\n${this.stderr.slice(-4000)}`;
  }

  /** Wait until stdout matches re; returns the match. Kills the group on timeout. */
  async waitStdout(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.stdout.match(re);
      if (m) return m;
      if (this.exitInfo) {
        throw new Error(
          `${this.name} exited (code ${this.exitInfo.code}, signal ${this.exitInfo.signal}) before printing ${re}\n${this.describe()}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        this.kill();
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${re} from ${this.describe()}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Wait for exit; kills the group and throws on timeout. */
  async wait(timeoutMs: number): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const msg = `timed out after ${timeoutMs} ms waiting for exit of ${this.describe()}`;
        this.kill();
        reject(new Error(msg));
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
    if (r.code !== 0) throw new Error(`${this.name} failed: code ${r.code}, signal ${r.signal}\n${this.describe()}`);
    return r;
  }

  /** Write to the stdin pipe (spawned with stdinPipe). */
  writeStdin(text: string): void {
    if (!this.child.stdin) throw new Error(`${this.name}: stdin is not a pipe`);
    this.child.stdin.write(text);
  }

  closeStdin(): void {
    this.child.stdin?.end();
  }

  /** Signal the whole process group (pdrun and what it runs). */
  kill(sig: NodeJS.Signals = 'SIGKILL'): void {
    if (this.exitInfo || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, sig);
    } catch {
      try {
        this.child.kill(sig);
      } catch {
        /* already gone */
      }
    }
  }
}

export function spawnProc(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  return new Proc(cmd, args, opts);
}

/** SIGKILL every child still running (afterEach). */
export async function killAll(): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
}

/** The single JSON line a client printed, parsed; throws if stdout is anything else. */
export function parseJsonLine<T>(stdout: string, who = 'client'): T {
  const lines = stdout.split('\n').filter((l) => l.length > 0);
  if (lines.length !== 1) throw new Error(`${who}: expected exactly one line on stdout, got ${lines.length}:\n${stdout}`);
  return JSON.parse(lines[0]!) as T;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
