import type { Reporter, TestModule } from 'vitest/node';

// Prints one plain closing line after the run, for readers of CI logs that
// do not parse vitest's own summary (which is coloured when CI is set):
//   tests: N passed, N failed, N skipped
// "failed" counts failed tests, test files that failed outside any test
// (import or hook errors) and errors thrown outside the run. Tests marked
// it.fails that behaved as expected count as passed; a second line says how
// many of them there were.
export default class SummaryReporter implements Reporter {
  onTestRunEnd(
    modules: ReadonlyArray<TestModule>,
    unhandled: ReadonlyArray<unknown>,
  ): void {
    let passed = 0;
    let failed = unhandled.length;
    let skipped = 0;
    let expectedFail = 0;
    for (const mod of modules) {
      if (mod.errors().length > 0) failed++;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') {
          passed++;
          if (test.options.fails) expectedFail++;
        } else if (state === 'failed') failed++;
        else skipped++;
      }
    }
    const out = process.stdout;
    out.write(`\n(${expectedFail} of the passed tests are expected failures: it.fails, known differences)\n`);
    out.write(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
