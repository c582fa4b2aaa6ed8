// Checks: a Python asyncio echo server and client (selectors: epoll), both under pdrun, once their two connections are on the ring, echo messages of 1 B to 1 MiB back byte-exact, over the rings.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'vitest';
import { setupPdTest } from '../helpers/lifecycle.js';
import { spawnProc } from '../helpers/proc.js';
import { python3, requireCommand } from './app-helpers.js';
import { twoPhase } from './hold-client.js';

const pd = setupPdTest();
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'asyncio_echo.py');

it('echoes verified messages on the ring', async () => {
  requireCommand('python3', 'python3');
  const opts = { pdrun: true, env: pd().env };
  const server = spawnProc(python3(), [SCRIPT, 'server'], { ...opts, name: 'pdrun python3 asyncio server' });
  const port = Number((await server.waitStdout(/^port (\d+)\n/, 20_000))[1]);
  const client = spawnProc(python3(), [SCRIPT, 'client', String(port)], { ...opts, stdinPipe: true, name: 'pdrun python3 asyncio client' });
  await twoPhase(pd(), client, 2);
  server.kill('SIGTERM');
  await server.wait(20_000);
});
