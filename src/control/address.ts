// TCP endpoints as the matcher sees them: IPv4-mapped IPv6 folded to IPv4,
// printed as `ip:port` or `[ip6]:port`, and the keys two ends of one
// connection share.
import type { InetAddress } from '../datapath/libc.js';

export interface Endpoint {
  readonly family: 'inet' | 'inet6';
  readonly address: string;
  readonly port: number;
}

export function normalise(a: InetAddress): Endpoint {
  if (a.family === 'inet6') {
    // ::ffff:a.b.c.d, as libc.ts prints it (RFC 5952 compression): ::ffff:HHHH:LLLL
    const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(a.address);
    if (m) {
      const hi = parseInt(m[1]!, 16);
      const lo = parseInt(m[2]!, 16);
      return { family: 'inet', address: `${hi >>> 8}.${hi & 255}.${lo >>> 8}.${lo & 255}`, port: a.port };
    }
  }
  return { family: a.family, address: a.address, port: a.port };
}

export function isLoopback(e: Endpoint): boolean {
  return e.family === 'inet' ? e.address.startsWith('127.') : e.address === '::1';
}

export function formatEndpoint(e: Endpoint): string {
  return e.family === 'inet6' ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/**
 * The key of an end seen from that end (`own`) and the key its peer's report
 * will carry (`peer`). Loopback connections only pair within one network
 * namespace, so the namespace is part of their key; other addresses are
 * host-unique enough on their own.
 */
export function endKeys(local: Endpoint, peer: Endpoint, netns: number): { own: string; peer: string } {
  const ns = isLoopback(local) || isLoopback(peer) ? String(netns) : '*';
  const l = formatEndpoint(local);
  const p = formatEndpoint(peer);
  return { own: `${ns}|${l}|${p}`, peer: `${ns}|${p}|${l}` };
}
