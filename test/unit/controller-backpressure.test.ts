// Checks the controller's ordered send queue: when a shim does not read its
// session socket, answers queue up in the controller (EAGAIN) and later arrive
// all, in order, with the session page's seq counting every one of them.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SESSION_PAGE, constant, offsetOf } from '../../src/datapath/layout.js';
import { closeQuietly, eventfd, recvWithFds, sendWithFds } from '../../src/datapath/libc.js';
import { Mapping } from '../../src/datapath/shm.js';
import { decode, encode } from '../../src/control/protocol.js';
import { ControllerProc, FakeShim, sleep, until } from './fake-shim.js';

const N = 3000;

describe('back-pressure', () => {
  let ctl: ControllerProc;
  beforeEach(async () => {
    ctl = await ControllerProc.start(['--log', 'info']);
  });
  afterEach(async () => {
    await ctl.stop();
  });

  it(`${N} answers to a shim that reads late all arrive, in order`, async () => {
    const shim = new FakeShim(ctl.sock);
    const { pageFd } = await shim.hello();
    const page = new Mapping(pageFd, constant('SESSION_PAGE_SIZE'));
    const notTcp = eventfd();
    for (let i = 1; i <= N; i++) {
      const m = encode({ type: 'conn-report', connId: BigInt(i), origin: constant('ORIGIN_CONNECT') });
      // Our own send buffer fills too: wait for the controller to drain it.
      while (!sendWithFds(shim.fd, m, [notTcp])) await sleep(1);
    }
    closeQuietly(notTcp);
    // Let the controller answer everything it can; the socket fills and it queues.
    await until('all answers sent or queued', async () => (await ctl.status()).sessions[0]?.connections === N, 10_000);
    const seqBefore = page.load64(offsetOf(SESSION_PAGE, 'seq'));
    expect(seqBefore).toBeLessThan(BigInt(N + 1)); // some answers are still waiting in the controller
    let next = 1n;
    await until(`${N} declines`, () => {
      for (;;) {
        const r = recvWithFds(shim.fd, 256);
        if (r === null) return next > BigInt(N);
        const d = decode(r.data, r.fds.length);
        if (!d.ok || d.msg.type !== 'decline') throw new Error(`unexpected message ${JSON.stringify(d)}`);
        if (d.msg.connId !== next) throw new Error(`out of order: got ${d.msg.connId}, expected ${next}`);
        next++;
      }
    }, 10_000);
    expect(page.load64(offsetOf(SESSION_PAGE, 'seq'))).toBe(BigInt(N + 1));
    expect(await shim.quiet(100)).toBe(true);
    page.unmap();
    closeQuietly(pageFd);
    shim.close();
  });
});
