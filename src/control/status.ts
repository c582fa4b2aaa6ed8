// The status document `pd status --json` prints, built from the controller's
// tables and the live counters in shared memory.
import { readFileSync } from 'node:fs';
import { formatEndpoint } from './address.js';
import type { ConnectionTable } from './connections.js';
import type { ArenaPool } from './pool.js';
import type { Session } from './session.js';
import type { ConnState } from './state.js';

export interface StatusEnd {
  pid: number;
  session: number;
  connId: number | string;
  role: 0 | 1 | null;
  local: string;
  peer: string;
}

export interface StatusConnection {
  id: number;
  transport: 'ring' | 'tcp';
  state: ConnState | 'upgraded';
  reason?: string;
  ends: StatusEnd[];
  ringBytes: [number, number];
  switched: [boolean, boolean];
  attached: [boolean, boolean];
  arena?: number;
  slot?: number;
}

export interface StatusDoc {
  controller: {
    pid: number;
    socket: string;
    uptimeS: number;
    hugepages: boolean;
    ringSize: number;
    /** connections that never said HELLO (pdrun keeping the controller up) */
    launchers: number;
  };
  sessions: { id: number; pid: number; comm: string; connections: number }[];
  connections: StatusConnection[];
  arenas: {
    id: number;
    sessions: [number, number];
    pids: [number, number];
    bytes: number;
    hugepage: boolean;
    slots: number;
    slotsUsed: number;
  }[];
}

export function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

export interface StatusSource {
  readonly pid: number;
  readonly socket: string;
  readonly startedAt: number;
  readonly hugepages: boolean;
  readonly ringSize: number;
  readonly sessions: readonly Session[];
  readonly launchers: number;
  readonly connections: ConnectionTable;
  readonly pool: ArenaPool;
}

export function buildStatus(src: StatusSource): StatusDoc {
  const connections: StatusConnection[] = [];
  for (const c of src.connections.all.values()) {
    const ends: StatusEnd[] = c.ends.filter((e) => !e.gone).map((e) => ({
      pid: e.session.pid,
      session: e.session.id,
      connId: e.connId <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(e.connId) : e.connId.toString(),
      role: e.role,
      local: e.local ? formatEndpoint(e.local) : '?',
      peer: e.peer ? formatEndpoint(e.peer) : '?',
    }));
    const entry: StatusConnection = {
      id: c.id, transport: 'tcp', state: c.state, ends,
      ringBytes: [0, 0], switched: [false, false], attached: [false, false],
    };
    const lease = c.lease;
    if (c.state === 'assigned' && lease && !lease.freed && lease.arena.alive) {
      const k = lease.arena.counters(lease.index);
      entry.ringBytes = k.head;
      entry.switched = k.switched;
      entry.attached = k.attached;
      entry.arena = lease.arena.id;
      entry.slot = lease.index;
      const notes: string[] = [];
      if (k.attached[0] && k.attached[1]) {
        entry.transport = 'ring';
        entry.state = 'upgraded';
      } else {
        const missing = [0, 1].filter((r) => !k.attached[r]).map((r) => `role ${r}`).join(' and ');
        notes.push(`assigned; waiting for ${missing} to attach`);
      }
      if (k.reset) notes.push('reset by an end that found the slot corrupted');
      if (k.dead[0] || k.dead[1]) notes.push(`the process of role ${k.dead[0] ? 0 : 1} died`);
      if (notes.length > 0) entry.reason = notes.join('; ');
    } else if (c.reason) {
      entry.reason = c.reason;
    }
    connections.push(entry);
  }
  return {
    controller: {
      pid: src.pid,
      socket: src.socket,
      uptimeS: Math.round((Date.now() - src.startedAt) / 100) / 10,
      hugepages: src.hugepages,
      ringSize: src.ringSize,
      launchers: src.launchers,
    },
    sessions: src.sessions.map((s) => ({ id: s.id, pid: s.pid, comm: readComm(s.pid) || s.comm, connections: s.ends.size })),
    connections,
    arenas: src.pool.arenas().map((p) => ({
      id: p.arena.id,
      sessions: [p.sessions[0].id, p.sessions[1].id],
      pids: [p.sessions[0].pid, p.sessions[1].pid],
      bytes: p.arena.size,
      hugepage: p.arena.hugepage,
      slots: p.arena.slotCount,
      slotsUsed: p.arena.slotsUsed,
    })),
  };
}
