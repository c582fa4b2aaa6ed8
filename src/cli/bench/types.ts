// The shapes every scenario and the harness share.
import type { BenchProc, LaunchOptions } from './spawn.js';

/** A = kernel TCP, B = under pdrun, C = Unix domain sockets; B0 = pdrun with spinning off. */
export type VariantId = 'kernel' | 'pdrun' | 'pdrun-nospin' | 'unix';

export interface Variant {
  readonly id: VariantId;
  readonly letter: string;
  readonly label: string;
  /** run servers and clients under pdrun */
  readonly pdrun: boolean;
  /** environment the variant adds (e.g. PD_SPIN_US=0) */
  readonly env: Readonly<Record<string, string>>;
}

export const VARIANTS: Readonly<Record<VariantId, Variant>> = {
  kernel: { id: 'kernel', letter: 'A', label: 'kernel TCP', pdrun: false, env: {} },
  pdrun: { id: 'pdrun', letter: 'B', label: 'pdrun', pdrun: true, env: {} },
  'pdrun-nospin': { id: 'pdrun-nospin', letter: 'B0', label: 'pdrun, PD_SPIN_US=0', pdrun: true, env: { PD_SPIN_US: '0' } },
  unix: { id: 'unix', letter: 'C', label: 'Unix socket', pdrun: false, env: {} },
};

export interface Metric {
  readonly key: string;
  readonly label: string;
  /** which way is better: decides nothing in the numbers, only the chart's caption */
  readonly better: 'higher' | 'lower';
  /** the brief's bar for pdrun / kernel, shown in the table */
  readonly target?: string;
}

/** What one run of a case returns: the tool's own numbers, keyed like the case's metrics. */
export interface CaseResult {
  readonly metrics: Record<string, number>;
  /** the client's raw result (parsed), kept in the JSON */
  readonly raw?: unknown;
}

export interface RunContext {
  readonly variant: Variant;
  readonly quick: boolean;
  /** a fresh directory for this run (config files, Unix socket paths) */
  readonly dir: string;
  /** start a process of this run: through cpuwrap, under pdrun when the variant says so */
  launch(name: string, cmd: string, args: string[], opts?: LaunchOptions): BenchProc;
  /** a bench program from bench/progs, compiled on first use */
  prog(name: string): string;
  log(msg: string): void;
}

export interface Case {
  readonly id: string;
  readonly title: string;
  readonly variants: readonly VariantId[];
  readonly metrics: readonly Metric[];
  /** how many of pdrun's connections must be seen on 'ring' in a run; null: not checked */
  readonly expectRing: number | null | ((quick: boolean) => number | null);
  /** the exact commands, for the report (kernel-TCP form) */
  readonly commands: (quick: boolean) => string[];
  run(ctx: RunContext): Promise<CaseResult>;
  /** metrics computed from the tool's numbers and the CPU seconds of the run */
  derive?(metrics: Record<string, number>, cpuS: number): Record<string, number>;
}

export interface Scenario {
  readonly id: string;
  readonly title: string;
  /** programs that must be on PATH, and the Debian package of each */
  readonly needs: Readonly<Record<string, string>>;
  readonly root?: boolean;
  readonly cases: readonly Case[];
  /** set up once for the whole scenario (namespaces), undone by the returned function */
  setup?(log: (m: string) => void): Promise<() => Promise<void>>;
}
