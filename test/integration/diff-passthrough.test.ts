// Checks: sockets the shim passes through behave as without it, in processes whose TCP connection is upgraded meanwhile: a UDP echo (FIONREAD, MSG_TRUNC), a Unix stream and seqpacket socket pair, a pipe (EOF, EPIPE with SIGPIPE).
import { it } from 'vitest';
import { BEHAVE, expectSameBehaviour, type Scenario } from '../helpers/diff.js';
import { setupPdTest } from '../helpers/lifecycle.js';

const pd = setupPdTest([BEHAVE]);

const CASES: Scenario[] = [
  { name: 'udp', writes: 'none', what: 'UDP datagrams echoed between the two processes; FIONREAD, poll, MSG_TRUNC' },
  { name: 'unix-pair', writes: 'none', what: 'AF_UNIX stream and seqpacket pairs: FIONREAD, poll, PEEK, SHUT_WR, EPIPE' },
  { name: 'pipe', writes: 'none', what: 'a pipe: FIONREAD, poll, EAGAIN, EOF, EPIPE with SIGPIPE' },
];

for (const c of CASES) {
  it(`${c.name}: ${c.what}`, async () => {
    await expectSameBehaviour(c, pd());
  });
}
