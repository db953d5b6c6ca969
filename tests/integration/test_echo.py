"""`netkit echo serve` on every backend: TCP, UDP, Unix stream, IPv6, backpressure, and the
select backend past FD_SETSIZE."""
import os
import random
import select
import signal
import socket
import tempfile
import threading
import time
import unittest

import harness

BACKENDS = ("epoll", "uring", "poll", "select")
CLIENTS = 50
MANY = 1100  # connections: past select's FD_SETSIZE (1024)


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def echo_once(sock, msg, timeout=10):
    """Send msg and read it back: 'echo' when it came back intact, 'closed' when the server
    ended the connection (EOF or reset) instead; raises on a timeout or wrong bytes."""
    sock.settimeout(timeout)
    try:
        sock.sendall(msg)
        got = b""
        while len(got) < len(msg):
            chunk = sock.recv(len(msg) - len(got))
            if not chunk:
                return "closed"
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    if got != msg:
        raise AssertionError("echoed %r, expected %r" % (got, msg))
    return "echo"


class EchoBackend:
    """The same tests for each backend; subclasses set `backend`."""
    backend = None

    def serve(self, *args, **kw):
        harness.skip_if_backend_refused(self, self.backend)
        return harness.start(self, ["echo", "serve"] + list(args) + ["--backend", self.backend],
                             **kw)

    def assert_clean_exit(self, server):
        code = server.stop(signal.SIGTERM)
        self.assertEqual(code, 0, "exit code after SIGTERM; stderr: %r" % server.read_stderr())

    def run_clients(self, connect, count, rounds=3, max_size=65536):
        """count threads, each connecting and echoing `rounds` random payloads."""
        errors = []

        def client(seed):
            rnd = random.Random(seed)
            try:
                with connect() as s:
                    for _ in range(rounds):
                        payload = rnd.randbytes(rnd.randint(1, max_size))
                        got = harness.stream_roundtrip(s, payload, timeout=60)
                        if got != payload:
                            errors.append("client %d: %d bytes sent, %d back, equal prefix %s"
                                          % (seed, len(payload), len(got),
                                             got == payload[:len(got)]))
                            return
            except Exception as e:  # reported below with the client's number
                errors.append("client %d: %r" % (seed, e))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads), "clients still running")
        self.assertEqual(errors, [])

    def test_tcp_concurrent_clients(self):
        server = self.serve("127.0.0.1:0")
        self.assertRegex(server.url, r"^tcp://127\.0\.0\.1:\d+$")
        host, port = server.host_port()
        self.assertNotEqual(port, 0)
        self.run_clients(lambda: socket.create_connection((host, port), timeout=10), CLIENTS)
        self.assert_clean_exit(server)

    def test_tcp_half_close_flushes_then_closes(self):
        server = self.serve("127.0.0.1:0")
        payload = random.Random(7).randbytes(300 * 1024)
        with socket.create_connection(server.host_port(), timeout=10) as s:
            s.sendall(payload[:1000])
            s.shutdown(socket.SHUT_WR)  # the server sees EOF with the data still to echo
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            self.assertEqual(got, payload[:1000])
        # A larger body than the high-water mark, sent while reading, then half-closed.
        with socket.create_connection(server.host_port(), timeout=10) as s:
            got = harness.stream_roundtrip(s, payload)
            s.setblocking(True)
            s.settimeout(10)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(s.recv(1), b"", "server did not close after the peer's EOF")
            self.assertEqual(got, payload)
        self.assert_clean_exit(server)

    def test_tcp_backpressure(self):
        """A client that only sends: the server must stop reading (so the client blocks) long
        before it has sent LIMIT bytes, and its memory must not grow with what was sent."""
        server = self.serve("127.0.0.1:0")
        limit = 64 << 20
        block = random.Random(3).randbytes(65536)
        rss_before = rss_kib(server.proc.pid)
        with socket.create_connection(server.host_port(), timeout=10) as s:
            s.setblocking(False)
            sent = 0
            blocked = False
            while sent < limit:
                _, w, _ = select.select([], [s], [], 1.0)
                if not w:
                    blocked = True  # a whole second without room: the server stopped reading
                    break
                try:
                    off = sent % len(block)
                    sent += s.send(block[off:] + block[:off])
                except BlockingIOError:
                    pass
            self.assertTrue(blocked, "sent %d bytes without ever blocking" % sent)
            rss_after = rss_kib(server.proc.pid)
            if rss_before is not None and rss_after is not None:
                self.assertLess(rss_after - rss_before, 32 * 1024,
                                "server grew by %d KiB while %d bytes waited"
                                % (rss_after - rss_before, sent))
            # Everything sent comes back, in order.
            s.shutdown(socket.SHUT_WR)
            received = 0
            deadline = time.monotonic() + 60
            while True:
                self.assertLess(time.monotonic(), deadline, "echo of the backlog timed out")
                r, _, _ = select.select([s], [], [], 10)
                self.assertTrue(r, "no echo for 10 s after %d of %d bytes" % (received, sent))
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                off = received % len(block)
                expect = (block[off:] + block * (len(chunk) // len(block) + 2))[:len(chunk)]
                self.assertEqual(chunk, expect, "wrong bytes at offset %d" % received)
                received += len(chunk)
            self.assertEqual(received, sent)
        self.assert_clean_exit(server)

    def test_udp_datagrams(self):
        server = self.serve("127.0.0.1:0", "--proto", "udp")
        self.assertRegex(server.url, r"^udp://127\.0\.0\.1:\d+$")
        addr = server.host_port()
        rnd = random.Random(11)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            for size in (0, 1, 2, 100, 1400, 1472, 1500, 8192, 32768, 65000, 65507):
                payload = rnd.randbytes(size)
                s.sendto(payload, addr)
                got, frm = s.recvfrom(65536)
                self.assertEqual(len(got), size)
                self.assertEqual(got, payload)
                self.assertEqual(frm, addr)
        # Several senders at once: each gets exactly its own datagrams back.
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(10)]
        try:
            sent = {}
            for i, s in enumerate(socks):
                s.settimeout(10)
                sent[i] = [("%d:%d:" % (i, k)).encode() + rnd.randbytes(rnd.randint(0, 900))
                           for k in range(5)]
                for d in sent[i]:
                    s.sendto(d, addr)
            for i, s in enumerate(socks):
                got = [s.recvfrom(65536)[0] for _ in range(5)]
                self.assertEqual(sorted(got), sorted(sent[i]))
        finally:
            for s in socks:
                s.close()
        self.assert_clean_exit(server)

    def test_unix_stream(self):
        tmp = tempfile.mkdtemp(prefix="nk-echo-")
        self.addCleanup(os.rmdir, tmp)
        for form in ("unix:", ""):
            path = os.path.join(tmp, "echo.sock")
            server = self.serve(form + path, "--proto", "unix")
            self.assertEqual(server.url, "unix:" + path)
            self.assertTrue(os.path.exists(path))

            def connect():
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(path)
                return s

            self.run_clients(connect, 10)
            self.assert_clean_exit(server)
            self.assertFalse(os.path.exists(path), "socket file left behind")

    def test_ipv6(self):
        if not have_ipv6_loopback():
            self.skipTest("no IPv6 loopback (::1) here")
        server = self.serve("[::1]:0")
        self.assertRegex(server.url, r"^tcp://\[::1\]:\d+$")
        _, port = server.host_port()
        self.run_clients(lambda: socket.create_connection(("::1", port), timeout=10), 5)
        self.assert_clean_exit(server)

    def test_sigint_with_open_connections(self):
        server = self.serve("127.0.0.1:0")
        conns = [socket.create_connection(server.host_port(), timeout=10) for _ in range(20)]
        try:
            for i, c in enumerate(conns):
                self.assertEqual(echo_once(c, b"hello %d" % i), "echo")
            code = server.stop(signal.SIGINT)
            self.assertEqual(code, 0, server.read_stderr())
            for c in conns:  # every connection was closed by the server
                self.assertEqual(echo_once(c, b"x"), "closed")
        finally:
            for c in conns:
                c.close()


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class TestEchoEpoll(EchoBackend, unittest.TestCase):
    backend = "epoll"


class TestEchoPoll(EchoBackend, unittest.TestCase):
    backend = "poll"


class TestEchoSelect(EchoBackend, unittest.TestCase):
    backend = "select"


class TestEchoUring(EchoBackend, unittest.TestCase):
    backend = "uring"


class TestManyConnections(unittest.TestCase):
    """MANY connections at once: select cannot watch descriptors past FD_SETSIZE and must close
    those connections cleanly while serving the rest; epoll and uring serve them all."""

    def setUp(self):
        need = MANY + 200
        if not harness.raise_nofile(need):
            import resource
            self.skipTest("RLIMIT_NOFILE hard limit %s is below %d, needed for %d connections"
                          % (resource.getrlimit(resource.RLIMIT_NOFILE)[1], need, MANY))

    def open_many(self, server):
        addr = server.host_port()
        conns = []
        self.addCleanup(lambda: [c.close() for c in conns])
        for _ in range(MANY):
            conns.append(socket.create_connection(addr, timeout=10))
        return conns

    def start(self, backend):
        return harness.start(self, ["echo", "serve", "127.0.0.1:0", "--backend", backend],
                             preexec_fn=harness.nofile_preexec(MANY + 200))

    def test_select_past_fd_setsize(self):
        server = self.start("select")
        conns = self.open_many(server)
        results = [echo_once(c, b"ping %d\n" % i) for i, c in enumerate(conns)]
        served = results.index("closed") if "closed" in results else len(results)
        self.assertEqual(results[served:], ["closed"] * (len(results) - served),
                         "served connections are not the first ones")
        # The server's own descriptors (0-2, the listener, the loop's) come first, so a bit
        # under 1024 connections fit below FD_SETSIZE.
        self.assertGreaterEqual(served, 900)
        self.assertLessEqual(served, 1024 - 4)
        self.assertIsNone(server.proc.poll(), "server exited")
        # The earlier connections are still echoed after the refusals.
        for i in range(served):
            self.assertEqual(echo_once(conns[i], b"again %d\n" % i), "echo", "connection %d" % i)
        # Free descriptors below FD_SETSIZE: new connections are served again (the server
        # notices the closes asynchronously, so a new one may still land high at first).
        for c in conns[1:served]:
            c.close()
        deadline = time.monotonic() + 20
        while True:
            with socket.create_connection(server.host_port(), timeout=10) as c:
                if echo_once(c, b"fresh\n") == "echo":
                    break
            self.assertLess(time.monotonic(), deadline, "no new connection served")
            time.sleep(0.05)
        self.assertEqual(echo_once(conns[0], b"first\n"), "echo")
        self.assertEqual(server.stop(signal.SIGTERM), 0, server.read_stderr())

    def test_epoll_serves_all(self):
        server = self.start("epoll")
        conns = self.open_many(server)
        for i, c in enumerate(conns):
            self.assertEqual(echo_once(c, b"ping %d\n" % i), "echo", "connection %d" % i)
        self.assertEqual(server.stop(signal.SIGTERM), 0, server.read_stderr())

    def test_uring_serves_all(self):
        """More polls than one submission batch holds, each armed on its own connection."""
        harness.skip_if_backend_refused(self, "uring")
        server = self.start("uring")
        conns = self.open_many(server)
        for i, c in enumerate(conns):
            self.assertEqual(echo_once(c, b"ping %d\n" % i), "echo", "connection %d" % i)
        self.assertEqual(server.stop(signal.SIGTERM), 0, server.read_stderr())


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


class TestOutOfDescriptors(unittest.TestCase):
    """With RLIMIT_NOFILE nearly used up, accept fails with EMFILE: the server must neither
    spin nor die, and must take the waiting connections once descriptors are free again."""

    LIMIT = 32

    def test_emfile_pauses_accepting(self):
        import resource
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard != resource.RLIM_INFINITY and hard < self.LIMIT:
            self.skipTest("hard RLIMIT_NOFILE %d is below %d" % (hard, self.LIMIT))

        def preexec():
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.LIMIT, hard))

        server = harness.start(self, ["echo", "serve", "127.0.0.1:0", "--backend", "poll"],
                               preexec_fn=preexec)
        conns = []
        self.addCleanup(lambda: [c.close() for c in conns])
        for _ in range(self.LIMIT + 8):  # more than the server can hold
            conns.append(socket.create_connection(server.host_port(), timeout=10))
        self.assertEqual(echo_once(conns[0], b"first\n"), "echo")
        # The last connection waits in the listen queue: no answer while the server is full.
        conns[-1].sendall(b"queued\n")
        r, _, _ = select.select([conns[-1]], [], [], 0.5)
        self.assertFalse(r, "a connection past the descriptor limit was answered")
        before = cpu_ticks(server.proc.pid)
        time.sleep(1.0)  # measuring CPU use over a second, not waiting for readiness
        used = cpu_ticks(server.proc.pid) - before
        hz = os.sysconf("SC_CLK_TCK")
        self.assertLess(used, hz * 0.3, "server used %d ticks in 1 s while out of fds" % used)
        self.assertIsNone(server.proc.poll())
        # Free descriptors: the queued connections are accepted and echoed.
        for c in conns[:16]:
            c.close()
        conns[-1].settimeout(10)
        self.assertEqual(conns[-1].recv(100), b"queued\n")
        for i, c in enumerate(conns[16:-1]):
            self.assertEqual(echo_once(c, b"later %d\n" % i), "echo")
        self.assertEqual(server.stop(signal.SIGTERM), 0)
        self.assertIn("Too many open files", "\n".join(server.stderr_lines) +
                      server.read_stderr())


if __name__ == "__main__":
    unittest.main()
