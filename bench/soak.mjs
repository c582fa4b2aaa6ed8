#!/usr/bin/env node
// The long fault and soak runs of issue 5, which the test suite runs small.
//
//   node bench/soak.mjs --minutes 30      mixed applications under pdrun for 30 minutes
//   node bench/soak.mjs --kills 200       the kill -9 fault tests (client, server,
//                                         controller) with 200 kills each
//   node bench/soak.mjs --minutes 30 --kills 200 --results bench/RESULTS.md
//
// The soak: one controller on a private socket; these workers loop at the same
// time until the time is up, every program under pdrun, every run checked:
//   stream     echo_client stream, 1..256 MiB, every byte verified + checksum
//   short      echo_client short, 200 connections of random sizes, byte-exact
//   pingpong   echo_client pingpong, 16 B..4 KiB messages, each echo compared
//   evloop     ev_client (epoll-lt/epoll-et/poll/select, random) against
//              ev_server epoll-et: 16 concurrent connections, 4 rounds, verified
//   twoway     fault_stream pair, 1..128 MiB each way at once, verified
//   redis      redis-benchmark SET/GET against redis-server (if installed):
//              exit status and "requests per second" lines only
// A run that exits non-zero, prints no ok:true, or hangs past its bound is an
// error. pd status is sampled every 2 s: the number of connections seen on the
// ring is reported (a soak on TCP only would prove nothing). At the end every
// server is stopped and the controller must account for no connection, no
// arena and no more fds than at the start.
//
// --kills N runs `vitest run test/integration/fault-kill-*` with PD_FAULT_KILLS=N.
// With --results FILE a section is appended to FILE (markdown), and the raw
// numbers go to bench/results/soak-<date>.json. Exit status 0 only with zero errors.
import { spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The soak runs from a snapshot of the build (dist/, the shim, the test
// programs) taken after building: a rebuild of the working tree during the
// 30 minutes (any test run rebuilds dist/) must not swap files under it.
let SNAP = ROOT;
let BIN = path.join(ROOT, 'test', 'progs', 'bin');
let PDRUN = path.join(ROOT, 'dist', 'cli', 'pdrun.js');
let PD = path.join(ROOT, 'dist', 'cli', 'pd.js');

function snapshot() {
  SNAP = mkdtempSync(path.join(os.tmpdir(), 'pdsoak-build-'));
  for (const d of ['dist', 'preload', path.join('test', 'progs', 'bin')]) cpSync(path.join(ROOT, d), path.join(SNAP, d), { recursive: true });
  cpSync(path.join(ROOT, 'package.json'), path.join(SNAP, 'package.json'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(SNAP, 'node_modules'));
  BIN = path.join(SNAP, 'test', 'progs', 'bin');
  PDRUN = path.join(SNAP, 'dist', 'cli', 'pdrun.js');
  PD = path.join(SNAP, 'dist', 'cli', 'pd.js');
}

const args = { minutes: 0, kills: 0, results: null, seed: Date.now() % 100000 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const v = () => process.argv[++i];
  if (a === '--minutes') args.minutes = Number(v());
  else if (a === '--kills') args.kills = Number(v());
  else if (a === '--results') args.results = v();
  else if (a === '--seed') args.seed = Number(v());
  else {
    process.stderr.write(`usage: node bench/soak.mjs [--minutes M] [--kills N] [--results FILE] [--seed S]\n`);
    process.exit(2);
  }
}
if (!args.minutes && !args.kills) args.minutes = 30;

const log = (m) => process.stderr.write(`soak: ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let seed = args.seed >>> 0 || 1;
const rnd = () => {
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed / 0x1_0000_0000;
};
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
const MiB = 1024 * 1024;

function build() {
  for (const [cmd, a] of [['make', ['-s', 'all', 'progs']], ['npx', ['tsc', '-p', '.']]]) {
    const r = spawnSync(cmd, a, { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${a.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  }
}

/** Runs a command to its end within timeoutMs; resolves {code, signal, stdout, stderr, timedOut}. */
function run(cmd, argv, env, timeoutMs, input, onStdout) {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      onStdout?.(stdout);
    });
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-20000)));
    if (input !== undefined) child.stdin.end(input);
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** A long-running server under pdrun: waits for "port N". */
async function server(prog, argv, env) {
  const child = spawn(process.execPath, [PDRUN, '--', path.join(BIN, prog), ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err = (err + d).slice(-20000)));
  for (let i = 0; i < 200 && !/port (\d+)/.test(out); i++) await sleep(50);
  const m = /port (\d+)/.exec(out);
  if (!m) throw new Error(`${prog} did not start: ${err}`);
  return { child, port: Number(m[1]), stderr: () => err };
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

function fdList(pid) {
  const out = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try { out.push(`${fd}:${readlinkSync(`/proc/${pid}/fd/${fd}`)}`); } catch { /* raced */ }
  }
  return out;
}
const fdCount = (pid) => fdList(pid).length;

async function soak(minutes) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pdsoak-'));
  const sock = path.join(dir, 'pd.sock');
  const env = { PD_SOCKET: sock };
  const { fetchStatus } = await import(pathToFileURL(path.join(SNAP, 'dist', 'control', 'client.js')).href);
  const ctl = spawn(process.execPath, [PD, 'controller', '--idle-exit', '0'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let ctlErr = '';
  ctl.stderr.on('data', (d) => (ctlErr = (ctlErr + d).slice(-50000)));
  let status = null;
  for (let i = 0; i < 100 && !status; i++) {
    await sleep(100);
    status = await fetchStatus(sock, 2000).catch(() => null);
  }
  if (!status) throw new Error(`controller did not start: ${ctlErr}`);
  const fdsAtStart = fdList(ctl.pid);
  const fds0 = fdsAtStart.length;

  const echo = await server('echo_server', ['--threads', '--timeout', String(minutes * 60 + 600)], env);
  const ev = await server('ev_server', ['--mode', 'epoll-et', '--timeout', String(minutes * 60 + 600)], env);
  let redis = null;
  const redisBin = ['/usr/bin/redis-server', '/usr/bin/redis-benchmark'].every(existsSync);
  if (redisBin) {
    const port = await freePort();
    redis = spawn(process.execPath, [PDRUN, '--', '/usr/bin/redis-server', '--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], {
      env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'], detached: true,
    });
    redis.port = port;
    // Ready once it accepts a connection.
    for (let i = 0; i < 400; i++) {
      const up = await new Promise((resolve) => {
        const c = connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
        c.on('error', () => resolve(false));
      });
      if (up) break;
      await sleep(50);
    }
  }

  const deadline = Date.now() + minutes * 60_000;
  const stats = {};
  const errors = [];
  const account = (name, ok, bytes, detail) => {
    const s = (stats[name] ??= { runs: 0, ok: 0, bytes: 0 });
    s.runs++;
    if (ok) {
      s.ok++;
      s.bytes += bytes;
    } else {
      errors.push({ worker: name, at: new Date().toISOString(), detail: detail.slice(-3000) });
      log(`ERROR in ${name}: ${detail.slice(-800)}`);
    }
  };
  const jsonOk = (r) => {
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    try {
      return line ? JSON.parse(line) : null;
    } catch {
      return null;
    }
  };
  const pdrun = (prog, argv, timeoutMs, input) => run(process.execPath, [PDRUN, '--', path.join(BIN, prog), ...argv], env, timeoutMs, input);
  const describe = (r) => `code ${r.code} signal ${r.signal}${r.timedOut ? ' (timed out)' : ''}\n${r.stdout.slice(-1000)}\n${r.stderr}`;

  const workers = {
    async stream() {
      const bytes = Math.floor((1 + rnd() * 255) * MiB);
      const r = await pdrun('echo_client', ['stream', '127.0.0.1', String(echo.port), String(bytes), pick(['1K', '16K', '64K', '1M']), '--seed', String(Math.floor(rnd() * 1e6)), '--timeout', '300'], 320_000);
      const j = jsonOk(r);
      account('stream', r.code === 0 && j?.ok === true && j.bytes === bytes, 2 * bytes, describe(r));
    },
    async short() {
      const r = await pdrun('echo_client', ['short', '127.0.0.1', String(echo.port), '200', '--seed', String(Math.floor(rnd() * 1e6)), '--timeout', '300'], 320_000);
      const j = jsonOk(r);
      account('short', r.code === 0 && j?.ok === true && j.conns === 200, 2 * (j?.bytes ?? 0), describe(r));
    },
    async pingpong() {
      const size = pick([16, 100, 1024, 4096]);
      const iters = 20000;
      const r = await pdrun('echo_client', ['pingpong', '127.0.0.1', String(echo.port), String(iters), String(size), '--timeout', '300'], 320_000);
      const j = jsonOk(r);
      account('pingpong', r.code === 0 && j?.ok === true, 2 * size * iters * 1.1, describe(r));
    },
    async evloop() {
      const mode = pick(['epoll-lt', 'epoll-et', 'poll', 'select']);
      const bytes = Math.floor((1 + rnd() * 3) * MiB);
      const r = await pdrun('ev_client', [mode, '127.0.0.1', String(ev.port), '16', String(bytes), '--seed', String(Math.floor(rnd() * 1e6)), '--rounds', '4', '--timeout', '300'], 320_000);
      const j = jsonOk(r);
      account('evloop', r.code === 0 && j?.ok === true, 2 * 16 * bytes, describe(r));
    },
    async twoway() {
      const bytes = Math.floor((1 + rnd() * 127) * MiB);
      // The server picks its port and says it once listening: the client connects only then.
      let port = 0;
      const s = run(process.execPath, [PDRUN, '--', path.join(BIN, 'fault_stream'), 'server', '--bytes', String(bytes), '--tx-seed', '11', '--rx-seed', '12', '--timeout', '300'], env, 320_000,
        undefined, (out) => {
          const m = /^port (\d+)$/m.exec(out);
          if (m) port = Number(m[1]);
        });
      for (let i = 0; i < 600 && !port; i++) await sleep(50);
      if (!port) {
        const sr = await s;
        account('twoway', false, 0, `server never listened: ${describe(sr)}`);
        return;
      }
      const c = await pdrun('fault_stream', ['client', String(port), '--bytes', String(bytes), '--tx-seed', '12', '--rx-seed', '11', '--timeout', '300'], 320_000);
      const sr = await s;
      const jc = jsonOk(c);
      const js = jsonOk(sr);
      const good = (j) => j?.ok === true && j.rx === bytes && j.rx_end === 'eof' && j.tx_end === 'done';
      account('twoway', c.code === 0 && sr.code === 0 && good(jc) && good(js), 2 * bytes, `client ${describe(c)}\nserver ${describe(sr)}`);
    },
    async redis() {
      if (!redis) return sleep(1000);
      const r = await run(process.execPath, [PDRUN, '--', '/usr/bin/redis-benchmark', '-p', String(redis.port), '-q', '-t', 'set,get', '-n', '100000', '-c', '50', '-d', String(pick([16, 1024, 65536]))], env, 300_000);
      account('redis', r.code === 0 && /GET: [\d.]+ requests per second/.test(r.stdout) && /SET: /.test(r.stdout), 0, describe(r));
    },
  };

  const ringSeen = new Set();
  let samples = 0;
  const sampler = (async () => {
    while (Date.now() < deadline) {
      const st = await fetchStatus(sock, 3000).catch(() => null);
      if (st) {
        samples++;
        for (const c of st.connections) if (c.transport === 'ring') ringSeen.add(c.ends.map((e) => `${e.pid}:${e.connId}`).join('|'));
      }
      await sleep(2000);
    }
  })();
  const loops = Object.entries(workers).map(async ([name, fn]) => {
    while (Date.now() < deadline) {
      try {
        await fn();
      } catch (e) {
        account(name, false, 0, String(e?.stack ?? e));
      }
    }
  });
  let lastReport = Date.now();
  const progress = setInterval(() => {
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    log(`${left} s left; ${Object.entries(stats).map(([k, v]) => `${k} ${v.ok}/${v.runs}`).join(', ')}; errors ${errors.length}; ring connections seen ${ringSeen.size}`);
    lastReport = Date.now();
  }, 60_000);
  await Promise.all(loops);
  await sampler;
  clearInterval(progress);
  void lastReport;

  // Stop the servers; everything must be reclaimed.
  for (const c of [echo.child, ev.child, redis].filter(Boolean)) {
    try { process.kill(-c.pid, 'SIGTERM'); } catch { /* gone */ }
  }
  await sleep(1500);
  let end = null;
  for (let i = 0; i < 50; i++) {
    end = await fetchStatus(sock, 3000).catch(() => null);
    if (end && end.connections.length === 0 && end.arenas.length === 0 && end.sessions.length === 0 &&
      end.controller.launchers === 0 && fdCount(ctl.pid) <= fds0) break;
    await sleep(200);
  }
  const fds1 = fdCount(ctl.pid);
  if (!end || end.connections.length || end.arenas.length || end.sessions.length) {
    errors.push({ worker: 'reclaim', detail: `after the soak the controller still holds: ${JSON.stringify(end)}` });
  }
  if (fds1 > fds0) {
    const extra = fdList(ctl.pid).filter((x) => !fdsAtStart.includes(x));
    errors.push({ worker: 'reclaim', detail: `controller fds ${fds0} at start, ${fds1} at the end: ${extra.join(', ')}` });
  }
  if (ringSeen.size === 0) errors.push({ worker: 'ring', detail: 'no connection was ever seen on the ring' });
  ctl.kill('SIGTERM');
  await sleep(500);
  rmSync(dir, { recursive: true, force: true });
  return { minutes, stats, errors, ringConnectionsSeen: ringSeen.size, statusSamples: samples, controllerFds: [fds0, fds1], controllerLog: ctlErr.slice(-4000) };
}

async function kills(n) {
  const files = ['test/integration/fault-kill-client', 'test/integration/fault-kill-server', 'test/integration/fault-kill-controller'];
  const out = {};
  for (const f of files) {
    const t0 = Date.now();
    const r = await run('npx', ['vitest', 'run', f], { PD_FAULT_KILLS: String(n), CI: 'true' }, 3600_000);
    const text = r.stdout + r.stderr;
    const statsLine = /kill (client|server|controller): (.*)/.exec(text)?.[0] ?? '';
    out[path.basename(f)] = { passed: r.code === 0, seconds: Math.round((Date.now() - t0) / 1000), stats: statsLine, tail: r.code === 0 ? '' : text.slice(-4000) };
    log(`${f}: ${r.code === 0 ? 'passed' : 'FAILED'} ${statsLine}`);
  }
  return out;
}

function markdown(res) {
  const lines = [`## Soak and faults (issue 5), ${res.date}`, '',
    `At git \`${res.git}\`${res.dirty ? ' (plus uncommitted work in the shared tree)' : ''}. Machine: ${os.cpus().length} vCPU, ` +
    `${os.release()}, load average ${res.load[0]} at the start and ${res.load[1]} at the end (other work ran on it too). Seed ${args.seed}.`, ''];
  if (res.soak) {
    const s = res.soak;
    const errs = s.errors.length;
    lines.push(`\`node bench/soak.mjs --minutes ${s.minutes}\`: mixed applications under pdrun for ${s.minutes} minutes, every byte checked. **${errs} error${errs === 1 ? '' : 's'}.**`, '');
    lines.push('| workload | runs | ok | bytes verified |', '| --- | --- | --- | --- |');
    for (const [k, v] of Object.entries(s.stats)) lines.push(`| ${k} | ${v.runs} | ${v.ok} | ${k === 'redis' ? '-' : `${(v.bytes / 1024 ** 3).toFixed(1)} GiB`} |`);
    lines.push('', `${s.ringConnectionsSeen} distinct connections seen on the ring in ${s.statusSamples} status samples; controller fds ${s.controllerFds[0]} at start, ${s.controllerFds[1]} at the end; no connection, arena or session left.`);
    for (const e of s.errors.slice(0, 10)) lines.push('', `- ${e.worker}: ${'```'}${e.detail.split('\n').slice(0, 6).join(' / ')}${'```'}`);
    lines.push('');
  }
  if (res.kills) {
    lines.push(`\`node bench/soak.mjs --kills ${res.killsN}\`: the kill -9 fault tests with ${res.killsN} kills each.`, '');
    lines.push('| test | result | seconds | numbers |', '| --- | --- | --- | --- |');
    for (const [k, v] of Object.entries(res.kills)) lines.push(`| ${k} | ${v.passed ? 'passed' : '**FAILED**'} | ${v.seconds} | ${v.stats.replace(/\|/g, '/')} |`);
    lines.push('');
  }
  return lines.join('\n');
}

async function main() {
  build();
  snapshot();
  log(`running from a snapshot of the build in ${SNAP}`);
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() !== '';
  const res = { date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), git, dirty, load: [os.loadavg()[0].toFixed(2)], killsN: args.kills };
  if (args.minutes) res.soak = await soak(args.minutes);
  if (args.kills) res.kills = await kills(args.kills);
  res.load.push(os.loadavg()[0].toFixed(2));
  mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  const json = path.join(ROOT, 'bench', 'results', `soak-${res.date.replace(/[:]/g, '-')}.json`);
  writeFileSync(json, `${JSON.stringify(res, null, 1)}\n`);
  const md = markdown(res);
  process.stdout.write(`${md}\n`);
  if (args.results) appendFileSync(args.results, `\n${md}\n`);
  log(`raw results in ${json}`);
  if (SNAP !== ROOT) rmSync(SNAP, { recursive: true, force: true });
  const failed = (res.soak?.errors.length ?? 0) > 0 || Object.values(res.kills ?? {}).some((k) => !k.passed);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`soak: ${e?.stack ?? e}\n`);
  process.exit(1);
});
