"""netkit http serve: basic behaviour, methods, real clients (curl, http.client), listeners.

The core subset (CoreTests) runs on each backend: epoll (the default), uring, poll and select.
"""
import os
import socket
import subprocess
import tempfile
import unittest

import harness
import httptest as H
from httptest import get, get_close, req


class CoreTests(unittest.TestCase):
    """GET, HEAD, 404, keep-alive, pipelining, range: run once per backend."""
    backend = None

    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        if cls.backend and harness.backend_refused(cls.backend):
            raise unittest.SkipTest("this kernel refuses the %s backend: %s"
                                    % (cls.backend, harness.backend_refused(cls.backend)))
        cls.d = H.build_docroot(owner)
        cls.srv = H.serve(owner, cls.d.root, backend=cls.backend)
        cls.host, cls.port = cls.srv.host_port()

    def setUp(self):
        self.assertIsNone(self.srv.proc.poll(), "server died (exit %s); stderr: %s"
                          % (self.srv.proc.returncode, self.srv.read_stderr()))

    def one(self, data, method="GET", timeout=5):
        """Send data with Connection: close semantics expected; exactly one response."""
        out, closed = H.raw_ex(self.host, self.port, data, timeout)
        self.assertTrue(closed, "server did not close; got %r" % out[:300])
        resps, rest = H.parse_responses(out, [method])
        self.assertEqual(len(resps), 1, resps)
        self.assertEqual(rest, b"")
        return resps[0]

    def test_get_file(self):
        r = self.one(get_close("/hello.txt"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.version, "HTTP/1.1")
        self.assertEqual(r.reason, "OK")
        self.assertEqual(r.body, b"hello, world\n")
        H.check_common(self, r)
        self.assertEqual(r.header("Content-Length"), "13")
        self.assertTrue(r.header("Content-Type").startswith("text/plain"), r)
        self.assertEqual(r.header("Accept-Ranges"), "bytes")
        self.assertRegex(r.header("ETag"), r'^"[^"]+"$')  # strong
        self.assertRegex(r.header("Last-Modified"), H.IMF_RE)
        self.assertTrue(r.has_token("Connection", "close"), r)

    def test_get_html_and_index(self):
        r = self.one(get_close("/"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.d.files["/index.html"])
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        H.check_common(self, r)

    def test_head_same_headers_no_body(self):
        g = self.one(get_close("/page.html"))
        h = self.one(req("HEAD", "/page.html", [("Connection", "close")]), "HEAD")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.body, b"")
        H.check_common(self, h, expect_length=False)
        for name in ("Content-Length", "Content-Type", "ETag", "Last-Modified", "Accept-Ranges",
                     "Server"):
            self.assertEqual(h.header(name), g.header(name), name)
        self.assertEqual(int(h.header("Content-Length")), len(self.d.files["/page.html"]))

    def test_head_then_get_pipelined(self):
        # a HEAD must not be followed by body bytes: the next response starts right after it
        data = req("HEAD", "/hello.txt") + get_close("/page.html")
        out, closed = H.raw_ex(self.host, self.port, data)
        self.assertTrue(closed)
        resps, rest = H.parse_responses(out, ["HEAD", "GET"])
        self.assertEqual([r.status for r in resps], [200, 200])
        self.assertEqual(resps[1].body, self.d.files["/page.html"])
        self.assertEqual(rest, b"")

    def test_404(self):
        r = self.one(get_close("/no-such-file.txt"))
        H.check_error(self, r, 404)
        self.assertEqual(r.reason, "Not Found")

    def test_head_404_no_body(self):
        data = req("HEAD", "/no-such-file.txt") + get_close("/hello.txt")
        out, closed = H.raw_ex(self.host, self.port, data)
        self.assertTrue(closed)
        resps, rest = H.parse_responses(out, ["HEAD", "GET"])
        self.assertEqual([r.status for r in resps], [404, 200])
        self.assertEqual(resps[0].body, b"")
        self.assertEqual(resps[1].body, b"hello, world\n")
        self.assertEqual(rest, b"")

    def test_404_keeps_connection(self):
        c = H.Conn((self.host, self.port))
        self.addCleanup(c.close)
        r = c.request(get("/nope"))
        H.check_error(self, r, 404)
        r = c.request(get("/hello.txt"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"hello, world\n")

    def test_keep_alive(self):
        c = H.Conn((self.host, self.port))
        self.addCleanup(c.close)
        for i in range(5):
            r = c.request(get("/seq/f%02d.txt" % i))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, self.d.files["/seq/f%02d.txt" % i])
            self.assertFalse(r.has_token("Connection", "close"))
            H.check_common(self, r)
        self.assertFalse(c.wait_closed(0.3), "keep-alive connection closed early")

    def test_pipelining(self):
        names = ["/seq/f%02d.txt" % i for i in (3, 1, 4, 1, 5, 9)]
        data = b"".join(get(n) for n in names) + get_close("/seq/f02.txt")
        names.append("/seq/f02.txt")
        out, closed = H.raw_ex(self.host, self.port, data)
        self.assertTrue(closed)
        resps, rest = H.parse_responses(out)
        self.assertEqual([r.status for r in resps], [200] * len(names))
        self.assertEqual([r.body for r in resps], [self.d.files[n] for n in names])
        self.assertEqual(rest, b"")

    def test_range(self):
        r = self.one(get_close("/range.txt", ("Range", "bytes=0-9")))
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Range"), "bytes 0-9/36")
        self.assertEqual(r.body, H.RANGE_DATA[0:10])
        H.check_common(self, r)

    def test_range_unsatisfiable(self):
        r = self.one(get_close("/range.txt", ("Range", "bytes=36-")))
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */36")
        H.check_common(self, r)


class CorePollTests(CoreTests):
    backend = "poll"


class CoreSelectTests(CoreTests):
    backend = "select"


class CoreEpollTests(CoreTests):
    backend = "epoll"


class CoreUringTests(CoreTests):
    backend = "uring"


class MethodTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = H.build_docroot(owner)
        cls.srv = H.serve(owner, cls.d.root)
        cls.host, cls.port = cls.srv.host_port()

    def setUp(self):
        self.assertIsNone(self.srv.proc.poll(), "server died")

    def exchange(self, data, methods=("GET",)):
        out, closed = H.raw_ex(self.host, self.port, data)
        self.assertTrue(closed, "server did not close; got %r" % out[:300])
        resps, rest = H.parse_responses(out, list(methods))
        self.assertEqual(rest, b"")
        return resps

    def test_options(self):
        for target in ("/", "/hello.txt", "*"):
            with self.subTest(target=target):
                c = H.Conn((self.host, self.port))
                self.addCleanup(c.close)
                r = c.request(req("OPTIONS", target))
                self.assertEqual(r.status, 204, r)
                self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
                H.check_common(self, r)
                # no body: the connection is still usable and in sync
                r = c.request(get("/hello.txt"))
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"hello, world\n")

    def test_405_methods(self):
        for method in ("POST", "PUT", "DELETE", "PATCH", "TRACE"):
            with self.subTest(method=method):
                resps = self.exchange(req(method, "/hello.txt", [("Connection", "close")]))
                self.assertEqual(len(resps), 1)
                H.check_error(self, resps[0], 405)
                self.assertEqual(resps[0].header("Allow"), "GET, HEAD, OPTIONS")

    def test_405_connect(self):
        resps = self.exchange(req("CONNECT", "127.0.0.1:%d" % self.port,
                                  [("Connection", "close")]))
        self.assertEqual(len(resps), 1)
        H.check_error(self, resps[0], 405)
        self.assertEqual(resps[0].header("Allow"), "GET, HEAD, OPTIONS")

    def test_405_post_with_body_then_next_request(self):
        # the body of a refused POST must not be taken for the next request
        data = (req("POST", "/hello.txt", [("Content-Length", "15")], body=b"GET /x HTTP/1.1")
                + get_close("/hello.txt"))
        out, closed = H.raw_ex(self.host, self.port, data)
        self.assertTrue(closed)
        resps, rest = H.parse_responses(out)
        self.assertEqual(resps[0].status, 405, resps)
        # either the server kept the connection (then the GET is answered) or it closed
        if len(resps) > 1:
            self.assertEqual([r.status for r in resps[1:]], [200])
            self.assertEqual(resps[1].body, b"hello, world\n")
        else:
            self.assertTrue(resps[0].has_token("Connection", "close"),
                            "closed after 405 without Connection: close: %r" % resps[0])

    def test_get_with_content_length_body_discarded(self):
        body = b"GET /seq/f07.txt HTTP/1.1\r\nHost: x\r\n\r\n"  # looks like a request: ignored
        data = (req("GET", "/seq/f01.txt", [("Content-Length", str(len(body)))], body=body)
                + get_close("/seq/f02.txt"))
        resps = self.exchange(data, ["GET", "GET"])
        self.assertEqual([r.status for r in resps], [200, 200])
        self.assertEqual(resps[0].body, self.d.files["/seq/f01.txt"])
        self.assertEqual(resps[1].body, self.d.files["/seq/f02.txt"])

    def test_get_with_chunked_body_discarded(self):
        inner = b"GET /seq/f07.txt HTTP/1.1\r"  # 26 bytes that look like a request
        chunked = (b"5\r\nhello\r\n1a;ext=1\r\n" + inner + b"\r\n0\r\nTrailer: x\r\n\r\n")
        data = (req("GET", "/seq/f03.txt", [("Transfer-Encoding", "chunked")], body=chunked)
                + get_close("/seq/f04.txt"))
        resps = self.exchange(data, ["GET", "GET"])
        self.assertEqual([r.status for r in resps], [200, 200])
        self.assertEqual(resps[0].body, self.d.files["/seq/f03.txt"])
        self.assertEqual(resps[1].body, self.d.files["/seq/f04.txt"])

    def test_expect_100_continue(self):
        c = H.Conn((self.host, self.port))
        self.addCleanup(c.close)
        c.send(req("GET", "/hello.txt", [("Content-Length", "10"), ("Expect", "100-continue")]))
        r = c.read_response(timeout=3)
        self.assertEqual(r.status, 100, r)
        self.assertEqual(r.version, "HTTP/1.1")
        self.assertEqual(r.body, b"")
        c.send(b"0123456789")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"hello, world\n")
        H.check_common(self, r)
        r = c.request(get("/seq/f05.txt"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.d.files["/seq/f05.txt"])

    def test_absolute_form(self):
        target = harness.origin((self.host, self.port)) + "/hello.txt"
        resps = self.exchange(req("GET", target, [("Connection", "close")]))
        self.assertEqual(len(resps), 1)
        self.assertEqual(resps[0].status, 200)
        self.assertEqual(resps[0].body, b"hello, world\n")

    @harness.http1_framing("Host is required by RFC 9112 3.2.2; HTTP/2 has :authority")
    def test_absolute_form_without_host_header(self):
        # HTTP/1.1 requires Host even with an absolute target (RFC 9112 3.2.2)
        target = harness.origin((self.host, self.port)) + "/hello.txt"
        data = req("GET", target, [("Connection", "close")], host=None)
        resps = self.exchange(data)
        self.assertEqual(len(resps), 1)
        H.check_error(self, resps[0], 400)

    def test_query_ignored_for_files(self):
        resps = self.exchange(get_close("/hello.txt?a=1&b=%20"))
        self.assertEqual(resps[0].status, 200)
        self.assertEqual(resps[0].body, b"hello, world\n")

    def test_http10_closes_by_default(self):
        out, closed = H.raw_ex(self.host, self.port, get("/hello.txt", version="HTTP/1.0"), 3)
        self.assertTrue(closed, "HTTP/1.0 request without keep-alive: server must close")
        resps, rest = H.parse_responses(out)
        self.assertEqual(len(resps), 1)
        self.assertEqual(resps[0].status, 200)
        self.assertEqual(resps[0].body, b"hello, world\n")
        self.assertFalse(resps[0].has_token("Connection", "keep-alive"))
        H.check_common(self, resps[0])

    @harness.http1_framing("an HTTP/1.0 request without Host")
    def test_http10_without_host_ok(self):
        out, closed = H.raw_ex(self.host, self.port,
                               get("/hello.txt", version="HTTP/1.0", host=None), 3)
        self.assertTrue(closed)
        resps, _ = H.parse_responses(out)
        self.assertEqual([r.status for r in resps], [200])

    @harness.http1_framing("HTTP/1.0 persistence (Connection: keep-alive)")
    def test_http10_keep_alive(self):
        c = H.Conn((self.host, self.port))
        self.addCleanup(c.close)
        for i in range(3):
            r = c.request(get("/seq/f%02d.txt" % i, ("Connection", "keep-alive"),
                              version="HTTP/1.0"))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, self.d.files["/seq/f%02d.txt" % i])
            self.assertTrue(r.has_token("Connection", "keep-alive"), r)
        self.assertFalse(c.wait_closed(0.3))
        # and without the token the server closes after answering
        r = c.request(get("/hello.txt", version="HTTP/1.0"))
        self.assertEqual(r.status, 200)
        self.assertTrue(c.wait_closed(3))

    def test_connection_close_honoured(self):
        c = H.Conn((self.host, self.port))
        self.addCleanup(c.close)
        r = c.request(get("/hello.txt"))
        self.assertEqual(r.status, 200)
        c.send(get("/page.html", ("Connection", "close")) + get("/hello.txt"))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.d.files["/page.html"])
        self.assertTrue(r.has_token("Connection", "close"), r)
        self.assertTrue(c.wait_closed(3), "server did not close after Connection: close")
        self.assertEqual(c.buf, b"", "answered a request after Connection: close")

    def test_connection_close_token_case_and_list(self):
        out, closed = H.raw_ex(self.host, self.port,
                               get("/hello.txt", ("Connection", "TE, Close")), 3)
        self.assertTrue(closed)
        resps, _ = H.parse_responses(out)
        self.assertEqual([r.status for r in resps], [200])


class CurlTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = H.build_docroot(owner)
        cls.srv = H.serve(owner, cls.d.root)
        cls.host, cls.port = cls.srv.host_port()
        cls.base = harness.origin((cls.host, cls.port))

    def curl(self, *args):
        p = subprocess.run(["curl", "-s", "--http1.1", "--max-time", "10"]
                           + harness.curl_args(self.base) + list(args),
                           capture_output=True, timeout=20)
        p.stdout = harness.curl_heads_as_http1(p.stdout)
        return p

    def test_curl_get(self):
        p = self.curl("-D", "-", self.base + "/hello.txt")
        self.assertEqual(p.returncode, 0, p.stderr)
        resps, rest = H.parse_responses(p.stdout)
        self.assertEqual(len(resps), 1)
        self.assertEqual(resps[0].status, 200)
        self.assertEqual(resps[0].body, b"hello, world\n")
        self.assertEqual(rest, b"")
        H.check_common(self, resps[0])

    def test_curl_head(self):
        p = self.curl("-I", self.base + "/page.html")
        self.assertEqual(p.returncode, 0, p.stderr)
        resps, rest = H.parse_responses(p.stdout, ["HEAD"])
        self.assertEqual(resps[0].status, 200)
        self.assertEqual(int(resps[0].header("Content-Length")),
                         len(self.d.files["/page.html"]))

    def test_curl_404_and_fail(self):
        p = self.curl("-f", "-o", "/dev/null", "-w", "%{http_code}", self.base + "/nope")
        self.assertEqual(p.returncode, 22)
        self.assertEqual(p.stdout, b"404")

    def test_curl_reuses_connection(self):
        p = self.curl("-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                      "-w", "%{http_code} %{num_connects}\n",
                      self.base + "/hello.txt", self.base + "/page.html",
                      self.base + "/seq/f01.txt")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().split("\n"), ["200 1", "200 0", "200 0", ""])

    def test_curl_range(self):
        p = self.curl("-r", "10-19", "-w", "\n%{http_code}", self.base + "/range.txt")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, H.RANGE_DATA[10:20] + b"\n206")

    def test_curl_compressed_sidecar(self):
        p = self.curl("--compressed", "-D", "-", self.base + "/gz/page.html")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"content-encoding: gzip", p.stdout.lower())
        self.assertTrue(p.stdout.endswith(b"GZIPPED-PAGE-CONTENT\n"), p.stdout[-200:])

    def test_curl_redirect_followed(self):
        p = self.curl("-L", "-w", "\n%{http_code} %{num_redirects} %{url_effective}",
                      self.base + "/sub")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, self.d.files["/sub/index.html"]
                         + ("\n200 1 %s/sub/" % self.base).encode())

    def test_curl_expect_100(self):
        # curl sends Expect: 100-continue for large uploads; a 405 must come back cleanly
        with tempfile.NamedTemporaryFile() as f:
            f.write(b"x" * 2048)
            f.flush()
            p = self.curl("-H", "Expect: 100-continue", "--data-binary", "@" + f.name,
                          "-o", "/dev/null", "-w", "%{http_code}", self.base + "/hello.txt")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"405")


class HttpClientTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = H.build_docroot(owner)
        cls.srv = H.serve(owner, cls.d.root)
        cls.host, cls.port = cls.srv.host_port()

    def test_http_client_keep_alive(self):
        conn = harness.http_connection(self.host, self.port, timeout=5)
        self.addCleanup(conn.close)
        for path in ("/hello.txt", "/page.html", "/nope", "/seq/f09.txt", "/"):
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            if path == "/nope":
                self.assertEqual(r.status, 404)
            else:
                self.assertEqual(r.status, 200)
                want = self.d.files["/index.html" if path == "/" else path]
                self.assertEqual(body, want)
            self.assertFalse(r.will_close)
        conn.request("HEAD", "/hello.txt")
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.read(), b"")
        self.assertEqual(r.getheader("Content-Length"), "13")
        conn.request("GET", "/range.txt", headers={"Range": "bytes=-3"})
        r = conn.getresponse()
        self.assertEqual(r.status, 206)
        self.assertEqual(r.read(), b"xyz")

    def test_http_client_options(self):
        conn = harness.http_connection(self.host, self.port, timeout=5)
        self.addCleanup(conn.close)
        conn.request("OPTIONS", "/")
        r = conn.getresponse()
        self.assertEqual(r.status, 204)
        self.assertEqual(r.read(), b"")
        self.assertEqual(r.getheader("Allow"), "GET, HEAD, OPTIONS")


class ListenerTests(unittest.TestCase):
    def setUp(self):
        self.d = H.build_docroot(self)

    def test_readiness_line_and_real_port(self):
        srv = H.serve(self, self.d.root)
        self.assertRegex(srv.url, r"^%s://127\.0\.0\.1:\d+$" % harness.SCHEME)
        host, port = srv.host_port()
        self.assertNotEqual(port, 0)
        r = H.raw(host, port, get_close("/hello.txt"))
        self.assertTrue(r.startswith(b"HTTP/1.1 200 "), r[:100])

    def test_two_listeners(self):
        srv = H.serve(self, self.d.root, listen=("127.0.0.1:0", "127.0.0.1:0"))
        self.assertEqual(len(srv.urls), 2)
        self.assertNotEqual(srv.host_port(0), srv.host_port(1))
        for i in (0, 1):
            host, port = srv.host_port(i)
            out, closed = H.raw_ex(host, port, get_close("/hello.txt"))
            resps, _ = H.parse_responses(out)
            self.assertEqual([r.status for r in resps], [200])

    def test_unix_listener(self):
        path = os.path.join(self.d.base, "http.sock")
        srv = H.serve(self, self.d.root, listen=("unix:" + path,))
        self.assertEqual(srv.urls, ["unix:" + path])
        self.assertTrue(any(l.strip().endswith("listening on unix:" + path)
                            for l in srv.stderr_lines), srv.stderr_lines)
        out, closed = H.raw_ex(path, None, get_close("/hello.txt"))
        self.assertTrue(closed)
        resps, _ = H.parse_responses(out)
        self.assertEqual([r.status for r in resps], [200])
        self.assertEqual(resps[0].body, b"hello, world\n")

    def test_ipv6_listener(self):
        try:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.bind(("::1", 0))
            s.close()
        except OSError:
            self.skipTest("no IPv6 loopback here")
        srv = H.serve(self, self.d.root, listen=("[::1]:0",))
        self.assertRegex(srv.url, r"^%s://\[::1\]:\d+$" % harness.SCHEME)
        host, port = srv.host_port()
        out, closed = H.raw_ex(host, port, get_close("/hello.txt", host="[::1]"))
        resps, _ = H.parse_responses(out)
        self.assertEqual([r.status for r in resps], [200])

    def test_bad_usage_exits_2(self):
        lo = ["-l", "127.0.0.1:0"]  # never the default port, even if an option were accepted
        for args in (["http", "serve", self.d.root, "-l", "127.0.0.1:99999"],
                     ["http", "serve", self.d.root, "--backend", "nosuch"] + lo,
                     ["http", "serve", self.d.root, "-w", "abc"] + lo,
                     ["http", "serve", self.d.root, "--no-such-option"] + lo):
            with self.subTest(args=args):
                p = harness.run(args, timeout=10)
                self.assertEqual(p.returncode, 2, p.stderr)
                err = p.stderr.decode().strip().splitlines()
                self.assertTrue(err and err[0].startswith("netkit: http serve: "), err)

    def test_missing_docroot_fails(self):
        p = harness.run(["http", "serve", os.path.join(self.d.base, "nope"),
                         "-l", "127.0.0.1:0", "-w", "1"], timeout=10)
        self.assertIn(p.returncode, (1, 2), p.stderr)
        self.assertTrue(p.stderr.decode().startswith("netkit: http serve: "), p.stderr)

    def test_help(self):
        p = harness.run(["http", "serve", "--help"], timeout=10)
        self.assertEqual(p.returncode, 0)
        text = (p.stdout + p.stderr).decode()
        for opt in ("-l", "--backend", "--no-listing",
                    "--max-conns", "--header-timeout", "--idle-timeout", "--access-log"):
            self.assertIn(opt, text)


if __name__ == "__main__":
    unittest.main()
