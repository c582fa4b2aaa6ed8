// Checks: with no controller reachable (PD_SOCKET in an unwritable place), programs under pdrun run on plain TCP and verify, print nothing extra on stdout, and each pdrun prints exactly one warning line (mentioning pipedevice) on stderr.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { requireBuild } from '../helpers/build-state.js';
import { MiB, KiB, runClient, startServer, type ShortResult, type StreamResult } from '../helpers/echo.js';
import { killAll } from '../helpers/proc.js';

// /proc refuses mkdir with ENOENT (not EACCES/EPERM), the nastiest unwritable place;
// PD_TEST_NOCTL_SOCKET overrides it (e.g. /sys/pdnope/pd.sock, which gives EPERM).
const env = { PD_SOCKET: process.env.PD_TEST_NOCTL_SOCKET ?? '/proc/pdnope/pd.sock' };

beforeEach(() => requireBuild());
afterEach(async () => {
  await killAll();
});

function oneWarningLine(stderr: string, who: string): void {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, `${who} stderr:\n${stderr}`).toHaveLength(1);
  expect(lines[0], `${who} stderr`).toMatch(/pipedevice/i);
}

it('stream: both ends under pdrun, no controller: plain TCP, one warning line each', async () => {
  const server = await startServer(['--max-conns', '1'], { pdrun: true, env });
  const { result, stdout, stderr } = await runClient<StreamResult>(
    ['stream', '127.0.0.1', String(server.port), String(64 * MiB), String(64 * KiB)],
    { pdrun: true, env },
  );
  expect(result).toMatchObject({ ok: true, bytes: 64 * MiB, verify: 'full' });
  // exactly the JSON line: one line, starting with '{', newline-terminated
  expect(stdout).toMatch(/^\{[^\n]*\}\n$/);
  oneWarningLine(stderr, 'client pdrun');
  const s = await server.proc.waitOk(30_000);
  expect(s.stdout).toBe(`port ${server.port}\n`);
  oneWarningLine(s.stderr, 'server pdrun');
});

it('short connections under pdrun with no controller stay byte-exact', async () => {
  const server = await startServer(['--max-conns', '100'], { pdrun: true, env });
  const { result, stderr } = await runClient<ShortResult>(
    ['short', '127.0.0.1', String(server.port), '100', '--seed', '3'],
    { pdrun: true, env },
  );
  expect(result).toMatchObject({ ok: true, conns: 100 });
  oneWarningLine(stderr, 'client pdrun');
  const s = await server.proc.waitOk(30_000);
  oneWarningLine(s.stderr, 'server pdrun');
});
