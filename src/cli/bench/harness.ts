// The A/B(/C) loop: for every repetition, every case, every variant in turn,
// one run with fresh servers and clients; the tool's numbers, the CPU seconds
// of every process of the run (and the controller's, for pdrun runs) and the
// transport pdrun's connections really used.
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { BenchController } from './controller.js';
import { BenchError } from './errors.js';
import { benchProg } from './progs.js';
import { BenchProc, killAllProcs, rusagePath, type LaunchOptions } from './spawn.js';
import { fmt } from './stats.js';
import { watchTransports, type TransportSeen } from './transport.js';
import { VARIANTS, type Case, type RunContext, type Scenario, type Variant, type VariantId } from './types.js';

export interface CpuAccount {
  procs: { name: string; user: number; sys: number }[];
  /** processes that ended without reporting (killed): their CPU is unknown */
  unreported: string[];
  controller: number | null;
  /** all of the above, or null when some process did not report */
  total: number | null;
}

export interface Sample {
  scenario: string;
  case: string;
  variant: VariantId;
  rep: number;
  ok: boolean;
  seconds: number;
  metrics: Record<string, number>;
  cpu?: CpuAccount;
  transport?: TransportSeen & { expected: number | null; verified: boolean };
  raw?: unknown;
  error?: string;
}

export interface HarnessOptions {
  reps: number;
  quick: boolean;
  /** only these variants (the case's A always runs first when present) */
  variants?: readonly VariantId[];
  /** where runs put their files */
  tmpDir: string;
  controller: () => Promise<BenchController>;
  log: (msg: string) => void;
  /** every run ends after this long, whatever happens */
  runTimeoutMs?: number;
}

function expectedRing(c: Case, quick: boolean): number | null {
  return typeof c.expectRing === 'function' ? c.expectRing(quick) : c.expectRing;
}

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k === 'LD_PRELOAD' || k === 'PD_NO_CONTROLLER') continue;
    env[k] = v;
  }
  return env;
}

async function runOne(sc: Scenario, c: Case, variant: Variant, rep: number, o: HarnessOptions): Promise<Sample> {
  const dir = mkdtempSync(path.join(o.tmpDir, `${c.id}-${variant.id}-`));
  const procs: BenchProc[] = [];
  const ctl = variant.pdrun ? await o.controller() : null;
  const baseEnv = { ...cleanEnv(), ...(ctl ? { PD_SOCKET: ctl.socket } : {}), ...variant.env };
  const ctx: RunContext = {
    variant,
    quick: o.quick,
    dir,
    launch(name: string, cmd: string, args: string[], lo: LaunchOptions = {}): BenchProc {
      const p = new BenchProc({
        name: `${variant.pdrun ? 'pdrun ' : ''}${name}`,
        cmd,
        args,
        pdrun: variant.pdrun,
        cpuwrap: benchProg('cpuwrap'),
        rusageFile: rusagePath(dir, name, procs.length),
        env: { ...baseEnv, ...lo.env },
        netns: lo.netns,
        lifetimeMs: lo.lifetimeMs ?? o.runTimeoutMs ?? 600_000,
      });
      procs.push(p);
      return p;
    },
    prog: benchProg,
    log: o.log,
  };
  const sample: Sample = { scenario: sc.id, case: c.id, variant: variant.id, rep, ok: false, seconds: 0, metrics: {} };
  const t0 = Date.now();
  const ctlCpu0 = ctl?.cpuSeconds() ?? null;
  const watch = ctl ? watchTransports(ctl.socket, o.quick ? 50 : 200) : null;
  let timer: NodeJS.Timeout | undefined;
  try {
    const limit = o.runTimeoutMs ?? 600_000;
    const result = await Promise.race([
      c.run(ctx),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new BenchError('PD_E_BENCH_RUN', `the run took longer than ${limit / 1000} s`)), limit);
      }),
    ]);
    sample.metrics = { ...result.metrics };
    sample.raw = result.raw;
    sample.ok = true;
  } catch (e) {
    sample.error = e instanceof Error ? e.message : String(e);
  } finally {
    clearTimeout(timer);
    // whatever the case left running ends now, politely first so cpuwrap reports
    await Promise.all(procs.filter((p) => !p.done).map((p) => p.stop(5000)));
    for (const p of procs) p.kill();
  }
  // a failed run keeps what every one of its processes said (the server's log
  // often tells why a client failed)
  if (!sample.ok) sample.error += `\n${procs.map((p) => p.describe()).join('\n')}`;
  sample.seconds = (Date.now() - t0) / 1000;
  const ctlCpu1 = ctl?.cpuSeconds() ?? null;
  if (watch) {
    const seen = await watch.stop();
    const expected = expectedRing(c, o.quick);
    sample.transport = { ...seen, expected, verified: expected === null || seen.ring >= expected };
  }
  const cpu: CpuAccount = { procs: [], unreported: [], controller: null, total: null };
  for (const p of procs) {
    const r = p.rusage();
    if (r) cpu.procs.push({ name: p.name, user: r.user, sys: r.sys });
    else cpu.unreported.push(p.name);
  }
  if (ctl) cpu.controller = ctlCpu0 !== null && ctlCpu1 !== null ? ctlCpu1 - ctlCpu0 : null;
  const known = cpu.unreported.length === 0 && (!ctl || cpu.controller !== null);
  cpu.total = known ? cpu.procs.reduce((s, p) => s + p.user + p.sys, 0) + (cpu.controller ?? 0) : null;
  sample.cpu = cpu;
  if (sample.ok && c.derive && cpu.total !== null) Object.assign(sample.metrics, c.derive(sample.metrics, cpu.total));
  if (sample.ok && cpu.total !== null) sample.metrics.cpu_s = cpu.total;
  rmSync(dir, { recursive: true, force: true });
  return sample;
}

function progress(c: Case, s: Sample): string {
  if (!s.ok) return `FAILED: ${(s.error ?? '').split('\n')[0]}`;
  const shown = c.metrics.slice(0, 3).filter((m) => m.key in s.metrics);
  let line = shown.map((m) => `${m.label} ${fmt(s.metrics[m.key]!)}`).join(', ');
  line += s.cpu?.total != null ? `; cpu ${s.cpu.total.toFixed(2)} s` : '; cpu unknown';
  if (s.transport) {
    const t = s.transport;
    line += ` [ring ${t.ring}/${t.seen}${t.verified ? '' : ` - NOT ON RING, expected >= ${t.expected}`}]`;
  }
  return line;
}

/** Undo functions of scenario set-ups in progress (namespaces): an interrupted bench runs them. */
export const pendingTeardowns = new Set<() => Promise<void>>();

export async function runScenario(sc: Scenario, o: HarnessOptions): Promise<Sample[]> {
  const samples: Sample[] = [];
  let teardown: (() => Promise<void>) | undefined;
  try {
    if (sc.setup) {
      teardown = await sc.setup(o.log);
      pendingTeardowns.add(teardown);
    }
    for (let rep = 0; rep < o.reps; rep++) {
      for (const c of sc.cases) {
        const ids = c.variants.filter((v) => !o.variants || o.variants.includes(v));
        for (const id of ids) {
          const s = await runOne(sc, c, VARIANTS[id], rep, o);
          samples.push(s);
          o.log(`rep ${rep + 1}/${o.reps} ${sc.id}/${c.id} ${VARIANTS[id].letter} ${VARIANTS[id].label}: ${progress(c, s)} (${s.seconds.toFixed(1)} s)`);
        }
      }
    }
  } finally {
    await killAllProcs();
    if (teardown) {
      pendingTeardowns.delete(teardown);
      await teardown();
    }
  }
  return samples;
}
