"""The programs in examples/, built against the public headers and the shared library, run
against real clients: what an outside C programmer would write works as shown."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import harness
import httptest as H

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
        for backend in ("select", "poll", "epoll"):
            with self.subTest(backend=backend):
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


if __name__ == "__main__":
    unittest.main()
