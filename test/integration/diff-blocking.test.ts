// Checks: blocking and non-blocking semantics on an upgraded connection match plain kernel TCP: SO_RCVTIMEO and SO_SNDTIMEO end in EAGAIN, O_NONBLOCK set by fcntl, ioctl(FIONBIO) or SOCK_NONBLOCK gives EAGAIN when empty and when full, a signal interrupts a blocking recv/poll/epoll_wait/select/write exactly when TCP's would be (SA_RESTART of the handler that ran, on the thread it ran on, with handlers set by sigaction, signal() or sysv_signal mixed; SO_RCVTIMEO) and the dispositions read back as the program set them, and SO_RCVLOWAT holds readiness (poll, epoll LT/ET, lowered at run time) and blocking reads and peeks, and reads back.
import { it } from 'vitest';
import { BEHAVE, expectSameBehaviour, type Scenario } from '../helpers/diff.js';
import { setupPdTest } from '../helpers/lifecycle.js';

const pd = setupPdTest([BEHAVE]);

const CASES: Scenario[] = [
  { name: 'rcvtimeo', writes: 'c2s', what: 'SO_RCVTIMEO 200 ms on an idle socket: EAGAIN after about the timeout; MSG_WAITALL returns the partial count' },
  { name: 'sndtimeo', writes: 'c2s', what: 'SO_SNDTIMEO 200 ms, peer not reading: writes end in EAGAIN; every byte arrives' },
  { name: 'nonblock-fcntl', writes: 'both', what: 'O_NONBLOCK by fcntl: EAGAIN on empty and on full, writable again after the peer drains' },
  { name: 'nonblock-fionbio', writes: 'both', what: 'O_NONBLOCK by ioctl(FIONBIO): the same' },
  { name: 'nonblock-sockflag', writes: 'both', what: 'SOCK_NONBLOCK socket and accept4: the same' },
  { name: 'eintr-norestart', writes: 'c2s', what: 'SIGALRM handler without SA_RESTART interrupts a blocking recv: EINTR' },
  { name: 'eintr-restart', writes: 'c2s', what: 'SIGALRM handler with SA_RESTART: the recv restarts and gets the data' },
  { name: 'eintr-restart-timeo', writes: 'c2s', what: 'SA_RESTART but SO_RCVTIMEO set: EINTR (signal(7))' },
  { name: 'eintr-restart-mixed', writes: 'c2s', what: 'SA_RESTART on SIGALRM, another handler without it that never fires: the recv restarts' },
  { name: 'eintr-signal-mixed', writes: 'c2s', what: 'signal() (SA_RESTART) on SIGALRM, sigaction without SA_RESTART on SIGUSR1: EINTR when SIGUSR1 interrupts the recv, restarted when SIGALRM does; dispositions read back as set (handler, flags, mask), SA_SIGINFO and SA_RESETHAND' },
  { name: 'eintr-thread-mixed', writes: 'c2s', what: 'another thread handles a signal without SA_RESTART, then an SA_RESTART one interrupts the recv: it restarts' },
  { name: 'eintr-poll', writes: 'c2s', what: 'poll, epoll_wait and select are never restarted: EINTR even with SA_RESTART' },
  { name: 'eintr-send', writes: 'c2s', what: 'a blocking 32 MiB write to a peer not reading, interrupted: returns the partial count' },
  { name: 'rcvlowat', writes: 'c2s', what: 'SO_RCVLOWAT 100: not readable with 50 bytes, recv waits until SO_RCVTIMEO; readable with 110' },
  { name: 'rcvlowat-epoll', writes: 'c2s', what: 'SO_RCVLOWAT with epoll LT and ET, a MSG_PEEK that waits for the mark, a lowered mark (an edge), 0 reads back as 1' },
];

// Known differences, documented in docs/architecture.md (known limits). They
// run as expected failures: when the shim learns them, they fail and must move
// back to the plain list.
const KNOWN: Record<string, string> = {};

for (const c of CASES) {
  const t = KNOWN[c.name] ? it.fails : it;
  t(`${c.name}: ${c.what}${KNOWN[c.name] ? ` (known difference: ${KNOWN[c.name]})` : ''}`, async () => {
    await expectSameBehaviour(c, pd());
  });
}
