// The echo pair (test/progs/echo_server.c, echo_client.c) as test building blocks.
import { ECHO_CLIENT, ECHO_SERVER } from './paths.js';
import { parseJsonLine, spawnProc, type Proc, type SpawnOptions } from './proc.js';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;
export const KiB = 1024;

/** Checksums of the client's stream (seed 1) measured on plain kernel TCP. */
export const KNOWN_CHECKSUMS: Record<number, string> = {
  [GiB]: '8f9c7834586bb0df',
};

export interface StreamResult {
  ok: boolean;
  mode: 'stream' | 'throughput';
  bytes: number;
  sent: number;
  chunk: number;
  verify: 'full' | 'sampled';
  checksum?: string;
  seconds: number;
  gbps: number;
  gbytes_per_s: number;
  local: string;
  peer: string;
}

export interface ShortResult {
  ok: boolean;
  mode: 'short';
  conns: number;
  bytes: number;
  tiny: number;
  threaded: number;
  seconds: number;
}

export interface PingpongResult {
  ok: boolean;
  mode: 'pingpong';
  iters: number;
  size: number;
  rtt_us: { median: number; p99: number; p999: number; mean: number; min: number; max: number };
  local: string;
  peer: string;
}

export interface Server {
  proc: Proc;
  port: number;
  addr: string;
}

export async function startServer(args: string[], opts: SpawnOptions = {}): Promise<Server> {
  const proc = spawnProc(ECHO_SERVER, args, { name: `${opts.pdrun ? 'pdrun ' : ''}echo_server`, ...opts });
  const m = await proc.waitStdout(/^port (\d+)\n/, 20_000);
  const port = Number(m[1]);
  return { proc, port, addr: `127.0.0.1:${port}` };
}

export function startClient(args: string[], opts: SpawnOptions = {}): Proc {
  return spawnProc(ECHO_CLIENT, args, { name: `${opts.pdrun ? 'pdrun ' : ''}echo_client ${args[0]}`, ...opts });
}

/** Run a client to completion; requires status 0 and exactly one JSON line with ok:true. */
export async function runClient<T extends { ok: boolean }>(
  args: string[],
  opts: SpawnOptions = {},
  timeoutMs = 100_000,
): Promise<{ result: T; stderr: string; stdout: string }> {
  const p = startClient(args, opts);
  const r = await p.waitOk(timeoutMs);
  const result = parseJsonLine<T>(r.stdout, p.name);
  if (!result.ok) throw new Error(`${p.name}: ok is not true: ${r.stdout}`);
  return { result, stderr: r.stderr, stdout: r.stdout };
}

/** Start a stream client to server.addr with --hold and wait for its JSON line (the connection stays open). */
export async function holdStream(
  server: Server,
  bytes: number,
  chunk: number,
  opts: SpawnOptions = {},
  timeoutMs = 100_000,
): Promise<{ proc: Proc; result: StreamResult }> {
  const host = server.addr.slice(0, server.addr.lastIndexOf(':')); // 127.0.0.1 unless the server listens elsewhere
  const proc = startClient(['stream', host, String(server.port), String(bytes), String(chunk), '--hold'], {
    ...opts,
    stdinPipe: true,
  });
  await proc.waitStdout(/^\{.*\}\n/, timeoutMs);
  const result = parseJsonLine<StreamResult>(proc.stdout, proc.name);
  return { proc, result };
}
