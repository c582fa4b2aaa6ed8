// `pd bench SCENARIO`: run the scenarios, print the tables, write JSON and SVG.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchController } from './controller.js';
import { BenchError } from './errors.js';
import { pendingTeardowns, runScenario, type Sample } from './harness.js';
import { caseTable } from './markdown.js';
import { describeMachine, gitRevision, machine, type Machine } from './machine.js';
import { ECHO_AB, RESULTS_DIR, ROOT } from './paths.js';
import { SCENARIOS, findScenario } from './scenarios/index.js';
import { killAllProcs } from './spawn.js';
import { summarise, type CaseSummary } from './summary.js';
import { ratioChart } from './svg.js';
import { VARIANTS, type Scenario, type VariantId } from './types.js';

export interface BenchOptions {
  reps: number;
  json?: string;
  quick: boolean;
  variants?: VariantId[];
}

const log = (m: string) => process.stderr.write(`pd bench: ${m}\n`);

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v "$1" >/dev/null 2>&1`, 'sh', cmd], { timeout: 5000 }).status === 0;
}

/** The scenarios named by spec ("redis", "redis,latency", "all"). */
export function selectScenarios(spec: string): { scenarios: Scenario[]; echo: boolean } {
  const ids = spec.split(',').map((s) => s.trim()).filter(Boolean);
  if (ids.includes('all')) return { scenarios: [...SCENARIOS], echo: false };
  const scenarios: Scenario[] = [];
  let echo = false;
  for (const id of ids) {
    if (id === 'echo') {
      echo = true;
      continue;
    }
    const s = findScenario(id);
    if (!s) throw new BenchError('PD_E_BENCH_USAGE', `unknown scenario '${id}': choose from ${[...SCENARIOS.map((x) => x.id), 'echo', 'all'].join(', ')} (\`pd bench list\`)`);
    scenarios.push(s);
  }
  return { scenarios, echo };
}

/** Why a scenario cannot run here, or null. */
function unavailable(s: Scenario): string | null {
  const missing = Object.entries(s.needs).filter(([cmd]) => !onPath(cmd));
  if (missing.length) {
    const pkgs = [...new Set(missing.map(([, p]) => p))].join(' ');
    return `needs ${missing.map(([c]) => c).join(', ')}: install with \`apt-get install -y ${pkgs}\` (or \`npm run bench\`, which installs them)`;
  }
  if (s.root && process.getuid?.() !== 0) return 'needs root (it creates network namespaces)';
  return null;
}

export function listScenarios(): string {
  let out = '| scenario | cases | variants | needs |\n| --- | --- | --- | --- |\n';
  for (const s of SCENARIOS) {
    const variants = [...new Set(s.cases.flatMap((c) => c.variants))].map((v) => `${VARIANTS[v].letter} ${VARIANTS[v].label}`);
    out += `| ${s.id} | ${s.cases.map((c) => c.title).join('; ')} | ${variants.join(', ')} | ${Object.values(s.needs).join(' ')}${s.root ? ' (root)' : ''} |\n`;
  }
  out += '| echo | test/progs echo pair: 16 B ping-pong, one 64 KiB-write stream (bench/echo-ab.mjs) | A kernel TCP, B pdrun | gcc make |\n';
  return out;
}

function runEcho(o: BenchOptions): Promise<number> {
  const args = [ECHO_AB, '--reps', String(o.reps)];
  if (o.quick) args.push('--iters', '2000', '--bytes', '256M');
  if (o.json) args.push('--out', o.json);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: 'inherit', cwd: ROOT });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[:]/g, '-').replace(/\..*/, '');
}

export async function runBench(spec: string, o: BenchOptions): Promise<number> {
  const { scenarios, echo } = selectScenarios(spec);
  let status = 0;
  if (echo) status = await runEcho(o);
  if (scenarios.length === 0) return status;

  const runnable: Scenario[] = [];
  const skipped: string[] = [];
  for (const s of scenarios) {
    const why = unavailable(s);
    if (!why) runnable.push(s);
    else if (scenarios.length === 1) throw new BenchError(s.root ? 'PD_E_BENCH_ROOT' : 'PD_E_BENCH_MISSING', `${s.id} ${why}`);
    else {
      skipped.push(`${s.id}: ${why}`);
      log(`skipping ${s.id}: ${why}`);
    }
  }

  const tmpDir = mkdtempSync('/tmp/pdbench-');
  let ctl: BenchController | null = null;
  const controller = async (): Promise<BenchController> => {
    if (!ctl) {
      const c = new BenchController(path.join(tmpDir, 'pd.sock'), path.join(tmpDir, 'controller.log'));
      await c.start();
      ctl = c;
    }
    return ctl;
  };
  const cleanup = () => {
    (ctl as BenchController | null)?.stop();
    rmSync(tmpDir, { recursive: true, force: true });
  };
  const interrupted = (sig: NodeJS.Signals) => {
    log(`${sig}: stopping every process of the bench`);
    void killAllProcs()
      .then(() => Promise.all([...pendingTeardowns].map((t) => t().catch(() => {}))))
      .finally(() => {
        cleanup();
        process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
      });
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  const date = new Date();
  const loadAtStart = os.loadavg()[0]!;
  const samples: Sample[] = [];
  const summaries: CaseSummary[] = [];
  try {
    log(`${runnable.map((s) => s.id).join(', ')}: ${o.reps} repetition(s)${o.quick ? ', quick' : ''}; A/B(/C) alternate within each repetition`);
    for (const s of runnable) {
      const got = await runScenario(s, { reps: o.reps, quick: o.quick, variants: o.variants, tmpDir, controller, log });
      samples.push(...got);
      for (const c of s.cases) summaries.push(summarise(s, c, got, o.quick));
    }
  } finally {
    cleanup();
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }

  const git = gitRevision();
  const m = machine(runnable.flatMap((s) => Object.values(s.needs)), loadAtStart);
  const command = `pd bench ${process.argv.slice(3).join(' ')}`.trim();
  const doc: BenchDoc = { date: date.toISOString(), git: git.rev, dirty: git.dirty, command, options: o, machine: m, summaries, samples, skipped };
  process.stdout.write(renderMarkdown(doc));
  const base = o.json ?? path.join(RESULTS_DIR, `${runnable.map((s) => s.id).join('+')}-${stamp(date)}.json`);
  mkdirSync(path.dirname(base), { recursive: true });
  writeFileSync(base, `${JSON.stringify(doc, null, 2)}\n`);
  const svgFile = writeChart(doc, base);
  log(`wrote ${path.relative(process.cwd(), base)} and ${path.relative(process.cwd(), svgFile)}`);
  if (samples.some((s) => !s.ok)) status = 1;
  return status;
}

export interface BenchDoc {
  date: string;
  git: string;
  dirty: boolean;
  command: string;
  options: BenchOptions;
  machine: Machine;
  summaries: CaseSummary[];
  samples: Sample[];
  skipped: string[];
}

function scenarioIds(doc: BenchDoc): string[] {
  return [...new Set(doc.samples.map((s) => s.scenario))];
}

export function renderMarkdown(doc: BenchDoc): string {
  let md = `## pd bench ${scenarioIds(doc).join(', ')}, ${doc.date} (git ${doc.git}${doc.dirty ? '+dirty' : ''})\n\n`;
  md += 'A = kernel TCP over 127.0.0.1, B = server and client both under pdrun, C = Unix domain sockets (where the application has them). ';
  md += `Runs alternate A, B(, C) within each of ${doc.options.reps} repetition(s), each with fresh processes; the table shows medians. `;
  md += "CPU = user+system seconds of every server and client process (getrusage of their trees) plus, for B, the controller's.\n\n";
  for (const s of doc.summaries) md += `${caseTable(s)}\n`;
  md += `machine: ${describeMachine(doc.machine)}; ${Object.entries(doc.machine.packages).map(([p, v]) => `${p} ${v}`).join(', ')}\n`;
  md += `reproduce: \`${doc.command}\` (after \`npm run build\`), or \`npm run bench\`\n`;
  if (doc.skipped.length) md += `\nskipped: ${doc.skipped.join('; ')}\n`;
  return md;
}

/** Writes the SVG next to the JSON file; returns its path. */
function writeChart(doc: BenchDoc, jsonFile: string): string {
  const svgFile = `${jsonFile.replace(/\.json$/, '')}.svg`;
  writeFileSync(svgFile, ratioChart(doc.summaries, `pd bench ${scenarioIds(doc).join(', ')}`));
  return svgFile;
}

/** `pd bench report FILE.json`: the tables and chart again, from the samples of an earlier run. */
export function reportFromJson(file: string): number {
  let doc: BenchDoc;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as BenchDoc;
  } catch (e) {
    throw new BenchError('PD_E_BENCH_USAGE', `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const quick = doc.options?.quick === true;
  doc.summaries = [];
  for (const id of scenarioIds(doc)) {
    const sc = findScenario(id);
    if (!sc) continue;
    for (const c of sc.cases) if (doc.samples.some((s) => s.scenario === id && s.case === c.id)) doc.summaries.push(summarise(sc, c, doc.samples, quick));
  }
  doc.machine.load ??= { start: NaN, end: NaN };
  process.stdout.write(renderMarkdown(doc));
  log(`wrote ${path.relative(process.cwd(), writeChart(doc, file))}`);
  return 0;
}
