"""Stopping `http serve` with responses in flight: the first SIGTERM/SIGINT says how many
connections it drains and for how long, a second one stops at once; Ctrl-C on a terminal
ends the line the terminal left after its "^C"."""
import fcntl
import os
import pty
import select
import signal
import socket
import subprocess
import tempfile
import termios
import time
import unittest

import harness
import httptest as H

DRAIN_RE = (r"netkit: http serve: draining 1 connection \(up to 30 s; SIGTERM again to stop "
            r"now\)")


class Drain(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = tmp.name
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.truncate(64 << 20)  # far more than socket buffers hold: the response stays in flight

    def stalled_download(self, srv):
        """A client that asks for the big file and never reads."""
        host, port = srv.host_port()
        s = harness.connect((host, port), 10)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1024)  # the response has started
        return s

    def wait_stderr(self, srv, pattern, timeout=10):
        seen = ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen += srv.read_stderr(0.2)
            if pattern in seen or __import__("re").search(pattern, seen):
                return seen
        self.fail("no %r on stderr within %ss; saw %r" % (pattern, timeout, seen))

    def check(self, workers, second):
        srv = H.serve(self, self.root, "--access-log", "off", workers=workers)
        self.stalled_download(srv)
        srv.proc.send_signal(signal.SIGTERM)
        self.wait_stderr(srv, DRAIN_RE)
        time.sleep(0.5)
        self.assertIsNone(srv.proc.poll(), "stopped without draining")
        t0 = time.monotonic()
        srv.proc.send_signal(second)
        rc = srv.proc.wait(10)
        self.assertLess(time.monotonic() - t0, 5, "the second signal did not stop it at once")
        self.assertEqual(rc, 0)

    def test_second_sigterm_stops_now(self):
        self.check(1, signal.SIGTERM)

    def test_sigint_after_sigterm_stops_now(self):
        self.check(1, signal.SIGINT)

    def test_supervisor_second_sigterm(self):
        srv = H.serve(self, self.root, "--access-log", "off", workers=2)
        # Two connections, so that whichever worker accepts, one of them drains.
        self.stalled_download(srv)
        self.stalled_download(srv)
        srv.proc.send_signal(signal.SIGTERM)
        self.wait_stderr(srv, r"draining \d connections? \(up to 30 s; SIGTERM again")
        time.sleep(0.5)
        self.assertIsNone(srv.proc.poll(), "stopped without draining")
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(10)
        self.assertLess(time.monotonic() - t0, 5)

    def refused_while_draining(self, workers):
        # While a response is still in flight the server no longer listens: a new connection
        # is refused at once (a balancer then tries another node), not left in a backlog that
        # nobody accepts from, to be reset when the process exits.
        srv = H.serve(self, self.root, "--access-log", "off", workers=workers)
        addr = srv.host_port()
        for _ in range(workers):
            self.stalled_download(srv)
        srv.proc.send_signal(signal.SIGTERM)
        self.wait_stderr(srv, r"draining \d connections? \(up to 30 s")
        refused = False
        deadline = time.monotonic() + 5
        while not refused and time.monotonic() < deadline:
            try:
                socket.create_connection(addr, timeout=2).close()
                time.sleep(0.05)
            except ConnectionRefusedError:
                refused = True
        self.assertIsNone(srv.proc.poll(), "stopped without draining")
        self.assertTrue(refused, "connections still accepted into the backlog while draining")

    def test_refused_while_draining(self):
        self.refused_while_draining(1)

    def test_supervisor_refused_while_draining(self):
        self.refused_while_draining(2)

    def test_nothing_in_flight_says_nothing(self):
        srv = H.serve(self, self.root, "--access-log", "off", workers=1)
        srv.proc.send_signal(signal.SIGTERM)
        self.assertEqual(srv.proc.wait(10), 0)
        self.assertNotIn("draining", srv.read_stderr(0.5))


class CtrlC(unittest.TestCase):
    def test_newline_after_ctrl_c(self):
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)

        def controlling_tty():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        argv = harness.transport_args(["http", "serve", tmp.name, "-l", "127.0.0.1:0", "-w", "1",
                                       "-q"])
        proc = subprocess.Popen([harness.NETKIT] + argv, stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True, preexec_fn=controlling_tty)
        os.close(slave)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        seen = b""
        deadline = time.monotonic() + 10
        while b"listening on" not in seen or not seen.endswith(b"\n"):
            self.assertLess(time.monotonic(), deadline, seen)
            if select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 4096)
        os.write(master, b"\x03")  # the terminal's interrupt character: SIGINT, and "^C"
        self.assertEqual(proc.wait(10), 0)
        end = time.monotonic() + 2
        while time.monotonic() < end:
            if not select.select([master], [], [], 0.1)[0]:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        tail = seen.split(b"listening on", 1)[1].split(b"\n", 1)[1]
        self.assertEqual(tail, b"^C\r\n", "after the readiness line: %r" % tail)


if __name__ == "__main__":
    unittest.main()
