// Checks: descriptors and processes on an upgraded connection behave as on plain kernel TCP: dup/dup2/dup3/F_DUPFD_CLOEXEC with the original closed, fork after the upgrade with the child (or the parent) going on alone, fork with both writing in turn, fork with both reading in turns and at once, TCP bytes owed at the fork, a connection not attached at the fork, a fork while another thread waits in recv, three sender threads and one receiver per end at once (counts, per-sender order, integrity), close() in one thread while another waits in recv.
import { it } from 'vitest';
import { BEHAVE, expectSameBehaviour, type Scenario } from '../helpers/diff.js';
import { setupPdTest } from '../helpers/lifecycle.js';

const pd = setupPdTest([BEHAVE]);

const CASES: Scenario[] = [
  { name: 'dup', writes: 'both', what: 'dup, dup2, dup3, F_DUPFD_CLOEXEC: close the original, go on on the dups; EOF after the last one' },
  { name: 'fork-child', writes: 'both', what: 'fork after the upgrade: the parent closes, the child reads, writes, closes; the peer gets EOF' },
  { name: 'fork-parent', writes: 'both', what: 'fork after the upgrade: the child closes, the parent goes on' },
  { name: 'fork-both', writes: 's2c', what: 'fork after the upgrade: parent writes, then child writes; the peer gets both in order' },
  { name: 'fork-readers-turns', writes: 'c2s', what: 'fork after the upgrade: parent and child read in turns (peek, poll, FIONREAD, MSG_WAITALL), then both block at once and two pieces come: each piece to one reader, none twice; both see EOF' },
  { name: 'fork-readers-race', writes: 'c2s', what: 'fork after the upgrade: parent (blocking recv, readv, MSG_WAITALL) and child (poll, epoll LT and ET in turn + MSG_DONTWAIT) read 2 MiB at once until EOF: their pieces interleave into exactly the stream' },
  { name: 'fork-readers-owed', writes: 'none', what: 'on a second connection, TCP bytes owed at the fork: parent, child, parent read in turns across the TCP-to-ring handover (FIONREAD, poll, MSG_WAITALL)' },
  { name: 'fork-unattached', writes: 'none', what: 'the same, with the fork before the second connection attached: it stays on TCP in both processes, parent and child read their pieces' },
  { name: 'fork-while-recv', writes: 'c2s', what: 'fork while a thread of the parent waits in recv: the child reads (EAGAIN) and closes at once, then the parent thread gets the bytes' },
  { name: 'threads', writes: 'both', what: 'three sender threads and a receiver thread on each end at once' },
  { name: 'close-while-recv', writes: 'c2s', what: 'close() while another thread waits in recv: the recv still gets the data sent later' },
];

// Known differences, documented in docs/architecture.md (known limits). They
// run as expected failures: when the shim learns them, they fail and must move
// back to the plain list.
const KNOWN: Record<string, string> = {
};

for (const c of CASES) {
  const t = KNOWN[c.name] ? it.fails : it;
  t(`${c.name}: ${c.what}${KNOWN[c.name] ? ` (known difference: ${KNOWN[c.name]})` : ''}`, async () => {
    await expectSameBehaviour(c, pd());
  });
}
