"""--sendfile: file bodies sent by sendfile(2) or read into memory and sent, byte-exact either way.

Bodies above the small-file size go out with sendfile (on), through a buffer filled by pread
(off), or by the client's address and the body's size (auto: off for bodies from 4 MiB up to
loopback and unix-socket clients, on otherwise). Every mode must send the same bytes on every path that sends a file: whole bodies,
single and multiple ranges, pipelined responses, HEAD, and a file that shrinks while it is
being sent (the connection ends short instead of hanging or padding). A server started under
strace shows that each mode really uses the system call it names.
"""
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness
import httptest as H

MIB = 1024 * 1024
BIG = 5 * MIB + 7       # above auto's 4 MiB copy size, and many 256 KiB copy pieces
MID = 20 * 1024 + 3     # just above the small-file size: a file body, not a cached one


def make_file(path, size, seed):
    """Deterministic, position-dependent bytes: a piece sent twice or out of place shows."""
    out = bytearray()
    n = 0
    while len(out) < size:
        out += hashlib.sha256(b"%d:%d" % (seed, n)).digest()
        n += 1
    data = bytes(out[:size])
    with open(path, "wb") as f:
        f.write(data)
    return data


def multipart_parts(resp):
    """The (Content-Range, body) of each part of a multipart/byteranges response."""
    ctype = resp.header("Content-Type") or ""
    m = re.search(r"boundary=([^;\s]+)", ctype)
    if not m:
        raise AssertionError("no boundary in %r" % ctype)
    delim = b"--" + m.group(1).encode()
    parts = []
    for chunk in resp.body.split(b"\r\n" + delim)[:-1]:
        chunk = chunk[len(delim):] if chunk.startswith(delim) else chunk
        head, _, body = chunk.partition(b"\r\n\r\n")
        cr = re.search(rb"Content-Range: bytes (\d+)-(\d+)/(\d+)", head, re.I)
        if not cr:
            raise AssertionError("part without Content-Range: %r" % head[:200])
        parts.append(((int(cr.group(1)), int(cr.group(2))), body))
    return parts


class SendfileModes:
    """The checks, run for each mode by the classes below."""
    mode = None

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="netkit-sendfile-")
        cls.addClassCleanup(shutil.rmtree, cls.root, True)
        cls.big = make_file(os.path.join(cls.root, "big.bin"), BIG, 1)
        cls.mid = make_file(os.path.join(cls.root, "mid.bin"), MID, 2)
        cls.srv = H.serve(H.class_owner(cls), cls.root, "--access-log", "off",
                          "--sendfile", cls.mode)
        cls.addr = cls.srv.host_port()

    def conn(self):
        c = H.Conn(self.addr, timeout=10)
        self.addCleanup(c.close)
        return c

    def test_whole_bodies(self):
        c = self.conn()
        for name, data in (("big.bin", self.big), ("mid.bin", self.mid)):
            r = c.request(H.get("/" + name), timeout=20)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Length"), str(len(data)))
            self.assertEqual(hashlib.sha256(r.body).hexdigest(),
                             hashlib.sha256(data).hexdigest(), name)

    def test_single_range(self):
        c = self.conn()
        r = c.request(H.get("/big.bin", "Range: bytes=1000-2000000"), timeout=20)
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Range"), "bytes 1000-2000000/%d" % BIG)
        self.assertEqual(r.body, self.big[1000:2000001])

    def test_multiple_ranges(self):
        c = self.conn()
        r = c.request(H.get("/big.bin", "Range: bytes=0-99,70000-1500000,-10"), timeout=20)
        self.assertEqual(r.status, 206)
        got = multipart_parts(r)
        want = [((0, 99), self.big[0:100]), ((70000, 1500000), self.big[70000:1500001]),
                ((BIG - 10, BIG - 1), self.big[BIG - 10:])]
        self.assertEqual([g[0] for g in got], [w[0] for w in want])
        for (rng, body), (_, expect) in zip(got, want):
            self.assertEqual(body, expect, "part %r" % (rng,))

    def test_pipelined_responses_stay_in_order(self):
        c = self.conn()
        c.send(H.get("/big.bin") + H.req("HEAD", "/big.bin") + H.get("/mid.bin") +
               H.get("/big.bin", "Range: bytes=-300000"))
        r1 = c.read_response(timeout=20)
        r2 = c.read_response("HEAD", timeout=20)
        r3 = c.read_response(timeout=20)
        r4 = c.read_response(timeout=20)
        self.assertEqual((r1.status, r2.status, r3.status, r4.status), (200, 200, 200, 206))
        self.assertEqual(r1.body, self.big)
        self.assertEqual(r2.body, b"")
        self.assertEqual(r2.header("Content-Length"), str(BIG))
        self.assertEqual(r3.body, self.mid)
        self.assertEqual(r4.body, self.big[-300000:])

    def test_file_that_shrinks_ends_the_connection_short(self):
        path = os.path.join(self.root, "shrink-%s.bin" % self.mode)
        make_file(path, 8 * MIB, 3)
        s = H.connect(self.addr, timeout=10, setup=lambda k: k.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 65536))
        self.addCleanup(s.close)
        s.sendall(H.get("/" + os.path.basename(path)))
        got = s.recv(65536)
        self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got[:100])
        # The rest of the body can no longer be read from the file: the server must end the
        # connection rather than wait, send zeros or send more than the file holds.
        os.truncate(path, MIB)
        deadline = time.monotonic() + 20
        while True:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "the connection is still open after the file shrank "
                               "(%d bytes so far)" % len(got))
            s.settimeout(left)
            try:
                chunk = s.recv(262144)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertIn(b"Content-Length: %d" % (8 * MIB), head)
        self.assertLess(len(body), 8 * MIB)
        # The server goes on serving.
        r = self.conn().request(H.get("/mid.bin"), timeout=10)
        self.assertEqual(r.body, self.mid)


class SendfileOn(SendfileModes, unittest.TestCase):
    mode = "on"


class SendfileOff(SendfileModes, unittest.TestCase):
    mode = "off"


class SendfileAuto(SendfileModes, unittest.TestCase):
    mode = "auto"


class SystemCallOfEachMode(unittest.TestCase):
    """Under strace: which call sends a file body of each mode to a loopback client."""

    def setUp(self):
        if harness.TRANSPORT != "http":
            self.skipTest("over %s the body is encrypted in memory whatever the mode: the "
                          "plain run covers it" % harness.TRANSPORT)
        # On uring a file body's sendfile is still the system call (the operation is emulated),
        # but a copied piece is read by an io_uring request (IORING_OP_READ): no pread64.
        self.uring = os.environ.get("NETKIT_BACKEND") == "uring"
        why = H.strace_refused()
        if why:
            self.skipTest(why)
        self.root = tempfile.mkdtemp(prefix="netkit-sendfile-strace-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.big = make_file(os.path.join(self.root, "big.bin"), BIG, 4)
        self.mib = make_file(os.path.join(self.root, "mib.bin"), MIB, 5)

    def calls_for(self, mode, name="big.bin"):
        """{'sendfile': n, 'pread64': n} made by a server in `mode` sending `name` once."""
        log = os.path.join(self.root, "strace-%s.log" % mode)
        argv = ["-f", "-o", log, "-e", "trace=sendfile,pread64",
                harness.NETKIT, "http", "serve", self.root, "-l", "127.0.0.1:0", "-w", "1",
                "--access-log", "off", "--sendfile", mode]
        asan = os.environ.get("ASAN_OPTIONS", "")
        env = {"ASAN_OPTIONS": (asan + ":" if asan else "") + "detect_leaks=0"}
        srv = harness.start(self, argv, program="strace", timeout=30, env=env)
        try:
            c = H.Conn(srv.host_port(), timeout=10)
            r = c.request(H.get_close("/" + name), timeout=20)
            c.close()
            self.assertEqual(r.body, self.big if name == "big.bin" else self.mib)
        finally:
            with open("/proc/%d/task/%d/children" % (srv.proc.pid, srv.proc.pid)) as f:
                kids = f.read()
            for pid in [int(p) for p in kids.split()]:
                os.kill(pid, signal.SIGTERM)
            srv.proc.wait(20)  # strace exits with the server
        with open(log) as f:
            text = f.read()
        # The dynamic loader's reads of ELF headers are preads of a few hundred bytes; a piece
        # of a file body is at least the small-file size.
        preads = [int(n) for n in re.findall(r"\bpread64\(\d+, .*?, (\d+), \d+\) = ", text)]
        return {"sendfile": len(re.findall(r"\bsendfile\(", text)),
                "pread64": sum(1 for n in preads if n > 16384)}

    def test_on_sends_with_sendfile(self):
        n = self.calls_for("on")
        self.assertGreater(n["sendfile"], 0, n)
        self.assertEqual(n["pread64"], 0, n)

    def assert_copied(self, n):
        self.assertEqual(n["sendfile"], 0, n)
        if self.uring:
            self.assertEqual(n["pread64"], 0, n)  # the reads are the ring's
        else:
            self.assertGreater(n["pread64"], 0, n)

    def test_off_reads_and_sends(self):
        self.assert_copied(self.calls_for("off"))

    def test_auto_copies_a_large_body_for_a_loopback_client(self):
        self.assert_copied(self.calls_for("auto"))

    def test_auto_sends_a_smaller_body_with_sendfile(self):
        n = self.calls_for("auto", "mib.bin")
        self.assertGreater(n["sendfile"], 0, n)
        self.assertEqual(n["pread64"], 0, n)


if __name__ == "__main__":
    unittest.main()
