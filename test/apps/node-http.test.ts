// Checks: a plain Node.js http server and client (libuv: epoll_ctl/epoll_pwait), both under pdrun, once their two keep-alive connections are on the ring, exchange POST bodies of 0 B to 1 MiB echoed back byte-exact, over the rings.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'vitest';
import { setupPdTest } from '../helpers/lifecycle.js';
import { spawnProc } from '../helpers/proc.js';
import { twoPhase } from './hold-client.js';

const pd = setupPdTest();
const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

it('serves verified requests on the ring', async () => {
  const opts = { pdrun: true, env: pd().env };
  const server = spawnProc(process.execPath, [path.join(FIX, 'http-server.mjs')], { ...opts, name: 'pdrun node http-server' });
  const port = Number((await server.waitStdout(/^port (\d+)\n/, 20_000))[1]);
  const client = spawnProc(process.execPath, [path.join(FIX, 'http-client.mjs'), String(port)], { ...opts, stdinPipe: true, name: 'pdrun node http-client' });
  await twoPhase(pd(), client, 2);
  server.kill('SIGTERM');
  await server.wait(20_000);
});
