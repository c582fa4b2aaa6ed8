// Just enough ELF to know whether LD_PRELOAD can work on a program: a
// dynamically linked program has a PT_INTERP header; a Go program (Go build-id
// note) makes its socket calls without libc even when it has one.
import { closeSync, openSync, readSync } from 'node:fs';

const PT_INTERP = 3;
const PT_NOTE = 4;
const NT_GO_BUILDID = 4;

export type ElfKind = 'not-elf' | 'static' | 'dynamic';

export interface ElfInfo {
  readonly kind: ElfKind;
  readonly go: boolean;
}

function readAt(fd: number, offset: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = readSync(fd, b, 0, len, offset);
  return b.subarray(0, n);
}

export function inspectElf(path: string): ElfInfo {
  const fd = openSync(path, 'r');
  try {
    const h = readAt(fd, 0, 64);
    if (h.length < 52 || h.readUInt32BE(0) !== 0x7f454c46) return { kind: 'not-elf', go: false };
    const is64 = h[4] === 2;
    const le = h[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const uw = (b: Buffer, o: number) => (is64 ? Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o)) : u32(b, o));
    const phoff = uw(h, is64 ? 0x20 : 0x1c);
    const phentsize = u16(h, is64 ? 0x36 : 0x2a);
    const phnum = u16(h, is64 ? 0x38 : 0x2c);
    if (phnum === 0 || phentsize < (is64 ? 56 : 32) || phnum > 4096) return { kind: 'static', go: false };
    const ph = readAt(fd, phoff, phentsize * phnum);
    let interp = false;
    let go = false;
    for (let i = 0; i + phentsize <= ph.length; i += phentsize) {
      const type = u32(ph, i);
      if (type === PT_INTERP) interp = true;
      if (type === PT_NOTE && !go) {
        const off = uw(ph, i + (is64 ? 0x08 : 0x04));
        const size = Math.min(uw(ph, i + (is64 ? 0x20 : 0x10)), 1 << 16);
        go = hasGoNote(readAt(fd, off, size), u32);
      }
    }
    return { kind: interp ? 'dynamic' : 'static', go };
  } finally {
    closeSync(fd);
  }
}

function hasGoNote(notes: Buffer, u32: (b: Buffer, o: number) => number): boolean {
  const al4 = (n: number) => (n + 3) & ~3;
  for (let at = 0; at + 12 <= notes.length;) {
    const namesz = u32(notes, at);
    const descsz = u32(notes, at + 4);
    const type = u32(notes, at + 8);
    const name = notes.subarray(at + 12, at + 12 + namesz).toString('latin1');
    if (type === NT_GO_BUILDID && name === 'Go\0') return true;
    const next = at + 12 + al4(namesz) + al4(descsz);
    if (next <= at) break;
    at = next;
  }
  return false;
}
