import { defineConfig } from 'vitest/config';

// Integration tests start real processes and controllers and measure the
// kernel's byte counters: run files one at a time (the machine has 2 cores).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    reporters: [process.env.CI ? 'verbose' : 'default', './test/helpers/summary-reporter.ts'],
  },
});
