// The kill loop shared by fault-kill-client.test.ts and fault-kill-server.test.ts:
// a fault_stream pair under the shim streams until one end dies by SIGKILL.
// Three kinds of iteration, chosen at random:
//   external  both ways; the test kills the victim after a random delay
//   self      both ways; the victim raises SIGKILL after a random byte count
//   oneway    only the victim sends, and raises SIGKILL after a random count
// The survivor must end its reads with EOF or ECONNRESET (and its writes with
// EPIPE or ECONNRESET) within 1 s of the kill, having received only bytes
// that were sent. In the two-way kinds the victim dies with unread bytes, so
// TCP itself resets and may drop what it had not transmitted yet; in `oneway`
// the victim has nothing unread, its kernel sends a FIN after its last byte,
// and the survivor must read every byte written before the kill, then EOF.
// After each iteration everything is reclaimed. PD_FAULT_KILLS sets the
// iterations (bench/soak.mjs --kills).
import { expect } from 'vitest';
import { requireBuild } from './build-state.js';
import {
  FAULT_STREAM, type FaultEnd, type Snapshot, connLine, endLine, hugepages, kill9, prng, shimEnv, snapshot, startFaultClient,
  startFaultServer, waitReclaimed,
} from './fault.js';
import { pdStatusAsync } from './pd.js';
import { killAll, sleep, type Proc } from './proc.js';

export const KILLS = Number(process.env.PD_FAULT_KILLS ?? 20);
export const MiB = 1024 * 1024;
const SECOND_NS = 1_000_000_000n;

type Kind = 'external' | 'self' | 'oneway';

export interface KillStats {
  iterations: number;
  kinds: Record<Kind, number>;
  /** iterations where the survivor had attached to the ring before the kill */
  survivorAttached: number;
  /** ... and the victim's sending direction had switched to the ring */
  survivorOnRing: number;
  eof: number;
  reset: number;
  /** external kills with fewer hugepages free than at the start just before the kill (arenas on hugepages) */
  hugepagesInUse: number;
  maxRxLatencyMs: number;
  maxTxLatencyMs: number;
}

/** A stable baseline: the controller's fd count can be one higher while it answers a status request. */
export async function baseline(sock: string, ctlPid: number): Promise<Snapshot> {
  let best: Snapshot | null = null;
  for (let i = 0; i < 5; i++) {
    const s = await snapshot(sock, ctlPid);
    if (s && (!best || s.fds.total < best.fds.total)) best = s;
    await sleep(30);
  }
  if (!best) throw new Error(`no status from the controller at ${sock}`);
  return best;
}

function describeIteration(ctx: Record<string, unknown>, survivor: Proc, victim: Proc, end?: FaultEnd): string {
  return `iteration ${JSON.stringify(ctx)}\nsurvivor end: ${JSON.stringify(end)}\n` +
    `--- survivor stdout ---\n${survivor.stdout.slice(-2000)}\n--- survivor stderr ---\n${survivor.stderr.slice(-3000)}\n` +
    `--- victim stdout ---\n${victim.stdout.slice(-1000)}\n--- victim stderr ---\n${victim.stderr.slice(-2000)}`;
}

export async function killLoop(
  sock: string, ctlPid: number, victimRole: 'client' | 'server', seed: number, kills = KILLS,
): Promise<KillStats> {
  requireBuild([FAULT_STREAM]);
  const rnd = prng(seed);
  const env = { ...shimEnv(sock), PD_LOG: 'debug' };
  const base = await baseline(sock, ctlPid);
  const stats: KillStats = {
    iterations: 0, kinds: { external: 0, self: 0, oneway: 0 }, survivorAttached: 0, survivorOnRing: 0, eof: 0, reset: 0, hugepagesInUse: 0, maxRxLatencyMs: 0, maxTxLatencyMs: 0,
  };
  for (let i = 0; i < kills; i++) {
    const x = rnd();
    const kind: Kind = x < 0.4 ? 'external' : x < 0.7 ? 'self' : 'oneway';
    const self = kind !== 'external';
    // Skewed towards small counts, so the handover (the first few hundred KiB) is hit often.
    const dieAfter = Math.floor(rnd() ** 2 * 16 * MiB);
    // A third right after the connection (setup, report, handover), the rest later (on the ring).
    const delayMs = rnd() < 0.33 ? Math.floor(rnd() * 5) : Math.floor(5 + rnd() * 80);
    const ctx = { seed, i, victim: victimRole, kind, ...(self ? { dieAfter } : { delayMs }) };
    const serverArgs = ['--tx-seed', String(seed * 2 + 1), '--rx-seed', String(seed * 2), '--timeout', '60'];
    const clientArgs = ['--tx-seed', String(seed * 2), '--rx-seed', String(seed * 2 + 1), '--timeout', '60'];
    const [victimArgs, survivorArgs] = victimRole === 'client' ? [clientArgs, serverArgs] : [serverArgs, clientArgs];
    if (self) victimArgs.push('--die-after', String(dieAfter));
    if (kind === 'oneway') survivorArgs.push('--bytes', '0');
    const server = await startFaultServer(serverArgs, { env });
    const client = startFaultClient(server.port, clientArgs, { env });
    const [victim, survivor] = victimRole === 'client' ? [client, server.proc] : [server.proc, client];
    let end: FaultEnd | undefined;
    try {
      const c = await connLine(victim);
      let killNs: bigint;
      if (self) {
        const m = await victim.waitStdout(/^dying (\d+)\n/m, 30_000);
        killNs = BigInt(m[1]!);
      } else {
        if (delayMs > 0) await sleep(delayMs);
        if (hugepages().free < base.huge.free) stats.hugepagesInUse++;
        killNs = kill9(c.pid);
      }
      // The bound that matters is the survivor's own timestamps below; this
      // one only turns a hang into a failure with the processes' output.
      end = await endLine(survivor, 10_000);
      const rxMs = Number(BigInt(end.rx_end_ns) - killNs) / 1e6;
      const txMs = Number(BigInt(end.tx_end_ns) - killNs) / 1e6;
      const why = describeIteration(ctx, survivor, victim, end);
      expect(end.ok, `survivor read a byte that was not sent, or its writer never returned:\n${why}`).toBe(true);
      expect(end.mismatch_at, why).toBe(-1);
      expect(['eof', 'ECONNRESET'], `survivor's read ended with ${end.rx_end}:\n${why}`).toContain(end.rx_end);
      expect(BigInt(end.rx_end_ns) - killNs, `survivor's read ended ${rxMs} ms after the kill:\n${why}`).toBeLessThan(SECOND_NS);
      if (kind === 'oneway') {
        expect(end.tx_end, why).toBe('done');
        // Nothing unread in the victim: a FIN after its last byte, and every byte arrives.
        expect(end.rx_end, why).toBe('eof');
        expect(end.rx, `survivor saw EOF after ${end.rx} of the ${dieAfter} bytes written before the kill:\n${why}`).toBe(dieAfter);
      } else {
        expect(['EPIPE', 'ECONNRESET'], `survivor's write ended with ${end.tx_end}:\n${why}`).toContain(end.tx_end);
        expect(BigInt(end.tx_end_ns) - killNs, `survivor's write ended ${txMs} ms after the kill:\n${why}`).toBeLessThan(SECOND_NS);
      }
      if (self) expect(end.rx, why).toBeLessThanOrEqual(dieAfter);
      stats.kinds[kind]++;
      stats.maxRxLatencyMs = Math.max(stats.maxRxLatencyMs, rxMs);
      if (kind !== 'oneway') stats.maxTxLatencyMs = Math.max(stats.maxTxLatencyMs, txMs);
      if (end.rx_end === 'eof') stats.eof++;
      else stats.reset++;
      if (/attached/.test(survivor.stderr)) stats.survivorAttached++;
      if (/switched/.test(victim.stderr) && /attached/.test(survivor.stderr)) stats.survivorOnRing++;
      const [se, ve] = [await survivor.wait(10_000), await victim.wait(10_000)];
      expect(se.code, why).toBe(0);
      expect(ve.signal, why).toBe('SIGKILL');
      await waitReclaimed(sock, ctlPid, base, `after ${JSON.stringify(ctx)}`);
    } catch (e) {
      const st = await pdStatusAsync(sock);
      if (e instanceof Error && !e.message.includes('--- survivor')) {
        e.message += `\n${describeIteration(ctx, survivor, victim, end)}\nstatus ${JSON.stringify(st)}`;
      }
      await killAll();
      throw e;
    }
    stats.iterations++;
  }
  return stats;
}
