// Checks matching: two sessions reporting the two ends of one real loopback TCP
// connection each get ASSIGN with 5 fds, the connecting end role 0; the arena
// maps with a valid header and an initialised slot; status follows attachment.
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ARENA_HDR, SLOT_CTRL, constant, dirOffset, DIR_CTRL, offsetOf, slotSize } from '../../src/datapath/layout.js';
import { eventfdRead, eventfdWrite, getSeals } from '../../src/datapath/libc.js';
import { Mapping } from '../../src/datapath/shm.js';
import type { AssignMsg } from '../../src/control/protocol.js';
import { ControllerProc, FakeShim, PD_JS, closeAll, tcpPair } from './fake-shim.js';

const CONNECT = constant('ORIGIN_CONNECT');
const ACCEPT = constant('ORIGIN_ACCEPT');

describe('matching two reports', () => {
  let ctl: ControllerProc;
  beforeEach(async () => {
    ctl = await ControllerProc.start(['--ring-size', '64K']);
  });
  afterEach(async () => {
    await ctl.stop();
  });

  it('assigns one slot to both ends, roles by origin', async () => {
    const a = new FakeShim(ctl.sock);
    const b = new FakeShim(ctl.sock);
    const pa = await a.hello();
    const pb = await b.hello();
    const tcp = tcpPair();
    // The accepting end reports first: it must still become role 1.
    b.send({ type: 'conn-report', connId: 11n, origin: ACCEPT }, [tcp.server]);
    expect(await b.quiet(100)).toBe(true);
    const waiting = await ctl.status();
    expect(waiting.connections).toHaveLength(1);
    expect(waiting.connections[0]).toMatchObject({
      transport: 'tcp', state: 'waiting-peer', reason: 'peer not under pdrun (no report yet)',
    });
    a.send({ type: 'conn-report', connId: 22n, origin: CONNECT }, [tcp.client]);

    const ma = await a.next();
    const mb = await b.next();
    expect(ma.msg.type).toBe('assign');
    expect(mb.msg.type).toBe('assign');
    const xa = ma.msg as AssignMsg;
    const xb = mb.msg as AssignMsg;
    expect(ma.fds).toHaveLength(constant('ASSIGN_NFDS'));
    expect(mb.fds).toHaveLength(constant('ASSIGN_NFDS'));
    expect(xa).toMatchObject({ connId: 22n, role: 0 });
    expect(xb).toMatchObject({ connId: 11n, role: 1 });
    expect(xa.arenaId).toBe(xb.arenaId);
    expect(xa.slotIndex).toBe(xb.slotIndex);
    expect(xa.generation).toBe(xb.generation);
    expect(xa.generation).toBeGreaterThan(0);

    // The arena: sealed, header valid, slot live with this generation.
    const arenaFd = ma.fds[constant('ASSIGN_FD_ARENA')]!;
    const seals = getSeals(arenaFd);
    expect(seals & 0x7).toBe(0x7);
    const size = Number(xa.arenaSize);
    expect(size % (2 * 1024 * 1024)).toBe(0);
    const m = new Mapping(arenaFd, size);
    const h = (f: string) => offsetOf(ARENA_HDR, f);
    expect(m.load32(h('magic'))).toBe(constant('ARENA_MAGIC'));
    expect(m.load32(h('version'))).toBe(constant('LAYOUT_VERSION'));
    expect(m.load64(h('arena_size'))).toBe(xa.arenaSize);
    expect(m.load64(h('arena_id'))).toBe(xa.arenaId);
    expect(m.load32(h('ring_size'))).toBe(65536);
    expect(m.load32(h('slot_size'))).toBe(slotSize(65536));
    expect(m.load32(h('slots_offset'))).toBe(constant('ARENA_HDR_SIZE'));
    const slots = m.load32(h('slot_count'));
    expect(slots).toBeGreaterThanOrEqual(8);
    expect(constant('ARENA_HDR_SIZE') + slots * slotSize(65536)).toBeLessThanOrEqual(size);
    const base = constant('ARENA_HDR_SIZE') + xa.slotIndex * slotSize(65536);
    const s = (f: string) => base + offsetOf(SLOT_CTRL, f);
    expect(m.load32(s('magic'))).toBe(constant('SLOT_MAGIC'));
    expect(m.load32(s('generation'))).toBe(xa.generation);

    // Doorbells: a's rx_peer is b's rx_self (same eventfd, two fds).
    eventfdWrite(ma.fds[constant('ASSIGN_FD_RX_PEER')]!, 3n);
    expect(eventfdRead(mb.fds[constant('ASSIGN_FD_RX_SELF')]!)).toBe(3n);
    eventfdWrite(mb.fds[constant('ASSIGN_FD_TX_PEER')]!, 1n);
    expect(eventfdRead(ma.fds[constant('ASSIGN_FD_TX_SELF')]!)).toBe(1n);

    // Status: assigned but not attached, then upgraded once both attach.
    let doc = await ctl.status();
    expect(doc.connections).toHaveLength(1);
    const c = doc.connections[0]!;
    expect(c).toMatchObject({ transport: 'tcp', state: 'assigned', slot: xa.slotIndex, arena: Number(xa.arenaId) });
    expect(c.reason).toMatch(/attach/);
    expect(c.ends.map((e) => e.role).sort()).toEqual([0, 1]);
    const e0 = c.ends.find((e) => e.role === 0)!;
    const e1 = c.ends.find((e) => e.role === 1)!;
    expect(e0.local).toBe(e1.peer);
    expect(e0.peer).toBe(e1.local);
    expect(e0.local).toMatch(/^127\.0\.0\.1:\d+$/);

    m.store32(s('attached0'), 1);
    m.store32(s('attached1'), 1);
    m.store64(base + dirOffset(0) + offsetOf(DIR_CTRL, 'head'), 12345n);
    m.store32(base + dirOffset(1) + offsetOf(DIR_CTRL, 'switched'), 1);
    doc = await ctl.status();
    expect(doc.connections[0]).toMatchObject({
      transport: 'ring', state: 'upgraded', ringBytes: [12345, 0], switched: [false, true], attached: [true, true],
    });
    expect(doc.connections[0]!.reason).toBeUndefined();
    expect(doc.arenas).toHaveLength(1);
    expect(doc.arenas[0]).toMatchObject({ id: Number(xa.arenaId), bytes: size, slotsUsed: 1, slots });
    expect([...doc.arenas[0]!.pids]).toEqual([process.pid, process.pid]);

    // The CLI prints the same document.
    const cli = spawnSync(process.execPath, [PD_JS, 'status', '--json', '--socket', ctl.sock], { encoding: 'utf8' });
    expect(cli.status).toBe(0);
    const viaCli = JSON.parse(cli.stdout) as typeof doc;
    expect(viaCli.connections[0]).toMatchObject({ transport: 'ring', ends: expect.any(Array) });
    const human = spawnSync(process.execPath, [PD_JS, 'status', '--socket', ctl.sock], { encoding: 'utf8' });
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/ring/);
    expect(human.stdout).toMatch(/hugepage/i);

    // Both ends close: the slot is freed; the pair's last arena lingers, then goes.
    a.send({ type: 'conn-closed', connId: 22n });
    b.send({ type: 'conn-closed', connId: 11n });
    await expect.poll(async () => (await ctl.status()).connections.length).toBe(0);
    expect((await ctl.status()).arenas[0]).toMatchObject({ id: Number(xa.arenaId), slotsUsed: 0 });
    await expect.poll(async () => (await ctl.status()).arenas.length, { timeout: 5000 }).toBe(0);

    m.unmap();
    closeAll([...ma.fds, ...mb.fds, pa.pageFd, pb.pageFd]);
    tcp.close();
    a.close();
    b.close();
  });

  it('pairs a process with itself and reuses its arena for the next connection', async () => {
    const a = new FakeShim(ctl.sock);
    const pa = await a.hello();
    const t1 = tcpPair();
    const t2 = tcpPair();
    a.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [t1.client]);
    a.send({ type: 'conn-report', connId: 2n, origin: ACCEPT }, [t1.server]);
    a.send({ type: 'conn-report', connId: 3n, origin: ACCEPT }, [t2.server]);
    a.send({ type: 'conn-report', connId: 4n, origin: CONNECT }, [t2.client]);
    const got = [await a.next(), await a.next(), await a.next(), await a.next()];
    const assigns = got.map((g) => g.msg as AssignMsg);
    expect(assigns.every((x) => x.type === 'assign')).toBe(true);
    const byId = new Map(assigns.map((x) => [x.connId, x]));
    expect(byId.get(1n)!.role).toBe(0);
    expect(byId.get(2n)!.role).toBe(1);
    expect(byId.get(4n)!.role).toBe(0);
    expect(byId.get(3n)!.role).toBe(1);
    expect(byId.get(1n)!.arenaId).toBe(byId.get(4n)!.arenaId);
    expect(byId.get(1n)!.slotIndex).not.toBe(byId.get(4n)!.slotIndex);
    const doc = await ctl.status();
    expect(doc.arenas).toHaveLength(1);
    expect(doc.arenas[0]!.slotsUsed).toBe(2);
    expect(doc.sessions[0]!.connections).toBe(4);

    // Free the first slot: the next connection reuses it with the next generation.
    a.send({ type: 'conn-closed', connId: 1n });
    a.send({ type: 'conn-closed', connId: 2n });
    const t3 = tcpPair();
    a.send({ type: 'conn-report', connId: 5n, origin: CONNECT }, [t3.client]);
    a.send({ type: 'conn-report', connId: 6n, origin: ACCEPT }, [t3.server]);
    const again = [await a.next(), await a.next()];
    const x5 = again.map((g) => g.msg as AssignMsg).find((x) => x.connId === 5n)!;
    expect(x5.arenaId).toBe(byId.get(1n)!.arenaId);
    expect(x5.slotIndex).toBe(byId.get(1n)!.slotIndex);
    expect(x5.generation).toBe(byId.get(1n)!.generation + 1);
    closeAll([...got.flatMap((g) => g.fds), ...again.flatMap((g) => g.fds), pa.pageFd]);
    t1.close();
    t2.close();
    t3.close();
    a.close();
  });

  it('simultaneous open (both report connect) orders roles by session id', async () => {
    const a = new FakeShim(ctl.sock);
    const b = new FakeShim(ctl.sock);
    const pa = await a.hello();
    const pb = await b.hello();
    const tcp = tcpPair();
    b.send({ type: 'conn-report', connId: 5n, origin: CONNECT }, [tcp.server]);
    a.send({ type: 'conn-report', connId: 6n, origin: CONNECT }, [tcp.client]);
    const ma = await a.next();
    const mb = await b.next();
    expect((ma.msg as AssignMsg).role).toBe(pa.sessionId < pb.sessionId ? 0 : 1);
    expect((mb.msg as AssignMsg).role).toBe(pa.sessionId < pb.sessionId ? 1 : 0);
    closeAll([...ma.fds, ...mb.fds, pa.pageFd, pb.pageFd]);
    tcp.close();
    a.close();
    b.close();
  });
});
