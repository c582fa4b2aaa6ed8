// Checks that a malformed message closes only the session that sent it (and
// the fds that came with it), while another session keeps working.
import { fstatSync, readdirSync, readlinkSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MSG_CONN_REPORT, constant } from '../../src/datapath/layout.js';
import { closeQuietly, eventfd } from '../../src/datapath/libc.js';
import { PROTO_VERSION, encode } from '../../src/control/protocol.js';
import { ControllerProc, FakeShim, closeAll, tcpPair } from './fake-shim.js';

const CONNECT = constant('ORIGIN_CONNECT');
const ACCEPT = constant('ORIGIN_ACCEPT');

/** Whether process pid has an fd open on the socket with this inode. */
export function holdsSocket(pid: number, ino: number): boolean {
  return readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${ino}]`;
    } catch {
      return false;
    }
  });
}

function report(connId: bigint, origin = CONNECT): Buffer {
  return encode({ type: 'conn-report', connId, origin });
}

const cases: Array<{ name: string; send: (s: FakeShim) => void }> = [
  { name: 'bad magic', send: (s) => { const b = report(1n); b.writeUInt16LE(0x1234, 0); s.sendRaw(b, []); } },
  { name: 'unknown type', send: (s) => { const b = report(1n); b.writeUInt16LE(99, 2); s.sendRaw(b, []); } },
  { name: 'len field != packet size', send: (s) => { const b = report(1n); b.writeUInt32LE(MSG_CONN_REPORT.size + 8, 4); s.sendRaw(b, []); } },
  { name: 'wrong size for the type', send: (s) => { const b = Buffer.concat([report(1n), Buffer.alloc(8)]); b.writeUInt32LE(b.length, 4); s.sendRaw(b, []); } },
  { name: 'report without its fd', send: (s) => s.sendRaw(report(1n), []) },
  { name: 'fds on a message that takes none', send: (s) => { const e = eventfd(); s.sendRaw(encode({ type: 'conn-closed', connId: 1n }), [e]); closeQuietly(e); } },
  { name: 'two fds on a report', send: (s) => { const e1 = eventfd(); const e2 = eventfd(); s.sendRaw(report(1n), [e1, e2]); closeAll([e1, e2]); } },
  { name: 'oversized packet (truncated)', send: (s) => s.sendRaw(Buffer.alloc(1024, 0x44), []) },
  { name: 'a controller-only message', send: (s) => s.sendRaw(encode({ type: 'decline', connId: 1n, reason: 1 }), []) },
  { name: 'second HELLO', send: (s) => s.sendRaw(encode({ type: 'hello', protoVersion: PROTO_VERSION, pid: 1, flags: 0 }), []) },
];

describe('malformed messages', () => {
  let ctl: ControllerProc;
  beforeEach(async () => {
    ctl = await ControllerProc.start();
  });
  afterEach(async () => {
    await ctl.stop();
  });

  for (const c of cases) {
    it(`${c.name}: closes that session only`, async () => {
      const bad = new FakeShim(ctl.sock);
      const good = new FakeShim(ctl.sock);
      const pb = await bad.hello();
      const pg = await good.hello();
      c.send(bad);
      expect(await bad.closedByController()).toBe(true);
      await ctl.waitLog(/protocol violation/);
      // The good session still gets its connection matched.
      const tcp = tcpPair();
      good.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [tcp.client]);
      good.send({ type: 'conn-report', connId: 2n, origin: ACCEPT }, [tcp.server]);
      const m1 = await good.next();
      const m2 = await good.next();
      expect([m1.msg.type, m2.msg.type]).toEqual(['assign', 'assign']);
      const doc = await ctl.status();
      expect(doc.sessions.map((s) => s.id)).toEqual([pg.sessionId]);
      closeAll([...m1.fds, ...m2.fds, pb.pageFd, pg.pageFd]);
      tcp.close();
      bad.close();
      good.close();
    });
  }

  it('a message before HELLO closes the session', async () => {
    const s = new FakeShim(ctl.sock);
    const tcp = tcpPair();
    s.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [tcp.client]);
    expect(await s.closedByController()).toBe(true);
    tcp.close();
    s.close();
  });

  it('closes the fds that came with a malformed message', async () => {
    const s = new FakeShim(ctl.sock);
    const p = await s.hello();
    const tcp = tcpPair();
    // Report the client end with a bad message: the controller must not keep it.
    const b = encode({ type: 'conn-report', connId: 1n, origin: CONNECT });
    b.writeUInt16LE(0x4242, 0);
    s.sendRaw(b, [tcp.client]);
    expect(await s.closedByController()).toBe(true);
    // The controller holds no copy of the socket.
    expect(holdsSocket(ctl.child.pid!, fstatSync(tcp.client).ino)).toBe(false);
    closeQuietly(p.pageFd);
    tcp.close();
    s.close();
  });
});
