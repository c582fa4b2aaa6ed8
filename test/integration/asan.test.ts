// Checks: under the ASan/UBSan build of the shim (preload/libpd-asan.so) a 64 MiB stream (upgraded to the ring) and 200 short connections verify byte-exact, with no AddressSanitizer or UBSan report on stderr.
import { spawnSync } from 'node:child_process';
import { beforeAll, beforeEach, expect, it } from 'vitest';
import { KiB, MiB, holdStream, runClient, startServer, type ShortResult } from '../helpers/echo.js';
import { findConnection, pdStatusUntil, startController } from '../helpers/pd.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { ROOT, SHIM_ASAN } from '../helpers/paths.js';

const SANITIZER_REPORT = /ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer/;
let asanEnv: Record<string, string>;
const pd = setupPdTest([SHIM_ASAN]);

beforeAll(() => {
  const mk = spawnSync('make', ['-s', 'preload/libpd-asan.so'], { cwd: ROOT, encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`make preload/libpd-asan.so failed:\n${mk.stdout}${mk.stderr}`);
  const libasan = spawnSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout.trim();
  if (!libasan.startsWith('/')) throw new Error(`cannot find libasan.so (gcc says ${libasan})`);
  // The ASan runtime must come first in the initial library list; pdrun appends
  // its shim (PD_PRELOAD) to an existing LD_PRELOAD.
  asanEnv = {
    LD_PRELOAD: libasan,
    PD_PRELOAD: SHIM_ASAN,
    ASAN_OPTIONS: 'detect_leaks=0:halt_on_error=1:abort_on_error=0',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  };
});
beforeEach(async () => {
  // Start the controller ourselves, so that it does not run with the ASan runtime preloaded.
  await startController(pd().sock);
});

function clean(stderr: string, who: string): void {
  expect(stderr, `${who} stderr has a sanitizer report`).not.toMatch(SANITIZER_REPORT);
}

it('64 MiB stream over the ring under the ASan/UBSan shim', async () => {
  const opts = { pdrun: true, env: { ...pd().env, ...asanEnv } };
  const server = await startServer(['--max-conns', '1'], opts);
  const { proc, result } = await holdStream(server, 64 * MiB, 64 * KiB, opts);
  expect(result).toMatchObject({ ok: true, bytes: 64 * MiB, verify: 'full' });
  const status = await pdStatusUntil(pd().sock, (s) => findConnection(s, result.local)?.transport === 'ring');
  const conn = findConnection(status, result.local);
  expect(conn?.transport, `connection not upgraded under ASan: ${JSON.stringify(conn)}`).toBe('ring');
  proc.closeStdin();
  const c = await proc.waitOk(60_000);
  const s = await server.proc.waitOk(60_000);
  clean(c.stderr, 'client');
  clean(s.stderr, 'server');
});

it('200 short connections under the ASan/UBSan shim', async () => {
  const opts = { pdrun: true, env: { ...pd().env, ...asanEnv } };
  const server = await startServer(['--max-conns', '200'], opts);
  const { result, stderr } = await runClient<ShortResult>(
    ['short', '127.0.0.1', String(server.port), '200', '--seed', '11'],
    opts,
    110_000,
  );
  expect(result).toMatchObject({ ok: true, conns: 200 });
  const s = await server.proc.waitOk(60_000);
  clean(stderr, 'client');
  clean(s.stderr, 'server');
});
