"""A body over the limit is refused with 413 whose page names the limit and the option that
raises it, and the server says the same on stderr (once per ten seconds, not per request), so an
operator whose users cannot upload finds the knob."""
import tempfile
import unittest

import harness
import httptest as H


class BodyLimitHint(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def start(self, *extra):
        srv = harness.start(self, ["http", "serve", self.tmp.name, "-l", "127.0.0.1:0", "-w", "1",
                                   "--access-log", "off", "--upload", "--upload-anonymous"]
                            + list(extra))
        return srv, srv.host_port()

    def put(self, addr, size):
        head = ("PUT /f.bin HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size).encode()
        data = H.raw(addr[0], addr[1], head + b"a" * min(size, 4096))
        return H.parse_one(data, eof=True)[0]

    def test_page_and_log_name_the_limit_and_option(self):
        srv, addr = self.start("--max-body-bytes", "1000")
        resp = self.put(addr, 5000)
        self.assertEqual(resp.status, 413)
        body = resp.body.decode()
        self.assertIn("1000 bytes", body)
        self.assertIn("--max-body-bytes", body)
        for _ in range(3):
            self.assertEqual(self.put(addr, 5000).status, 413)
        err = srv.read_stderr(0.5)
        self.assertEqual(err.count("413:"), 1, err)  # rate-limited: one line for four refusals
        self.assertIn("--max-body-bytes", err)
        self.assertIn("1000 bytes", err)

    def test_under_the_limit_is_stored(self):
        srv, addr = self.start("--max-body-bytes", "10000")
        self.assertEqual(self.put(addr, 3000).status, 201)
        self.assertNotIn("413", srv.read_stderr(0.3))


if __name__ == "__main__":
    unittest.main()
