"""Memory of TLS connections in oserver's workers: N connections that are
blocked in a download (the client reads nothing, with a small receive
buffer) or idle after one small request; prints the workers' RSS growth per
connection.

    python3 benches/load/tls_active.py HTTPS_PORT N active|idle WORKER_PIDS CA_FILE

WORKER_PIDS is comma-separated; CA_FILE verifies the server's certificate
chain (the host name is not checked: the test certificate's names vary).
"""
import socket, ssl, sys, time, os
port, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
pids = [int(p) for p in sys.argv[4].split(",")]
def rss():
    t = 0
    for p in pids:
        for line in open(f"/proc/{p}/status"):
            if line.startswith("VmRSS:"):
                t += int(line.split()[1])
    return t
ctx = ssl.create_default_context(cafile=sys.argv[5])
ctx.check_hostname = False
before = rss()
conns = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    # A small receive buffer, so the server's side blocks early.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    t = ctx.wrap_socket(s, server_hostname="localhost")
    path = "/httptest/large.html" if mode == "active" else "/httptest/test.html"
    t.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    if mode == "idle":
        t.recv(4096)
    conns.append(t)
time.sleep(2)
after = rss()
print(f"{mode}: {n} connections, RSS {before} -> {after} KiB, {(after-before)/n:.2f} KiB/conn")
