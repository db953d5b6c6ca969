"""netkit unix listen|connect: Unix-domain streams (the tcp pump) and datagrams."""
import os
import random
import signal
import socket
import subprocess
import tempfile
import threading
import unittest

import harness
from test_tcp import popen, wait_listening, pump_both, recv_all, run_at_eof


class TestUnix(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nk-unix-")
        self.addCleanup(lambda: [os.unlink(os.path.join(self.tmp, f))
                                 for f in os.listdir(self.tmp)] and None or os.rmdir(self.tmp))
        self.path = os.path.join(self.tmp, "s.sock")

    def test_stream_listen_both_directions(self):
        up = random.Random(1).randbytes(300000)
        down = random.Random(2).randbytes(300000)
        with tempfile.TemporaryFile() as f:
            f.write(down)
            f.seek(0)
            proc = popen(self, ["unix", "listen", self.path], stdin=f)
            url, _ = wait_listening(proc)
            self.assertEqual(url, "unix:" + self.path)
            out = {}
            t = threading.Thread(target=lambda: out.update(o=proc.stdout.read()))
            t.start()
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(self.path)
                got = pump_both(s, up)
            t.join(30)
            self.assertEqual(proc.wait(10), 0, proc.stderr.read())
        self.assertEqual(got, down)
        self.assertEqual(out["o"], up)
        self.assertFalse(os.path.exists(self.path), "socket file left behind")

    def test_stream_connect(self):
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(srv.close)
        srv.bind(self.path)
        srv.listen(1)
        result = {}

        def serve():
            conn, _ = srv.accept()
            with conn:
                result["got"] = pump_both(conn, b"reply\n")
        t = threading.Thread(target=serve)
        t.start()
        r = harness.run(["unix", "connect", "-v", "unix:" + self.path], input=b"request\n")
        t.join(30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"reply\n")
        self.assertEqual(result["got"], b"request\n")
        self.assertIn(("peer unix:%s" % self.path).encode(), r.stderr)

    def test_end_of_input_paths(self):
        def bind(srv):
            if os.path.exists(self.path):
                os.unlink(self.path)
            srv.bind(self.path)
            return ["unix", "connect", self.path]
        run_at_eof(self, ["unix", "listen", self.path], bind, lambda url: self.path,
                   socket.AF_UNIX)

    def test_socket_removed_after_sigterm(self):
        proc = popen(self, ["unix", "listen", "-k", "unix:" + self.path])
        wait_listening(proc)
        self.assertTrue(os.path.exists(self.path))
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0)
        self.assertFalse(os.path.exists(self.path))

    def test_stale_socket_replaced(self):
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(self.path)
        stale.close()  # the file stays, nothing answers on it
        self.assertTrue(os.path.exists(self.path))
        proc = popen(self, ["unix", "listen", self.path])
        wait_listening(proc)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(self.path)
            proc.stdin.close()
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s), b"")
        self.assertEqual(proc.wait(10), 0)

    def test_live_socket_not_replaced(self):
        proc = popen(self, ["unix", "listen", self.path])
        wait_listening(proc)
        r = harness.run(["unix", "listen", self.path])
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"Address already in use", r.stderr)
        self.assertTrue(os.path.exists(self.path))

    def test_dgram(self):
        proc = popen(self, ["unix", "listen", "--dgram", "--echo", "-v", self.path],
                     stdin=subprocess.DEVNULL)
        url, _ = wait_listening(proc)
        self.assertEqual(url, "unix:" + self.path)
        r = harness.run(["unix", "connect", "--dgram", "--reply", self.path],
                        input=b"first\nsecond\n", env={"TMPDIR": self.tmp})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"first\nsecond\n")
        self.assertEqual([proc.stdout.readline() for _ in range(2)], [b"first\n", b"second\n"])
        # the client's reply socket (made in $TMPDIR) is gone
        self.assertEqual(os.listdir(self.tmp), ["s.sock"])
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(10), 0)
        self.assertIn(("from unix:%s/netkit-" % self.tmp).encode(), proc.stderr.read())
        self.assertFalse(os.path.exists(self.path))

    def test_dgram_python_sender(self):
        proc = popen(self, ["unix", "listen", "--dgram", self.path], stdin=subprocess.DEVNULL)
        wait_listening(proc)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for d in (b"a", b"b b", b""):
                s.sendto(d, self.path)
        self.assertEqual([proc.stdout.readline() for _ in range(3)], [b"a\n", b"b b\n", b"\n"])
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0)


if __name__ == "__main__":
    unittest.main()
