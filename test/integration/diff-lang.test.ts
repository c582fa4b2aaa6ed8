// Checks: Python's socket module (makefile().readline, sendall, settimeout) and Node's net.Socket (data/end/finish/close events, write callbacks, allowHalfOpen, write() back-pressure and 'drain') see the same behaviour on an upgraded connection as on plain kernel TCP.
import { it } from 'vitest';
import { BEHAVE_MJS, BEHAVE_PY, expectSameBehaviour, type Scenario } from '../helpers/diff.js';
import { setupPdTest } from '../helpers/lifecycle.js';

const pd = setupPdTest([BEHAVE_PY, BEHAVE_MJS]);

const CASES: Scenario[] = [
  { name: 'py-lines', program: 'python', writes: 's2c', what: 'Python: sendall in irregular chunks, makefile().readline() of every line, b"" at EOF' },
  { name: 'py-timeout', program: 'python', writes: 'both', what: 'Python: settimeout(0.2) on idle raises TimeoutError, settimeout(0) raises BlockingIOError, blocking sendall of 1 MiB' },
  { name: 'py-sendall-timeout', program: 'python', writes: 'c2s', what: 'Python: sendall(64 MiB) with settimeout(0.3) to a peer not reading raises TimeoutError; what arrived is a prefix' },
  { name: 'node-halfopen', program: 'node', writes: 'both', what: "Node: allowHalfOpen: 'end', readyState, the reply after 'end', write callbacks, 'finish', 'close'" },
  { name: 'node-backpressure', program: 'node', writes: 'c2s', what: "Node: write() returns false and 'drain' follows while the peer pauses; 32 MiB arrive intact" },
];

for (const c of CASES) {
  it(`${c.name}: ${c.what}`, async () => {
    await expectSameBehaviour(c, pd());
  });
}
