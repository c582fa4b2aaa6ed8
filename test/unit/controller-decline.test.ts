// Checks the reports that stay on TCP (DECLINE with the right reason, shown in
// status) and the matching edge cases: IPv4-mapped IPv6, CONN_CLOSED of a
// waiting report, CONN_CLOSED of an unknown conn_id, CONN_REFUSED of an
// assigned end (stays on TCP with the shim's reason).
import { once } from 'node:events';
import { type Server, type Socket, connect as netConnect, createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { constant } from '../../src/datapath/layout.js';
import { eventfd, closeQuietly } from '../../src/datapath/libc.js';
import type { AssignMsg, DeclineMsg } from '../../src/control/protocol.js';
import { ControllerProc, FakeShim, closeAll, tcpPair } from './fake-shim.js';

const CONNECT = constant('ORIGIN_CONNECT');
const ACCEPT = constant('ORIGIN_ACCEPT');

let ctl: ControllerProc | null = null;
afterEach(async () => {
  await ctl?.stop();
  ctl = null;
});

async function twoShims(args: string[] = []) {
  ctl = await ControllerProc.start(args);
  const a = new FakeShim(ctl.sock);
  const b = new FakeShim(ctl.sock);
  const pa = await a.hello();
  const pb = await b.hello();
  return { ctl, a, b, pages: [pa.pageFd, pb.pageFd] };
}

function fdOf(s: Socket | Server): number {
  const h = (s as unknown as { _handle: { fd: number } })._handle;
  return h.fd;
}

describe('declines and edge cases', () => {
  it('a fd that is not a TCP socket: DECLINE_NOT_TCP', async () => {
    const { ctl, a, b, pages } = await twoShims();
    const e = eventfd();
    a.send({ type: 'conn-report', connId: 3n, origin: CONNECT }, [e]);
    const m = await a.next();
    expect(m.msg).toMatchObject({ type: 'decline', connId: 3n, reason: constant('DECLINE_NOT_TCP') });
    const doc = await ctl.status();
    expect(doc.connections[0]).toMatchObject({ transport: 'tcp', state: 'declined' });
    expect(doc.connections[0]!.reason).toMatch(/not a connected TCP socket/);
    closeQuietly(e);
    closeAll(pages);
    a.close();
    b.close();
  });

  it('the same end reported twice: DECLINE_DUPLICATE for the newcomer', async () => {
    const { ctl, a, b, pages } = await twoShims();
    const tcp = tcpPair();
    a.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [tcp.client]);
    expect(await a.quiet(100)).toBe(true);
    b.send({ type: 'conn-report', connId: 2n, origin: CONNECT }, [tcp.client]);
    const m = await b.next();
    expect(m.msg).toMatchObject({ type: 'decline', connId: 2n, reason: constant('DECLINE_DUPLICATE') });
    expect(await a.quiet(50)).toBe(true);
    // The first report still matches its real peer.
    b.send({ type: 'conn-report', connId: 3n, origin: ACCEPT }, [tcp.server]);
    expect((await a.next()).msg.type).toBe('assign');
    const mb = await b.next();
    expect(mb.msg).toMatchObject({ type: 'assign', connId: 3n, role: 1 });
    const doc = await ctl.status();
    expect(doc.connections.map((c) => c.state).sort()).toEqual(['assigned', 'declined']);
    closeAll([...pages, ...mb.fds]);
    tcp.close();
    a.close();
    b.close();
  });

  it('a bad origin: DECLINE_BAD_MSG, the session stays', async () => {
    const { a, b, pages } = await twoShims();
    const tcp = tcpPair();
    a.send({ type: 'conn-report', connId: 1n, origin: 77 }, [tcp.client]);
    expect((await a.next()).msg).toMatchObject({ type: 'decline', reason: constant('DECLINE_BAD_MSG') });
    a.send({ type: 'conn-closed', connId: 1n });
    a.send({ type: 'conn-closed', connId: 12345n }); // unknown: ignored
    expect(await a.quiet(100)).toBe(true);
    closeAll(pages);
    tcp.close();
    a.close();
    b.close();
  });

  it('over the arena quota: DECLINE_QUOTA to both ends', async () => {
    // One slot of a 1 MiB ring needs a 4 MiB arena; the quota is 2 MiB.
    const { ctl, a, b, pages } = await twoShims(['--ring-size', '1M', '--slots-per-arena', '1', '--arena-quota-mb', '2']);
    const tcp = tcpPair();
    a.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [tcp.client]);
    b.send({ type: 'conn-report', connId: 2n, origin: ACCEPT }, [tcp.server]);
    const ma = (await a.next()).msg as DeclineMsg;
    const mb = (await b.next()).msg as DeclineMsg;
    expect([ma.type, ma.reason, mb.type, mb.reason]).toEqual(['decline', constant('DECLINE_QUOTA'), 'decline', constant('DECLINE_QUOTA')]);
    const doc = await ctl.status();
    expect(doc.connections[0]).toMatchObject({ transport: 'tcp', state: 'declined' });
    expect(doc.connections[0]!.reason).toMatch(/quota/);
    expect(doc.connections[0]!.ends).toHaveLength(2);
    expect(doc.arenas).toHaveLength(0);
    closeAll(pages);
    tcp.close();
    a.close();
    b.close();
  });

  it('CONN_REFUSED from one end: the connection shows tcp with the reason, the slot is freed once both close', async () => {
    const { ctl, a, b, pages } = await twoShims();
    const tcp = tcpPair();
    a.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [tcp.client]);
    b.send({ type: 'conn-report', connId: 2n, origin: ACCEPT }, [tcp.server]);
    const ma = await a.next();
    const mb = await b.next();
    expect(ma.msg.type).toBe('assign');
    a.send({ type: 'conn-refused', connId: 1n, reason: constant('REFUSE_NOFILE'), fd: 250, limit: 256 });
    closeAll(ma.fds);
    let doc = await ctl.statusUntil((d) => d.connections[0]?.state === 'declined');
    expect(doc.connections[0]).toMatchObject({ transport: 'tcp', state: 'declined' });
    expect(doc.connections[0]!.reason).toMatch(/RLIMIT_NOFILE.*descriptor 250, RLIMIT_NOFILE 256/);
    expect(doc.arenas).toHaveLength(1); // b still maps the slot
    // an unknown conn_id is ignored; the session stays
    a.send({ type: 'conn-refused', connId: 77n, reason: constant('REFUSE_INVALID'), fd: 0, limit: 0 });
    a.send({ type: 'conn-refused', connId: 78n, reason: constant('REFUSE_FORKED'), fd: 0, limit: 0 });
    a.send({ type: 'conn-closed', connId: 1n });
    b.send({ type: 'conn-closed', connId: 2n });
    doc = await ctl.statusUntil((d) => d.connections.length === 0 && d.arenas.length === 0);
    expect(doc.connections).toHaveLength(0);
    expect(doc.sessions).toHaveLength(2);
    closeAll([...mb.fds, ...pages]);
    tcp.close();
    a.close();
    b.close();
  });

  it('CONN_REFUSED because the process forked before attaching: tcp, with that reason', async () => {
    const { ctl, a, b, pages } = await twoShims();
    const tcp = tcpPair();
    a.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [tcp.client]);
    b.send({ type: 'conn-report', connId: 2n, origin: ACCEPT }, [tcp.server]);
    const ma = await a.next();
    const mb = await b.next();
    expect([ma.msg.type, mb.msg.type]).toEqual(['assign', 'assign']);
    b.send({ type: 'conn-refused', connId: 2n, reason: constant('REFUSE_FORKED'), fd: 0, limit: 0 });
    closeAll(mb.fds);
    let doc = await ctl.statusUntil((d) => d.connections[0]?.state === 'declined');
    expect(doc.connections[0]).toMatchObject({ transport: 'tcp', state: 'declined' });
    expect(doc.connections[0]!.reason).toMatch(/forked before the connection attached/);
    a.send({ type: 'conn-closed', connId: 1n });
    b.send({ type: 'conn-closed', connId: 2n });
    doc = await ctl.statusUntil((d) => d.connections.length === 0 && d.arenas.length === 0);
    expect(doc.connections).toHaveLength(0);
    closeAll([...ma.fds, ...pages]);
    tcp.close();
    a.close();
    b.close();
  });

  it('CONN_CLOSED of a waiting report removes it', async () => {
    const { ctl, a, b, pages } = await twoShims();
    const tcp = tcpPair();
    a.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [tcp.client]);
    a.send({ type: 'conn-closed', connId: 1n });
    expect(await a.quiet(100)).toBe(true);
    expect((await ctl.status()).connections).toHaveLength(0);
    // The peer reporting later finds nobody: it waits.
    b.send({ type: 'conn-report', connId: 2n, origin: ACCEPT }, [tcp.server]);
    expect(await b.quiet(100)).toBe(true);
    expect((await ctl.status()).connections[0]).toMatchObject({ state: 'waiting-peer' });
    closeAll(pages);
    tcp.close();
    a.close();
    b.close();
  });

  it('matches an IPv4-mapped IPv6 end with its IPv4 peer', async () => {
    const { ctl, a, b, pages } = await twoShims();
    const server = createServer();
    server.listen(0, '::');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = netConnect(port, '127.0.0.1');
    await once(client, 'connect');
    const [srv] = await accepted;
    expect(srv.localAddress).toMatch(/^::ffff:127\.0\.0\.1$/);
    // Node-owned fds: the kernel dups them into the message.
    a.send({ type: 'conn-report', connId: 1n, origin: CONNECT }, [fdOf(client)]);
    b.send({ type: 'conn-report', connId: 2n, origin: ACCEPT }, [fdOf(srv)]);
    const ma = await a.next();
    const mb = await b.next();
    expect((ma.msg as AssignMsg).role).toBe(0);
    expect((mb.msg as AssignMsg).role).toBe(1);
    const c = (await ctl.status()).connections[0]!;
    expect(c.ends.find((e) => e.role === 1)!.local).toBe(`127.0.0.1:${port}`);
    closeAll([...pages, ...ma.fds, ...mb.fds]);
    client.destroy();
    srv.destroy();
    server.close();
    a.close();
    b.close();
  });
});
