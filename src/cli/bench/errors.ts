// Errors of `pd bench`: a stable code and a message that says what to do.
export type BenchErrorCode =
  | 'PD_E_BENCH_USAGE' // unknown scenario, bad flag value
  | 'PD_E_BENCH_MISSING' // a program the scenario needs is not installed
  | 'PD_E_BENCH_BUILD' // a bench program did not compile
  | 'PD_E_BENCH_RUN' // a server or client failed, timed out or printed nothing usable
  | 'PD_E_BENCH_ROOT'; // the scenario needs root (network namespaces)

export class BenchError extends Error {
  constructor(readonly code: BenchErrorCode, message: string) {
    super(message);
    this.name = 'BenchError';
  }
}
