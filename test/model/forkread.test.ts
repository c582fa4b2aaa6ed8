// Model check of two processes reading one receiving end after fork()
// (preload/model/forkread.pml) with spin: the reader lock (rx_owner), the
// resync of the private tail, the slot's shared TCP count across the
// handover, and the wait/notify protocol with two blocking readers on one
// armed count and one doorbell. The protocol as preload/ring.c implements it
// must verify; each deliberately broken variant must fail, so the check is
// known to have teeth. Runs one at a time (a run takes about 1 GB).
// PD_MODEL_FULL=1 adds the larger sizes (about a minute and 3-4 GB each).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import { HAVE_SPIN, SpinModel, type SpinMode, type Verdict } from '../helpers/spin.js';

const SPIN = new SpinModel(fileURLToPath(new URL('../../preload/model/forkread.pml', import.meta.url)), 'pd-spin-fork-');
const SKIP_MSG = 'SKIPPED: spin is not installed (apt-get install spin), the forked-readers model was not checked';
const FULL = process.env.PD_MODEL_FULL === '1';

// safety (the default): assertions and invalid end states (a lost wake-up
// trips one of the watchdog's assertions); cycles: any cycle in the state
// graph, so errors: 0 means every run is finite.
function verify(defines: string[], mode: SpinMode = 'safety'): Promise<Verdict> {
  return SPIN.verify(defines, mode, { opt: '-O2', hashBits: 26, maxDepth: 200000 });
}

// Every statement is reachable but one: a ring read that finds the FIN seen
// earlier re-checks head, and head cannot move after the FIN (the C keeps
// the re-check; it costs nothing). Without the killer, the producer's death
// branch is unreached too.
function expectReached(v: Verdict, killer: boolean): void {
  expect(v.out).toMatch(/unreached in proctype consumer\n\tforkread\.pml:\d+, state \d+, "rx_owner = 0"\n\t\(1 of \d+ states\)/);
  for (const p of ['network', 'watchdog', ...(killer ? ['killer', 'producer'] : [])])
    expect(v.out, `unreached code in ${p}`).toMatch(new RegExp(`unreached in proctype ${p}\\n\\t\\(0 of \\d+ states\\)`));
}

const T = 600_000;
const SMALL = ['N=1', 'K=2', 'NO_KILLER'];
const CONSUMER_LOST = /assertion violated \(c_stop\[[01]\]\|\|\(\(got==published\)&&\(c_eof\[[01]\]\|\| !\(\(fin\|\|wr_closed\)\)\)\)\)/;
const OUT_OF_ORDER = /assertion violated \(ring\[\(t%\d\)\]==\(got\+1\)\)/;
const FIN_BEFORE_PREFIX = /assertion violated {2}!\(sw\)/;

if (!HAVE_SPIN) console.warn(`test/model/forkread: ${SKIP_MSG}`);

describe.skipIf(!HAVE_SPIN)(HAVE_SPIN ? 'forked readers model (spin)' : SKIP_MSG, () => {
  beforeAll(() => SPIN.setup());
  afterAll(() => SPIN.teardown());

  it('two readers, a TCP prefix and one ring item (N=1, K=2): no assertion, no lost wake-up', async ({ annotate }) => {
    const v = await verify(SMALL);
    expect(v.errors, v.out).toBe(0);
    expect(v.states).toBeGreaterThan(1_000_000);
    expectReached(v, false);
    await annotate(`safety: ${v.states} states, errors ${v.errors}`);
  }, T);

  it('(N=1, K=2): no cycle at all, so every run ends where the watchdog looks', async () => {
    const v = await verify(SMALL, 'cycles');
    expect(v.errors, v.out).toBe(0);
  }, T);

  it('correct variant NO_SPIN verifies', async () => {
    const v = await verify([...SMALL, 'NO_SPIN']);
    expect(v.errors, v.out).toBe(0);
  }, T);

  const broken: Array<[string, RegExp]> = [
    ['BROKEN_NO_LOCK', CONSUMER_LOST],
    ['BROKEN_NO_RESYNC', OUT_OF_ORDER],
    ['BROKEN_PRIVATE_COUNT', FIN_BEFORE_PREFIX],
    ['BROKEN_PRIVATE_READY', CONSUMER_LOST],
    ['BROKEN_NO_COUNT_DOORBELL', CONSUMER_LOST],
  ];
  for (const [def, why] of broken) {
    it(`broken variant ${def} is caught`, async () => {
      const v = await verify([...SMALL, def]);
      expect(v.errors, v.out).toBeGreaterThan(0);
      expect(v.out).toMatch(why);
    }, T);
  }

  it.skipIf(!FULL)('full: N=1, K=2 with the producer killed at any point', async () => {
    const v = await verify(['N=1', 'K=2']);
    expect(v.errors, v.out).toBe(0);
    expectReached(v, true);
  }, T);

  it.skipIf(!FULL)('full: N=1, K=3', async () => {
    const v = await verify(['N=1', 'K=3', 'NO_KILLER']);
    expect(v.errors, v.out).toBe(0);
  }, T);
});
