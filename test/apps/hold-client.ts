// The two-phase clients of node-http and python-asyncio: a warm-up, then (on
// "go") the verified bytes, then, with the connections still open, pd status
// must show them on the ring and the rings must have carried those bytes.
import { expect } from 'vitest';
import { findConnection, pdStatus, type PdEnv } from '../helpers/pd.js';
import type { Proc } from '../helpers/proc.js';
import { expectConnOnRing } from './app-helpers.js';

export async function twoPhase(pd: PdEnv, client: Proc, conns: number): Promise<void> {
  const ready = await client.waitStdout(/^(\{"phase":\s*"ready".*\})\n/m, 30_000);
  const { locals } = JSON.parse(ready[1]!) as { locals: string[] };
  expect(locals.length, ready[1]).toBe(conns);
  // Informational: a connection that went idle before its assignment arrived
  // attaches at its next call, so it may still show 'tcp' here.
  const before = pdStatus(pd.sock);
  const states = locals.map((l) => `${l}: ${findConnection(before, l)?.transport ?? 'absent'} (${findConnection(before, l)?.reason ?? ''})`);

  client.child.stdin!.write('go\n');
  const done = await client.waitStdout(/^(\{"ok":\s*true.*\})\n/m, 60_000);
  const { bytes } = JSON.parse(done[1]!) as { bytes: number };
  let ring0 = 0;
  let ring1 = 0;
  for (const l of locals) {
    const c = await expectConnOnRing(pd.sock, l);
    ring0 += c.ringBytes[0];
    ring1 += c.ringBytes[1];
  }
  console.log(`${client.name}: after the warm-up ${states.join('; ')}; then ${bytes} B verified each way; ring bytes ${ring0} up, ${ring1} down`);
  // what went before the switch travelled by TCP: the first message or so of phase 2
  expect(ring0, 'bytes the client sent over the rings').toBeGreaterThanOrEqual(0.9 * bytes);
  expect(ring1, 'bytes the server sent back over the rings').toBeGreaterThanOrEqual(0.9 * bytes);
  client.closeStdin();
  await client.waitOk(30_000);
}
