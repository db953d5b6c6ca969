"""The programs in examples/, built against the public headers and the shared library, run
against real clients: what an outside C programmer would write works as shown."""
import json
import os
import select
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import http.client
import time
import unittest
import urllib.request

import harness
import httptest as H
from test_h2_server import H2Client, NEEDS_H2

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(harness.NETKIT)), "examples")


class HttpJsonExample(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        with open(os.path.join(tmp.name, "index.html"), "w") as f:
            f.write("<!DOCTYPE html><title>example</title>\n")
        prog = os.path.join(EXAMPLES, "http_json")
        self.assertTrue(os.access(prog, os.X_OK), "examples are built with the project: " + prog)
        self.srv = harness.start(self, ["127.0.0.1:0", tmp.name], program=prog)
        self.host, self.port = self.srv.host_port()

    def get(self, path):
        with urllib.request.urlopen("http://%s:%d%s" % (self.host, self.port, path),
                                    timeout=10) as r:
            return r.status, r.headers, r.read()

    def test_json_route(self):
        st, h, body = self.get("/api/time?tz=UTC")
        self.assertEqual(st, 200)
        self.assertEqual(h["Content-Type"], "application/json")
        doc = json.loads(body)
        self.assertIs(doc["utc"], True)
        self.assertGreater(doc["unix"], 1700000000)

    def test_static_files_behind_it(self):
        st, h, body = self.get("/")
        self.assertEqual(st, 200)
        self.assertIn(b"<title>example</title>", body)
        out, _ = H.raw_ex(self.host, self.port,
                          b"HEAD /api/time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        resps, _ = H.parse_responses(out, ["HEAD"])
        self.assertEqual([r.status for r in resps], [200])
        self.assertEqual(resps[0].body, b"")

    def test_stops_on_sigterm(self):
        self.assertEqual(self.srv.stop(), 0)


def example(test, name):
    prog = os.path.join(EXAMPLES, name)
    test.assertTrue(os.access(prog, os.X_OK), "examples are built with the project: " + prog)
    return prog


def connect(host, port, timeout=10):
    sock = socket.create_connection((host, port), timeout=timeout)
    return sock


class EchoIdleExample(unittest.TestCase):
    """examples/echo_idle.c: echo on every backend, idle connections closed by their timer."""

    def start(self, args, env=None):
        srv = harness.start(self, args, program=example(self, "echo_idle"), env=env)
        return srv, srv.host_port()

    def test_echo_round_trip_on_each_backend(self):
        for backend in ("select", "poll", "epoll", "uring"):
            with self.subTest(backend=backend):
                harness.skip_if_backend_refused(self, backend)
                srv, (host, port) = self.start(["127.0.0.1:0", "10", backend])
                self.assertIn("backend %s" % backend, srv.stderr_lines[-1])
                with connect(host, port) as s:
                    # More than the server's 64 KiB queue: reading stops and resumes.
                    payload = bytes(range(256)) * 2048
                    self.assertEqual(harness.stream_roundtrip(s, payload, timeout=20), payload)
                self.assertEqual(srv.stop(), 0)

    def test_backend_from_the_environment(self):
        srv, _ = self.start(["127.0.0.1:0"], env={"NETKIT_BACKEND": "poll"})
        self.assertIn("backend poll", srv.stderr_lines[-1])
        self.assertEqual(srv.stop(), 0)

    def test_unknown_backend_is_an_error(self):
        r = subprocess.run([example(self, "echo_idle"), "127.0.0.1:0", "1", "kqueue"],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"backend kqueue", r.stderr)

    def test_idle_connection_is_closed_after_the_timeout(self):
        srv, (host, port) = self.start(["127.0.0.1:0", "1"])
        with connect(host, port) as s:
            s.sendall(b"ping")
            self.assertEqual(s.recv(16), b"ping")
            quiet_since = time.monotonic()
            self.assertEqual(s.recv(16), b"")  # closed by the server (socket timeout: 10 s)
            waited = time.monotonic() - quiet_since
        self.assertGreater(waited, 0.8)
        self.assertLess(waited, 3.0)
        self.assertIn("idle", srv.read_stderr(1.0))
        self.assertEqual(srv.stop(), 0)

    def test_activity_restarts_the_idle_timer(self):
        srv, (host, port) = self.start(["127.0.0.1:0", "1"])
        with connect(host, port) as s:
            # 2.5 s of traffic, never 1 s apart: the connection must outlive its first deadline.
            for i in range(6):
                s.sendall(b"%d" % i)
                self.assertEqual(s.recv(16), b"%d" % i)
                time.sleep(0.4)
            s.sendall(b"still here")
            self.assertEqual(s.recv(16), b"still here")
        self.assertEqual(srv.stop(), 0)

    def test_sigint_and_sigterm_stop_it_with_connections_open(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig):
                srv, (host, port) = self.start(["127.0.0.1:0", "10"])
                with connect(host, port) as s:
                    s.sendall(b"x")
                    self.assertEqual(s.recv(1), b"x")
                    self.assertEqual(srv.stop(sig), 0)
                    self.assertEqual(s.recv(1), b"")  # closed at exit, not abandoned


class EchoExample(unittest.TestCase):
    """examples/echo.c: the shortest echo server, a stream listener (nk_stream_listen)."""

    def start(self):
        srv = harness.start(self, ["127.0.0.1:0"], program=example(self, "echo"))
        return srv, srv.host_port()

    def test_echo_with_back_pressure_and_several_clients(self):
        srv, (host, port) = self.start()
        with connect(host, port) as a, connect(host, port) as b:
            # More than the stream's 64 KiB queue: reading pauses and resumes.
            payload = bytes(range(256)) * 2048
            self.assertEqual(harness.stream_roundtrip(a, payload, timeout=20), payload)
            b.sendall(b"ping")
            self.assertEqual(b.recv(16), b"ping")
        self.assertEqual(srv.stop(), 0)

    def test_half_close_gets_the_rest_then_the_end(self):
        srv, (host, port) = self.start()
        with connect(host, port) as s:
            s.sendall(b"last words")
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                chunk = s.recv(64)
                if not chunk:
                    break
                got += chunk
            self.assertEqual(got, b"last words")
        self.assertEqual(srv.stop(), 0)

    def test_signals_stop_it_with_connections_open(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig):
                srv, (host, port) = self.start()
                with connect(host, port) as s:
                    s.sendall(b"x")
                    self.assertEqual(s.recv(1), b"x")
                    self.assertEqual(srv.stop(sig), 0)
                    self.assertEqual(s.recv(1), b"")  # closed at exit, not abandoned

    def test_address_in_use_is_an_error(self):
        srv, (host, port) = self.start()
        r = subprocess.run([example(self, "echo"), "%s:%d" % (host, port)],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("echo: ", r.stderr)
        self.assertEqual(srv.stop(), 0)


class EchoOpsExample(unittest.TestCase):
    """examples/echo_ops.c: echo on operations (netkit/op.h), the same code on every backend."""

    def start(self, backend):
        srv = harness.start(self, ["127.0.0.1:0", backend], program=example(self, "echo_ops"))
        return srv, srv.host_port()

    def test_echo_on_each_backend(self):
        for backend in ("select", "poll", "epoll", "uring"):
            with self.subTest(backend=backend):
                harness.skip_if_backend_refused(self, backend)
                srv, (host, port) = self.start(backend)
                self.assertIn("backend %s" % backend, srv.stderr_lines[-1])
                with connect(host, port) as a, connect(host, port) as b:
                    # More than two 64 KiB buffers: receives wait for their buffer's send.
                    payload = bytes(range(256)) * 2048
                    self.assertEqual(harness.stream_roundtrip(a, payload, timeout=20), payload)
                    b.sendall(b"ping")
                    self.assertEqual(b.recv(16), b"ping")
                    # Stopped with both connections open: every operation is stopped and
                    # called back before the loop is freed (exit 0, clean under ASan).
                    self.assertEqual(srv.stop(), 0)
                    self.assertEqual(a.recv(1), b"")

    def test_client_closing_first(self):
        srv, (host, port) = self.start("epoll")
        for _ in range(20):
            with connect(host, port) as s:
                s.sendall(b"x" * 100)
                self.assertEqual(s.recv(100, socket.MSG_WAITALL), b"x" * 100)
        self.assertEqual(srv.stop(), 0)


def wait_stderr(test, srv, text, count=1, timeout=10):
    """Take srv's stderr lines until `count` of them contain `text`; returns the lines taken.
    Lines read past the last match stay queued on srv for the next call."""
    lines = []
    queued = getattr(srv, "queued_lines", [])
    pending = getattr(srv, "pending_bytes", b"")
    deadline = time.monotonic() + timeout
    fd = srv.proc.stderr.fileno()
    while sum(text in l for l in lines) < count:
        if queued:
            lines.append(queued.pop(0))
            continue
        left = deadline - time.monotonic()
        test.assertGreater(left, 0, "waiting for %d x %r on stderr, got %r" % (count, text, lines))
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 4096)
            test.assertTrue(chunk, "stderr closed while waiting for %r: %r" % (text, lines))
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                queued.append(line.decode("utf-8", "replace"))
    srv.queued_lines, srv.pending_bytes = queued, pending
    return lines


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


class FrameReader:
    """Reads len32 frames from a socket (its timeout bounds each wait)."""

    def __init__(self, sock):
        self.sock = sock
        self.data = b""

    def next(self):
        while True:
            if len(self.data) >= 4:
                n = struct.unpack(">I", self.data[:4])[0]
                if len(self.data) >= 4 + n:
                    msg, self.data = self.data[4:4 + n], self.data[4 + n:]
                    return msg
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed with %d bytes pending" % len(self.data))
            self.data += chunk


class ChatRelayExample(unittest.TestCase):
    """examples/chat_relay.c: len32 frames relayed to every other client."""

    def start(self, args=()):
        srv = harness.start(self, ["127.0.0.1:0"] + list(args), program=example(self, "chat_relay"))
        self.addCleanup(srv.stop)
        return srv, srv.host_port()

    def clients(self, srv, addr, n):
        socks = [connect(*addr) for _ in range(n)]
        for s in socks:
            self.addCleanup(s.close)
        # Messages go to the clients the relay knows: wait until it has accepted all of them.
        wait_stderr(self, srv, "joined", n)
        return socks, [FrameReader(s) for s in socks]

    def test_relayed_to_the_others_not_echoed_to_the_sender(self):
        srv, addr = self.start()
        (a, b, c), (ra, rb, rc) = self.clients(srv, addr, 3)
        a.sendall(frame(b"hello from a"))
        self.assertEqual(rb.next(), b"hello from a")
        self.assertEqual(rc.next(), b"hello from a")
        b.sendall(frame(b"") + frame(b"from b"))  # an empty message is a message too
        # a's first frame is b's: its own message did not come back to it.
        self.assertEqual(ra.next(), b"")
        self.assertEqual(ra.next(), b"from b")
        self.assertEqual(rc.next(), b"")
        self.assertEqual(rc.next(), b"from b")
        c.sendall(frame(b"from c"))
        self.assertEqual(ra.next(), b"from c")
        self.assertEqual(rb.next(), b"from c")
        self.assertEqual(srv.stop(), 0)

    def test_frames_split_and_stuck_together(self):
        srv, addr = self.start()
        (a, b), (ra, rb) = self.clients(srv, addr, 2)
        a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        big = bytes(range(256)) * 200  # 51200 bytes, under the relay's 64 KiB limit
        wire = frame(b"first") + frame(big) + frame(b"third")
        # Cut inside the first length prefix, inside the first payload, inside the big one:
        # each piece reaches the relay on its own (the pause), so it sees every cut.
        cuts = [0, 2, 7, 100, 5000, len(wire) - 3, len(wire)]
        for lo, hi in zip(cuts, cuts[1:]):
            a.sendall(wire[lo:hi])
            time.sleep(0.05)
        self.assertEqual(rb.next(), b"first")
        self.assertEqual(rb.next(), big)
        self.assertEqual(rb.next(), b"third")
        # Two whole frames in one write come out as two messages.
        a.sendall(frame(b"x") + frame(b"y"))
        self.assertEqual([rb.next(), rb.next()], [b"x", b"y"])
        self.assertEqual(srv.stop(), 0)

    def test_oversized_message_drops_its_sender(self):
        srv, addr = self.start()
        (a, b), (ra, rb) = self.clients(srv, addr, 2)
        a.sendall(struct.pack(">I", 64 * 1024 + 1))
        self.assertIn("too long", "\n".join(wait_stderr(self, srv, "dropped")))
        self.assertEqual(a.recv(1), b"")
        _, (r2,) = self.clients(srv, addr, 1)  # the relay carries on
        b.sendall(frame(b"still relaying"))
        self.assertEqual(r2.next(), b"still relaying")

    def test_client_that_does_not_read_is_dropped(self):
        srv, addr = self.start(["128"])  # 128 KiB queue per client
        (a, b, c), (ra, rb, rc) = self.clients(srv, addr, 3)
        # c never reads. a sends; b reads everything. Kernel buffers absorb a few MiB for c,
        # then its queue fills and the relay drops it. Bounded: at most 64 MiB sent.
        msg = frame(b"m" * 60000)
        a.setblocking(False)
        b.setblocking(False)
        errfd = srv.proc.stderr.fileno()
        sent = received = 0
        stderr = b""
        out = b""
        while b"dropped" not in stderr:
            self.assertLess(sent, 64 << 20, "c was never dropped; stderr %r" % stderr)
            r, w, _ = select.select([b, errfd], [a], [], 10)
            self.assertTrue(r or w, "relay stalled")
            if errfd in r:
                stderr += os.read(errfd, 4096)
            if b in r:
                received += len(b.recv(1 << 20))
            if a in w:
                if not out:
                    out = msg
                try:
                    n = a.send(out)
                    sent += n
                    out = out[n:]
                except BlockingIOError:
                    pass
        self.assertIn(b"too far behind", stderr)
        self.assertNotIn(b"dropped 127.0.0.1:%d" % a.getsockname()[1], stderr)
        self.assertNotIn(b"dropped 127.0.0.1:%d" % b.getsockname()[1], stderr)
        self.assertIn(b"dropped 127.0.0.1:%d" % c.getsockname()[1], stderr)
        # a and b go on: finish a's last frame, then a marker b must get, after all of a's.
        a.setblocking(True)
        a.sendall(out + frame(b"after the drop"))
        b.setblocking(True)
        b.settimeout(10)
        tail = b""
        while not tail.endswith(frame(b"after the drop")):
            chunk = b.recv(1 << 20)
            self.assertTrue(chunk, "b was closed")
            tail = (tail + chunk)[-100:]
        # c gets what was in flight, then the end of the stream.
        c.settimeout(10)
        while c.recv(1 << 20):
            pass
        self.assertEqual(srv.stop(), 0)


class LossyUdpServer:
    """A UDP server on loopback that drops the first `drop` datagrams and answers the next ones
    with b"pong:" + the datagram; .arrivals holds (monotonic time, datagram) for each."""

    def __init__(self, test, drop):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        test.addCleanup(self.sock.close)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.drop = drop
        self.arrivals = []
        self.done = threading.Event()
        thread = threading.Thread(target=self.serve, daemon=True)
        thread.start()
        test.addCleanup(thread.join, 10)
        test.addCleanup(self.done.set)

    def serve(self):
        while not self.done.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            data, peer = self.sock.recvfrom(65536)
            self.arrivals.append((time.monotonic(), data))
            if len(self.arrivals) > self.drop:
                self.sock.sendto(b"pong:" + data, peer)


class UdpRetryExample(unittest.TestCase):
    """examples/udp_retry.c: retries with exponential back-off (200, 400, 800 ms; 3 tries)."""

    def run_client(self, port, *extra):
        start = time.monotonic()
        r = subprocess.run([example(self, "udp_retry"), "127.0.0.1:%d" % port, "hello"] +
                           list(extra), capture_output=True, timeout=20)
        return r, time.monotonic() - start

    def test_answered_on_the_third_try(self):
        srv = LossyUdpServer(self, drop=2)
        r, _ = self.run_client(srv.port)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"pong:hello\n")
        self.assertEqual([d for _, d in srv.arrivals], [b"hello"] * 3)
        gaps = [b[0] - a[0] for a, b in zip(srv.arrivals, srv.arrivals[1:])]
        # The back-off doubles: about 200 ms, then about 400 ms (generous upper bounds for a
        # loaded machine; the lower ones are what a missing back-off would break).
        self.assertGreater(gaps[0], 0.18)
        self.assertLess(gaps[0], 1.0)
        self.assertGreater(gaps[1], 0.38)
        self.assertGreater(gaps[1], gaps[0] * 1.5)
        self.assertIn(b"try 3 of 3", r.stderr)

    def test_answered_at_once(self):
        srv = LossyUdpServer(self, drop=0)
        r, elapsed = self.run_client(srv.port)
        self.assertEqual((r.returncode, r.stdout), (0, b"pong:hello\n"))
        self.assertEqual(len(srv.arrivals), 1)
        self.assertLess(elapsed, 5)

    def test_gives_up_when_nobody_answers(self):
        silent = LossyUdpServer(self, drop=1000)  # receives, never answers
        r, elapsed = self.run_client(silent.port)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, b"")
        self.assertIn(b"no reply after 3 tries", r.stderr)
        self.assertEqual(len(silent.arrivals), 3)
        self.assertGreater(elapsed, 1.3)  # 200 + 400 + 800 ms
        self.assertLess(elapsed, 5)

    def test_gives_up_when_nothing_listens(self):
        # A port nobody listens on: each try brings back an ICMP "port unreachable".
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        r, elapsed = self.run_client(port)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"no reply after 3 tries", r.stderr)
        self.assertGreater(elapsed, 1.3)
        self.assertLess(elapsed, 5)

    def test_tries_and_first_wait_are_arguments(self):
        srv = LossyUdpServer(self, drop=1000)
        r, elapsed = self.run_client(srv.port, "2", "50")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(srv.arrivals), 2)
        self.assertLess(elapsed, 5)


class ParseRequestExample(unittest.TestCase):
    """examples/parse_request.c: a request head fed one byte at a time (prev_len contract)."""

    def parse(self, request):
        r = subprocess.run([example(self, "parse_request")], input=request, capture_output=True,
                           timeout=10)
        return r.returncode, r.stdout.decode()

    def test_valid_request(self):
        rc, out = self.parse(b"GET /docs/a%20b?x=1&y=%41 HTTP/1.1\r\n"
                             b"Host: example.test\r\nAccept:  text/html \r\n"
                             b"X-Empty:\r\n\r\n")
        self.assertEqual(rc, 0, out)
        lines = out.splitlines()
        for want in ["method: GET", "target: /docs/a%20b?x=1&y=%41", "path: /docs/a%20b",
                     "decoded path: /docs/a b", "query: x=1&y=%41", "version: HTTP/1.1",
                     "field: Host: example.test", "field: Accept: text/html", "field: X-Empty: ",
                     "host: example.test", "content-length: -1", "keep-alive: yes"]:
            self.assertIn(want, lines)
        self.assertEqual([l for l in lines if l.startswith("field:")],
                         ["field: Host: example.test", "field: Accept: text/html",
                          "field: X-Empty: "])

    def test_body_after_the_head_is_left_unread(self):
        head = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
        rc, out = self.parse(head + b"hello")
        self.assertEqual(rc, 0, out)
        self.assertIn("query: (none)", out.splitlines())
        self.assertIn("content-length: 5", out.splitlines())
        self.assertIn("head: %d bytes" % len(head), out.splitlines())

    def test_request_cut_in_the_middle_is_incomplete(self):
        whole = b"GET /index.html HTTP/1.1\r\nHost: h\r\n\r\n"
        for cut in (1, 10, len(whole) - 2, len(whole) - 1):
            with self.subTest(cut=cut):
                rc, out = self.parse(whole[:cut])
                self.assertEqual(rc, 1)
                self.assertTrue(out.startswith("incomplete"), out)

    def test_smuggling_attempt_is_refused_with_400(self):
        # Content-Length and Transfer-Encoding together: two proxies could disagree on where
        # the body ends, so a server must refuse it (RFC 9112 section 6.1).
        rc, out = self.parse(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assertEqual((rc, out), (1, "status 400 Bad Request\n"))

    def test_other_refusals_carry_their_status(self):
        for request, status in [
                (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", "505"),
                (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n", "400"),
                (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n", "414")]:
            with self.subTest(status=status):
                rc, out = self.parse(request)
                self.assertEqual(rc, 1)
                self.assertTrue(out.startswith("status " + status), out)


class HttpLaterExample(unittest.TestCase):
    """examples/http_later.c: a route answering LATER from a timer."""

    def setUp(self):
        self.srv = harness.start(self, ["127.0.0.1:0"], program=example(self, "http_later"))
        self.host, self.port = self.srv.host_port()

    def send(self, path):
        s = connect(self.host, self.port)
        self.addCleanup(s.close)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        return s

    def response(self, s):
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        resps, _ = H.parse_responses(out, ["GET"])
        self.assertEqual(len(resps), 1, out)
        return resps[0]

    def test_answered_after_the_delay(self):
        start = time.monotonic()
        r = self.response(self.send("/api/later?ms=300"))
        self.assertGreater(time.monotonic() - start, 0.28)
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body), {"waited_ms": 300})

    def test_a_waiting_request_does_not_hold_up_others(self):
        slow = self.send("/api/later?ms=1500")
        fast = self.send("/api/later?ms=50")
        r, _, _ = select.select([slow, fast], [], [], 10)
        self.assertEqual(r, [fast])
        self.assertEqual(self.response(fast).status, 200)
        self.assertEqual(json.loads(self.response(slow).body), {"waited_ms": 1500})

    def test_bad_argument_and_other_paths(self):
        self.assertEqual(self.response(self.send("/api/later?ms=x")).status, 400)
        self.assertEqual(self.response(self.send("/api/later")).status, 400)
        self.assertEqual(self.response(self.send("/elsewhere")).status, 404)

    def test_client_gone_before_the_answer(self):
        self.send("/api/later?ms=100").close()
        time.sleep(0.3)  # the timer answers an exchange whose client has left
        self.assertEqual(self.response(self.send("/api/later?ms=0")).status, 200)
        self.assertEqual(self.srv.stop(), 0)  # alive until now, and clean (ASan builds)

    def test_sigterm_answers_the_waiting_requests(self):
        waiting = self.send("/api/later?ms=10000")
        time.sleep(0.2)  # the request has reached its handler
        start = time.monotonic()
        self.assertEqual(self.srv.stop(), 0)
        self.assertLess(time.monotonic() - start, 5)
        r = self.response(waiting)
        self.assertEqual(r.status, 503)


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


class HttpUploadExample(unittest.TestCase):
    """examples/http_upload.c: a body streamed to its route piece by piece (HTTP/1.1 and h2c),
    with a limit, pauses, and clients that leave."""

    def setUp(self):
        self.srv = harness.start(self, ["127.0.0.1:0"], program=example(self, "http_upload"))
        self.host, self.port = self.srv.host_port()
        self.data = bytes((i * 2654435761 >> 11 ^ i >> 8) & 0xFF for i in range(3 * 1024 * 1024))

    def upload(self, path, body, chunked):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        self.addCleanup(conn.close)
        if chunked:
            pieces = (body[i:i + 50000] for i in range(0, len(body), 50000))
            conn.request("POST", path, body=pieces, encode_chunked=True)
        else:
            conn.request("PUT", path, body=body)
        r = conn.getresponse()
        return r.status, r.read()

    def test_chunked_and_length_bodies_are_hashed(self):
        for chunked in (True, False):
            with self.subTest(chunked=chunked):
                st, body = self.upload("/upload", self.data, chunked)
                self.assertEqual(st, 200, body)
                self.assertEqual(json.loads(body), {"bytes": len(self.data),
                                                    "fnv1a64": fnv1a64(self.data)})

    def test_paused_after_every_piece(self):
        st, body = self.upload("/upload?pause_ms=1", self.data[:300000], True)
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["fnv1a64"], fnv1a64(self.data[:300000]))

    def test_over_the_limit(self):
        # A Content-Length above max: 413 at once, no 100 Continue, no body read.
        out, closed = H.raw_ex(self.host, self.port,
                               b"PUT /upload?max=1000 HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Length: 1001\r\nExpect: 100-continue\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out)
        self.assertTrue(closed)
        # Chunked past max: cut with 413 mid-body.
        st, _ = self.upload("/upload?max=100000", self.data[:400000], True)
        self.assertEqual(st, 413)
        self.assertEqual(self.upload("/upload?max=x", b"", False)[0], 400)

    def test_client_gone_mid_body(self):
        for pause in (0, 50):
            s = connect(self.host, self.port)
            s.sendall(b"PUT /upload?pause_ms=%d HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 10000000\r\n\r\n" % pause + self.data[:200000])
            s.close()
        time.sleep(0.3)  # the server notices (the paused one when its pause ends)
        st, body = self.upload("/upload", b"after", False)
        self.assertEqual(st, 200)
        self.assertEqual(self.srv.stop(), 0)  # alive, and clean (ASan builds)

    @NEEDS_H2
    def test_h2_upload_and_a_paused_stream_window(self):
        c = H2Client(self, (self.host, self.port))
        deadline = time.monotonic() + 60
        sid = c.request("PUT", "/upload", end_stream=False)
        c.send_body(sid, self.data[:1024 * 1024], deadline)
        self.assertTrue(c.pump(lambda: sid in c.ended, deadline))
        self.assertEqual(c.status[sid], 200)
        self.assertEqual(json.loads(bytes(c.body[sid])),
                         {"bytes": 1024 * 1024, "fnv1a64": fnv1a64(self.data[:1024 * 1024])})
        # A handler that pauses for a long time after each piece: its stream's window is not
        # given back meanwhile, so the client is held to about the initial window (256 KiB).
        slow = c.request("PUT", "/upload?pause_ms=5000", end_stream=False)
        sent = 0
        while True:
            room = min(c.conn.local_flow_control_window(slow), c.conn.max_outbound_frame_size)
            if room <= 0:
                if not c.pump(lambda: c.conn.local_flow_control_window(slow) > 0,
                              time.monotonic() + 1.0):
                    break  # no more window came: held back
                continue
            c.conn.send_data(slow, self.data[sent:sent + room])
            sent += room
            c.flush()
            self.assertLess(sent, 1024 * 1024, "the window kept opening while paused")
        self.assertLessEqual(sent, 256 * 1024 + 32 * 1024)
        # Leaving: the stream reset ends the upload; the connection serves on.
        c.conn.reset_stream(slow)
        c.flush()
        again = c.request("PUT", "/upload", end_stream=False)
        c.send_body(again, b"x" * 1000, deadline)
        self.assertTrue(c.pump(lambda: again in c.ended, deadline))
        self.assertEqual(json.loads(bytes(c.body[again]))["bytes"], 1000)
        self.assertEqual(self.srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
