// The controller's picture of connections: ends (one per report) grouped into
// connections (one or two ends), and the slot a matched pair was given.
import type { Arena } from '../datapath/arena.js';
import type { Endpoint } from './address.js';
import type { Session } from './session.js';

export type ConnState = 'waiting-peer' | 'assigned' | 'declined';

/** One process's report of one TCP connection. */
export interface ConnEnd {
  readonly session: Session;
  readonly connId: bigint;
  readonly origin: number;
  /** null when the reported fd was not a connected TCP socket */
  readonly local: Endpoint | null;
  readonly peer: Endpoint | null;
  /** the socket's network namespace (cookie, or inode on old kernels); null when unknown */
  readonly netns: number | null;
  /** key in the waiting table while unmatched */
  readonly key: string | null;
  conn: Connection;
  role: 0 | 1 | null;
  /** closed (CONN_CLOSED) or its process died */
  gone: boolean;
}

/** A slot given to a matched pair, with its four doorbells (rx0, tx0, rx1, tx1). */
export interface SlotLease {
  readonly arena: Arena;
  readonly index: number;
  readonly generation: number;
  readonly doorbells: readonly [number, number, number, number];
  freed: boolean;
}

export interface Connection {
  readonly id: number;
  /** the reporter while waiting; [role 0, role 1] once matched */
  ends: ConnEnd[];
  state: ConnState;
  /** why the connection is (still) on TCP */
  reason: string | null;
  lease: SlotLease | null;
}

export const doorbell = {
  rx: (role: 0 | 1) => role * 2,
  tx: (role: 0 | 1) => role * 2 + 1,
} as const;

/**
 * A CONN_REPORT received but not looked at yet: reports are verified and
 * matched once per event-loop turn, after every session has been read, so a
 * connection whose CONN_CLOSED came in the same turn costs no verification,
 * no matching and no slot. `fd` is the reported socket, -1 once closed.
 */
export interface PendingReport {
  readonly session: Session;
  readonly connId: bigint;
  readonly origin: number;
  fd: number;
}
