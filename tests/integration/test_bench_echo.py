"""`netkit bench echo` against `netkit echo serve`: every backend, every protocol, JSON output,
the figures' sanity, and failure (exit 1) against a closed port, a server that closes, and a
server that echoes wrong bytes."""
import json
import os
import re
import signal
import socket
import tempfile
import threading
import unittest

import harness

TEXT_RE = {
    "messages": re.compile(r"^messages:\s+(\d+) \(([\d.]+) messages/s\)$", re.M),
    "mbs": re.compile(r"^throughput: ([\d.]+) MB/s", re.M),
    "lat": re.compile(r"^latency us: min ([\d.]+)  p50 ([\d.]+)  p90 ([\d.]+)  p99 ([\d.]+)  "
                      r"max ([\d.]+)$", re.M),
}


def closed_port():
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchEcho(unittest.TestCase):

    def echo_server(self, *args):
        server = harness.start(self, ["echo", "serve"] + list(args))
        self.addCleanup(server.stop, signal.SIGTERM)
        return server

    def target(self, server):
        host, port = server.host_port()
        return "%s:%d" % (host, port)

    def bench(self, addr, *args, timeout=30):
        return harness.run(["bench", "echo", addr] + list(args), timeout=timeout)

    def check_text(self, out, conns, size):
        m = TEXT_RE["messages"].search(out)
        self.assertIsNotNone(m, out)
        count, rate = int(m.group(1)), float(m.group(2))
        self.assertGreater(count, 0)
        self.assertGreater(rate, 0)
        mbs = float(TEXT_RE["mbs"].search(out).group(1))
        self.assertGreater(mbs, 0)
        # MB/s is messages/s times the size, up to the printed rounding.
        self.assertAlmostEqual(mbs, rate * size / 1e6, delta=0.002 + mbs * 0.001)
        lat = [float(x) for x in TEXT_RE["lat"].search(out).groups()]
        mn, p50, p90, p99, mx = lat
        self.assertGreater(mn, 0)
        self.assertTrue(mn <= p50 <= p90 <= p99 <= mx, lat)
        self.assertIn("%d connections, %d-byte messages" % (conns, size), out)
        return count

    def check_json(self, out, proto, conns, size):
        obj = json.loads(out)  # exactly one JSON object, nothing else
        self.assertEqual(obj["proto"], proto)
        self.assertEqual(obj["conns"], conns)
        self.assertEqual(obj["size"], size)
        self.assertGreater(obj["messages"], 0)
        self.assertGreater(obj["messages_per_s"], 0)
        self.assertGreater(obj["mb_per_s"], 0)
        lat = obj["latency_us"]
        self.assertTrue(0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"],
                        lat)
        self.assertGreater(obj["duration_s"], 0.9)
        self.assertLess(obj["duration_s"], 3)
        # messages/s agrees with messages and duration
        self.assertAlmostEqual(obj["messages_per_s"], obj["messages"] / obj["duration_s"],
                               delta=obj["messages_per_s"] * 0.01 + 1)
        return obj

    def test_each_backend_tcp(self):
        for backend in ("epoll", "uring", "poll", "select"):
            with self.subTest(backend=backend):
                harness.skip_if_backend_refused(self, backend)
                server = self.echo_server("127.0.0.1:0", "--backend", backend)
                r = self.bench(self.target(server), "--conns", "8", "--duration", "1",
                               "--backend", backend)
                out = r.stdout.decode()
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("on %s" % backend, out)
                self.check_text(out, 8, 64)
                r = self.bench(self.target(server), "--conns", "8", "--duration", "1",
                               "--backend", backend, "--json", "--size", "1000")
                self.assertEqual(r.returncode, 0, r.stderr)
                obj = self.check_json(r.stdout.decode(), "tcp", 8, 1000)
                self.assertEqual(obj["backend"], backend)
                self.assertIsNone(server.proc.poll(), "echo server died")

    def test_udp(self):
        server = self.echo_server("127.0.0.1:0", "--proto", "udp")
        r = self.bench(self.target(server), "--proto", "udp", "--conns", "8", "--duration", "1",
                       "--json", "--size", "512", "--pipeline", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        obj = self.check_json(r.stdout.decode(), "udp", 8, 512)
        self.assertEqual(obj["pipeline"], 4)
        self.assertIn("retries", obj)
        r = self.bench(self.target(server), "--proto", "udp", "--conns", "8", "--duration", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_text(r.stdout.decode(), 8, 64)

    def test_unix(self):
        tmp = tempfile.mkdtemp(prefix="nk-bench-")
        self.addCleanup(os.rmdir, tmp)
        path = os.path.join(tmp, "echo.sock")
        server = self.echo_server("unix:" + path)
        for addr, extra in (("unix:" + path, []), (path, ["--proto", "unix"])):
            r = self.bench(addr, "--conns", "8", "--duration", "1", "--json", *extra)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.check_json(r.stdout.decode(), "unix", 8, 64)
        server.stop()

    def test_pipeline_and_big_messages(self):
        server = self.echo_server("127.0.0.1:0")
        r = self.bench(self.target(server), "--conns", "4", "--duration", "1", "--size",
                       "200000", "--pipeline", "3", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_json(r.stdout.decode(), "tcp", 4, 200000)

    def test_closed_port(self):
        port = closed_port()
        r = self.bench("127.0.0.1:%d" % port, "--conns", "8", "--duration", "1")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr.decode(), r"^netkit: bench echo: .*refused")
        self.assertEqual(r.stdout, b"")
        r = self.bench("127.0.0.1:%d" % port, "--proto", "udp", "--conns", "2",
                       "--duration", "1")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("netkit: bench echo:", r.stderr.decode())

    def fake_server(self, behaviour):
        """A TCP server thread: 'close' closes each connection after the first read,
        'corrupt' echoes with one byte flipped."""
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        lsock.settimeout(10)
        self.addCleanup(lsock.close)
        stop = threading.Event()

        def serve_one(conn):
            with conn:
                conn.settimeout(10)
                try:
                    data = conn.recv(65536)
                    if behaviour == "corrupt" and data:
                        data = bytes([data[0] ^ 1]) + data[1:]
                        conn.sendall(data)
                        conn.recv(65536)
                except OSError:
                    pass

        def loop():
            while not stop.is_set():
                try:
                    conn, _ = lsock.accept()
                except OSError:
                    return
                threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        self.addCleanup(stop.set)
        return "127.0.0.1:%d" % lsock.getsockname()[1]

    def test_server_closes(self):
        r = self.bench(self.fake_server("close"), "--conns", "2", "--duration", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("closed the connection", r.stderr.decode())

    def test_wrong_bytes(self):
        r = self.bench(self.fake_server("corrupt"), "--conns", "2", "--duration", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("wrong bytes", r.stderr.decode())

    def test_usage(self):
        for args in (["--conns", "0"], ["--proto", "sctp"], ["--size", "70000", "--proto", "udp"],
                     ["--backend", "nope"], ["--duration", "-1"]):
            r = harness.run(["bench", "echo", "127.0.0.1:9"] + args)
            self.assertEqual(r.returncode, 2, args)
        r = harness.run(["bench", "echo", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: netkit bench echo", r.stdout.decode())
        r = harness.run(["bench", "echo"])
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
