#!/usr/bin/env python3
"""Slowloris-style clients: N connections that trickle a request head one byte
at a time, for issue 3's "normal clients keep their latency" check.

    python3 benches/trickle.py HOST PORT [CONNECTIONS] [SECONDS] [INTERVAL]

Each connection sends `GET /httptest/test.html HTTP/1.1\\r\\nHost: x\\r\\nX-a: ...`
one byte every INTERVAL seconds (default 1) and never finishes the head. A
connection the server closes is reopened, and counted. Load goes only to
127.0.0.1 and the run ends after SECONDS (default 15).
"""
import resource
import selectors
import socket
import sys
import time


def main():
    host = sys.argv[1]
    port = int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 15.0
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
    if host not in ("127.0.0.1", "localhost"):
        sys.exit("trickle.py: load goes only to 127.0.0.1")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 100)), hard))
    head = b"GET /httptest/test.html HTTP/1.1\r\nHost: x\r\nX-slow: " + b"a" * 10000

    def connect():
        s = socket.create_connection((host, port))
        s.setblocking(False)
        return [s, 0]

    conns = [connect() for _ in range(count)]
    closed = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for c in conns:
            try:
                c[0].send(head[c[1] % len(head):][:1])
                c[1] += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                closed += 1
                c[0].close()
                c[:] = connect()
        time.sleep(interval)
    for c in conns:
        c[0].close()
    print(f"trickle: {count} connections for {seconds:.0f} s, {closed} closed by the server and reopened")


if __name__ == "__main__":
    main()
