"""--send-timeout against a large file body: renewed by progress, on every backend.

The deadline is a gap between bytes the client takes, not a limit on the whole response: a slow
client that keeps reading a large file must not be cut, however long the body takes, and one
that stops reading must be cut about --send-timeout after its last byte. On the uring backend
the engine sends a file body in one sendfile operation whose callback comes only at the end, so
the deadline has to see the operation's progress while it runs (src/httpd/opconn.c); the
integration_uring run of this file checks that path, the plain run the readiness one.
Each runs twice: with --sendfile on, and with --sendfile off, where the body goes out in
pieces read into memory (the default for loopback clients such as this test).
"""
import os
import shutil
import socket
import tempfile
import time
import unittest

import harness
import httptest as H

MIB = 1024 * 1024
SIZE = 32 * MIB
TIMEOUT_S = 2


def wait_until(cond, timeout, step=0.05):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= end:
            return False
        time.sleep(step)
    return True


@unittest.skipIf(harness.TRANSPORT == "h2", "the h2 bridge reads the server's socket itself: "
                 "the test's reading pace would not be the connection's")
class SendTimeoutLargeFile(unittest.TestCase):
    sendfile = "on"

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="netkit-sendtmo-")
        self.addCleanup(shutil.rmtree, self.root, True)
        block = os.urandom(MIB)
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            for _ in range(SIZE // MIB):
                f.write(block)
        self.srv = H.serve(self, self.root, "--access-log", "off",
                           "--send-timeout", str(TIMEOUT_S), "--sendfile", self.sendfile)
        self.pid = self.srv.proc.pid
        self.addr = self.srv.host_port()
        self.socks0 = H.socket_fds(self.pid)  # the listener

    def start_download(self):
        s = H.connect(self.addr, setup=lambda k: k.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 65536))
        self.addCleanup(s.close)
        s.sendall(H.get("/big.bin"))
        return s

    def read_slowly(self, s, seconds):
        """Take about 1 MiB/s for `seconds`: far slower than the server could send, so the
        response stays in progress; returns the bytes read. Fails if the server ends it."""
        got = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                chunk = s.recv(128 * 1024)
            except ConnectionResetError:
                chunk = b""
            self.assertTrue(chunk, "the server ended a response still being read after %d "
                            "bytes (--send-timeout %d)" % (got, TIMEOUT_S))
            got += len(chunk)
            time.sleep(0.125)
        return got

    def test_reader_that_keeps_reading_is_not_cut(self):
        s = self.start_download()
        got = self.read_slowly(s, 2.5 * TIMEOUT_S)
        # Still mid-body: the response really outlasted the timeout several times over.
        self.assertLess(got, SIZE // 2)
        self.assertEqual(H.socket_fds(self.pid), self.socks0 + 1)

    def test_reader_that_stops_is_cut(self):
        s = self.start_download()
        got = self.read_slowly(s, 1.5 * TIMEOUT_S)
        self.assertLess(got, SIZE // 2)
        stopped = time.monotonic()
        closed = wait_until(lambda: H.socket_fds(self.pid) <= self.socks0, 4 * TIMEOUT_S)
        took = time.monotonic() - stopped
        self.assertTrue(closed, "a connection that stopped reading still open after %.1fs "
                        "(--send-timeout %d)" % (took, TIMEOUT_S))
        # Not before the timeout could have passed (the socket buffers hold some seconds of
        # this reader's pace, so the server's last progress can come a little after the stop).
        self.assertGreater(took, 0.5 * TIMEOUT_S, "cut %.1fs after the client stopped" % took)
        # The server is fine after it.
        r = H.raw(self.addr[0], self.addr[1], H.get_close("/"))
        self.assertTrue(r.startswith(b"HTTP/1.1 "), r[:80])


class SendTimeoutLargeFileCopied(SendTimeoutLargeFile):
    sendfile = "off"


if __name__ == "__main__":
    unittest.main()
