#!/usr/bin/env node
// A/B of the echo pair (test/progs/echo_server, echo_client) in ONE run:
// A = kernel TCP (plain), B = both ends under pdrun. Runs alternate A, B, A, B...
// for --reps repetitions of two workloads:
//   rtt   16 B ping-pong (echo_client pingpong, TCP_NODELAY, blocking read/write)
//   tput  one stream, 64 KiB write() calls, echoed back (echo_client throughput:
//         bytes counted, a sample of every read checked; see echo_client.c)
// Prints a markdown table of medians and B/A ratios on stdout, progress on
// stderr, and writes every sample to bench/results/echo-<date>.json.
// For each B run it records the connection's transport from `pd status --json`
// (the client holds the connection open until asked), so a B number measured
// on TCP is visible as such.
//
// usage: node bench/echo-ab.mjs [--reps 3] [--iters 20000] [--size 16]
//          [--bytes 2G] [--chunk 64K] [--only kernel|pdrun] [--out FILE]
// Needs: make progs, make (libpd.so), npx tsc -p . (scripts/bench.sh does all).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'test', 'progs', 'bin');
const SERVER = path.join(BIN, 'echo_server');
const CLIENT = path.join(BIN, 'echo_client');
const PDRUN = path.join(ROOT, 'dist', 'cli', 'pdrun.js');
const PD = path.join(ROOT, 'dist', 'cli', 'pd.js');

function parseSize(s) {
  const m = String(s).match(/^(\d+(?:\.\d+)?)([kKmMgG]?)(i?B)?$/);
  if (!m) throw new Error(`bad size ${s}`);
  const mul = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
  return Math.round(Number(m[1]) * mul);
}

const args = {
  reps: 3,
  iters: 20000,
  size: 16,
  bytes: 2 * 1024 ** 3,
  chunk: 64 * 1024,
  only: null,
  out: null,
};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const v = () => {
    if (i + 1 >= process.argv.length) throw new Error(`${a} needs a value`);
    return process.argv[++i];
  };
  if (a === '--reps') args.reps = Number(v());
  else if (a === '--iters') args.iters = Number(v());
  else if (a === '--size') args.size = parseSize(v());
  else if (a === '--bytes') args.bytes = parseSize(v());
  else if (a === '--chunk') args.chunk = parseSize(v());
  else if (a === '--only') args.only = v();
  else if (a === '--out') args.out = v();
  else if (a === '-h' || a === '--help') {
    process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 17).join('\n') + '\n');
    process.exit(0);
  } else throw new Error(`unknown argument ${a} (try --help)`);
}
if (args.only && !['kernel', 'pdrun'].includes(args.only)) throw new Error('--only takes kernel or pdrun');

const log = (s) => process.stderr.write(`echo-ab: ${s}\n`);
const pdDir = mkdtempSync('/tmp/pdbench-');
const PD_SOCKET = path.join(pdDir, 'pd.sock');
const baseEnv = { ...process.env, PD_SOCKET };

/** Spawn (own process group); resolves on exit with collected output. */
function run(cmd, argv, { stdinPipe = false, onStdout } = {}) {
  const child = spawn(cmd, argv, { env: baseEnv, detached: true, stdio: [stdinPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    stdout += d;
    onStdout?.(stdout);
  });
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin?.on('error', () => {});
  const exited = new Promise((resolve) => {
    child.on('error', (e) => resolve({ code: null, signal: null, stdout, stderr: stderr + String(e) }));
    // 'exit', not 'close': an on-demand controller may hold inherited pipes.
    child.on('exit', (code, signal) => setTimeout(() => resolve({ code, signal, stdout, stderr }), 100));
  });
  const kill = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  };
  return { child, exited, kill };
}

function withTimeout(p, ms, what, kill) {
  let t;
  return Promise.race([
    p,
    new Promise((_, rej) => {
      t = setTimeout(() => {
        kill?.();
        rej(new Error(`${what}: timed out after ${ms} ms`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(t));
}

function launcher(variant, prog, argv) {
  return variant === 'pdrun' ? [process.execPath, [PDRUN, '--', prog, ...argv]] : [prog, argv];
}

function pdStatus() {
  const r = spawnSync(process.execPath, [PD, 'status', '--json'], { env: baseEnv, encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return null;
  try {
    return JSON.parse(r.stdout);
  } catch {
    return null;
  }
}

/** One client run against a fresh server; returns {result, transport}. */
async function once(variant, clientArgs) {
  const [scmd, sargv] = launcher(variant, SERVER, ['--max-conns', '1', '--timeout', '900']);
  let portResolve, portReject;
  const portP = new Promise((res, rej) => ((portResolve = res), (portReject = rej)));
  const server = run(scmd, sargv, {
    onStdout: (out) => {
      const m = out.match(/^port (\d+)\n/);
      if (m) portResolve(Number(m[1]));
    },
  });
  server.exited.then((r) => portReject(new Error(`server exited early (${r.code}): ${r.stderr}`)));
  try {
    const port = await withTimeout(portP, 20_000, 'server start', server.kill);
    const [ccmd, cargv] = launcher(variant, CLIENT, [clientArgs[0], '127.0.0.1', String(port), ...clientArgs.slice(1), '--hold']);
    let lineResolve, lineReject;
    const lineP = new Promise((res, rej) => ((lineResolve = res), (lineReject = rej)));
    const client = run(ccmd, cargv, {
      stdinPipe: true,
      onStdout: (out) => {
        if (out.includes('\n')) lineResolve(out);
      },
    });
    client.exited.then((r) => lineReject(new Error(`client exited (${r.code}) early: ${r.stderr}`)));
    const line = await withTimeout(lineP, 900_000, `${variant} ${clientArgs[0]}`, client.kill);
    const result = JSON.parse(line.split('\n')[0]);
    let transport = 'tcp';
    if (variant === 'pdrun') {
      const st = pdStatus();
      const conn = st?.connections?.find((c) => c.ends?.some((e) => e.local === result.local || e.peer === result.local));
      transport = conn ? conn.transport : st ? 'unreported' : 'no-controller';
    }
    client.child.stdin.end();
    const cr = await withTimeout(client.exited, 60_000, 'client exit', client.kill);
    if (cr.code !== 0) throw new Error(`client failed (${cr.code}): ${cr.stderr}`);
    const sr = await withTimeout(server.exited, 60_000, 'server exit', server.kill);
    if (sr.code !== 0) throw new Error(`server failed (${sr.code}): ${sr.stderr}`);
    const stderr = (cr.stderr + sr.stderr).trim();
    return { result, transport, stderr: stderr || undefined };
  } finally {
    server.kill();
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

const variants = args.only ? [args.only] : ['kernel', 'pdrun'];
const workloads = [
  { id: 'rtt', argv: ['pingpong', String(args.iters), String(args.size)] },
  { id: 'tput', argv: ['throughput', String(args.bytes), String(args.chunk)] },
];
const samples = []; // {rep, variant, workload, ok, value..., transport, error}
let failures = 0;

log(`reps=${args.reps} iters=${args.iters} size=${args.size} bytes=${args.bytes} chunk=${args.chunk} variants=${variants.join(',')}`);
for (let rep = 0; rep < args.reps; rep++) {
  for (const w of workloads) {
    for (const variant of variants) {
      const t0 = Date.now();
      try {
        const { result, transport, stderr } = await once(variant, w.argv);
        const s = { rep, variant, workload: w.id, ok: true, transport, result, stderr };
        samples.push(s);
        const v =
          w.id === 'rtt'
            ? `median ${result.rtt_us.median.toFixed(2)} us, p99 ${result.rtt_us.p99.toFixed(2)} us`
            : `${result.gbytes_per_s.toFixed(3)} GB/s`;
        log(`rep ${rep + 1}/${args.reps} ${w.id} ${variant}: ${v} [${transport}] (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (e) {
        failures++;
        samples.push({ rep, variant, workload: w.id, ok: false, error: String(e.message ?? e) });
        log(`rep ${rep + 1}/${args.reps} ${w.id} ${variant}: FAILED: ${String(e.message ?? e).split('\n')[0]}`);
      }
    }
  }
}

spawnSync(process.execPath, [PD, 'stop'], { env: baseEnv, timeout: 10_000 });
rmSync(pdDir, { recursive: true, force: true });

function stat(variant, workload, pick) {
  const xs = samples.filter((s) => s.ok && s.variant === variant && s.workload === workload).map((s) => pick(s.result));
  return { median: median(xs), n: xs.length, samples: xs };
}
const rows = [
  { name: `${args.size} B ping-pong RTT, median (us)`, w: 'rtt', pick: (r) => r.rtt_us.median, lower: true, target: '<= 0.02x' },
  { name: `${args.size} B ping-pong RTT, p99 (us)`, w: 'rtt', pick: (r) => r.rtt_us.p99, lower: true, target: '' },
  { name: `one stream, ${args.chunk / 1024} KiB writes, echoed (GB/s each way)`, w: 'tput', pick: (r) => r.gbytes_per_s, lower: false, target: '>= 5x' },
];
const fmt = (x) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(3)) : 'n/a');
const transports = (w) =>
  [...new Set(samples.filter((s) => s.ok && s.variant === 'pdrun' && s.workload === w).map((s) => s.transport))].join(',') || 'n/a';

const summary = [];
let table = `| workload | kernel TCP | pdrun | pdrun / kernel | target | pdrun transport |\n| --- | --- | --- | --- | --- | --- |\n`;
for (const r of rows) {
  const a = stat('kernel', r.w, r.pick);
  const b = stat('pdrun', r.w, r.pick);
  const ratio = b.median / a.median;
  summary.push({ workload: r.name, kernel: a, pdrun: b, ratio });
  table += `| ${r.name} | ${fmt(a.median)} (n=${a.n}) | ${fmt(b.median)} (n=${b.n}) | ${Number.isFinite(ratio) ? ratio.toFixed(3) + 'x' : 'n/a'} | ${r.target} | ${transports(r.w)} |\n`;
}

const cmd = `node bench/echo-ab.mjs ${process.argv.slice(2).join(' ')}`.trim();
const gitRev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() !== '';
const machine = {
  cpus: os.cpus().length,
  cpu: os.cpus()[0]?.model,
  kernel: os.release(),
  node: process.version,
  hugepages: (() => {
    try {
      return Number(readFileSync('/proc/sys/vm/nr_hugepages', 'utf8').trim());
    } catch {
      return null;
    }
  })(),
};
const date = new Date().toISOString();
process.stdout.write(
  `## echo pair A/B, ${date} (git ${gitRev}${dirty ? '+dirty' : ''})\n\n` +
    `A = kernel TCP loopback, B = both ends under pdrun; runs alternated A/B, ${args.reps} repetition(s); medians.\n` +
    `Throughput: the echo client writes ${args.bytes} bytes in ${args.chunk}-byte write() calls and reads the echo back ` +
    `(bytes counted, first/last 8 bytes of every read checked); GB/s = bytes / seconds, each way.\n\n` +
    table +
    `\nmachine: ${machine.cpus} x ${machine.cpu}, Linux ${machine.kernel}, Node ${machine.node}, nr_hugepages ${machine.hugepages}\n` +
    `reproduce: \`npm run bench -- echo\` or \`pd bench echo\` (or \`${cmd}\` after the build)\n` +
    (failures ? `\n${failures} run(s) FAILED: see the JSON file and stderr.\n` : ''),
);

const outFile = args.out ?? path.join(ROOT, 'bench', 'results', `echo-${date.replace(/[:]/g, '-').replace(/\..*/, '')}.json`);
mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(outFile, JSON.stringify({ date, git: gitRev, dirty, command: cmd, args, machine, summary, samples }, null, 2) + '\n');
log(`wrote ${path.relative(ROOT, outFile)}`);
process.exit(failures ? 1 : 0);
