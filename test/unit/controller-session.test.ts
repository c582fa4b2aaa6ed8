// Checks the session handshake: HELLO is answered by HELLO_ACK carrying a sealed
// session page whose seq counts the messages the controller sent.
import { statSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SESSION_PAGE, constant, offsetOf } from '../../src/datapath/layout.js';
import { F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, closeQuietly, getSeals } from '../../src/datapath/libc.js';
import { Mapping } from '../../src/datapath/shm.js';
import { PROTO_VERSION } from '../../src/control/protocol.js';
import { ControllerProc, FakeShim } from './fake-shim.js';

describe('session handshake', () => {
  let ctl: ControllerProc;
  beforeEach(async () => {
    ctl = await ControllerProc.start();
  });
  afterEach(async () => {
    await ctl.stop();
  });

  it('answers HELLO with HELLO_ACK and a session page', async () => {
    const shim = new FakeShim(ctl.sock);
    const { sessionId, pageFd } = await shim.hello();
    expect(sessionId).toBeGreaterThan(0);
    expect(getSeals(pageFd) & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)).toBe(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    const page = new Mapping(pageFd, constant('SESSION_PAGE_SIZE'));
    expect(page.load32(offsetOf(SESSION_PAGE, 'magic'))).toBe(constant('SESSION_MAGIC'));
    expect(page.load32(offsetOf(SESSION_PAGE, 'version'))).toBe(PROTO_VERSION);
    expect(page.load64(offsetOf(SESSION_PAGE, 'seq'))).toBe(1n);

    // One more message to this session (a DECLINE for a non-TCP fd) bumps seq to 2.
    const notTcp = new FakeShim(ctl.sock); // any fd that is not a TCP socket
    shim.send({ type: 'conn-report', connId: 7n, origin: constant('ORIGIN_CONNECT') }, [notTcp.fd]);
    const m = await shim.next();
    expect(m.msg).toMatchObject({ type: 'decline', connId: 7n, reason: constant('DECLINE_NOT_TCP') });
    expect(page.load64(offsetOf(SESSION_PAGE, 'seq'))).toBe(2n);

    page.unmap();
    closeQuietly(pageFd);
    notTcp.close();
    shim.close();
    expect(ctl.stdout).toBe('');
  });

  it('socket, status socket and pid file are private to the user', async () => {
    for (const p of [ctl.sock, `${ctl.sock}.status`, `${ctl.sock}.pid`]) {
      expect((statSync(p).mode & 0o777).toString(8)).toBe('600');
    }
    expect((statSync(ctl.dir).mode & 0o777).toString(8)).toBe('700');
  });

  it('closes a session whose HELLO has the wrong protocol version', async () => {
    const shim = new FakeShim(ctl.sock);
    shim.send({ type: 'hello', protoVersion: PROTO_VERSION + 1, pid: process.pid, flags: 0 });
    expect(await shim.closedByController()).toBe(true);
    await ctl.waitLog(/speaks session protocol/);
    shim.close();
  });

  it('status lists a session with its pid and comm', async () => {
    const shim = new FakeShim(ctl.sock);
    const { pageFd } = await shim.hello();
    const doc = await ctl.status();
    expect(doc.sessions).toHaveLength(1);
    expect(doc.sessions[0]).toMatchObject({ pid: process.pid, connections: 0 });
    expect(doc.sessions[0]!.comm).not.toBe('');
    closeQuietly(pageFd);
    shim.close();
  });
});
