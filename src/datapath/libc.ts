// libc through koffi, for what Node cannot do: SEQPACKET sockets, SCM_RIGHTS,
// memfd/mmap/seals, eventfd, SO_PEERCRED, SIOCGSKNS, flock.
//
// One lazy table binds every function once per process. Pointers are bigints
// (koffi 3.3 returns `void *` as a bigint address). errno is read in the very
// next expression after a failing call, before anything else can clobber it.
// Every failure is thrown as a SysError naming the operation and the errno.
import koffi, { type TypeObject } from 'koffi';
import { getSystemErrorMap } from 'node:util';

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_TYPE = 3;
export const SO_PEERCRED = 17;
export const SO_PROTOCOL = 38;
export const SO_DOMAIN = 39;
export const SO_NETNS_COOKIE = 71;
export const SCM_RIGHTS = 1;
export const IPPROTO_TCP = 6;
export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const MFD_CLOEXEC = 0x1;
export const MFD_ALLOW_SEALING = 0x2;
export const MFD_HUGETLB = 0x4;
export const F_GETFD = 1;
export const F_DUPFD_CLOEXEC = 1030;
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x1;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;
export const SIOCGSKNS = 0x894c;
export const LOCK_EX = 2;
export const LOCK_NB = 4;

/** Most fds one recvmsg accepts; more than any message carries, so extras are seen and closed. */
export const RECV_MAX_FDS = 16;
/** Most fds one sendmsg carries (ASSIGN sends 6). */
export const SEND_MAX_FDS = 8;
const DATA_MAX = 4096;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

const errnoNames: Map<number, [string, string]> = getSystemErrorMap() as Map<number, [string, string]>;

/** A failed system call: `code` is the errno name (ENOENT, ...), `op` the operation. */
export class SysError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly op: string;
  constructor(op: string, errno: number) {
    const [name, text] = errnoNames.get(-errno) ?? [`E${errno}`, `errno ${errno}`];
    super(`${op}: ${name} (${text})`);
    this.name = 'SysError';
    this.code = name;
    this.errno = errno;
    this.op = op;
  }
}

export function isSysError(e: unknown, ...codes: string[]): e is SysError {
  return e instanceof SysError && (codes.length === 0 || codes.includes(e.code));
}

type Fn<A extends unknown[], R> = (...args: A) => R;
type Ptr = bigint | Buffer | null;

interface Table {
  socket: Fn<[number, number, number], number>;
  bind: Fn<[number, Buffer, number], number>;
  listen: Fn<[number, number], number>;
  accept4: Fn<[number, null, null, number], number>;
  connect: Fn<[number, Buffer, number], number>;
  close: Fn<[number], number>;
  sendmsg: Fn<[number, bigint, number], number>;
  recvmsg: Fn<[number, bigint, number], number>;
  recvmmsg: Fn<[number, bigint, number, number, null], number>;
  getsockopt: Fn<[number, number, number, Buffer, Buffer], number>;
  getsockname: Fn<[number, Buffer, Buffer], number>;
  getpeername: Fn<[number, Buffer, Buffer], number>;
  ioctl: Fn<[number, number, 'long', number], number>;
  memfd_create: Fn<[string, number], number>;
  ftruncate: Fn<[number, number], number>;
  fcntl: Fn<[number, number, 'int', number], number>;
  mmap: Fn<[Ptr, number, number, number, number, number], bigint>;
  munmap: Fn<[bigint, number], number>;
  eventfd: Fn<[number, number], number>;
  pidfd_open: Fn<[number, number], number>;
  write: Fn<[number, Buffer, number], number>;
  read: Fn<[number, Buffer, number], number>;
  flock: Fn<[number, number], number>;
  tcgetpgrp: Fn<[number], number>;
  getpgrp: Fn<[], number>;
  // koffi-computed layouts (anonymous types: nothing registered globally)
  msghdr: { size: number; name: number; namelen: number; iov: number; iovlen: number; control: number; controllen: number; flags: number };
  iovec: { size: number; base: number; len: number };
  cmsghdr: { size: number; len: number; level: number; type: number };
}

let table: Table | null = null;

function lib(): Table {
  if (table) return table;
  const c = koffi.load('libc.so.6');
  const f = <A extends unknown[], R>(proto: string): Fn<A, R> => c.func(proto) as unknown as Fn<A, R>;
  const msghdr = koffi.struct({
    name: 'void *', namelen: 'uint32_t', iov: 'void *', iovlen: 'size_t',
    control: 'void *', controllen: 'size_t', flags: 'int',
  });
  const iovec = koffi.struct({ base: 'void *', len: 'size_t' });
  const cmsghdr = koffi.struct({ len: 'size_t', level: 'int', type: 'int' });
  const off = (t: TypeObject, m: string) => koffi.offsetof(t, m);
  table = {
    socket: f('int socket(int domain, int type, int protocol)'),
    bind: f('int bind(int fd, const void *addr, uint32_t len)'),
    listen: f('int listen(int fd, int backlog)'),
    accept4: f('int accept4(int fd, void *addr, void *len, int flags)'),
    connect: f('int connect(int fd, const void *addr, uint32_t len)'),
    close: f('int close(int fd)'),
    sendmsg: f('intptr_t sendmsg(int fd, void *msg, int flags)'),
    recvmsg: f('intptr_t recvmsg(int fd, void *msg, int flags)'),
    recvmmsg: f('int recvmmsg(int fd, void *vec, unsigned int vlen, int flags, void *timeout)'),
    getsockopt: f('int getsockopt(int fd, int level, int name, void *val, void *len)'),
    getsockname: f('int getsockname(int fd, void *addr, void *len)'),
    getpeername: f('int getpeername(int fd, void *addr, void *len)'),
    ioctl: f('int ioctl(int fd, unsigned long req, ...)'),
    memfd_create: f('int memfd_create(const char *name, unsigned int flags)'),
    ftruncate: f('int ftruncate(int fd, int64_t len)'),
    fcntl: f('int fcntl(int fd, int cmd, ...)'),
    mmap: f('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
    munmap: f('int munmap(void *addr, size_t len)'),
    eventfd: f('int eventfd(unsigned int initval, int flags)'),
    pidfd_open: f('int pidfd_open(int pid, unsigned int flags)'),
    write: f('intptr_t write(int fd, const void *buf, size_t len)'),
    read: f('intptr_t read(int fd, void *buf, size_t len)'),
    flock: f('int flock(int fd, int op)'),
    tcgetpgrp: f('int tcgetpgrp(int fd)'),
    getpgrp: f('int getpgrp(void)'),
    msghdr: {
      size: koffi.sizeof(msghdr), name: off(msghdr, 'name'), namelen: off(msghdr, 'namelen'),
      iov: off(msghdr, 'iov'), iovlen: off(msghdr, 'iovlen'), control: off(msghdr, 'control'),
      controllen: off(msghdr, 'controllen'), flags: off(msghdr, 'flags'),
    },
    iovec: { size: koffi.sizeof(iovec), base: off(iovec, 'base'), len: off(iovec, 'len') },
    cmsghdr: { size: koffi.sizeof(cmsghdr), len: off(cmsghdr, 'len'), level: off(cmsghdr, 'level'), type: off(cmsghdr, 'type') },
  };
  return table;
}

/** Runs a call that returns -1 and sets errno on failure; retries EINTR. */
function check(op: string, call: () => number): number {
  for (;;) {
    const r = call();
    if (r >= 0) return r;
    const e = koffi.errno();
    if (e === 4 /* EINTR */) continue;
    throw new SysError(op, e);
  }
}

// ---------------------------------------------------------------- msghdr blocks

const align8 = (n: number) => (n + 7) & ~7;

/**
 * One native block holding a msghdr, its single iovec, a control buffer and
 * the data buffer, with the pointers between them filled once. Sending or
 * receiving only rewrites lengths.
 */
class MsgBlock {
  readonly base: bigint;
  readonly mem: Buffer;
  readonly dataOff: number;
  readonly ctlOff: number;
  readonly ctlSize: number;
  private readonly iovOff: number;

  constructor(maxFds: number) {
    const t = lib();
    this.iovOff = align8(t.msghdr.size);
    this.ctlOff = this.iovOff + align8(t.iovec.size);
    this.ctlSize = cmsgSpace(4 * maxFds);
    this.dataOff = this.ctlOff + this.ctlSize;
    const total = this.dataOff + DATA_MAX;
    this.base = koffi.alloc('uint8_t', total) as bigint; // lives as long as the process
    this.mem = Buffer.from(koffi.view(this.base, total));
    this.mem.fill(0);
    this.mem.writeBigUInt64LE(this.base + BigInt(this.iovOff), t.msghdr.iov);
    this.mem.writeBigUInt64LE(1n, t.msghdr.iovlen);
    this.mem.writeBigUInt64LE(this.base + BigInt(this.dataOff), this.iovOff + t.iovec.base);
  }

  prepare(dataLen: number, ctlLen: number): void {
    const t = lib();
    this.mem.writeBigUInt64LE(BigInt(dataLen), this.iovOff + t.iovec.len);
    this.mem.writeBigUInt64LE(ctlLen > 0 ? this.base + BigInt(this.ctlOff) : 0n, t.msghdr.control);
    this.mem.writeBigUInt64LE(BigInt(ctlLen), t.msghdr.controllen);
    this.mem.writeInt32LE(0, t.msghdr.flags);
  }
}

function cmsgLen(n: number): number {
  return align8(lib().cmsghdr.size) + n;
}
function cmsgSpace(n: number): number {
  return align8(lib().cmsghdr.size) + align8(n);
}

let sendBlock: MsgBlock | null = null;
let recvBlock: MsgBlock | null = null;

/**
 * Sends one message with up to SEND_MAX_FDS descriptors (SCM_RIGHTS), never
 * blocking and never raising SIGPIPE. Returns false when the socket buffer is
 * full (EAGAIN); throws SysError otherwise.
 */
export function sendWithFds(fd: number, data: Uint8Array, fds: readonly number[] = []): boolean {
  if (data.length > DATA_MAX) throw new RangeError(`sendmsg: message of ${data.length} bytes exceeds ${DATA_MAX}`);
  if (fds.length > SEND_MAX_FDS) throw new RangeError(`sendmsg: ${fds.length} fds exceeds ${SEND_MAX_FDS}`);
  const t = lib();
  const b = (sendBlock ??= new MsgBlock(SEND_MAX_FDS));
  b.mem.set(data, b.dataOff);
  let ctl = 0;
  if (fds.length > 0) {
    ctl = cmsgSpace(4 * fds.length);
    b.mem.fill(0, b.ctlOff, b.ctlOff + ctl);
    b.mem.writeBigUInt64LE(BigInt(cmsgLen(4 * fds.length)), b.ctlOff + t.cmsghdr.len);
    b.mem.writeInt32LE(SOL_SOCKET, b.ctlOff + t.cmsghdr.level);
    b.mem.writeInt32LE(SCM_RIGHTS, b.ctlOff + t.cmsghdr.type);
    const at = b.ctlOff + align8(t.cmsghdr.size);
    fds.forEach((x, i) => b.mem.writeInt32LE(x, at + 4 * i));
  }
  b.prepare(data.length, ctl);
  for (;;) {
    const r = t.sendmsg(fd, b.base, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0) {
      if (r !== data.length) throw new SysError('sendmsg (short write)', 5 /* EIO */);
      return true;
    }
    const e = koffi.errno();
    if (e === 4) continue;
    if (e === 11) return false;
    throw new SysError('sendmsg', e);
  }
}

export interface Received {
  /** a copy of the message bytes */
  readonly data: Buffer;
  /** descriptors received (close-on-exec); the caller owns them */
  readonly fds: number[];
  /** MSG_TRUNC: the message was longer than the buffer */
  readonly truncated: boolean;
  /** MSG_CTRUNC: some descriptors did not fit and were dropped by the kernel */
  readonly ctruncated: boolean;
}

/**
 * Receives one message without blocking, with MSG_CMSG_CLOEXEC. Returns null
 * when nothing is queued (EAGAIN), a Received with empty data at end of stream.
 */
export function recvWithFds(fd: number, maxData = 256): Received | null {
  const t = lib();
  const b = (recvBlock ??= new MsgBlock(RECV_MAX_FDS));
  const len = Math.min(maxData, DATA_MAX);
  b.prepare(len, b.ctlSize);
  let r: number;
  for (;;) {
    r = t.recvmsg(fd, b.base, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r >= 0) break;
    const e = koffi.errno();
    if (e === 4) continue;
    if (e === 11) return null;
    throw new SysError('recvmsg', e);
  }
  return received(b.mem, 0, b.ctlOff, b.dataOff, r, len);
}

/** Decodes one received msghdr at `hdr` in mem (its control at ctlOff, its data at dataOff). */
function received(mem: Buffer, hdr: number, ctlOff: number, dataOff: number, r: number, len: number): Received {
  const t = lib();
  const flags = mem.readInt32LE(hdr + t.msghdr.flags);
  const ctlLen = Number(mem.readBigUInt64LE(hdr + t.msghdr.controllen));
  const fds: number[] = [];
  const h = align8(t.cmsghdr.size);
  for (let at = 0; at + h <= ctlLen;) {
    const p = ctlOff + at;
    const clen = Number(mem.readBigUInt64LE(p + t.cmsghdr.len));
    if (clen < h || at + clen > ctlLen) break;
    if (mem.readInt32LE(p + t.cmsghdr.level) === SOL_SOCKET && mem.readInt32LE(p + t.cmsghdr.type) === SCM_RIGHTS) {
      for (let i = 0; i + 4 <= clen - h; i += 4) fds.push(mem.readInt32LE(p + h + i));
    }
    at += align8(clen);
  }
  return {
    data: Buffer.from(mem.subarray(dataOff, dataOff + Math.min(r, len))),
    fds,
    truncated: (flags & MSG_TRUNC) !== 0,
    ctruncated: (flags & MSG_CTRUNC) !== 0,
  };
}

/**
 * A native block of BATCH mmsghdrs, each with its iovec, control and data
 * buffers, for recvmmsg: one system call takes every queued message (up to
 * BATCH), and a short count tells the queue is empty without the extra call
 * that ends in EAGAIN.
 */
class MmsgBlock {
  readonly base: bigint;
  readonly mem: Buffer;
  readonly stride: number;
  private readonly ctlSize: number;
  private readonly ctl0: number;
  private readonly data0: number;
  private readonly ctlLenBig: bigint;
  /** entries the last call filled: the ones whose controllen and flags need resetting */
  dirty = 0;

  constructor(readonly count: number, readonly dataMax: number) {
    const t = lib();
    // struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; }, 8-aligned
    this.stride = align8(t.msghdr.size + 4);
    const iov0 = this.stride * count;
    this.ctlSize = cmsgSpace(4 * RECV_MAX_FDS);
    this.ctlLenBig = BigInt(this.ctlSize);
    this.ctl0 = iov0 + align8(t.iovec.size) * count;
    this.data0 = this.ctl0 + this.ctlSize * count;
    const total = this.data0 + align8(dataMax) * count;
    this.base = koffi.alloc('uint8_t', total) as bigint; // lives as long as the process
    this.mem = Buffer.from(koffi.view(this.base, total));
    this.mem.fill(0);
    for (let i = 0; i < count; i++) {
      const h = this.stride * i;
      const iov = iov0 + align8(t.iovec.size) * i;
      this.mem.writeBigUInt64LE(this.base + BigInt(iov), h + t.msghdr.iov);
      this.mem.writeBigUInt64LE(1n, h + t.msghdr.iovlen);
      this.mem.writeBigUInt64LE(this.base + BigInt(this.ctlOff(i)), h + t.msghdr.control);
      this.mem.writeBigUInt64LE(this.base + BigInt(this.dataOff(i)), iov + t.iovec.base);
      this.mem.writeBigUInt64LE(BigInt(dataMax), iov + t.iovec.len);
    }
    this.dirty = count;
    this.reset();
  }

  ctlOff(i: number): number {
    return this.ctl0 + this.ctlSize * i;
  }

  dataOff(i: number): number {
    return this.data0 + align8(this.dataMax) * i;
  }

  /** Resets what the kernel rewrote in the entries it filled: control length and flags. */
  reset(): void {
    const t = lib();
    for (let i = 0; i < this.dirty; i++) {
      const h = this.stride * i;
      this.mem.writeBigUInt64LE(this.ctlLenBig, h + t.msghdr.controllen);
      this.mem.writeInt32LE(0, h + t.msghdr.flags);
    }
    this.dirty = 0;
  }
}

/** Messages one recvMany call takes at most. */
export const RECV_BATCH = 32;
let mmsgBlock: MmsgBlock | null = null;

/**
 * Receives every queued message, up to RECV_BATCH, in one recvmmsg call
 * (MSG_DONTWAIT, MSG_CMSG_CLOEXEC). Messages are decoded as recvWithFds does;
 * a message with empty data and no fds is the end of the stream. `drained` is
 * true when the call took fewer than it could: nothing else was queued then.
 */
export function recvMany(fd: number, maxData = 256): { msgs: Received[]; drained: boolean } {
  const t = lib();
  const len = Math.min(maxData, DATA_MAX);
  if (!mmsgBlock || mmsgBlock.dataMax !== len) mmsgBlock = new MmsgBlock(RECV_BATCH, len);
  const b = mmsgBlock;
  b.reset();
  let n: number;
  for (;;) {
    n = t.recvmmsg(fd, b.base, b.count, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, null);
    if (n >= 0) break;
    const e = koffi.errno();
    if (e === 4) continue;
    if (e === 11) return { msgs: [], drained: true };
    throw new SysError('recvmmsg', e);
  }
  b.dirty = n;
  const msgs: Received[] = [];
  for (let i = 0; i < n; i++) {
    const h = b.stride * i;
    const r = b.mem.readUInt32LE(h + t.msghdr.size);
    msgs.push(received(b.mem, h, b.ctlOff(i), b.dataOff(i), r, len));
  }
  return { msgs, drained: n < b.count };
}

// ---------------------------------------------------------------- sockets

export function socket(domain: number, type: number, protocol = 0): number {
  return check('socket', () => lib().socket(domain, type, protocol));
}

export function close(fd: number): void {
  // Never retried: on Linux the fd is gone even when close reports EINTR.
  if (lib().close(fd) < 0) {
    const e = koffi.errno();
    if (e !== 4) throw new SysError('close', e);
  }
}

/** Closes and ignores errors: for cleanup paths that must not throw. */
export function closeQuietly(fd: number): void {
  try {
    close(fd);
  } catch {
    /* cleanup */
  }
}

const UNIX_PATH_MAX = 108;

export function sockaddrUn(path: string): Buffer {
  const p = Buffer.from(path);
  if (p.length >= UNIX_PATH_MAX) throw new SysError(`sockaddr_un ${path}`, 36 /* ENAMETOOLONG */);
  const b = Buffer.alloc(2 + p.length + 1);
  b.writeUInt16LE(AF_UNIX, 0);
  p.copy(b, 2);
  return b;
}

export function sockaddrIn(address: string, port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((x) => !(x >= 0 && x <= 255))) throw new RangeError(`not an IPv4 address: ${address}`);
  Buffer.from(parts).copy(b, 4);
  return b;
}

export function bind(fd: number, addr: Buffer, what = 'bind'): void {
  check(what, () => lib().bind(fd, addr, addr.length));
}

export function listen(fd: number, backlog: number): void {
  check('listen', () => lib().listen(fd, backlog));
}

/** Accepts one connection, or returns null when none is pending. */
export function accept4(fd: number, flags: number): number | null {
  for (;;) {
    const r = lib().accept4(fd, null, null, flags);
    if (r >= 0) return r;
    const e = koffi.errno();
    if (e === 4 || e === 103 /* ECONNABORTED */) continue;
    if (e === 11) return null;
    throw new SysError('accept4', e);
  }
}

export function connect(fd: number, addr: Buffer, what = 'connect'): void {
  check(what, () => lib().connect(fd, addr, addr.length));
}

// getsockopt, getsockname and getpeername run once or more per reported
// connection: they reuse these buffers instead of allocating two per call.
const optVal = Buffer.alloc(16);
const optLen = Buffer.alloc(4);
const nameBuf = Buffer.alloc(128);

/** getsockopt into optVal; returns the length the kernel gave. */
function sockoptRaw(fd: number, level: number, name: number, size: number, op: string): number {
  const t = lib();
  optLen.writeUInt32LE(size, 0);
  check(op, () => t.getsockopt(fd, level, name, optVal, optLen));
  return Math.min(size, optLen.readUInt32LE(0));
}

function sockopt(fd: number, level: number, name: number, size: number, op: string): Buffer {
  const n = sockoptRaw(fd, level, name, size, op);
  return Buffer.from(optVal.subarray(0, n));
}

export function getsockoptInt(fd: number, level: number, name: number, op = 'getsockopt'): number {
  sockoptRaw(fd, level, name, 4, op);
  return optVal.readInt32LE(0);
}

/**
 * The cookie of the socket's network namespace (SO_NETNS_COOKIE, Linux 5.14):
 * one call, no fd, no privilege. null when the kernel does not know the option.
 */
export function netnsCookie(fd: number): number | null {
  const t = lib();
  optLen.writeUInt32LE(8, 0);
  for (;;) {
    if (t.getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, optVal, optLen) === 0) break;
    const e = koffi.errno();
    if (e === 4) continue;
    if (e === 92 /* ENOPROTOOPT */) return null;
    throw new SysError('getsockopt(SO_NETNS_COOKIE)', e);
  }
  // a counter of namespaces made since boot: far below 2^53
  return Number(optVal.readBigUInt64LE(0));
}

export interface PeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export function peerCred(fd: number): PeerCred {
  const b = sockopt(fd, SOL_SOCKET, SO_PEERCRED, 12, 'getsockopt(SO_PEERCRED)');
  return { pid: b.readInt32LE(0), uid: b.readUInt32LE(4), gid: b.readUInt32LE(8) };
}

export interface InetAddress {
  readonly family: 'inet' | 'inet6';
  readonly address: string;
  readonly port: number;
}

function ipv6ToString(b: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // RFC 5952: compress the longest run (>= 2) of zero groups, leftmost on ties.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Decodes a sockaddr_in or sockaddr_in6; null for any other family. */
export function decodeSockaddr(b: Buffer): InetAddress | null {
  if (b.length < 2) return null;
  const family = b.readUInt16LE(0);
  if (family === AF_INET && b.length >= 8) {
    return { family: 'inet', address: [...b.subarray(4, 8)].join('.'), port: b.readUInt16BE(2) };
  }
  if (family === AF_INET6 && b.length >= 24) {
    return { family: 'inet6', address: ipv6ToString(b.subarray(8, 24)), port: b.readUInt16BE(2) };
  }
  return null;
}

function sockName(fd: number, peer: boolean): InetAddress | null {
  optLen.writeUInt32LE(nameBuf.length, 0);
  const t = lib();
  check(peer ? 'getpeername' : 'getsockname', () => (peer ? t.getpeername(fd, nameBuf, optLen) : t.getsockname(fd, nameBuf, optLen)));
  return decodeSockaddr(nameBuf.subarray(0, Math.min(nameBuf.length, optLen.readUInt32LE(0))));
}

/** The socket's local address, or null when it is not AF_INET/AF_INET6. */
export function getsockname(fd: number): InetAddress | null {
  return sockName(fd, false);
}

/** The socket's peer address (throws ENOTCONN when unconnected). */
export function getpeername(fd: number): InetAddress | null {
  return sockName(fd, true);
}

/** A new fd for the network namespace of a socket (SIOCGSKNS). */
export function socketNetnsFd(fd: number): number {
  return check('ioctl(SIOCGSKNS)', () => lib().ioctl(fd, SIOCGSKNS, 'long', 0));
}

// ---------------------------------------------------------------- memory

export function memfdCreate(name: string, flags: number): number {
  return check(`memfd_create(${name})`, () => lib().memfd_create(name, flags));
}

export function ftruncate(fd: number, size: number): void {
  check('ftruncate', () => lib().ftruncate(fd, size));
}

export function addSeals(fd: number, seals: number): void {
  check('fcntl(F_ADD_SEALS)', () => lib().fcntl(fd, F_ADD_SEALS, 'int', seals));
}

export function getSeals(fd: number): number {
  return check('fcntl(F_GET_SEALS)', () => lib().fcntl(fd, F_GET_SEALS, 'int', 0));
}

/** True when fd is an open descriptor of this process. */
export function fdIsOpen(fd: number): boolean {
  if (!Number.isInteger(fd) || fd < 0) return false;
  return lib().fcntl(fd, F_GETFD, 'int', 0) >= 0;
}

/** A close-on-exec duplicate of fd. */
export function dupCloexec(fd: number): number {
  return check('fcntl(F_DUPFD_CLOEXEC)', () => lib().fcntl(fd, F_DUPFD_CLOEXEC, 'int', 3));
}

/** Maps size bytes of fd shared read-write; returns the address. */
export function mmapShared(fd: number, size: number): bigint {
  const t = lib();
  const p = t.mmap(null, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p === MAP_FAILED || p === -1n) throw new SysError('mmap', koffi.errno());
  return p;
}

export function munmap(addr: bigint, size: number): void {
  check('munmap', () => lib().munmap(addr, size));
}

/** An ArrayBuffer over native memory. Touching it after munmap is a SIGSEGV: guard its owner. */
export function view(addr: bigint, size: number): ArrayBuffer {
  return koffi.view(addr, size);
}

// ---------------------------------------------------------------- eventfd, locks

export function eventfd(): number {
  return check('eventfd', () => lib().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
}

/** A pidfd of process `pid` (close-on-exec; readable once the process has exited). */
export function pidfdOpen(pid: number): number {
  return check('pidfd_open', () => lib().pidfd_open(pid, 0));
}

const one = Buffer.alloc(8);

/** Adds n to an eventfd counter (rings the doorbell). */
export function eventfdWrite(fd: number, n = 1n): void {
  one.writeBigUInt64LE(n, 0);
  check('write(eventfd)', () => lib().write(fd, one, 8));
}

/** Reads and resets an eventfd counter; 0n when it was 0 (non-blocking eventfd). */
export function eventfdRead(fd: number): bigint {
  const b = Buffer.alloc(8);
  const t = lib();
  for (;;) {
    const r = t.read(fd, b, 8);
    if (r === 8) return b.readBigUInt64LE(0);
    if (r >= 0) throw new SysError('read(eventfd) (short read)', 5);
    const e = koffi.errno();
    if (e === 4) continue;
    if (e === 11) return 0n;
    throw new SysError('read(eventfd)', e);
  }
}

/** Takes an exclusive flock without waiting; false when another process holds it. */
export function tryLockExclusive(fd: number): boolean {
  for (;;) {
    if (lib().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
    const e = koffi.errno();
    if (e === 4) continue;
    if (e === 11) return false;
    throw new SysError('flock', e);
  }
}

/** True when this process's group is the foreground group of the terminal on fd. */
export function inForegroundOf(fd: number): boolean {
  const t = lib();
  const fg = t.tcgetpgrp(fd);
  return fg > 0 && fg === t.getpgrp();
}
