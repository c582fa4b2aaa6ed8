// Checks: the differential scenarios under the sanitizer builds of the shim, upgraded to the ring: the threaded, fork (both processes reading too) and descriptor ones under ThreadSanitizer (preload/libpd-tsan.so), the data ones and two processes reading one socket under ASan/UBSan (preload/libpd-asan.so), the signal-handler ones under both; every process ends cleanly with no sanitizer report on stderr.
import { beforeAll, beforeEach, expect, it } from 'vitest';
import { BEHAVE, BEHAVE_FORTIFY, requireClean, runScenario, type Program } from '../helpers/diff.js';
import { SANITIZER_REPORT, SHIM_TSAN, TSAN_REPORT, gccRuntime, makeShim } from '../helpers/ev.js';
import { setupPdTest } from '../helpers/lifecycle.js';
import { SHIM_ASAN } from '../helpers/paths.js';
import { startController } from '../helpers/pd.js';

const pd = setupPdTest([BEHAVE, BEHAVE_FORTIFY]);

beforeAll(() => {
  makeShim('preload/libpd-tsan.so');
  makeShim('preload/libpd-asan.so');
});
// The processes are preloaded directly (the sanitizer runtime first, then the
// shim variant), not through pdrun: pdrun is Node, and the runtime preloaded
// into it would load into Node too. So the test starts the controller, and it
// runs without any sanitizer.
beforeEach(async () => {
  await startController(pd().sock);
});

/** The ThreadSanitizer report blocks of a stderr. */
function tsanReports(stderr: string): string[] {
  return stderr.split(/^==================$/m).filter((b) => TSAN_REPORT.test(b));
}

// eintr-*: the shim's signal trampoline (preload/signal.c) runs behind the
// sanitizer's own signal interceptors
const TSAN_CASES = ['threads', 'close-while-recv', 'fork-child', 'fork-parent', 'fork-readers-turns', 'fork-readers-race', 'fork-while-recv',
  'dup', 'nonblock-fcntl', 'epoll-lt', 'eintr-thread-mixed', 'eintr-signal-mixed'];
const ASAN_CASES: [string, Program][] = [
  ['peek', 'c'], ['waitall', 'c'], ['dontwait', 'c'], ['trunc', 'c'], ['iov', 'c'], ['tiny-writes', 'c'],
  ['big-write', 'c'], ['mmsg', 'c'], ['sendfile', 'c'], ['splice', 'c'], ['chk', 'c-fortify'],
  ['eintr-signal-mixed', 'c'], ['eintr-thread-mixed', 'c'], ['fork-readers-race', 'c'],
];

for (const name of TSAN_CASES) {
  it(`${name} under the TSan shim: no ThreadSanitizer report`, async () => {
    const r = await runScenario(name, {
      pdrun: false,
      preload: `${gccRuntime('libtsan.so')} ${SHIM_TSAN}`,
      pd: pd(),
      // report everything, then let the exit status stay the program's own
      env: { TSAN_OPTIONS: 'halt_on_error=0:exitcode=0:report_signal_unsafe=0' },
      timeoutMs: 60_000,
    });
    console.log(`tsan ${name}: ${r.ms} ms, ${r.server.length + r.client.length} trace lines`);
    requireClean(r, `${name} under the TSan shim`);
    for (const [end, err] of [['server', r.serverStderr], ['client', r.clientStderr]] as const) {
      if (name === 'close-while-recv') {
        // The scenario races close() against a recv() in another thread on
        // purpose; TSan's own close/recv interceptors (called before the
        // shim) report that fd race. Only a report with shim frames counts.
        const shimReports = tsanReports(err).filter((b) => /libpd-tsan\.so|preload\//.test(b));
        expect(shimReports.join('\n'), `${end} stderr has a ThreadSanitizer report in the shim`).toBe('');
      } else {
        expect(err, `${end} stderr has a ThreadSanitizer report`).not.toMatch(TSAN_REPORT);
      }
    }
  });
}

for (const [name, program] of ASAN_CASES) {
  it(`${name}${program === 'c-fortify' ? ' (fortified build)' : ''} under the ASan/UBSan shim: no sanitizer report`, async () => {
    const r = await runScenario(name, {
      pdrun: false,
      program,
      preload: `${gccRuntime('libasan.so')} ${SHIM_ASAN}`,
      pd: pd(),
      env: {
        ASAN_OPTIONS: 'detect_leaks=0:halt_on_error=1:abort_on_error=0',
        UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      },
      timeoutMs: 60_000,
    });
    console.log(`asan ${name}: ${r.ms} ms, ${r.server.length + r.client.length} trace lines`);
    // a report aborts the process (halt_on_error): look at stderr first
    expect(r.serverStderr, `server stderr has a sanitizer report`).not.toMatch(SANITIZER_REPORT);
    expect(r.clientStderr, `client stderr has a sanitizer report`).not.toMatch(SANITIZER_REPORT);
    requireClean(r, `${name} under the ASan/UBSan shim`);
  });
}
