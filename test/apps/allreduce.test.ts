// Checks: a ring allreduce of float32 vectors across 4 processes (bench/progs/allreduce.c --check), all under pdrun on 127.0.0.1: every rank verifies every iteration and reports the expected checksum, and after a gate all 4 connections carry the data on the ring, checked while the ranks hold them open.
import { expect, it } from 'vitest';
import { benchProg } from '../../src/cli/bench/progs.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { pdStatusUntil, type PdStatus } from '../helpers/pd.js';
import { spawnProc, type Proc } from '../helpers/proc.js';
import { expectKernelIdle, freePorts } from './app-helpers.js';

const pd = setupPdTest();
const RANKS = 4;
const FLOATS = 300_000; // chunks of 75,000 floats (300 KB): larger than a ring, not a multiple of it
const ITERS = 20;

/** What every rank's final vector must sum to: sum of v[i] * (i % 1009 + 1), v the sum over ranks of the last iteration's inputs. */
function expectedChecksum(): number {
  const it = ITERS - 1;
  let sum = 0;
  for (let i = 0; i < FLOATS; i++) {
    let v = 0;
    for (let r = 0; r < RANKS; r++) v += (131 * r + 17 * it + i) % 251;
    sum += v * ((i % 1009) + 1);
  }
  return sum;
}

it('every rank gets the verified result, over 4 ring connections', async () => {
  const bin = benchProg('allreduce'); // compiled with cc on first use, as pd bench does
  const base = await freePorts(RANKS);
  const ports = Array.from({ length: RANKS }, (_, r) => base + r);
  const ranks: Proc[] = [];
  for (let r = RANKS - 1; r >= 0; r--) {
    const args = ['--ranks', String(RANKS), '--rank', String(r), '--port', String(base), '--floats', String(FLOATS), '--iters', String(ITERS), '--check', '--gate', '--hold'];
    ranks.unshift(spawnProc(bin, args, { pdrun: true, env: pd().env, stdinPipe: true, name: `pdrun allreduce rank ${r}` }));
  }
  await Promise.all(ranks.map((p) => p.waitStdout(/^connected\n/, 30_000)));
  // the gate: every connection has its slot before the iterations start
  const ours = (s: PdStatus) => s.connections.filter((c) => c.ends.some((e) => ports.some((p) => e.peer.endsWith(`:${p}`))));
  const assigned = await pdStatusUntil(pd().sock, (s) => ours(s).filter((c) => c.state === 'assigned' || c.state === 'upgraded').length === RANKS, 10_000);
  expect(ours(assigned).map((c) => c.state), JSON.stringify(ours(assigned), null, 1)).toEqual(Array(RANKS).fill(expect.stringMatching(/^(assigned|upgraded)$/)));
  for (const p of ranks) p.writeStdin('go\n');

  const results = await Promise.all(
    ranks.map(async (p) => JSON.parse((await p.waitStdout(/^(\{.*\})\n/m, 60_000))[1]!) as { ok: boolean; rank: number; checksum: number; busbw_gbytes_s: number }),
  );
  const want = expectedChecksum();
  for (const [r, res] of results.entries()) expect(res, `rank ${r}`).toMatchObject({ ok: true, rank: r, checksum: want });

  // held open: each rank's connection to the next carried its share by the ring
  const perConn = FLOATS * 4 * 2 * (RANKS - 1) / RANKS * ITERS;
  const s = await pdStatusUntil(pd().sock, (x) => ours(x).filter((c) => c.transport === 'ring').length === RANKS, 5_000);
  expect(ours(s).map((c) => c.transport), JSON.stringify(ours(s), null, 1)).toEqual(Array(RANKS).fill('ring'));
  for (const c of ours(s)) {
    expect(c.ringBytes[0], `ring bytes of ${JSON.stringify(c)}`).toBeGreaterThanOrEqual(0.9 * perConn);
    expectKernelIdle(c, c.ringBytes[0] + c.ringBytes[1]);
  }
  console.log(`allreduce under pdrun, ${RANKS} ranks, ${FLOATS * 4} B, ${ITERS} iterations: bus bandwidth ${results[0]!.busbw_gbytes_s} GB/s (rank 0, communication only)`);
  for (const p of ranks) p.closeStdin();
  await Promise.all(ranks.map((p) => p.waitOk(30_000)));
});
