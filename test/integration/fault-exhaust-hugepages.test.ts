// Checks (root): with every reserved hugepage taken by another process, a new connection still works byte-exact: by default (PD_HUGEPAGES=auto) on a ring in ordinary shared memory (`pd status` shows the arena is not hugepage-backed), with PD_HUGEPAGES=require on plain TCP with the reason in `pd status`; and once the pages are back, arenas are hugepage-backed again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KiB, MiB, holdStream, startServer } from '../helpers/echo.js';
import { FAULT_HUGEHOG, hugepages, isRoot, reserveHugepages, shimEnv } from '../helpers/fault.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { findConnection, pdStatusUntil, startController, type PdStatus } from '../helpers/pd.js';
import { spawnProc, type Proc } from '../helpers/proc.js';

describe.skipIf(!isRoot)('no hugepages left', () => {
  const pd = setupPdTest([FAULT_HUGEHOG]);
  let restore: (() => void) | null = null;
  beforeAll(() => {
    restore = reserveHugepages(8);
  });
  afterAll(() => restore?.());

  async function hog(): Promise<Proc> {
    const p = spawnProc(FAULT_HUGEHOG, ['--timeout', '120'], { stdinPipe: true, name: 'fault_hugehog' });
    await p.waitStdout(/^held (\d+)\n/, 20_000);
    const h = hugepages();
    expect(h.free - h.rsvd, `the hog left hugepages free: ${JSON.stringify(h)}`).toBe(0);
    return p;
  }

  /** The kernel returns the hog's pages a moment after it exits. */
  async function pagesBack(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const hp = hugepages();
      if (hp.free - hp.rsvd > 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function stream(): Promise<{ st: PdStatus; local: string; done: () => Promise<void> }> {
    const env = shimEnv(pd().sock);
    const server = await startServer(['--max-conns', '1', '--timeout', '60'], { env });
    const s = await holdStream(server, 64 * MiB, 64 * KiB, { env });
    expect(s.result).toMatchObject({ ok: true, bytes: 64 * MiB, verify: 'full' });
    const st = await pdStatusUntil(pd().sock, (x) => {
      const c = findConnection(x, s.result.local);
      return c?.transport === 'ring' || c?.state === 'declined';
    });
    return {
      st, local: s.result.local,
      done: async () => {
        s.proc.closeStdin();
        await s.proc.waitOk(20_000);
        await server.proc.waitOk(20_000);
      },
    };
  }

  it('PD_HUGEPAGES=auto: a ring in ordinary memory, then hugepages again', async () => {
    const ctl = await startController(pd().sock);
    const h = await hog();
    const a = await stream();
    const c = findConnection(a.st, a.local);
    expect(c?.transport, JSON.stringify(a.st)).toBe('ring');
    expect(a.st.arenas.find((x) => x.id === c!.arena)?.hugepage, JSON.stringify(a.st.arenas)).toBe(false);
    expect(ctl.stderr).toMatch(/not enough free hugepages|hugepage arena unavailable/);
    await a.done();
    h.closeStdin();
    await h.waitOk(10_000);
    await pagesBack();
    const b = await stream();
    const cb = findConnection(b.st, b.local);
    expect(b.st.arenas.find((x) => x.id === cb!.arena)?.hugepage, JSON.stringify(b.st.arenas)).toBe(true);
    await b.done();
  });

  it('PD_HUGEPAGES=require: plain TCP with the reason shown', async () => {
    await startController(pd().sock, { PD_HUGEPAGES: 'require' });
    const h = await hog();
    const a = await stream();
    const c = findConnection(a.st, a.local);
    expect(c, JSON.stringify(a.st)).toMatchObject({ transport: 'tcp', state: 'declined' });
    expect(c!.reason).toMatch(/no free hugepages .*PD_HUGEPAGES=require/);
    await a.done();
    h.closeStdin();
    await h.waitOk(10_000);
    await pagesBack();
    const b = await stream();
    expect(findConnection(b.st, b.local)?.transport).toBe('ring');
    await b.done();
  });
});
