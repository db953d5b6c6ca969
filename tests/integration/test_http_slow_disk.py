"""netkit http serve on a slow disk: a static file's cache miss is opened off the loop.

A slow disk is made with strace's fault injection: every openat2(2) of the server is delayed
(DELAY seconds before it runs), whichever thread makes it. Where the engine opens a missing
file on its loop, the delay stops the loop and every other connection waits with it; where it
opens through the loop's file operations (the file thread on epoll, io_uring's own workers on
uring, which strace does not see), the other connections are answered meanwhile.

strace is the process the harness starts; the server is its child, stopped by its pid (strace
then exits with it).
"""
import os
import select
import signal
import socket
import subprocess
import time
import unittest

import harness
import httptest as H

DELAY = 1.5  # seconds each openat2 waits
DELAY_US = int(DELAY * 1000000)


def descendants(pid):
    """pid's descendant process ids (children first)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


def fd_targets(pids):
    """What the descriptors of pids point at (readlink of /proc/PID/fd/N)."""
    out = []
    for p in pids:
        try:
            names = os.listdir("/proc/%d/fd" % p)
        except OSError:
            continue
        for n in names:
            try:
                out.append(os.readlink("/proc/%d/fd/%s" % (p, n)))
            except OSError:
                pass
    return out


def sockets(pids):
    return sum(1 for t in fd_targets(pids) if t.startswith("socket:"))


def request(host, port, path):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path)
              .encode())
    return s


def read_all(s, timeout=15):
    s.settimeout(timeout)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk


class SlowDiskTests(unittest.TestCase):
    def setUp(self):
        if os.environ.get("NETKIT_BACKEND") == "uring":
            self.skipTest("on uring the open is io_uring's own request (IORING_OP_OPENAT2), "
                          "made by no system call that strace could delay")
        if harness.TRANSPORT != "http":
            self.skipTest("the server runs under strace without the %s listeners of this "
                          "variant: the plain run covers it" % harness.TRANSPORT)
        why = H.strace_refused()
        if why:
            self.skipTest(why)
        self.d = H.build_docroot(self)
        self.d.write("slow.txt", "SLOW-FILE-BODY\n")
        argv = ["-f", "-o", "/dev/null", "-e", "trace=openat2",
                "-e", "inject=openat2:delay_enter=%d" % DELAY_US,
                harness.NETKIT, "http", "serve", self.d.root, "-l", "127.0.0.1:0", "-w", "1"]
        # LeakSanitizer cannot run under ptrace (make asan): the other checks stay on.
        asan = os.environ.get("ASAN_OPTIONS", "")
        env = {"ASAN_OPTIONS": (asan + ":" if asan else "") + "detect_leaks=0"}
        self.srv = harness.start(self, argv, program="strace", timeout=30, env=env)
        self.host, self.port = self.srv.host_port()
        self.pids = descendants(self.srv.proc.pid)

    def tearDown(self):
        # The server first (strace then exits with it), by the pids this test started.
        for pid in self.pids[:1]:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        try:
            self.srv.proc.wait(15)
        except subprocess.TimeoutExpired:
            for pid in self.pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self.srv.stop()

    def test_other_connection_answered_while_an_open_waits(self):
        slow = request(self.host, self.port, "/slow.txt")
        self.addCleanup(slow.close)
        time.sleep(0.3)  # the server has read it and its open has begun
        quick = request(self.host, self.port, "/.hidden")  # refused before any open
        self.addCleanup(quick.close)
        out = read_all(quick)
        self.assertTrue(out.startswith(b"HTTP/1.1 404 "), out[:100])
        # The quick answer came while the slow request still waits for its open: nothing of
        # its answer is there yet. (With the open on the loop, the loop itself would have
        # waited, and the slow answer would have gone out first.)
        r, _, _ = select.select([slow], [], [], 0)
        self.assertEqual(r, [], "the slow request was answered before the quick one")
        body = read_all(slow)
        self.assertTrue(body.startswith(b"HTTP/1.1 200 "), body[:100])
        self.assertTrue(body.endswith(b"SLOW-FILE-BODY\n"), body[-100:])

    def test_several_opens_wait_at_once(self):
        # Two different misses wait on the file thread together (their records side by side
        # in the set of opens in progress), a third asks for one of them again (not a second
        # open: the connection opens it itself) and a fourth for a file that is not there.
        # Each gets its own answer, whatever order the opens end in.
        self.d.write("b.txt", "B-FILE-BODY\n")
        paths = ["/slow.txt", "/b.txt", "/slow.txt", "/absent.txt"]
        socks = []
        for p in paths:
            socks.append(request(self.host, self.port, p))
            self.addCleanup(socks[-1].close)
            time.sleep(0.1)
        answers = [read_all(s, timeout=8 * DELAY + 10) for s in socks]
        for p, a in zip(paths, answers):
            if p == "/absent.txt":
                self.assertTrue(a.startswith(b"HTTP/1.1 404 "), a[:100])
                continue
            self.assertTrue(a.startswith(b"HTTP/1.1 200 "), (p, a[:100]))
            want = b"SLOW-FILE-BODY\n" if p == "/slow.txt" else b"B-FILE-BODY\n"
            self.assertTrue(a.endswith(want), (p, a[-100:]))
        # Nothing is left waiting: a new miss is answered too.
        self.d.write("c.txt", "C-FILE-BODY\n")
        last = read_all(request(self.host, self.port, "/c.txt"), timeout=4 * DELAY + 10)
        self.assertTrue(last.endswith(b"C-FILE-BODY\n"), last[-100:])

    def test_client_gone_while_an_open_waits_leaks_nothing(self):
        pids = self.pids
        self.assertTrue(pids, "no server process under strace")
        # Warm up: the process's own descriptors settle (the file thread, its eventfd).
        warm = request(self.host, self.port, "/hello.txt")
        self.assertIn(b"hello, world", read_all(warm))
        warm.close()
        time.sleep(0.2)
        before = sockets(pids)
        gone = request(self.host, self.port, "/slow.txt")
        time.sleep(0.3)  # read by the server, its open under way
        gone.close()
        # Bounded wait for the open to end (DELAY per openat2: the file and its sidecar) and
        # the connection with it.
        deadline = time.monotonic() + 6 * DELAY + 5
        while sockets(pids) > before and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(sockets(pids), before, "the connection was not closed")
        # The file opened for nobody is closed, or kept once by the file cache; never more.
        slow = [t for t in fd_targets(pids) if t.endswith("/slow.txt")]
        self.assertLessEqual(len(slow), 1, slow)
        # And the server still answers.
        again = request(self.host, self.port, "/hello.txt")
        self.assertIn(b"hello, world", read_all(again))
        again.close()

    def test_stop_while_an_open_waits(self):
        # SIGTERM while a request waits for its open: the server drains as for any request in
        # progress (the answer still goes out), then frees its engine with nothing of the
        # loop's left (a descriptor or an operation) and exits 0.
        server = self.pids[0] if self.pids else None
        self.assertIsNotNone(server, "no server process under strace")
        slow = request(self.host, self.port, "/slow.txt")
        self.addCleanup(slow.close)
        time.sleep(0.3)  # read by the server, its open under way
        os.kill(server, signal.SIGTERM)
        body = read_all(slow)
        self.assertTrue(body.startswith(b"HTTP/1.1 200 "), body[:100])
        self.assertTrue(body.endswith(b"SLOW-FILE-BODY\n"), body[-100:])
        try:
            rc = self.srv.proc.wait(6 * DELAY + 10)  # strace exits with the server's status
        except subprocess.TimeoutExpired:
            self.fail("the server did not exit after SIGTERM")
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    unittest.main()
