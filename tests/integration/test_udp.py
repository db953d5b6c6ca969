"""netkit udp listen|send: datagram boundaries, raw bytes, truncation reports, replies."""
import os
import random
import signal
import socket
import subprocess
import unittest

import harness
from test_tcp import popen, wait_listening, port_of


class TestUdp(unittest.TestCase):
    def listen(self, *args):
        proc = popen(self, ["udp", "listen", "127.0.0.1:0"] + list(args), stdin=subprocess.DEVNULL)
        url, _ = wait_listening(proc)
        self.assertRegex(url, r"^udp://127\.0\.0\.1:\d+$")
        return proc, ("127.0.0.1", port_of(url))

    def stop(self, proc):
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        self.assertEqual(proc.returncode, 0, err)
        return out, err

    def sender(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.settimeout(10)
        return s

    def test_boundaries_kept(self):
        proc, addr = self.listen()
        s = self.sender()
        for d in (b"one", b"two\n", b"three has spaces"):
            s.sendto(d, addr)
        # each datagram is one line (a newline added only where missing)
        got = [proc.stdout.readline() for _ in range(3)]
        self.assertEqual(got, [b"one\n", b"two\n", b"three has spaces\n"])
        self.stop(proc)

    def test_end_of_input_paths(self):
        # stdin is /dev/null: nothing to send, exit 0, and no sanitizer report on the way (an
        # empty line buffer once reached memchr as NULL with length 0 in some tools)
        proc, addr = self.listen()
        for extra in ([], ["--reply", "-w", "0.2"]):
            with self.subTest(extra=extra):
                r = subprocess.run([harness.NETKIT, "udp", "send", "%s:%d" % addr] + extra,
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, b"")
        self.sender().sendto(b"", addr)  # an empty datagram is one empty line
        self.assertEqual(proc.stdout.readline(), b"\n")
        out, _ = self.stop(proc)
        self.assertEqual(out, b"")
        r = subprocess.run([harness.NETKIT, "broadcast", "send", str(addr[1]), "--to",
                            "127.0.0.1"], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_send_three_datagrams(self):
        proc, addr = self.listen("-v")
        r = harness.run(["udp", "send", "%s:%d" % addr, "a", "bb", "ccc"])
        self.assertEqual(r.returncode, 0, r.stderr)
        got = [proc.stdout.readline() for _ in range(3)]
        self.assertEqual(got, [b"a\n", b"bb\n", b"ccc\n"])
        r = harness.run(["udp", "send", "%s:%d" % addr], input=b"l1\nl2\n\nl4")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = [proc.stdout.readline() for _ in range(4)]
        self.assertEqual(got, [b"l1\n", b"l2\n", b"\n", b"l4\n"])
        _, err = self.stop(proc)
        self.assertRegex(err.decode(), r"from 127\.0\.0\.1:\d+ \(3 bytes\)")

    def test_raw_exact_bytes(self):
        proc, addr = self.listen("--raw")
        s = self.sender()
        data = [random.Random(i).randbytes(n) for i, n in enumerate((0, 1, 1000, 65507))]
        for d in data:
            s.sendto(d, addr)
        want = b"".join(data)
        got = b""
        while len(got) < len(want):
            chunk = os.read(proc.stdout.fileno(), 1 << 20)
            self.assertTrue(chunk)
            got += chunk
        self.assertEqual(got, want)
        self.stop(proc)

    def test_truncation_reported(self):
        proc, addr = self.listen("--max-size", "1000", "--raw")
        s = self.sender()
        s.sendto(b"x" * 2000, addr)
        s.sendto(b"y" * 1000, addr)  # exactly the limit: not truncated
        got = b""
        while len(got) < 2000:
            got += os.read(proc.stdout.fileno(), 65536)
        self.assertEqual(got, b"x" * 1000 + b"y" * 1000)
        _, err = self.stop(proc)
        self.assertEqual(err.decode().count("truncated"), 1, err)
        self.assertRegex(err.decode(), r"^netkit: udp listen: datagram from 127\.0\.0\.1:\d+ "
                                       r"truncated: 2000 bytes, 1000 kept\n")

    def test_truncation_default_limit_ipv6(self):
        """A 65527-byte datagram (the IPv6 maximum without jumbograms) over a 65536 default
        fits; one byte over a lowered limit does not."""
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
                probe.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback (::1) here")
        proc = popen(self, ["udp", "listen", "[::1]:0", "--raw", "--max-size", "65526"],
                     stdin=subprocess.DEVNULL)
        url, _ = wait_listening(proc)
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            s.sendto(b"z" * 65527, ("::1", port_of(url)))
        got = b""
        while len(got) < 65526:
            got += os.read(proc.stdout.fileno(), 1 << 20)
        self.assertEqual(got, b"z" * 65526)
        _, err = self.stop(proc)
        self.assertIn(b"truncated: 65527 bytes, 65526 kept", err)

    def test_echo_and_reply(self):
        proc, addr = self.listen("--echo")
        r = harness.run(["udp", "send", "--reply", "%s:%d" % addr, "ping", "pong"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(r.stdout.splitlines()), [b"ping", b"pong"])
        self.stop(proc)

    def test_reply_timeout(self):
        s = self.sender()  # bound, never answers
        s.bind(("127.0.0.1", 0))
        r = harness.run(["udp", "send", "--reply", "-w", "0.3", "127.0.0.1:%d" % s.getsockname()[1],
                         "hello"])
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"timed out waiting for replies (0 of 1 received)", r.stderr)
        self.assertEqual(s.recv(100), b"hello")

    def test_reply_refused(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing there now: ICMP port unreachable
        r = harness.run(["udp", "send", "--reply", "127.0.0.1:%d" % port, "x"])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, b"netkit: udp send: 127.0.0.1:%d: Connection refused\n" % port)

    def test_usage(self):
        self.assertEqual(harness.run(["udp", "listen"]).returncode, 2)
        self.assertEqual(harness.run(["udp", "listen", "--max-size", "0", "0"]).returncode, 2)
        r = harness.run(["udp", "send", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"usage: netkit udp send", r.stdout)


if __name__ == "__main__":
    unittest.main()
