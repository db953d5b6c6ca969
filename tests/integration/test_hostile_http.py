"""netkit http serve against hostile and corner-case input: empty bodies after generated
pages, mixed keep-alive and pipelined sequences, malformed targets, long request lines,
and the fields of 304 and JSON responses.

Every response goes through httptest's raw helpers, so h11 (wirecheck.py) also checks that
no byte follows a response's declared end but the next response, and every Location is
checked by locationcheck.py. The tables say what the server must do, not what it does.
"""
import gzip
import os
import unittest

import harness
import httptest as H
from httptest import get, get_close, req

BIG_TEXT = ("line of compressible text for the gzip paths\n" * 100).encode()  # 4.5 KiB


def tree(owner):
    d = H.build_docroot(owner)
    d.write("zero/empty.txt", b"")
    d.write("zero/empty.html", b"")
    d.write("zero/side.txt", b"")
    d.write("zero/side.txt.gz", b"")          # an empty sidecar (of an empty file)
    d.write("zero/full.txt", b"not empty\n")
    d.write("zero/full.txt.gz", b"")          # an empty sidecar of a non-empty file
    d.write("big.txt", BIG_TEXT)
    d.write("data.json", b'{"a": 1}\n')
    return d


def exchange(test, addr, data, methods=None, timeout=5.0):
    """Send data on a new connection; (responses, closed). The responses must be all the
    server sent (no leftover)."""
    out, closed = H.raw_ex(addr[0], addr[1], data, timeout)
    resps, rest = H.parse_responses(out, methods)
    test.assertEqual(rest, b"", "bytes after the last response: %r" % rest[:200])
    return resps, closed


def etag_of(test, addr, target, *headers):
    resps, _ = exchange(test, addr, get_close(target, *headers))
    test.assertEqual(resps[0].status, 200, resps)
    etag = resps[0].header("ETag")
    test.assertIsNotNone(etag, resps[0])
    return etag


# ---------------------------------------------------------------------------------------------
# zero-length bodies

# (method, target, extra headers, expected status, expected body (None: not checked))
GENERATED = [
    ("GET", "/listing/", (), 200, None),                      # a directory listing
    ("GET", "/listing/?format=json", (), 200, None),          # the JSON listing
    ("GET", "/no-such-file", (), 404, None),                  # an error page
    ("GET", "/big.txt", (("Accept-Encoding", "gzip"),), 200, None),
]
EMPTY = [
    ("GET", "/zero/empty.txt", (), 200, b""),
    ("GET", "/zero/empty.html", (("Accept-Encoding", "gzip"),), 200, b""),
    ("GET", "/zero/side.txt", (("Accept-Encoding", "gzip"),), 200, b""),
    ("HEAD", "/zero/empty.txt", (), 200, b""),
    ("GET", "/zero/empty.txt", (("Range", "bytes=0-0"),), 416, None),
    # Range is defined for GET only (RFC 9110 14.2): a HEAD ignores it
    ("HEAD", "/zero/empty.txt", (("Range", "bytes=0-0"),), 200, b""),
]


class ZeroLengthTests(unittest.TestCase):
    """A 0-byte body right after a generated page on the same worker (-w 1), one request per
    connection turn, then all pipelined, with and without --gzip."""

    modes = [(), ("--gzip",)]

    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = tree(owner)
        cls.servers = {}
        for mode in cls.modes:
            srv = H.serve(owner, cls.d.root, "-q", *mode, workers=1)
            cls.servers[mode] = srv.host_port()

    def check(self, resp, method, target, headers, status, body):
        self.assertEqual(resp.status, status, (method, target, resp))
        H.check_common(self, resp, expect_length=method != "HEAD"
                       and resp.header("Transfer-Encoding") is None)
        if method == "HEAD":
            self.assertEqual(resp.body, b"")
        if body is not None and method != "HEAD":
            if resp.header("Content-Encoding") == "gzip" and resp.body:
                self.assertEqual(gzip.decompress(resp.body), body, (target, resp))
            else:
                self.assertEqual(resp.body, body, (target, resp))
        if status == 200 and body == b"" and method == "GET" and \
                resp.header("Transfer-Encoding") is None:
            self.assertEqual(resp.header("Content-Length"), "0", (target, resp))

    def test_empty_after_generated_keep_alive(self):
        for mode, addr in self.servers.items():
            for g in GENERATED:
                for e in EMPTY:
                    with self.subTest(mode=mode, first=g[1], then=(e[0], e[1], e[2])):
                        c = H.Conn(addr)
                        self.addCleanup(c.close)
                        r = c.request(req(g[0], g[1], g[2]), g[0])
                        self.check(r, *g)
                        r = c.request(req(e[0], e[1], e[2]), e[0])
                        self.check(r, *e)
                        # and the connection still carries a clean response after it
                        r = c.request(get("/hello.txt"))
                        self.check(r, "GET", "/hello.txt", (), 200, b"hello, world\n")

    def test_empty_after_generated_pipelined(self):
        seq = []
        for g in GENERATED:
            seq += [g] + EMPTY
        seq.append(("GET", "/hello.txt", (), 200, b"hello, world\n"))
        data = b"".join(req(m, t, h) for m, t, h, _, _ in seq[:-1])
        data += req("GET", "/hello.txt", (("Connection", "close"),))
        for mode, addr in self.servers.items():
            with self.subTest(mode=mode):
                resps, closed = exchange(self, addr, data, [s[0] for s in seq], 10)
                self.assertTrue(closed)
                self.assertEqual([r.status for r in resps], [s[3] for s in seq])
                for r, s in zip(resps, seq):
                    self.check(r, *s)

    def test_sidecars_that_are_empty(self):
        # An empty NAME.gz is not a gzip stream: whatever is chosen, the framing is exact and
        # a client that decodes gets the file's bytes.
        for mode, addr in self.servers.items():
            for target, plain in (("/zero/side.txt", b""), ("/zero/full.txt", b"not empty\n")):
                with self.subTest(mode=mode, target=target):
                    c = H.Conn(addr)
                    self.addCleanup(c.close)
                    c.request(get("/listing/"))
                    r = c.request(get(target, ("Accept-Encoding", "gzip")))
                    self.assertEqual(r.status, 200)
                    if r.header("Content-Encoding") == "gzip":
                        self.assertEqual(gzip.decompress(r.body), plain,
                                         "%s: a gzip body that does not decode to the file"
                                         % target)
                    else:
                        self.assertEqual(r.body, plain)
                    r = c.request(req("HEAD", target, (("Accept-Encoding", "gzip"),)), "HEAD")
                    self.assertEqual((r.status, r.body), (200, b""))
                    r = c.request(get("/hello.txt"))
                    self.assertEqual(r.body, b"hello, world\n")


class EmptyUploadTests(unittest.TestCase):
    def test_put_empty_then_get_and_head(self):
        d = tree(self)
        for mode in [(), ("--gzip",)]:
            with self.subTest(mode=mode):
                srv = H.serve(self, d.root, "-q", "--upload", "--upload-anonymous", *mode)
                addr = srv.host_port()
                name = "/zero/put%s.txt" % len(mode)
                c = H.Conn(addr)
                self.addCleanup(c.close)
                c.request(get("/listing/"))
                r = c.request(req("PUT", name, (("Content-Length", "0"),)), "PUT")
                self.assertEqual(r.status, 201, r)
                r = c.request(get("/no-such-file"))
                self.assertEqual(r.status, 404)
                r = c.request(get(name, ("Accept-Encoding", "gzip")))
                self.assertEqual((r.status, r.body), (200, b""))
                r = c.request(req("HEAD", name), "HEAD")
                self.assertEqual((r.status, r.body), (200, b""))
                self.assertEqual(r.header("Content-Length"), "0")
                r = c.request(get_close("/hello.txt"))
                self.assertEqual(r.body, b"hello, world\n")
                self.assertTrue(c.wait_closed(3))
                self.assertEqual(c.buf, b"", "bytes after the last response")


# ---------------------------------------------------------------------------------------------
# one connection, every kind of response


class MixedSequenceTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = tree(owner)
        cls.servers = {m: H.serve(owner, cls.d.root, "-q", *m, workers=1).host_port()
                       for m in [(), ("--gzip",)]}

    def sequence(self, addr):
        """(method, raw request, expected status, expected body or None), in order."""
        etag = etag_of(self, addr, "/range.txt")
        return [
            ("OPTIONS", req("OPTIONS", "/"), 204, b""),
            ("GET", get("/zero/empty.txt"), 200, b""),
            ("GET", get("/listing/", ("Accept-Encoding", "gzip")), 200, None),
            ("GET", get("/hello.txt"), 200, b"hello, world\n"),
            ("GET", get("/range.txt", ("If-None-Match", etag)), 304, b""),
            ("GET", get("/range.txt", ("Range", "bytes=2-4")), 206, H.RANGE_DATA[2:5]),
            ("HEAD", req("HEAD", "/listing/"), 200, b""),
            ("GET", get("/big.txt", ("Accept-Encoding", "gzip")), 200, BIG_TEXT),
            ("GET", get("/zero/empty.txt"), 200, b""),
            ("GET", get_close("/hello.txt"), 200, b"hello, world\n"),
        ]

    def check(self, resps, seq):
        self.assertEqual([r.status for r in resps], [s[2] for s in seq])
        for r, (method, _, _, body) in zip(resps, seq):
            decoded = r.body
            if r.header("Content-Encoding") == "gzip" and method != "HEAD":
                decoded = gzip.decompress(r.body)
            if body is not None:
                self.assertEqual(decoded, body, r)

    def test_keep_alive_one_by_one(self):
        for mode, addr in self.servers.items():
            with self.subTest(mode=mode):
                seq = self.sequence(addr)
                c = H.Conn(addr)
                self.addCleanup(c.close)
                resps = [c.request(data, method) for method, data, _, _ in seq]
                self.check(resps, seq)
                self.assertTrue(c.wait_closed(3))
                self.assertEqual(c.buf, b"", "bytes after the last response")

    def test_pipelined_in_one_write(self):
        for mode, addr in self.servers.items():
            with self.subTest(mode=mode):
                seq = self.sequence(addr)
                resps, closed = exchange(self, addr, b"".join(s[1] for s in seq),
                                         [s[0] for s in seq], 10)
                self.assertTrue(closed)
                self.check(resps, seq)


# ---------------------------------------------------------------------------------------------
# malformed requests: 400, then the connection is closed and nothing after it is answered

BAD_TARGETS = [b"/%zz", b"/%00", b"/%0", b"/%", b"/a%2", b"/%g0/x", b"/a\x01b", b"/\x7f",
               b"/a\tb", b"/%zz?x=1", b"/sub/%00/a.txt"]


class BadRequestTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = tree(owner)
        cls.addr = H.serve(owner, cls.d.root, "-q", workers=1).host_port()

    @harness.http1_framing("after a 400 an HTTP/1.1 server closes, the bytes that follow untrusted; HTTP/2 ends the stream only")
    def test_400_closes_the_connection(self):
        for target in BAD_TARGETS:
            for method in (b"GET", b"HEAD"):
                with self.subTest(method=method, target=target):
                    data = (method + b" " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n"
                            + get("/hello.txt"))
                    out, closed = H.raw_ex(self.addr[0], self.addr[1], data, 3)
                    self.assertTrue(closed, "the connection stayed open after %r" % out[:200])
                    resps, rest = H.parse_responses(out, [method.decode()])
                    self.assertEqual([r.status for r in resps], [400],
                                     "expected one 400 and nothing more: %r" % out[:400])
                    self.assertTrue(resps[0].has_token("Connection", "close"), resps[0])
                    self.assertEqual(rest, b"")

    @harness.http1_framing("after a 400 an HTTP/1.1 server closes, the bytes that follow untrusted; HTTP/2 ends the stream only")
    def test_400_after_a_good_request_on_keep_alive(self):
        for target in BAD_TARGETS[:4]:
            with self.subTest(target=target):
                c = H.Conn(self.addr)
                self.addCleanup(c.close)
                self.assertEqual(c.request(get("/hello.txt")).status, 200)
                c.send(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n" + get("/hello.txt"))
                self.assertEqual(c.read_response().status, 400)
                self.assertTrue(c.wait_closed(3), "not closed after the 400")
                self.assertEqual(c.buf, b"", "a request after the 400 was answered")


# ---------------------------------------------------------------------------------------------
# request-line length


def line_of(length, path=b"/hello.txt?q="):
    """A request line (without CRLF) of exactly `length` octets."""
    fixed = len(b"GET  HTTP/1.1") + len(path)
    return b"GET " + path + b"a" * (length - fixed) + b" HTTP/1.1"


class RequestLineTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = tree(owner)
        cls.default = H.serve(owner, cls.d.root, "-q", workers=1).host_port()
        cls.small = H.serve(owner, cls.d.root, "-q", "--max-header-bytes", "4096",
                            workers=1).host_port()

    def send_line(self, addr, line):
        data = line + b"\r\nHost: a\r\nConnection: close\r\n\r\n"
        resps, closed = exchange(self, addr, data)
        self.assertEqual(len(resps), 1, resps)
        return resps[0]

    def test_long_lines_within_the_limit_are_served(self):
        # RFC 9112 section 3 recommends at least 8000 octets; the line limit is 8192 with
        # its CRLF (nginx's large header buffer), capped by --max-header-bytes.
        for length in (1000, 4000, 8000, 8190):
            with self.subTest(length=length):
                self.assertEqual(len(line_of(length)), length)
                r = self.send_line(self.default, line_of(length))
                self.assertEqual((r.status, r.body), (200, b"hello, world\n"),
                                 "a %d-octet request line under the 8192-octet line limit"
                                 % length)

    def test_414_only_beyond_the_configured_limit(self):
        for addr, length in ((self.default, 8191), (self.default, 12000),
                             (self.default, 17000), (self.default, 40000),
                             (self.small, 5000), (self.small, 8000)):
            with self.subTest(limit="default" if addr == self.default else 4096,
                              length=length):
                r = self.send_line(addr, line_of(length))
                self.assertEqual(r.status, 414, r)
        r = self.send_line(self.small, line_of(3000))
        self.assertEqual(r.status, 200, "3000 octets under a 4096-byte limit")


# ---------------------------------------------------------------------------------------------
# fields: 304 carries no Content-Encoding, JSON is exactly application/json


class FieldTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = tree(owner)
        cls.plain = H.serve(owner, cls.d.root, "-q", workers=1).host_port()
        cls.gzip = H.serve(owner, cls.d.root, "-q", "--gzip", workers=1).host_port()

    def test_304_has_no_content_encoding(self):
        gz = ("Accept-Encoding", "gzip")
        cases = [(self.plain, "/gz/page.html"), (self.plain, "/gz/style.css"),
                 (self.gzip, "/gz/page.html"), (self.gzip, "/big.txt")]
        for addr, target in cases:
            with self.subTest(gzip=addr == self.gzip, target=target):
                etag = etag_of(self, addr, target, gz)
                for method in ("GET", "HEAD"):
                    resps, _ = exchange(self, addr, req(method, target, (
                        gz, ("If-None-Match", etag), ("Connection", "close"))), [method])
                    r = resps[0]
                    self.assertEqual(r.status, 304, r)
                    self.assertIsNone(r.header("Content-Encoding"),
                                      "a 304 with Content-Encoding: %r" % r)
                    self.assertEqual(r.header("ETag"), etag)

    def test_json_listing_content_type(self):
        for addr in (self.plain, self.gzip):
            for target in ("/listing/?format=json", "/empty/?format=json", "/data.json"):
                with self.subTest(gzip=addr == self.gzip, target=target):
                    resps, _ = exchange(self, addr, get_close(target))
                    r = resps[0]
                    self.assertEqual(r.status, 200)
                    self.assertEqual(r.header("Content-Type"), "application/json")


if __name__ == "__main__":
    unittest.main()
