#!/usr/bin/env python3
"""Soak: rounds of mixed traffic, good and bad, against the real oserver;
after each round the workers must hold what they held before it.

    python3 benches/load/soak.py [--binary PATH] [--rounds N] [--duration SECS]
                                 [--only small,close,large,tls,h2c,h2,bad]
                                 [--server-args "FLAGS"] [--max-growth-kib K]

Starts PATH (default target/release/oserver) on free ports with HTTPS (a
throwaway self-signed certificate from the openssl command), two workers,
and 2 s timeouts so connections end soon after a round. Each round runs, for
--duration seconds and at once (--only picks some):

  - wrk: keep-alive on the small file (small) and over TLS (tls),
    `Connection: close` on it (close), keep-alive on the large page (large);
  - h2load: h2c by prior knowledge on the small file (h2c), h2 over TLS on
    the large page (h2);
  - two threads of bad or odd clients (bad), each turn one of: a download
    reset after 8 KiB, a head cut off (FIN or RST), bytes that are no
    request, half a TLS ClientHello then RST, a TLS download reset after its
    first bytes, h2c with a shut window then RST_STREAM and GOAWAY, h2c
    asking a large file and never reading, 50 pipelined requests never read,
    a head left unfinished until the round ends, an idle keep-alive
    connection held until the round ends, and a range and a HEAD read whole.

Then it waits for the workers to close every connection (their count of
sockets back to what it was after the warm-up) and samples each worker's
anonymous resident memory (heap and stacks: what a leak grows; the
binary's own pages are left out) and sockets. It prints one line per
round and a verdict, and exits 1 if a worker died or was replaced, kept
sockets after a round, a load tool or a bad client met an error that
means the server is stuck (a refused or timed-out connection, a wrong
status), or the workers' anonymous memory grew by more than
--max-growth-kib (default 4096) between the first round and the last (the
first round fills the allocator's pools, the timer wheel's buffers and the
open-file cache). The run's time is bounded: rounds x (duration + at most
15 s).

Needs wrk, h2load (nghttp2-client) and openssl; installs them with apt-get
when missing, as benches/load.sh does. Load goes to 127.0.0.1 only.
"""

import argparse
import os
import random
import re
import shlex
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import h2_idle  # noqa: E402  (beside this file)
import idle  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = "/httptest/test.html"
LARGE = "/httptest/large.html"
TOOLS = {"wrk": "wrk", "h2load": "nghttp2-client", "openssl": "openssl"}

# How long a worker may take to close its connections after a round: its
# timeouts are 2 s (keep-alive, head, send), and lingering closes and
# h2's GOAWAY add at most a few seconds more.
SETTLE_SECS = 15


def install_missing():
    missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        print(f"soak: installing {' '.join(missing)}", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, stdout=subprocess.DEVNULL)


def make_cert(tmp):
    key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def start_server(binary, cert, key, log, extra):
    args = [binary, "-r", REPO, "-p", "0", "--https-port", "0", "--tls-cert", cert, "--tls-key", key,
            "-w", "2", "--keepalive-timeout", "2", "--header-timeout", "2", "--send-timeout", "2", *extra]
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(log.name) as f:
            text = f.read()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/ https://127\.0\.0\.1:(\d+)/", text)
        w = re.search(r"workers started: \[([\d, ]+)\]", text)
        if m and w:
            return proc, int(m.group(1)), int(m.group(2))
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"soak: oserver did not start:\n{text}")


def workers(master):
    return [p for p in idle.descendants(master) if p != master]


def sockets(pid):
    """The sockets a process holds: its listeners and handoff sockets at
    rest, plus one per open connection. (Its other descriptors include the
    open-file cache's files, which come and go with what was served.)"""
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            except OSError:
                pass  # closed meanwhile
    except OSError:
        return -1
    return n


def sample(master):
    """Per worker: anonymous resident memory (its heap and stacks: what a
    leak grows; VmRSS also counts the binary's pages, which grow as code
    runs for the first time), sockets, and VmRSS, in KiB."""
    return {pid: (idle.rss_kib(pid, "RssAnon"), sockets(pid), idle.rss_kib(pid)) for pid in workers(master)}


def settle(master, baseline_fds):
    """Wait until every worker is back at its count of sockets; True if so."""
    deadline = time.time() + SETTLE_SECS
    while time.time() < deadline:
        now = {pid: sockets(pid) for pid in workers(master)}
        if now.keys() == baseline_fds.keys() and all(now[p] <= baseline_fds[p] for p in now):
            return True
        time.sleep(0.2)
    return False


# Bad and odd clients -------------------------------------------------------


def connect(port, timeout=2.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def reset(s):
    """Close with RST (SO_LINGER 0) instead of FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def get(path, extra=""):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


def read_some(s, n):
    got = 0
    while got < n:
        b = s.recv(65536)
        if not b:
            break
        got += len(b)
    return got


def read_response(s, body=True):
    """One whole response (Content-Length framing; no body read when
    `body` is false, for HEAD); its status. A close before its end is a
    ValueError: the server failed a good request."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            raise ValueError("closed before the head")
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    status = int(head[9:12])
    m = re.search(rb"(?i)content-length: *(\d+)", head)
    length = int(m.group(1)) if m and body else 0
    while len(rest) < length:
        b = s.recv(65536)
        if not b:
            raise ValueError("closed in the body")
        rest += b
    return status


def tls_ctx(alpn):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(alpn)
    return ctx


class Bad:
    """One thread's bad and odd clients for one round."""

    def __init__(self, port, https, seed):
        self.port, self.https = port, https
        self.rng = random.Random(seed)
        self.held = []  # sockets kept open until the round ends
        self.counts = {}
        self.errors = []

    def abort_download(self):
        s = connect(self.port)
        s.sendall(get(LARGE))
        read_some(s, 8192)
        reset(s)

    def cut_head(self):
        s = connect(self.port)
        s.sendall(get(SMALL)[: self.rng.randrange(1, 30)])
        if self.rng.random() < 0.5:
            reset(s)
        else:
            s.close()

    def garbage(self):
        s = connect(self.port)
        s.sendall(bytes(self.rng.randrange(256) for _ in range(200)) + b"\r\n\r\n")
        try:
            read_some(s, 1)
        except OSError:
            pass
        s.close()

    def tls_half_hello(self):
        s = connect(self.https)
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(40))
        reset(s)

    def tls_abort_download(self):
        s = tls_ctx(["http/1.1"]).wrap_socket(connect(self.https))
        s.sendall(get(LARGE))
        s.recv(4096)
        reset(s)

    def h2c_shut_window(self):
        s = connect(self.port)
        s.sendall(h2_idle.first_bytes(LARGE, False, True))
        s.recv(4096)
        s.sendall(h2_idle.frame(h2_idle.RST_STREAM, 0, 1, struct.pack(">I", 8))
                  + h2_idle.frame(h2_idle.GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
        s.close()

    def h2c_unread(self):
        s = connect(self.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        settings = struct.pack(">HI", h2_idle.SETTINGS_INITIAL_WINDOW_SIZE, 2**31 - 1)
        s.sendall(h2_idle.PREFACE + h2_idle.frame(h2_idle.SETTINGS, 0, 0, settings)
                  + h2_idle.frame(h2_idle.WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1 - 65535))
                  + h2_idle.frame(h2_idle.HEADERS, h2_idle.END_STREAM | h2_idle.END_HEADERS, 1,
                                  h2_idle.request_block(LARGE, False)))
        time.sleep(0.05)
        reset(s)

    def pipelined_unread(self):
        s = connect(self.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(get(LARGE) * 50)
        time.sleep(0.05)
        reset(s)

    def unfinished_head(self):
        s = connect(self.port)
        s.sendall(b"GET " + SMALL.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        self.held.append(s)

    def idle_keep_alive(self):
        s = connect(self.port)
        s.sendall(get(SMALL))
        read_response(s)
        self.held.append(s)

    def range_and_head(self):
        s = connect(self.port)
        s.sendall(get(LARGE, "Range: bytes=100-4195\r\n"))
        if read_response(s) != 206:
            raise ValueError("range: not 206")
        s.sendall(f"HEAD {LARGE} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        if read_response(s, body=False) != 200:
            raise ValueError("HEAD: not 200")
        s.close()

    KINDS = ("abort_download", "cut_head", "garbage", "tls_half_hello", "tls_abort_download",
             "h2c_shut_window", "h2c_unread", "pipelined_unread", "unfinished_head", "idle_keep_alive",
             "range_and_head")

    def run(self, until):
        while time.time() < until:
            kind = self.rng.choice(self.KINDS)
            if kind in ("unfinished_head", "idle_keep_alive") and len(self.held) >= 200:
                continue
            try:
                getattr(self, kind)()
                self.counts[kind] = self.counts.get(kind, 0) + 1
            except (OSError, ValueError, ssl.SSLError) as e:
                # A reset or a close is what some of these provoke; only a
                # refused or timed-out connection means the server is stuck.
                if isinstance(e, (ConnectionRefusedError, socket.timeout, ValueError)):
                    self.errors.append(f"{kind}: {e!r}")
        for s in self.held:
            s.close()


# Rounds --------------------------------------------------------------------


def loads(port, https, secs):
    """The load tools' commands, by name."""
    d = f"{secs}s"
    return {
        "small": ["wrk", "-t1", "-c50", "-d", d, f"http://127.0.0.1:{port}{SMALL}"],
        "close": ["wrk", "-t1", "-c20", "-d", d, "-H", "Connection: close", f"http://127.0.0.1:{port}{SMALL}"],
        "large": ["wrk", "-t1", "-c10", "-d", d, f"http://127.0.0.1:{port}{LARGE}"],
        "tls": ["wrk", "-t1", "-c20", "-d", d, f"https://127.0.0.1:{https}{SMALL}"],
        "h2c": ["h2load", "-c20", "-m10", "-D", str(secs), f"http://127.0.0.1:{port}{SMALL}"],
        "h2": ["h2load", "-c10", "-m2", "-D", str(secs), f"https://127.0.0.1:{https}{LARGE}"],
    }


def load(port, https, secs, only):
    cmds = [c for name, c in loads(port, https, secs).items() if name in only]
    return [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in cmds]


def served(outputs):
    """Requests the load tools completed, and their errors: each error the
    tool counted, and each tool that printed no summary (it failed)."""
    done, errors = 0, 0
    for out in outputs:
        m = re.search(r"(\d+) requests in", out)  # wrk
        if not m and not re.search(r"requests: \d+ total", out):
            errors += 1
        if m:
            done += int(m.group(1))
            e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
            errors += sum(int(x) for x in e.groups()) if e else 0
            n = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            errors += int(n.group(1)) if n else 0
        m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                      out)  # h2load
        if m:
            done += int(m.group(2))
            errors += int(m.group(3)) + int(m.group(4))
    return done, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO, "target/release/oserver"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--max-growth-kib", type=int, default=4096)
    ap.add_argument("--server-args", default="", help="more flags for oserver, e.g. '--cpu-affinity=off'")
    ap.add_argument("--only", default=",".join([*loads(0, 0, 0), "bad"]),
                    help="the traffic to send, comma-separated (default: all of it): "
                    + ", ".join([*loads(0, 0, 0), "bad"]))
    args = ap.parse_args()
    only = set(args.only.split(","))
    if not only or not only <= {*loads(0, 0, 0), "bad"}:
        sys.exit(f"soak: --only takes {', '.join([*loads(0, 0, 0), 'bad'])}")
    if args.rounds < 2 or args.duration < 1:
        sys.exit("soak: --rounds at least 2, --duration at least 1")
    install_missing()
    tmp = tempfile.mkdtemp(prefix="oserver-soak.")
    cert, key = make_cert(tmp)
    log = open(os.path.join(tmp, "server.log"), "w+")
    proc, port, https = start_server(args.binary, cert, key, log, shlex.split(args.server_args))
    failures = []
    try:
        # A short warm-up, then what the workers hold at rest.
        for p in load(port, https, 2, only):
            p.communicate()
        if not workers(proc.pid):
            sys.exit("soak: no workers after the warm-up")
        time.sleep(SETTLE_SECS / 5)  # its connections end (2 s timeouts)
        base = sample(proc.pid)
        base_fds = {pid: fds for pid, (_, fds, _) in base.items()}
        print(f"soak: {args.binary}, ports {port} and {https}, workers {sorted(base)}, "
              f"{args.rounds} rounds of {args.duration} s", flush=True)
        print("after warm-up: " + ", ".join(f"{p}: {a} KiB anonymous ({r} resident), {f} sockets"
                                           for p, (a, f, r) in sorted(base.items())))
        rss = []
        for rnd in range(1, args.rounds + 1):
            until = time.time() + args.duration
            procs = load(port, https, args.duration, only)
            bad = [Bad(port, https, seed=rnd * 100 + i) for i in range(2 if "bad" in only else 0)]
            threads = [threading.Thread(target=b.run, args=(until,)) for b in bad]
            for t in threads:
                t.start()
            outputs = [p.communicate()[0] for p in procs]
            for t in threads:
                t.join()
            done, errors = served(outputs)
            settled = settle(proc.pid, base_fds)
            now = sample(proc.pid)
            total = sum(a for a, _, _ in now.values())
            resident = sum(r for _, _, r in now.values())
            rss.append(total)
            kinds = sum(sum(b.counts.values()) for b in bad)
            bad_errors = [e for b in bad for e in b.errors]
            print(f"round {rnd}: {done} responses to the load tools ({errors} errors), {kinds} bad clients "
                  f"({len(bad_errors)} stuck), workers {total} KiB anonymous ({resident} resident), sockets "
                  + " ".join(f"{p}:{f}" for p, (_, f, _) in sorted(now.items())), flush=True)
            if now.keys() != base.keys():
                failures.append(f"round {rnd}: workers {sorted(base)} became {sorted(now)}")
                break
            if not settled:
                failures.append(f"round {rnd}: sockets {base_fds} became "
                                f"{ {p: f for p, (_, f, _) in now.items()} } {SETTLE_SECS} s after the round")
            if bad_errors:
                failures.append(f"round {rnd}: " + "; ".join(bad_errors[:5]))
            if errors:
                failures.append(f"round {rnd}: {errors} errors in the load tools")
        growth = rss[-1] - rss[0]
        print(f"workers' anonymous memory from round 1 to round {len(rss)}: {growth:+} KiB "
              f"(limit {args.max_growth_kib} KiB)")
        if growth > args.max_growth_kib:
            failures.append(f"memory grew {growth} KiB between the first round and the last")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=15)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("FAIL: " + "\n      ".join(failures))
        sys.exit(1)
    print("PASS: no worker died, every round's sockets were closed, memory stayed flat")


if __name__ == "__main__":
    main()
