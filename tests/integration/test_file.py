"""`netkit file send/recv`: identical files, refusals that leave nothing behind, overwrite,
10 senders at once, a killed sender (nothing left behind; with --resume the deterministic
partial is kept and a second `send --resume` continues from it)."""
import hashlib
import os
import re
import select
import signal
import time
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


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).digest()


def partials(d):
    return [n for n in os.listdir(d) if ".netkit-part-" in n]


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

    def test_once_outlives_port_probes(self):
        """A connection that closes before sending a header (nc -z, netkit tcp wait) is not
        the transfer: recv --once keeps waiting for the real sender."""
        server = self.recv("--once")
        addr = "%s:%d" % server.host_port()
        r = harness.run(["tcp", "wait", addr, "--timeout", "5"], timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        socket.create_connection(server.host_port(), timeout=5).close()
        time.sleep(0.3)
        self.assertIsNone(server.proc.poll(), "recv --once exited after a port probe")
        src = os.path.join(self.tmp, "after-probe.txt")
        with open(src, "wb") as f:
            f.write(b"payload\n")
        r = harness.run(["file", "send", addr, src], timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        server.proc.wait(10)
        self.assertEqual(server.proc.returncode, 0)
        with open(os.path.join(self.dir, "after-probe.txt"), "rb") as f:
            self.assertEqual(f.read(), b"payload\n")

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

    def test_silent_sender_times_out_and_leaves_nothing(self):
        server = self.recv("--idle-timeout", "0.5")
        idle = self.peer(server)                    # connects and never speaks
        s = self.peer(server)                       # starts a file, then goes silent
        data = b"b" * 5000
        s.sendall(frame(header(b"z.txt", len(data), hashlib.sha256(data).digest())))
        read_frame(s)
        s.sendall(frame(b"D" + data[:100]))
        for conn in (idle, s):
            conn.settimeout(10)
            self.assertEqual(conn.recv(1), b"", "the server should close a silent sender")
        self.assertEqual(os.listdir(self.dir), [])
        err = server.read_stderr(1.0)
        self.assertIn("z.txt: transfer timed out at 100 of 5000 bytes", err)
        self.assertIn("connection timed out", err)
        self.assertEqual(server.stop(), 0)

    def test_max_conns_queues_further_senders(self):
        server = self.recv("--max-conns", "2", "--idle-timeout", "30")
        held = [self.peer(server), self.peer(server)]
        # a third sender is not accepted while two are connected: its header gets no answer
        s = self.peer(server)
        s.sendall(frame(header(b"q", 0, hashlib.sha256(b"").digest())))
        s.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            s.recv(1)
        held[0].close()                             # a slot frees: the third is served
        s.settimeout(10)
        self.assertEqual(read_frame(s), b"G" + b"\0" * 8)
        self.assertEqual(read_frame(s), b"V\x00")
        self.assertEqual(os.listdir(self.dir), ["q"])
        for bad in ("0", "x"):
            p = harness.run(["file", "recv", "127.0.0.1:0", "--max-conns", bad])
            self.assertEqual(p.returncode, 2, p.stderr)
        p = harness.run(["file", "recv", "127.0.0.1:0", "--idle-timeout", "never"])
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(server.stop(), 0)

    def test_hostile_names_refused(self):
        server = self.recv()
        s = self.peer(server)
        for name in (b"../x", b".hidden", b"a/b", b"", b"a\\b", b"..", b"x\0y"):
            s.sendall(frame(header(name, 1, b"\0" * 32)))
            v = read_frame(s)
            self.assertEqual(v[:2], b"V\x01", name)
        self.assertEqual(os.listdir(self.dir), [])
        self.assertEqual(sorted(os.listdir(self.tmp)), ["in"])

    def test_names_escaped_on_the_terminal(self):
        # Names may hold any byte but "/", "\\", NUL and C0/DEL: C1 controls, as UTF-8 or as
        # raw bytes, reach the terminal only escaped, in every line that shows a name.
        server = self.recv()
        s = self.peer(server)
        names = [(b"a\xc2\x9b2Jb", b"a\\u009b2Jb"), (b"r\x9b2Jw", b"r\\x9b2Jw"),
                 (b"caf\xc3\xa9", b"caf\xc3\xa9")]
        for name, shown in names:
            data = b"payload"
            s.sendall(frame(header(name, len(data), hashlib.sha256(data).digest())))
            self.assertEqual(read_frame(s), b"G" + bytes(8))
            s.sendall(frame(b"D" + data))
            self.assertEqual(read_frame(s), b"V\x00")
            line = server.proc.stdout.readline()
            self.assertTrue(line.startswith(b"received " + shown + b" (7 bytes"), line)
            with open(os.path.join(self.dir.encode(), name), "rb") as f:
                self.assertEqual(f.read(), data)
        # a refusal names the file on stderr: escaped too
        s.sendall(frame(header(names[0][0], 7, hashlib.sha256(b"payload").digest())))
        self.assertEqual(read_frame(s)[:2], b"V\x02")
        s.close()
        err = server.read_stderr(1.0).encode("utf-8", "surrogateescape")
        self.assertIn(b"refused a\\u009b2Jb:", err)
        self.assertNotIn(b"\xc2\x9b", err)
        # the sender shows its own file names escaped as well
        src = os.path.join(self.tmp.encode(), b"s\xc2\x9bt")
        with open(src, "wb") as f:
            f.write(b"local")
        r = harness.run(["file", "send", "%s:%d" % server.host_port(), src])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"sent s\\u009bt (5 bytes)\n")
        line = server.proc.stdout.readline()
        self.assertTrue(line.startswith(b"received s\\u009bt (5 bytes"), line)
        self.assertEqual(server.stop(), 0)

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

    def test_ten_senders_at_once(self):
        server = self.recv()
        addr = "%s:%d" % server.host_port()
        srcs = []
        for i in range(10):
            p = os.path.join(self.tmp, "f%02d.bin" % i)
            with open(p, "wb") as f:
                f.write(os.urandom((1 << 20) + i * 4099))
            srcs.append(p)
        procs = [subprocess.Popen([harness.NETKIT, "file", "send", addr, p],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for p in srcs]
        for pr in procs:
            self.addCleanup(harness._reap, pr)
        for p, pr in zip(srcs, procs):
            out, err = pr.communicate(timeout=60)
            self.assertEqual(pr.returncode, 0, err)
            self.assertIn(("sent %s (%d bytes)" % (os.path.basename(p), os.path.getsize(p)))
                          .encode(), out)
        self.assertEqual(sorted(os.listdir(self.dir)), [os.path.basename(p) for p in srcs])
        for p in srcs:
            self.assertEqual(sha(p), sha(os.path.join(self.dir, os.path.basename(p))), p)
        self.assertEqual(server.stop(), 0)

    def start_and_kill_sender(self, server, src):
        """Start `netkit file send` of src, and SIGKILL it once the receiver's temporary file
        holds some bytes; returns the receiver's "transfer interrupted" line."""
        sender = subprocess.Popen([harness.NETKIT, "file", "send",
                                   "%s:%d" % server.host_port(), src],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(harness._reap, sender)
        deadline = time.monotonic() + 30
        while True:
            self.assertLess(time.monotonic(), deadline, "no partial file appeared")
            self.assertIsNone(sender.poll(), "the sender finished before it could be killed")
            sizes = []
            for n in partials(self.dir):
                try:
                    sizes.append(os.path.getsize(os.path.join(self.dir, n)))
                except FileNotFoundError:
                    pass
            if any(sizes):
                break
            time.sleep(0.001)
        # Stop it first so that only what is in flight still arrives, then kill it.
        os.kill(sender.pid, signal.SIGSTOP)
        os.kill(sender.pid, signal.SIGKILL)
        sender.wait(10)
        log = ""
        deadline = time.monotonic() + 20
        while "transfer interrupted" not in log:
            self.assertLess(time.monotonic(), deadline, "receiver never noticed: %r" % log)
            log += server.read_stderr(0.2)
        line = [l for l in log.splitlines() if "transfer interrupted" in l][0]
        m = re.search(r"transfer interrupted at (\d+) of (\d+) bytes", line)
        self.assertTrue(m, line)
        self.assertLess(int(m.group(1)), int(m.group(2)), line)
        return line, int(m.group(1))

    def big_file(self):
        big = os.path.join(self.tmp, "big.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(50 << 20))
        return big

    def test_hashing_shows_progress_on_a_terminal(self):
        # The header carries the SHA-256, so the whole file is read before the first byte is
        # sent: on a terminal that wait is shown as a progress line, not silence.
        import pty
        server = self.recv()
        big = os.path.join(self.tmp, "sparse.bin")
        with open(big, "wb") as f:
            f.truncate(96 << 20)
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        sender = subprocess.Popen([harness.NETKIT, "file", "send", "%s:%d" % server.host_port(),
                                   big], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=slave)
        os.close(slave)
        self.addCleanup(harness._reap, sender)
        got = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                got += chunk
            elif sender.poll() is not None:
                break
        self.assertEqual(sender.wait(10), 0, got)
        self.assertRegex(got.decode(), r"\rhashing sparse\.bin +\d+% ")
        self.assertRegex(got.decode(), r"hashing sparse\.bin +100% ")
        self.assertEqual(sha(os.path.join(self.dir, "sparse.bin")), sha(big))

    def old_partials(self):
        """Two partial files of a killed receiver: one two days old, one fresh."""
        old = os.path.join(self.dir, ".old.bin.netkit-part-a1B2c3")
        fresh = os.path.join(self.dir, ".fresh.bin.netkit-part-0123456789abcdef")
        for p in (old, fresh):
            with open(p, "wb") as f:
                f.write(b"x" * 1000)
        two_days = time.time() - 2 * 86400
        os.utime(old, (two_days, two_days))
        return old, fresh

    def test_stale_partials_removed_at_start(self):
        old, fresh = self.old_partials()
        server = self.recv()
        self.assertFalse(os.path.exists(old))
        self.assertTrue(os.path.exists(fresh))
        err = "\n".join(server.stderr_lines) + server.read_stderr(0.3)
        self.assertIn("removed a stale partial file '.old.bin.netkit-part-a1B2c3' (1000 bytes",
                      err)
        self.assertNotIn("fresh.bin", err)

    def test_stale_partial_held_by_another_receiver_stays(self):
        # A --resume receiver holds its partial locked (flock): another receiver starting on
        # the same directory must not remove it, however old.
        import fcntl
        old, _ = self.old_partials()
        with open(old, "rb") as held:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            server = self.recv()
            err = server.read_stderr(0.3)
            self.assertTrue(os.path.exists(old))
            self.assertNotIn("old.bin", err)

    def test_list_partials(self):
        old, fresh = self.old_partials()
        r = harness.run(["file", "recv", "127.0.0.1:0", "--dir", self.dir, "--list-partials"])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertRegex(out, r"\.old\.bin\.netkit-part-a1B2c3 +1000 bytes +2 days old")
        self.assertRegex(out, r"\.fresh\.bin\.netkit-part-0123456789abcdef +1000 bytes")
        # Listing changes nothing.
        self.assertTrue(os.path.exists(old) and os.path.exists(fresh))

    def test_killed_sender_leaves_nothing(self):
        # docs/file-protocol.md: without --resume, a connection that ends in the middle removes
        # the temporary file: DIR is left exactly as it was.
        server = self.recv()
        big = self.big_file()
        line, _ = self.start_and_kill_sender(server, big)
        self.assertNotIn("kept for --resume", line)
        self.assertEqual(os.listdir(self.dir), [])
        # The receiver is still serving.
        r = harness.run(["file", "send", "%s:%d" % server.host_port(), big], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.listdir(self.dir), ["big.bin"])
        self.assertEqual(sha(big), sha(os.path.join(self.dir, "big.bin")))
        self.assertEqual(server.stop(), 0)

    def test_resume_after_killed_sender(self):
        server = self.recv("--resume")
        big = self.big_file()
        line, at = self.start_and_kill_sender(server, big)
        self.assertIn("kept for --resume", line)
        # Only the deterministic partial is left, holding exactly what arrived.
        left = os.listdir(self.dir)
        self.assertEqual(len(left), 1, left)
        self.assertRegex(left[0], r"^\.big\.bin\.netkit-part-[0-9a-f]{16}$")
        self.assertEqual(os.path.getsize(os.path.join(self.dir, left[0])), at)
        self.assertGreater(at, 0)
        r = harness.run(["file", "send", "--resume", "%s:%d" % server.host_port(), big],
                        timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"resuming big.bin at byte %d\n" % at, r.stdout)
        self.assertEqual(os.listdir(self.dir), ["big.bin"])
        self.assertEqual(sha(big), sha(os.path.join(self.dir, "big.bin")))
        self.assertEqual(server.stop(), 0)
        out = server.proc.stdout.read().decode()
        self.assertIn("resuming big.bin at byte %d of %d\n" % (at, 50 << 20), out)
        self.assertIn("received big.bin (%d bytes, sha256 %s)" % (50 << 20, sha(big).hex()), out)

    def partial_name(self, name, data):
        """The receiver's deterministic --resume partial name for (name, size, SHA-256)."""
        key = name + struct.pack(">Q", len(data)) + hashlib.sha256(data).digest()
        return b"." + name + b".netkit-part-" + hashlib.sha256(key).hexdigest()[:16].encode()

    def test_resume_ignores_a_planted_partial(self):
        # Whoever knows a file's name, size and SHA-256 can create its partial (for example by
        # sending wrong bytes and breaking off). The real sender's --resume must still end with
        # the right file: the sender checks the SHA-256 of the partial's prefix and restarts
        # from 0 when it is not a prefix of its own file.
        src = os.path.join(self.tmp, "real.bin")
        data = os.urandom(3 << 20)
        with open(src, "wb") as f:
            f.write(data)
        part = os.path.join(self.dir.encode(), self.partial_name(b"real.bin", data))
        server = self.recv("--resume")
        for planted in (1 << 20, len(data)):  # a prefix's worth of garbage; a whole file's
            with self.subTest(planted=planted):
                with open(part, "wb") as f:
                    f.write(os.urandom(planted))
                r = harness.run(["file", "send", "--resume", "%s:%d" % server.host_port(), src],
                                timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, b"sent real.bin (%d bytes)\n" % len(data))
                dest = os.path.join(self.dir, "real.bin")
                self.assertEqual(sha(dest), hashlib.sha256(data).digest())
                self.assertEqual(os.listdir(self.dir), ["real.bin"])
                os.unlink(dest)
        out = server.proc.stdout
        self.assertEqual(server.stop(), 0)
        text = out.read().decode()
        self.assertEqual(text.count("received real.bin (%d bytes" % len(data)), 2, text)
        self.assertNotIn("resuming", text)

    def test_resume_of_a_true_prefix_continues(self):
        # The check costs the real sender nothing: a partial that is a prefix of its file is
        # continued where it ends.
        src = os.path.join(self.tmp, "real.bin")
        data = os.urandom(3 << 20)
        with open(src, "wb") as f:
            f.write(data)
        at = 1234567
        with open(os.path.join(self.dir.encode(), self.partial_name(b"real.bin", data)),
                  "wb") as f:
            f.write(data[:at])
        server = self.recv("--resume")
        r = harness.run(["file", "send", "--resume", "%s:%d" % server.host_port(), src],
                        timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"resuming real.bin at byte %d\n" % at, r.stdout)
        self.assertEqual(sha(os.path.join(self.dir, "real.bin")), hashlib.sha256(data).digest())
        self.assertEqual(server.stop(), 0)

    def test_resume_to_a_receiver_without_prefix_checks(self):
        # A receiver from before NK_XFER_F_PREFIX refuses the unknown flag as a bad name: the
        # sender sends the header once more without it, and the file goes through.
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(lsock.close)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        src = os.path.join(self.tmp, "f.bin")
        data = os.urandom(100000)
        with open(src, "wb") as f:
            f.write(data)
        sender = subprocess.Popen([harness.NETKIT, "file", "send", "--resume",
                                   "127.0.0.1:%d" % lsock.getsockname()[1], src],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(harness._reap, sender)
        lsock.settimeout(10)
        conn, _ = lsock.accept()
        self.addCleanup(conn.close)
        conn.settimeout(10)
        first = read_frame(conn)
        self.assertEqual(first[2], 3)  # RESUME | PREFIX
        conn.sendall(frame(b"V\x01refused: the name is not a plain file name"))
        second = read_frame(conn)
        self.assertEqual(second[2], 1)  # RESUME only
        self.assertEqual(second[3:], first[3:])
        conn.sendall(frame(b"G" + struct.pack(">Q", 0)))
        got = b""
        while len(got) < len(data):
            m = read_frame(conn)
            self.assertEqual(m[:1], b"D")
            got += m[1:]
        self.assertEqual(got, data)
        conn.sendall(frame(b"V\x00"))
        out, err = sender.communicate(timeout=10)
        self.assertEqual(sender.returncode, 0, err)
        self.assertEqual(out, b"sent f.bin (100000 bytes)\n")


if __name__ == "__main__":
    unittest.main()
