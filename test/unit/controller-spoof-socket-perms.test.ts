// Checks who may connect to the controller (root: it runs clients as other users with setpriv): by default the session socket is 0600 and another user gets EACCES; with PD_SOCKET_GROUP a member of that group gets a session (HELLO_ACK) while a user outside it still gets EACCES, and the status socket stays the controller user's (0600) either way.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { statusSocketPath } from '../../src/control/paths.js';
import { ControllerProc, ROOT } from './fake-shim.js';

const canSwitch = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;

/** Connects to the session socket as uid:gid and says HELLO; prints what happened. */
function tryAs(uid: number, gid: number, sock: string): string {
  const script = `
    const c = await import(${JSON.stringify(`${ROOT}/dist/datapath/libc.js`)});
    const p = await import(${JSON.stringify(`${ROOT}/dist/control/protocol.js`)});
    let s;
    try {
      s = c.socket(c.AF_UNIX, c.SOCK_SEQPACKET | c.SOCK_CLOEXEC);
      c.connect(s, c.sockaddrUn(${JSON.stringify(sock)}));
    } catch (e) { process.stdout.write(e.code ?? String(e)); process.exit(0); }
    c.sendWithFds(s, p.encode({ type: 'hello', protoVersion: p.PROTO_VERSION, pid: process.pid, flags: 0 }), []);
    const end = Date.now() + 5000;
    while (Date.now() < end) {
      const r = c.recvWithFds(s, 256);
      if (r) { const d = p.decode(r.data, r.fds.length); process.stdout.write(d.ok ? d.msg.type : 'bad'); process.exit(0); }
      await new Promise((r) => setTimeout(r, 10));
    }
    process.stdout.write('timeout');
  `;
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', process.execPath, '--input-type=module', '-e', script], {
    encoding: 'utf8', timeout: 15_000,
  });
  return r.stdout.trim() || `status ${r.status}: ${r.stderr}`;
}

describe.skipIf(!canSwitch)('control socket permissions', () => {
  let ctl: ControllerProc | null = null;
  afterEach(async () => {
    await ctl?.stop();
    ctl = null;
  });

  it('by default only the user may connect', async () => {
    ctl = await ControllerProc.start(['--log', 'quiet']);
    expect(statSync(ctl.sock).mode & 0o777).toBe(0o600);
    expect(statSync(statusSocketPath(ctl.sock)).mode & 0o777).toBe(0o600);
    expect(tryAs(65534, 65534, ctl.sock)).toBe('EACCES');
  });

  it('PD_SOCKET_GROUP lets that group in, nobody else; status stays private', async () => {
    ctl = await ControllerProc.start(['--log', 'quiet'], { PD_SOCKET_GROUP: '65534' });
    const st = statSync(ctl.sock);
    expect([st.mode & 0o777, st.gid]).toEqual([0o660, 65534]);
    expect(statSync(statusSocketPath(ctl.sock)).mode & 0o777).toBe(0o600);
    expect(tryAs(65534, 65534, ctl.sock)).toBe('hello-ack');
    expect(tryAs(65533, 65533, ctl.sock)).toBe('EACCES');
  });
});
