"""`netkit http get` against `netkit http serve` and against a Python HTTP server with custom
handlers: framing (Content-Length, chunked, until close), 1xx, redirects, methods and bodies,
-v/-i output, -o downloads, --fail, --unix, and errors."""
import hashlib
import http.server
import json
import os
import socket
import tempfile
import threading
import unittest
import urllib.parse

import harness


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    gz_body = b""

    def log_message(self, *args):
        pass

    def send_body(self, status, body, ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        parts = url.path.strip("/").split("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if parts[0] == "echo":
            out = json.dumps({"method": self.command, "path": self.path,
                              "body": body.decode("latin-1"),
                              "headers": {k.lower(): v for k, v in self.headers.items()}})
            self.send_body(200, out.encode(), "application/json")
        elif parts[0] == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"hello ", b"chunked ", b"x" * 10000, b" world"):
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        elif parts[0] == "redir":
            # /redir/CODE?loc=LOCATION
            self.send_body(int(parts[1]), b"redirect body, not the answer",
                           extra=[("Location", q["loc"][0])])
        elif parts[0] == "loop":
            n = int(parts[1])
            self.send_body(302, b"", extra=[("Location", "/loop/%d" % (n + 1))])
        elif parts[0] == "a" and len(parts) == 3 and parts[2] == "rel":
            self.send_body(301, b"", extra=[("Location", "../../b/target?x=1")])
        elif parts[0] == "b":
            self.send_body(200, ("landed at %s" % self.path).encode())
        elif parts[0] == "missing":
            self.send_body(404, b"no such thing\n")
        elif parts[0] == "interim":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n"
                             b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n")
            self.send_body(200, b"after interim")
        elif parts[0] == "close":
            self.close_connection = True
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Connection: close\r\n\r\nuntil the end")
        elif parts[0] == "gz":
            self.send_body(200, Handler.gz_body, extra=[("Content-Encoding", "gzip")])
        elif parts[0] == "empty":
            self.send_response(204)
            self.end_headers()
        elif parts[0] == "short":
            self.close_connection = True
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        else:
            self.send_body(200, b"root")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any


class PyServer:
    def __init__(self, test):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        test.addCleanup(self.close)
        self.base = "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def get(*args, input=b""):
    """Run `netkit http get ARGS` (stdin empty unless given)."""
    return harness.run(["http", "get"] + list(args), input=input, timeout=60)


class AgainstPython(unittest.TestCase):
    def setUp(self):
        self.py = PyServer(self)
        self.base = self.py.base

    def ok(self, *args, input=b""):
        r = get(*args, input=input)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def echo(self, *args):
        return json.loads(self.ok(*args).stdout)

    def test_chunked(self):
        r = self.ok(self.base + "/chunked")
        self.assertEqual(r.stdout, b"hello chunked " + b"x" * 10000 + b" world")

    def test_until_close_and_no_content(self):
        self.assertEqual(self.ok(self.base + "/close").stdout, b"until the end")
        r = self.ok(self.base + "/empty", "-i")
        self.assertTrue(r.stdout.startswith(b"HTTP/1.1 204 "), r.stdout)
        self.assertTrue(r.stdout.endswith(b"\r\n\r\n"))

    def test_truncated_body(self):
        r = get(self.base + "/short")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"after 9 of 100 body bytes", r.stderr)

    def test_interim(self):
        r = self.ok(self.base + "/interim", "-v")
        self.assertEqual(r.stdout, b"after interim")
        err = r.stderr.decode()
        self.assertIn("< HTTP/1.1 100 Continue\n", err)
        self.assertIn("< HTTP/1.1 103 Early Hints\n< Link: </style.css>\n", err)
        self.assertIn("< HTTP/1.1 200 OK\n", err)
        self.assertLess(err.index("103 Early"), err.index("200 OK"))

    def test_methods_and_bodies(self):
        got = self.echo(self.base + "/echo/x?q=1")
        self.assertEqual((got["method"], got["path"], got["body"]), ("GET", "/echo/x?q=1", ""))
        self.assertEqual(got["headers"]["host"], self.base[len("http://"):])
        got = self.echo(self.base + "/echo", "-d", "a=1&b=2")
        self.assertEqual((got["method"], got["body"]), ("POST", "a=1&b=2"))
        self.assertEqual(got["headers"]["content-type"], "application/x-www-form-urlencoded")
        with tempfile.NamedTemporaryFile(delete=False) as f:
            payload = bytes(range(256)) * 40 + b"\n"
            f.write(payload)
        self.addCleanup(os.unlink, f.name)
        got = self.echo(self.base + "/echo", "-d", "@" + f.name, "-X", "PUT",
                        "-H", "Content-Type: application/octet-stream", "-H", "X-Test:  yes ")
        self.assertEqual(got["method"], "PUT")
        self.assertEqual(got["body"].encode("latin-1"), payload)
        self.assertEqual(got["headers"]["content-type"], "application/octet-stream")
        self.assertEqual(got["headers"]["x-test"], "yes")
        self.assertEqual(got["headers"]["content-length"], str(len(payload)))
        r = self.ok(self.base + "/echo", "-d", "@-", "-X", "PATCH", input=b"")
        self.assertEqual(json.loads(r.stdout)["body"], "")
        r = self.ok(self.base + "/echo", "-d", "@-", input=b"from stdin")
        self.assertEqual(json.loads(r.stdout)["body"], "from stdin")
        got = self.echo(self.base + "/echo", "-X", "DELETE", "-H", "User-Agent:")
        self.assertEqual(got["method"], "DELETE")
        self.assertNotIn("user-agent", got["headers"])
        r = self.ok(self.base + "/echo", "-X", "HEAD", "-i")
        self.assertTrue(r.stdout.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(r.stdout.endswith(b"\r\n\r\n"), "HEAD must have no body")

    def test_redirects_change_method(self):
        target = urllib.parse.quote(self.base + "/echo/after", safe="")
        for code, method, body in ((301, "GET", ""), (302, "GET", ""), (303, "GET", ""),
                                   (307, "POST", "data"), (308, "POST", "data")):
            got = self.echo(self.base + "/redir/%d?loc=%s" % (code, target), "-L", "-d", "data")
            self.assertEqual((got["method"], got["body"], got["path"]),
                             (method, body, "/echo/after"), code)
        got = self.echo(self.base + "/redir/307?loc=/echo/rel", "-L", "-X", "PUT", "-d", "zz")
        self.assertEqual((got["method"], got["body"], got["path"]), ("PUT", "zz", "/echo/rel"))

    def test_redirect_not_followed_without_L(self):
        r = self.ok(self.base + "/redir/302?loc=/b/x")
        self.assertEqual(r.stdout, b"redirect body, not the answer")
        r = get(self.base + "/redir/302?loc=/b/x", "--fail")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.decode().strip(), "netkit: http get: server answered 302 Found")

    def test_relative_location(self):
        r = self.ok(self.base + "/a/dir/rel", "-L")
        self.assertEqual(r.stdout, b"landed at /b/target?x=1")
        r = self.ok(self.base + "/redir/301?loc=" + urllib.parse.quote("//127.0.0.1:%d/b/abs"
                                                                       % self.py.httpd.server_address[1], safe=""), "-L")
        self.assertEqual(r.stdout, b"landed at /b/abs")

    def test_redirect_loop_capped(self):
        r = get(self.base + "/loop/0", "-L", "--max-redirs", "3", "-v")
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode()
        self.assertIn("netkit: http get: maximum (3) redirects followed", err)
        self.assertEqual(err.count("> GET /loop/"), 4)  # the request and 3 redirects
        self.assertIn("> GET /loop/3 HTTP/1.1", err)
        r = get(self.base + "/loop/0", "-L")
        self.assertEqual(r.returncode, 1)
        self.assertIn("maximum (10) redirects followed", r.stderr.decode())

    def test_fail(self):
        r = get(self.base + "/missing", "--fail")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.decode(), "netkit: http get: server answered 404 Not Found\n")
        self.assertEqual(r.stdout, b"")
        r = get(self.base + "/missing")
        self.assertEqual((r.returncode, r.stdout), (0, b"no such thing\n"))

    def test_verbose_format(self):
        r = self.ok(self.base + "/b/v", "-v")
        err = r.stderr.decode().splitlines()
        port = self.py.httpd.server_address[1]
        self.assertIn("* Connected to 127.0.0.1 (127.0.0.1) port %d" % port, err)
        i = err.index("> GET /b/v HTTP/1.1")
        self.assertEqual(err[i + 1], "> Host: 127.0.0.1:%d" % port)
        self.assertIn("> ", err[i:])
        j = err.index("< HTTP/1.1 200 OK")
        self.assertGreater(j, i)
        self.assertIn("< Content-Length: 14", err)
        self.assertLess(err.index("* Connected to 127.0.0.1 (127.0.0.1) port %d" % port), i)
        self.assertEqual(r.stdout, b"landed at /b/v")


class AgainstNetkit(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="nk-get-")
        self.addCleanup(self.dir.cleanup)
        self.root = os.path.join(self.dir.name, "www")
        os.mkdir(self.root)
        self.big = os.urandom(5 * 1024 * 1024)
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(self.big)
        with open(os.path.join(self.root, "hello.txt"), "wb") as f:
            f.write(b"hello, world\n")

    def serve(self, listen="127.0.0.1:0"):
        return harness.start(self, ["http", "serve", self.root, "-l", listen, "-w", "1", "-q"])

    def test_download(self):
        server = self.serve()
        out = os.path.join(self.dir.name, "out", "big.bin")
        os.mkdir(os.path.dirname(out))
        r = get(server.url + "/big.bin", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"")
        self.assertEqual(r.stderr, b"", "progress only on a terminal")
        with open(out, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(),
                             hashlib.sha256(self.big).hexdigest())
        self.assertEqual(os.listdir(os.path.dirname(out)), ["big.bin"], "temp file left")
        # --fail on 404 leaves neither the file nor a temporary one.
        out2 = os.path.join(self.dir.name, "out", "none")
        r = get(server.url + "/nope", "-o", out2, "--fail")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.decode(), "netkit: http get: server answered 404 Not Found\n")
        self.assertEqual(os.listdir(os.path.dirname(out)), ["big.bin"])
        # to stdout, the same bytes
        r = get(server.url + "/big.bin")
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout, self.big)

    def test_verbose_and_include(self):
        server = self.serve()
        r = get(server.url + "/hello.txt", "-v", "-i")
        self.assertEqual(r.returncode, 0, r.stderr)
        head, body = r.stdout.split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head)
        self.assertEqual(body, b"hello, world\n")
        err = r.stderr.decode().splitlines()
        self.assertIn("> GET /hello.txt HTTP/1.1", err)
        self.assertIn("< HTTP/1.1 200 OK", err)
        self.assertTrue(any(l.lower() == "< content-length: 13" for l in err), err)

    def test_unix(self):
        path = os.path.join(self.dir.name, "http.sock")
        self.serve("unix:" + path)
        r = get("http://localhost/hello.txt", "--unix", path, "-v")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello, world\n")
        self.assertIn("> Host: localhost\n", r.stderr.decode())
        r = get("http://localhost/big.bin", "--unix", path)
        self.assertEqual(r.stdout, self.big)

    def test_ipv6(self):
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback here")
        server = self.serve("[::1]:0")
        r = get(server.url + "/hello.txt", "-v")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello, world\n")
        _, port = server.host_port()
        self.assertIn("> Host: [::1]:%d\n" % port, r.stderr.decode())


def get_on_terminal(test, *args, timeout=30):
    """Run `netkit http get ARGS` with stdout on a pseudo-terminal: (exit code, what the
    terminal showed, stderr)."""
    import pty
    import select
    import subprocess
    import time
    master, slave = pty.openpty()
    test.addCleanup(os.close, master)
    proc = subprocess.Popen([harness.NETKIT, "http", "get"] + list(args), stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            proc.kill()
            test.fail("netkit http get %s did not finish" % " ".join(args))
        r, _, _ = select.select([master], [], [], 0.1)
        chunk = b""
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: nobody has the terminal open any more
                pass
            shown += chunk
        if not chunk and proc.poll() is not None:
            break
    err = proc.stderr.read()
    proc.stderr.close()
    return proc.returncode, shown, err


class CompressedHeadBinary(unittest.TestCase):
    """--compressed (gzip, netkit's own --gzip responses too), -I/--head, and binary bodies
    kept off a terminal as curl does."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="nk-get-")
        self.addCleanup(self.dir.cleanup)
        self.text = ("".join("line %d of a text that compresses well\n" % i
                             for i in range(3000))).encode()
        with open(os.path.join(self.dir.name, "big.txt"), "wb") as f:
            f.write(self.text)
        self.bin = bytes(range(256)) * 64
        with open(os.path.join(self.dir.name, "blob.bin"), "wb") as f:
            f.write(self.bin)
        srv = harness.start(self, ["http", "serve", self.dir.name, "-l", "127.0.0.1:0", "-w", "1",
                                   "-q", "--gzip"])
        self.base = srv.url

    def test_compressed_decodes_netkit_gzip(self):
        r = get(self.base + "/big.txt", "--compressed", "-v")
        self.assertEqual(r.returncode, 0, r.stderr)
        err = r.stderr.decode()
        self.assertIn("> Accept-Encoding: gzip", err)
        self.assertIn("< Content-Encoding: gzip", err)
        self.assertIn("< Transfer-Encoding: chunked", err)
        self.assertEqual(r.stdout, self.text)
        # without it nothing is asked, nothing is decoded
        r = get(self.base + "/big.txt", "-v")
        self.assertNotIn("> Accept-Encoding", r.stderr.decode())
        self.assertNotIn("< Content-Encoding", r.stderr.decode())
        self.assertEqual(r.stdout, self.text)

    def test_compressed_to_file(self):
        out = os.path.join(self.dir.name, "out.txt")
        r = get(self.base + "/big.txt", "--compressed", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), self.text)

    def test_compressed_corrupt_body(self):
        import gzip
        py = PyServer(self)
        good = gzip.compress(b"hello " * 1000)
        bad = good[:40] + bytes([good[40] ^ 0xff]) + good[41:]
        for body, ok in ((good, True), (bad, False), (good[:-6], False)):
            Handler.gz_body = body
            r = get(py.base + "/gz", "--compressed")
            if ok:
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, b"hello " * 1000)
            else:
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertRegex(r.stderr.decode(), r"^netkit: http get: .*gzip")

    def test_head(self):
        for flag in ("-I", "--head"):
            r = get(self.base + "/big.txt", flag)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.startswith(b"HTTP/1.1 200 OK\r\n"), r.stdout)
            self.assertTrue(r.stdout.endswith(b"\r\n\r\n"), r.stdout)
            self.assertIn(b"\r\nContent-Length: %d\r\n" % len(self.text), r.stdout)
        r = get(self.base + "/big.txt", "-I", "-d", "x")
        self.assertEqual(r.returncode, 2)
        self.assertTrue(r.stderr.startswith(b"netkit: http get: "), r.stderr)

    def test_binary_refused_on_terminal(self):
        rc, shown, err = get_on_terminal(self, self.base + "/blob.bin")
        self.assertEqual(rc, 1, err)
        self.assertNotIn(b"\x00", shown)
        self.assertEqual(err.decode(), "netkit: http get: binary output can mess up your "
                         "terminal; use -o - to force, or -o FILE to save it\n")
        # -o - forces it
        rc, shown, err = get_on_terminal(self, self.base + "/blob.bin", "-o", "-")
        self.assertEqual(rc, 0, err)
        self.assertIn(b"\x00\x01\x02\x03", shown)
        # text is fine
        rc, shown, err = get_on_terminal(self, self.base + "/big.txt", "--compressed")
        self.assertEqual(rc, 0, err)
        self.assertIn(b"line 2999 of a text", shown)
        # and to a pipe, binary is fine
        r = get(self.base + "/blob.bin")
        self.assertEqual(r.stdout, self.bin)


class Errors(unittest.TestCase):
    def test_scheme(self):
        r = get("ftp://127.0.0.1/")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.decode(), "netkit: http get: unsupported URL scheme in "
                                            "'ftp://127.0.0.1/' (http:// or https:// only)\n")

    def test_refused(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        r = get("http://127.0.0.1:%d/" % port)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.decode(), "netkit: http get: cannot connect to 127.0.0.1 port "
                                            "%d: Connection refused\n" % port)

    def test_timeout(self):
        # A listener that never answers: the idle timeout ends the wait.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            r = get("http://127.0.0.1:%d/" % s.getsockname()[1], "-w", "0.5")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no answer from the server for 0.5 s", r.stderr.decode())

    def test_not_http(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)

            def answer():
                c, _ = s.accept()
                with c:
                    c.sendall(b"SSH-2.0-OpenSSH\r\n")
                    c.recv(1000)

            t = threading.Thread(target=answer, daemon=True)
            t.start()
            r = get("http://127.0.0.1:%d/" % s.getsockname()[1], "-w", "10")
            t.join(10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("invalid response head", r.stderr.decode())

    def test_usage(self):
        for args in (["ftp://x/"], ["http://"], ["http://a:99999/"], ["-H", "bad header", "http://a/"],
                     ["--max-redirs", "x", "http://a/"], []):
            r = get(*args)
            self.assertEqual(r.returncode, 1 if args == ["ftp://x/"] else 2, (args, r.stderr))
        r = get("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: netkit http get URL", r.stdout.decode())


if __name__ == "__main__":
    unittest.main()
