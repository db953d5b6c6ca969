"""netkit http serve: malformed and hostile requests (RFC 9112 framing, RFC 9110 semantics).

Every refusal must carry the right status, be the only response on the connection, and be
followed by the server closing the connection: nothing after a framing error is ever read.
"""
import unittest

import harness
import httptest as H
from httptest import get, get_close, req

KB = 1024


class RejectMixin:
    def rejected(self, data, status, timeout=3.0, host=None, port=None):
        """Exactly one response, with this status, an HTML error page, then close. Over h2
        the refusal ends the stream, not the connection (RFC 9113 5.4.2): the answer alone."""
        if harness.TRANSPORT == "h2":
            c = H.Conn((host or self.host, port or self.port), timeout)
            try:
                c.send(data)
                resp = c.read_response(timeout=timeout)
            finally:
                c.close()
            H.check_error(self, resp, status)
            return resp
        out, closed = H.raw_ex(host or self.host, port or self.port, data, timeout)
        self.assertTrue(closed, "server did not close the connection after %d; got %r"
                        % (status, out[:300]))
        resps, rest = H.parse_responses(out)
        self.assertEqual(len(resps), 1, "expected exactly one response, got %r" % resps)
        self.assertEqual(rest, b"")
        H.check_error(self, resps[0], status)
        self.assertTrue(resps[0].has_token("Connection", "close"),
                        "error response without Connection: close: %r" % resps[0])
        return resps[0]

    def accepted(self, data, status=200, body=None):
        out, closed = H.raw_ex(self.host, self.port, data)
        resps, rest = H.parse_responses(out)
        self.assertEqual([r.status for r in resps], [status], out[:400])
        if body is not None:
            self.assertEqual(resps[0].body, body)
        return resps[0]


class ProtocolTests(RejectMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = H.build_docroot(owner)
        cls.srv = H.serve(owner, cls.d.root)
        cls.host, cls.port = cls.srv.host_port()

    def setUp(self):
        self.assertIsNone(self.srv.proc.poll(), "server died (exit %s); stderr: %s"
                          % (self.srv.proc.returncode, self.srv.read_stderr()))

    def tearDown(self):
        # whatever the previous request did, the server still answers a normal one
        out, _ = H.raw_ex(self.host, self.port, get_close("/hello.txt"), 5)
        self.assertTrue(out.startswith(b"HTTP/1.1 200 "), "server unhealthy after test: %r"
                        % out[:200])

    # ---- request line -------------------------------------------------------------------

    @harness.http1_framing("the request line's syntax")
    def test_malformed_request_lines_400(self):
        cases = [
            b"GET\r\nHost: x\r\n\r\n",
            b"GET /\r\nHost: x\r\n\r\n",                      # HTTP/0.9 style
            b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",            # two spaces
            b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",            # trailing space
            b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            b" GET / HTTP/1.1\r\nHost: x\r\n\r\n",            # leading space
            b"GET\t/\tHTTP/1.1\r\nHost: x\r\n\r\n",           # tabs
            b"GET / HTTX/1.1\r\nHost: x\r\n\r\n",
            b"GET / http/1.1\r\nHost: x\r\n\r\n",             # case-sensitive name
            b"GET / HTTP/1.x\r\nHost: x\r\n\r\n",
            b"GET / HTTP/11\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/\r\nHost: x\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",              # not a token
            b"GE\x00T / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",        # NUL in target
            b"GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n",          # bare CR in target
            b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n",        # DEL in target
            b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",           # space in target
            b"GET / HTTP/1.1\rHost: x\r\n\r\n",                # bare CR ends the line
            b"GET hello.txt HTTP/1.1\r\nHost: x\r\n\r\n",      # not origin-form
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS-looking garbage
        ]
        for data in cases:
            with self.subTest(data=data):
                self.rejected(data, 400)

    def test_bad_target_400_closes_and_head_gets_no_body(self):
        # A well-formed request whose target cannot be decoded: 400, then nothing after it
        # on the connection is answered; to HEAD the 400 has no body (RFC 9110 9.3.2).
        # (over h2 the 400 ends its stream only: the request that follows is not sent)
        h2 = harness.TRANSPORT == "h2"
        for target in (b"/%zz", b"/%00", b"/%c3%28", b"/a%2Fb"):
            for method in (b"GET", b"HEAD"):
                data = (method + b" " + target + b" HTTP/1.1\r\nHost: a\r\n" +
                        (b"Connection: close\r\n\r\n" if h2 else
                         b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"))
                out, closed = H.raw_ex(self.host, self.port, data)
                self.assertTrue(closed, (method, target, out[:200]))
                resps, rest = H.parse_responses(out, methods=[method.decode()])
                self.assertEqual([r.status for r in resps], [400], (method, target, out[:300]))
                self.assertEqual(rest, b"")
                if method == b"HEAD":
                    self.assertEqual(resps[0].body, b"")

    @harness.http1_framing("empty lines before a request line")
    def test_empty_line_before_request_line_ignored(self):
        self.accepted(b"\r\n" + get_close("/hello.txt"), body=b"hello, world\n")

    def test_unknown_method_501(self):
        # A well-formed request with a method nothing implements: 501, and the connection
        # stays usable (its framing was fine); the next request is answered.
        for m in (b"FOO", b"BREW", b"PROPFIND", b"get"):
            with self.subTest(method=m):
                out, _ = H.raw_ex(self.host, self.port, m + b" / HTTP/1.1\r\nHost: x\r\n\r\n"
                                  + get_close("/hello.txt"))
                resps, rest = H.parse_responses(out)
                self.assertEqual([r.status for r in resps], [501, 200], out[:300])
                H.check_error(self, resps[0], 501)
                self.assertEqual(resps[1].body, b"hello, world\n")

    def test_unknown_expectation_417(self):
        r = self.accepted(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n"
                          b"Connection: close\r\n\r\n", status=417)
        H.check_error(self, r, 417)
        # With a body, answered before it is read: then the connection closes.
        self.rejected(b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n"
                      b"Content-Length: 5\r\n\r\n", 417)

    @harness.http1_framing("the version in the request line")
    def test_http_major_version_505(self):
        for v in (b"HTTP/2.0", b"HTTP/3.0", b"HTTP/0.9", b"HTTP/9.9"):
            with self.subTest(version=v):
                self.rejected(b"GET / " + v + b"\r\nHost: x\r\n\r\n", 505)

    @harness.http1_framing("the version in the request line")
    def test_http_1x_minor_accepted(self):
        r = self.accepted(get_close("/hello.txt", version="HTTP/1.2"), body=b"hello, world\n")
        self.assertEqual(r.version, "HTTP/1.1")

    def test_request_line_too_long_414(self):
        self.rejected(get_close("/" + "a" * (9 * KB)), 414)

    def test_request_line_just_under_limit_ok(self):
        # 8 KiB request line: "GET /hello.txt?" + padding + " HTTP/1.1" < 8192 bytes
        target = "/hello.txt?" + "q" * (8 * KB - 40)
        self.accepted(get_close(target), body=b"hello, world\n")

    @harness.http1_framing("a request line without its end")
    def test_request_line_too_long_without_end_414(self):
        # no CRLF at all yet: the server must not wait for more once over the limit
        self.rejected(b"GET /" + b"a" * (12 * KB), 414)

    # ---- header fields ------------------------------------------------------------------

    @harness.http1_framing("the field line syntax (whitespace, obs-fold, bare CR)")
    def test_malformed_fields_400(self):
        cases = {
            "space before colon": b"GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n",
            "tab before colon": b"GET / HTTP/1.1\r\nHost: x\r\nX-A\t: b\r\n\r\n",
            "host space before colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
            "obs-fold tab": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n",
            "leading whitespace first field": b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
            "NUL in value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
            "bare CR in value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
            "bare CR end": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\r\n\r\n",
            "no colon": b"GET / HTTP/1.1\r\nHost: x\r\nX-A\r\n\r\n",
            "empty name": b"GET / HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n",
            "space in name": b"GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n",
            "bad char in name": b"GET / HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n",
            "non-ascii name": b"GET / HTTP/1.1\r\nHost: x\r\nX\xc3\xa9: b\r\n\r\n",
            "control in value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
        }
        for what, data in cases.items():
            with self.subTest(what=what):
                self.rejected(data, 400)

    def test_legal_field_values_accepted(self):
        # tabs, obs-text, empty values, odd but valid token names
        data = (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Tab: a\tb\r\nX-Obs: caf\xc3\xa9\r\n"
                b"X-Empty:\r\nX-Spaces:    padded    \r\n!#$%&'*+-.^_`|~: token\r\n"
                b"Connection: close\r\n\r\n")
        self.accepted(data, body=b"hello, world\n")

    @harness.http1_framing("Host is required by RFC 9112 3.2; HTTP/2 has :authority")
    def test_missing_host_400(self):
        self.rejected(get_close("/hello.txt", host=None), 400)

    @harness.http1_framing("Host is required by RFC 9112 3.2; HTTP/2 has :authority")
    def test_duplicate_host_400(self):
        self.rejected(get_close("/hello.txt", ("Host", "y")), 400)
        self.rejected(get_close("/hello.txt", ("host", "localhost")), 400)

    def test_invalid_host_400(self):
        # Over h2 Host travels as :authority, and one with a space or a slash makes the
        # request malformed (RFC 9113 8.3.1): the answer is a stream reset, not a 400.
        hosts = ("x@y",) if harness.TRANSPORT == "h2" else ("a b", "a/b", "x@y")
        for h in hosts:
            with self.subTest(host=h):
                self.rejected(get_close("/hello.txt", host=h), 400)

    def test_header_section_too_large_431(self):
        fields = [("X-Pad-%d" % i, "p" * 1000) for i in range(20)]  # ~20 KiB, < 100 fields
        self.rejected(get_close("/hello.txt", *fields), 431)

    def test_single_huge_field_431(self):
        self.rejected(get_close("/hello.txt", ("X-Big", "b" * (20 * KB))), 431)

    def test_too_many_fields_431(self):
        fields = [("X-F%d" % i, "1") for i in range(110)]  # 111 with Host
        self.rejected(get_close("/hello.txt", *fields), 431)

    def test_hundred_fields_ok(self):
        fields = [("X-F%d" % i, "1") for i in range(98)]  # Host + 98 + Connection = 100
        self.accepted(get_close("/hello.txt", *fields), body=b"hello, world\n")

    # ---- framing ------------------------------------------------------------------------

    @harness.http1_framing("Content-Length and Transfer-Encoding as message framing")
    def test_bad_content_length_400(self):
        cases = {
            "letters": [("Content-Length", "abc")],
            "negative": [("Content-Length", "-1")],
            "plus": [("Content-Length", "+5")],
            "hex": [("Content-Length", "0x5")],
            "empty": [("Content-Length", "")],
            "spaces inside": [("Content-Length", "1 2")],
            "list of different": [("Content-Length", "5, 6")],
            "conflicting": [("Content-Length", "5"), ("Content-Length", "6")],
            "with chunked": [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
            "chunked then length": [("Transfer-Encoding", "chunked"), ("Content-Length", "0")],
        }
        for what, fields in cases.items():
            with self.subTest(what=what):
                self.rejected(req("GET", "/hello.txt", fields, body=b"hello"), 400)

    @harness.http1_framing("Content-Length as message framing")
    def test_content_length_overflow(self):
        # invalid (does not fit any integer type): 400; a server may call it too large: 413
        out, closed = H.raw_ex(self.host, self.port,
                               get("/hello.txt", ("Content-Length", "9" * 30)))
        self.assertTrue(closed)
        resps, _ = H.parse_responses(out)
        self.assertEqual(len(resps), 1, resps)
        self.assertIn(resps[0].status, (400, 413))

    @harness.http1_framing("transfer codings")
    def test_unknown_transfer_coding_501(self):
        # chunked is final, so the framing is known, but the other coding is not understood
        for te in ("gzip, chunked", "x-custom, chunked", "deflate,chunked"):
            with self.subTest(te=te):
                self.rejected(req("GET", "/hello.txt", [("Transfer-Encoding", te)],
                                  body=b"0\r\n\r\n"), 501)

    @harness.http1_framing("transfer codings")
    def test_chunked_not_final_coding_400(self):
        # RFC 9112 6.3: chunked not the final coding: the length cannot be determined,
        # the server MUST answer 400 and close
        for te in ("gzip", "identity", "deflate", "x-custom", "chunked, gzip"):
            with self.subTest(te=te):
                self.rejected(req("GET", "/hello.txt", [("Transfer-Encoding", te)],
                                  body=b"0\r\n\r\n"), 400)

    @harness.http1_framing("the chunked coding's syntax")
    def test_bad_chunked_body_400(self):
        cases = {
            "not hex": b"zz\r\nhello\r\n0\r\n\r\n",
            "missing CRLF after data": b"5\r\nhelloXX0\r\n\r\n",
            "LF only": b"5\nhello\n0\n\n",
            "negative": b"-5\r\nhello\r\n0\r\n\r\n",
            "size overflow": b"1" + b"0" * 40 + b"\r\nx\r\n0\r\n\r\n",
            "empty size": b"\r\nhello\r\n0\r\n\r\n",
        }
        for what, body in cases.items():
            with self.subTest(what=what):
                data = (req("GET", "/hello.txt", [("Transfer-Encoding", "chunked")], body=body)
                        + get("/page.html"))
                out, closed = H.raw_ex(self.host, self.port, data)
                self.assertTrue(closed, "not closed after bad chunked body: %r" % out[:300])
                resps, rest = H.parse_responses(out)
                self.assertEqual(rest, b"")
                # 400 when the server reads the body before answering; a server that answers
                # the GET before reading its body can only close. Never a second response.
                statuses = [r.status for r in resps]
                allowed = ([400], [200]) + (([413],) if what == "size overflow" else ())
                self.assertIn(statuses, allowed, resps)
                if statuses != [200]:
                    H.check_error(self, resps[0], statuses[0])

    def test_body_over_limit_413(self):
        # the server answers from the head alone: no need to send the megabyte
        self.rejected(get("/hello.txt", ("Content-Length", str(1024 * 1024 + 1))), 413)

    def test_body_at_limit_ok(self):
        body = b"x" * (1024 * 1024)
        data = req("GET", "/hello.txt", [("Content-Length", str(len(body))),
                                         ("Connection", "close")], body=body)
        out, closed = H.raw_ex(self.host, self.port, data, 10)
        resps, _ = H.parse_responses(out)
        self.assertEqual([r.status for r in resps], [200])
        self.assertEqual(resps[0].body, b"hello, world\n")

    def test_chunked_body_over_limit_413(self):
        chunk = b"x" * 65536
        body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 17 + b"0\r\n\r\n"
        data = req("GET", "/hello.txt", [("Transfer-Encoding", "chunked")], body=body)
        if harness.TRANSPORT == "h2":
            self.rejected(data, 413, 10)  # the stream refused, the connection kept
            return
        out, closed = H.raw_ex(self.host, self.port, data, 10)
        self.assertTrue(closed)
        resps, _ = H.parse_responses(out)
        self.assertEqual([r.status for r in resps], [413], out[:300])
        H.check_error(self, resps[0], 413)

    # ---- request smuggling: one response, then close ------------------------------------

    @harness.http1_framing("request smuggling through Content-Length and Transfer-Encoding")
    def test_smuggling_cl_te(self):
        data = (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                b"GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n")
        self.rejected(data, 400)

    @harness.http1_framing("request smuggling through Content-Length and Transfer-Encoding")
    def test_smuggling_te_cl(self):
        data = (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Length: 4\r\n\r\n5c\r\nGET /page.html HTTP/1.1\r\nHost: x\r\n\r\n"
                b"0\r\n\r\n")
        self.rejected(data, 400)

    @harness.http1_framing("request smuggling through Content-Length")
    def test_smuggling_double_content_length(self):
        data = (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                b"Content-Length: 38\r\n\r\nGET /page.html HTTP/1.1\r\nHost: x\r\n\r\n")
        self.rejected(data, 400)

    @harness.http1_framing("request smuggling through Transfer-Encoding")
    def test_smuggling_obfuscated_te(self):
        for te in (b"Transfer-Encoding : chunked", b"Transfer-Encoding:\x0bchunked",
                   b"Transfer-Encoding: chunked\r\n x"):
            with self.subTest(te=te):
                data = (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n" + te + b"\r\n"
                        b"Content-Length: 5\r\n\r\n0\r\n\r\n"
                        b"GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n")
                self.rejected(data, 400)

    @harness.http1_framing("a malformed field line in a pipeline")
    def test_bad_request_after_good_one(self):
        # the first request is answered, the second is refused, the third is never read
        data = (get("/hello.txt") + b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"
                + get("/page.html"))
        out, closed = H.raw_ex(self.host, self.port, data)
        self.assertTrue(closed)
        resps, rest = H.parse_responses(out)
        self.assertEqual([r.status for r in resps], [200, 400], resps)
        self.assertEqual(resps[0].body, b"hello, world\n")
        self.assertEqual(rest, b"")

    @harness.http1_framing("nothing read after a framing error in a pipeline")
    def test_nothing_read_after_error(self):
        for bad in (b"GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n",
                    b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"):
            with self.subTest(bad=bad):
                out, closed = H.raw_ex(self.host, self.port,
                                       bad + get("/hello.txt") + get("/page.html"))
                self.assertTrue(closed)
                resps, rest = H.parse_responses(out)
                self.assertEqual(len(resps), 1, resps)
                self.assertGreaterEqual(resps[0].status, 400)
                self.assertEqual(rest, b"")

    @harness.http1_framing("bytes that are no request line")
    def test_garbage_binary(self):
        data = bytes((i * 37 + 11) % 256 for i in range(3000)) + b"\r\n\r\n"
        out, closed = H.raw_ex(self.host, self.port, data)
        self.assertTrue(closed)
        resps, _ = H.parse_responses(out)
        self.assertEqual(len(resps), 1)
        self.assertIn(resps[0].status, (400, 414, 501))

    def test_client_half_close_still_answered(self):
        # a client that shuts down its sending side after the request still gets the answer
        out, closed = H.raw_ex(self.host, self.port, get("/hello.txt"), half_close=True)
        self.assertTrue(closed)
        resps, _ = H.parse_responses(out)
        self.assertEqual([r.status for r in resps], [200])
        self.assertEqual(resps[0].body, b"hello, world\n")


class LimitOptionTests(RejectMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = H.build_docroot(owner)
        cls.srv = H.serve(owner, cls.d.root, "--max-header-bytes", "2048",
                          "--max-body-bytes", "100")
        cls.host, cls.port = cls.srv.host_port()

    def test_max_header_bytes(self):
        self.accepted(get_close("/hello.txt", ("X-Pad", "p" * 1500)), body=b"hello, world\n")
        self.rejected(get_close("/hello.txt", ("X-Pad", "p" * 3000)), 431)

    def test_max_body_bytes(self):
        self.accepted(req("GET", "/hello.txt", [("Content-Length", "100"),
                                                ("Connection", "close")], body=b"b" * 100),
                      body=b"hello, world\n")
        self.rejected(req("GET", "/hello.txt", [("Content-Length", "101")], body=b"b" * 101),
                      413)

    def test_max_body_bytes_chunked(self):
        body = b"40\r\n" + b"c" * 64 + b"\r\n40\r\n" + b"c" * 64 + b"\r\n0\r\n\r\n"
        self.rejected(req("GET", "/hello.txt", [("Transfer-Encoding", "chunked")], body=body),
                      413)

    def test_bad_limit_values_are_usage_errors(self):
        import harness
        for args in (["--max-header-bytes", "abc"], ["--max-body-bytes", "-1"],
                     ["--max-conns", "0x"], ["--header-timeout", "soon"], ["--sndbuf", "12"],
                     ["--sndbuf", "lots"]):
            with self.subTest(args=args):
                p = harness.run(["http", "serve", self.d.root, "-l", "127.0.0.1:0", "-w", "1"]
                                + args, timeout=10)
                self.assertEqual(p.returncode, 2, p.stderr)


if __name__ == "__main__":
    unittest.main()
