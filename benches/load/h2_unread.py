#!/usr/bin/env python3
"""Memory an h2c download holds in the server when its client reads nothing.

    python3 benches/load/h2_unread.py PORT N PID[,PID...] [--path P] [--check FILE]

Opens N connections to 127.0.0.1:PORT. On each it sends the HTTP/2 client
preface, SETTINGS_INITIAL_WINDOW_SIZE 2^31-1, a WINDOW_UPDATE opening the
connection's window as far, and one GET for --path (the header block encoded
by hand as h2_idle.py does), with a 64 KiB receive buffer, and then never
reads. The server may send all of the file; only the sockets' buffers stop
it. After 3 s it prints the growth of the resident memory of the PIDs (the
workers) per connection. A large file (64 MB, say) puts the kernel under
TCP memory pressure with 1,000 connections, where a socket takes less than
its send buffer's room.

With --check FILE it then reads two of the connections to the end and says
whether their DATA is FILE byte for byte.
"""

import argparse
import socket
import struct
import time


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def request(path):
    p, host = path.encode(), b"127.0.0.1"
    block = bytes([0x82, 0x86, 0x04, len(p)]) + p + bytes([0x01, len(host)]) + host
    return (
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        + frame(4, 0, 0, struct.pack(">HI", 4, 2**31 - 1))  # SETTINGS_INITIAL_WINDOW_SIZE
        + frame(8, 0, 0, struct.pack(">I", 2**31 - 1 - 65535))  # WINDOW_UPDATE, connection
        + frame(1, 5, 1, block)  # HEADERS, END_STREAM | END_HEADERS
    )


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            total += sum(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return total


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
            if buf[3] == 0 and int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF == 1:
                data += buf[9 : 9 + length]
            buf = buf[9 + length :]
    return bytes(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("pids")
    ap.add_argument("--path", default="/httptest/large.html")
    ap.add_argument("--check", help="the served file, to compare two downloads with")
    a = ap.parse_args()
    pids = [int(p) for p in a.pids.split(",")]
    req = request(a.path)
    before = rss_kib(pids)
    socks = []
    for _ in range(a.n):
        s = socket.create_connection(("127.0.0.1", a.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(req)
        socks.append(s)
    time.sleep(3)
    after = rss_kib(pids)
    print(f"{a.n} unread h2c downloads: workers RSS {before} -> {after} KiB, {(after - before) / a.n:.1f} KiB each")
    if a.check:
        with open(a.check, "rb") as f:
            want = f.read()
        for k in (0, a.n // 2):
            got = data_of(socks[k], len(want), 20)
            print(f"connection {k}: {len(got)} bytes of DATA, the file byte for byte: {got == want}")


if __name__ == "__main__":
    main()
