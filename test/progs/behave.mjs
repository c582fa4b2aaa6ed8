// behave.mjs: differential behaviour scenarios with Node's net.Socket
// (issue 3), with the protocol of behave.h:
//
//   node behave.mjs SCENARIO server          listens on 127.0.0.1:0, prints "= port N"
//   node behave.mjs SCENARIO client PORT|-   ("-": reads "port N" from stdin) prints "= local ADDR", "= ready", warms the
//                                            connection up (1-byte echoes) until "go" on
//                                            stdin, then sends 'g' (echoed)
//
// Both ends then run the scenario and print their trace (one event per line),
// then "= end", and exit at stdin EOF. Both ends set TCP_NODELAY (see
// behave.h). How Node splits the stream into 'data' chunks is the kernel's
// or the ring's timing: only totals, byte checks and event order are traced.
import net from 'node:net';

const [scen, role, portArg] = process.argv.slice(2);

function T(line) {
  process.stdout.write(`${line}\n`);
}
const yn = (b) => (b ? 'yes' : 'no');

/** Bytes [off, off+n) of stream `seed` (period 251, as in behave.py). */
function pattern(seed, off, n) {
  const period = Buffer.alloc(251);
  for (let i = 0; i < 251; i++) period[i] = ((i * 7 + seed * 13) ^ (i >> 3)) & 0xff;
  const out = Buffer.alloc(n);
  for (let i = 0, p = off % 251; i < n; i++, p = p === 250 ? 0 : p + 1) out[i] = period[p];
  return out;
}

/** Collects 'data' and checks it against a stream. */
function collector(seed) {
  const chunks = [];
  let n = 0;
  return {
    add(b) {
      chunks.push(b);
      n += b.length;
    },
    get bytes() {
      return n;
    },
    verdict() {
      return Buffer.concat(chunks).equals(pattern(seed, 0, n)) ? 'bytes ok' : 'bytes differ';
    },
  };
}

let stdinEnded = false;
let finished = false;
function finish() {
  T('= end');
  finished = true;
  if (stdinEnded) process.exit(0);
}

// ------------------------------------------------------------------ scenarios

/** allowHalfOpen: the client writes and ends; the server answers after 'end', then ends. */
const halfopen = {
  server(sock, first) {
    const rx = collector(5);
    if (first.length) rx.add(first);
    sock.on('data', (b) => rx.add(b));
    sock.on('end', () => {
      T(`'end' after ${rx.bytes} bytes; ${rx.verdict()}`);
      T(`readyState after 'end': ${sock.readyState}`);
      let cbs = 0;
      const reply = pattern(6, 0, 50_000);
      for (let i = 0; i < 5; i++) sock.write(reply.subarray(i * 10_000, (i + 1) * 10_000), () => cbs++);
      sock.end();
      sock.on('finish', () => T(`'finish' after ${cbs} of 5 write callbacks`));
    });
    sock.on('close', (hadError) => {
      T(`'close' hadError=${hadError}`);
      finish();
    });
  },
  client(sock, first) {
    const rx = collector(6);
    if (first.length) rx.add(first);
    sock.on('data', (b) => rx.add(b));
    let cbs = 0;
    const data = pattern(5, 0, 100_000);
    for (let i = 0; i < 10; i++) sock.write(data.subarray(i * 10_000, (i + 1) * 10_000), () => cbs++);
    sock.end();
    sock.on('finish', () => {
      T(`'finish' after ${cbs} of 10 write callbacks`);
      T(`readyState after 'finish': ${sock.readyState}`);
    });
    sock.on('end', () => T(`'end' after ${rx.bytes} bytes from the server; ${rx.verdict()}`));
    sock.on('close', (hadError) => {
      T(`'close' hadError=${hadError}`);
      finish();
    });
  },
};

/** write() returning false and 'drain' while the peer pauses reading for 300 ms. */
const backpressure = {
  server(sock, first) {
    const rx = collector(7);
    if (first.length) rx.add(first);
    sock.pause();
    setTimeout(() => sock.resume(), 300);
    sock.on('data', (b) => rx.add(b));
    sock.on('end', () => {
      T(`'end' after ${rx.bytes} bytes; ${rx.verdict()}`);
      sock.end();
    });
    sock.on('close', (hadError) => {
      T(`'close' hadError=${hadError}`);
      finish();
    });
  },
  client(sock) {
    const CHUNK = 64 * 1024;
    const N = 512; // 32 MiB: more than the kernel's and the ring's buffers
    const data = pattern(7, 0, CHUNK * N);
    let i = 0;
    let falses = 0;
    let drains = 0;
    let cbs = 0;
    let waiting = false;
    const pump = () => {
      waiting = false;
      while (i < N) {
        const ok = sock.write(data.subarray(i * CHUNK, (i + 1) * CHUNK), () => cbs++);
        i++;
        if (!ok) {
          falses++;
          waiting = true;
          sock.once('drain', () => {
            drains++;
            pump();
          });
          return;
        }
      }
      sock.end();
    };
    sock.on('finish', () => {
      T(`write() returned false at least once: ${yn(falses > 0)}; a 'drain' followed each: ${yn(drains === falses && !waiting)}`);
      T(`'finish' after ${cbs} of ${N} write callbacks`);
    });
    sock.on('data', () => T('unexpected data'));
    sock.on('end', () => T(`'end'`));
    sock.on('close', (hadError) => {
      T(`'close' hadError=${hadError}`);
      finish();
    });
    pump();
  },
};

const SCENARIOS = { 'node-halfopen': halfopen, 'node-backpressure': backpressure };

// ------------------------------------------------------------------ protocol

const s = SCENARIOS[scen];
if (!s || (role !== 'server' && role !== 'client')) {
  process.stderr.write(`usage: node behave.mjs {${Object.keys(SCENARIOS).join(',')}} server | client PORT\n`);
  process.exit(2);
}
setTimeout(() => {
  process.stderr.write('behave.mjs: watchdog timeout, giving up\n');
  process.exit(3);
}, 40_000).unref();

let go = false; // the client's warm-up ends at "go" on stdin

process.stdin.on('end', () => {
  stdinEnded = true;
  if (finished) process.exit(0);
});

if (role === 'server') {
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    server.close();
    sock.setNoDelay(true);
    const warm = (b) => {
      const g = b.indexOf(0x67); // 'g'
      sock.write(g < 0 ? b : b.subarray(0, g + 1));
      if (g >= 0) {
        sock.off('data', warm);
        s.server(sock, b.subarray(g + 1));
      }
    };
    sock.on('data', warm);
  });
  server.listen(0, '127.0.0.1', () => T(`= port ${server.address().port}`));
  process.stdin.resume();
} else {
  let buf = '';
  let connectTo = portArg === '-' ? null : Number(portArg); // "-": "port N" comes on stdin
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => {
    buf += d;
    if (connectTo === null) {
      const m = buf.match(/^port (\d+)\n/);
      if (!m) return;
      buf = buf.slice(m[0].length);
      connectTo = Number(m[1]);
      start(connectTo);
    }
    if (buf.includes('go\n')) go = true;
  });
  if (connectTo !== null) start(connectTo);
}

function start(port) {
  const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => {
    sock.setNoDelay(true);
    T(`= local ${sock.localAddress}:${sock.localPort}`);
    T('= ready');
    const warm = (b) => {
      if (b[0] === 0x77) { // 'w' echoed: again, or go
        if (go) sock.write('g');
        else setTimeout(() => sock.write('w'), 2);
        return;
      }
      if (b[0] !== 0x67) throw new Error(`bad warm-up echo ${b[0]}`);
      sock.off('data', warm);
      s.client(sock, b.subarray(1));
    };
    sock.on('data', warm);
    sock.write('w');
  });
}
