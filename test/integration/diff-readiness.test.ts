// Checks: readiness of an upgraded connection equals plain kernel TCP's at fixed points (before data, after data, after a partial read, after the peer's SHUT_WR, after the full drain) in poll, ppoll, select, pselect, poll with RDNORM/WRNORM, epoll LT, IN-only, ET, ONESHOT (+ re-arm), two epoll sets, an epoll set inside another or polled (at fixed points and in blocking waits), a set mixing the socket and a pipe, a registration made before the upgrade; and writability: POLLOUT clear once a write hit EAGAIN, back once the peer drained (booleans only: how many bytes fill a socket is the kernel's buffer size on TCP and the ring size under pdrun).
import { it } from 'vitest';
import { BEHAVE, expectSameBehaviour, type Scenario } from '../helpers/diff.js';
import { setupPdTest } from '../helpers/lifecycle.js';

const pd = setupPdTest([BEHAVE]);

const CASES: Scenario[] = [
  { name: 'poll', writes: 'c2s', what: 'poll(IN|OUT|RDHUP|PRI) revents at each step' },
  { name: 'ppoll', writes: 'c2s', what: 'ppoll revents at each step' },
  { name: 'select', writes: 'c2s', what: 'select read/write/except sets at each step' },
  { name: 'pselect', writes: 'c2s', what: 'pselect sets at each step' },
  { name: 'poll-rdnorm', writes: 'c2s', what: 'poll(RDNORM|WRNORM) revents at each step' },
  { name: 'epoll-lt', writes: 'c2s', what: 'epoll level-triggered IN|OUT|RDHUP, then EPOLL_CTL_DEL' },
  { name: 'epoll-in', writes: 'c2s', what: 'epoll IN only: no OUT or RDHUP reported' },
  { name: 'epoll-et', writes: 'c2s', what: 'epoll edge-triggered IN|OUT|RDHUP: one report per edge, with the full mask' },
  { name: 'epoll-oneshot', writes: 'c2s', what: 'EPOLLONESHOT: one report, silence until EPOLL_CTL_MOD re-arms' },
  { name: 'epoll-two-sets', writes: 'c2s', what: 'one socket in two epoll sets (LT and ET), each reports as TCP does' },
  { name: 'epoll-nested', writes: 'c2s', what: 'an epoll set inside another: the outer one reports the inner as readable' },
  { name: 'epoll-polled', writes: 'c2s', what: 'poll on an epoll fd holding the socket reports it readable' },
  { name: 'epoll-mixed', writes: 'c2s', what: 'a set holding the socket and a pipe: every ready fd is reported, level-triggered' },
  { name: 'epoll-early', writes: 'c2s', what: 'a registration made before the connection was upgraded' },
  { name: 'epoll-exclusive-pwait', writes: 'c2s', what: 'EPOLLEXCLUSIVE passed through (MOD refused with EINVAL), epoll_pwait and epoll_pwait2 with a mask, timeouts and a blocking wait' },
  { name: 'epoll-nested-wait', writes: 'c2s', what: 'blocking waits on an epoll set nested in another (LT and ET), polled and selected: each wakes for ring bytes, none for nothing' },
  { name: 'writable-poll', writes: 's2c', what: 'poll(POLLOUT): writable idle, not once full (EAGAIN), again after the peer drained' },
  { name: 'writable-poll-wrnorm', writes: 's2c', what: 'poll(POLLWRNORM): the same' },
  { name: 'writable-select', writes: 's2c', what: 'select write set: the same' },
  { name: 'writable-epoll-lt', writes: 's2c', what: 'epoll LT EPOLLOUT: the same' },
  { name: 'writable-epoll-et', writes: 's2c', what: 'epoll ET EPOLLOUT: one edge idle, none while full, one after the drain' },
];

// Known differences, documented in docs/architecture.md (Readiness, known
// limits), would run as expected failures: when the shim learns one, it
// fails and must move back to the plain list. None today.
const KNOWN: Record<string, string> = {
};

for (const c of CASES) {
  const t = KNOWN[c.name] ? it.fails : it;
  t(`${c.name}: ${c.what}${KNOWN[c.name] ? ` (known difference: ${KNOWN[c.name]})` : ''}`, async () => {
    await expectSameBehaviour(c, pd());
  });
}
