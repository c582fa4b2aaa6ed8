// Checks: one upgraded connection, two threads of one process waiting on it at once, thread A blocked in recv (send) and thread B in epoll_wait (edge- and level-triggered) or poll for readability (writability): when the peer sends 2 bytes (frees the room it was filled with), A returns with its byte and B is told about what is left, every round, as on kernel TCP; the connection is on the ring both ways before the rounds start (test/progs/mt_wake.c; issue 3, the blocking waiter draining the doorbell).
import { expect, it } from 'vitest';
import path from 'node:path';
import { connOf } from '../helpers/ev.js';
import { PROGS_BIN } from '../helpers/paths.js';
import { pdStatus, type PdConnection } from '../helpers/pd.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { parseJsonLine, sleep, spawnProc } from '../helpers/proc.js';

const MT_WAKE = path.join(PROGS_BIN, 'mt_wake');
const pd = setupPdTest([MT_WAKE]);

const ROUNDS = 10;
const MODES = ['rx-epoll-et', 'rx-epoll-lt', 'rx-poll', 'tx-epoll-et', 'tx-epoll-lt', 'tx-poll'] as const;

interface MtWakeResult {
  ok: boolean;
  mode: string;
  rounds: number;
  done: number;
  stuck: string;
  error: string;
  biased: boolean;
}

function onRingBothWays(c: PdConnection | undefined): boolean {
  return !!c && c.transport === 'ring' && c.attached[0] && c.attached[1] && c.switched[0] && c.switched[1] &&
    c.ringBytes[0] > 0 && c.ringBytes[1] > 0;
}

async function run(mode: string, pdrun: boolean): Promise<{ result: MtWakeResult; before?: PdConnection }> {
  const proc = spawnProc(MT_WAKE, [mode, '--rounds', String(ROUNDS), '--timeout', '60'], {
    pdrun,
    env: pd().env,
    stdinPipe: true,
    name: `${pdrun ? 'pdrun ' : ''}mt_wake ${mode}`,
  });
  const local = (await proc.waitStdout(/^= local (\S+)\n= ready$/m, 20_000))[1]!;
  let before: PdConnection | undefined;
  if (pdrun) {
    // The warm-up echoes run until both ends attached and switched both
    // directions: from then on every byte of the rounds goes by the ring.
    const deadline = Date.now() + 15_000;
    for (;;) {
      before = connOf(pdStatus(pd().sock), local);
      if (onRingBothWays(before)) break;
      if (Date.now() > deadline) throw new Error(`${mode}: connection ${local} not on the ring both ways: ${JSON.stringify(before)}\n${proc.stderr}`);
      await sleep(20);
    }
  }
  proc.writeStdin('go\n');
  const exit = await proc.wait(90_000);
  const result = parseJsonLine<MtWakeResult>(exit.stdout.split('\n').filter((l) => !l.startsWith('= ')).join('\n'), 'mt_wake');
  if (exit.stderr.trim()) console.log(`${proc.name} stderr:\n${exit.stderr.trim()}`);
  return { result, before };
}

for (const mode of MODES) {
  it(`${mode}: a wake-up the blocking thread takes is not lost for the thread in ${mode.slice(3)} (kernel TCP, then pdrun on the ring)`, async () => {
    const tcp = await run(mode, false);
    expect(tcp.result, `kernel TCP (the reference): ${JSON.stringify(tcp.result)}`).toMatchObject({ ok: true, done: ROUNDS });

    const ring = await run(mode, true);
    console.log(`${mode}: ${ring.result.done}/${ROUNDS} rounds on the ring (threads ordered: ${ring.result.biased}); ` +
      `before the rounds ${JSON.stringify(ring.before?.ringBytes)} ring bytes`);
    expect(ring.result, `under pdrun: ${JSON.stringify(ring.result)}`).toMatchObject({ ok: true, done: ROUNDS, stuck: '' });
    // When the connection is still listed after the run, the rounds' bytes
    // went by the ring: the peer connects (role 0, direction 0) and sends in
    // the rx modes; the program accepts (role 1) and sends in the tx modes.
    const after = connOf(pdStatus(pd().sock), ring.before!.ends[0]!.local);
    const d = mode.startsWith('rx') ? 0 : 1;
    if (after && after.transport === 'ring') expect(after.ringBytes[d]).toBeGreaterThan(ring.before!.ringBytes[d]);
  });
}
