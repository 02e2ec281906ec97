#!/usr/bin/env python3
"""Memory cost of idle keep-alive connections, for benches/load.sh.

Opens N connections to 127.0.0.1:PORT, makes one GET on each, reads the whole
response, then leaves every connection open and idle. With --tls each
connection first completes a full TLS handshake (no session resumption),
checking the server's certificate against --cafile, and the GET goes over
TLS. The resident memory of the server (the process PID and all its
descendants, i.e. master + workers) is summed before and about a second after
the last response; the difference divided by N is the server's memory per idle
connection.

Prints one line of key=value pairs on stdout, for the shell script to parse:
    conns=10000 ok=10000 failed=0 open=10000 before_kib=... after_kib=...
    kib_per_conn=... open_secs=... per_proc=PID:+KIB,...
"ok" counts connections that got a complete 200 response that did not ask to
close; "open" counts those still open (not closed by the server) when the
memory was measured. Anything but ok == open == conns is an error.

Standard library only, so it runs wherever python3 does.
"""

import argparse
import errno
import os
import resource
import selectors
import socket
import ssl
import sys
import time

# Handshakes in flight at once. Below every server's listen backlog (1024) so
# no SYN is dropped: a dropped SYN costs a 1 s retransmit, not a failure, but it
# would make the run slow and its timing noisy.
MAX_IN_FLIGHT = 256

# Response head larger than this is not what a static server sends for a
# 100-byte file; treat it as a broken response rather than buffer forever.
MAX_HEAD_BYTES = 16384


def descendants(root_pid):
    """Return root_pid and every process below it (by ppid in /proc/*/stat)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # exited while we looked
        # comm (field 2) may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        ppid = int(fields[1])
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(found)


def rss_kib(pid, field="VmRSS"):
    """VmRSS (or another of /proc/PID/status's KiB fields, such as
    RssAnon) of one process in KiB, 0 if it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss(root_pid):
    """{pid: rss_kib} over the server's whole process tree."""
    return {pid: rss_kib(pid) for pid in descendants(root_pid)}


def raise_nofile(need):
    """Make room for `need` sockets; as root the hard limit may be raised too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need + 100  # stdin/out/err, the selector, /proc files
    if soft >= want:
        return
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            # Not root, or no CAP_SYS_RESOURCE in this container.
            sys.exit(f"idle.py: RLIMIT_NOFILE hard limit {hard} < {want} needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Conn:
    """One client connection: connect, [handshake,] send, read one response, then idle."""

    __slots__ = ("sock", "out", "buf", "need", "state")

    def __init__(self, sock, request):
        self.sock = sock
        self.out = request
        self.buf = b""
        self.need = None  # total bytes of head + body once the head is parsed
        self.state = "connecting"


def parse_head(buf):
    """Return (head_len, content_length, keep_alive) or None if incomplete.

    Raises ValueError on a response that is not a keep-alive 200.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEAD_BYTES:
            raise ValueError("response head too large")
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "200":
        raise ValueError(f"status line {lines[0]!r}")
    length, keep_alive = None, lines[0].startswith("HTTP/1.1")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            keep_alive = "close" not in value
    if length is None:
        raise ValueError("no Content-Length")
    if not keep_alive:
        raise ValueError("server asked to close the connection")
    return end + 4, length, keep_alive


def tls_context(cafile):
    """A client context that checks the server's certificate and name against cafile."""
    # No session is offered for resumption (Python resumes only when given
    # session=), so every connection is a full handshake, as with wrk.
    return ssl.create_default_context(cafile=cafile)


def run(args):
    raise_nofile(args.conns)
    ctx = tls_context(args.cafile) if args.tls else None
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
        "User-Agent: oserver-bench-idle\r\n\r\n"
    ).encode()
    sel = selectors.DefaultSelector()
    addr = ("127.0.0.1", args.port)

    before = tree_rss(args.pid)
    started = time.monotonic()
    deadline = started + args.timeout
    idle, errors = [], {}
    to_open, in_flight = args.conns, 0

    def count(why, n=1):
        errors[why] = errors.get(why, 0) + n

    def fail(conn, why):
        nonlocal in_flight
        count(why)
        sel.unregister(conn.sock)
        conn.sock.close()
        in_flight -= 1

    while (to_open or in_flight) and time.monotonic() < deadline:
        while to_open and in_flight < MAX_IN_FLIGHT:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if ctx is not None:
                # 127.0.0.1 is checked against the certificate's IP address
                # entry; no SNI is sent for an address, as curl and browsers do.
                sock = ctx.wrap_socket(sock, server_hostname="127.0.0.1", do_handshake_on_connect=False)
            sock.setblocking(False)
            err = sock.connect_ex(addr)
            to_open -= 1
            if err not in (0, errno.EINPROGRESS):
                count(f"connect: {os.strerror(err)}")
                sock.close()
                continue
            conn = Conn(sock, request)
            sel.register(sock, selectors.EVENT_WRITE, conn)
            in_flight += 1
        for key, _ in sel.select(timeout=0.5):
            conn = key.data
            sock = conn.sock
            try:
                if conn.state == "connecting":
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(conn, f"connect: {os.strerror(err)}")
                        continue
                    conn.state = "handshaking" if ctx is not None else "sending"
                if conn.state == "handshaking":
                    sock.do_handshake()
                    conn.state = "sending"
                if conn.state == "sending":
                    sent = sock.send(conn.out)
                    conn.out = conn.out[sent:]
                    if not conn.out:
                        conn.state = "reading"
                        sel.modify(sock, selectors.EVENT_READ, conn)
                    continue
                # Over TLS one readable event may hold more than one record
                # (and a TLS 1.3 server sends its tickets before the response):
                # read until the TLS layer wants more bytes from the socket.
                while True:
                    data = sock.recv(65536)
                    if not data:
                        fail(conn, "closed before the whole response")
                        break
                    conn.buf += data
                    if conn.need is None:
                        head = parse_head(conn.buf)
                        if head is not None:
                            conn.need = head[0] + head[1]
                    if conn.need is not None and len(conn.buf) >= conn.need:
                        if len(conn.buf) > conn.need:
                            fail(conn, "bytes after the response")
                            break
                        sel.unregister(sock)
                        in_flight -= 1
                        conn.buf = b""
                        idle.append(conn)
                        break
                    if ctx is None:
                        break  # plain: wait for the next readable event
            except ssl.SSLWantReadError:
                if conn.state != "reading":
                    sel.modify(sock, selectors.EVENT_READ, conn)
            except ssl.SSLWantWriteError:
                sel.modify(sock, selectors.EVENT_WRITE, conn)
            except (BlockingIOError, InterruptedError):
                pass
            except (OSError, ValueError) as e:
                # ssl.SSLError (a failed certificate check, say) is an OSError.
                fail(conn, str(e))
    open_secs = time.monotonic() - started
    if to_open or in_flight:
        count("timed out", to_open + in_flight)

    # Let the servers finish whatever they do after a response (e.g. shrink
    # buffers) before measuring.
    time.sleep(args.settle)
    after = tree_rss(args.pid)

    still_open = count_still_open(idle, ctx, count)
    for key in list(sel.get_map().values()):
        key.fileobj.close()

    report("idle.py", args.conns, len(idle), still_open, before, after, open_secs, errors)


def count_still_open(conns, ctx, count):
    """How many of `conns` the server still holds open, each checked without
    blocking; anything else is counted as an error with `count`. Closes them."""
    still_open = 0
    for conn in conns:
        try:
            if ctx is None:
                data = conn.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            else:
                # A TLS read cannot peek; the sockets are non-blocking, and
                # any late post-handshake message is consumed here.
                data = conn.sock.recv(1)
            if data == b"":
                count("closed by server while idle")
            else:
                count("unexpected bytes while idle")
        except (BlockingIOError, ssl.SSLWantReadError):
            still_open += 1
        except OSError as e:
            count(f"idle: {e.strerror or e}")
    for conn in conns:
        conn.sock.close()
    return still_open


def report(name, conns, ok, still_open, before, after, open_secs, errors):
    """The key=value line on stdout, and the errors on stderr, prefixed `name`."""
    before_kib, after_kib = sum(before.values()), sum(after.values())
    per_proc = ",".join(
        f"{pid}:{after.get(pid, 0) - before.get(pid, 0):+d}" for pid in sorted(set(before) | set(after))
    )
    fields = {
        "conns": conns,
        "ok": ok,
        "failed": conns - ok,
        "open": still_open,
        "before_kib": before_kib,
        "after_kib": after_kib,
        "kib_per_conn": f"{(after_kib - before_kib) / conns:.3f}",
        "open_secs": f"{open_secs:.2f}",
        "per_proc": per_proc,
    }
    print(" ".join(f"{k}={v}" for k, v in fields.items()))
    for why, n in sorted(errors.items()):
        print(f"{name}: {n} connection(s): {why}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="server master pid (workers are found below it)")
    p.add_argument("--conns", type=int, default=10000)
    p.add_argument("--path", default="/httptest/test.html")
    p.add_argument("--settle", type=float, default=1.0, help="seconds between the last response and the measurement")
    p.add_argument("--timeout", type=float, default=60.0, help="give up opening connections after this many seconds")
    p.add_argument("--tls", action="store_true", help="connect with TLS (a full handshake each)")
    p.add_argument("--cafile", help="with --tls: the CA certificate that signed the server's")
    args = p.parse_args()
    if args.tls and not args.cafile:
        p.error("--tls needs --cafile")
    run(args)


if __name__ == "__main__":
    main()
