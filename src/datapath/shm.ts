// A mapped region of a memfd, read and written through typed views that refuse
// to work once the region is unmapped (touching a koffi view after munmap is a
// SIGSEGV, so no view escapes this class).
import { mmapShared, munmap, view } from './libc.js';

export class Mapping {
  private u32: Uint32Array | null;
  private u64: BigUint64Array | null;
  readonly addr: bigint;

  constructor(fd: number, readonly size: number) {
    this.addr = mmapShared(fd, size);
    const ab = view(this.addr, size);
    this.u32 = new Uint32Array(ab);
    this.u64 = new BigUint64Array(ab);
  }

  get mapped(): boolean {
    return this.u32 !== null;
  }

  private words32(offset: number): Uint32Array {
    if (!this.u32) throw new Error('shm: mapping used after unmap');
    if (offset % 4 !== 0 || offset < 0 || offset + 4 > this.size) throw new RangeError(`shm: bad u32 offset ${offset}`);
    return this.u32;
  }

  private words64(offset: number): BigUint64Array {
    if (!this.u64) throw new Error('shm: mapping used after unmap');
    if (offset % 8 !== 0 || offset < 0 || offset + 8 > this.size) throw new RangeError(`shm: bad u64 offset ${offset}`);
    return this.u64;
  }

  // Atomics on the shared words: each access is one aligned load or store, and
  // stores are sequentially consistent (an x86 xchg), so a store made "last"
  // is seen after everything written before it.
  load32(offset: number): number {
    return Atomics.load(this.words32(offset), offset >>> 2);
  }

  store32(offset: number, value: number): void {
    Atomics.store(this.words32(offset), offset >>> 2, value >>> 0);
  }

  load64(offset: number): bigint {
    return Atomics.load(this.words64(offset), offset / 8);
  }

  store64(offset: number, value: bigint): void {
    Atomics.store(this.words64(offset), offset / 8, BigInt.asUintN(64, value));
  }

  /** Zeroes [offset, offset+len): plain stores, for memory nobody else reads yet. */
  zero(offset: number, len: number): void {
    const w = this.words32(offset);
    if (len % 4 !== 0 || offset + len > this.size) throw new RangeError(`shm: bad zero range ${offset}+${len}`);
    w.fill(0, offset >>> 2, (offset + len) >>> 2);
  }

  unmap(): void {
    if (!this.u32) return;
    this.u32 = null;
    this.u64 = null;
    munmap(this.addr, this.size);
  }
}
