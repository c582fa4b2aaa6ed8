// Checks: two Python asyncio connections left idle right after connect() (both processes then asleep in epoll_wait) are still upgraded: pd status shows them on the ring within 2 s, with no traffic at all.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { setupPdTest } from '../helpers/lifecycle.js';
import { findConnection, pdStatusUntil } from '../helpers/pd.js';
import { spawnProc } from '../helpers/proc.js';
import { python3, requireCommand } from './app-helpers.js';

const pd = setupPdTest();
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'asyncio_echo.py');

it('upgrades connections that are idle when their assignment arrives', async () => {
  requireCommand('python3', 'python3');
  const opts = { pdrun: true, env: pd().env };
  const server = spawnProc(python3(), [SCRIPT, 'server'], { ...opts, name: 'pdrun python3 asyncio server' });
  const port = Number((await server.waitStdout(/^port (\d+)\n/, 20_000))[1]);
  // warm-up 0: asyncio's non-blocking connect (EINPROGRESS, epoll for
  // EPOLLOUT, getsockopt SO_ERROR), then the client waits on stdin and the
  // server in epoll_wait. Before 68a70b0 the client end was only reported at
  // its first send/recv, and an end asleep in epoll_wait when its ASSIGN
  // arrived attached only at its next call on the socket.
  const client = spawnProc(python3(), [SCRIPT, 'client', String(port), '0'], { ...opts, stdinPipe: true, name: 'pdrun python3 asyncio client' });
  const ready = await client.waitStdout(/^(\{"phase":\s*"ready".*\})\n/m, 30_000);
  const { locals } = JSON.parse(ready[1]!) as { locals: string[] };
  const s = await pdStatusUntil(pd().sock, (x) => locals.every((l) => findConnection(x, l)?.transport === 'ring'), 2000);
  for (const l of locals) {
    const c = findConnection(s, l);
    expect(c?.transport, `idle connection ${l}: ${JSON.stringify(c ?? s.connections)}`).toBe('ring');
  }
  client.closeStdin();
  client.kill();
  server.kill('SIGTERM');
  await server.wait(20_000);
});
