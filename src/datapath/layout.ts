// The shared-memory and wire layout of pipedevice: the one source of truth.
// `gen-header.ts` turns this file into preload/pd_layout.h; test/layout.test.ts
// compiles a C program against that header and checks every offset and size
// against the tables below. Change the layout here, bump LAYOUT_VERSION or
// PROTO_VERSION, run `npm run gen`, and commit both files.

export type FieldType = 'u32' | 'u64';

export interface Field {
  readonly name: string;
  readonly type: FieldType;
  readonly offset: number;
  readonly doc: string;
}

export interface StructDef {
  readonly name: string; // C name without the `struct pd_` prefix
  readonly size: number; // sizeof, padding included
  readonly doc: string;
  readonly fields: readonly Field[];
}

export interface ConstDef {
  readonly name: string; // C name without the PD_ prefix
  readonly value: number;
  readonly doc: string;
}

export const LAYOUT_VERSION = 1;
export const PROTO_VERSION = 3;

export const CONSTANTS: readonly ConstDef[] = [
  { name: 'LAYOUT_VERSION', value: LAYOUT_VERSION, doc: 'version of the arena layout' },
  { name: 'PROTO_VERSION', value: PROTO_VERSION, doc: 'version of the session protocol' },
  { name: 'ARENA_MAGIC', value: 0x50444152, doc: "'PDAR' at offset 0 of an arena" },
  { name: 'SLOT_MAGIC', value: 0x50445354, doc: "'PDST' at offset 0 of a live slot" },
  { name: 'SESSION_MAGIC', value: 0x50445353, doc: "'PDSS' at offset 0 of a session page" },
  { name: 'MSG_MAGIC', value: 0x5044, doc: 'first u16 of every session message' },
  { name: 'CACHE_LINE', value: 64, doc: 'false-sharing unit' },
  { name: 'ARENA_HDR_SIZE', value: 4096, doc: 'bytes reserved for the arena header' },
  { name: 'SLOT_CTRL_SIZE', value: 4096, doc: 'bytes reserved for a slot control block; rings follow it' },
  { name: 'SESSION_PAGE_SIZE', value: 4096, doc: 'size of the per-session shared page' },
  { name: 'RING_MIN', value: 4096, doc: 'smallest ring (bytes, power of two)' },
  { name: 'RING_MAX', value: 16 * 1024 * 1024, doc: 'largest ring (bytes, power of two)' },
  { name: 'MSG_MAX', value: 256, doc: 'largest session message in bytes' },
  // message types
  { name: 'MSG_HELLO', value: 1, doc: 'shim -> controller: first message of a session' },
  { name: 'MSG_HELLO_ACK', value: 2, doc: 'controller -> shim: session accepted; fd: session page memfd' },
  { name: 'MSG_CONN_REPORT', value: 3, doc: 'shim -> controller: an established TCP connection; fd: the socket' },
  { name: 'MSG_ASSIGN', value: 4, doc: 'controller -> shim: ring slot for a connection; fds: arena, 4 doorbells, peer pidfd' },
  { name: 'MSG_DECLINE', value: 5, doc: 'controller -> shim: the connection stays on TCP' },
  { name: 'MSG_CONN_CLOSED', value: 6, doc: 'shim -> controller: the process dropped its last reference' },
  { name: 'MSG_CONN_REFUSED', value: 7, doc: 'shim -> controller: this end did not take its ASSIGN; the connection stays on TCP' },
  // connection origins
  { name: 'ORIGIN_CONNECT', value: 1, doc: 'the reporting end called connect()' },
  { name: 'ORIGIN_ACCEPT', value: 2, doc: 'the reporting end accepted the connection' },
  // decline reasons (also shown by `pd status`)
  { name: 'DECLINE_NOT_TCP', value: 1, doc: 'the passed fd is not a connected TCP socket' },
  { name: 'DECLINE_DUPLICATE', value: 2, doc: 'a connection with these addresses is already reported' },
  { name: 'DECLINE_NO_MEMORY', value: 3, doc: 'no arena memory could be allocated' },
  { name: 'DECLINE_QUOTA', value: 4, doc: 'the per-process arena quota is reached' },
  { name: 'DECLINE_BAD_MSG', value: 5, doc: 'the report was malformed' },
  // why a shim refused an ASSIGN (MSG_CONN_REFUSED, also shown by `pd status`)
  { name: 'REFUSE_NOFILE', value: 1, doc: 'the process is within PD_FD_RESERVE descriptors of its RLIMIT_NOFILE' },
  { name: 'REFUSE_INVALID', value: 2, doc: 'the assignment failed the shim\'s checks (arena, slot or geometry)' },
  { name: 'REFUSE_FORKED', value: 3, doc: 'the process forked before the connection attached: both processes keep it on TCP' },
  // ASSIGN fd order
  { name: 'ASSIGN_FD_ARENA', value: 0, doc: 'ASSIGN fd index: arena memfd' },
  { name: 'ASSIGN_FD_RX_SELF', value: 1, doc: 'ASSIGN fd index: doorbell this end sleeps on for data' },
  { name: 'ASSIGN_FD_TX_SELF', value: 2, doc: 'ASSIGN fd index: doorbell this end sleeps on for space' },
  { name: 'ASSIGN_FD_RX_PEER', value: 3, doc: 'ASSIGN fd index: the peer data doorbell (ring it after writing)' },
  { name: 'ASSIGN_FD_TX_PEER', value: 4, doc: 'ASSIGN fd index: the peer space doorbell (ring it after reading)' },
  { name: 'ASSIGN_FD_PEER_PROC', value: 5, doc: 'ASSIGN fd index: a pidfd of the peer process (readable once it has exited)' },
  { name: 'ASSIGN_NFDS', value: 6, doc: 'number of fds attached to ASSIGN' },
];

function fields(list: ReadonlyArray<[string, FieldType, number, string]>): Field[] {
  return list.map(([name, type, offset, doc]) => ({ name, type, offset, doc }));
}

// Arena header at offset 0 of every arena memfd. Written by the controller
// before the memfd is sealed and handed out; read-only for the shims (which
// still validate it: the memory is shared).
export const ARENA_HDR: StructDef = {
  name: 'arena_hdr',
  size: 64,
  doc: 'arena header (offset 0 of the arena)',
  fields: fields([
    ['magic', 'u32', 0, 'PD_ARENA_MAGIC'],
    ['version', 'u32', 4, 'PD_LAYOUT_VERSION'],
    ['arena_size', 'u64', 8, 'bytes in the arena (multiple of 2 MiB)'],
    ['arena_id', 'u64', 16, 'controller-wide arena id'],
    ['slot_count', 'u32', 24, 'number of slots'],
    ['slot_size', 'u32', 28, 'PD_SLOT_CTRL_SIZE + 2 * ring_size'],
    ['ring_size', 'u32', 32, 'bytes per ring, power of two'],
    ['slots_offset', 'u32', 36, 'offset of slot 0 (PD_ARENA_HDR_SIZE)'],
  ]),
};

// One direction of a slot. Direction d carries bytes written by role d and
// read by role 1-d. Producer, consumer and wake fields sit on separate lines.
export const DIR_CTRL: StructDef = {
  name: 'dir_ctrl',
  size: 256,
  doc: 'one direction of a connection slot',
  fields: fields([
    // producer line (written by the sender only)
    ['head', 'u64', 0, 'free-running count of bytes written to the ring'],
    ['tx_tcp_bytes', 'u64', 8, 'bytes the sender sent by TCP before switching'],
    ['switched', 'u32', 16, '1 once the sender writes only to the ring (release after tx_tcp_bytes)'],
    ['wr_closed', 'u32', 20, '1 once the sender will write no more (its last reference closed)'],
    ['tx_owner', 'u32', 24, 'writer lock between the processes sharing the sending end after fork() (0 = free)'],
    // consumer line (written by the receiver only)
    ['tail', 'u64', 64, 'free-running count of bytes consumed from the ring'],
    ['rd_closed', 'u32', 72, '1 once the receiver will read no more (its last reference closed)'],
    ['rx_owner', 'u32', 76, 'reader lock between the processes sharing the receiving end after fork() (0 = free)'],
    ['rx_tcp_bytes', 'u64', 80, 'bytes the receiver has read by TCP (published at attach, added to by every TCP read after it, by all processes sharing the end)'],
    // wake line (counted up and down by the waiters, read by the waker)
    ['reader_armed', 'u32', 128, 'threads of the receiver asleep (or about to sleep) waiting for data'],
    ['writer_armed', 'u32', 132, 'threads of the sender asleep (or about to sleep) waiting for space'],
  ]),
};

// Control block at the start of every slot (PD_SLOT_CTRL_SIZE bytes).
export const SLOT_CTRL: StructDef = {
  name: 'slot_ctrl',
  size: 576,
  doc: 'connection slot control block; ring 0 follows at PD_SLOT_CTRL_SIZE, ring 1 after it',
  fields: fields([
    ['magic', 'u32', 0, 'PD_SLOT_MAGIC while assigned'],
    ['generation', 'u32', 4, 'bumped by the controller on every assignment'],
    ['attached0', 'u32', 8, 'role 0 has mapped the slot and will honour the handover'],
    ['attached1', 'u32', 12, 'role 1 has mapped the slot'],
    ['dead0', 'u32', 16, 'set by the controller when the process of role 0 died'],
    ['dead1', 'u32', 20, 'set by the controller when the process of role 1 died'],
    ['reset', 'u32', 24, 'set by an end that found the slot corrupted: the connection is reset'],
    ['dir0', 'u64', 64, 'struct pd_dir_ctrl: role 0 -> role 1 (u64 placeholder, see DIR_CTRL)'],
    ['dir1', 'u64', 320, 'struct pd_dir_ctrl: role 1 -> role 0'],
  ]),
};

// Per-session page (memfd sent with HELLO_ACK). The controller increments
// `seq` after each message it sends to the session, so the shim can see
// without a syscall whether its session socket has something for it.
export const SESSION_PAGE: StructDef = {
  name: 'session_page',
  size: 64,
  doc: 'per-session shared page',
  fields: fields([
    ['magic', 'u32', 0, 'PD_SESSION_MAGIC'],
    ['version', 'u32', 4, 'PD_PROTO_VERSION'],
    ['seq', 'u64', 8, 'messages sent to this session so far'],
  ]),
};

// Session messages (SOCK_SEQPACKET, one message per packet, little-endian).
export const MSG_HDR: StructDef = {
  name: 'msg_hdr',
  size: 8,
  doc: 'header of every session message',
  fields: fields([
    ['magic_type', 'u32', 0, 'low 16 bits PD_MSG_MAGIC, high 16 bits the message type'],
    ['len', 'u32', 4, 'total message length in bytes, header included'],
  ]),
};

export const MSG_HELLO: StructDef = {
  name: 'msg_hello',
  size: 24,
  doc: 'shim -> controller, first message',
  fields: fields([
    ['hdr', 'u64', 0, 'struct pd_msg_hdr'],
    ['proto_version', 'u32', 8, 'PD_PROTO_VERSION'],
    ['pid', 'u32', 12, 'getpid() (the controller trusts SO_PEERCRED, not this)'],
    ['flags', 'u32', 16, 'reserved, 0'],
    ['reserved', 'u32', 20, 'reserved, 0'],
  ]),
};

export const MSG_HELLO_ACK: StructDef = {
  name: 'msg_hello_ack',
  size: 16,
  doc: 'controller -> shim; carries the session page memfd',
  fields: fields([
    ['hdr', 'u64', 0, 'struct pd_msg_hdr'],
    ['proto_version', 'u32', 8, 'PD_PROTO_VERSION'],
    ['session_id', 'u32', 12, 'controller-wide session id'],
  ]),
};

export const MSG_CONN_REPORT: StructDef = {
  name: 'msg_conn_report',
  size: 24,
  doc: 'shim -> controller; carries the socket itself',
  fields: fields([
    ['hdr', 'u64', 0, 'struct pd_msg_hdr'],
    ['conn_id', 'u64', 8, 'shim-chosen id, unique within the session'],
    ['origin', 'u32', 16, 'PD_ORIGIN_CONNECT or PD_ORIGIN_ACCEPT'],
    ['reserved', 'u32', 20, 'reserved, 0'],
  ]),
};

export const MSG_ASSIGN: StructDef = {
  name: 'msg_assign',
  size: 48,
  doc: 'controller -> shim; carries PD_ASSIGN_NFDS fds in PD_ASSIGN_FD_* order',
  fields: fields([
    ['hdr', 'u64', 0, 'struct pd_msg_hdr'],
    ['conn_id', 'u64', 8, 'the reported conn_id'],
    ['arena_id', 'u64', 16, 'same as the arena header'],
    ['arena_size', 'u64', 24, 'same as the arena header'],
    ['slot_index', 'u32', 32, 'slot within the arena'],
    ['role', 'u32', 36, '0 or 1: this end writes direction `role`, reads direction 1-role'],
    ['generation', 'u32', 40, 'slot generation at assignment'],
    ['ring_size', 'u32', 44, 'bytes per ring: the shim derives the slot geometry from this, never from the shared header'],
  ]),
};

export const MSG_DECLINE: StructDef = {
  name: 'msg_decline',
  size: 24,
  doc: 'controller -> shim: keep this connection on TCP',
  fields: fields([
    ['hdr', 'u64', 0, 'struct pd_msg_hdr'],
    ['conn_id', 'u64', 8, 'the reported conn_id'],
    ['reason', 'u32', 16, 'PD_DECLINE_*'],
    ['reserved', 'u32', 20, 'reserved, 0'],
  ]),
};

export const MSG_CONN_CLOSED: StructDef = {
  name: 'msg_conn_closed',
  size: 16,
  doc: 'shim -> controller: the connection is closed in this process',
  fields: fields([
    ['hdr', 'u64', 0, 'struct pd_msg_hdr'],
    ['conn_id', 'u64', 8, 'the reported conn_id'],
  ]),
};

export const MSG_CONN_REFUSED: StructDef = {
  name: 'msg_conn_refused',
  size: 32,
  doc: 'shim -> controller: this end closed the fds of its ASSIGN and keeps the connection on TCP',
  fields: fields([
    ['hdr', 'u64', 0, 'struct pd_msg_hdr'],
    ['conn_id', 'u64', 8, 'the reported conn_id'],
    ['reason', 'u32', 16, 'PD_REFUSE_*'],
    ['fd', 'u32', 20, 'REFUSE_NOFILE: the highest descriptor number the ASSIGN got, or 0 when the kernel truncated it'],
    ['limit', 'u32', 24, 'REFUSE_NOFILE: the soft RLIMIT_NOFILE at the time'],
    ['reserved', 'u32', 28, 'reserved, 0'],
  ]),
};

export const STRUCTS: readonly StructDef[] = [
  ARENA_HDR, DIR_CTRL, SLOT_CTRL, SESSION_PAGE,
  MSG_HDR, MSG_HELLO, MSG_HELLO_ACK, MSG_CONN_REPORT, MSG_ASSIGN, MSG_DECLINE, MSG_CONN_CLOSED, MSG_CONN_REFUSED,
];

// Fields that are nested structs in C rather than plain integers.
export const NESTED: Readonly<Record<string, string>> = {
  'slot_ctrl.dir0': 'dir_ctrl',
  'slot_ctrl.dir1': 'dir_ctrl',
  'msg_hello.hdr': 'msg_hdr',
  'msg_hello_ack.hdr': 'msg_hdr',
  'msg_conn_report.hdr': 'msg_hdr',
  'msg_assign.hdr': 'msg_hdr',
  'msg_decline.hdr': 'msg_hdr',
  'msg_conn_closed.hdr': 'msg_hdr',
  'msg_conn_refused.hdr': 'msg_hdr',
};

export function constant(name: string): number {
  const c = CONSTANTS.find((x) => x.name === name);
  if (!c) throw new Error(`layout: no constant ${name}`);
  return c.value;
}

export function offsetOf(s: StructDef, field: string): number {
  const f = s.fields.find((x) => x.name === field);
  if (!f) throw new Error(`layout: ${s.name} has no field ${field}`);
  return f.offset;
}

/** Bytes in a slot for a given ring size. */
export function slotSize(ringSize: number): number {
  return constant('SLOT_CTRL_SIZE') + 2 * ringSize;
}

/** Offset of direction d's ring data inside a slot. */
export function ringOffset(ringSize: number, dir: 0 | 1): number {
  return constant('SLOT_CTRL_SIZE') + dir * ringSize;
}

/** Offset of direction d's control inside a slot. */
export function dirOffset(dir: 0 | 1): number {
  return offsetOf(SLOT_CTRL, dir === 0 ? 'dir0' : 'dir1');
}
