// Which transport pdrun's connections really used: `pd status` sampled while
// a run goes on. A connection counts as 'ring' once any sample saw it there.
import { fetchStatus } from '../../control/client.js';
import type { StatusDoc } from '../../control/status.js';

export interface TransportSeen {
  /** status documents read */
  samples: number;
  /** distinct connections seen */
  seen: number;
  /** connections seen on the ring at least once */
  ring: number;
  /** connections only ever seen on TCP */
  tcp: number;
  /** why the controller kept some on TCP (distinct reasons, a few) */
  tcpReasons: string[];
}

export interface TransportWatch {
  stop(): Promise<TransportSeen>;
}

export function watchTransports(socket: string, everyMs = 200): TransportWatch {
  const best = new Map<number, 'ring' | 'tcp'>();
  const reasons = new Map<number, string>();
  let samples = 0;
  let running = true;
  let wake: (() => void) | null = null;
  const take = (doc: StatusDoc): void => {
    samples++;
    for (const c of doc.connections) {
      if (best.get(c.id) === 'ring') continue;
      best.set(c.id, c.transport);
      if (c.transport === 'tcp' && c.reason) reasons.set(c.id, c.reason);
    }
  };
  const loop = (async () => {
    while (running) {
      try {
        take(await fetchStatus(socket, 3000));
      } catch {
        /* no controller yet, or busy: the next sample tells */
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, everyMs);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  })();
  return {
    async stop() {
      running = false;
      wake?.();
      await loop;
      // one last look: connections still open at the end of the run
      try {
        take(await fetchStatus(socket, 3000));
      } catch {
        /* gone */
      }
      const v = [...best.entries()];
      const tcpIds = v.filter(([, t]) => t === 'tcp').map(([id]) => id);
      return {
        samples,
        seen: v.length,
        ring: v.length - tcpIds.length,
        tcp: tcpIds.length,
        tcpReasons: [...new Set(tcpIds.map((id) => reasons.get(id) ?? 'no reason given'))].slice(0, 4),
      };
    },
  };
}
