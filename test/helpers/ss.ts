// What the kernel says about a TCP connection: `ss -tinH` parsed for one
// (local, peer) pair. ss omits a byte counter that is zero, so absent means 0.
import { spawnSync } from 'node:child_process';

export interface TcpInfo {
  state: string;
  local: string;
  peer: string;
  bytesSent: number;
  /** retransmitted bytes, counted in bytesSent too (loopback retransmits under load) */
  bytesRetrans: number;
  bytesAcked: number;
  bytesReceived: number;
  raw: string;
}

/** Every TCP socket of this network namespace, or of the named one (`ip netns exec NS ss`). */
export function ssAll(netns?: string): TcpInfo[] {
  const [cmd, args] = netns ? ['ip', ['netns', 'exec', netns, 'ss', '-tinH']] : ['ss', ['-tinH']];
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || String(r.error)}`);
  const out: TcpInfo[] = [];
  let cur: TcpInfo | null = null;
  for (const line of r.stdout.split('\n')) {
    if (line.trim() === '') continue;
    if (!/^\s/.test(line)) {
      const f = line.trim().split(/\s+/);
      cur = { state: f[0] ?? '', local: f[3] ?? '', peer: f[4] ?? '', bytesSent: 0, bytesRetrans: 0, bytesAcked: 0, bytesReceived: 0, raw: line };
      out.push(cur);
    } else if (cur) {
      cur.raw += `\n${line}`;
      const num = (k: string): number => {
        const m = line.match(new RegExp(`\\b${k}:(\\d+)`));
        return m ? Number(m[1]) : 0;
      };
      cur.bytesSent += num('bytes_sent');
      cur.bytesRetrans += num('bytes_retrans');
      cur.bytesAcked += num('bytes_acked');
      cur.bytesReceived += num('bytes_received');
    }
  }
  return out;
}

/** The kernel's view of the socket whose local address is `local` and peer `peer`. */
export function ssConn(local: string, peer: string): TcpInfo | undefined {
  return ssAll().find((c) => c.local === local && c.peer === peer);
}

/** Both kernel sockets of a loopback connection, from the client's addresses. */
export function ssPair(clientLocal: string, serverAddr: string): { client?: TcpInfo; server?: TcpInfo } {
  const all = ssAll();
  return {
    client: all.find((c) => c.local === clientLocal && c.peer === serverAddr),
    server: all.find((c) => c.local === serverAddr && c.peer === clientLocal),
  };
}

/** Both kernel sockets of a connection whose ends may sit in different network namespaces. */
export function ssEnds(clientLocal: string, serverAddr: string, netns: { client?: string; server?: string } = {}): { client?: TcpInfo; server?: TcpInfo } {
  return {
    client: ssAll(netns.client).find((c) => c.local === clientLocal && c.peer === serverAddr),
    server: ssAll(netns.server).find((c) => c.local === serverAddr && c.peer === clientLocal),
  };
}
