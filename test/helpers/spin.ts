// Running a Promela model with spin (the model tests in test/model): generate
// the verifier, compile it, run it, read its verdict. Each run gets its own
// directory under one temporary root, removed when the run ends.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { expect } from 'vitest';

export const HAVE_SPIN = !spawnSync('spin', ['-V'], { stdio: 'ignore' }).error;

// safety: assertions and invalid end states, the LTL claim left out
//   (-DNOCLAIM).
// ltl: the model's claim, acceptance cycles (pan -a).
// cycles: non-progress cycles with no progress label (pan -l): any cycle at
//   all in the reachable state graph is reported, so errors: 0 means every
//   run is finite.
export type SpinMode = 'safety' | 'ltl' | 'cycles';

export interface Verdict {
  errors: number;
  states: number;
  depth: number;
  out: string;
}

export interface SpinOptions {
  opt?: string;       // gcc optimisation for pan.c (default -O0: gcc's time dominates small runs)
  hashBits?: number;  // pan -w (default 24)
  maxDepth?: number;  // pan -m (default 100000)
}

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
  });
}

export class SpinModel {
  private root = '';
  private seq = 0;

  constructor(private readonly model: string, private readonly prefix: string) {}

  /** In beforeAll. */
  setup(): void {
    this.root = mkdtempSync(join(tmpdir(), this.prefix));
  }

  /** In afterAll. */
  teardown(): void {
    if (this.root) rmSync(this.root, { recursive: true, force: true });
  }

  async verify(defines: string[], mode: SpinMode, o: SpinOptions = {}): Promise<Verdict> {
    const dir = join(this.root, `run${this.seq++}`);
    mkdirSync(dir);
    const file = basename(this.model);
    copyFileSync(this.model, join(dir, file));
    const gen = await run('spin', ['-a', ...defines.map((d) => `-D${d}`), file], dir);
    if (gen.code !== 0) throw new Error(`spin -a failed:\n${gen.out}`);
    const cflags = { safety: ['-DSAFETY', '-DNOCLAIM'], ltl: [], cycles: ['-DNP', '-DNOCLAIM'] }[mode];
    const cc = await run('gcc', [o.opt ?? '-O0', ...cflags, '-o', 'pan', 'pan.c'], dir);
    if (cc.code !== 0) throw new Error(`gcc pan.c failed:\n${cc.out}`);
    const extra = { safety: [], ltl: ['-a'], cycles: ['-l'] }[mode];
    const pan = await run('./pan', [`-m${o.maxDepth ?? 100000}`, `-w${o.hashBits ?? 24}`, ...extra], dir);
    rmSync(dir, { recursive: true, force: true });
    const out = pan.out;
    const num = (re: RegExp): number => {
      const m = re.exec(out);
      if (!m) throw new Error(`pan output lacks ${re}:\n${out}`);
      return Number(m[1]);
    };
    const errors = num(/errors: (\d+)/);
    // A truncated search would make "errors: 0" meaningless (pan stops at the
    // first error, so only a clean run must have searched everything).
    expect(out).not.toMatch(/too small|out of memory/i);
    if (errors === 0) expect(out).not.toMatch(/search not completed/i);
    return { errors, states: num(/(\d+) states, stored/), depth: num(/depth reached (\d+)/), out };
  }
}
