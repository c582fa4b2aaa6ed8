// Connection matching and the life of a slot: verify a reported socket, pair it
// with the other end's report, lease a slot and four doorbells, ASSIGN both
// ends; free everything once both ends are gone.
import { fstatSync, statSync } from 'node:fs';
import {
  IPPROTO_TCP, SOCK_STREAM, SOL_SOCKET, SO_PROTOCOL, SO_TYPE,
  closeQuietly, eventfd, eventfdWrite, getpeername, getsockname, getsockoptInt, isSysError, netnsCookie,
  socketNetnsFd,
} from '../datapath/libc.js';
import { constant } from '../datapath/layout.js';
import { type Endpoint, formatEndpoint, isLoopback, normalise } from './address.js';
import { errorMessage } from './errors.js';
import type { Logger } from './log.js';
import type { CrossNetns } from './options.js';
import type { ArenaPool } from './pool.js';
import { Decline, Origin, Refuse, declineText, refuseText } from './protocol.js';
import type { Session } from './session.js';
import type { SharedFd } from './shared-fd.js';
import { type ConnEnd, type Connection, type PendingReport, type SlotLease, doorbell } from './state.js';

/** Unmatched reports one session may have waiting. */
export const MAX_WAITING_PER_SESSION = 65536;
/** Ends (any state) one session may have on record. */
export const MAX_ENDS_PER_SESSION = 262144;

export const WAITING_REASON = 'peer not under pdrun (no report yet)';

interface Verified {
  readonly local: Endpoint;
  readonly peer: Endpoint;
  /** the socket's network namespace (see socketNetns); null when it cannot be known */
  readonly netns: number | null;
}

/** How this kernel names a socket's namespace; decided at the first socket, then fixed. */
let netnsByCookie: boolean | null = null;

/**
 * The network namespace of a socket, as a number two sockets share exactly
 * when they are in the same namespace. SO_NETNS_COOKIE asks the socket itself
 * in one call, unprivileged. On kernels without it (before 5.14): SIOCGSKNS,
 * which needs CAP_NET_ADMIN, else the namespace of the reporting process
 * (`/proc/<pid>/ns/net`, readable for the same uid), by inode. One kernel
 * always takes the same branch, so cookies and inodes are never compared.
 */
function socketNetns(fd: number, pid: number): number | null {
  if (netnsByCookie !== false) {
    const cookie = netnsCookie(fd);
    netnsByCookie = cookie !== null;
    if (cookie !== null) return cookie;
  }
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

/**
 * Matching keys. Within one network namespace the kernel keeps the 4-tuple of
 * an established TCP connection unique, so the report whose (local, peer) is
 * this one's (peer, local) in the same namespace is this one's other end: that
 * is the exact key. Across namespaces (containers joined by a bridge) only the
 * addresses are left to match on, and they prove nothing: another namespace
 * may use the same addresses (overlapping networks, or a tenant who mirrors
 * someone else's connection to be paired with it). The controller pairs ends
 * of different namespaces only as its PD_CROSS_NETNS policy allows; loopback
 * connections never leave their namespace and are never paired across.
 */
function scopedKey(netns: number | null, local: Endpoint, peer: Endpoint): string {
  return `${netns ?? '?'}|${formatEndpoint(local)}|${formatEndpoint(peer)}`;
}
function addrKey(local: Endpoint, peer: Endpoint): string {
  return `${formatEndpoint(local)}|${formatEndpoint(peer)}`;
}

export class ConnectionTable {
  private nextId = 1;
  readonly all = new Map<number, Connection>();
  /** unmatched ends by scopedKey: one per namespace and 4-tuple */
  private readonly waiting = new Map<string, ConnEnd>();
  /** the same ends by addrKey, oldest first, for a peer in another namespace */
  private readonly waitingByAddr = new Map<string, Set<ConnEnd>>();
  /** reports of this event-loop turn, verified at its end (flushReports) */
  private readonly pending: PendingReport[] = [];

  constructor(
    private readonly pool: ArenaPool,
    private readonly log: Logger,
    private readonly crossNetns: CrossNetns = 'same-user',
  ) {}

  private addWaiting(end: ConnEnd, addr: string): void {
    this.waiting.set(end.key!, end);
    let set = this.waitingByAddr.get(addr);
    if (!set) this.waitingByAddr.set(addr, (set = new Set()));
    set.add(end);
    end.session.waiting++;
  }

  private removeWaiting(end: ConnEnd): void {
    if (end.key === null || this.waiting.get(end.key) !== end) return;
    this.waiting.delete(end.key);
    const addr = addrKey(end.local!, end.peer!);
    const set = this.waitingByAddr.get(addr);
    set?.delete(end);
    if (set?.size === 0) this.waitingByAddr.delete(addr);
    end.session.waiting--;
  }

  /**
   * A waiting end in another namespace whose addresses mirror these, if the
   * policy lets the two pair; rejected candidates are logged and noted.
   */
  private crossPartner(s: Session, v: Verified): { partner?: ConnEnd; refused: string[] } {
    const refused: string[] = [];
    const cands = this.waitingByAddr.get(addrKey(v.peer, v.local));
    if (!cands || isLoopback(v.local) || isLoopback(v.peer)) return { refused };
    for (const c of cands) {
      if (c.netns !== null && c.netns === v.netns) continue; // same namespace: the exact key would have found it
      const other = `${c.session.label} (uid ${c.session.uid}) conn ${c.connId}`;
      if (this.crossNetns === 'never') {
        refused.push(`${other} is in another network namespace (PD_CROSS_NETNS=never)`);
      } else if (this.crossNetns === 'same-user' && c.session.uid !== s.uid) {
        refused.push(`${other} is in another network namespace and of another user (PD_CROSS_NETNS=same-user)`);
      } else {
        return { partner: c, refused };
      }
    }
    return { refused };
  }

  /**
   * CONN_REPORT with its socket fd, which is closed whatever happens: at the
   * end of this event-loop turn (flushReports), or at once when the same turn
   * brings the connection's CONN_CLOSED or the end of its session.
   */
  report(s: Session, connId: bigint, origin: number, fd: number): void {
    if (s.ends.has(connId) || s.unverified.has(connId)) {
      closeQuietly(fd);
      s.close(`protocol violation: conn_id ${connId} reported twice`);
      return;
    }
    const p: PendingReport = { session: s, connId, origin, fd };
    s.unverified.set(connId, p);
    this.pending.push(p);
    if (this.pending.length === 1) setImmediate(this.flushReports);
  }

  /** Verifies and places the reports of this turn, in the order they came. */
  private readonly flushReports = (): void => {
    const batch = this.pending.splice(0);
    for (const p of batch) {
      if (p.fd < 0) continue; // closed in the same turn, or its session ended
      p.session.unverified.delete(p.connId);
      const fd = p.fd;
      p.fd = -1;
      try {
        this.place(p.session, p.connId, p.origin, fd);
      } catch (e) {
        // as Controller.onMessage does for a message it fails on
        this.log.error(`${p.session.label}: conn-report: ${errorMessage(e)}`);
        p.session.close('internal error handling conn-report');
      }
    }
  };

  /** Drops a report not looked at yet: its socket is closed, nothing else was made for it. */
  private dropPending(p: PendingReport): void {
    p.session.unverified.delete(p.connId);
    if (p.fd >= 0) closeQuietly(p.fd);
    p.fd = -1;
  }

  /** Verifies a reported socket, then matches it, parks it, or declines it. */
  private place(s: Session, connId: bigint, origin: number, fd: number): void {
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
    const own = scopedKey(v.netns, v.local, v.peer);
    const mirror = scopedKey(v.netns, v.peer, v.local);
    let partner = own === mirror || v.netns === null ? undefined : this.waiting.get(mirror);
    let refused: string[] = [];
    if (!partner) ({ partner, refused } = this.crossPartner(s, v));
    if (partner) {
      this.match(partner, s, connId, origin, v);
      return;
    }
    if (this.waiting.has(own)) {
      this.recordDeclined(s, connId, origin, v, Decline.Duplicate, `${own} is already reported`);
      return;
    }
    for (const r of refused) {
      this.log.warn(`${s.label} (uid ${s.uid}) conn ${connId} ${formatEndpoint(v.local)} -> ${formatEndpoint(v.peer)}: not paired with ${r}`);
    }
    const conn = this.newConnection('waiting-peer', refused.length ? `${WAITING_REASON}; not paired with ${refused.join('; ')}` : WAITING_REASON);
    const end: ConnEnd = {
      session: s, connId, origin, local: v.local, peer: v.peer, netns: v.netns, key: own, conn, role: null, gone: false,
    };
    conn.ends = [end];
    s.ends.set(connId, end);
    this.addWaiting(end, addrKey(v.local, v.peer));
    if (this.log.debugOn) this.log.debug(`conn ${conn.id}: ${s.label} conn ${connId} ${formatEndpoint(v.local)} -> ${formatEndpoint(v.peer)} waits for its peer`);
  }

  /** CONN_REPORT whose socket the controller could not receive (it is out of fds): stays on TCP. */
  unreceived(s: Session, connId: bigint, origin: number, why: string): void {
    if (s.ends.has(connId) || s.unverified.has(connId)) {
      s.close(`protocol violation: conn_id ${connId} reported twice`);
      return;
    }
    this.recordDeclined(s, connId, origin, null, Decline.NoMemory, why);
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
    const end: ConnEnd = {
      session: s, connId, origin, local: v?.local ?? null, peer: v?.peer ?? null, netns: v?.netns ?? null, key: null, conn, role: null, gone: false,
    };
    conn.ends = [end];
    s.ends.set(connId, end);
    // A shim reports only TCP connections it saw established, once each: anything
    // else is a refused claim and worth a line at the default log level.
    const refusal = reason === Decline.NotTcp || reason === Decline.Duplicate || reason === Decline.BadMsg;
    (refusal ? this.log.warn : this.log.info)(`conn ${conn.id}: ${s.label} (uid ${s.uid}) conn ${connId} refused: ${conn.reason}`);
    this.decline(s, connId, reason);
  }

  private match(partner: ConnEnd, s: Session, connId: bigint, origin: number, v: Verified): void {
    const conn = partner.conn;
    this.removeWaiting(partner);
    const end: ConnEnd = {
      session: s, connId, origin, local: v.local, peer: v.peer, netns: v.netns, key: null, conn, role: null, gone: false,
    };
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
    // conn.ends[i] and watches the other end. Each session opens its pidfd
    // once; every ASSIGN carrying it holds a reference until it is sent.
    const pidfds: SharedFd[] = [];
    try {
      for (let i = 0; i < 4; i++) bells.push(eventfd());
      // One at a time: when the second fails (that process has exited and
      // been reaped: ESRCH), the first must be in the array to be released.
      pidfds.push(second.session.pidfd());
      pidfds.push(first.session.pidfd());
    } catch (e) {
      for (const fd of bells) closeQuietly(fd);
      for (const p of pidfds) p.unref();
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
    if (this.log.infoOn) this.log.info(
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
        pidfd.fd,
      ];
      if (fds.length !== constant('ASSIGN_NFDS')) throw new Error('ASSIGN fd count');
      e.session.send({
        type: 'assign', connId: e.connId, arenaId: BigInt(lease.arena.id), arenaSize: BigInt(lease.arena.size),
        slotIndex: lease.index, role: r, generation: lease.generation, ringSize: lease.arena.ringSize,
      }, fds, () => !lease.freed, () => pidfd.unref());
    });
  }

  /** CONN_CLOSED: the process dropped its last reference to the connection. */
  closed(s: Session, connId: bigint): void {
    const p = s.unverified.get(connId);
    if (p) {
      this.dropPending(p);
      return;
    }
    const end = s.ends.get(connId);
    if (!end) {
      this.log.debug(`${s.label}: CONN_CLOSED for unknown conn ${connId} ignored`);
      return;
    }
    this.release(end, false);
  }

  /** CONN_REFUSED: an end closed the fds of its ASSIGN (near RLIMIT_NOFILE,
   * the assignment failed its checks, or the process forked before it
   * attached). It never attaches, so neither end
   * switches: the connection stays on TCP with the reason shown by `pd status`.
   * The slot stays leased until both ends have closed (the peer maps it). */
  refused(s: Session, connId: bigint, reason: number, fd: number, limit: number): void {
    const end = s.ends.get(connId);
    if (!end) {
      this.log.debug(`${s.label}: CONN_REFUSED for unknown conn ${connId} ignored`);
      return;
    }
    const conn = end.conn;
    if (conn.state !== 'assigned') {
      this.log.debug(`${s.label}: CONN_REFUSED for conn ${conn.id} in state ${conn.state} ignored`);
      return;
    }
    const what = refuseText[reason] ?? `refused for reason ${reason}`;
    const detail = reason === Refuse.NoFile
      ? `pid ${s.pid}: ${fd > 0 ? `descriptor ${fd}` : 'the kernel truncated the ASSIGN'}, RLIMIT_NOFILE ${limit}`
      : `pid ${s.pid}`;
    conn.state = 'declined';
    conn.reason = `${what} (${detail})`;
    this.log.info(`conn ${conn.id}: stays on TCP: ${conn.reason}`);
  }

  /** The session's process died or left: every end it had is gone. */
  sessionGone(s: Session): void {
    for (const p of [...s.unverified.values()]) this.dropPending(p);
    for (const end of [...s.ends.values()]) this.release(end, true);
  }

  private release(end: ConnEnd, died: boolean): void {
    const s = end.session;
    s.ends.delete(end.connId);
    end.gone = true;
    const conn = end.conn;
    if (conn.state === 'waiting-peer') this.removeWaiting(end);
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
      if (this.log.debugOn) this.log.debug(`conn ${conn.id}: freed`);
    }
  }

  /** Frees every slot without touching shared state (controller shutdown). */
  dropAll(): void {
    for (const p of this.pending.splice(0)) this.dropPending(p);
    for (const conn of this.all.values()) {
      if (conn.lease && !conn.lease.freed) {
        conn.lease.freed = true;
        for (const fd of conn.lease.doorbells) closeQuietly(fd);
      }
    }
    this.all.clear();
    this.waiting.clear();
    this.waitingByAddr.clear();
  }
}
