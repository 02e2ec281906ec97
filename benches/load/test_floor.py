"""Tests of the floor servers (benches/load/floor): they answer what
load.sh's keep-alive cases ask, byte for byte, on one connection, and close
on anything else. python3 -m unittest discover -s benches/load"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SMALL, LARGE = "/httptest/test.html", "/httptest/large.html"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_response(sock):
    """One response: (status line, headers dict, body), by Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the head ended")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    want = int(headers["content-length"])
    while len(body) < want:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    return lines[0], headers, body


@unittest.skipUnless(shutil.which("gcc"), "gcc is not installed")
class FloorEpoll(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        binary = os.path.join(cls.tmp.name, "floor_epoll")
        subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary,
                        os.path.join(HERE, "floor", "floor_epoll.c")], check=True)
        cls.port = free_port()
        cls.proc = subprocess.Popen([binary, str(cls.port), SMALL, REPO + SMALL, LARGE, REPO + LARGE],
                                    stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", cls.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.proc.kill()  # its child dies with it (PR_SET_PDEATHSIG)
        cls.proc.wait()
        cls.tmp.cleanup()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.addCleanup(s.close)
        return s

    def test_both_files_byte_for_byte_on_one_connection(self):
        s = self.connect()
        for path in (SMALL, LARGE, SMALL, LARGE):
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status, headers, body = read_response(s)
            self.assertEqual(status, "HTTP/1.1 200 OK")
            with open(REPO + path, "rb") as f:
                self.assertEqual(body, f.read(), path)

    def test_anything_else_is_closed(self):
        for request in (b"GET /other HTTP/1.1\r\n\r\n", b"POST /httptest/test.html HTTP/1.1\r\n\r\n",
                        b"GET /httptest/test.htmlx HTTP/1.1\r\n\r\n"):
            s = self.connect()
            s.sendall(request)
            self.assertEqual(s.recv(100), b"", request)


if __name__ == "__main__":
    unittest.main()
