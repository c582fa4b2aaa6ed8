// The pid file next to the socket doubles as the controller's lock: the live
// controller holds an exclusive flock on it for its whole life (the kernel
// drops it when the process dies, however it dies). Whoever holds the lock owns
// the socket path, so removing a stale socket never races a starting peer.
// (libuv opens every file O_CLOEXEC.)
import { closeSync, fstatSync, ftruncateSync, openSync, readFileSync, statSync, unlinkSync, writeSync, constants } from 'node:fs';
import { tryLockExclusive } from '../datapath/libc.js';

export interface PidLock {
  readonly fd: number;
  readonly path: string;
  readonly ino: number;
}

/**
 * Takes the lock and writes our pid, or returns null when another process
 * holds it. Retries when the file was unlinked under us by an exiting holder.
 */
export function acquirePidLock(path: string): PidLock | null {
  for (let attempt = 0; attempt < 10; attempt++) {
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    if (!tryLockExclusive(fd)) {
      closeSync(fd);
      return null;
    }
    const mine = fstatSync(fd);
    let current;
    try {
      current = statSync(path);
    } catch {
      current = null;
    }
    if (current && current.ino === mine.ino && current.dev === mine.dev) {
      ftruncateSync(fd, 0);
      writeSync(fd, `${process.pid}\n`, 0);
      return { fd, path, ino: mine.ino };
    }
    closeSync(fd); // locked a file an exiting controller just removed
  }
  return null;
}

/** Removes the pid file if it is still ours; the lock goes with the process. */
export function releasePidLock(lock: PidLock): void {
  try {
    if (statSync(lock.path).ino === lock.ino) unlinkSync(lock.path);
  } catch {
    /* already gone */
  }
}

export type PidState =
  | { readonly running: true; readonly pid: number }
  | { readonly running: false; readonly stale: boolean };

/**
 * Whether a controller holds the pid file: locked means running (its pid is
 * in the file); unlocked means a stale file (or none).
 */
export function readPidFile(path: string): PidState {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch {
    return { running: false, stale: false };
  }
  try {
    if (tryLockExclusive(fd)) return { running: false, stale: true };
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    // Locked but no pid yet: a controller is starting; nothing to stop or clean.
    return Number.isInteger(pid) && pid > 0 ? { running: true, pid } : { running: false, stale: false };
  } finally {
    closeSync(fd);
  }
}
