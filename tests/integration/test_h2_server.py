"""`netkit http serve` over HTTP/2 as clients use it: curl, nghttp and h2load over TLS (ALPN h2)
and cleartext (h2c with prior knowledge), python3-h2 for what those do not do (RFC 9218
priorities, uploads without content-length), and frames made by hand (h2frames.py) where the
exact frames the server sends are the point: the GOAWAY of a graceful stop, timeouts, resets.

Frame-level conformance and attacks have their own suites (test_h2_conformance.py,
test_h2_attacks.py); this one is about the server's features over h2. Each test chooses its
transport itself (explicit http:// or https:// listeners), so the suite is not run again per
transport.
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest

import harness
from debian_modules import import_debian
import h2frames as F
from h2frames import GOAWAY, HEADERS
from test_hardening import asan_build

try:
    import_debian("h2.config", "h2.connection", "h2.events", "h2.settings")
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
    H2 = True
except ImportError:
    H2 = False

MIB = 1024 * 1024
HELLO = b"hello, world\n"
SLOW = 3.0 if asan_build() else 1.0
NEEDS_H2 = unittest.skipUnless(H2 and F.AVAILABLE, "python3-h2 (with hpack, hyperframe) is "
                               "needed to speak HTTP/2 from Python (Debian packages)")


def tool(name):
    return unittest.skipUnless(shutil.which(name), "%s is not installed" % name)


def make_root(test, big=0, files=()):
    """A docroot with hello.txt, mib.bin (1 MiB), big.bin of big bytes when asked, and files
    ({name: bytes})."""
    root = tempfile.mkdtemp(prefix="netkit-h2srv-")
    test.addCleanup(shutil.rmtree, root, True)
    with open(os.path.join(root, "hello.txt"), "wb") as f:
        f.write(HELLO)
    with open(os.path.join(root, "mib.bin"), "wb") as f:
        f.write(os.urandom(MIB))
    if big:
        block = os.urandom(MIB)
        with open(os.path.join(root, "big.bin"), "wb") as f:
            for _ in range(big // MIB):
                f.write(block)
    for name, data in dict(files).items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    return root


def serve(test, root, *extra, tls=False, access_log="off"):
    """http serve on one explicit listener (the transport is the test's own), one worker."""
    args = ["http", "serve", root, "-l", "https://127.0.0.1:0" if tls else "http://127.0.0.1:0",
            "-w", "1"]
    if tls:
        args.append("--tls-self-signed")
    if "--access-log" not in extra:
        args += ["--access-log", access_log]
    srv = harness.start(test, args + list(extra))
    return srv, srv.host_port()


def url(addr, path, tls=False):
    return "%s://%s:%d%s" % ("https" if tls else "http", addr[0], addr[1], path)


def curl(args, timeout=60):
    return subprocess.run(["curl", "-sS", "--max-time", str(int(timeout))] + list(args),
                          capture_output=True, timeout=timeout + 10)


def tls_args(addr):
    """curl verifies the self-signed certificate against itself (the one the server printed)."""
    return ["--cacert", harness.tls_peer(addr).ca_file()]


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def wait_for(cond, timeout):
    """Poll cond every 50 ms until it is true or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def goaways(ev):
    """Every GOAWAY the connection received, as (last_sid, code)."""
    out = []
    for f in ev.frames:
        if f.type == GOAWAY and len(f.payload) >= 8:
            last, code = struct.unpack(">II", f.payload[:8])
            out.append((last & F.MAX_WINDOW, code))
    return out


class H2Client:
    """A python3-h2 client connection over h2c with windows as large as HTTP/2 allows, so what
    the server sends is limited by nothing but TCP; every DATA byte is acknowledged."""

    def __init__(self, test, addr, timeout=10):
        self.sock = socket.create_connection(addr, timeout=timeout)
        test.addCleanup(self.sock.close)
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: F.MAX_WINDOW})
        self.conn.increment_flow_control_window(F.MAX_WINDOW - 65535)
        self.flush()
        self.authority = "%s:%d" % addr
        self.status = {}
        self.body = {}
        self.ended = set()
        self.reset = {}
        self.log = []  # (stream, bytes of its body so far) at each end, in order

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method, path, extra=(), end_stream=True):
        sid = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "http"), (":authority", self.authority),
                  (":path", path)] + list(extra)
        self.conn.send_headers(sid, fields, end_stream=end_stream)
        self.body[sid] = bytearray()
        self.flush()
        return sid

    def pump(self, until, deadline):
        """Read and handle events until until() is true; False at the deadline or EOF."""
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(262144)
            except socket.timeout:
                return False
            if not data:
                return until()
            for e in self.conn.receive_data(data):
                if isinstance(e, h2.events.ResponseReceived):
                    self.status[e.stream_id] = int(dict(e.headers)[":status"])
                elif isinstance(e, h2.events.DataReceived):
                    self.body.setdefault(e.stream_id, bytearray()).extend(e.data)
                    self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                elif isinstance(e, h2.events.StreamEnded):
                    self.ended.add(e.stream_id)
                    self.log.append((e.stream_id, {s: len(b) for s, b in self.body.items()}))
                elif isinstance(e, h2.events.StreamReset):
                    self.reset[e.stream_id] = e.error_code
                elif isinstance(e, h2.events.ConnectionTerminated):
                    raise AssertionError("GOAWAY %s from the server" % e.error_code)
            self.flush()
        return True

    def send_body(self, sid, data, deadline, piece=65536):
        """Send data on sid as the windows allow (reading what comes meanwhile), then
        END_STREAM."""
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size,
                       piece)
            if room <= 0:
                got = self.pump(lambda: self.conn.local_flow_control_window(sid) > 0, deadline)
                if not got:
                    raise AssertionError("no window to send more than %d bytes" % pos)
                continue
            self.conn.send_data(sid, bytes(view[pos:pos + room]))
            pos += room
            self.flush()
        self.conn.end_stream(sid)
        self.flush()


# ---------------------------------------------------------------------------------------------
# 1. real clients

class RealClients(unittest.TestCase):
    def setUp(self):
        self.root = make_root(self)
        self.mib = read_file(os.path.join(self.root, "mib.bin"))

    def get_with_curl(self, addr, tls, mode):
        out = os.path.join(self.root, "..", os.path.basename(self.root) + ".out")
        self.addCleanup(lambda: os.path.exists(out) and os.unlink(out))
        for path, want in (("/hello.txt", HELLO), ("/mib.bin", self.mib)):
            p = curl((tls_args(addr) if tls else []) +
                     [mode, "-o", out, "-w", "%{http_version} %{http_code}", url(addr, path, tls)])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.decode(), "2 200", "curl %s %s" % (mode, path))
            got = read_file(out)
            self.assertTrue(got == want, "%s: %d bytes received, %d in the file%s"
                            % (path, len(got), len(want), "" if len(got) != len(want)
                               else ", not the same"))

    @tool("curl")
    def test_curl_http2_over_tls(self):
        _, addr = serve(self, self.root, tls=True)
        self.get_with_curl(addr, True, "--http2")

    @tool("curl")
    def test_curl_prior_knowledge_over_tls_and_cleartext(self):
        _, addr = serve(self, self.root, tls=True)
        self.get_with_curl(addr, True, "--http2-prior-knowledge")
        _, addr = serve(self, self.root)
        self.get_with_curl(addr, False, "--http2-prior-knowledge")

    @tool("curl")
    def test_curl_http2_on_cleartext_stays_http1(self):
        # no Upgrade: h2c: curl's upgrade request is answered over HTTP/1.1, whole
        _, addr = serve(self, self.root)
        p = curl(["--http2", "-o", "-", "-w", "\n%{http_version} %{http_code}",
                        url(addr, "/hello.txt")])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, HELLO + b"\n1.1 200")

    def nghttp(self, tls):
        _, addr = serve(self, self.root, tls=tls)
        # -v with -n shows the frames alone; the body is checked by a run without -v, which
        # writes it to stdout (nghttp has no option to save it to a file)
        p = subprocess.run(["nghttp", "-v", "-n", "-t", "20", url(addr, "/mib.bin", tls)],
                           capture_output=True, timeout=60)
        text = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, text[-2000:] + p.stderr.decode())
        for shown in ("send SETTINGS frame", "recv SETTINGS frame", "recv HEADERS frame",
                      "recv DATA frame", "(stream_id=13) :status: 200",
                      "(stream_id=13) content-length: %d" % MIB):
            self.assertIn(shown, text)
        self.assertRegex(text, r"recv DATA frame <length=\d+, flags=0x01, stream_id=13>")
        if tls:
            self.assertIn("The negotiated protocol: h2", text)
        p = subprocess.run(["nghttp", "-t", "20", url(addr, "/mib.bin", tls)],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertTrue(p.stdout == self.mib, "nghttp received %d bytes, not the %d of the file"
                        % (len(p.stdout), MIB) if len(p.stdout) != MIB else "the body differs")

    @tool("nghttp")
    def test_nghttp_h2c(self):
        self.nghttp(False)

    @tool("nghttp")
    def test_nghttp_tls(self):
        self.nghttp(True)

    @tool("nghttp")
    def test_nghttp_upload_to_echo(self):
        # -d sends the file as the request body (POST): --echo counts it
        _, addr = serve(self, self.root, "--echo")
        p = subprocess.run(["nghttp", "-d", os.path.join(self.root, "mib.bin"), "-t", "20",
                            url(addr, "/up")], capture_output=True, timeout=60)
        text = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertIn("request-line POST /up HTTP/2\n", text)
        self.assertRegex(text, r"\nbody %d bytes" % MIB)

    def h2load(self, tls, path):
        _, addr = serve(self, self.root, tls=tls)
        p = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "16", url(addr, path, tls)],
                           capture_output=True, timeout=180 * SLOW)
        text = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, text + p.stderr.decode())
        self.assertIn("Application protocol: %s\n" % ("h2" if tls else "h2c"), text)
        self.assertIn("requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, "
                      "0 errored, 0 timeout", text)
        self.assertIn("status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx", text)
        size = len(HELLO) if path == "/hello.txt" else MIB
        m = re.search(r"\n\s*traffic: .* \((\d+)\) data\n", text)
        self.assertIsNotNone(m, text)
        self.assertEqual(int(m.group(1)), 2000 * size, text)

    @tool("h2load")
    def test_h2load_small_h2c(self):
        self.h2load(False, "/hello.txt")

    @tool("h2load")
    def test_h2load_small_tls(self):
        self.h2load(True, "/hello.txt")

    @tool("h2load")
    def test_h2load_mib_h2c(self):
        self.h2load(False, "/mib.bin")

    @tool("h2load")
    def test_h2load_mib_tls(self):
        self.h2load(True, "/mib.bin")


# ---------------------------------------------------------------------------------------------
# 2. RFC 9218 priorities

def priority_update(prioritized, value):
    """PRIORITY_UPDATE (RFC 9218 7.1): type 0x10 on stream 0, the stream it is about, the
    Priority field value."""
    return F.frame(0x10, 0, 0, struct.pack(">I", prioritized) + value)


class Priorities(unittest.TestCase):
    BIG = 32 * MIB

    @NEEDS_H2
    def test_urgent_small_response_overtakes_a_background_download(self):
        root = make_root(self, big=self.BIG)
        _, addr = serve(self, root)
        c = H2Client(self, addr)
        deadline = time.monotonic() + 60 * SLOW
        big = c.request("GET", "/big.bin", [("priority", "u=7")])
        self.assertTrue(c.pump(lambda: len(c.body[big]) > 0, deadline),
                        "no DATA of the big download")
        small = c.request("GET", "/hello.txt", [("priority", "u=0")])
        self.assertTrue(c.pump(lambda: small in c.ended, deadline),
                        "the urgent response did not complete: %r" % c.log)
        self.assertEqual(c.status.get(small), 200)
        self.assertEqual(bytes(c.body[small]), HELLO)
        big_then = len(c.body[big])
        self.assertTrue(c.pump(lambda: big in c.ended, deadline), "the big download stopped")
        self.assertEqual(len(c.body[big]), self.BIG)
        # loopback and socket buffers hold a few MiB at most: a server serving the urgent
        # request in turn (after the background one) would answer it only at the end
        self.assertLess(big_then, self.BIG // 4,
                        "the u=0 response ended after %d of the %d bytes of the u=7 one"
                        % (big_then, self.BIG))
        self.assertNotEqual(c.log[0][0], big)

    def test_priority_update_accepted(self):
        root = make_root(self)
        _, addr = serve(self, root)
        deadline = time.monotonic() + 10 * SLOW
        with F.Conn(addr) as c:
            c.handshake(deadline=deadline)
            # for a stream not opened yet (allowed: RFC 9218 7.1), then for an open one whose
            # response waits for window (the default 65535 bytes of 1 MiB)
            c.send(priority_update(1, b"u=1"))
            sid = c.request(F.request_fields(path="/mib.bin"))
            c.collect(lambda ev: sid in ev.streams and len(ev.streams[sid].body) > 0, deadline)
            c.send(priority_update(sid, b"u=6, i") + F.ping(b"probe-42"))
            c.collect(lambda ev: ev.ping_acks or ev.goaway is not None or ev.eof, deadline)
            self.assertTrue(c.ev.ping_acks, c.ev.describe())
            c.send(F.window_update(0, 2 * MIB) + F.window_update(sid, 2 * MIB))
            r = c.response(sid, deadline)
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), MIB)
            sid2 = c.request(F.request_fields(path="/hello.txt"))
            r2 = c.response(sid2, deadline)
            self.assertEqual(bytes(r2.body), HELLO)
            self.assertIsNone(c.ev.goaway, c.ev.describe())
            self.assertFalse(c.ev.rst, c.ev.describe())


# ---------------------------------------------------------------------------------------------
# 3. graceful stop

class GracefulStop(unittest.TestCase):
    BIG = 32 * MIB

    def test_sigterm_sends_goaway_and_finishes_the_stream_in_flight(self):
        root = make_root(self, big=self.BIG)
        srv, addr = serve(self, root)
        want = read_file(os.path.join(root, "big.bin"))
        deadline = time.monotonic() + 60 * SLOW
        with F.Conn(addr, timeout=10) as c:
            c.handshake(deadline=deadline)
            sid = c.request(F.request_fields(path="/big.bin"))
            # the first window's worth (65535 bytes) comes, then the server waits for more
            self.assertTrue(c.collect(lambda ev: sid in ev.streams and ev.streams[sid].body,
                                      deadline), c.ev.describe())
            srv.proc.send_signal(signal.SIGTERM)
            t_term = time.monotonic()
            self.assertTrue(c.collect(lambda ev: any(l != F.MAX_WINDOW for l, _ in goaways(ev))
                                      or ev.eof, min(deadline, t_term + 5 * SLOW)),
                            "no GOAWAY after SIGTERM: %s" % c.ev.describe())
            for last, code in goaways(c.ev):
                self.assertEqual(code, F.NO_ERROR, c.ev.describe())
            self.assertEqual(goaways(c.ev)[-1][0], sid, c.ev.describe())
            # a stream opened after the GOAWAY is not served
            late = c.request(F.request_fields(path="/hello.txt"), sid=sid + 2)
            # now the window for all of it
            c.send(F.window_update(0, 64 * MIB) + F.window_update(sid, 64 * MIB))
            c.answer_pings = True
            c.collect(lambda ev: ev.streams[sid].ended or ev.eof or sid in ev.rst, deadline)
            r = c.ev.streams[sid]
            self.assertTrue(r.ended, "the download did not complete (%d of %d bytes): %s"
                            % (len(r.body), self.BIG, c.ev.describe()))
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), self.BIG)
            self.assertTrue(bytes(r.body) == want, "the download differs from the file")
            c.collect(lambda ev: ev.eof, time.monotonic() + 10 * SLOW)
            late_r = c.ev.streams.get(late)
            self.assertTrue(late_r is None or late_r.headers is None,
                            "stream %d opened after the GOAWAY was answered: %s"
                            % (late, c.ev.describe()))
            if late in c.ev.rst:
                self.assertEqual(c.ev.rst[late], F.REFUSED_STREAM, c.ev.describe())
            for last, code in goaways(c.ev):
                self.assertEqual(code, F.NO_ERROR, c.ev.describe())
            self.assertTrue(c.ev.eof, "the connection stays open once its stream is done: %s"
                            % c.ev.describe())
        # the drain ends with the last connection, well before its 30 s bound
        try:
            rc = srv.proc.wait(10 * SLOW)
        except subprocess.TimeoutExpired:
            self.fail("the server still runs %.1f s after SIGTERM with nothing in flight"
                      % (time.monotonic() - t_term))
        self.assertEqual(rc, 0)


# ---------------------------------------------------------------------------------------------
# 4. timeouts

class Timeouts(unittest.TestCase):
    def setUp(self):
        self.root = make_root(self)

    def test_idle_connection_gets_goaway(self):
        _, addr = serve(self, self.root, "--idle-timeout", "1")
        with F.Conn(addr, timeout=10) as c:
            c.handshake()
            sid = c.request(F.request_fields())
            c.response(sid, time.monotonic() + 5)
            t0 = time.monotonic()
            c.answer_pings = True
            closed = c.wait_closed(t0 + 3 * SLOW + 1)
            elapsed = time.monotonic() - t0
            self.assertTrue(closed, "still open after %.1f s: %s" % (elapsed, c.ev.describe()))
            self.assertGreater(elapsed, 0.7, "closed before the idle timeout")
            self.assertTrue(goaways(c.ev), "closed without GOAWAY: %s" % c.ev.describe())
            self.assertEqual(goaways(c.ev)[-1], (sid, F.NO_ERROR), c.ev.describe())

    def test_preface_alone_is_closed_after_the_header_timeout(self):
        _, addr = serve(self, self.root, "--header-timeout", "1", "--idle-timeout", "30")
        with F.Conn(addr, timeout=10) as c:
            c.send(F.PREFACE)
            t0 = time.monotonic()
            closed = c.wait_closed(t0 + 3 * SLOW + 1)
            elapsed = time.monotonic() - t0
            self.assertTrue(closed, "still open after %.1f s: %s" % (elapsed, c.ev.describe()))
            self.assertGreater(elapsed, 0.7, "closed before the header timeout")
            for f in c.ev.frames:
                self.assertIn(f.type, (F.SETTINGS, GOAWAY, F.WINDOW_UPDATE, F.PING),
                              c.ev.describe())

    def test_request_body_that_never_comes_ends_the_stream(self):
        _, addr = serve(self, self.root, "--echo", "--body-timeout", "2", "--send-timeout", "1",
                        "--idle-timeout", "30", "--header-timeout", "30")
        with F.Conn(addr, timeout=10) as c:
            c.handshake()
            block = c.block(F.request_fields("POST", "/echo",
                                             extra=[("content-length", "1000")]))
            c.send(F.headers(1, block, end_stream=False) + F.data(1, b"x" * 10))
            t0 = time.monotonic()
            c.answer_pings = True

            def ended(ev):
                r = ev.streams.get(1)
                return 1 in ev.rst or (r is not None and r.ended) or ev.eof or \
                    ev.goaway is not None
            c.collect(ended, t0 + 5 * SLOW)
            elapsed = time.monotonic() - t0
            r = c.ev.streams.get(1)
            self.assertTrue(1 in c.ev.rst or (r is not None and r.ended),
                            "the stream is not ended after %.1f s: %s"
                            % (elapsed, c.ev.describe()))
            if r is not None and r.headers is not None:
                self.assertEqual(r.status, 408, c.ev.describe())
            self.assertGreater(elapsed, 0.7, "ended before the timeout")
            self.assertLess(elapsed, 3.5 * SLOW, "ended long after the 1 s send timeout")


# ---------------------------------------------------------------------------------------------
# 5. access log and status

class LogAndStatus(unittest.TestCase):
    def setUp(self):
        self.root = make_root(self)
        self.log = os.path.join(self.root, "..", os.path.basename(self.root) + ".log")
        self.addCleanup(lambda: os.path.exists(self.log) and os.unlink(self.log))

    def status(self, addr, query=""):
        # over HTTP/1.1, so that reading the counters does not change them
        conn = http.client.HTTPConnection(addr[0], addr[1], timeout=5)
        try:
            conn.request("GET", "/s" + query)
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            return r.read().decode()
        finally:
            conn.close()

    def test_combined_log_and_counters(self):
        srv, addr = serve(self, self.root, "--status", "/s", access_log=self.log)
        deadline = time.monotonic() + 20 * SLOW
        with F.Conn(addr) as a:
            a.handshake(deadline=deadline)
            for _ in range(2):
                sid = a.request(F.request_fields())
                self.assertEqual(bytes(a.response(sid, deadline).body), HELLO)
            a.grant_window = False
            # the 1 MiB file stops at the first 65535 bytes: the reset comes mid-response
            sid = a.request(F.request_fields(path="/mib.bin"))
            a.collect(lambda ev: sid in ev.streams and ev.streams[sid].body, deadline)
            a.send(F.rst_stream(sid, F.CANCEL) + F.ping(b"probe-42"))
            self.assertTrue(a.collect(lambda ev: b"probe-42" in ev.ping_acks, deadline),
                            a.ev.describe())
            with F.Conn(addr) as b:
                b.handshake(deadline=deadline)
                for path in ("/hello.txt", "/nothing-here"):
                    sid = b.request(F.request_fields(path=path))
                    b.response(sid, deadline)
        want = {"h2_connections": 2, "h2_streams": 5, "h2_resets": 1}

        def counters():
            s = json.loads(self.status(addr))
            return {k: s.get(k) for k in want}
        # the counters follow the frames as the worker handles them: a moment may pass
        wait_for(lambda: counters() == want, 3)
        self.assertEqual(counters(), want)
        prom = self.status(addr, "?format=prometheus")
        for line in ("netkit_http2_connections_total 2", "netkit_http2_streams_total 5",
                     "netkit_http2_resets_total 1"):
            self.assertIn("\n" + line + "\n", prom)
        self.assertEqual(srv.stop(), 0)
        text = read_file(self.log).decode()
        self.assertEqual(len(re.findall(r'"GET /hello\.txt HTTP/2\.0" 200 13 ', text)), 3, text)
        self.assertRegex(text, r'"GET /nothing-here HTTP/2\.0" 404 ')
        self.assertRegex(text, r'"GET /s HTTP/1\.1" 200 ')

    def test_json_log(self):
        srv, addr = serve(self, self.root, "--log-format", "json", access_log=self.log)
        r = F.get(addr, "/hello.txt", timeout=5 * SLOW)
        self.assertEqual(bytes(r.body), HELLO)
        self.assertEqual(srv.stop(), 0)
        lines = [json.loads(l) for l in read_file(self.log).decode().splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(lines[0].get("protocol"), "HTTP/2.0", lines)
        self.assertEqual(lines[0].get("status"), 200, lines)
        self.assertIn('"protocol":"HTTP/2.0"', read_file(self.log).decode())


# ---------------------------------------------------------------------------------------------
# 6. -v and --echo

class VerboseAndEcho(unittest.TestCase):
    def setUp(self):
        self.root = make_root(self, files={"x": b"x\n"})

    def test_verbose_names_the_stream(self):
        srv, addr = serve(self, self.root, "-v")
        r = F.get(addr, "/x", timeout=5 * SLOW)
        self.assertEqual(r.status, 200)
        seen = ""
        deadline = time.monotonic() + 5
        while "GET /x HTTP/2 (stream 1)\n" not in seen and time.monotonic() < deadline:
            seen += srv.read_stderr(0.2)
        self.assertRegex(seen, r"\[127\.0\.0\.1:\d+ #\d+\] GET /x HTTP/2 \(stream 1\)\n"
                               r":authority: 127\.0\.0\.1\n")

    def test_echo_text_and_json(self):
        _, addr = serve(self, self.root, "--echo")
        r = F.get(addr, "/x", timeout=5 * SLOW, extra=[("x-probe", "1")])
        body = bytes(r.body).decode()
        self.assertEqual(r.status, 200)
        self.assertIn("\nrequest-line GET /x HTTP/2\n", body)
        self.assertIn("\nheader :authority: 127.0.0.1\n", body)
        self.assertIn("\nheader x-probe: 1\n", body)
        r = F.get(addr, "/x", timeout=5 * SLOW, extra=[("accept", "application/json")])
        doc = json.loads(bytes(r.body))
        self.assertEqual(doc["request_line"], "GET /x HTTP/2")
        self.assertEqual(doc["version"], "HTTP/2")
        self.assertIn([":authority", "127.0.0.1"], doc["headers"])


# ---------------------------------------------------------------------------------------------
# 7. uploads

class Uploads(unittest.TestCase):
    SIZE = 5 * MIB

    def setUp(self):
        self.root = make_root(self)
        self.data = os.urandom(self.SIZE)
        fd, self.src = tempfile.mkstemp(prefix="netkit-h2srv-src-")
        self.addCleanup(os.unlink, self.src)
        with os.fdopen(fd, "wb") as f:
            f.write(self.data)
        self.srv, self.addr = serve(self, self.root, "--upload", "--auth", "u:p")
        self.before = sorted(os.listdir(self.root))

    @tool("curl")
    def test_curl_put_with_length(self):
        p = curl(["--http2-prior-knowledge", "-u", "u:p", "-T", self.src, "-o", "/dev/null",
                        "-w", "%{http_version} %{http_code}", url(self.addr, "/five.bin")])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(p.stdout.decode(), ("2 201", "2 200", "2 204"))
        self.assertTrue(read_file(os.path.join(self.root, "five.bin")) == self.data,
                        "the stored file differs from what was sent")

    @NEEDS_H2
    def test_put_without_content_length(self):
        c = H2Client(self, self.addr)
        deadline = time.monotonic() + 60 * SLOW
        sid = c.request("PUT", "/chunked.bin", [("authorization", basic("u", "p"))],
                        end_stream=False)
        c.send_body(sid, self.data, deadline, piece=10000)
        self.assertTrue(c.pump(lambda: sid in c.ended or sid in c.reset, deadline),
                        "no answer to the PUT")
        self.assertNotIn(sid, c.reset)
        self.assertIn(c.status.get(sid), (200, 201, 204))
        self.assertTrue(read_file(os.path.join(self.root, "chunked.bin")) == self.data,
                        "the stored file differs from what was sent")

    @tool("curl")
    def test_unauthenticated_put_gets_401(self):
        p = curl(["--http2-prior-knowledge", "-T", self.src, "-o", "/dev/null",
                        "-w", "%{http_version} %{http_code}", url(self.addr, "/five.bin")])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode(), "2 401")
        self.assertEqual(sorted(os.listdir(self.root)), self.before)

    def test_reset_mid_body_leaves_nothing(self):
        deadline = time.monotonic() + 20 * SLOW
        with F.Conn(self.addr) as c:
            c.handshake(deadline=deadline)
            block = c.block(F.request_fields("PUT", "/cancel.bin", extra=[
                ("content-length", str(MIB)), ("authorization", basic("u", "p"))]))
            c.send(F.headers(1, block, end_stream=False))
            for _ in range(3):
                c.send(F.data(1, os.urandom(16000)))
            # the server writes what came into its temporary file
            tmp = wait_for(lambda: sorted(os.listdir(self.root)) != self.before, 2 * SLOW)
            c.send(F.rst_stream(1, F.CANCEL) + F.ping(b"probe-42"))
            self.assertTrue(c.collect(lambda ev: b"probe-42" in ev.ping_acks or ev.eof,
                                      deadline), c.ev.describe())
            left = wait_for(lambda: sorted(os.listdir(self.root)) == self.before, 3 * SLOW)
            self.assertTrue(left, "after the reset the directory holds %r (before: %r; a new "
                            "entry was %sseen during the upload)"
                            % (sorted(os.listdir(self.root)), self.before, "" if tmp else "not "))
            # the connection goes on
            sid = c.request(F.request_fields(), sid=3)
            self.assertEqual(bytes(c.response(sid, deadline).body), HELLO)


# ---------------------------------------------------------------------------------------------
# 8. --no-http2

class NoHttp2(unittest.TestCase):
    def setUp(self):
        self.root = make_root(self)

    def test_preface_on_cleartext_gets_http1_error(self):
        _, addr = serve(self, self.root, "--no-http2")
        with F.Conn(addr, timeout=10) as c:
            c.send(F.PREFACE + F.settings())
            self.assertTrue(c.wait_closed(time.monotonic() + 5 * SLOW),
                            "the connection stays open: %s" % c.ev.describe())
            self.assertFalse([f for f in c.ev.frames if f.type in (F.SETTINGS, HEADERS)],
                             "answered as HTTP/2: %s" % c.ev.describe())
            self.assertIsNotNone(c.ev.http1, c.ev.describe())
            self.assertRegex(c.ev.http1, rb"\AHTTP/1\.1 (505|400) ")

    def test_alpn_h2_not_selected(self):
        _, addr = serve(self, self.root, "--no-http2", tls=True)
        s = socket.create_connection(addr, timeout=5)
        with F.tls_context(["h2", "http/1.1"]).wrap_socket(s) as t:
            self.assertEqual(t.selected_alpn_protocol(), "http/1.1")
            t.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = b""
            while True:
                chunk = t.recv(65536)
                if not chunk:
                    break
                got += chunk
            self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got[:200])
            self.assertTrue(got.endswith(HELLO))
        # a client that offers only h2 is not given it
        s = socket.create_connection(addr, timeout=5)
        try:
            t = F.tls_context(["h2"]).wrap_socket(s)
        except (ssl.SSLError, ConnectionError):
            pass  # refused by an alert (no_application_protocol): fine
        else:
            with t:
                self.assertNotEqual(t.selected_alpn_protocol(), "h2")

    def test_h2_is_on_by_default(self):
        # the same checks against a server without --no-http2 give h2: they can tell
        _, addr = serve(self, self.root, tls=True)
        s = socket.create_connection(addr, timeout=5)
        with F.tls_context(["h2", "http/1.1"]).wrap_socket(s) as t:
            self.assertEqual(t.selected_alpn_protocol(), "h2")


if __name__ == "__main__":
    unittest.main()
