// stderr only, quiet by default. Warnings and errors always print; `info`
// adds sessions and matches, `debug` every message.
import type { LogLevel } from './options.js';

export interface Logger {
  readonly level: LogLevel;
  /** whether info()/debug() print: test before formatting a line on a per-connection path */
  readonly infoOn: boolean;
  readonly debugOn: boolean;
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

const rank: Record<LogLevel, number> = { quiet: 0, info: 1, debug: 2 };

export function createLogger(level: LogLevel, prefix: string): Logger {
  const line = (msg: string) => {
    process.stderr.write(`${prefix}: ${msg}\n`);
  };
  return {
    level,
    infoOn: rank[level] >= 1,
    debugOn: rank[level] >= 2,
    debug: (m) => {
      if (rank[level] >= 2) line(m);
    },
    info: (m) => {
      if (rank[level] >= 1) line(m);
    },
    warn: line,
    error: line,
  };
}

/** Prints a line verbatim (for the user-facing "pipedevice: ..." lines). */
export function printWarning(msg: string): void {
  process.stderr.write(`${msg}\n`);
}
