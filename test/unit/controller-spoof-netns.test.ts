// Checks matching across network namespaces (root: it makes namespaces with `ip netns`): a process of another user in another namespace that builds a connection mirroring a victim's addresses (same IPs and ports, inside its own namespace) and reports it is not paired with the victim's end (the default PD_CROSS_NETNS=same-user), the refusal is logged and shown in status, and the victim's real ends still pair; ends of one user in two namespaces joined by a veth pair (containers) do pair, unless PD_CROSS_NETNS=never.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constant } from '../../src/datapath/layout.js';
import { ControllerProc, ROOT, until } from './fake-shim.js';

const CONNECT = constant('ORIGIN_CONNECT');
const ACCEPT = constant('ORIGIN_ACCEPT');
const canRun = process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0 && spawnSync('setpriv', ['--version']).status === 0;
const tag = `pd${process.pid % 100000}`;
const NS = { victim: `${tag}v`, attacker: `${tag}x`, a: `${tag}a`, b: `${tag}b` };

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

interface Step {
  session: number;
  report: 'client' | 'server';
  connId: number;
}

interface ShimCfg {
  sock: string;
  sessions: number;
  /** listen on ip:port and accept one connection */
  server?: [string, number];
  /** bind to ip:port and connect to the server address */
  client?: { from: [string, number]; to: [string, number] };
  steps: Array<Step | 'wait'>;
  collectMs: number;
}

/** A fake shim in a child process (in a namespace, maybe as another user): prints what each session received. */
const script = `
  const c = await import(${JSON.stringify(`${ROOT}/dist/datapath/libc.js`)});
  const p = await import(${JSON.stringify(`${ROOT}/dist/control/protocol.js`)});
  const cfg = JSON.parse(process.env.SPOOF_CFG);
  const ss = [];
  for (let i = 0; i < cfg.sessions; i++) {
    const s = c.socket(c.AF_UNIX, c.SOCK_SEQPACKET | c.SOCK_CLOEXEC);
    c.connect(s, c.sockaddrUn(cfg.sock));
    c.sendWithFds(s, p.encode({ type: 'hello', protoVersion: p.PROTO_VERSION, pid: process.pid, flags: 0 }), []);
    ss.push(s);
  }
  const socks = {};
  let l = -1;
  if (cfg.server) {
    l = c.socket(c.AF_INET, c.SOCK_STREAM | c.SOCK_CLOEXEC);
    c.bind(l, c.sockaddrIn(...cfg.server));
    c.listen(l, 4);
  }
  process.stdout.write('listening\\n');
  const lines = [];
  let wake = null;
  process.stdin.on('data', (d) => { lines.push(String(d)); if (wake) wake(); });
  const nextLine = () => lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => { wake = () => { wake = null; r(lines.shift()); }; });
  if (cfg.client) {
    const t = c.socket(c.AF_INET, c.SOCK_STREAM | c.SOCK_CLOEXEC);
    c.bind(t, c.sockaddrIn(...cfg.client.from));
    c.connect(t, c.sockaddrIn(...cfg.client.to));
    socks.client = t;
  }
  if (cfg.server) {
    for (;;) { const a = c.accept4(l, c.SOCK_CLOEXEC); if (a !== null) { socks.server = a; break; } await new Promise((r) => setTimeout(r, 5)); }
  }
  for (const st of cfg.steps) {
    if (st === 'wait') { process.stdout.write('waiting\\n'); await nextLine(); continue; }
    c.sendWithFds(ss[st.session], p.encode({ type: 'conn-report', connId: BigInt(st.connId), origin: st.report === 'client' ? ${CONNECT} : ${ACCEPT} }), [socks[st.report]]);
  }
  process.stdout.write('reported\\n');
  const got = ss.map(() => []);
  const end = Date.now() + cfg.collectMs;
  while (Date.now() < end) {
    ss.forEach((s, i) => {
      const r = c.recvWithFds(s, 256);
      if (r === null) return;
      for (const fd of r.fds) c.closeQuietly(fd);
      if (r.data.length === 0) { got[i].push('closed'); return; }
      const d = p.decode(r.data, r.fds.length);
      got[i].push(d.ok ? d.msg.type : 'bad');
    });
    await new Promise((r) => setTimeout(r, 10));
  }
  process.stdout.write(JSON.stringify({ uid: process.getuid(), got }) + '\\n');
`;

class Shim {
  out = '';
  err = '';
  readonly child: ChildProcess;
  constructor(ns: string, cfg: ShimCfg, asUser?: number) {
    const user = asUser === undefined ? [] : ['setpriv', `--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups'];
    this.child = spawn('ip', ['netns', 'exec', ns, ...user, process.execPath, '--input-type=module', '-e', script], {
      env: { ...process.env, SPOOF_CFG: JSON.stringify(cfg) }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
  }
  async wait(word: string): Promise<void> {
    await until(`"${word}" from a shim in a namespace (stderr: ${this.err})`, () => {
      if (this.child.exitCode !== null) throw new Error(`shim exited ${this.child.exitCode}: ${this.err}`);
      return this.out.includes(`${word}\n`);
    }, 10_000);
  }
  go(): void {
    this.child.stdin!.write('go\n');
  }
  async result(): Promise<{ uid: number; got: string[][] }> {
    await until(`result (stderr: ${this.err})`, () => /^\{.*\}$/m.test(this.out), 15_000);
    return JSON.parse(/^(\{.*\})$/m.exec(this.out)![1]!) as { uid: number; got: string[][] };
  }
  kill(): void {
    this.child.kill('SIGKILL');
  }
}

/** A namespace whose lo also holds `addrs` (not 127/8: a connection inside it uses non-loopback addresses). */
function nsWithAddrs(ns: string, addrs: string[]): void {
  ip('netns', 'add', ns);
  for (const a of addrs) ip('-n', ns, 'addr', 'add', `${a}/32`, 'dev', 'lo');
  ip('-n', ns, 'link', 'set', 'lo', 'up');
}

describe.skipIf(!canRun)('matching across network namespaces', () => {
  beforeAll(() => {
    nsWithAddrs(NS.victim, ['10.99.0.1', '10.99.0.2']);
    nsWithAddrs(NS.attacker, ['10.99.0.1', '10.99.0.2']);
    // Two "containers" joined by a veth pair.
    ip('netns', 'add', NS.a);
    ip('netns', 'add', NS.b);
    ip('link', 'add', `${tag}va`, 'netns', NS.a, 'type', 'veth', 'peer', 'name', `${tag}vb`, 'netns', NS.b);
    ip('-n', NS.a, 'addr', 'add', '10.98.0.1/24', 'dev', `${tag}va`);
    ip('-n', NS.b, 'addr', 'add', '10.98.0.2/24', 'dev', `${tag}vb`);
    for (const [ns, dev] of [[NS.a, `${tag}va`], [NS.b, `${tag}vb`]] as const) {
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  });
  afterAll(() => {
    for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns]);
  });

  it('a mirrored connection of another user in another namespace is not paired with the victim', async () => {
    // The operator lets the attacker's group in (a controller shared by users).
    const ctl = await ControllerProc.start(['--log', 'quiet'], { PD_SOCKET_GROUP: '65534' });
    const shims: Shim[] = [];
    try {
      const server: [string, number] = ['10.99.0.1', 47001];
      const from: [string, number] = ['10.99.0.2', 47002];
      // The victim (root): its client end is reported first and waits for its server end.
      const victim = new Shim(NS.victim, {
        sock: ctl.sock, sessions: 2, server, client: { from, to: server },
        steps: [{ session: 0, report: 'client', connId: 1 }, 'wait', { session: 1, report: 'server', connId: 1 }], collectMs: 1500,
      });
      shims.push(victim);
      await victim.wait('waiting');
      // The attacker (uid 65534, its own namespace) builds the same connection and reports the end that mirrors the victim's.
      const attacker = new Shim(NS.attacker, {
        sock: ctl.sock, sessions: 1, server, client: { from, to: server },
        steps: [{ session: 0, report: 'server', connId: 1 }], collectMs: 600,
      }, 65534);
      shims.push(attacker);
      const ra = await attacker.result();
      expect(ra.uid).toBe(65534);
      expect(ra.got[0], `the attacker was paired with the victim:\n${ctl.stderr}`).toEqual(['hello-ack']);
      await ctl.waitLog(/not paired with .*another network namespace and of another user/);
      const doc = await ctl.status();
      const waiting = doc.connections.find((x) => x.ends.some((e) => e.pid === attacker.child.pid || x.reason?.includes('another user')));
      expect(waiting?.reason ?? '', JSON.stringify(doc.connections)).toMatch(/another user/);
      // The victim's real server end pairs with its client end.
      victim.go();
      const rv = await victim.result();
      expect(rv.got, ctl.stderr).toEqual([['hello-ack', 'assign'], ['hello-ack', 'assign']]);
    } finally {
      for (const s of shims) s.kill();
      await ctl.stop();
    }
  });

  for (const policy of ['same-user', 'never'] as const) {
    it(`ends of one user in two namespaces joined by veth ${policy === 'never' ? 'do not pair with PD_CROSS_NETNS=never' : 'pair (containers)'}`, async () => {
      const ctl = await ControllerProc.start(['--log', 'quiet', '--cross-netns', policy]);
      const shims: Shim[] = [];
      try {
        const port = policy === 'never' ? 47021 : 47011; // a new 4-tuple: the last one is in TIME_WAIT
        const server: [string, number] = ['10.98.0.1', port];
        const srv = new Shim(NS.a, { sock: ctl.sock, sessions: 1, server, steps: [{ session: 0, report: 'server', connId: 1 }], collectMs: 1000 });
        shims.push(srv);
        await srv.wait('listening');
        const cli = new Shim(NS.b, {
          sock: ctl.sock, sessions: 1, client: { from: ['10.98.0.2', port + 1], to: server },
          steps: [{ session: 0, report: 'client', connId: 1 }], collectMs: 1000,
        });
        shims.push(cli);
        const [rs, rc] = [await srv.result(), await cli.result()];
        const want = policy === 'never' ? ['hello-ack'] : ['hello-ack', 'assign'];
        expect([rs.got[0], rc.got[0]], ctl.stderr).toEqual([want, want]);
      } finally {
        for (const s of shims) s.kill();
        await ctl.stop();
      }
    });
  }
});
