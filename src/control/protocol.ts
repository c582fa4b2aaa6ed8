// The session protocol (shim <-> controller), mirrored from layout.ts: one
// message per SEQPACKET packet, a pd_msg_hdr then the body, little-endian.
// Decoding is strict: magic, type, len == packet size == the type's size, and
// the number of fds the type carries. Offsets come from layout.ts only.
import {
  MSG_ASSIGN, MSG_CONN_CLOSED, MSG_CONN_REFUSED, MSG_CONN_REPORT, MSG_DECLINE, MSG_HDR, MSG_HELLO, MSG_HELLO_ACK,
  type StructDef, constant, offsetOf,
} from '../datapath/layout.js';

export const MSG_MAGIC = constant('MSG_MAGIC');
export const PROTO_VERSION = constant('PROTO_VERSION');
export const MSG_MAX = constant('MSG_MAX');

export const MsgType = {
  Hello: constant('MSG_HELLO'),
  HelloAck: constant('MSG_HELLO_ACK'),
  ConnReport: constant('MSG_CONN_REPORT'),
  Assign: constant('MSG_ASSIGN'),
  Decline: constant('MSG_DECLINE'),
  ConnClosed: constant('MSG_CONN_CLOSED'),
  ConnRefused: constant('MSG_CONN_REFUSED'),
} as const;

export const Origin = { Connect: constant('ORIGIN_CONNECT'), Accept: constant('ORIGIN_ACCEPT') } as const;

export const Decline = {
  NotTcp: constant('DECLINE_NOT_TCP'),
  Duplicate: constant('DECLINE_DUPLICATE'),
  NoMemory: constant('DECLINE_NO_MEMORY'),
  Quota: constant('DECLINE_QUOTA'),
  BadMsg: constant('DECLINE_BAD_MSG'),
} as const;

export const Refuse = {
  NoFile: constant('REFUSE_NOFILE'),
  Invalid: constant('REFUSE_INVALID'),
  Forked: constant('REFUSE_FORKED'),
} as const;

export const refuseText: Readonly<Record<number, string>> = {
  [Refuse.NoFile]: 'the process is near its RLIMIT_NOFILE (PD_FD_RESERVE)',
  [Refuse.Invalid]: 'the shim found the assignment invalid',
  [Refuse.Forked]: 'the process forked before the connection attached (both processes keep it on TCP)',
};

export const declineText: Readonly<Record<number, string>> = {
  [Decline.NotTcp]: 'the reported fd is not a connected TCP socket',
  [Decline.Duplicate]: 'a connection with these addresses is already reported',
  [Decline.NoMemory]: 'no arena memory could be allocated',
  [Decline.Quota]: 'arena quota reached (PD_ARENA_QUOTA_MB)',
  [Decline.BadMsg]: 'the report was malformed',
};

export interface HelloMsg { readonly type: 'hello'; readonly protoVersion: number; readonly pid: number; readonly flags: number }
export interface HelloAckMsg { readonly type: 'hello-ack'; readonly protoVersion: number; readonly sessionId: number }
export interface ConnReportMsg { readonly type: 'conn-report'; readonly connId: bigint; readonly origin: number }
export interface AssignMsg {
  readonly type: 'assign';
  readonly connId: bigint;
  readonly arenaId: bigint;
  readonly arenaSize: bigint;
  readonly slotIndex: number;
  readonly role: 0 | 1;
  readonly generation: number;
  readonly ringSize: number;
}
export interface DeclineMsg { readonly type: 'decline'; readonly connId: bigint; readonly reason: number }
export interface ConnClosedMsg { readonly type: 'conn-closed'; readonly connId: bigint }
export interface ConnRefusedMsg {
  readonly type: 'conn-refused';
  readonly connId: bigint;
  readonly reason: number;
  readonly fd: number;
  readonly limit: number;
}

export type ShimMessage = HelloMsg | ConnReportMsg | ConnClosedMsg | ConnRefusedMsg;
export type ControllerMessage = HelloAckMsg | AssignMsg | DeclineMsg;
export type Message = ShimMessage | ControllerMessage;
export type MessageKind = Message['type'];

interface Kind {
  readonly code: number;
  readonly struct: StructDef;
  readonly fds: number;
  readonly from: 'shim' | 'controller';
}

export const KINDS: Readonly<Record<MessageKind, Kind>> = {
  hello: { code: MsgType.Hello, struct: MSG_HELLO, fds: 0, from: 'shim' },
  'hello-ack': { code: MsgType.HelloAck, struct: MSG_HELLO_ACK, fds: 1, from: 'controller' },
  'conn-report': { code: MsgType.ConnReport, struct: MSG_CONN_REPORT, fds: 1, from: 'shim' },
  assign: { code: MsgType.Assign, struct: MSG_ASSIGN, fds: constant('ASSIGN_NFDS'), from: 'controller' },
  decline: { code: MsgType.Decline, struct: MSG_DECLINE, fds: 0, from: 'controller' },
  'conn-closed': { code: MsgType.ConnClosed, struct: MSG_CONN_CLOSED, fds: 0, from: 'shim' },
  'conn-refused': { code: MsgType.ConnRefused, struct: MSG_CONN_REFUSED, fds: 0, from: 'shim' },
};

const kindByCode = new Map<number, MessageKind>(
  (Object.keys(KINDS) as MessageKind[]).map((k) => [KINDS[k].code, k]),
);

const HDR_MAGIC_TYPE = offsetOf(MSG_HDR, 'magic_type');
const HDR_LEN = offsetOf(MSG_HDR, 'len');

function writer(kind: MessageKind): { buf: Buffer; u32: (f: string, v: number) => void; u64: (f: string, v: bigint) => void } {
  const s = KINDS[kind].struct;
  const buf = Buffer.alloc(s.size);
  buf.writeUInt32LE((MSG_MAGIC | (KINDS[kind].code << 16)) >>> 0, HDR_MAGIC_TYPE);
  buf.writeUInt32LE(s.size, HDR_LEN);
  return {
    buf,
    u32: (f, v) => buf.writeUInt32LE(v >>> 0, offsetOf(s, f)),
    u64: (f, v) => buf.writeBigUInt64LE(BigInt.asUintN(64, v), offsetOf(s, f)),
  };
}

/** Encodes a message (any direction: the tests act as a shim). */
export function encode(msg: Message): Buffer {
  const w = writer(msg.type);
  switch (msg.type) {
    case 'hello':
      w.u32('proto_version', msg.protoVersion);
      w.u32('pid', msg.pid);
      w.u32('flags', msg.flags);
      break;
    case 'hello-ack':
      w.u32('proto_version', msg.protoVersion);
      w.u32('session_id', msg.sessionId);
      break;
    case 'conn-report':
      w.u64('conn_id', msg.connId);
      w.u32('origin', msg.origin);
      break;
    case 'assign':
      w.u64('conn_id', msg.connId);
      w.u64('arena_id', msg.arenaId);
      w.u64('arena_size', msg.arenaSize);
      w.u32('slot_index', msg.slotIndex);
      w.u32('role', msg.role);
      w.u32('generation', msg.generation);
      w.u32('ring_size', msg.ringSize);
      break;
    case 'decline':
      w.u64('conn_id', msg.connId);
      w.u32('reason', msg.reason);
      break;
    case 'conn-closed':
      w.u64('conn_id', msg.connId);
      break;
    case 'conn-refused':
      w.u64('conn_id', msg.connId);
      w.u32('reason', msg.reason);
      w.u32('fd', msg.fd);
      w.u32('limit', msg.limit);
      break;
  }
  return w.buf;
}

export type DecodeResult =
  | { readonly ok: true; readonly msg: Message }
  | { readonly ok: false; readonly error: string };

/**
 * Decodes one packet strictly. `nfds` is the number of descriptors that came
 * with it; a mismatch with the type is an error like any other.
 */
export function decode(packet: Buffer, nfds: number): DecodeResult {
  const fail = (error: string): DecodeResult => ({ ok: false, error });
  if (packet.length < MSG_HDR.size) return fail(`short packet (${packet.length} bytes)`);
  const mt = packet.readUInt32LE(HDR_MAGIC_TYPE);
  if ((mt & 0xffff) !== MSG_MAGIC) return fail(`bad magic 0x${(mt & 0xffff).toString(16)}`);
  const kind = kindByCode.get(mt >>> 16);
  if (!kind) return fail(`unknown message type ${mt >>> 16}`);
  const k = KINDS[kind];
  const len = packet.readUInt32LE(HDR_LEN);
  if (len !== packet.length) return fail(`${kind}: len ${len} but the packet has ${packet.length} bytes`);
  if (len !== k.struct.size) return fail(`${kind}: ${len} bytes, expected ${k.struct.size}`);
  if (nfds !== k.fds) return fail(`${kind}: ${nfds} fds attached, expected ${k.fds}`);
  const u32 = (f: string) => packet.readUInt32LE(offsetOf(k.struct, f));
  const u64 = (f: string) => packet.readBigUInt64LE(offsetOf(k.struct, f));
  switch (kind) {
    case 'hello':
      return { ok: true, msg: { type: kind, protoVersion: u32('proto_version'), pid: u32('pid'), flags: u32('flags') } };
    case 'hello-ack':
      return { ok: true, msg: { type: kind, protoVersion: u32('proto_version'), sessionId: u32('session_id') } };
    case 'conn-report':
      return { ok: true, msg: { type: kind, connId: u64('conn_id'), origin: u32('origin') } };
    case 'assign': {
      const role = u32('role');
      if (role !== 0 && role !== 1) return fail(`assign: role ${role}`);
      return {
        ok: true,
        msg: {
          type: kind, connId: u64('conn_id'), arenaId: u64('arena_id'), arenaSize: u64('arena_size'),
          slotIndex: u32('slot_index'), role, generation: u32('generation'), ringSize: u32('ring_size'),
        },
      };
    }
    case 'decline':
      return { ok: true, msg: { type: kind, connId: u64('conn_id'), reason: u32('reason') } };
    case 'conn-closed':
      return { ok: true, msg: { type: kind, connId: u64('conn_id') } };
    case 'conn-refused':
      return { ok: true, msg: { type: kind, connId: u64('conn_id'), reason: u32('reason'), fd: u32('fd'), limit: u32('limit') } };
  }
}
