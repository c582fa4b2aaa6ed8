// `pd controller`: owns the session socket (SEQPACKET, through koffi), the
// status socket, the pid-file lock, the sessions, the connection table and the
// arenas. It is never on the data path: shims keep their mappings and
// doorbells when it exits, and new connections simply stay on TCP.
import { chmodSync, chownSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { dirname } from 'node:path';
import { hugepageInfo } from '../datapath/arena.js';
import {
  AF_UNIX, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_SEQPACKET,
  accept4, bind, closeQuietly, listen, peerCred, socket, sockaddrUn,
} from '../datapath/libc.js';
import { type FdWatch, watchFd } from '../datapath/poll.js';
import { probeController } from './client.js';
import { ConnectionTable } from './connections.js';
import { PdError, errorMessage } from './errors.js';
import { makeDirs } from './fsutil.js';
import { type Logger, createLogger, printWarning } from './log.js';
import type { Options } from './options.js';
import { defaultSocketPath, pidFilePath, statusSocketPath } from './paths.js';
import { type PidLock, acquirePidLock, readPidFile, releasePidLock } from './pidfile.js';
import { ArenaPool } from './pool.js';
import { PROTO_VERSION, type ShimMessage } from './protocol.js';
import { Session, SessionState } from './session.js';
import { type StatusDoc, buildStatus, readComm } from './status.js';

export type ControllerConfig = Pick<
  Options, 'socket' | 'idleExit' | 'ringSize' | 'slotsPerArena' | 'arenaQuotaMb' | 'hugepages' | 'log'
> & Partial<Pick<Options, 'crossNetns' | 'socketGroup'>>;

export enum ControllerState {
  Idle = 'idle',
  Starting = 'starting',
  Running = 'running',
  Stopping = 'stopping',
  Stopped = 'stopped',
}

const LISTEN_BACKLOG = 1024;
const LOCK_WAIT_MS = 3000;
/** After accept fails (out of fds), wait this long before trying again. */
const ACCEPT_RETRY_MS = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Controller {
  state = ControllerState.Idle;
  readonly log: Logger;
  private readonly startedAt = Date.now();
  private readonly sessions = new Map<number, Session>();
  private nextSessionId = 1;
  private readonly pool: ArenaPool;
  private readonly conns: ConnectionTable;
  private lock: PidLock | null = null;
  private listenFd = -1;
  private listenWatch: FdWatch | null = null;
  private socketIno = -1;
  private status: Server | null = null;
  private statusIno = -1;
  private idleTimer: NodeJS.Timeout | null = null;
  private stopped: Promise<void> | null = null;
  private resolveStopped: () => void = () => {};
  private stopRequested: string | null = null;
  private acceptPaused = false;
  private acceptFailing = false;

  constructor(readonly cfg: ControllerConfig) {
    this.log = createLogger(cfg.log, `pd controller[${process.pid}]`);
    this.pool = new ArenaPool(
      {
        ringSize: cfg.ringSize, slotsPerArena: cfg.slotsPerArena,
        hugepages: cfg.hugepages === 'require' ? 'auto' : cfg.hugepages, requireHugepages: cfg.hugepages === 'require',
      },
      cfg.arenaQuotaMb * 1024 * 1024,
      (line) => printWarning(line),
    );
    this.conns = new ConnectionTable(this.pool, this.log, cfg.crossNetns ?? 'same-user');
  }

  get socketPath(): string {
    return this.cfg.socket;
  }

  /** Resolves once the controller has stopped (signal, idle exit, stop()). */
  get done(): Promise<void> {
    this.stopped ??= new Promise((r) => (this.resolveStopped = r));
    return this.stopped;
  }

  async start(): Promise<void> {
    if (this.state !== ControllerState.Idle) throw new Error(`controller: start() while ${this.state}`);
    this.state = ControllerState.Starting;
    void this.done;
    const path = this.cfg.socket;
    try {
      this.prepareDirectory(path);
      this.lock = await this.takeLock(path);
      this.removeStaleSocket(path);
      // Status first: once the session socket answers, everything answers.
      await this.startStatusServer(statusSocketPath(path));
      this.listenFd = this.bindListener(path);
    } catch (e) {
      this.cleanupFiles();
      if (this.listenFd >= 0) closeQuietly(this.listenFd);
      this.listenFd = -1;
      this.status?.close();
      this.status = null;
      this.state = ControllerState.Stopped;
      throw e;
    }
    this.listenWatch = watchFd(this.listenFd, { readable: true }, () => this.acceptAll());
    this.state = ControllerState.Running;
    if (this.stopRequested !== null) {
      await this.stop(this.stopRequested);
      return;
    }
    this.armIdle();
    this.log.info(
      `listening on ${path} (ring ${this.cfg.ringSize} bytes, ${this.cfg.slotsPerArena} slots per arena, ` +
      `idle exit ${this.cfg.idleExit ? `${this.cfg.idleExit} s` : 'never'})`,
    );
  }

  private prepareDirectory(path: string): void {
    const dir = dirname(path);
    try {
      makeDirs(dir, 0o700);
    } catch (e) {
      throw new PdError('PD_E_SOCKET_PATH', `cannot create ${dir}: ${errorMessage(e)}; set PD_SOCKET to a writable place`);
    }
    const uid = process.getuid?.() ?? 0;
    const group = this.cfg.socketGroup ?? null;
    if (group !== null && statSync(dir).uid === uid) {
      // The group must reach the socket: traverse only, no listing.
      chownSync(dir, -1, group);
      chmodSync(dir, 0o710);
    }
    if (path !== defaultSocketPath()) return;
    const st = statSync(dir);
    const allowed = group !== null && st.gid === group ? 0o010 : 0;
    if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077 & ~allowed) !== 0) {
      throw new PdError('PD_E_SOCKET_PATH',
        `${dir} is not a private directory of uid ${uid} (owner ${st.uid}, mode ${(st.mode & 0o777).toString(8)}): ` +
        'remove it, or set PD_SOCKET elsewhere');
    }
  }

  private async takeLock(path: string): Promise<PidLock> {
    const pidPath = pidFilePath(path);
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      let lock: PidLock | null;
      try {
        lock = acquirePidLock(pidPath);
      } catch (e) {
        throw new PdError('PD_E_SOCKET_PATH', `cannot open ${pidPath}: ${errorMessage(e)}; set PD_SOCKET to a writable place`);
      }
      if (lock) return lock;
      // Another controller holds the lock: refuse if it answers, else it is exiting: wait.
      const p = probeController(path);
      if (p.alive) {
        closeQuietly(p.fd);
        throw this.alreadyRunning(path);
      }
      if (this.stopRequested !== null) {
        throw new PdError('PD_E_ALREADY_RUNNING', `stopped (${this.stopRequested}) while waiting for the controller holding ${pidPath}`);
      }
      if (Date.now() > deadline) {
        const st = readPidFile(pidPath);
        throw new PdError('PD_E_ALREADY_RUNNING',
          `a controller${st.running ? ` (pid ${st.pid})` : ''} holds ${pidPath} but does not answer at ${path}: ` +
          `stop it with \`pd stop\`${st.running ? ` or \`kill ${st.pid}\`` : ''}`);
      }
      await sleep(50);
    }
  }

  private alreadyRunning(path: string): PdError {
    const st = readPidFile(pidFilePath(path));
    return new PdError('PD_E_ALREADY_RUNNING',
      `another controller${st.running ? ` (pid ${st.pid})` : ''} is already running at ${path}: ` +
      'use it, or stop it first with `pd stop`');
  }

  private removeStaleSocket(path: string): void {
    for (const p of [path, statusSocketPath(path)]) {
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (!st.isSocket()) {
        throw new PdError('PD_E_SOCKET_PATH', `${p} exists and is not a socket: remove it or set PD_SOCKET elsewhere`);
      }
      if (p === path) {
        const probe = probeController(p);
        if (probe.alive) {
          closeQuietly(probe.fd);
          throw this.alreadyRunning(path);
        }
      }
      unlinkSync(p); // we hold the lock: nobody else may own these paths
      this.log.info(`removed stale socket ${p}`);
    }
  }

  private bindListener(path: string): number {
    const fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC);
    const old = process.umask(0o077);
    try {
      bind(fd, sockaddrUn(path), `bind ${path}`);
    } catch (e) {
      closeQuietly(fd);
      throw new PdError('PD_E_SOCKET_PATH', `${errorMessage(e)}: set PD_SOCKET to a writable place`);
    } finally {
      process.umask(old);
    }
    // Only the user may connect, or the configured group too.
    const group = this.cfg.socketGroup ?? null;
    if (group !== null) chownSync(path, -1, group);
    chmodSync(path, group !== null ? 0o660 : 0o600);
    this.socketIno = statSync(path).ino;
    listen(fd, LISTEN_BACKLOG);
    return fd;
  }

  private startStatusServer(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((sock) => {
        sock.on('error', () => sock.destroy());
        let body: string;
        try {
          body = `${JSON.stringify(this.statusDoc())}\n`;
        } catch (e) {
          this.log.error(`status: ${errorMessage(e)}`);
          sock.destroy();
          return;
        }
        sock.end(body);
      });
      server.once('error', (e) => reject(new PdError('PD_E_SOCKET_PATH', `status socket ${path}: ${errorMessage(e)}`)));
      // listen() binds a Unix socket synchronously, so the umask covers exactly the bind.
      const old = process.umask(0o077);
      try {
        server.listen(path);
      } finally {
        process.umask(old);
      }
      server.once('listening', () => {
        chmodSync(path, 0o600);
        this.statusIno = statSync(path).ino;
        server.on('error', (e) => this.log.error(`status socket: ${errorMessage(e)}`));
        this.status = server;
        resolve();
      });
    });
  }

  statusDoc(): StatusDoc {
    const sessions = [...this.sessions.values()];
    return buildStatus({
      pid: process.pid,
      socket: this.cfg.socket,
      startedAt: this.startedAt,
      hugepages: this.pool.lastHugepage ?? (this.cfg.hugepages !== 'never' && hugepageInfo().free > 0),
      ringSize: this.cfg.ringSize,
      sessions: sessions.filter((s) => s.state === SessionState.Ready),
      launchers: sessions.filter((s) => s.state === SessionState.Connected).length,
      connections: this.conns,
      pool: this.pool,
    });
  }

  private acceptAll(): void {
    if (this.state !== ControllerState.Running || this.acceptPaused) return;
    for (;;) {
      let fd: number | null;
      try {
        fd = accept4(this.listenFd, SOCK_NONBLOCK | SOCK_CLOEXEC);
      } catch (e) {
        // EMFILE and friends: the connection stays in the backlog. The listening
        // socket stays readable, so stop watching it for a while (the watch is
        // level-triggered: it would spin) and log once per episode.
        if (!this.acceptFailing) this.log.error(`accept: ${errorMessage(e)}; retrying every ${ACCEPT_RETRY_MS} ms`);
        this.acceptFailing = true;
        this.pauseAccept();
        return;
      }
      if (fd !== null && this.acceptFailing) {
        this.acceptFailing = false;
        this.log.info('accept works again');
      }
      if (fd === null) return;
      let pid: number;
      let uid: number;
      try {
        ({ pid, uid } = peerCred(fd));
      } catch (e) {
        this.log.warn(`accept: ${errorMessage(e)}`);
        closeQuietly(fd);
        continue;
      }
      const s = new Session(this.nextSessionId++, fd, pid, {
        onMessage: (ss, msg, fds) => this.onMessage(ss, msg, fds),
        onClose: (ss, reason) => this.onSessionClose(ss, reason),
      }, this.log.debugOn ? (m) => this.log.debug(m) : null);
      s.uid = uid;
      this.sessions.set(s.id, s);
      this.disarmIdle();
      this.log.debug(`${s.label}: connected`);
    }
  }

  private pauseAccept(): void {
    if (this.acceptPaused) return;
    this.acceptPaused = true;
    this.listenWatch?.update({ readable: false });
    const t = setTimeout(() => {
      this.acceptPaused = false;
      if (this.state !== ControllerState.Running) return;
      this.listenWatch?.update({ readable: true });
      this.acceptAll();
    }, ACCEPT_RETRY_MS);
    t.unref();
  }

  private onMessage(s: Session, msg: ShimMessage, fds: number[]): void {
    try {
      this.dispatch(s, msg, fds);
    } catch (e) {
      for (const fd of fds) closeQuietly(fd);
      this.log.error(`${s.label}: ${msg.type}: ${errorMessage(e)}`);
      s.close(`internal error handling ${msg.type}`);
    }
  }

  private dispatch(s: Session, msg: ShimMessage, fds: number[]): void {
    const violation = (why: string) => {
      for (const fd of fds) closeQuietly(fd);
      s.close(`protocol violation: ${why}`);
    };
    switch (msg.type) {
      case 'hello':
        if (s.state !== SessionState.Connected) return violation('second HELLO');
        if (msg.protoVersion !== PROTO_VERSION) {
          this.log.warn(`pid ${s.pid} speaks session protocol ${msg.protoVersion}, this controller ${PROTO_VERSION}: ` +
            'closing its session (its connections stay on TCP); run matching pipedevice versions');
          s.close('protocol version mismatch');
          return;
        }
        s.comm = readComm(s.pid);
        s.accept(s.id);
        this.log.info(`${s.label}: session opened`);
        return;
      case 'conn-report':
        if (s.state !== SessionState.Ready) return violation('CONN_REPORT before HELLO');
        if (fds.length === 0) {
          this.conns.unreceived(s, msg.connId, msg.origin, 'the controller is out of file descriptors (EMFILE): it could not receive the socket');
          return;
        }
        this.conns.report(s, msg.connId, msg.origin, fds[0]!);
        return;
      case 'conn-closed':
        if (s.state !== SessionState.Ready) return violation('CONN_CLOSED before HELLO');
        this.conns.closed(s, msg.connId);
        return;
      case 'conn-refused':
        if (s.state !== SessionState.Ready) return violation('CONN_REFUSED before HELLO');
        this.conns.refused(s, msg.connId, msg.reason, msg.fd, msg.limit);
        return;
    }
  }

  private onSessionClose(s: Session, reason: string): void {
    this.sessions.delete(s.id);
    if (this.state === ControllerState.Stopping) return;
    // A session also ends while its process lives on (an exec closes the
    // socket; a protocol violation): its ends count as dead all the same, so
    // peers get EOF/ECONNRESET rather than wait on a ring nobody serves.
    const ends = s.ends.size;
    this.conns.sessionGone(s);
    this.pool.sessionGone(s);
    if (reason.startsWith('protocol violation') || reason.startsWith('internal')) this.log.warn(`${s.label}: closed: ${reason}`);
    else if (s.helloed) this.log.info(`${s.label}: ended (${reason}); reclaimed ${ends} connection end(s)`);
    else this.log.debug(`${s.label}: ended before HELLO (${reason})`);
    this.armIdle();
  }

  private armIdle(): void {
    if (this.idleTimer || this.cfg.idleExit === 0 || this.sessions.size > 0 || this.state !== ControllerState.Running) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.sessions.size === 0) void this.stop(`idle for ${this.cfg.idleExit} s`);
    }, this.cfg.idleExit * 1000);
  }

  private disarmIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** Stops: no new sessions, files removed, shims keep their rings. Idempotent. */
  async stop(reason: string): Promise<void> {
    if (this.state === ControllerState.Starting) {
      this.stopRequested = reason; // start() stops once it is up
      return this.done;
    }
    if (this.state !== ControllerState.Running) return this.done;
    this.state = ControllerState.Stopping;
    this.log.info(`stopping: ${reason}`);
    this.disarmIdle();
    this.listenWatch?.close(true);
    this.listenWatch = null;
    this.listenFd = -1;
    this.cleanupFiles();
    for (const s of [...this.sessions.values()]) s.close('controller stopping');
    this.conns.dropAll();
    this.pool.destroyAll();
    const status = this.status;
    this.status = null;
    if (status) await new Promise<void>((r) => status.close(() => r()));
    this.state = ControllerState.Stopped;
    this.resolveStopped();
  }

  /** Removes the socket, status socket and pid file if they are still ours. Synchronous: also runs at exit. */
  cleanupFiles(): void {
    const path = this.cfg.socket;
    const rmIfIno = (p: string, ino: number) => {
      try {
        if (ino >= 0 && statSync(p).ino === ino) unlinkSync(p);
      } catch {
        /* gone */
      }
    };
    rmIfIno(path, this.socketIno);
    rmIfIno(statusSocketPath(path), this.statusIno);
    this.socketIno = -1;
    this.statusIno = -1;
    if (this.lock) releasePidLock(this.lock);
    this.lock = null;
  }
}
