// Checks pdrun as a launcher: usage errors, command not found, exit codes and
// signals passed through, LD_PRELOAD appended, the controller started on
// demand and kept up while the program runs, and the one-line fallbacks
// (static binary, no controller). pdrun itself never writes to stdout.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchStatus } from '../../src/control/client.js';
import { PDRUN_JS, PD_JS, sleep, until } from './fake-shim.js';

let dir: string;
let libA: string;
let libB: string;

beforeAll(() => {
  dir = mkdtempSync('/tmp/pdrun-unit-');
  libA = path.join(dir, 'liba.so');
  libB = path.join(dir, 'libb.so');
  for (const lib of [libA, libB]) {
    const r = spawnSync('cc', ['-shared', '-fPIC', '-o', lib, '-x', 'c', '/dev/null'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cc: ${r.stderr}`);
  }
});

afterAll(() => {
  spawnSync(process.execPath, [PD_JS, 'stop', '--socket', path.join(dir, 'ctl', 'pd.sock')]);
  rmSync(dir, { recursive: true, force: true });
});

function pdrun(args: string[], env: Record<string, string | undefined> = {}) {
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, PD_SOCKET: path.join(dir, 'nothing', 'pd.sock'), ...env })) {
    if (v !== undefined) e[k] = v;
  }
  return spawnSync(process.execPath, [PDRUN_JS, ...args], { encoding: 'utf8', env: e, timeout: 20_000 });
}

describe('pdrun', () => {
  it('no command: usage error, exit 2', () => {
    const r = pdrun([]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no command given/);
    expect(r.stdout).toBe('');
  });

  it('--help goes to stderr', () => {
    const r = pdrun(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/--preload/);
  });

  it('command not found: exit 127', () => {
    const r = pdrun(['--preload', libA, 'pd-no-such-command-xyz']);
    expect(r.status).toBe(127);
    expect(r.stderr).toBe('pdrun: pd-no-such-command-xyz: command not found\n');
  });

  it('passes the exit code and the program flags through', () => {
    const r = pdrun(['--preload', libA, '--socket', '/dev/null/x/pd.sock', 'sh', '-c', 'echo "$@"; exit 7', 'sh', '--socket', '-x']);
    expect(r.status).toBe(7);
    expect(r.stdout).toBe('--socket -x\n');
  });

  it('death by signal: exit 128 + signal', () => {
    const r = pdrun(['--preload', libA, '--socket', '/dev/null/x/pd.sock', 'sh', '-c', 'kill -TERM $$']);
    expect(r.status).toBe(143);
  });

  it('no controller possible: one warning line, PD_NO_CONTROLLER=1 for the program', () => {
    const r = pdrun(['--preload', libA, 'sh', '-c', 'echo "$PD_NO_CONTROLLER|$PD_SOCKET"'], { PD_SOCKET: '/dev/null/x/pd.sock' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('1|/dev/null/x/pd.sock\n');
    expect(r.stderr).toBe('pipedevice: no controller at /dev/null/x/pd.sock (cannot create /dev/null/x: ENOTDIR): running on kernel TCP\n');
    // Under /proc, mkdir answers ENOENT forever (Node's recursive mkdir would spin).
    const p = pdrun(['--preload', libA, 'true'], { PD_SOCKET: '/proc/pdnope/pd.sock' });
    expect(p.status).toBe(0);
    expect(p.stderr).toMatch(/^pipedevice: no controller at \/proc\/pdnope\/pd\.sock \([^\n]*\): running on kernel TCP\n$/);
  });

  it('a static binary: one line, and it still runs', () => {
    const r = pdrun(['--preload', libA, '--socket', '/dev/null/x/pd.sock', '/sbin/ldconfig', '--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/ldconfig/);
    expect(r.stderr.split('\n')[0]).toBe('pipedevice: /sbin/ldconfig is statically linked: no libc to interpose, running on kernel TCP');
  });

  it('appends to LD_PRELOAD, starts a controller on demand and keeps it up while the program runs', async () => {
    const sock = path.join(dir, 'ctl', 'pd.sock');
    const env: Record<string, string> = { ...process.env as Record<string, string>, PD_SOCKET: sock, LD_PRELOAD: libB };
    const child = spawn(process.execPath, [PDRUN_JS, '--preload', libA, '--idle-exit', '1', 'sh', '-c',
      'echo "$LD_PRELOAD|$PD_SOCKET|${PD_NO_CONTROLLER:-unset}"; sleep 2.5'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await until('the program to start', () => out.includes('\n'), 10_000);
    expect(out).toBe(`${libB} ${libA}|${sock}|unset\n`);
    const doc = await fetchStatus(sock);
    expect(doc.controller.launchers).toBe(1);
    await sleep(1500); // longer than --idle-exit: pdrun's connection keeps it up
    expect((await fetchStatus(sock)).controller.pid).toBe(doc.controller.pid);
    expect(await exited).toBe(0);
    expect(err).toBe('');
    // pdrun gone: the controller idles out and cleans up after itself.
    await until('idle exit', () => !existsSync(sock), 5000);
    expect(existsSync(`${sock}.pid`)).toBe(false);
    expect(existsSync(`${sock}.log`)).toBe(true);
  });

  it('relays SIGTERM and SIGUSR1 to the program', async () => {
    for (const [sig, code] of [['SIGUSR1', 42], ['SIGTERM', 43]] as const) {
      const child = spawn(process.execPath, [PDRUN_JS, '--preload', libA, '--socket', '/dev/null/x/pd.sock', 'sh', '-c',
        'trap "exit 42" USR1; trap "exit 43" TERM; echo ready; while :; do sleep 0.05; done'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      await until('ready', () => out.includes('ready'), 10_000);
      child.kill(sig);
      expect(await exited).toBe(code);
    }
  });
});
