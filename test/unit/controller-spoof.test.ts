// Checks spoofing from a third session against a real pair: reporting a socket it does not hold as a connected TCP end (listening, unconnected, UDP, Unix, eventfd, memfd), claiming the pair's conn_ids, a HELLO naming another process's pid, and trying to get an arena it is not an end of: each is refused or without effect, refusals are logged at the default level, the pair is matched and left untouched, and the third session only ever receives the arena of its own pair.
import { spawn } from 'node:child_process';
import { fstatSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { constant } from '../../src/datapath/layout.js';
import {
  AF_INET, AF_UNIX, MFD_CLOEXEC, SOCK_CLOEXEC, SOCK_SEQPACKET, SOCK_STREAM, bind, eventfd, listen, memfdCreate,
  sockaddrIn, socket,
} from '../../src/datapath/libc.js';
import type { AssignMsg } from '../../src/control/protocol.js';
import { ControllerProc, FakeShim, ROOT, closeAll, tcpPair, until } from './fake-shim.js';

const CONNECT = constant('ORIGIN_CONNECT');
const ACCEPT = constant('ORIGIN_ACCEPT');
const ARENA = constant('ASSIGN_FD_ARENA');
const SOCK_DGRAM = 2;

/** A matched pair a and b, reported and assigned; returns what they got. */
async function pair(ctl: ControllerProc) {
  const a = new FakeShim(ctl.sock);
  const b = new FakeShim(ctl.sock);
  const pages = [(await a.hello()).pageFd, (await b.hello()).pageFd];
  const tcp = tcpPair();
  a.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [tcp.client]);
  b.send({ type: 'conn-report', connId: 1n, origin: ACCEPT }, [tcp.server]);
  const ma = await a.next();
  const mb = await b.next();
  expect([ma.msg.type, mb.msg.type]).toEqual(['assign', 'assign']);
  return { a, b, pages, tcp, ma, mb, arenaIno: fstatSync(ma.fds[ARENA]!).ino };
}

describe('spoofing by a third session', () => {
  let ctl: ControllerProc;
  beforeEach(async () => {
    ctl = await ControllerProc.start(['--log', 'quiet']);
  });
  afterEach(async () => {
    await ctl.stop();
  });

  it('reports of sockets that are not a connected TCP end it holds are refused and logged', async () => {
    const p = await pair(ctl);
    const c = new FakeShim(ctl.sock);
    const pc = await c.hello();
    const l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC);
    bind(l, sockaddrIn('127.0.0.1', 0));
    listen(l, 1);
    const fakes: Array<[string, number]> = [
      ['listening TCP socket', l],
      ['unconnected TCP socket', socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC)],
      ['UDP socket', socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC)],
      ['Unix socket', socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)],
      ['eventfd', eventfd()],
      ['memfd', memfdCreate('spoof', MFD_CLOEXEC)],
    ];
    let id = 10n;
    for (const [what, fd] of fakes) {
      c.send({ type: 'conn-report', connId: id, origin: CONNECT }, [fd]);
      const m = await c.next();
      expect(m.msg, what).toMatchObject({ type: 'decline', connId: id, reason: constant('DECLINE_NOT_TCP') });
      id++;
    }
    closeAll(fakes.map(([, fd]) => fd));
    // Logged at the default (quiet) level.
    // (the lines reach our pipe after the DECLINEs: wait for all of them)
    const refusals = () => ctl.stderr.match(/refused: the reported fd is not a connected TCP socket/g)?.length ?? 0;
    await until(`${fakes.length} refusals logged; got:\n${ctl.stderr}`, () => refusals() >= fakes.length);
    expect(ctl.stderr.match(/refused:/g)?.length, ctl.stderr).toBe(fakes.length);
    // The pair is untouched.
    const doc = await ctl.status();
    const real = doc.connections.find((x) => x.state === 'assigned');
    expect(real?.ends.map((e) => e.pid)).toEqual([process.pid, process.pid]);
    expect(doc.connections.filter((x) => x.state === 'declined')).toHaveLength(fakes.length);
    expect(await p.a.quiet(50)).toBe(true);
    expect(await p.b.quiet(50)).toBe(true);
    closeAll([...p.pages, ...p.ma.fds, ...p.mb.fds, pc.pageFd]);
    p.tcp.close();
    for (const s of [p.a, p.b, c]) s.close();
  });

  it("claiming the pair's conn_ids (close, report) touches only the claimant's own", async () => {
    const p = await pair(ctl);
    const c = new FakeShim(ctl.sock);
    const pc = await c.hello();
    c.send({ type: 'conn-closed', connId: 1n }); // a's and b's conn_id: c has none
    const mine = tcpPair();
    c.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [mine.client]); // c's own conn 1
    expect(await c.quiet(100)).toBe(true);
    const doc = await ctl.status();
    const real = doc.connections.find((x) => x.state === 'assigned')!;
    expect(real.ends).toHaveLength(2);
    expect(real.reason ?? '').not.toMatch(/died/); // no end marked dead
    expect(doc.connections.find((x) => x.state === 'waiting-peer')?.ends.map((e) => e.session)).toEqual([pc.sessionId]);
    expect(await p.a.quiet(50)).toBe(true);
    closeAll([...p.pages, ...p.ma.fds, ...p.mb.fds, pc.pageFd]);
    p.tcp.close();
    mine.close();
    for (const s of [p.a, p.b, c]) s.close();
  });

  it('a HELLO naming another pid is attributed to the real sender (SO_PEERCRED)', async () => {
    const libc = JSON.stringify(`${ROOT}/dist/datapath/libc.js`);
    const proto = JSON.stringify(`${ROOT}/dist/control/protocol.js`);
    // The child claims to be us, then to be init in a second session.
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      const c = await import(${libc});
      const p = await import(${proto});
      for (const pid of [${process.pid}, 1]) {
        const s = c.socket(c.AF_UNIX, c.SOCK_SEQPACKET | c.SOCK_CLOEXEC);
        c.connect(s, c.sockaddrUn(${JSON.stringify(ctl.sock)}));
        c.sendWithFds(s, p.encode({ type: 'hello', protoVersion: p.PROTO_VERSION, pid, flags: 0 }), []);
      }
      process.stdout.write('sent\\n');
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await until('child sent', () => out.includes('sent'), 10_000);
      const doc = await until('two sessions', async () => {
        const d = await ctl.status();
        return d.sessions.length === 2 ? d : null;
      });
      expect(doc.sessions.map((s) => s.pid)).toEqual([child.pid, child.pid]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a third session only ever receives the arena of its own pair', async () => {
    const p = await pair(ctl);
    // c connects to a (a real connection between them): it gets the (a, c) arena, never (a, b)'s.
    const c = new FakeShim(ctl.sock);
    const pc = await c.hello();
    const ac = tcpPair();
    p.a.send({ type: 'conn-report', connId: 2n, origin: ACCEPT }, [ac.server]);
    c.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [ac.client]);
    const mc = await c.next();
    const ma2 = await p.a.next();
    expect(mc.msg.type).toBe('assign');
    const cIno = fstatSync(mc.fds[ARENA]!).ino;
    expect(cIno).not.toBe(p.arenaIno);
    expect(fstatSync(ma2.fds[ARENA]!).ino).toBe(cIno); // a has both: one per peer
    expect((mc.msg as AssignMsg).arenaId).not.toBe((p.ma.msg as AssignMsg).arenaId);
    // c reports the (a, b) connection's addresses from its own copy of a's socket? It holds none:
    // a socket to b's listener that b never accepted as its reported end waits, and gets nothing.
    const other = tcpPair();
    c.send({ type: 'conn-report', connId: 2n, origin: CONNECT }, [other.client]);
    expect(await c.quiet(150)).toBe(true);
    const doc = await ctl.status();
    expect(doc.arenas).toHaveLength(2);
    for (const ar of doc.arenas) expect(ar.pids).toHaveLength(2);
    closeAll([...p.pages, ...p.ma.fds, ...p.mb.fds, ...mc.fds, ...ma2.fds, pc.pageFd]);
    p.tcp.close();
    ac.close();
    other.close();
    for (const s of [p.a, p.b, c]) s.close();
  });
});
