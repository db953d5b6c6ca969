"""`netkit broadcast`: one sender, three listeners on one port, over the loopback broadcast
address 127.255.255.255 only (never anywhere else)."""
import subprocess
import time
import unittest

import harness

LOOPBACK_BROADCAST = "127.255.255.255"


def read_lines(proc, count, timeout=10):
    """count lines from proc's stdout (each listener exits by itself after --count)."""
    out, _ = proc.communicate(timeout=timeout)
    return out.decode().splitlines()[:count + 5]


class TestBroadcast(unittest.TestCase):
    def listeners(self, n, count, verbose=False):
        extra = ["-v"] if verbose else []
        first = harness.start(self, ["broadcast", "listen", "0", "--count", str(count)] + extra,
                              stdout=subprocess.PIPE)
        self.assertRegex(first.url, r"^udp://0\.0\.0\.0:\d+$")
        port = first.host_port()[1]
        servers = [first]
        for _ in range(n - 1):
            s = harness.start(self, ["broadcast", "listen", str(port), "--count", str(count)]
                              + extra, stdout=subprocess.PIPE)
            self.assertEqual(s.host_port()[1], port)
            servers.append(s)
        return port, servers

    def test_every_listener_gets_every_stdin_line(self):
        lines = ["message %d" % i for i in range(20)]
        port, servers = self.listeners(3, len(lines))
        r = harness.run(["broadcast", "send", str(port), "--to", LOOPBACK_BROADCAST],
                        input=("\n".join(lines) + "\n").encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        for s in servers:
            got = read_lines(s.proc, len(lines))
            self.assertEqual(got, lines)
            self.assertEqual(s.proc.returncode, 0)

    def test_count_and_interval(self):
        port, servers = self.listeners(3, 4, verbose=True)
        t0 = time.monotonic()
        r = harness.run(["broadcast", "send", str(port), "hello all", "--to", LOOPBACK_BROADCAST,
                         "--count", "4", "--interval", "0.2"])
        elapsed = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr)
        # 4 messages, 3 intervals of 0.2 s between them.
        self.assertGreaterEqual(elapsed, 0.55)
        self.assertLess(elapsed, 5)
        for s in servers:
            got = read_lines(s.proc, 4)
            self.assertEqual(len(got), 4, got)
            for line in got:
                self.assertRegex(line, r"^127\.0\.0\.1:\d+: hello all$")

    def test_usage_errors(self):
        r = harness.run(["broadcast", "send", "0", "x", "--to", LOOPBACK_BROADCAST])
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"netkit: broadcast send: invalid port", r.stderr)
        r = harness.run(["broadcast", "send", "9", "x", "--to", "not-an-ip"])
        self.assertEqual(r.returncode, 2)
        r = harness.run(["broadcast", "listen", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"usage: netkit broadcast listen", r.stdout)

    def test_sigterm_exits_zero(self):
        _, servers = self.listeners(1, 1000)
        self.assertEqual(servers[0].stop(), 0)


if __name__ == "__main__":
    unittest.main()
