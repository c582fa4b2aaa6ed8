// Checks reclaim: when a session dies, its end is marked dead in the slot, the
// survivor's rx and tx doorbells ring, waiting reports vanish, and the slot and
// arena are freed once the survivor closes too.
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SLOT_CTRL, constant, offsetOf, slotSize } from '../../src/datapath/layout.js';
import {
  AF_INET, SOCK_CLOEXEC, SOCK_STREAM, accept4, bind, closeQuietly, eventfdRead, getsockname, listen, sockaddrIn, socket,
} from '../../src/datapath/libc.js';
import { Mapping } from '../../src/datapath/shm.js';
import type { AssignMsg } from '../../src/control/protocol.js';
import { ControllerProc, FakeShim, ROOT, closeAll, tcpPair, until } from './fake-shim.js';

const CONNECT = constant('ORIGIN_CONNECT');
const ACCEPT = constant('ORIGIN_ACCEPT');

describe('session death', () => {
  let ctl: ControllerProc;
  beforeEach(async () => {
    ctl = await ControllerProc.start(['--ring-size', '4096']);
  });
  afterEach(async () => {
    await ctl.stop();
  });

  it('marks the dead role, wakes the survivor, frees the slot when both are gone', async () => {
    const a = new FakeShim(ctl.sock);
    const b = new FakeShim(ctl.sock);
    const pa = await a.hello();
    const pb = await b.hello();
    const tcp = tcpPair();
    a.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [tcp.client]);
    b.send({ type: 'conn-report', connId: 2n, origin: ACCEPT }, [tcp.server]);
    const ma = await a.next();
    const mb = await b.next();
    const xb = mb.msg as AssignMsg;
    const m = new Mapping(mb.fds[constant('ASSIGN_FD_ARENA')]!, Number(xb.arenaSize));
    const base = constant('ARENA_HDR_SIZE') + xb.slotIndex * slotSize(4096);
    const dead = (r: 0 | 1) => m.load32(base + offsetOf(SLOT_CTRL, r === 0 ? 'dead0' : 'dead1'));
    expect([dead(0), dead(1)]).toEqual([0, 0]);

    // a (role 0) dies: its session socket closes.
    a.close();
    closeAll([...ma.fds, pa.pageFd]);
    await until('dead0', () => dead(0) === 1);
    expect(dead(1)).toBe(0);
    // dead0 is set before the doorbell is written: wait for the doorbell too
    let rung = 0n;
    await until('rx doorbell after SIGKILL', () => (rung += eventfdRead(mb.fds[constant('ASSIGN_FD_RX_SELF')]!)) >= 1n);
    expect(rung).toBe(1n);
    expect(eventfdRead(mb.fds[constant('ASSIGN_FD_TX_SELF')]!)).toBe(1n);
    // The peer's own doorbells were not rung.
    expect(eventfdRead(mb.fds[constant('ASSIGN_FD_RX_PEER')]!)).toBe(0n);
    let doc = await ctl.status();
    expect(doc.sessions).toHaveLength(1);
    expect(doc.arenas).toHaveLength(1);
    expect(doc.connections[0]!.reason).toMatch(/role 0 died/);
    expect(doc.connections[0]!.ends).toHaveLength(1);

    // The survivor closes the connection: slot and arena go.
    b.send({ type: 'conn-closed', connId: 2n });
    await until('arena freed', async () => (await ctl.status()).arenas.length === 0);
    doc = await ctl.status();
    expect(doc.connections).toHaveLength(0);
    m.unmap();
    closeAll([...mb.fds, pb.pageFd]);
    tcp.close();
    b.close();
  });

  it('a SIGKILLed process: its ends are reclaimed, its peer woken', async () => {
    // The child opens a session, connects to our listener, reports that end and
    // a second connection nobody else reports, then waits to be killed.
    const l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC);
    bind(l, sockaddrIn('127.0.0.1', 0));
    listen(l, 4);
    const port = getsockname(l)!.port;
    const libc = JSON.stringify(`${ROOT}/dist/datapath/libc.js`);
    const proto = JSON.stringify(`${ROOT}/dist/control/protocol.js`);
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      const c = await import(${libc});
      const p = await import(${proto});
      const s = c.socket(c.AF_UNIX, c.SOCK_SEQPACKET | c.SOCK_CLOEXEC);
      c.connect(s, c.sockaddrUn(${JSON.stringify(ctl.sock)}));
      c.sendWithFds(s, p.encode({ type: 'hello', protoVersion: p.PROTO_VERSION, pid: process.pid, flags: 0 }), []);
      for (const id of [1n, 2n]) {
        const t = c.socket(c.AF_INET, c.SOCK_STREAM | c.SOCK_CLOEXEC);
        c.connect(t, c.sockaddrIn('127.0.0.1', ${port}));
        c.sendWithFds(s, p.encode({ type: 'conn-report', connId: id, origin: ${CONNECT} }), [t]);
      }
      process.stdout.write('reported\\n');
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await until('child reported', () => out.includes('reported'));
    const first = accept4(l, SOCK_CLOEXEC)!;
    const second = accept4(l, SOCK_CLOEXEC)!;
    closeQuietly(l);

    const b = new FakeShim(ctl.sock);
    const pb = await b.hello();
    b.send({ type: 'conn-report', connId: 9n, origin: ACCEPT }, [first]);
    const mb = await b.next();
    const xb = mb.msg as AssignMsg;
    expect(xb.role).toBe(1);
    let doc = await ctl.status();
    expect(doc.connections.map((c) => c.state).sort()).toEqual(['assigned', 'waiting-peer']);
    expect(doc.sessions.find((s) => s.pid === child.pid)).toMatchObject({ connections: 2 });

    child.kill('SIGKILL');
    const m = new Mapping(mb.fds[constant('ASSIGN_FD_ARENA')]!, Number(xb.arenaSize));
    const base = constant('ARENA_HDR_SIZE') + xb.slotIndex * slotSize(4096);
    await until('dead0 after SIGKILL', () => m.load32(base + offsetOf(SLOT_CTRL, 'dead0')) === 1);
    // dead0 is set before the doorbell is written: wait for the doorbell too
    let rung = 0n;
    await until('rx doorbell after SIGKILL', () => (rung += eventfdRead(mb.fds[constant('ASSIGN_FD_RX_SELF')]!)) >= 1n);
    expect(rung).toBe(1n);
    doc = await ctl.status();
    expect(doc.sessions.map((s) => s.pid)).toEqual([process.pid]);
    expect(doc.connections).toHaveLength(1); // the waiting report is gone
    expect(doc.connections[0]!.state).toBe('assigned');

    // Our session dies too: everything is freed.
    b.close();
    await until('all reclaimed', async () => {
      const d = await ctl.status();
      return d.sessions.length === 0 && d.connections.length === 0 && d.arenas.length === 0;
    });
    m.unmap();
    closeAll([...mb.fds, pb.pageFd, first, second]);
  });
});
