// Checks that matching works for an ordinary user: without CAP_NET_ADMIN,
// SIOCGSKNS fails with EPERM and the controller takes the reporting process's
// namespace instead. Controller and shim run as uid 65534 (needs root to switch).
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { constant } from '../../src/datapath/layout.js';
import { PD_JS, ROOT, until } from './fake-shim.js';

const canSwitch = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

// A shim in a child process: HELLO, then report both ends of a loopback pair.
const shimScript = (sock: string) => `
  const c = await import(${JSON.stringify(`${ROOT}/dist/datapath/libc.js`)});
  const p = await import(${JSON.stringify(`${ROOT}/dist/control/protocol.js`)});
  const s = c.socket(c.AF_UNIX, c.SOCK_SEQPACKET | c.SOCK_CLOEXEC);
  c.connect(s, c.sockaddrUn(${JSON.stringify(sock)}));
  c.sendWithFds(s, p.encode({ type: 'hello', protoVersion: p.PROTO_VERSION, pid: process.pid, flags: 0 }), []);
  const l = c.socket(c.AF_INET, c.SOCK_STREAM | c.SOCK_CLOEXEC);
  c.bind(l, c.sockaddrIn('127.0.0.1', 0));
  c.listen(l, 1);
  const t = c.socket(c.AF_INET, c.SOCK_STREAM | c.SOCK_CLOEXEC);
  c.connect(t, c.sockaddrIn('127.0.0.1', c.getsockname(l).port));
  const a = c.accept4(l, c.SOCK_CLOEXEC);
  c.sendWithFds(s, p.encode({ type: 'conn-report', connId: 1n, origin: ${constant('ORIGIN_CONNECT')} }), [t]);
  c.sendWithFds(s, p.encode({ type: 'conn-report', connId: 2n, origin: ${constant('ORIGIN_ACCEPT')} }), [a]);
  const got = [];
  const deadline = Date.now() + 5000;
  while (got.length < 3 && Date.now() < deadline) {
    const r = c.recvWithFds(s, 256);
    if (r === null) { await new Promise((r) => setTimeout(r, 10)); continue; }
    const d = p.decode(r.data, r.fds.length);
    got.push(d.ok ? d.msg.type + (d.msg.reason ? ':' + d.msg.reason : '') : 'bad');
  }
  process.stdout.write(JSON.stringify({ uid: process.getuid(), got }) + '\\n');
`;

describe.skipIf(!canSwitch)('as an unprivileged user', () => {
  const dir = mkdtempSync('/tmp/pdunit-nobody-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports still match (netns from /proc/<pid>/ns/net)', async () => {
    chownSync(dir, 65534, 65534);
    const sock = path.join(dir, 'pd.sock');
    const ctl = spawn('setpriv', [...NOBODY, process.execPath, PD_JS, 'controller', '--socket', sock, '--idle-exit', '0', '--log', 'info'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    ctl.stderr.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await until('controller as nobody', () => log.includes('listening') || ctl.exitCode !== null, 10_000);
      const r = spawnSync('setpriv', [...NOBODY, process.execPath, '--input-type=module', '-e', shimScript(sock)], {
        encoding: 'utf8', timeout: 15_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { uid: number; got: string[] };
      expect(out.uid).toBe(65534);
      expect(out.got, log).toEqual(['hello-ack', 'assign', 'assign']);
    } finally {
      ctl.kill('SIGTERM');
    }
  });
});
