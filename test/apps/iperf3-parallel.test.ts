// Checks: iperf3 with server and client under pdrun, four streams (-P 4), 64 KiB writes for 1 s, completes, reports throughput > 0, and its data connections were on the ring.
import { it } from 'vitest';
import { setupPdTest } from '../helpers/lifecycle.js';
import { iperf3UnderPdrun } from './iperf3-run.js';

const pd = setupPdTest();

it('completes four streams (-P 4) with its data on the ring', async () => {
  await iperf3UnderPdrun(pd(), ['-P', '4'], 4);
});
