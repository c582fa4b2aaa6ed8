// Checks: with hugepages reserved the arena of an upgraded connection is hugepage-backed, and with none reserved it is not and the stream still verifies; the test reserves pages only as root and restores /proc/sys/vm/nr_hugepages afterwards.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KiB, MiB, holdStream, startServer } from '../helpers/echo.js';
import { findConnection, pdStatusUntil, type PdStatus } from '../helpers/pd.js';
import { setupPdTest } from '../helpers/lifecycle.js';

const NR = '/proc/sys/vm/nr_hugepages';
const EXTRA = Number(process.env.PD_TEST_HUGEPAGES ?? 64); // 2 MiB pages to reserve
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('hugepages.test.ts: skipped, needs root to change /proc/sys/vm/nr_hugepages');

function readNr(): number {
  return Number(readFileSync(NR, 'utf8').trim());
}
function meminfo(key: string): number {
  const m = readFileSync('/proc/meminfo', 'utf8').match(new RegExp(`^${key}:\\s+(\\d+)`, 'm'));
  return m ? Number(m[1]) : 0;
}

describe.skipIf(!isRoot)('hugepages', () => {
  let saved = 0;
  const pd = setupPdTest();
  beforeAll(() => {
    saved = readNr();
  });
  afterAll(() => {
    writeFileSync(NR, `${saved}\n`);
    expect(readNr()).toBe(saved);
  });

  async function streamAndStatus(): Promise<{ status: PdStatus; local: string }> {
    const opts = { pdrun: true, env: pd().env };
    const server = await startServer(['--max-conns', '1'], opts);
    const { proc, result } = await holdStream(server, 64 * MiB, 64 * KiB, opts);
    expect(result).toMatchObject({ ok: true, bytes: 64 * MiB, verify: 'full' });
    const status = await pdStatusUntil(pd().sock, (s) => findConnection(s, result.local)?.transport === 'ring');
    proc.closeStdin();
    await proc.waitOk(30_000);
    await server.proc.waitOk(30_000);
    return { status, local: result.local };
  }

  function arenaOf(status: PdStatus, local: string) {
    const conn = findConnection(status, local);
    expect(conn, JSON.stringify(status, null, 1)).toBeDefined();
    expect(conn!.transport, JSON.stringify(conn)).toBe('ring');
    const arena = status.arenas.find((a) => a.id === conn!.arena);
    expect(arena, `arena ${conn!.arena} not in status:\n${JSON.stringify(status.arenas)}`).toBeDefined();
    return arena!;
  }

  it(`with ${EXTRA} extra hugepages reserved: arena is hugepage-backed`, async () => {
    try {
      writeFileSync(NR, `${saved + EXTRA}\n`);
      const free = meminfo('HugePages_Free');
      expect(free, `kernel reserved only ${readNr()} pages`).toBeGreaterThan(0);
      const { status, local } = await streamAndStatus();
      expect(status.controller.hugepages).toBe(true);
      expect(arenaOf(status, local).hugepage).toBe(true);
    } finally {
      writeFileSync(NR, `${saved}\n`);
    }
  });

  it('with no hugepages: plain memory, stream still verifies', async (ctx) => {
    try {
      writeFileSync(NR, '0\n');
      if (meminfo('HugePages_Total') > 0) ctx.skip(`hugepages still held by someone else (${meminfo('HugePages_Total')})`);
      const { status, local } = await streamAndStatus();
      expect(status.controller.hugepages).toBe(false);
      expect(arenaOf(status, local).hugepage).toBe(false);
    } finally {
      writeFileSync(NR, `${saved}\n`);
    }
  });
});
