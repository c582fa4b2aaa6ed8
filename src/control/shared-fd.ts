// A descriptor several queued messages may still send: closed only when its
// owner and every queued send have let go of it. A number closed early could be
// reused by the next open and then sent, to the wrong process, in its place.
import { closeQuietly } from '../datapath/libc.js';

export class SharedFd {
  private refs = 1;

  constructor(readonly fd: number) {}

  get open(): boolean {
    return this.refs > 0;
  }

  /** Takes a reference; returns this. */
  ref(): this {
    if (this.refs <= 0) throw new Error(`SharedFd ${this.fd}: ref() after close`);
    this.refs++;
    return this;
  }

  /** Drops a reference; the last one closes the fd. */
  unref(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) closeQuietly(this.fd);
  }
}
