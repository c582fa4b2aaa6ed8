// Connection matching and the life of a slot: verify a reported socket, pair it
// with the other end's report, lease a slot and four doorbells, ASSIGN both
// ends; free everything once both ends are gone.
import { fstatSync, statSync } from 'node:fs';
import {
  IPPROTO_TCP, SOCK_STREAM, SOL_SOCKET, SO_PROTOCOL, SO_TYPE,
  closeQuietly, eventfd, eventfdWrite, getpeername, getsockname, getsockoptInt, isSysError, pidfdOpen, socketNetnsFd,
} from '../datapath/libc.js';
import { constant } from '../datapath/layout.js';
import { type Endpoint, endKeys, formatEndpoint, isLoopback, normalise } from './address.js';
import { errorMessage } from './errors.js';
import type { Logger } from './log.js';
import type { ArenaPool } from './pool.js';
import { Decline, Origin, declineText } from './protocol.js';
import type { Session } from './session.js';
import { type ConnEnd, type Connection, type SlotLease, doorbell } from './state.js';

/** Unmatched reports one session may have waiting. */
export const MAX_WAITING_PER_SESSION = 65536;
/** Ends (any state) one session may have on record. */
export const MAX_ENDS_PER_SESSION = 262144;

export const WAITING_REASON = 'peer not under pdrun (no report yet)';

interface Verified {
  readonly local: Endpoint;
  readonly peer: Endpoint;
  /** inode of the socket's network namespace; null when it cannot be known */
  readonly netns: number | null;
}

/**
 * The network namespace of a socket: SIOCGSKNS asks the socket itself, but
 * needs CAP_NET_ADMIN; without it, the namespace of the reporting process
 * (`/proc/<pid>/ns/net`, readable for the same uid) stands in.
 */
function socketNetns(fd: number, pid: number): number | null {
  try {
    const ns = socketNetnsFd(fd);
    try {
      return fstatSync(ns).ino;
    } finally {
      closeQuietly(ns);
    }
  } catch (e) {
    if (!isSysError(e, 'EPERM', 'EACCES')) throw e;
  }
  try {
    return statSync(`/proc/${pid}/ns/net`).ino;
  } catch {
    return null;
  }
}

/** Checks that fd is a connected TCP socket; returns its addresses and netns inode. */
export function verifyTcpSocket(fd: number, pid: number): Verified | string {
  try {
    if (getsockoptInt(fd, SOL_SOCKET, SO_TYPE) !== SOCK_STREAM) return 'not a stream socket';
    if (getsockoptInt(fd, SOL_SOCKET, SO_PROTOCOL) !== IPPROTO_TCP) return 'not a TCP socket';
    const local = getsockname(fd);
    const peer = getpeername(fd);
    if (!local || !peer) return 'not an inet socket';
    return { local: normalise(local), peer: normalise(peer), netns: socketNetns(fd, pid) };
  } catch (e) {
    return errorMessage(e);
  }
}

export class ConnectionTable {
  private nextId = 1;
  readonly all = new Map<number, Connection>();
  private readonly waiting = new Map<string, ConnEnd>();

  constructor(private readonly pool: ArenaPool, private readonly log: Logger) {}

  /** CONN_REPORT with its socket fd, which is closed here whatever happens. */
  report(s: Session, connId: bigint, origin: number, fd: number): void {
    let v: Verified | string;
    try {
      v = verifyTcpSocket(fd, s.pid);
    } finally {
      // Holding the socket would keep the kernel connection open after the app closes it.
      closeQuietly(fd);
    }
    if (s.ends.has(connId)) {
      s.close(`protocol violation: conn_id ${connId} reported twice`);
      return;
    }
    if (s.ends.size >= MAX_ENDS_PER_SESSION) {
      this.decline(s, connId, Decline.Quota);
      return;
    }
    if (origin !== Origin.Connect && origin !== Origin.Accept) {
      this.recordDeclined(s, connId, origin, null, Decline.BadMsg, `bad origin ${origin}`);
      return;
    }
    if (typeof v === 'string') {
      this.recordDeclined(s, connId, origin, null, Decline.NotTcp, v);
      return;
    }
    if (s.waiting >= MAX_WAITING_PER_SESSION) {
      this.recordDeclined(s, connId, origin, v, Decline.Quota, `more than ${MAX_WAITING_PER_SESSION} unmatched reports`);
      return;
    }
    if (v.netns === null && (isLoopback(v.local) || isLoopback(v.peer))) {
      // Loopback pairs only within one namespace: unverifiable means no ring.
      this.recordDeclined(s, connId, origin, v, Decline.NotTcp, 'cannot tell its network namespace');
      return;
    }
    const keys = endKeys(v.local, v.peer, v.netns ?? 0);
    const partner = keys.own === keys.peer ? undefined : this.waiting.get(keys.peer);
    if (partner) {
      this.match(partner, s, connId, origin, v);
      return;
    }
    if (this.waiting.has(keys.own)) {
      this.recordDeclined(s, connId, origin, v, Decline.Duplicate, `${keys.own} is already reported`);
      return;
    }
    const conn = this.newConnection('waiting-peer', WAITING_REASON);
    const end: ConnEnd = { session: s, connId, origin, local: v.local, peer: v.peer, key: keys.own, conn, role: null, gone: false };
    conn.ends = [end];
    s.ends.set(connId, end);
    s.waiting++;
    this.waiting.set(keys.own, end);
    this.log.debug(`conn ${conn.id}: ${s.label} conn ${connId} ${formatEndpoint(v.local)} -> ${formatEndpoint(v.peer)} waits for its peer`);
  }

  private newConnection(state: Connection['state'], reason: string | null): Connection {
    const conn: Connection = { id: this.nextId++, ends: [], state, reason, lease: null };
    this.all.set(conn.id, conn);
    return conn;
  }

  private decline(s: Session, connId: bigint, reason: number): void {
    s.send({ type: 'decline', connId, reason });
  }

  private recordDeclined(s: Session, connId: bigint, origin: number, v: Verified | null, reason: number, detail: string): void {
    const conn = this.newConnection('declined', `${declineText[reason]} (${detail})`);
    const end: ConnEnd = { session: s, connId, origin, local: v?.local ?? null, peer: v?.peer ?? null, key: null, conn, role: null, gone: false };
    conn.ends = [end];
    s.ends.set(connId, end);
    this.log.info(`conn ${conn.id}: ${s.label} conn ${connId} declined: ${conn.reason}`);
    this.decline(s, connId, reason);
  }

  private match(partner: ConnEnd, s: Session, connId: bigint, origin: number, v: Verified): void {
    const conn = partner.conn;
    this.waiting.delete(partner.key!);
    partner.session.waiting--;
    const end: ConnEnd = { session: s, connId, origin, local: v.local, peer: v.peer, key: null, conn, role: null, gone: false };
    s.ends.set(connId, end);
    // Role 0 is the connecting end; simultaneous open (same origin) orders by session, then conn_id.
    let first = partner;
    let second = end;
    if (partner.origin !== end.origin) {
      if (end.origin === Origin.Connect) [first, second] = [end, partner];
    } else if (end.session.id < partner.session.id || (end.session === partner.session && end.connId < partner.connId)) {
      [first, second] = [end, partner];
    }
    first.role = 0;
    second.role = 1;
    conn.ends = [first, second];
    const a = first.session;
    const b = second.session;
    const leased = this.pool.lease(a, b);
    if (!leased.ok) {
      const reason = leased.why === 'quota' ? Decline.Quota : Decline.NoMemory;
      conn.state = 'declined';
      conn.reason = `${declineText[reason]} (${leased.detail})`;
      this.log.warn(`conn ${conn.id}: stays on TCP: ${conn.reason}`);
      for (const e of conn.ends) this.decline(e.session, e.connId, reason);
      return;
    }
    const bells: number[] = [];
    // Each end also gets a pidfd of the other's process: the kernel tells it
    // when the peer has exited, with or without a controller (a writer waiting
    // for ring space must not outlive a SIGKILLed reader). pidfds[i] goes to
    // conn.ends[i] and watches the other end; each is closed once sent.
    const pidfds: number[] = [];
    try {
      for (let i = 0; i < 4; i++) bells.push(eventfd());
      pidfds.push(pidfdOpen(second.session.pid), pidfdOpen(first.session.pid));
    } catch (e) {
      for (const fd of [...bells, ...pidfds]) closeQuietly(fd);
      this.pool.release(leased.arena, leased.index);
      conn.state = 'declined';
      conn.reason = `${declineText[Decline.NoMemory]} (${errorMessage(e)})`;
      this.log.warn(`conn ${conn.id}: stays on TCP: ${conn.reason}`);
      for (const x of conn.ends) this.decline(x.session, x.connId, Decline.NoMemory);
      return;
    }
    const lease: SlotLease = {
      arena: leased.arena, index: leased.index, generation: leased.generation,
      doorbells: bells as unknown as SlotLease['doorbells'], freed: false,
    };
    conn.lease = lease;
    conn.state = 'assigned';
    conn.reason = null;
    this.log.info(
      `conn ${conn.id}: matched ${a.label} conn ${first.connId} (role 0) with ${b.label} conn ${second.connId} (role 1): ` +
      `arena ${lease.arena.id} slot ${lease.index} gen ${lease.generation}`,
    );
    conn.ends.forEach((e, i) => {
      const r = e.role!;
      const p = (1 - r) as 0 | 1;
      const pidfd = pidfds[i]!;
      const fds = [
        lease.arena.fd,
        lease.doorbells[doorbell.rx(r)], lease.doorbells[doorbell.tx(r)],
        lease.doorbells[doorbell.rx(p)], lease.doorbells[doorbell.tx(p)],
        pidfd,
      ];
      if (fds.length !== constant('ASSIGN_NFDS')) throw new Error('ASSIGN fd count');
      e.session.send({
        type: 'assign', connId: e.connId, arenaId: BigInt(lease.arena.id), arenaSize: BigInt(lease.arena.size),
        slotIndex: lease.index, role: r, generation: lease.generation,
      }, fds, () => !lease.freed, () => closeQuietly(pidfd));
    });
  }

  /** CONN_CLOSED: the process dropped its last reference to the connection. */
  closed(s: Session, connId: bigint): void {
    const end = s.ends.get(connId);
    if (!end) {
      this.log.debug(`${s.label}: CONN_CLOSED for unknown conn ${connId} ignored`);
      return;
    }
    this.release(end, false);
  }

  /** The session's process died or left: every end it had is gone. */
  sessionGone(s: Session): void {
    for (const end of [...s.ends.values()]) this.release(end, true);
  }

  private release(end: ConnEnd, died: boolean): void {
    const s = end.session;
    s.ends.delete(end.connId);
    end.gone = true;
    const conn = end.conn;
    if (conn.state === 'waiting-peer' && end.key !== null && this.waiting.get(end.key) === end) {
      this.waiting.delete(end.key);
      s.waiting--;
    }
    const lease = conn.lease;
    if (conn.state === 'assigned' && lease && died && end.role !== null) {
      const survivor = conn.ends[1 - end.role];
      if (survivor && !survivor.gone) {
        lease.arena.setDead(lease.index, end.role);
        const r = survivor.role!;
        for (const fd of [lease.doorbells[doorbell.rx(r)], lease.doorbells[doorbell.tx(r)]]) {
          try {
            eventfdWrite(fd, 1n);
          } catch {
            /* a saturated counter wakes the survivor all the same */
          }
        }
        this.log.info(`conn ${conn.id}: role ${end.role} (pid ${s.pid}) died; woke role ${r}`);
      }
    }
    if (conn.ends.every((e) => e.gone)) {
      if (lease && !lease.freed) {
        lease.freed = true;
        for (const fd of lease.doorbells) closeQuietly(fd);
        this.pool.release(lease.arena, lease.index);
      }
      this.all.delete(conn.id);
      this.log.debug(`conn ${conn.id}: freed`);
    }
  }

  /** Frees every slot without touching shared state (controller shutdown). */
  dropAll(): void {
    for (const conn of this.all.values()) {
      if (conn.lease && !conn.lease.freed) {
        conn.lease.freed = true;
        for (const fd of conn.lease.doorbells) closeQuietly(fd);
      }
    }
    this.all.clear();
    this.waiting.clear();
  }
}
