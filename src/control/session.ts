// One shim process's session: its SEQPACKET socket (owned through koffi and
// watched on Node's loop), its shared session page, and an ordered send queue.
// Every message sent bumps `seq` in the page after the sendmsg, so the shim can
// tell without a syscall that its socket holds something.
import { SESSION_PAGE, constant, offsetOf } from '../datapath/layout.js';
import {
  F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, MFD_ALLOW_SEALING, MFD_CLOEXEC, RECV_MAX_FDS,
  type Received, addSeals, closeQuietly, ftruncate, memfdCreate, pidfdOpen, recvMany, sendWithFds,
} from '../datapath/libc.js';
import { type FdWatch, watchFd } from '../datapath/poll.js';
import { Mapping } from '../datapath/shm.js';
import { errorMessage } from './errors.js';
import { KINDS, MSG_MAX, type Message, type ShimMessage, decode, encode } from './protocol.js';
import { SharedFd } from './shared-fd.js';
import type { ConnEnd, PendingReport } from './state.js';

export enum SessionState {
  /** connected, no HELLO yet (pdrun's keep-alive connection stays here) */
  Connected = 'connected',
  /** HELLO accepted, HELLO_ACK sent or queued */
  Ready = 'ready',
  Closed = 'closed',
}

export interface SessionEvents {
  /**
   * A decoded message. For conn-report the callee owns `fds`; a conn-report
   * with no fd is one whose socket the controller could not receive (it is
   * itself out of file descriptors): the shim is not at fault.
   */
  onMessage(s: Session, msg: ShimMessage, fds: number[]): void;
  /** The session ended (peer closed, I/O error, protocol violation); called once. */
  onClose(s: Session, reason: string): void;
}

interface Outgoing {
  readonly data: Buffer;
  readonly fds: readonly number[];
  /** false: drop instead of sending (its fds were released meanwhile) */
  readonly live: () => boolean;
  readonly after: () => void;
}

/** Messages handled per readable event before yielding to other sessions. */
const BATCH = 256;
/** A shim that lets this many messages pile up is not reading its socket. */
const MAX_QUEUE = 1 << 16;
const SEQ = offsetOf(SESSION_PAGE, 'seq');

export class Session {
  state = SessionState.Connected;
  /** HELLO was accepted (stays true once closed) */
  helloed = false;
  comm = '';
  /** uid of the process (SO_PEERCRED at accept); -1 unknown */
  uid = -1;
  /** connection ends this session reported and has not closed, by conn_id */
  readonly ends = new Map<bigint, ConnEnd>();
  /** reports received this event-loop turn, not verified yet, by conn_id */
  readonly unverified = new Map<bigint, PendingReport>();
  waiting = 0;
  private page: Mapping | null = null;
  /** a pidfd of this process, opened at HELLO, sent with every ASSIGN its peers get */
  private procFd: SharedFd | null = null;
  private seq = 0n;
  private readonly queue: Outgoing[] = [];
  private readonly watch: FdWatch;
  private closing = false;
  /** writable interest is on (a message waits for socket space) */
  private wantWritable = false;

  constructor(
    readonly id: number,
    readonly fd: number,
    readonly pid: number,
    private readonly events: SessionEvents,
    /** null when debug logging is off: `this.debug?.(...)` then skips formatting its argument */
    private readonly debug: ((m: string) => void) | null,
  ) {
    this.watch = watchFd(fd, { readable: true, disconnect: true }, (ev) => {
      if (ev.status < 0) this.close(`poll error ${ev.status}`);
      else if (ev.writable) this.flush();
      if (ev.readable || ev.disconnect) this.receive();
    });
  }

  get label(): string {
    return `session ${this.id} (pid ${this.pid}${this.comm ? ` ${this.comm}` : ''})`;
  }

  private receive(): void {
    let taken = 0;
    while (taken < BATCH && this.state !== SessionState.Closed) {
      let batch;
      try {
        batch = recvMany(this.fd, MSG_MAX);
      } catch (e) {
        this.close(errorMessage(e));
        return;
      }
      const { msgs } = batch;
      taken += msgs.length;
      for (let i = 0; i < msgs.length; i++) {
        if (!this.handle(msgs[i]!)) {
          // the session closed: release what the rest of the batch carried
          for (let j = i + 1; j < msgs.length; j++) for (const fd of msgs[j]!.fds) closeQuietly(fd);
          return;
        }
      }
      if (batch.drained) return;
    }
    // More may be queued: uv_poll is level-triggered, so the next loop turn
    // comes back here, after the other sessions had theirs.
  }

  /** One received message; false once the session is closed. */
  private handle(r: Received): boolean {
    if (r.data.length === 0 && r.fds.length === 0) {
      this.close('closed by the process');
      return false;
    }
    const violation = (why: string) => {
      for (const fd of r.fds) closeQuietly(fd);
      this.close(`protocol violation: ${why}`);
      return false;
    };
    if (r.truncated) return violation('message longer than PD_MSG_MAX');
    if (r.ctruncated && r.fds.length < RECV_MAX_FDS) {
      // Room was left in the control buffer, so the kernel could not
      // install the fds in this process: EMFILE here, not a bad shim.
      // A report stays on TCP; its session stays.
      const d = decode(r.data, KINDS['conn-report'].fds);
      if (d.ok && d.msg.type === 'conn-report') {
        for (const fd of r.fds) closeQuietly(fd);
        this.debug?.(`${this.label} <- ${describe(d.msg)} (its socket could not be received: out of file descriptors)`);
        this.events.onMessage(this, d.msg, []);
        return this.state !== SessionState.Closed;
      }
    }
    if (r.ctruncated) return violation('too many fds attached');
    const d = decode(r.data, r.fds.length);
    if (!d.ok) return violation(d.error);
    const msg = d.msg;
    if (msg.type === 'hello-ack' || msg.type === 'assign' || msg.type === 'decline') {
      return violation(`${msg.type} is not a shim message`);
    }
    this.debug?.(`${this.label} <- ${describe(msg)}`);
    this.events.onMessage(this, msg, r.fds);
    return this.state !== SessionState.Closed;
  }

  /**
   * A pidfd of this session's process, with a reference for the caller (who
   * unrefs it once the message carrying it was sent or dropped). Opened once
   * per session rather than per connection. Throws SysError (ESRCH: gone).
   */
  pidfd(): SharedFd {
    if (this.state === SessionState.Closed) throw new Error(`${this.label}: pidfd() after close`);
    this.procFd ??= new SharedFd(pidfdOpen(this.pid));
    return this.procFd.ref();
  }

  /** Opens the pidfd now (at HELLO), so a session's descriptors are all made when it starts. */
  private openPidfd(): void {
    try {
      this.procFd ??= new SharedFd(pidfdOpen(this.pid));
    } catch {
      /* gone already: its first match tries again, fails and declines */
    }
  }

  /** Creates the session page and answers HELLO_ACK with it. */
  accept(sessionId: number): void {
    const fd = memfdCreate(`pd-session-${this.id}`, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    try {
      const size = constant('SESSION_PAGE_SIZE');
      ftruncate(fd, size);
      const page = new Mapping(fd, size);
      page.store32(offsetOf(SESSION_PAGE, 'version'), constant('PROTO_VERSION'));
      page.store64(SEQ, 0n);
      page.store32(offsetOf(SESSION_PAGE, 'magic'), constant('SESSION_MAGIC'));
      addSeals(fd, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
      this.page = page;
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
    this.state = SessionState.Ready;
    this.helloed = true;
    this.openPidfd();
    this.send({ type: 'hello-ack', protoVersion: constant('PROTO_VERSION'), sessionId }, [fd], () => true, () => closeQuietly(fd));
  }

  /**
   * Sends a message in order after anything queued. `live` is asked again
   * before a queued message goes out; `after` runs once it was sent or dropped.
   */
  send(msg: Message, fds: readonly number[] = [], live: () => boolean = () => true, after: () => void = () => {}): void {
    if (this.state === SessionState.Closed) {
      after();
      return;
    }
    this.debug?.(`${this.label} -> ${describe(msg)}`);
    this.queue.push({ data: encode(msg), fds, live, after });
    if (this.queue.length > MAX_QUEUE) {
      this.closeLater('the process does not read its session socket');
      return;
    }
    if (this.queue.length === 1) this.flush();
  }

  private flush(): void {
    while (this.queue.length > 0 && this.state !== SessionState.Closed) {
      const m = this.queue[0]!;
      if (m.live()) {
        let sent: boolean;
        try {
          sent = sendWithFds(this.fd, m.data, m.fds);
        } catch (e) {
          this.closeLater(errorMessage(e));
          return;
        }
        if (!sent) {
          if (!this.wantWritable) this.watch.update({ readable: true, writable: true, disconnect: true });
          this.wantWritable = true;
          return;
        }
        this.bumpSeq();
      }
      this.queue.shift();
      m.after();
    }
    if (this.wantWritable && this.state !== SessionState.Closed) this.watch.update({ readable: true, disconnect: true });
    this.wantWritable = false;
  }

  private bumpSeq(): void {
    this.seq += 1n;
    // Single writer; an aligned 8-byte store (seq_cst) after the sendmsg.
    if (this.page?.mapped) this.page.store64(SEQ, this.seq);
  }

  /** Closes from inside a call chain that may still touch this session. */
  private closeLater(reason: string): void {
    if (this.closing) return;
    this.closing = true;
    setImmediate(() => this.close(reason));
  }

  /** Ends the session: the owner reclaims its connections in onClose. Idempotent. */
  close(reason: string): void {
    if (this.state === SessionState.Closed) return;
    this.state = SessionState.Closed;
    this.watch.close(true);
    for (const m of this.queue.splice(0)) m.after();
    this.page?.unmap();
    this.page = null;
    this.procFd?.unref();
    this.procFd = null;
    this.events.onClose(this, reason);
  }
}

export function describe(m: Message): string {
  switch (m.type) {
    case 'hello':
      return `HELLO proto ${m.protoVersion} pid ${m.pid}`;
    case 'hello-ack':
      return `HELLO_ACK session ${m.sessionId}`;
    case 'conn-report':
      return `CONN_REPORT conn ${m.connId} origin ${m.origin}`;
    case 'assign':
      return `ASSIGN conn ${m.connId} arena ${m.arenaId} slot ${m.slotIndex} role ${m.role} gen ${m.generation}`;
    case 'decline':
      return `DECLINE conn ${m.connId} reason ${m.reason}`;
    case 'conn-closed':
      return `CONN_CLOSED conn ${m.connId}`;
    case 'conn-refused':
      return `CONN_REFUSED conn ${m.connId} reason ${m.reason} fd ${m.fd} limit ${m.limit}`;
  }
}
