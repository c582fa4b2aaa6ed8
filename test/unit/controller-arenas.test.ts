// Checks arena allocation per pair of processes: a full arena makes another,
// freed slots are reused with a new generation, an empty arena is destroyed,
// and different pairs never share an arena; the last empty arena of a live
// pair lingers for its next connection, and goes with either process.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { constant } from '../../src/datapath/layout.js';
import type { AssignMsg } from '../../src/control/protocol.js';
import { ControllerProc, FakeShim, closeAll, tcpPair, until } from './fake-shim.js';

const CONNECT = constant('ORIGIN_CONNECT');
const ACCEPT = constant('ORIGIN_ACCEPT');

describe('arenas', () => {
  let ctl: ControllerProc;
  beforeEach(async () => {
    // A 1 MiB ring: one 2 MiB + 4 KiB slot per 4 MiB arena.
    ctl = await ControllerProc.start(['--ring-size', '1M', '--slots-per-arena', '1']);
  });
  afterEach(async () => {
    await ctl.stop();
  });

  async function connectPair(a: FakeShim, b: FakeShim, id: bigint) {
    const t = tcpPair();
    a.send({ type: 'conn-report', connId: id, origin: CONNECT }, [t.client]);
    b.send({ type: 'conn-report', connId: id, origin: ACCEPT }, [t.server]);
    const ma = await a.next();
    const mb = await b.next();
    closeAll(mb.fds);
    closeAll(ma.fds);
    t.close();
    return ma.msg as AssignMsg;
  }

  it('grows, reuses and frees arenas per pair', async () => {
    const a = new FakeShim(ctl.sock);
    const b = new FakeShim(ctl.sock);
    const c = new FakeShim(ctl.sock);
    const pages = [(await a.hello()).pageFd, (await b.hello()).pageFd, (await c.hello()).pageFd];
    const x1 = await connectPair(a, b, 1n);
    const x2 = await connectPair(a, b, 2n);
    expect(x1.arenaId).not.toBe(x2.arenaId);
    expect(x1.arenaSize).toBe(4n * 1024n * 1024n);
    const y = await connectPair(a, c, 3n); // another pair: another arena
    expect([x1.arenaId, x2.arenaId]).not.toContain(y.arenaId);
    let doc = await ctl.status();
    expect(doc.arenas.map((r) => r.slots)).toEqual([1, 1, 1]);

    // Free conn 1: its arena lingers empty (the pair has no other free slot) and
    // the pair's next connection reuses it, slot generation bumped.
    a.send({ type: 'conn-closed', connId: 1n });
    b.send({ type: 'conn-closed', connId: 1n });
    await until('conn 1 freed', async () => (await ctl.status()).connections.length === 2);
    doc = await ctl.status();
    expect(doc.arenas.find((r) => r.id === Number(x1.arenaId))).toMatchObject({ slotsUsed: 0 });
    const x3 = await connectPair(a, b, 4n);
    expect(x3.arenaId).toBe(x1.arenaId);
    expect(x3.generation).toBe(x1.generation + 1);
    doc = await ctl.status();
    expect(doc.arenas).toHaveLength(3);
    expect(doc.arenas.every((r) => r.slotsUsed === 1)).toBe(true);

    // Free both a-b connections: one empty arena may linger, never two.
    for (const id of [2n, 4n]) {
      a.send({ type: 'conn-closed', connId: id });
      b.send({ type: 'conn-closed', connId: id });
    }
    await until('a-b slots freed', async () => (await ctl.status()).connections.length === 1);
    doc = await ctl.status();
    expect(doc.arenas.filter((r) => r.slotsUsed === 0)).toHaveLength(1);

    // A session ending destroys its empty arenas at once (no linger).
    b.close();
    await until('a-b arena destroyed with b', async () => (await ctl.status()).arenas.length === 1, 1000);
    closeAll(pages);
    a.close();
    c.close();
    await until('everything freed', async () => {
      const d = await ctl.status();
      return d.arenas.length === 0 && d.connections.length === 0 && d.sessions.length === 0;
    }, 1000);
  });
});
