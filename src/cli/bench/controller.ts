// The bench's own controller: started once with a private PD_SOCKET before the
// first pdrun run (so no run pays for its start-up), its CPU read from /proc
// around every pdrun run, stopped with `pd stop` at the end.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { fetchStatus } from '../../control/client.js';
import { procCpuSeconds } from './cpu.js';
import { BenchError } from './errors.js';
import { PD_JS } from './paths.js';

export class BenchController {
  pid = -1;
  constructor(readonly socket: string, private readonly logFile: string) {}

  async start(): Promise<void> {
    const out = openSync(this.logFile, 'a');
    // --idle-exit bounds its life if the bench itself is killed before `pd stop`
    const child = spawn(process.execPath, [PD_JS, 'controller', '--idle-exit', '600'], {
      env: { ...process.env, PD_SOCKET: this.socket },
      detached: true,
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    child.unref();
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const doc = await fetchStatus(this.socket, 2000);
        this.pid = doc.controller.pid;
        return;
      } catch {
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new BenchError('PD_E_BENCH_RUN', `the controller at ${this.socket} did not answer within 15 s: see ${this.logFile}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** utime+stime so far, or null when it is not running. */
  cpuSeconds(): number | null {
    return this.pid > 0 ? procCpuSeconds(this.pid) : null;
  }

  stop(): void {
    spawnSync(process.execPath, [PD_JS, 'stop'], { env: { ...process.env, PD_SOCKET: this.socket }, timeout: 10_000 });
  }

  get dir(): string {
    return path.dirname(this.socket);
  }
}
