// Checks: data-path calls on an upgraded connection (MSG_PEEK, MSG_WAITALL, MSG_DONTWAIT, MSG_TRUNC, readv/writev and recvmsg/sendmsg with 16+ odd iovecs, 10000 1-byte writes, one 16 MiB write, recvmmsg/sendmmsg, sendfile, splice, the _FORTIFY_SOURCE __*_chk variants) return the same values, errnos and bytes as on plain kernel TCP.
import { execFileSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { BEHAVE, BEHAVE_FORTIFY, expectSameBehaviour, type Scenario } from '../helpers/diff.js';
import { setupPdTest } from '../helpers/lifecycle.js';

const pd = setupPdTest([BEHAVE, BEHAVE_FORTIFY]);

const CASES: Scenario[] = [
  { name: 'msg-more', writes: 'c2s', what: 'MSG_MORE on send and sendmsg: the pieces arrive whole and in order with the last send' },
  { name: 'peek', writes: 'c2s', what: 'MSG_PEEK shows the bytes a read then returns; PEEK|DONTWAIT on empty is EAGAIN' },
  { name: 'waitall', writes: 'c2s', what: 'MSG_WAITALL gathers 1000 small writes; at EOF it returns the partial count' },
  { name: 'dontwait', writes: 'c2s', what: 'MSG_DONTWAIT on empty is EAGAIN (also for a 0-byte recv), zero-length calls' },
  { name: 'trunc', writes: 'c2s', what: 'MSG_TRUNC with a NULL buffer discards bytes' },
  { name: 'iov', writes: 'c2s', what: 'writev/sendmsg and readv/recvmsg with 16-19 iovecs of odd sizes, msghdr fields' },
  { name: 'tiny-writes', writes: 'c2s', what: '10000 writes of 1 byte arrive complete and in order' },
  { name: 'big-write', writes: 'c2s', what: 'one 16 MiB write returns 16 MiB; 1000-byte reads get every byte' },
  { name: 'mmsg', writes: 'c2s', what: 'sendmmsg of 4 messages; recvmmsg with MSG_WAITFORONE fills 4 entries and writes msg_len/msg_flags' },
  { name: 'sendfile', writes: 'c2s', what: 'sendfile of a whole file and from an offset: returns, offsets, file position' },
  { name: 'splice', writes: 'c2s', what: 'splice file -> pipe -> socket and socket -> pipe; SPLICE_F_NONBLOCK on an empty pipe is EAGAIN' },
  { name: 'chk', writes: 'c2s', what: 'read/recv/recvfrom/poll on stack buffers (plain build)' },
];

for (const c of CASES) {
  it(`${c.name}: ${c.what}`, async () => {
    await expectSameBehaviour(c, pd());
  });
}

it('chk under _FORTIFY_SOURCE=2: __read_chk, __recv_chk, __recvfrom_chk and __poll_chk behave as on TCP', async () => {
  const syms = execFileSync('nm', ['-D', '--undefined-only', BEHAVE_FORTIFY], { encoding: 'utf8' });
  for (const s of ['__read_chk', '__recv_chk', '__recvfrom_chk', '__poll_chk'])
    expect(syms, `${BEHAVE_FORTIFY} does not call ${s}: the fortified build did not take`).toContain(s);
  await expectSameBehaviour({ name: 'chk', writes: 'c2s', what: '', program: 'c-fortify' }, pd());
});
