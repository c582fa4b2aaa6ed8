// Test support for the controller unit tests: a real `pd controller` process on
// a private socket, fake shims that speak the session protocol through the
// same koffi bindings the controller uses, and real loopback TCP pairs.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AF_INET, AF_UNIX, SOCK_CLOEXEC, SOCK_SEQPACKET, SOCK_STREAM,
  accept4, bind, closeQuietly, connect, getsockname, listen, recvWithFds, sendWithFds, sockaddrIn, sockaddrUn, socket,
} from '../../src/datapath/libc.js';
import { fetchStatus, probeController } from '../../src/control/client.js';
import type { StatusDoc } from '../../src/control/status.js';
import { type Message, PROTO_VERSION, decode, encode } from '../../src/control/protocol.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PD_JS = path.join(ROOT, 'dist', 'cli', 'pd.js');
export const PDRUN_JS = path.join(ROOT, 'dist', 'cli', 'pdrun.js');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(what: string, f: () => T | Promise<T>, timeoutMs = 3000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export class ControllerProc {
  stderr = '';
  /** must stay empty: the controller never writes to stdout */
  stdout = '';
  exitCode: number | null = null;
  readonly exited: Promise<number | null>;

  private constructor(readonly dir: string, readonly sock: string, readonly child: ChildProcess) {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((r) => child.on('exit', (code) => {
      this.exitCode = code;
      r(code);
    }));
  }

  /** Starts `pd controller --socket <sock>` (default: in a new temp dir) and waits until it answers. */
  static async start(args: string[] = [], env: Record<string, string> = {}, at?: string): Promise<ControllerProc> {
    const dir = at ? path.dirname(at) : mkdtempSync('/tmp/pdunit-');
    const sock = at ?? path.join(dir, 'pd.sock');
    const child = spawn(process.execPath, [PD_JS, 'controller', '--socket', sock, '--idle-exit', '0', '--log', 'debug', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
    });
    const c = new ControllerProc(dir, sock, child);
    child.stdout!.on('data', (d: Buffer) => (c.stdout += d.toString()));
    await until(`controller at ${sock}\n${c.stderr}`, () => {
      if (c.exitCode !== null) throw new Error(`controller exited ${c.exitCode}:\n${c.stderr}`);
      const p = probeController(sock);
      if (p.alive) closeQuietly(p.fd);
      return p.alive;
    }, 10_000);
    return c;
  }

  /** Waits until the controller's stderr matches. */
  async waitLog(re: RegExp, timeoutMs = 3000): Promise<void> {
    await until(`controller log ${re}; got:\n${this.stderr}`, () => re.test(this.stderr), timeoutMs);
  }

  status(): Promise<StatusDoc> {
    return fetchStatus(this.sock);
  }

  /** The status, asked again (at most 50 more times) until done says yes;
   * the last one either way. */
  async statusUntil(done: (doc: StatusDoc) => boolean): Promise<StatusDoc> {
    let doc = await this.status();
    for (let i = 0; i < 50 && !done(doc); i++) doc = await this.status();
    return doc;
  }

  async stop(): Promise<void> {
    if (this.exitCode === null) {
      this.child.kill('SIGTERM');
      await Promise.race([this.exited, sleep(5000)]);
      if (this.exitCode === null) this.child.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Incoming {
  readonly msg: Message;
  readonly fds: number[];
}

/** A shim's session, driven by hand. */
export class FakeShim {
  readonly fd: number;
  private open = true;

  constructor(sock: string) {
    this.fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC);
    connect(this.fd, sockaddrUn(sock));
  }

  send(msg: Message, fds: number[] = []): void {
    this.sendRaw(encode(msg), fds);
  }

  sendRaw(data: Buffer, fds: number[] = []): void {
    if (!sendWithFds(this.fd, data, fds)) throw new Error('session socket full');
  }

  /** The next message from the controller (throws on EOF or timeout). */
  async next(timeoutMs = 3000): Promise<Incoming> {
    return until('a message from the controller', () => {
      const r = recvWithFds(this.fd, 256);
      if (r === null) return null;
      if (r.data.length === 0) throw new Error('session closed by the controller');
      const d = decode(r.data, r.fds.length);
      if (!d.ok) throw new Error(`undecodable message: ${d.error}`);
      return { msg: d.msg, fds: r.fds };
    }, timeoutMs);
  }

  /** Nothing arrives within ms (and the session stays open). */
  async quiet(ms = 200): Promise<boolean> {
    await sleep(ms);
    return recvWithFds(this.fd, 256) === null;
  }

  /** True once the controller has closed this session. */
  async closedByController(timeoutMs = 3000): Promise<boolean> {
    return until('the controller to close the session', () => {
      try {
        const r = recvWithFds(this.fd, 256);
        if (r) for (const fd of r.fds) closeQuietly(fd);
        return r !== null && r.data.length === 0;
      } catch {
        return true; // ECONNRESET
      }
    }, timeoutMs);
  }

  async hello(): Promise<{ sessionId: number; pageFd: number }> {
    this.send({ type: 'hello', protoVersion: PROTO_VERSION, pid: process.pid, flags: 0 });
    const m = await this.next();
    if (m.msg.type !== 'hello-ack') throw new Error(`expected HELLO_ACK, got ${m.msg.type}`);
    return { sessionId: m.msg.sessionId, pageFd: m.fds[0]! };
  }

  close(): void {
    if (this.open) closeQuietly(this.fd);
    this.open = false;
  }
}

/** A real connected loopback TCP pair (both fds owned by the caller). */
export function tcpPair(): { client: number; server: number; close(): void } {
  const l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC);
  bind(l, sockaddrIn('127.0.0.1', 0));
  listen(l, 4);
  const port = getsockname(l)!.port;
  const client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC);
  connect(client, sockaddrIn('127.0.0.1', port));
  const server = accept4(l, SOCK_CLOEXEC)!;
  closeQuietly(l);
  return {
    client, server,
    close() {
      closeQuietly(client);
      closeQuietly(server);
    },
  };
}

export function closeAll(fds: readonly number[]): void {
  for (const fd of fds) closeQuietly(fd);
}
