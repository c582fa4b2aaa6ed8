// Model check of the per-direction wait/notify protocol (counted armed words),
// the TCP->ring handover and end of stream (preload/model/waitwake.pml) with
// spin: a blocking reader, a blocking writer and a second reader-side waiter
// of the epoll kind. The protocol as preload/ring.c implements it must verify;
// each deliberately broken variant must fail, so the check is known to have
// teeth; one variant reproduces a finding in the C (see preload/model/README.md).
// PD_MODEL_FULL=1 adds the larger sizes (minutes of CPU, several GB).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import { HAVE_SPIN, SpinModel, type SpinMode, type Verdict } from '../helpers/spin.js';

const SPIN = new SpinModel(fileURLToPath(new URL('../../preload/model/waitwake.pml', import.meta.url)), 'pd-spin-');
const SKIP_MSG = 'SKIPPED: spin is not installed (apt-get install spin), the wait/notify model was not checked';
const FULL = process.env.PD_MODEL_FULL === '1';

// safety: a lost wake-up trips one of the watchdog's timeout assertions;
// ltl: the claim `complete` (<>[] nothing owed to any waiter); cycles: every
// run is finite and ends where the watchdog checks it (see SpinMode).
// Small runs compile at -O0 (gcc's time dominates); large ones at -O2.
function verify(defines: string[], mode: SpinMode, opt = '-O0', hashBits = 24): Promise<Verdict> {
  return SPIN.verify(defines, mode, { opt, hashBits });
}

// Every statement of every process is reachable: the sleeps, the re-check
// successes, both EOF paths, death at each point. The epoller loops forever,
// so only its end is unreached.
function expectAllReached(v: Verdict, procs: string[]): void {
  for (const p of procs) {
    const re =
      p === 'epoller'
        ? /unreached in proctype epoller\n\twaitwake\.pml:\d+, state \d+, "-end-"\n\t\(1 of \d+ states\)/
        : new RegExp(`unreached in proctype ${p}\\n\\t\\(0 of \\d+ states\\)`);
    expect(v.out, `unreached code in ${p}`).toMatch(re);
  }
}

const T = 600_000;
const summary = (v: Verdict): string => `${v.states} states stored, depth ${v.depth}, errors ${v.errors}`;
const BASE = ['consumer', 'producer', 'killer', 'network', 'watchdog'];

if (!HAVE_SPIN) console.warn(`test/model/waitwake: ${SKIP_MSG}`);

describe.skipIf(!HAVE_SPIN)(HAVE_SPIN ? 'wait/notify protocol model (spin)' : SKIP_MSG, () => {
  beforeAll(() => SPIN.setup());
  afterAll(() => SPIN.teardown());

  it.concurrent('one blocking waiter per side (N=2, K=5): no assertion, no lost wake-up, every statement reached', async ({ annotate }) => {
    const v = await verify(['NO_EPOLLER'], 'safety');
    expect(v.errors, v.out).toBe(0);
    expect(v.states).toBeGreaterThan(1_000_000); // the full default space, not a stub
    expectAllReached(v, BASE);
    await annotate(`safety, no epoller: ${summary(v)}`);
  }, T);

  it.concurrent('with the epoll waiter (N=1, K=2): no lost wake-up for either reader-side waiter, every statement reached', async ({ annotate }) => {
    const v = await verify(['N=1', 'K=2'], 'safety');
    expect(v.errors, v.out).toBe(0);
    expect(v.states).toBeGreaterThan(1_000_000);
    expectAllReached(v, [...BASE, 'epoller']);
    await annotate(`safety, epoller: ${summary(v)}`);
  }, T);

  it.concurrent('with the epoll waiter (N=1, K=1): LTL <>[] complete holds', async ({ annotate }) => {
    const v = await verify(['N=1', 'K=1'], 'ltl');
    expect(v.errors, v.out).toBe(0);
    await annotate(`ltl, epoller: ${summary(v)}`);
  }, T);

  it.concurrent('with the epoll waiter (N=1, K=1): no cycle at all, so every run ends where the watchdog looks', async ({ annotate }) => {
    const v = await verify(['N=1', 'K=1'], 'cycles');
    expect(v.errors, v.out).toBe(0);
    await annotate(`cycles, epoller: ${summary(v)}`);
  }, T);

  it.concurrent('one blocking waiter per side (N=2, K=3): LTL <>[] complete holds', async ({ annotate }) => {
    const v = await verify(['NO_EPOLLER', 'K=3'], 'ltl');
    expect(v.errors, v.out).toBe(0);
    await annotate(`ltl, no epoller: ${summary(v)}`);
  }, T);

  // Correct variants, small: README.md gives the full-size runs.
  const ok: string[][] = [
    ['N=1', 'K=1', 'POLL_KIND'],
    ['N=1', 'K=1', 'NO_SWITCH_DOORBELL'],
    ['N=1', 'K=1', 'NO_SPIN'],
  ];
  for (const defs of ok) {
    it.concurrent(`correct variant ${defs.join(' ')} verifies`, async () => {
      const v = await verify(defs, 'safety');
      expect(v.errors, v.out).toBe(0);
    }, T);
  }

  // Each broken variant and the assertion that must catch it. The watchdog
  // has one assertion per waiter, so the message names the waiter left
  // asleep with its condition true.
  const CONSUMER_LOST = /assertion violated \(c_stop\|\|\(\(got==published\)&&\(c_eof\|\| !\(\(fin\|\|wr_closed\)\)\)\)\)/;
  const PRODUCER_LOST = /assertion violated \(\(pdone\|\|dead\)\|\|\(c_stop&&/;
  const EPOLLER_LOST = /assertion violated {2}!\(\(\(\(head!=tail\)&& !\(ep_cur\)\)/;
  const READER_SIDE_LOST = new RegExp(`${CONSUMER_LOST.source}|${EPOLLER_LOST.source}`);
  const EARLY_EOF = /assertion violated \(\(got==published\)&&\(pdone\|\|dead\)\)/;
  const OUT_OF_ORDER = /assertion violated \(ring\[\(t%\d\)\]==\(got\+1\)\)/;
  const SPURIOUS_ERR = /assertion violated \(\(\(\(h\+\(2\*\d\)\)-t\)%\(2\*\d\)\)<=\d\)/;
  const SMALL = ['N=1', 'K=2'];
  const broken: Array<[string[], RegExp]> = [
    [['BROKEN_RX_NO_RECHECK'], CONSUMER_LOST],
    [['BROKEN_RX_NO_FENCE'], CONSUMER_LOST],
    [['BROKEN_TX_NO_RECHECK'], PRODUCER_LOST],
    [['BROKEN_EP_NO_RECHECK'], EPOLLER_LOST],
    [['BROKEN_TX_WAKE_NO_FENCE'], READER_SIDE_LOST],
    [['BROKEN_RX_WAKE_NO_FENCE'], PRODUCER_LOST],
    [['BROKEN_EP_DRAINS'], CONSUMER_LOST],
    // ring.c before issue 3's fix: the blocking reader's drain makes the
    // kernel drop the epoll waiter's edge (README.md, finding 2)
    [['BROKEN_WAIT_DRAINS'], EPOLLER_LOST],
    [['BROKEN_SOCK_EDGE_FORGOTTEN'], CONSUMER_LOST],
    [['BROKEN_FLAG_ARMED'], READER_SIDE_LOST],
    [['BROKEN_PRESWITCH_NO_ARM'], CONSUMER_LOST],
    [['BROKEN_RX_POLL_DOORBELL_ONLY'], CONSUMER_LOST],
    [['BROKEN_HANDOVER_ORDER'], OUT_OF_ORDER],
    [['BROKEN_EOF_NO_RECHECK'], EARLY_EOF],
    [['BROKEN_FIN_NO_SWITCH_RECHECK'], EARLY_EOF],
  ];
  for (const [defs, why] of broken) {
    it.concurrent(`broken variant ${defs.join(' ')} is caught`, async () => {
      const v = await verify([...SMALL, ...defs], 'safety');
      expect(v.errors, v.out).toBeGreaterThan(0);
      expect(v.out).toMatch(why);
    }, T);
  }

  // The C as written, where the model's default deviates from it: each is a
  // finding (README.md, "Findings"). When ring.c changes, these change too.
  it.concurrent('finding: pd_conn_ring_events loading head then tail can see a healthy ring as corrupt (EPOLLERR|EPOLLHUP)', async () => {
    const v = await verify(['N=2', 'K=2', 'EP_SPLIT_LOADS'], 'safety');
    expect(v.errors, v.out).toBeGreaterThan(0);
    expect(v.out).toMatch(SPURIOUS_ERR);
  }, T);

  // Larger sizes: PD_MODEL_FULL=1 (README.md lists their state counts).
  const full: Array<[string[], SpinMode]> = [
    [['N=2', 'K=2'], 'safety'],
    [['N=1', 'K=3'], 'safety'],
    [['N=2', 'K=3'], 'safety'],
    [['N=2', 'K=4'], 'safety'],
    [['N=2', 'K=3', 'POLL_KIND'], 'safety'],
    [['N=2', 'K=3', 'NO_SPIN'], 'safety'],
    [['N=2', 'K=3', 'NO_SWITCH_DOORBELL'], 'safety'],
    [['N=2', 'K=3', 'NO_READER_STOP'], 'safety'],
    [['N=1', 'K=2'], 'ltl'],
    [['N=2', 'K=2'], 'ltl'],
    [['N=1', 'K=2'], 'cycles'],
    [['NO_EPOLLER', 'N=1'], 'safety'],
    [['NO_EPOLLER', 'N=3'], 'safety'],
    [['NO_EPOLLER', 'K=6'], 'safety'],
    [['NO_EPOLLER', 'N=3', 'K=6'], 'safety'],
    [['NO_EPOLLER'], 'ltl'],
    [['NO_EPOLLER'], 'cycles'],
  ];
  for (const [defs, mode] of full) {
    it.skipIf(!FULL).concurrent(`full size (PD_MODEL_FULL=1): ${defs.join(' ')} ${mode}`, async ({ annotate }) => {
      const v = await verify(defs, mode, '-O2', 26);
      expect(v.errors, v.out).toBe(0);
      await annotate(`${mode} ${defs.join(' ')}: ${summary(v)}`);
    }, 3_600_000);
  }
});
