// Checks that libpd.so exports exactly the symbols of its interposition
// table (preload/pd_syms.h): no hook missing, none defined outside the table,
// and that the table holds the data, readiness and signal-disposition calls.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

function tableNames(): string[] {
  const text = readFileSync(join(root, 'preload', 'pd_syms.h'), 'utf8');
  return [...text.matchAll(/^\s*X\([^,]+,\s*(\w+),/gm)].map((m) => m[1]!).sort();
}

function exported(lib: string): string[] {
  const out = execFileSync('nm', ['-D', '--defined-only', join(root, 'preload', lib)], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 3 && f[1] === 'T')
    .map((f) => f[2]!)
    .sort();
}

describe('interposition table', () => {
  it('lists the data, lifecycle and readiness calls with their fortify variants', () => {
    const names = tableNames();
    for (const n of ['read', 'write', 'recv', 'send', 'recvmsg', 'sendmsg', 'readv', 'writev', 'accept4',
      'connect', 'close', 'dup2', '__read_chk', '__recv_chk', '__recvfrom_chk', '__poll_chk']) {
      expect(names).toContain(n);
    }
  });

  it('lists every libc entry point that installs a signal handler', () => {
    // glibc's signal() family calls its internal sigaction, not through the
    // PLT: each must be interposed for the shim to see (and wrap) the handler
    const names = tableNames();
    for (const n of ['sigaction', '__sigaction', 'signal', 'bsd_signal', 'ssignal', 'sysv_signal', '__sysv_signal', 'sigset']) {
      expect(names).toContain(n);
    }
  });

  it('libpd.so exports exactly the table', () => {
    expect(exported('libpd.so')).toEqual(tableNames());
  });
});
