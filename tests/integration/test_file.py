"""`netkit file send/recv`: identical files, refusals that leave nothing behind, overwrite.
(Not yet covered here: 10 concurrent senders, --resume after a killed sender.)"""
import hashlib
import os
import socket
import struct
import subprocess
import tempfile
import unittest

import harness


def frame(b):
    return struct.pack(">I", len(b)) + b


def read_frame(s):
    def exact(n):
        d = b""
        while len(d) < n:
            c = s.recv(n - len(d))
            if not c:
                raise EOFError
            d += c
        return d
    return exact(struct.unpack(">I", exact(4))[0])


def header(name, size, digest, mode=0o644, flags=0):
    return (b"H" + bytes([1, flags, 0]) + struct.pack(">QI", size, mode) + digest
            + struct.pack(">H", len(name)) + name)


class TestFile(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nk-file-")
        self.dir = os.path.join(self.tmp, "in")
        os.mkdir(self.dir)
        self.addCleanup(subprocess.run, ["rm", "-rf", self.tmp])

    def recv(self, *extra):
        return harness.start(self, ["file", "recv", "127.0.0.1:0", "--dir", self.dir] + list(extra),
                             stdout=subprocess.PIPE)

    def test_big_and_empty_files_arrive_identical(self):
        server = self.recv()
        big = os.path.join(self.tmp, "big.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(50 << 20))
        empty = os.path.join(self.tmp, "empty")
        open(empty, "wb").close()
        r = harness.run(["file", "send", "%s:%d" % server.host_port(), big, empty], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        for p in (big, empty):
            with open(p, "rb") as a, open(os.path.join(self.dir, os.path.basename(p)), "rb") as b:
                self.assertEqual(hashlib.sha256(a.read()).digest(),
                                 hashlib.sha256(b.read()).digest())
        self.assertEqual(sorted(os.listdir(self.dir)), ["big.bin", "empty"])
        self.assertEqual(server.stop(), 0)

    def peer(self, server):
        s = socket.create_connection(server.host_port(), timeout=10)
        self.addCleanup(s.close)
        return s

    def test_wrong_hash_leaves_nothing(self):
        server = self.recv()
        s = self.peer(server)
        data = b"hello world\n" * 1000
        s.sendall(frame(header(b"x.txt", len(data), b"\0" * 32)))
        self.assertEqual(read_frame(s), b"G" + b"\0" * 8)
        s.sendall(frame(b"D" + data))
        v = read_frame(s)
        self.assertEqual(v[:2], b"V\x03")
        self.assertEqual(os.listdir(self.dir), [])

    def test_short_transfer_leaves_nothing(self):
        server = self.recv()
        s = self.peer(server)
        data = b"a" * 5000
        s.sendall(frame(header(b"x.txt", len(data), hashlib.sha256(data).digest())))
        read_frame(s)
        s.sendall(frame(b"D" + data[:100]))
        s.close()
        # A second request is answered only after the first connection was handled.
        s2 = self.peer(server)
        s2.sendall(frame(header(b"y", 0, hashlib.sha256(b"").digest())))
        read_frame(s2)
        self.assertEqual(read_frame(s2), b"V\x00")
        self.assertEqual(os.listdir(self.dir), ["y"])

    def test_hostile_names_refused(self):
        server = self.recv()
        s = self.peer(server)
        for name in (b"../x", b".hidden", b"a/b", b"", b"a\\b", b"..", b"x\0y"):
            s.sendall(frame(header(name, 1, b"\0" * 32)))
            v = read_frame(s)
            self.assertEqual(v[:2], b"V\x01", name)
        self.assertEqual(os.listdir(self.dir), [])
        self.assertEqual(sorted(os.listdir(self.tmp)), ["in"])

    def test_overwrite(self):
        src = os.path.join(self.tmp, "f.txt")
        with open(src, "w") as f:
            f.write("new")
        with open(os.path.join(self.dir, "f.txt"), "w") as f:
            f.write("old")
        server = self.recv()
        r = harness.run(["file", "send", "%s:%d" % server.host_port(), src])
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"f.txt exists (use --overwrite)", r.stderr)
        with open(os.path.join(self.dir, "f.txt")) as f:
            self.assertEqual(f.read(), "old")
        server = self.recv("--overwrite")
        r = harness.run(["file", "send", "%s:%d" % server.host_port(), src])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.dir, "f.txt")) as f:
            self.assertEqual(f.read(), "new")
        self.assertEqual(os.listdir(self.dir), ["f.txt"])


if __name__ == "__main__":
    unittest.main()
