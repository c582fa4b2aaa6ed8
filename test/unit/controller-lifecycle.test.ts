// Checks the controller's lifecycle: refusing a second controller, removing a
// stale socket, idle exit, cleanup on SIGTERM, `pd stop` and `pd status` with
// and without a controller.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AF_UNIX, SOCK_SEQPACKET, bind, closeQuietly, sockaddrUn, socket } from '../../src/datapath/libc.js';
import { ControllerProc, FakeShim, PD_JS, sleep, until } from './fake-shim.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0)) await f();
});

function tmpSock(): string {
  const dir = mkdtempSync('/tmp/pdunit-');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'pd.sock');
}

function pd(args: string[], timeout = 10_000) {
  return spawnSync(process.execPath, [PD_JS, ...args], { encoding: 'utf8', timeout });
}

const files = (sock: string) => [sock, `${sock}.status`, `${sock}.pid`];

describe('controller lifecycle', () => {
  it('refuses to start when another controller answers', async () => {
    const ctl = await ControllerProc.start();
    cleanups.push(() => ctl.stop());
    const r = pd(['controller', '--socket', ctl.sock, '--idle-exit', '0']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/already running at/);
    expect(r.stdout).toBe('');
    // The first one is untouched.
    expect((await ctl.status()).controller.pid).toBe(ctl.child.pid);
  });

  it('removes a stale socket and starts', async () => {
    const sock = tmpSock();
    const fd = socket(AF_UNIX, SOCK_SEQPACKET);
    bind(fd, sockaddrUn(sock));
    closeQuietly(fd); // bound, never listened, closed: connect gets ECONNREFUSED
    writeFileSync(`${sock}.pid`, '999999\n'); // stale pid file, not locked
    expect(existsSync(sock)).toBe(true);
    const ctl = await ControllerProc.start([], {}, sock);
    cleanups.push(() => ctl.stop());
    expect((await ctl.status()).controller.socket).toBe(sock);
  });

  it('refuses a socket path that is not a socket', () => {
    const sock = tmpSock();
    writeFileSync(sock, 'not a socket');
    const r = pd(['controller', '--socket', sock, '--idle-exit', '0']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/is not a socket/);
  });

  it('fails clearly when the socket directory cannot be made', () => {
    const r = pd(['controller', '--socket', '/dev/null/pipedevice/pd.sock']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot create \/dev\/null\/pipedevice.*PD_SOCKET/);
  });

  it('rejects a bad option value naming its source', () => {
    const r = spawnSync(process.execPath, [PD_JS, 'controller', '--socket', tmpSock()], {
      encoding: 'utf8', env: { ...process.env, PD_RING_SIZE: '300000' },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/PD_RING_SIZE=300000: expected a power of two/);
  });

  it('exits when idle, removing its files; a launcher connection keeps it up', async () => {
    const ctl = await ControllerProc.start(['--idle-exit', '1']);
    cleanups.push(() => ctl.stop());
    // A connection that never says HELLO (what pdrun holds) counts as activity.
    const launcher = new FakeShim(ctl.sock);
    await sleep(1500);
    expect(ctl.exitCode).toBeNull();
    expect((await ctl.status()).controller.launchers).toBe(1);
    launcher.close();
    const code = await Promise.race([ctl.exited, sleep(5000).then(() => 'timeout')]);
    expect(code).toBe(0);
    for (const f of files(ctl.sock)) expect(existsSync(f)).toBe(false);
  });

  it('SIGTERM: exits 0 and removes its files', async () => {
    const ctl = await ControllerProc.start();
    cleanups.push(() => ctl.stop());
    for (const f of files(ctl.sock)) expect(existsSync(f)).toBe(true);
    ctl.child.kill('SIGTERM');
    expect(await ctl.exited).toBe(0);
    for (const f of files(ctl.sock)) expect(existsSync(f)).toBe(false);
    expect(ctl.stdout).toBe('');
  });

  it('pd stop stops it and waits; with nobody running stop and status fail clearly', async () => {
    const ctl = await ControllerProc.start();
    cleanups.push(() => ctl.stop());
    const r = pd(['stop', '--socket', ctl.sock]);
    expect(r.status).toBe(0);
    expect(ctl.exitCode === 0 || (await ctl.exited) === 0).toBe(true);
    for (const f of files(ctl.sock)) expect(existsSync(f)).toBe(false);
    const again = pd(['stop', '--socket', ctl.sock]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/no controller running/);
    const st = pd(['status', '--socket', ctl.sock]);
    expect(st.status).toBe(1);
    expect(st.stdout).toBe('');
    expect(st.stderr).toMatch(/no controller running at .*pd controller/);
  });

  it('a SIGKILLed controller leaves files the next one cleans up', async () => {
    const ctl = await ControllerProc.start();
    cleanups.push(() => ctl.stop());
    ctl.child.kill('SIGKILL');
    await ctl.exited;
    expect(existsSync(ctl.sock)).toBe(true);
    const next = await ControllerProc.start([], {}, ctl.sock);
    cleanups.push(() => next.stop());
    await until('status from the new controller', async () => (await next.status()).controller.pid === next.child.pid);
  });
});
