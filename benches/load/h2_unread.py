#!/usr/bin/env python3
"""Memory an h2c download holds in the server when its client reads nothing.

    python3 benches/load/h2_unread.py PORT N PID [--path P] [--check FILE]

Opens N connections to 127.0.0.1:PORT. On each it sends the HTTP/2 client
preface, SETTINGS_INITIAL_WINDOW_SIZE 2^31-1, a WINDOW_UPDATE opening the
connection's window as far, and one GET for --path (h2_idle.py's header
block), with a 64 KiB receive buffer, and then never reads. The server may
send all of the file; only the sockets' buffers stop it. After 3 s it prints
the growth of the resident memory of the server's process tree (PID and its
descendants, as idle.py sums it) per connection. A large file (64 MB, say)
puts the kernel under TCP memory pressure with 1,000 connections, where a
socket takes less than its send buffer's room.

With --check FILE it then reads two of the connections to the end and says
whether their DATA is FILE byte for byte. --max-frame N also sets
SETTINGS_MAX_FRAME_SIZE (up to 2^24-1): a client may allow frames as large
as a file, and the server must still not read a whole file into one.
"""

import argparse
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import h2_idle  # noqa: E402  (beside this file)
import idle  # noqa: E402
from h2_idle import DATA, END_HEADERS, END_STREAM, HEADERS, SETTINGS, WINDOW_UPDATE, frame  # noqa: E402

MAX_WINDOW = 2**31 - 1


SETTINGS_MAX_FRAME_SIZE = 0x5


def request(path, max_frame=None):
    settings = struct.pack(">HI", h2_idle.SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW)
    if max_frame:
        settings += struct.pack(">HI", SETTINGS_MAX_FRAME_SIZE, max_frame)
    return (
        h2_idle.PREFACE
        + frame(SETTINGS, 0, 0, settings)
        + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", MAX_WINDOW - 65535))  # the connection's
        + frame(HEADERS, END_STREAM | END_HEADERS, 1, h2_idle.request_block(path, tls=False))
    )


def data_of(sock, size, timeout):
    """DATA payload bytes of stream 1 until `size` arrived or the socket ends."""
    sock.settimeout(timeout)
    buf, data = b"", bytearray()
    while len(data) < size:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            if buf[3] == DATA and int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF == 1:
                data += buf[9 : 9 + length]
            buf = buf[9 + length :]
    return bytes(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("pid", type=int, help="the server (the master): its tree is summed")
    ap.add_argument("--path", default="/httptest/large.html")
    ap.add_argument("--check", help="the served file, to compare two downloads with")
    ap.add_argument("--max-frame", type=int, help="SETTINGS_MAX_FRAME_SIZE to send")
    a = ap.parse_args()
    req = request(a.path, a.max_frame)
    before = sum(idle.tree_rss(a.pid).values())
    socks = []
    for _ in range(a.n):
        s = socket.create_connection(("127.0.0.1", a.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(req)
        socks.append(s)
    time.sleep(3)
    after = sum(idle.tree_rss(a.pid).values())
    print(f"{a.n} unread h2c downloads: server RSS {before} -> {after} KiB, {(after - before) / a.n:.1f} KiB each")
    if a.check:
        with open(a.check, "rb") as f:
            want = f.read()
        for k in (0, a.n // 2):
            got = data_of(socks[k], len(want), 20)
            print(f"connection {k}: {len(got)} bytes of DATA, the file byte for byte: {got == want}")


if __name__ == "__main__":
    main()
