"""http serve -v: each request head is printed after a tag naming the peer and the
connection, so heads from clients served at the same time can be told apart."""
import os
import re
import socket
import tempfile
import time
import unittest

import harness
import httptest as H


class VerboseTags(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = tmp.name
        with open(os.path.join(self.root, "a.txt"), "w") as f:
            f.write("a\n")

    def request(self, sock, path):
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        got = b""
        while b"a\n" not in got.split(b"\r\n\r\n", 1)[-1] or b"\r\n\r\n" not in got:
            chunk = sock.recv(4096)
            self.assertTrue(chunk, got)
            got += chunk

    def stderr_until(self, srv, count, timeout=10):
        text = ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(re.findall(r"GET /a\.txt\?", text)) < count:
            text += srv.read_stderr(0.2)
        return text

    def test_peer_and_connection_number(self):
        srv = H.serve(self, self.root, "-v", "--access-log", "off")
        host, port = srv.host_port()
        c1 = harness.connect((host, port), 10)
        self.addCleanup(c1.close)
        c2 = harness.connect((host, port), 10)
        self.addCleanup(c2.close)
        self.request(c1, "/a.txt?1")
        self.request(c2, "/a.txt?2")
        self.request(c1, "/a.txt?3")
        text = self.stderr_until(srv, 3)
        p1, p2 = c1.getsockname()[1], c2.getsockname()[1]
        lines = [l for l in text.splitlines() if "GET " in l]
        # over h2 the line also names the stream: the first and second of connection #1
        v = (lambda n: "HTTP/2 (stream %d)" % n) if harness.TRANSPORT == "h2" else (
            lambda n: "HTTP/1.1")
        self.assertEqual(lines, ["[127.0.0.1:%d #1] GET /a.txt?1 %s" % (p1, v(1)),
                                 "[127.0.0.1:%d #2] GET /a.txt?2 %s" % (p2, v(1)),
                                 "[127.0.0.1:%d #1] GET /a.txt?3 %s" % (p1, v(3))], text)
        # the rest of the head follows its request line as it arrived
        host = ":authority: x" if harness.TRANSPORT == "h2" else "Host: x"
        self.assertIn("[127.0.0.1:%d #1] GET /a.txt?1 %s\n%s\n" % (p1, v(1), host), text)

    def test_unix_peer(self):
        path = os.path.join(self.root, "s.sock")
        srv = H.serve(self, self.root, "-v", "--access-log", "off", listen=("unix:" + path,))
        c = socket.socket(socket.AF_UNIX)
        self.addCleanup(c.close)
        c.settimeout(10)
        c.connect(path)
        self.request(c, "/a.txt?u")
        text = self.stderr_until(srv, 1)
        self.assertIn("[unix #1] GET /a.txt?u HTTP/1.1\n", text)


if __name__ == "__main__":
    unittest.main()
