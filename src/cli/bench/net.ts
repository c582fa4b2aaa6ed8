// Ports and readiness on 127.0.0.1.
import net from 'node:net';
import { BenchError } from './errors.js';

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A base port such that base..base+n-1 are all free on 127.0.0.1 now
 * (each probed by listening on it), or 0 after `tries` attempts. */
export async function freePortRange(n: number, tries = 50): Promise<number> {
  for (let t = 0; t < tries; t++) {
    const base = await freePort();
    if (base === 0 || base + n > 65535) continue;
    let ok = true;
    for (let i = 1; i < n && ok; i++) ok = await canListen(base + i);
    if (ok) return base;
  }
  return 0;
}

function tryConnect(opts: net.NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(opts);
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}

/** Wait until something accepts at host:port (or the Unix path). */
export async function waitListening(target: { host: string; port: number } | { path: string }, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await tryConnect(target)) return;
    if (Date.now() > deadline) {
      const where = 'path' in target ? target.path : `${target.host}:${target.port}`;
      throw new BenchError('PD_E_BENCH_RUN', `${what}: nothing accepts at ${where} after ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
