"""netkit http serve --echo: every request answered with exactly what was received; -v."""
import json
import os
import tempfile
import unittest

import harness
import httptest as H


class EchoTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.srv = H.serve(owner, cls.tmp.name, "--echo", "-q", "-v", "--max-body-bytes", "4096")
        cls.host, cls.port = cls.srv.host_port()

    def exchange(self, data, method="POST"):
        out = H.raw(self.host, self.port, data)
        resp, used = H.parse_one(out, method, eof=True)
        self.assertEqual(used, len(out))
        return resp

    @harness.http1_framing("field names as written, case and spacing (HTTP/2 sends them in lower case)")
    def test_text_round_trip_byte_faithful(self):
        body = bytes(range(256))
        head = (b"POST /p/a%20th?q=1&q=2 HTTP/1.1\r\n"
                b"Host: example\r\n"
                b"x-DUP: one\r\n"
                b"X-Dup:  two, three\r\n"
                b"weIRD-case:\tv\r\n"
                b"Content-Length: 256\r\n"
                b"Connection: close\r\n\r\n")
        r = self.exchange(head + body)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8")
        lines = r.body.split(b"\n")
        self.assertRegex(lines[0].decode(), r"^peer 127\.0\.0\.1:\d+$")
        self.assertEqual(lines[1], b"request-line POST /p/a%20th?q=1&q=2 HTTP/1.1")
        # every field line exactly as sent: order, case, duplicates, spacing
        sent = head.split(b"\r\n")[1:-2]
        self.assertEqual(lines[2:2 + len(sent)], [b"header " + l for l in sent])
        self.assertEqual(lines[2 + len(sent)], b"body 256 bytes binary")
        dump = b"\n".join(lines[4 + len(sent):])
        # the hex dump holds every byte, in order
        got = bytearray()
        for row in dump.split(b"\n"):
            if row:
                hexpart = row[10:10 + 16 * 3].split()
                got += bytes(int(x, 16) for x in hexpart)
        self.assertEqual(bytes(got), body)

    @harness.http1_framing("field names as written, case kept (HTTP/2 sends them in lower case)")
    def test_json(self):
        body = "héllo \"world\"\n".encode()
        head = ("PUT /j HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nA: 1\r\na: 2\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)).encode()
        r = self.exchange(head + body, "PUT")
        self.assertEqual(r.header("Content-Type"), "application/json")
        doc = json.loads(r.body)
        self.assertEqual(doc["method"], "PUT")
        self.assertEqual(doc["target"], "/j")
        self.assertEqual(doc["version"], "HTTP/1.1")
        self.assertEqual(doc["request_line"], "PUT /j HTTP/1.1")
        self.assertEqual(doc["headers"], [["Host", "h"], ["Accept", "application/json"],
                                          ["A", "1"], ["a", "2"],
                                          ["Content-Length", str(len(body))],
                                          ["Connection", "close"]])
        self.assertEqual(doc["body"], body.decode())
        self.assertEqual(doc["body_length"], len(body))
        self.assertRegex(doc["peer"], r"^127\.0\.0\.1:\d+$")
        # binary body: hex
        head = (b"POST / HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        r = self.exchange(head + b"3\r\n\x00\xff\x01\r\n2\r\nab\r\n0\r\n\r\n")
        doc = json.loads(r.body)
        self.assertEqual(doc["body_hex"], "00ff016162")
        self.assertEqual(doc["body_length"], 5)

    def test_get_head_and_limit(self):
        r = self.exchange(H.get_close("/x"), "GET")
        self.assertIn(b"request-line GET /x %s\n" % harness.SHOWN_VERSION.encode(), r.body)
        self.assertIn(b"body 0 bytes text\n", r.body)
        r = self.exchange(H.req("HEAD", "/x", [("Connection", "close")]), "HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertGreater(int(r.header("Content-Length")), 0)
        r = self.exchange(H.req("POST", "/", [("Content-Length", "4097"), ("Connection", "close")],
                                b"x" * 4097))
        self.assertEqual(r.status, 413)

    def test_keep_alive_pipelined(self):
        c = H.Conn((self.host, self.port))
        self.addCleanup(c.close)
        c.send(H.req("POST", "/1", [("Content-Length", "3")], b"abc") +
               H.req("POST", "/2", [("Content-Length", "3")], b"def"))
        r1 = c.read_response("POST")
        r2 = c.read_response("POST")
        self.assertIn(b"request-line POST /1 " + harness.SHOWN_VERSION.encode(), r1.body)
        self.assertTrue(r1.body.endswith(b"\n\nabc"), r1.body)
        self.assertTrue(r2.body.endswith(b"\n\ndef"), r2.body)

    @harness.http1_framing("the head as written, field name case kept (HTTP/2 sends them in lower case)")
    def test_verbose_prints_heads(self):
        self.exchange(H.req("GET", "/verbose-marker", [("X-Trace", "42"), ("Connection", "close")]),
                      "GET")
        err = self.srv.read_stderr(1.0)
        self.assertIn("GET /verbose-marker HTTP/1.1\nHost: localhost\nX-Trace: 42\n", err)


if __name__ == "__main__":
    unittest.main()
