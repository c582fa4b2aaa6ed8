// Watches raw fds on Node's own event loop through koffi.node.poll (libuv
// uv_poll). libuv aborts the whole process when epoll_ctl fails on a bad fd, and
// refuses an fd it already watches, so this module is the only caller: it checks
// the fd is open, never watches one fd twice, and always stops watching before
// the fd is closed (close() does both, in that order).
import koffi from 'koffi';
import { closeQuietly, fdIsOpen } from './libc.js';

export interface Interest {
  readonly readable?: boolean;
  readonly writable?: boolean;
  readonly disconnect?: boolean;
}

export interface FdEvents {
  readonly readable: boolean;
  readonly writable: boolean;
  readonly disconnect: boolean;
  /** a libuv error status (negative errno), 0 when none */
  readonly status: number;
}

interface PollHandle {
  start(opts: Interest, cb: (status: number, ev: Omit<FdEvents, 'status'>) => void): void;
  stop(): void;
  close(): void;
  unref(): void;
  ref(): void;
}

type PollFn = (fd: number, opts: Interest, cb: (status: number, ev: Omit<FdEvents, 'status'>) => void) => PollHandle | null;

const watched = new Set<number>();

export class FdWatch {
  private handle: PollHandle | null;
  private readonly cb: (status: number, ev: Omit<FdEvents, 'status'>) => void;

  constructor(readonly fd: number, interest: Interest, onEvents: (ev: FdEvents) => void) {
    if (!fdIsOpen(fd)) throw new Error(`poll: fd ${fd} is not open`);
    if (watched.has(fd)) throw new Error(`poll: fd ${fd} is already watched`);
    this.cb = (status, ev) => {
      if (this.handle) onEvents({ ...ev, status });
    };
    const poll = (koffi.node as unknown as { poll: PollFn }).poll;
    const h = poll(fd, { ...interest }, this.cb);
    if (!h) throw new Error(`poll: cannot watch fd ${fd}`);
    this.handle = h;
    watched.add(fd);
  }

  get active(): boolean {
    return this.handle !== null;
  }

  /** Changes the events watched. */
  update(interest: Interest): void {
    if (!this.handle) return;
    this.handle.start({ ...interest }, this.cb);
  }

  /** Lets the process exit while this watch is active. */
  unref(): void {
    this.handle?.unref();
  }

  /** Stops watching; then closes the fd when closeFd. Idempotent. */
  close(closeFd: boolean): void {
    if (!this.handle) return;
    const h = this.handle;
    this.handle = null;
    h.stop();
    h.close();
    watched.delete(this.fd);
    if (closeFd) closeQuietly(this.fd);
  }
}

/** Watches fd for the given events; the callback runs on Node's loop. */
export function watchFd(fd: number, interest: Interest, onEvents: (ev: FdEvents) => void): FdWatch {
  return new FdWatch(fd, interest, onEvents);
}
