#!/usr/bin/env python3
"""Memory cost of idle HTTP/2 connections, as idle.py measures HTTP/1's.

Opens N connections to 127.0.0.1:PORT. On each it sends the HTTP/2 client
preface, a SETTINGS frame (empty, or with --stall INITIAL_WINDOW_SIZE=0) and
one GET as a HEADERS frame on stream 1 (END_STREAM|END_HEADERS), its header
block encoded here by hand:

    0x82              :method GET               (static table entry 2)
    0x86 | 0x87       :scheme http | https      (6 | 7)
    0x04 LEN PATH     :path, literal without indexing, name = entry 4
    0x01 LEN HOST     :authority "127.0.0.1", the same with entry 1

It then reads frames until the response's DATA frame with END_STREAM on
stream 1 (the HEADERS frame must come first and its block start with 0x88,
:status 200), acknowledges the server's SETTINGS, waits for the server's
ACK of its own, and leaves the connection idle: both sides have sent all
they had to. Plain connections are h2c by prior knowledge; with --tls each
first completes a full TLS handshake (no session resumption) offering ALPN
"h2" only, checks that "h2" was selected and the server's certificate
against --cafile.

With --stall the SETTINGS frame sets SETTINGS_INITIAL_WINDOW_SIZE to 0, so
the server may send no DATA at all: a connection counts as done once the
response's HEADERS arrived (without END_STREAM), and its stream stays open
on the server. Use a large file (--path /httptest/large.html) and a server
--send-timeout above the run's length, or the server ends the streams.

The server's resident memory (the process PID and every descendant) is
summed before and --settle seconds after the last connection is done, and
one line is printed in idle.py's format:
    conns=10000 ok=10000 failed=0 open=10000 before_kib=... after_kib=...
    kib_per_conn=... open_secs=... per_proc=PID:+KIB,...
"ok" counts connections that completed as above; "open" those still open
(not closed by the server, nothing unexpected received) at the measurement.
Anything but ok == open == conns is an error.

    python3 benches/load/h2_idle.py --port PORT --pid PID [--conns 10000]
        [--path /httptest/test.html] [--tls --cafile CA.pem] [--stall]
        [--settle 1] [--timeout 60]

Standard library only; the process-tree and limit helpers are idle.py's.
"""

import argparse
import errno
import os
import selectors
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the repository for idle.py
import idle  # noqa: E402  (beside this file)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
SETTINGS_INITIAL_WINDOW_SIZE = 0x4

# A server's first frames and a small response fit in far less; a frame
# header announcing more than the default SETTINGS_MAX_FRAME_SIZE is broken.
MAX_FRAME = 16384

AUTHORITY = b"127.0.0.1"


def frame(ftype, flags, stream, payload=b""):
    """One frame: 24-bit length, type, flags, 31-bit stream id, payload."""
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, stream) + payload


def hpack_int(value, prefix_bits, first=0):
    """An HPACK integer (RFC 7541 5.1) with `first`'s high bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal(name_index, value):
    """Literal header field without indexing, indexed name (RFC 7541 6.2.2), no Huffman."""
    return hpack_int(name_index, 4) + hpack_int(len(value), 7) + value


def request_block(path, tls):
    return b"".join(
        (
            b"\x82",  # :method GET
            b"\x87" if tls else b"\x86",  # :scheme https / http
            literal(4, path.encode()),  # :path
            literal(1, AUTHORITY),  # :authority
        )
    )


def first_bytes(path, tls, stall):
    settings = struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, 0) if stall else b""
    return (
        PREFACE
        + frame(SETTINGS, 0, 0, settings)
        + frame(HEADERS, END_STREAM | END_HEADERS, 1, request_block(path, tls))
    )


class H2Error(Exception):
    pass


class Conn:
    """One client connection: connect, [handshake,] one request, then idle."""

    __slots__ = ("sock", "out", "buf", "state", "events", "headers", "body", "acked", "got_settings", "finished")

    def __init__(self, sock, first):
        self.sock = sock
        self.out = first
        self.buf = b""
        self.state = "connecting"
        self.events = selectors.EVENT_WRITE
        self.headers = False  # the response's HEADERS arrived
        self.body = 0  # its DATA bytes so far
        self.finished = False  # the response is complete (or, stalled, started)
        self.got_settings = False  # the server's SETTINGS arrived (and its ACK is queued)
        self.acked = False  # the server acknowledged ours

    def done(self):
        return self.finished and self.got_settings and self.acked and not self.out


def on_frames(conn, stall):
    """Handle every complete frame in conn.buf; queue the answers in conn.out."""
    buf, pos = conn.buf, 0
    if buf.startswith(b"HTTP/1."):
        status_line = buf.split(b"\r\n", 1)[0].decode("latin-1")
        raise H2Error(f"an HTTP/1 answer: {status_line!r}")
    while len(buf) - pos >= 9:
        length = int.from_bytes(buf[pos : pos + 3], "big")
        ftype, flags, stream = struct.unpack(">BBI", buf[pos + 3 : pos + 9])
        stream &= 0x7FFFFFFF
        if length > MAX_FRAME:
            raise H2Error(f"frame type {ftype} of {length} bytes")
        if len(buf) - pos < 9 + length:
            break
        payload = buf[pos + 9 : pos + 9 + length]
        pos += 9 + length
        if ftype == SETTINGS:
            if flags & ACK:
                conn.acked = True
            else:
                conn.got_settings = True
                conn.out += frame(SETTINGS, ACK, 0)
        elif ftype == WINDOW_UPDATE:
            pass
        elif ftype == PING:
            if not flags & ACK:
                conn.out += frame(PING, ACK, 0, payload)
        elif ftype == GOAWAY:
            code = int.from_bytes(payload[4:8], "big") if len(payload) >= 8 else -1
            raise H2Error(f"GOAWAY code {code} {payload[8:]!r}")
        elif ftype == RST_STREAM:
            code = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else -1
            raise H2Error(f"RST_STREAM on stream {stream} code {code}")
        elif stream != 1:
            raise H2Error(f"frame type {ftype} on stream {stream}")
        elif conn.finished:
            raise H2Error(f"frame type {ftype} after the response")
        elif ftype == HEADERS:
            if conn.headers:
                raise H2Error("second HEADERS (trailers?)")
            if not flags & END_HEADERS:
                raise H2Error("response header block in CONTINUATION frames")
            start, end = 0, len(payload)
            if flags & PADDED:
                start, end = 1, end - payload[0]
            if flags & PRIORITY_FLAG:
                start += 5
            if start >= end or payload[start] != 0x88:
                raise H2Error(f"response block does not start with :status 200: {payload[start:start + 8].hex()}")
            conn.headers = True
            if flags & END_STREAM or stall:
                if stall and flags & END_STREAM:
                    raise H2Error("stalled response ended with its HEADERS (empty body?)")
                conn.finished = True
        elif ftype == DATA:
            if not conn.headers:
                raise H2Error("DATA before HEADERS")
            data = length - (payload[0] + 1 if flags & PADDED and length else 0)
            conn.body += data
            if flags & END_STREAM:
                conn.finished = True
            elif length:
                # Give the window back, so a response longer than 64 KiB completes.
                inc = struct.pack(">I", length)
                conn.out += frame(WINDOW_UPDATE, 0, 0, inc) + frame(WINDOW_UPDATE, 0, 1, inc)
        else:
            raise H2Error(f"unexpected frame type {ftype} on stream 1")
    conn.buf = buf[pos:]


def run(args):
    idle.raise_nofile(args.conns)
    ctx = None
    if args.tls:
        ctx = idle.tls_context(args.cafile)
        ctx.set_alpn_protocols(["h2"])
    first = first_bytes(args.path, args.tls, args.stall)
    sel = selectors.DefaultSelector()
    addr = ("127.0.0.1", args.port)

    before = idle.tree_rss(args.pid)
    started = time.monotonic()
    deadline = started + args.timeout
    done, errors = [], {}
    to_open, in_flight = args.conns, 0

    def count(why, n=1):
        errors[why] = errors.get(why, 0) + n

    def fail(conn, why):
        nonlocal in_flight
        count(why)
        sel.unregister(conn.sock)
        conn.sock.close()
        in_flight -= 1

    def want(conn, events):
        if events != conn.events:
            sel.modify(conn.sock, events, conn)
            conn.events = events

    while (to_open or in_flight) and time.monotonic() < deadline:
        while to_open and in_flight < idle.MAX_IN_FLIGHT:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if ctx is not None:
                # As idle.py: checked against the IP address entry, no SNI.
                sock = ctx.wrap_socket(sock, server_hostname="127.0.0.1", do_handshake_on_connect=False)
            sock.setblocking(False)
            err = sock.connect_ex(addr)
            to_open -= 1
            if err not in (0, errno.EINPROGRESS):
                count(f"connect: {os.strerror(err)}")
                sock.close()
                continue
            conn = Conn(sock, first)
            sel.register(sock, conn.events, conn)
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
                    conn.state = "handshaking" if ctx is not None else "open"
                if conn.state == "handshaking":
                    sock.do_handshake()
                    alpn = sock.selected_alpn_protocol()
                    if alpn != "h2":
                        fail(conn, f"ALPN selected {alpn!r}, not 'h2'")
                        continue
                    conn.state = "open"
                # Read all there is (over TLS, until the TLS layer wants
                # more bytes from the socket), then write what it asked for.
                if conn.out:
                    sent = sock.send(conn.out)
                    conn.out = conn.out[sent:]
                closed = False
                try:
                    while True:
                        data = sock.recv(65536)
                        if not data:
                            closed = True
                            break
                        conn.buf += data
                        on_frames(conn, args.stall)
                except (BlockingIOError, ssl.SSLWantReadError):
                    pass
                if closed:
                    fail(conn, "closed before the response was complete")
                    continue
                if conn.out:
                    sent = sock.send(conn.out)
                    conn.out = conn.out[sent:]
                if conn.done():
                    if conn.buf:
                        fail(conn, "partial frame after the response")
                        continue
                    sel.unregister(sock)
                    in_flight -= 1
                    done.append(conn)
                    continue
                want(conn, selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0))
            except ssl.SSLWantReadError:
                want(conn, selectors.EVENT_READ)
            except ssl.SSLWantWriteError:
                want(conn, selectors.EVENT_READ | selectors.EVENT_WRITE)
            except (BlockingIOError, InterruptedError):
                want(conn, selectors.EVENT_READ | selectors.EVENT_WRITE)
            except H2Error as e:
                fail(conn, str(e))
            except (OSError, ValueError) as e:
                # ssl.SSLError (a failed certificate check, say) is an OSError.
                fail(conn, str(e))
    open_secs = time.monotonic() - started
    if to_open or in_flight:
        count("timed out", to_open + in_flight)

    time.sleep(args.settle)
    after = idle.tree_rss(args.pid)

    still_open = idle.count_still_open(done, ctx, count)
    for key in list(sel.get_map().values()):
        key.fileobj.close()

    idle.report("h2_idle.py", args.conns, len(done), still_open, before, after, open_secs, errors)
    if not args.stall:
        bodies = sorted({c.body for c in done})
        if len(bodies) > 1:
            print(f"h2_idle.py: response bodies of different lengths: {bodies[:5]}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="See the top of this file for what is checked."
    )
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="server master pid (workers are found below it)")
    p.add_argument("--conns", type=int, default=10000)
    p.add_argument("--path", default="/httptest/test.html")
    p.add_argument("--settle", type=float, default=1.0, help="seconds between the last response and the measurement")
    p.add_argument("--timeout", type=float, default=60.0, help="give up opening connections after this many seconds")
    p.add_argument("--tls", action="store_true", help="connect with TLS (a full handshake each), ALPN h2")
    p.add_argument("--cafile", help="with --tls: the CA certificate that signed the server's")
    p.add_argument(
        "--stall",
        action="store_true",
        help="announce INITIAL_WINDOW_SIZE=0: each stream stays open with its response's HEADERS sent, no DATA",
    )
    args = p.parse_args()
    if args.tls and not args.cafile:
        p.error("--tls needs --cafile")
    run(args)


if __name__ == "__main__":
    main()
