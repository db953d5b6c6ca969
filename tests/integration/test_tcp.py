"""netkit tcp listen|connect|wait: netcat-style streams on the event loop.

Each test runs the real binary against a python peer (or socat/ncat) on loopback, port 0, and
checks the exact bytes (SHA-256 for the big transfers), the exit code and the stderr lines."""
import hashlib
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness

MIB = 1 << 20


def popen(test, args, stdin=subprocess.PIPE, stdout=subprocess.PIPE):
    """Start netkit ARGS with pipes; killed at the end of the test whatever happens."""
    proc = subprocess.Popen([harness.NETKIT] + list(args), stdin=stdin, stdout=stdout,
                            stderr=subprocess.PIPE)
    test.addCleanup(harness._reap, proc)
    return proc


def wait_listening(proc, timeout=10):
    """Read stderr up to the readiness line; returns (url, lines before it)."""
    fd = proc.stderr.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(rb"listening on (\S+)\n", buf)
        if m:
            return m.group(1).decode(), buf
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no readiness line; stderr %r" % buf)
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError("exited before ready (%s); stderr %r" % (proc.wait(), buf))
            buf += chunk


def port_of(url):
    return int(url.rsplit(":", 1)[1])


def pump_both(sock, payload, timeout=60):
    """Send payload while receiving until EOF (shutdown after sending). Returns received."""
    sock.setblocking(False)
    view = memoryview(payload)
    sent, got, shut = 0, bytearray(), False
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("sent %d, got %d" % (sent, len(got)))
        if sent == len(payload) and not shut:
            sock.shutdown(socket.SHUT_WR)
            shut = True
        r, w, _ = select.select([sock], [sock] if not shut else [], [], 1)
        if w:
            try:
                sent += sock.send(view[sent:sent + 65536])
            except BlockingIOError:
                pass
        if r:
            try:
                chunk = sock.recv(262144)
            except BlockingIOError:
                continue
            if not chunk:
                if shut:
                    return bytes(got)
                # the peer finished first: go on sending
                while sent < len(payload):
                    select.select([], [sock], [], 1)
                    try:
                        sent += sock.send(view[sent:sent + 65536])
                    except BlockingIOError:
                        pass
                sock.shutdown(socket.SHUT_WR)
                return bytes(got)
            got += chunk


class PyServer:
    """A one-connection python server in a thread: handler(conn) -> result stored."""

    def __init__(self, test, handler, family=socket.AF_INET, host="127.0.0.1"):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        test.addCleanup(self.sock.close)
        self.sock.bind((host, 0))
        self.sock.listen(4)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]
        self.result = None
        self.error = None
        self.peer = None
        self.thread = threading.Thread(target=self._run, args=(handler,), daemon=True)
        self.thread.start()

    def _run(self, handler):
        try:
            conn, self.peer = self.sock.accept()
            with conn:
                self.result = handler(conn)
        except Exception as e:  # reported by join()
            self.error = e

    def join(self, timeout=60):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("python server still running")
        if self.error:
            raise self.error
        return self.result


def frame_encode(kind, msg):
    if kind == "line":
        return msg + b"\n"
    return len(msg).to_bytes(4, "big") + msg


def frame_decode_all(kind, data):
    out = []
    if kind == "line":
        parts = data.split(b"\n")
        assert parts[-1] == b"", "trailing partial line %r" % parts[-1][:40]
        return parts[:-1]
    i = 0
    while i < len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    assert i == len(data)
    return out


def send_split(sock, data, rnd):
    """Send data in random pieces with TCP_NODELAY and tiny pauses, so that the peer sees
    messages cut at arbitrary points and several glued together."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    i = 0
    while i < len(data):
        n = rnd.choice([1, 2, 3, 5, 7, 100, 1000, 4096])
        sock.sendall(data[i:i + n])
        i += n
        if rnd.random() < 0.05:
            time.sleep(0.001)


def recv_all(sock, timeout=30):
    sock.settimeout(timeout)
    got = bytearray()
    while True:
        chunk = sock.recv(rnd_size())
        if not chunk:
            return bytes(got)
        got += chunk


_rs = random.Random(5)


def rnd_size():
    return _rs.choice([1, 3, 17, 512, 65536])


def messages(rnd, count):
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 .,:;!?-"
    return [bytes(rnd.choice(alphabet) for _ in range(rnd.choice([0, 1, 5, 40, 300, 3000])))
            for _ in range(count)]


def run_at_eof(test, listen_args, connect_args, peer_addr, family):
    """End-of-input paths (stdin is /dev/null, the peer closes at once) for listen and connect,
    raw and with each framing: what must come out is nothing, with exit 0 and no sanitizer
    report (these once passed NULL with length 0 to memchr)."""
    for frame in (None, "line", "len32"):
        extra = ["--frame", frame] if frame else []
        with test.subTest(side="listen", frame=frame):
            proc = popen(test, listen_args + extra, stdin=subprocess.DEVNULL)
            url, _ = wait_listening(proc)
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect(peer_addr(url))
            out, err = proc.communicate(timeout=10)
            test.assertEqual(proc.returncode, 0, err)
            test.assertEqual(out, b"")
        with test.subTest(side="connect", frame=frame):
            srv = socket.socket(family, socket.SOCK_STREAM)
            try:
                addr = connect_args(srv)
                srv.listen(1)
                proc = popen(test, addr[:2] + extra + addr[2:], stdin=subprocess.DEVNULL)
                srv.settimeout(10)
                conn, _ = srv.accept()
                conn.close()
                out, err = proc.communicate(timeout=10)
            finally:
                srv.close()
            test.assertEqual(proc.returncode, 0, err)
            test.assertEqual(out, b"")


class TestTcp(unittest.TestCase):
    def test_connect_1mib_each_way(self):
        up = random.Random(1).randbytes(MIB)
        down = random.Random(2).randbytes(MIB)
        server = PyServer(self, lambda c: hashlib.sha256(pump_both(c, down)).hexdigest())
        with tempfile.TemporaryFile() as f:
            f.write(up)
            f.seek(0)
            proc = popen(self, ["tcp", "connect", "127.0.0.1:%d" % server.port], stdin=f)
            out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(server.join(), hashlib.sha256(up).hexdigest())
        self.assertEqual(hashlib.sha256(out).hexdigest(), hashlib.sha256(down).hexdigest())

    def test_listen_1mib_each_way(self):
        up = random.Random(3).randbytes(MIB)
        down = random.Random(4).randbytes(MIB)
        with tempfile.TemporaryFile() as f:
            f.write(down)
            f.seek(0)
            proc = popen(self, ["tcp", "listen", "127.0.0.1:0"], stdin=f)
            url, _ = wait_listening(proc)
            self.assertRegex(url, r"^tcp://127\.0\.0\.1:\d+$")
            got = {}

            def reader():
                got["out"] = proc.stdout.read()
            t = threading.Thread(target=reader)
            t.start()
            with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as s:
                received = pump_both(s, up)
            t.join(60)
            self.assertEqual(proc.wait(30), 0, proc.stderr.read())
        self.assertEqual(hashlib.sha256(received).hexdigest(), hashlib.sha256(down).hexdigest())
        self.assertEqual(hashlib.sha256(got["out"]).hexdigest(), hashlib.sha256(up).hexdigest())

    def test_listen_half_close(self):
        """The client sends, shuts down its write side, and still gets the reply that netkit
        reads from stdin afterwards."""
        proc = popen(self, ["tcp", "listen", "127.0.0.1:0"])
        url, _ = wait_listening(proc)
        with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as s:
            s.sendall(b"question\n")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(proc.stdout.readline(), b"question\n")
            proc.stdin.write(b"answer\n")
            proc.stdin.close()
            self.assertEqual(recv_all(s), b"answer\n")
        self.assertEqual(proc.wait(10), 0)

    def test_connect_half_close(self):
        """stdin's EOF becomes FIN; the server answers after it and netkit prints the answer."""
        def handler(conn):
            got = recv_all(conn)
            conn.sendall(b"got %d bytes\n" % len(got))
            return got
        server = PyServer(self, handler)
        r = harness.run(["tcp", "connect", "127.0.0.1:%d" % server.port], input=b"hello")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(server.join(), b"hello")
        self.assertEqual(r.stdout, b"got 5 bytes\n")

    def test_close_on_eof(self):
        """--close-on-eof: quit once stdin is sent, although the server never closes."""
        done = threading.Event()

        def handler(conn):
            got = recv_all(conn)
            done.wait(10)
            return got
        server = PyServer(self, handler)
        r = harness.run(["tcp", "connect", "--close-on-eof", "127.0.0.1:%d" % server.port],
                        input=b"bye\n", timeout=10)
        done.set()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(server.join(), b"bye\n")

    def test_keep_open_three_clients(self):
        proc = popen(self, ["tcp", "listen", "-k", "127.0.0.1:0"])
        url, _ = wait_listening(proc)
        for i in range(3):
            with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as s:
                proc.stdin.write(b"to %d\n" % i)
                proc.stdin.flush()
                s.settimeout(10)
                self.assertEqual(s.recv(100), b"to %d\n" % i)
                s.sendall(b"from %d\n" % i)
                s.shutdown(socket.SHUT_WR)
                # netkit ends the connection after the client's FIN (-k): EOF here
                self.assertEqual(recv_all(s), b"")
            self.assertEqual(proc.stdout.readline(), b"from %d\n" % i)
        self.assertIsNone(proc.poll())
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0)

    def check_framing(self, kind, listen):
        rnd = random.Random(kind + str(listen))
        to_peer = messages(rnd, 200)
        from_peer = messages(rnd, 200)
        if kind == "len32":
            from_peer.append(b"")  # an empty message is a message too
        stdin = b"".join(m + b"\n" for m in to_peer)

        def peer(conn):
            t = threading.Thread(target=send_split,
                                 args=(conn, b"".join(frame_encode(kind, m) for m in from_peer),
                                       random.Random(9)))
            t.start()
            got = recv_all(conn)
            t.join(30)
            return frame_decode_all(kind, got)

        if listen:
            proc = popen(self, ["tcp", "listen", "--frame", kind, "127.0.0.1:0"])
            url, _ = wait_listening(proc)
            out = {}
            t = threading.Thread(target=lambda: out.update(o=proc.stdout.read()))
            t.start()
            with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as s:
                proc.stdin.write(stdin)
                proc.stdin.close()
                got = peer(s)
            t.join(30)
            self.assertEqual(proc.wait(10), 0, proc.stderr.read())
            stdout = out["o"]
        else:
            server = PyServer(self, peer)
            r = harness.run(["tcp", "connect", "--frame", kind, "127.0.0.1:%d" % server.port],
                            input=stdin)
            self.assertEqual(r.returncode, 0, r.stderr)
            got = server.join()
            stdout = r.stdout
        self.assertEqual(got, to_peer)
        self.assertEqual(stdout, b"".join(m + b"\n" for m in from_peer))

    def test_end_of_input_paths(self):
        def bind(srv):
            srv.bind(("127.0.0.1", 0))
            return ["tcp", "connect", "127.0.0.1:%d" % srv.getsockname()[1]]
        run_at_eof(self, ["tcp", "listen", "127.0.0.1:0"], bind,
                   lambda url: ("127.0.0.1", port_of(url)), socket.AF_INET)

    def test_frame_line_connect(self):
        self.check_framing("line", False)

    def test_frame_line_listen(self):
        self.check_framing("line", True)

    def test_frame_len32_connect(self):
        self.check_framing("len32", False)

    def test_frame_len32_listen(self):
        self.check_framing("len32", True)

    def test_crlf_and_hexdump(self):
        server = PyServer(self, recv_all)
        r = harness.run(["tcp", "connect", "--crlf", "-x", "127.0.0.1:%d" % server.port],
                        input=b"a\nb\r\nc")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(server.join(), b"a\r\nb\r\nc")
        self.assertIn(b"> 00000000  61 0d 0a 62 0d 0a 63", r.stderr)
        self.assertIn(b"|a..b..c|", r.stderr)

    def test_verbose_addresses_and_sockopt(self):
        server = PyServer(self, recv_all)
        r = harness.run(["tcp", "connect", "-v", "--sockopt", "SO_RCVBUF=65536",
                         "--sockopt", "TCP_NODELAY=1", "127.0.0.1:%d" % server.port],
                        input=b"12345")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(server.join(), b"12345")
        err = r.stderr.decode()
        local = "127.0.0.1:%d" % server.peer[1]
        self.assertIn("connected: local %s, peer 127.0.0.1:%d, fd " % (local, server.port), err)
        # Linux doubles SO_RCVBUF for its bookkeeping (socket(7)).
        self.assertRegex(err, r"socket options: SO_RCVBUF=131072 SO_SNDBUF=\d+ TCP_NODELAY=1 "
                              r"SO_KEEPALIVE=0 IP_TTL=\d+")
        self.assertIn("closed: peer 127.0.0.1:%d, 0 bytes in, 5 bytes out" % server.port, err)

    def test_listen_sockopt_applied(self):
        proc = popen(self, ["tcp", "listen", "-v", "--sockopt", "SO_RCVBUF=32768",
                            "127.0.0.1:0"])
        url, _ = wait_listening(proc)
        with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as s:
            proc.stdin.close()
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s), b"")
            local = s.getsockname()
        self.assertEqual(proc.wait(10), 0)
        err = proc.stderr.read().decode()
        self.assertIn("accepted: local %s, peer 127.0.0.1:%d" % (url[6:], local[1]), err)
        self.assertIn("SO_RCVBUF=65536", err)

    def test_bad_sockopt_name(self):
        r = harness.run(["tcp", "connect", "--sockopt", "SO_NOPE=1", "127.0.0.1:9"])
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"netkit: tcp connect: unknown socket option 'SO_NOPE' (known: SO_RCVBUF",
                      r.stderr)
        r = harness.run(["tcp", "connect", "--sockopt", "SO_RCVBUF=lots", "127.0.0.1:9"])
        self.assertEqual(r.returncode, 2, r.stderr)

    def closed_port(self):
        """A port that refuses connections for the whole test: bound, never listening."""
        s = socket.socket()
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        return s, s.getsockname()[1]

    def test_connection_refused(self):
        _, port = self.closed_port()
        r = harness.run(["tcp", "connect", "127.0.0.1:%d" % port])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, b"netkit: tcp connect: 127.0.0.1:%d: Connection refused\n"
                         % port)
        self.assertEqual(r.stdout, b"")

    def test_idle_timeout(self):
        release = threading.Event()
        server = PyServer(self, lambda c: release.wait(10))
        proc = popen(self, ["tcp", "connect", "-w", "0.5", "127.0.0.1:%d" % server.port])
        start = time.monotonic()
        code = proc.wait(10)
        elapsed = time.monotonic() - start
        release.set()
        self.assertEqual(code, 1)
        self.assertIn(b"timed out", proc.stderr.read())
        self.assertGreaterEqual(elapsed, 0.45)
        self.assertLess(elapsed, 5)

    def test_ipv6(self):
        try:
            server = PyServer(self, lambda c: pump_both(c, b"six\n"), socket.AF_INET6, "::1")
        except OSError:
            self.skipTest("no IPv6 loopback (::1) here")
        r = harness.run(["tcp", "connect", "-v", "[::1]:%d" % server.port], input=b"hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"six\n")
        self.assertEqual(server.join(), b"hi")
        self.assertIn(b"peer [::1]:%d" % server.port, r.stderr)
        self.assertIn(b"IPV6_UNICAST_HOPS=", r.stderr)

    def test_wait_succeeds_when_listener_appears(self):
        s, port = self.closed_port()
        timer = threading.Timer(0.5, lambda: s.listen(1))
        timer.start()
        self.addCleanup(timer.cancel)
        start = time.monotonic()
        r = harness.run(["tcp", "wait", "127.0.0.1:%d" % port, "--timeout", "10"])
        elapsed = time.monotonic() - start
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((r.stdout, r.stderr), (b"", b""))
        self.assertGreaterEqual(elapsed, 0.45)
        self.assertLess(elapsed, 5)

    def test_wait_timeout(self):
        _, port = self.closed_port()
        start = time.monotonic()
        r = harness.run(["tcp", "wait", "127.0.0.1:%d" % port, "--timeout", "1"])
        elapsed = time.monotonic() - start
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"timed out", r.stderr)
        self.assertGreaterEqual(elapsed, 0.95)
        self.assertLess(elapsed, 5)

    def test_interop_socat_listens(self):
        if not shutil.which("socat"):
            self.skipTest("socat is not installed (scripts/install-deps)")
        sock = subprocess.Popen(["socat", "-d", "-d", "TCP-LISTEN:0,bind=127.0.0.1",
                                 "SYSTEM:'cat; echo socat-done'"], stderr=subprocess.PIPE)
        self.addCleanup(harness._reap, sock)
        buf = b""
        while b"listening on" not in buf:
            chunk = sock.stderr.readline()
            self.assertTrue(chunk, "socat ended: %r" % buf)
            buf += chunk
        port = int(re.search(rb"listening on .*:(\d+)\s*$", buf).group(1))
        r = harness.run(["tcp", "connect", "127.0.0.1:%d" % port], input=b"via socat\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"via socat\nsocat-done\n")

    def test_interop_ncat_connects(self):
        if not shutil.which("ncat"):
            self.skipTest("ncat is not installed (scripts/install-deps)")
        proc = popen(self, ["tcp", "listen", "127.0.0.1:0"])
        url, _ = wait_listening(proc)
        payload = random.Random(8).randbytes(200000)
        proc.stdin.write(b"from netkit\n")
        proc.stdin.close()
        r = subprocess.run(["ncat", "127.0.0.1", str(port_of(url))], input=payload,
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"from netkit\n")
        self.assertEqual(proc.stdout.read(), payload)
        self.assertEqual(proc.wait(10), 0)

    def test_usage(self):
        r = harness.run(["tcp", "connect"])
        self.assertEqual(r.returncode, 2)
        r = harness.run(["tcp", "connect", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"usage: netkit tcp connect", r.stdout)
        r = harness.run(["tcp", "connect", "--frame", "xml", "127.0.0.1:9"])
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
