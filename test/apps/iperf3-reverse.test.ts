// Checks: iperf3 with server and client under pdrun, one stream, server to client (-R), 64 KiB writes for 1 s, completes, reports throughput > 0, and its data connections were on the ring.
import { it } from 'vitest';
import { setupPdTest } from '../helpers/lifecycle.js';
import { iperf3UnderPdrun } from './iperf3-run.js';

const pd = setupPdTest();

it('completes one stream, server to client (-R) with its data on the ring', async () => {
  await iperf3UnderPdrun(pd(), ['-R'], 1);
});
