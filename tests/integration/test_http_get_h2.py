"""`netkit http get` over HTTP/2: --http2 (ALPN h2 over https, HTTP/1.1 when the server does not
pick h2) and --http2-prior-knowledge (h2c over http://).

Servers: h2o (serves h2 over TLS and h2c with prior knowledge) for files, heads, ranges and
redirects; a small HTTP/2 server written here with python3-h2 for what h2o will not do on
demand (echo the request's fields and body, reset a stream, send GOAWAY with an error, stall,
cut a body short); `netkit http serve` without HTTP/2 for the fallback, and with it once it
serves HTTP/2.
"""
import hashlib
import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import harness
from debian_modules import import_debian

try:
    import_debian("h2.config", "h2.connection", "h2.errors", "h2.events", "h2.exceptions")
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.exceptions
except ImportError:
    h2 = None

H2O = shutil.which("h2o") or ("/usr/bin/h2o" if os.access("/usr/bin/h2o", os.X_OK) else None)
OPENSSL = shutil.which("openssl")


def get(*args, timeout=60):
    return subprocess.run([harness.NETKIT, "http", "get"] + list(args), capture_output=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def err_lines(r):
    return [l for l in r.stderr.decode("utf-8", "replace").splitlines() if l]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Site:
    """Files served by every server here, and a self-signed certificate for localhost."""

    def __init__(self, test):
        self.dir = tempfile.mkdtemp(prefix="nk-h2get-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        # h2o started as root serves as nobody: the files must be readable by anyone
        os.chmod(self.dir, 0o755)
        self.www = os.path.join(self.dir, "www")
        os.mkdir(self.www, 0o755)
        self.big = os.urandom(3 * 1024 * 1024 + 17)  # past every default flow-control window
        self.write("big.bin", self.big)
        self.write("hello.txt", b"hello over h2\n")
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        if OPENSSL:
            subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj",
                            "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                            "-keyout", self.key, "-out", self.cert],
                           check=True, capture_output=True, timeout=30)

    def write(self, name, data):
        path = os.path.join(self.www, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)


H2O_CONF = """listen:
  host: 127.0.0.1
  port: {tls_port}
  ssl:
    certificate-file: {cert}
    key-file: {key}
listen:
  host: 127.0.0.1
  port: {port}
hosts:
  default:
    paths:
      /old:
        redirect:
          status: 301
          url: /hello.txt
      /:
        file.dir: {www}
"""


def start_h2o(test, site):
    """h2o on a TLS port (ALPN h2) and a cleartext one (h2c by prior knowledge, or HTTP/1.1)."""
    for attempt in range(5):
        port, tls_port = free_port(), free_port()
        conf = os.path.join(site.dir, "h2o.conf")
        with open(conf, "w") as f:
            f.write(H2O_CONF.format(port=port, tls_port=tls_port, cert=site.cert, key=site.key,
                                    www=site.www))
        log = open(os.path.join(site.dir, "h2o.log"), "w+b")
        test.addCleanup(log.close)
        proc = subprocess.Popen([H2O, "-c", conf], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log)
        test.addCleanup(harness._reap, proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if can_connect(port) and can_connect(tls_port):
                return port, tls_port
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
        if "Address already in use" not in text:
            test.fail("h2o did not start: %s" % text[-2000:])
    test.fail("h2o: no free port pair in 5 attempts")


class H2Server:
    """An h2c (prior knowledge) server on 127.0.0.1 whose paths do what a test needs:
    /echo answers the request's fields and body as JSON; /redirect?to=URL&status=N redirects;
    /rst resets the stream (INTERNAL_ERROR); /goaway ends the connection with GOAWAY
    PROTOCOL_ERROR; /stall sends a head and then nothing; /cut promises 100 bytes, sends 10 and
    closes. Every connection ends within 30 s."""

    def __init__(self, test):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.origin = "http://127.0.0.1:%d" % self.port
        self.stop = threading.Event()
        self.threads = []
        t = threading.Thread(target=self.accept_loop, daemon=True)
        t.start()
        self.threads.append(t)
        test.addCleanup(self.close)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)
        self.sock.close()

    def accept_loop(self):
        while not self.stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if r:
                s, _ = self.sock.accept()
                t = threading.Thread(target=self.serve, args=(s,), daemon=True)
                t.start()
                self.threads.append(t)

    def serve(self, s):
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        conn = h2.connection.H2Connection(cfg)
        conn.initiate_connection()
        streams = {}
        deadline = time.monotonic() + 30
        try:
            s.sendall(conn.data_to_send())
            while not self.stop.is_set() and time.monotonic() < deadline:
                r, _, _ = select.select([s], [], [], 0.1)
                if not r:
                    continue
                data = s.recv(65536)
                if not data:
                    return
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    return
                for ev in events:
                    if isinstance(ev, h2.events.RequestReceived):
                        streams[ev.stream_id] = {"headers": ev.headers, "body": bytearray()}
                        path = dict(ev.headers)[":path"]
                        if path.startswith("/rst"):
                            conn.reset_stream(ev.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                            streams[ev.stream_id]["reset"] = True
                        elif path.startswith("/goaway"):
                            conn.close_connection(h2.errors.ErrorCodes.PROTOCOL_ERROR,
                                                  additional_data=b"test says no")
                            s.sendall(conn.data_to_send())
                            self.close_cleanly(s)
                            return
                    elif isinstance(ev, h2.events.DataReceived):
                        streams[ev.stream_id]["body"] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        if streams[ev.stream_id].get("reset"):
                            continue
                        if self.respond(s, conn, ev.stream_id, streams[ev.stream_id]) == "close":
                            self.close_cleanly(s)
                            return
                s.sendall(conn.data_to_send())
        except OSError:
            pass
        finally:
            s.close()

    @staticmethod
    def close_cleanly(s):
        """End the connection with a FIN the client reads as such: what it still sends (a
        SETTINGS ACK) is read first, as a close with unread bytes would be a reset."""
        s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], 0.1)
            if r and not s.recv(65536):
                return

    def respond(self, s, conn, sid, req):
        headers = req["headers"]
        url = urllib.parse.urlsplit(dict(headers)[":path"])
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/echo":
            body = json.dumps({"headers": headers, "body_len": len(req["body"]),
                               "body_sha256": hashlib.sha256(req["body"]).hexdigest()}).encode()
            conn.send_headers(sid, [(":status", "200"), ("content-type", "application/json"),
                                    ("content-length", str(len(body)))])
            conn.send_data(sid, body, end_stream=True)  # well under the 64 KiB window
        elif url.path == "/redirect":
            conn.send_headers(sid, [(":status", query.get("status", "302")),
                                    ("location", query["to"]), ("content-length", "0")],
                              end_stream=True)
        elif url.path == "/stall":
            conn.send_headers(sid, [(":status", "200"), ("content-length", "5")])
        elif url.path == "/cut":
            conn.send_headers(sid, [(":status", "200"), ("content-length", "100")])
            conn.send_data(sid, b"0123456789")
            s.sendall(conn.data_to_send())
            return "close"
        else:
            conn.send_headers(sid, [(":status", "404"), ("content-length", "0")],
                              end_stream=True)
        return None


def frame_lines(stderr, direction, kind):
    return [l for l in stderr.splitlines() if l.startswith("%s %s " % (direction, kind))]


@unittest.skipUnless(H2O and OPENSSL, "h2o and openssl are needed (Debian: h2o, openssl)")
class AgainstH2o(unittest.TestCase):
    def setUp(self):
        self.site = Site(self)
        self.port, self.tls_port = start_h2o(self, self.site)
        self.https = "https://localhost:%d" % self.tls_port
        self.h2c = "http://127.0.0.1:%d" % self.port

    def tls(self, *args, **kw):
        return get("--http2", "--cacert", self.site.cert, *args, **kw)

    def test_body_over_tls_identical(self):
        r = self.tls(self.https + "/big.bin", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(hashlib.sha256(r.stdout).digest(), hashlib.sha256(self.site.big).digest())

    def test_body_over_h2c_to_file(self):
        out = os.path.join(self.site.dir, "got.bin")
        r = get("--http2-prior-knowledge", "-o", out, self.h2c + "/big.bin", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), self.site.big)
        # the temporary file was renamed, not left beside it
        self.assertEqual(sorted(os.listdir(self.site.dir)),
                         sorted(["www", "cert.pem", "key.pem", "h2o.conf", "h2o.log", "got.bin"]))

    def test_head_shows_http2_status_line(self):
        r = self.tls("-I", self.https + "/big.bin")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertTrue(out.startswith("HTTP/2 200\r\n"), out)
        self.assertIn("\r\ncontent-length: %d\r\n" % len(self.site.big), out)
        self.assertTrue(out.endswith("\r\n\r\n"), out)
        # -i: the head, then the body
        r = get("--http2-prior-knowledge", "-i", self.h2c + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/2 200\r\n"), head)
        self.assertEqual(body, b"hello over h2\n")

    def test_verbose_shows_frames(self):
        r = self.tls("-v", self.https + "/big.bin", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        err = r.stderr.decode()
        self.assertIn("* alpn        h2\n", err)
        self.assertIn("* ALPN: the server picked h2: HTTP/2\n", err)
        self.assertIn("> PRI * HTTP/2.0", err)
        self.assertTrue(frame_lines(err, ">", "SETTINGS"), err)
        self.assertTrue(frame_lines(err, "<", "SETTINGS"), err)
        self.assertRegex(err, r"\n> HEADERS stream=1 flags=END_STREAM\|END_HEADERS length=\d+\n"
                              r">   :method: GET\n>   :scheme: https\n"
                              r">   :authority: localhost:%d\n>   :path: /big.bin\n"
                         % self.tls_port)
        self.assertRegex(err, r"\n< HEADERS stream=1 flags=END_HEADERS length=\d+\n<   :status: 200\n")
        data = frame_lines(err, "<", "DATA")
        self.assertTrue(data)
        self.assertEqual(sum(int(re.search(r"length=(\d+)", l).group(1)) for l in data),
                         len(self.site.big))
        self.assertIn("flags=END_STREAM", data[-1])
        # 3 MiB is past the 1 MiB stream window the client grants: it has to give more
        self.assertTrue(frame_lines(err, ">", "WINDOW_UPDATE"), err)
        self.assertRegex(err, r"\n> GOAWAY stream=0 flags= length=8 last_stream=0 error=NO_ERROR\n")
        # the message layer too: the head as assembled
        self.assertIn("\n< HTTP/2 200\n", err)

    def test_range(self):
        r = get("--http2-prior-knowledge", "-i", "-H", "Range: bytes=100-199",
                self.h2c + "/big.bin")
        self.assertEqual(r.returncode, 0, r.stderr)
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/2 206\r\n"), head)
        self.assertEqual(body, self.site.big[100:200])

    def test_redirect_followed(self):
        r = self.tls("-L", "-v", self.https + "/old")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello over h2\n")
        self.assertIn("* Following redirect (301) to %s/hello.txt" % self.https, r.stderr.decode())
        # not followed without -L
        r = self.tls("-i", self.https + "/old")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith(b"HTTP/2 301\r\n"), r.stdout)

    def test_fail_on_404(self):
        r = get("--http2-prior-knowledge", "-f", self.h2c + "/missing")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(err_lines(r)), 1, r.stderr)
        self.assertIn("server answered 404", r.stderr.decode())

    def test_http2_over_cleartext_without_prior_knowledge_is_http11(self):
        r = get("--http2", "-v", self.h2c + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello over h2\n")
        err = r.stderr.decode()
        self.assertIn("* --http2 over http:// without --http2-prior-knowledge: HTTP/1.1", err)
        self.assertIn("> GET /hello.txt HTTP/1.1\n", err)
        self.assertFalse(frame_lines(err, ">", "SETTINGS"), err)

    def test_without_http2_alpn_offers_only_http11(self):
        r = get("--cacert", self.site.cert, "-v", self.https + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        err = r.stderr.decode()
        self.assertIn("ALPN offers http/1.1\n", err)
        self.assertIn("* alpn        http/1.1\n", err)
        self.assertIn("< HTTP/1.1 200 OK\n", err)


@unittest.skipUnless(h2 is not None, "python3-h2 is needed for the test server (Debian package)")
class AgainstTestServer(unittest.TestCase):
    def setUp(self):
        self.a = H2Server(self)
        self.b = H2Server(self)

    def echo(self, r):
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_request_fields_and_body(self):
        body = os.urandom(200 * 1024)  # past the 64 KiB window the server starts with
        d = tempfile.mkdtemp(prefix="nk-h2get-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "body.bin")
        with open(path, "wb") as f:
            f.write(body)
        r = get("--http2-prior-knowledge", "-X", "PUT", "-d", "@" + path, "-H", "X-Test: one",
                "-H", "Connection: keep-alive", "-H", "Accept:", self.a.origin + "/echo?q=1")
        got = self.echo(r)
        headers = got["headers"]
        self.assertEqual(headers[:4], [[":method", "PUT"], [":scheme", "http"],
                                       [":authority", "127.0.0.1:%d" % self.a.port],
                                       [":path", "/echo?q=1"]])
        names = [n for n, _ in headers]
        self.assertIn(["x-test", "one"], headers)
        self.assertIn(["content-length", str(len(body))], headers)
        self.assertIn("user-agent", names)
        self.assertNotIn("accept", names)       # removed by "Accept:"
        self.assertNotIn("connection", names)   # connection-specific: not in HTTP/2
        self.assertNotIn("host", names)         # :authority instead
        self.assertEqual(got["body_len"], len(body))
        self.assertEqual(got["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_host_header_becomes_authority(self):
        got = self.echo(get("--http2-prior-knowledge", "-H", "Host: example.test",
                            self.a.origin + "/echo"))
        self.assertIn([":authority", "example.test"], got["headers"])

    def test_redirect_same_origin_keeps_credentials(self):
        to = urllib.parse.quote("/echo")
        got = self.echo(get("--http2-prior-knowledge", "-L", "-H", "Authorization: Bearer s3",
                            "-H", "Cookie: c=1", self.a.origin + "/redirect?to=" + to))
        self.assertIn(["authorization", "Bearer s3"], got["headers"])
        self.assertIn(["cookie", "c=1"], got["headers"])

    def test_redirect_other_origin_drops_credentials(self):
        to = urllib.parse.quote(self.b.origin + "/echo")
        r = get("--http2-prior-knowledge", "-L", "-v", "-H", "Authorization: Bearer s3",
                "-H", "Cookie: c=1", "-H", "X-Keep: yes", self.a.origin + "/redirect?to=" + to)
        got = self.echo(r)
        names = [n for n, _ in got["headers"]]
        self.assertNotIn("authorization", names)
        self.assertNotIn("cookie", names)
        self.assertIn(["x-keep", "yes"], got["headers"])
        self.assertIn([":authority", "127.0.0.1:%d" % self.b.port], got["headers"])
        self.assertIn("* Another origin: -H Authorization and Cookie are not sent there",
                      r.stderr.decode())

    def test_redirect_307_resends_body_303_does_not(self):
        to = urllib.parse.quote("/echo")
        got = self.echo(get("--http2-prior-knowledge", "-L", "-d", "abc",
                            self.a.origin + "/redirect?status=307&to=" + to))
        self.assertIn([":method", "POST"], got["headers"])
        self.assertEqual(got["body_len"], 3)
        got = self.echo(get("--http2-prior-knowledge", "-L", "-d", "abc",
                            self.a.origin + "/redirect?status=303&to=" + to))
        self.assertIn([":method", "GET"], got["headers"])
        self.assertEqual(got["body_len"], 0)

    def test_max_redirs(self):
        to = urllib.parse.quote("/redirect?to=" + urllib.parse.quote("/echo"))
        r = get("--http2-prior-knowledge", "-L", "--max-redirs", "1",
                self.a.origin + "/redirect?to=" + to)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(err_lines(r), ["netkit: http get: maximum (1) redirects followed"])

    def test_rst_stream(self):
        r = get("--http2-prior-knowledge", "-v", self.a.origin + "/rst")
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode()
        self.assertRegex(err, r"\n< RST_STREAM stream=1 flags= length=4 error=INTERNAL_ERROR\n")
        r = get("--http2-prior-knowledge", self.a.origin + "/rst")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(err_lines(r), ["netkit: http get: the server reset the stream: "
                                        "RST_STREAM INTERNAL_ERROR (HTTP/2 error 0x2)"])

    def test_goaway(self):
        r = get("--http2-prior-knowledge", "-v", self.a.origin + "/goaway")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr.decode(), r"\n< GOAWAY stream=0 flags= length=\d+ "
                                             r"last_stream=\d+ error=PROTOCOL_ERROR\n"
                                             r"<   debug: test says no\n")
        r = get("--http2-prior-knowledge", self.a.origin + "/goaway")
        self.assertEqual(r.returncode, 1)
        lines = err_lines(r)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("GOAWAY PROTOCOL_ERROR", lines[0])
        self.assertIn("test says no", lines[0])

    def test_timeout(self):
        start = time.monotonic()
        r = get("--http2-prior-knowledge", "-w", "1", self.a.origin + "/stall")
        self.assertEqual(r.returncode, 1)
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(err_lines(r), ["netkit: http get: no answer from the server for 1 s"])

    def test_body_cut_short(self):
        out = os.path.join(tempfile.mkdtemp(prefix="nk-h2get-"), "cut.bin")
        self.addCleanup(shutil.rmtree, os.path.dirname(out), True)
        r = get("--http2-prior-knowledge", "-o", out, self.a.origin + "/cut")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(err_lines(r), ["netkit: http get: the server closed the connection in "
                                        "the middle of the body"])
        self.assertEqual(os.listdir(os.path.dirname(out)), [])  # nothing half-written left


def netkit_serves_h2():
    r = subprocess.run([harness.NETKIT, "http", "serve", "--help"], capture_output=True,
                       timeout=30)
    return b"--no-http2" in r.stdout


class AgainstNetkit(unittest.TestCase):
    def setUp(self):
        self.site = Site(self)

    def test_fallback_to_http11(self):
        # a server whose ALPN offers only http/1.1
        args = ["http", "serve", self.site.www, "-l", "https://127.0.0.1:0",
                "--tls-self-signed", "--access-log", "off"]
        if netkit_serves_h2():
            args.append("--no-http2")
        srv = harness.start(self, args, program=harness.NETKIT)
        r = get("--http2", "-v", "--pin-sha256", srv.fingerprint, srv.url + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello over h2\n")
        err = r.stderr.decode()
        self.assertIn("ALPN offers h2, http/1.1\n", err)
        self.assertIn("* ALPN: the server picked http/1.1: HTTP/1.1\n", err)
        self.assertIn("< HTTP/1.1 200 OK\n", err)
        self.assertFalse(frame_lines(err, ">", "SETTINGS"), err)

    def test_prior_knowledge_to_http11_server(self):
        args = ["http", "serve", self.site.www, "-l", "127.0.0.1:0", "--access-log", "off"]
        if netkit_serves_h2():
            args.append("--no-http2")
        srv = harness.start(self, args, program=harness.NETKIT)
        r = get("--http2-prior-knowledge", srv.url + "/hello.txt")
        self.assertEqual(r.returncode, 1)
        lines = err_lines(r)
        self.assertEqual(len(lines), 1, lines)

    @unittest.skipUnless(netkit_serves_h2(), "this netkit's http serve does not speak HTTP/2 "
                                             "(no --no-http2 in its --help)")
    def test_h2_both_ways(self):
        srv = harness.start(self, ["http", "serve", self.site.www, "-l", "https://127.0.0.1:0",
                                   "--tls-self-signed", "-l", "127.0.0.1:0",
                                   "--access-log", "off"], listeners=2, program=harness.NETKIT)
        https = [u for u in srv.urls if u.startswith("https://")][0]
        http = [u for u in srv.urls if u.startswith("http://")][0]
        r = get("--http2", "-v", "--pin-sha256", srv.fingerprint, https + "/big.bin",
                timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, self.site.big)
        err = r.stderr.decode()
        self.assertIn("* ALPN: the server picked h2: HTTP/2\n", err)
        self.assertTrue(frame_lines(err, "<", "SETTINGS"), err)
        self.assertTrue(frame_lines(err, "<", "DATA"), err)
        r = get("--http2-prior-knowledge", "-I", http + "/big.bin")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith(b"HTTP/2 200\r\n"), r.stdout)
        r = get("--http2-prior-knowledge", http + "/big.bin", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, self.site.big)
        r = get("--http2-prior-knowledge", "-i", "-H", "Range: bytes=10-19", http + "/big.bin")
        self.assertEqual(r.returncode, 0, r.stderr)
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/2 206\r\n"), head)
        self.assertEqual(body, self.site.big[10:20])


    @unittest.skipUnless(netkit_serves_h2(), "this netkit's http serve does not speak HTTP/2 "
                                             "(no --no-http2 in its --help)")
    def test_redirect_h2c_to_h2_over_tls(self):
        # http:// answers 308 to https://: another origin, so the credentials stay behind; the
        # second hop negotiates h2 by ALPN
        srv = harness.start(self, ["http", "serve", self.site.www, "-l", "127.0.0.1:0",
                                   "-l", "https://127.0.0.1:0", "--tls-self-signed",
                                   "--redirect-https", "--access-log", "off"], listeners=2,
                            program=harness.NETKIT)
        http = [u for u in srv.urls if u.startswith("http://")][0]
        r = get("--http2-prior-knowledge", "-L", "-v", "--pin-sha256", srv.fingerprint,
                "-H", "Authorization: Basic eDp5", http + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello over h2\n")
        err = r.stderr.decode()
        self.assertIn("\n< HTTP/2 308\n", err)
        self.assertIn("* Another origin: -H Authorization and Cookie are not sent there\n", err)
        self.assertIn("* ALPN: the server picked h2: HTTP/2\n", err)
        sent = [l for l in err.splitlines() if l.startswith(">   authorization:")]
        self.assertEqual(len(sent), 1, err)  # the first hop only
        self.assertIn("\n< HTTP/2 200\n", err)


if __name__ == "__main__":
    unittest.main()
