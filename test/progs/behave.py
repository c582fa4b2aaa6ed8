#!/usr/bin/env python3
"""behave.py: differential behaviour scenarios in Python's socket module
(issue 3), with the protocol of behave.h:

    behave.py SCENARIO server          listens on 127.0.0.1:0, prints "= port N"
    behave.py SCENARIO client PORT|-   ("-": reads "port N" from stdin) prints "= local ADDR", "= ready", warms the
                                       connection up (1-byte echoes) until "go"
                                       on stdin, then sends 'g' (echoed)

Both ends then run the scenario and print their trace (one event per line),
then "= end", and exit at stdin EOF. An abstract Unix socket named after the
TCP port orders steps between the two ends (it passes through the shim).
Both ends set TCP_NODELAY (see behave.h: Nagle plus delayed ACKs makes the
kernel's own traces timing-dependent). Nothing that depends on buffer sizes,
timing, ports or fds is traced.
"""
import errno
import os
import select
import signal
import socket
import sys


def T(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def yn(b):
    return "yes" if b else "no"


def ename(e):
    return errno.errorcode.get(e, "E#%d" % e)


def pattern(seed, off, n):
    """Bytes [off, off+n) of stream `seed`: period 251, so chunk boundaries never align."""
    period = bytes(((i * 7 + seed * 13) ^ (i >> 3)) & 0xFF for i in range(251))
    reps = (off % 251 + n) // 251 + 2
    start = off % 251
    return (period * reps)[start:start + n]


side = None


def side_put(c):
    side.sendall(c.encode())


def side_get(c, timeout=5.0):
    side.settimeout(timeout)
    try:
        b = side.recv(1)
    except socket.timeout:
        sys.exit("behave.py: side channel: no %r within %s s" % (c, timeout))
    if b != c.encode():
        sys.exit("behave.py: side channel: got %r, expected %r" % (b, c))


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            break
        buf += b
    return bytes(buf)


# ---------------------------------------------------------------- scenarios

LINES = [b"line %d %s\n" % (i, b"x" * (i * 7 % 300)) for i in range(2000)]
CHUNKS = [1, 7, 100, 4096, 13, 65536, 3, 999]


def lines_srv(s):
    """sendall of many lines in irregular chunks, then SHUT_WR."""
    blob = b"".join(LINES)
    off, k = 0, 0
    while off < len(blob):
        n = CHUNKS[k % len(CHUNKS)]
        r = s.sendall(blob[off:off + n])
        if r is not None:
            T("sendall returned %r" % (r,))
        off += n
        k += 1
    T("sendall of %d bytes in %d irregular chunks: done" % (len(blob), k))
    s.shutdown(socket.SHUT_WR)
    T("shutdown(SHUT_WR): done")


def lines_cli(s):
    """makefile().readline() over them; EOF after the last line."""
    f = s.makefile("rb")
    ok = True
    for want in LINES:
        if f.readline() != want:
            ok = False
    T("readline() x %d: every line as sent: %s" % (len(LINES), yn(ok)))
    T("readline() at EOF: %r" % (f.readline(),))
    T("readline() at EOF again: %r" % (f.readline(),))
    f.close()
    T("recv(10) after EOF: %r" % (s.recv(10),))


def timeout_srv(s):
    side_get("a")
    s.sendall(pattern(1, 0, 10))
    side_put("b")
    data = recv_exact(s, 1 << 20)
    T("received %d bytes; as sent: %s" % (len(data), yn(data == pattern(2, 0, 1 << 20))))
    s.sendall(b"done")


def timeout_cli(s):
    """settimeout(0.2) on idle: timeout; data; settimeout(0): EAGAIN; blocking again: sendall."""
    s.settimeout(0.2)
    T("gettimeout() = %r" % (s.gettimeout(),))
    try:
        b = s.recv(100)
        T("recv(100) with settimeout(0.2) on idle returned %r" % (b,))
    except socket.timeout as e:
        T("recv(100) with settimeout(0.2) on idle: %s: %s" % (type(e).__name__, e))
    side_put("a")
    side_get("b")
    b = s.recv(100)
    T("recv(100) = %d bytes; as sent: %s" % (len(b), yn(b == pattern(1, 0, 10))))
    s.settimeout(0.0)
    try:
        b = s.recv(100)
        T("recv(100) non-blocking on empty returned %r" % (b,))
    except BlockingIOError as e:
        T("recv(100) non-blocking on empty: BlockingIOError %s" % ename(e.errno))
    s.setblocking(True)
    T("gettimeout() after setblocking(True) = %r" % (s.gettimeout(),))
    T("sendall(1 MiB) = %r" % (s.sendall(pattern(2, 0, 1 << 20)),))
    T("recv_exact(4) = %r" % (recv_exact(s, 4),))


def sendall_timeout_srv(s):
    side_get("t", timeout=10.0)
    got = bytearray()
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        got += b
    T("read until EOF: the bytes are a prefix of what was sent (count not traced): %s"
      % yn(len(got) > 0 and bytes(got) == pattern(3, 0, len(got))))


def sendall_timeout_cli(s):
    """sendall of 64 MiB with settimeout(0.3) to a peer that does not read."""
    s.settimeout(0.3)
    try:
        s.sendall(pattern(3, 0, 64 << 20))
        T("sendall(64 MiB) to a peer not reading, settimeout(0.3): returned")
    except socket.timeout as e:
        T("sendall(64 MiB) to a peer not reading, settimeout(0.3): %s: %s" % (type(e).__name__, e))
    s.shutdown(socket.SHUT_WR)
    side_put("t")


SCENARIOS = {
    "py-lines": (lines_srv, lines_cli),
    "py-timeout": (timeout_srv, timeout_cli),
    "py-sendall-timeout": (sendall_timeout_srv, sendall_timeout_cli),
}

# ---------------------------------------------------------------- protocol


def side_name(port):
    return "\0pipedevice-behave-py-%d-%d" % (port, os.getuid())


def finish():
    T("= end")
    while True:
        r, _, _ = select.select([0], [], [], 20)
        if not r or not os.read(0, 64):
            break
    sys.exit(0)


def main():
    global side
    if len(sys.argv) < 3 or sys.argv[1] not in SCENARIOS:
        sys.exit("usage: behave.py {%s} server | client PORT" % ",".join(SCENARIOS))
    signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
    signal.alarm(40)
    srv, cli = SCENARIOS[sys.argv[1]]
    if sys.argv[2] == "server":
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(4)
        port = ls.getsockname()[1]
        sl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sl.bind(side_name(port))
        sl.listen(1)
        T("= port %d" % port)
        s, _ = ls.accept()
        side, _ = sl.accept()
        ls.close()
        sl.close()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            c = recv_exact(s, 1)
            if len(c) != 1:
                sys.exit("behave.py: EOF in the warm-up")
            s.sendall(c)
            if c == b"g":
                break
        srv(s)
    else:
        if sys.argv[3] == "-":  # "port N" on stdin (the harness starts both ends at once)
            line = b""
            while not line.endswith(b"\n"):
                b = os.read(0, 1)
                if not b:
                    sys.exit("behave.py: stdin closed before the port")
                line += b
            port = int(line.split()[1])
        else:
            port = int(sys.argv[3])
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        side = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        side.connect(side_name(port))
        host, lport = s.getsockname()
        T("= local %s:%d" % (host, lport))
        T("= ready")
        buf = b""
        while b"go\n" not in buf:
            s.sendall(b"w")
            if recv_exact(s, 1) != b"w":
                sys.exit("behave.py: bad warm-up echo")
            r, _, _ = select.select([0], [], [], 0.002)
            if r:
                b = os.read(0, 64)
                if not b:
                    sys.exit("behave.py: stdin closed before go")
                buf += b
        s.sendall(b"g")
        if recv_exact(s, 1) != b"g":
            sys.exit("behave.py: bad echo of go")
        cli(s)
    finish()


if __name__ == "__main__":
    main()
