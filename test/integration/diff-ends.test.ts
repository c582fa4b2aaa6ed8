// Checks: the ends of an upgraded connection look as on plain kernel TCP: EOF after the last byte, shutdown half-close from either side with the other direction still flowing, SHUT_RD, writing after the peer closed (EPIPE with and without SIGPIPE), SO_LINGER {1,0} resets, FIONREAD/SIOCINQ/SIOCOUTQ, and getsockopt/TCP_INFO still answering.
import { it } from 'vitest';
import { BEHAVE, expectSameBehaviour, type Scenario } from '../helpers/diff.js';
import { setupPdTest } from '../helpers/lifecycle.js';

const pd = setupPdTest([BEHAVE]);

const CASES: Scenario[] = [
  { name: 'eof', writes: 'c2s', what: 'read returns the bytes, then 0 at EOF and again; poll at EOF' },
  { name: 'halfclose', writes: 'both', what: 'client SHUT_WR: server reads to EOF and still writes; client writes after its own SHUT_WR get EPIPE (SIGPIPE only without MSG_NOSIGNAL)' },
  { name: 'halfclose-rev', writes: 'both', what: 'the same with the accepting end shutting down' },
  { name: 'shut-rd', writes: 'both', what: 'SHUT_RD with bytes queued: they are still read, then 0; writing still works' },
  { name: 'epipe', writes: 'c2s', what: 'write after the peer closed: the first succeeds, then EPIPE with SIGPIPE; SO_ERROR' },
  { name: 'epipe-nosignal', writes: 'c2s', what: 'send(MSG_NOSIGNAL) after the peer closed: the first succeeds, then EPIPE, no signal' },
  { name: 'linger0', writes: 'none', what: 'SO_LINGER {1,0} close: the peer sees the reset (poll, ECONNRESET, then 0, EPIPE)' },
  { name: 'fionread', writes: 'c2s', what: 'FIONREAD and SIOCINQ count the waiting bytes, before and after partial reads' },
  { name: 'siocoutq', writes: 'both', what: 'SIOCOUTQ: bytes the peer has received (read or not) are out of the send queue' },
  { name: 'sockopts', writes: 'none', what: 'SO_ERROR, SO_TYPE, TCP_INFO (ESTABLISHED), TCP_NODELAY, getpeername, fstat, F_GETFL still answer' },
];

for (const c of CASES) {
  it(`${c.name}: ${c.what}`, async () => {
    await expectSameBehaviour(c, pd());
  });
}
