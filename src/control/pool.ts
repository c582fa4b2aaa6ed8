// Arenas per pair of sessions (unordered; a session may pair with itself), slot
// allocation, and the per-process quota on arena memory.
import { Arena, type ArenaConfig, arenaGeometry, hugepageInfo } from '../datapath/arena.js';
import { errorMessage } from './errors.js';
import { type Session, SessionState } from './session.js';

/** How long the last, empty arena of a live pair is kept for its next connection. */
export const LINGER_MS = 2000;

export interface PooledArena {
  readonly arena: Arena;
  readonly sessions: readonly [Session, Session];
}

export type LeaseResult =
  | { readonly ok: true; readonly arena: Arena; readonly index: number; readonly generation: number }
  | { readonly ok: false; readonly why: 'quota' | 'no-memory'; readonly detail: string };

/**
 * The first arena id of this controller. Ids must be unique across controller
 * restarts, not only within one controller: a shim that outlives a controller
 * keeps the old arenas of its running connections mapped and finds an arena by
 * the id an ASSIGN names, so a restarted controller counting from 1 again made
 * it reuse an old mapping for a new arena of the same size, and put a new
 * connection on top of an old one's slot. Counting from the clock in
 * microseconds, a later controller starts above every id an earlier one handed
 * out, unless that one made more than one arena per microsecond of its life
 * (or the clock went back). 2^53 microseconds after 1970 is the year 2255.
 */
export function firstArenaId(nowMs = Date.now()): number {
  return Math.floor(nowMs * 1000);
}

export class ArenaPool {
  private nextId = firstArenaId();
  private readonly byPair = new Map<string, PooledArena[]>();
  private readonly byId = new Map<number, PooledArena>();
  /** arena bytes shared with each session */
  private readonly bytes = new Map<Session, number>();
  private warned = false;
  private readonly lingering = new Map<PooledArena, NodeJS.Timeout>();
  /** whether the last arena made got hugepages (null before the first) */
  lastHugepage: boolean | null = null;

  constructor(
    private readonly cfg: ArenaConfig & { readonly requireHugepages?: boolean },
    private readonly quotaBytes: number,
    private readonly warn: (line: string) => void,
  ) {}

  private static pairKey(a: Session, b: Session): string {
    return a.id <= b.id ? `${a.id}:${b.id}` : `${b.id}:${a.id}`;
  }

  /** A free slot in an arena of this pair, making an arena when all are full. */
  lease(a: Session, b: Session): LeaseResult {
    const key = ArenaPool.pairKey(a, b);
    const list = this.byPair.get(key) ?? [];
    for (const p of list) {
      const s = p.arena.allocSlot();
      if (s) return { ok: true, arena: p.arena, ...s };
    }
    const size = arenaGeometry(this.cfg.ringSize, this.cfg.slotsPerArena).size;
    for (const s of a === b ? [a] : [a, b]) {
      const used = this.bytes.get(s) ?? 0;
      if (used + size > this.quotaBytes) {
        return { ok: false, why: 'quota', detail: `pid ${s.pid} already shares ${used >> 20} MiB of arenas` };
      }
    }
    if (this.cfg.requireHugepages) {
      const h = hugepageInfo();
      if (h.free * h.pageSize < size) {
        return { ok: false, why: 'no-memory', detail: `no free hugepages for a ${size >> 20} MiB arena (HugePages_Free=${h.free}, PD_HUGEPAGES=require)` };
      }
    }
    let arena: Arena;
    try {
      arena = Arena.create(this.nextId++, this.cfg, (line) => {
        if (this.cfg.requireHugepages) return;
        if (!this.warned) this.warn(line);
        this.warned = true;
      });
    } catch (e) {
      return { ok: false, why: 'no-memory', detail: errorMessage(e) };
    }
    if (this.cfg.requireHugepages && !arena.hugepage) {
      arena.destroy();
      return { ok: false, why: 'no-memory', detail: 'the hugepage arena could not be mapped (PD_HUGEPAGES=require)' };
    }
    this.lastHugepage = arena.hugepage;
    const p: PooledArena = { arena, sessions: a.id <= b.id ? [a, b] : [b, a] };
    list.push(p);
    this.byPair.set(key, list);
    this.byId.set(arena.id, p);
    for (const s of a === b ? [a] : [a, b]) this.bytes.set(s, (this.bytes.get(s) ?? 0) + arena.size);
    const slot = arena.allocSlot();
    if (!slot) {
      this.destroy(p);
      return { ok: false, why: 'no-memory', detail: 'a new arena has no slot' };
    }
    return { ok: true, arena, ...slot };
  }

  /**
   * Frees a slot. An arena left empty is destroyed, except the last one of a
   * pair whose processes both live: it lingers for LINGER_MS so a pair that
   * opens connection after connection does not make and map an arena each time.
   */
  release(arena: Arena, index: number): void {
    arena.freeSlot(index);
    const p = this.byId.get(arena.id);
    if (!p || arena.slotsUsed > 0) return;
    const [a, b] = p.sessions;
    const others = (this.byPair.get(ArenaPool.pairKey(a, b)) ?? []).filter((x) => x !== p);
    if (a.state === SessionState.Closed || b.state === SessionState.Closed || others.some((x) => x.arena.slotsUsed < x.arena.slotCount)) {
      this.destroy(p);
      return;
    }
    const timer = setTimeout(() => {
      this.lingering.delete(p);
      if (this.byId.get(arena.id) === p && arena.slotsUsed === 0) this.destroy(p);
    }, LINGER_MS);
    timer.unref();
    this.lingering.set(p, timer);
  }

  /** A session ended: its empty arenas go now (the busy ones when their last slot is freed). */
  sessionGone(s: Session): void {
    for (const p of [...this.byId.values()]) {
      if ((p.sessions[0] === s || p.sessions[1] === s) && p.arena.slotsUsed === 0) this.destroy(p);
    }
  }

  private destroy(p: PooledArena): void {
    const t = this.lingering.get(p);
    if (t) clearTimeout(t);
    this.lingering.delete(p);
    const [a, b] = p.sessions;
    const key = ArenaPool.pairKey(a, b);
    const list = (this.byPair.get(key) ?? []).filter((x) => x !== p);
    if (list.length > 0) this.byPair.set(key, list);
    else this.byPair.delete(key);
    this.byId.delete(p.arena.id);
    for (const s of a === b ? [a] : [a, b]) {
      const left = (this.bytes.get(s) ?? 0) - p.arena.size;
      if (left > 0) this.bytes.set(s, left);
      else this.bytes.delete(s);
    }
    p.arena.destroy();
  }

  arenas(): PooledArena[] {
    return [...this.byId.values()];
  }

  /** Unmaps every arena (controller shutdown; the shims keep their mappings). */
  destroyAll(): void {
    for (const p of [...this.byId.values()]) this.destroy(p);
  }
}
