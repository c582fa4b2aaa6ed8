// Arenas: one sealed memfd per pair of processes, carved into connection slots
// (layout.ts). The controller maps each arena to write its header, initialise
// slots on assignment, read counters for `pd status` and set deadR when a
// process dies. Nothing here trusts a value read back from the shared memory:
// the shims can write any of it.
import { readFileSync } from 'node:fs';
import {
  ARENA_HDR, DIR_CTRL, SLOT_CTRL, constant, dirOffset, offsetOf, slotSize,
} from './layout.js';
import {
  F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, MFD_ALLOW_SEALING, MFD_CLOEXEC, MFD_HUGETLB,
  SysError, addSeals, closeQuietly, ftruncate, memfdCreate,
} from './libc.js';
import { Mapping } from './shm.js';

export const ARENA_ALIGN = 2 * 1024 * 1024;
const HDR_SIZE = constant('ARENA_HDR_SIZE');
const CTRL_SIZE = constant('SLOT_CTRL_SIZE');

export const NO_HUGEPAGES_WARNING =
  'pipedevice: no hugepages reserved (vm.nr_hugepages=0): rings use ordinary shared memory';

export type HugepagePolicy = 'auto' | 'never';

export interface ArenaConfig {
  readonly ringSize: number;
  readonly slotsPerArena: number;
  readonly hugepages: HugepagePolicy;
}

export interface HugepageInfo {
  readonly total: number;
  /** free and not reserved */
  readonly free: number;
  readonly pageSize: number;
}

export function hugepageInfo(): HugepageInfo {
  try {
    const fields = new Map<string, number>();
    for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
      const m = /^(\w+):\s+(\d+)/.exec(line);
      if (m) fields.set(m[1]!, Number(m[2]));
    }
    const num = (key: string) => fields.get(key) ?? 0;
    // Pages reserved by existing mappings but not yet faulted still count as free.
    return {
      total: num('HugePages_Total'),
      free: Math.max(0, num('HugePages_Free') - num('HugePages_Rsvd')),
      pageSize: num('Hugepagesize') * 1024,
    };
  } catch {
    return { total: 0, free: 0, pageSize: 0 };
  }
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** Arena bytes (a multiple of 2 MiB) and slot count for a configuration. */
export function arenaGeometry(ringSize: number, slotsPerArena: number): { size: number; slotCount: number; slotSize: number } {
  const ss = slotSize(ringSize);
  const size = Math.ceil((HDR_SIZE + Math.max(1, slotsPerArena) * ss) / ARENA_ALIGN) * ARENA_ALIGN;
  return { size, slotCount: Math.floor((size - HDR_SIZE) / ss), slotSize: ss };
}

export interface SlotCounters {
  /** free-running bytes written per direction (dir d is written by role d) */
  readonly head: [number, number];
  readonly switched: [boolean, boolean];
  readonly attached: [boolean, boolean];
  readonly dead: [boolean, boolean];
  readonly reset: boolean;
}

const f = (name: string) => offsetOf(SLOT_CTRL, name);
const d = (name: string) => offsetOf(DIR_CTRL, name);

export class Arena {
  private readonly used: boolean[];
  private readonly generations: number[];
  private usedCount = 0;
  private fdOpen = true;

  private constructor(
    readonly id: number,
    readonly fd: number,
    private readonly map: Mapping,
    readonly size: number,
    readonly slotCount: number,
    readonly slotSize: number,
    readonly ringSize: number,
    readonly hugepage: boolean,
  ) {
    this.used = new Array<boolean>(slotCount).fill(false);
    this.generations = new Array<number>(slotCount).fill(0);
  }

  /**
   * Creates, maps, fills the header of and seals a new arena. `onFallback` is
   * called when hugepages were wanted but the arena uses ordinary memory.
   */
  static create(id: number, cfg: ArenaConfig, onFallback: (why: string) => void): Arena {
    const g = arenaGeometry(cfg.ringSize, cfg.slotsPerArena);
    let made: { fd: number; map: Mapping; huge: boolean } | null = null;
    if (cfg.hugepages === 'auto') {
      const info = hugepageInfo();
      if (info.total === 0) {
        onFallback(NO_HUGEPAGES_WARNING);
      } else if (info.free * info.pageSize < g.size || info.pageSize !== ARENA_ALIGN) {
        onFallback(`pipedevice: not enough free hugepages (HugePages_Free=${info.free}): rings use ordinary shared memory`);
      } else {
        made = tryMake(`pd-arena-${id}`, g.size, true, onFallback);
      }
    }
    made ??= tryMake(`pd-arena-${id}`, g.size, false, onFallback);
    if (!made) throw new SysError('arena', 12 /* ENOMEM */);
    const a = new Arena(id, made.fd, made.map, g.size, g.slotCount, g.slotSize, cfg.ringSize, made.huge);
    a.writeHeader();
    try {
      addSeals(a.fd, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    } catch (e) {
      a.destroy();
      throw e;
    }
    return a;
  }

  private writeHeader(): void {
    const h = (name: string) => offsetOf(ARENA_HDR, name);
    const m = this.map;
    m.store32(h('version'), constant('LAYOUT_VERSION'));
    m.store64(h('arena_size'), BigInt(this.size));
    m.store64(h('arena_id'), BigInt(this.id));
    m.store32(h('slot_count'), this.slotCount);
    m.store32(h('slot_size'), this.slotSize);
    m.store32(h('ring_size'), this.ringSize);
    m.store32(h('slots_offset'), HDR_SIZE);
    m.store32(h('magic'), constant('ARENA_MAGIC'));
  }

  get slotsUsed(): number {
    return this.usedCount;
  }

  get alive(): boolean {
    return this.map.mapped;
  }

  private slotBase(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.slotCount) throw new RangeError(`arena ${this.id}: no slot ${i}`);
    return HDR_SIZE + i * this.slotSize;
  }

  /** Takes a free slot and initialises it; returns its index and generation, or null when full. */
  allocSlot(): { index: number; generation: number } | null {
    const index = this.used.indexOf(false);
    if (index < 0) return null;
    const base = this.slotBase(index);
    const m = this.map;
    m.store32(base + f('magic'), 0);
    m.zero(base, CTRL_SIZE);
    const generation = (this.generations[index] = ((this.generations[index] ?? 0) + 1) >>> 0);
    m.store32(base + f('generation'), generation);
    // Last: a reader that sees the magic sees a zeroed block and this generation.
    m.store32(base + f('magic'), constant('SLOT_MAGIC'));
    this.used[index] = true;
    this.usedCount++;
    return { index, generation };
  }

  freeSlot(index: number): void {
    const base = this.slotBase(index);
    if (!this.used[index]) return;
    this.used[index] = false;
    this.usedCount--;
    if (this.map.mapped) this.map.store32(base + f('magic'), 0);
  }

  isUsed(index: number): boolean {
    return this.used[index] === true;
  }

  generation(index: number): number {
    return this.generations[index] ?? 0;
  }

  /** Marks role `role` of a slot dead (its process is gone). */
  setDead(index: number, role: 0 | 1): void {
    this.map.store32(this.slotBase(index) + f(role === 0 ? 'dead0' : 'dead1'), 1);
  }

  /** Reads a slot's counters for status: values written by the shims, shown, never trusted. */
  counters(index: number): SlotCounters {
    const base = this.slotBase(index);
    const m = this.map;
    const dir = (dd: 0 | 1) => base + dirOffset(dd);
    return {
      head: [Number(m.load64(dir(0) + d('head'))), Number(m.load64(dir(1) + d('head')))],
      switched: [m.load32(dir(0) + d('switched')) !== 0, m.load32(dir(1) + d('switched')) !== 0],
      attached: [m.load32(base + f('attached0')) !== 0, m.load32(base + f('attached1')) !== 0],
      dead: [m.load32(base + f('dead0')) !== 0, m.load32(base + f('dead1')) !== 0],
      reset: m.load32(base + f('reset')) !== 0,
    };
  }

  /** Unmaps and closes. The shims keep their own mappings. */
  destroy(): void {
    this.map.unmap();
    if (this.fdOpen) {
      this.fdOpen = false;
      closeQuietly(this.fd);
    }
  }
}

function tryMake(
  name: string, size: number, huge: boolean, onFallback: (why: string) => void,
): { fd: number; map: Mapping; huge: boolean } | null {
  const fd = memfdCreate(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | (huge ? MFD_HUGETLB : 0));
  try {
    ftruncate(fd, size);
    return { fd, map: new Mapping(fd, size), huge };
  } catch (e) {
    closeQuietly(fd);
    if (!huge) throw e;
    // With no hugepages left, ftruncate succeeds and mmap fails with ENOMEM.
    onFallback(`pipedevice: hugepage arena unavailable (${e instanceof Error ? e.message : String(e)}): rings use ordinary shared memory`);
    return null;
  }
}
