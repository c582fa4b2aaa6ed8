// Checks the session codec against layout.ts: every message round-trips, and
// decoding refuses anything that is not exactly one well-formed message.
import { describe, expect, it } from 'vitest';
import { MSG_ASSIGN, constant } from '../../src/datapath/layout.js';
import { KINDS, type Message, decode, encode } from '../../src/control/protocol.js';
import { endKeys, normalise } from '../../src/control/address.js';
import { decodeSockaddr } from '../../src/datapath/libc.js';

const samples: Message[] = [
  { type: 'hello', protoVersion: 1, pid: 1234, flags: 0 },
  { type: 'hello-ack', protoVersion: 1, sessionId: 9 },
  { type: 'conn-report', connId: 0xffff_ffff_ffffn, origin: 2 },
  { type: 'assign', connId: 5n, arenaId: 3n, arenaSize: 6291456n, slotIndex: 10, role: 1, generation: 77, ringSize: 262144 },
  { type: 'decline', connId: 5n, reason: 4 },
  { type: 'conn-closed', connId: 2n ** 64n - 1n },
  { type: 'conn-refused', connId: 5n, reason: constant('REFUSE_NOFILE'), fd: 250, limit: 256 },
];

describe('session protocol codec', () => {
  for (const m of samples) {
    it(`${m.type} round-trips`, () => {
      const b = encode(m);
      expect(b.length).toBe(KINDS[m.type].struct.size);
      expect(b.readUInt16LE(0)).toBe(constant('MSG_MAGIC'));
      expect(b.readUInt16LE(2)).toBe(KINDS[m.type].code);
      expect(b.readUInt32LE(4)).toBe(b.length);
      const d = decode(b, KINDS[m.type].fds);
      expect(d).toEqual({ ok: true, msg: m });
    });
  }

  it('refuses the wrong fd count, a bad role, short and long packets', () => {
    const a = encode(samples[3]!);
    expect(decode(a, 4).ok).toBe(false);
    const badRole = Buffer.from(a);
    badRole.writeUInt32LE(2, 36);
    expect(MSG_ASSIGN.fields.find((f) => f.name === 'role')!.offset).toBe(36);
    expect(decode(badRole, 5).ok).toBe(false);
    expect(decode(a.subarray(0, 7), 5).ok).toBe(false);
    const long = Buffer.concat([a, Buffer.alloc(4)]);
    long.writeUInt32LE(long.length, 4);
    expect(decode(long, 5)).toMatchObject({ ok: false, error: expect.stringMatching(/expected 48/) });
  });
});

describe('endpoint keys', () => {
  const v6 = (hex: string, port: number) => {
    const b = Buffer.alloc(28);
    b.writeUInt16LE(10, 0);
    b.writeUInt16BE(port, 2);
    Buffer.from(hex, 'hex').copy(b, 8);
    return decodeSockaddr(b)!;
  };

  it('folds IPv4-mapped IPv6 to IPv4 and prints IPv6 compressed', () => {
    expect(normalise(v6('00000000000000000000ffff7f000001', 80))).toEqual({ family: 'inet', address: '127.0.0.1', port: 80 });
    expect(v6('00000000000000000000000000000001', 1).address).toBe('::1');
    expect(v6('fe800000000000000000000000000001', 1).address).toBe('fe80::1');
    expect(v6('20010db8000000010000000000000000', 1).address).toBe('2001:db8:0:1::');
  });

  it('pairs (local, peer) with (peer, local); loopback keys carry the netns', () => {
    const a = { family: 'inet' as const, address: '127.0.0.1', port: 1000 };
    const b = { family: 'inet' as const, address: '127.0.0.1', port: 2000 };
    expect(endKeys(a, b, 7).peer).toBe(endKeys(b, a, 7).own);
    expect(endKeys(a, b, 7).peer).not.toBe(endKeys(b, a, 8).own);
    const x = { family: 'inet' as const, address: '10.0.0.1', port: 1000 };
    const y = { family: 'inet' as const, address: '10.0.0.2', port: 2000 };
    expect(endKeys(x, y, 7).peer).toBe(endKeys(y, x, 8).own);
  });
});
