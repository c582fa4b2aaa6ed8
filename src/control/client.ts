// The client side of the controller's sockets: is anybody answering at the
// session socket, and what does the status socket say.
import { connect as netConnect } from 'node:net';
import {
  AF_UNIX, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_SEQPACKET, SysError, closeQuietly, connect, socket, sockaddrUn,
} from '../datapath/libc.js';
import { PdError, errorMessage } from './errors.js';
import { statusSocketPath } from './paths.js';
import type { StatusDoc } from './status.js';

export type Probe =
  | { readonly alive: true; readonly fd: number }
  | { readonly alive: false; readonly code: string; readonly reason: string };

const reasons: Readonly<Record<string, string>> = {
  ENOENT: 'no socket there',
  ECONNREFUSED: 'stale socket, nobody listening',
  EACCES: 'permission denied',
  ENOTDIR: 'a path component is not a directory',
  ENAMETOOLONG: 'path too long for a Unix socket (max 107 bytes)',
  EPROTOTYPE: 'not a pipedevice socket',
};

/**
 * Connects to the session socket. alive: a controller listens there (the fd is
 * a connected session socket the caller owns; it may keep it open to hold the
 * controller up, or close it).
 */
export function probeController(path: string): Probe {
  let fd = -1;
  try {
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC);
    connect(fd, sockaddrUn(path));
    return { alive: true, fd };
  } catch (e) {
    // A full listen backlog (EAGAIN) still means somebody listens.
    if (e instanceof SysError && e.code === 'EAGAIN') return { alive: true, fd };
    if (fd >= 0) closeQuietly(fd);
    const code = e instanceof SysError ? e.code : 'EIO';
    return { alive: false, code, reason: reasons[code] ?? errorMessage(e) };
  }
}

/** Reads the status document from `<socket>.status`. */
export function fetchStatus(socketPath: string, timeoutMs = 3000): Promise<StatusDoc> {
  const path = statusSocketPath(socketPath);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = netConnect(path);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new PdError('PD_E_STATUS', `no answer from ${path} within ${timeoutMs} ms: the controller may be stuck; try \`pd stop\``));
    }, timeoutMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new PdError('PD_E_NO_CONTROLLER',
        `no controller running at ${socketPath} (${reasons[e.code ?? ''] ?? e.message}): ` +
        'start one with `pd controller`, or run a program under pdrun'));
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as StatusDoc);
      } catch (e) {
        reject(new PdError('PD_E_STATUS', `unreadable status from ${path}: ${errorMessage(e)}`));
      }
    });
  });
}
