// Checks: the ring memory of a pair of processes appears only in those two processes' /proc/PID/maps: with one server and two upgraded clients, each client maps only its own arena (shared with the server), never the other client's, and a process paired with another server maps none of theirs.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { KiB, MiB, holdStream, startServer } from '../helpers/echo.js';
import { shimEnv } from '../helpers/fault.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { findConnection, pdStatusUntil, startController } from '../helpers/pd.js';

const pd = setupPdTest();

/** inodes of the pd arenas a process has mapped */
function arenaInodes(pid: number): Set<number> {
  const out = new Set<number>();
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    if (!line.includes('/memfd:pd-arena-')) continue;
    const f = line.trim().split(/\s+/);
    out.add(Number(f[4]));
  }
  return out;
}

const overlap = (a: Set<number>, b: Set<number>) => [...a].filter((x) => b.has(x));

it('ring memory is mapped only by the two processes of its pair', async () => {
  const env = shimEnv(pd().sock);
  await startController(pd().sock);
  const s1 = await startServer(['--threads', '--timeout', '60'], { env });
  const s2 = await startServer(['--threads', '--timeout', '60'], { env });
  const a = await holdStream(s1, 64 * MiB, 64 * KiB, { env });
  const b = await holdStream(s1, 64 * MiB, 64 * KiB, { env });
  const c = await holdStream(s2, 64 * MiB, 64 * KiB, { env });
  const st = await pdStatusUntil(pd().sock, (s) => [a, b, c].every((x) => findConnection(s, x.result.local)?.transport === 'ring'));
  for (const x of [a, b, c]) expect(findConnection(st, x.result.local)?.transport, JSON.stringify(st.connections)).toBe('ring');
  const m = {
    s1: arenaInodes(s1.proc.pid), s2: arenaInodes(s2.proc.pid),
    a: arenaInodes(a.proc.pid), b: arenaInodes(b.proc.pid), c: arenaInodes(c.proc.pid),
  };
  const why = JSON.stringify(Object.fromEntries(Object.entries(m).map(([k, v]) => [k, [...v]])));
  for (const k of ['a', 'b', 'c'] as const) expect(m[k].size, why).toBeGreaterThan(0);
  expect(overlap(m.a, m.b), `two clients of one server share ring memory: ${why}`).toEqual([]);
  expect(overlap(m.a, m.c), why).toEqual([]);
  expect(overlap(m.b, m.c), why).toEqual([]);
  expect(overlap(m.s1, m.c), `a process maps the arena of a pair it is not in: ${why}`).toEqual([]);
  expect(overlap(m.s2, m.a).concat(overlap(m.s2, m.b)), why).toEqual([]);
  for (const x of m.a) expect(m.s1.has(x), why).toBe(true);
  for (const x of m.b) expect(m.s1.has(x), why).toBe(true);
  for (const x of m.c) expect(m.s2.has(x), why).toBe(true);
  for (const x of [a, b, c]) {
    x.proc.closeStdin();
    await x.proc.waitOk(20_000);
  }
});
