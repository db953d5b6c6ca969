"""`netkit ping` against loopback only: replies over IPv4 and IPv6, the summary, and the
no-reply cases inside network namespaces this test creates (never traffic off the machine)."""
import os
import re
import signal
import socket
import subprocess
import unittest
import uuid

import harness

REPLY_RE = re.compile(r"^64 bytes from (\S+): icmp_seq=(\d+) ttl=(\d+) time=\d+\.\d{3} ms$")
SUMMARY_RE = re.compile(r"^(\d+) packets transmitted, (\d+) received(, \+(\d+) errors)?, "
                        r"([\d.]+)% packet loss, time \d+ms$")
RTT_RE = re.compile(r"^rtt min/avg/max/mdev = \d+\.\d{3}/\d+\.\d{3}/\d+\.\d{3}/\d+\.\d{3} ms$")


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Ping(unittest.TestCase):
    def check_replies(self, host):
        r = harness.run(["ping", "-c", "3", "-i", "0.2", host], timeout=20)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("PING %s (%s)" % (host, host)), lines[0])
        replies = [REPLY_RE.match(l) for l in lines if l.startswith("64 bytes")]
        self.assertEqual(len(replies), 3, out)
        self.assertTrue(all(replies), out)
        self.assertEqual([int(m.group(2)) for m in replies], [1, 2, 3])
        self.assertTrue(all(m.group(1) == host for m in replies))
        self.assertIn("--- %s ping statistics ---" % host, lines)
        summary = [SUMMARY_RE.match(l) for l in lines if "packets transmitted" in l]
        self.assertEqual(len(summary), 1, out)
        self.assertEqual(summary[0].group(1, 2, 5), ("3", "3", "0"))
        self.assertTrue(RTT_RE.match(lines[-1]), lines[-1])

    def test_ipv4(self):
        self.check_replies("127.0.0.1")

    def test_ipv6(self):
        if not have_ipv6_loopback():
            self.skipTest("no IPv6 loopback here")
        self.check_replies("::1")

    def test_name_shown_with_address(self):
        """`ping NAME` says `from NAME (ADDR)` and names NAME in the summary, as iputils;
        -n keeps addresses only."""
        if os.geteuid() != 0:
            self.skipTest("needs root to be sure of an ICMP socket (running as uid %d)"
                          % os.geteuid())
        r = harness.run(["ping", "-4", "-c", "2", "-i", "0.2", "localhost"], timeout=20)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("PING localhost (127.0.0.1) "), lines[0])
        replies = [l for l in lines if l.startswith("64 bytes")]
        self.assertEqual(len(replies), 2, out)
        for l in replies:
            self.assertRegex(l, r"^64 bytes from localhost \(127\.0\.0\.1\): icmp_seq=\d+ ttl=")
        self.assertIn("--- localhost ping statistics ---", lines)
        r = harness.run(["ping", "-4", "-n", "-c", "1", "localhost"], timeout=20)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())
        self.assertIn("64 bytes from 127.0.0.1: icmp_seq=1 ", out)

    def test_sigint_prints_summary(self):
        p = subprocess.Popen([harness.NETKIT, "ping", "-i", "0.2", "127.0.0.1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(harness._reap, p)
        got = b""
        while got.count(b"icmp_seq=") < 2:
            chunk = p.stdout.readline()
            self.assertTrue(chunk, "ping ended early: %r" % got)
            got += chunk
        p.send_signal(signal.SIGINT)
        rest, _ = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"ping statistics", rest)
        self.assertRegex(rest.decode(), r"\d+ packets transmitted, \d+ received")

    def test_usage(self):
        for args in (["ping"], ["ping", "-c", "0", "127.0.0.1"], ["ping", "-s", "70000", "x"],
                     ["ping", "--bogus", "127.0.0.1"], ["ping", "-i", "0.001", "127.0.0.1"]):
            r = harness.run(args)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr.startswith(b"netkit: ping: "), r.stderr)
        r = harness.run(["ping", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"usage: netkit ping", r.stdout)


class PingNamespace(unittest.TestCase):
    """Cases that need a private network: a namespace of our own, removed afterwards."""

    def setUp(self):
        self.ns = "nkping-" + uuid.uuid4().hex[:8]
        r = subprocess.run(["ip", "netns", "add", self.ns], capture_output=True)
        if r.returncode != 0:
            self.skipTest("cannot create a network namespace: %s" % r.stderr.decode().strip())
        self.addCleanup(subprocess.run, ["ip", "netns", "del", self.ns], capture_output=True)

    def in_ns(self, *cmd, timeout=20):
        return subprocess.run(["ip", "netns", "exec", self.ns] + list(cmd),
                              capture_output=True, timeout=timeout)

    def test_loopback_down_is_unreachable(self):
        # A fresh namespace has lo DOWN: every send fails with "Network is unreachable".
        r = self.in_ns(harness.NETKIT, "ping", "-c", "2", "-i", "0.2", "127.0.0.1")
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 1, out + r.stderr.decode())
        self.assertIn("icmp_seq=1: sendto: Network is unreachable", out)
        self.assertIn("icmp_seq=2: sendto: Network is unreachable", out)
        self.assertIn("2 packets transmitted, 0 received, +2 errors, 100% packet loss", out)

    def test_no_reply_times_out(self):
        # lo up, but the kernel ignores echo requests: each request times out after -W.
        self.assertEqual(self.in_ns("ip", "link", "set", "lo", "up").returncode, 0)
        r = self.in_ns("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1")
        if r.returncode != 0:
            self.skipTest("cannot set icmp_echo_ignore_all: %s" % r.stderr.decode())
        r = self.in_ns(harness.NETKIT, "ping", "-c", "2", "-i", "0.2", "-W", "0.3", "127.0.0.1")
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 1, out)
        self.assertIn("no reply for icmp_seq=1 within 0.300 s", out)
        self.assertIn("no reply for icmp_seq=2 within 0.300 s", out)
        self.assertIn("2 packets transmitted, 0 received, 100% packet loss", out)

    def test_datagram_socket(self):
        # The unprivileged ICMP socket, allowed for our group in this namespace only.
        self.assertEqual(self.in_ns("ip", "link", "set", "lo", "up").returncode, 0)
        gid = os.getgid()
        r = self.in_ns("sysctl", "-qw", "net.ipv4.ping_group_range=%d %d" % (gid, gid))
        if r.returncode != 0:
            self.skipTest("cannot set ping_group_range: %s" % r.stderr.decode())
        hosts = ["127.0.0.1"] + (["::1"] if have_ipv6_loopback() else [])
        for host in hosts:
            r = self.in_ns(harness.NETKIT, "ping", "--socket", "dgram", "-c", "2", "-i", "0.2",
                           host)
            out = r.stdout.decode()
            self.assertEqual(r.returncode, 0, out + r.stderr.decode())
            replies = [REPLY_RE.match(l) for l in out.splitlines() if l.startswith("64 bytes")]
            self.assertEqual(len(replies), 2, out)
            self.assertTrue(all(replies), out)
            self.assertIn("2 packets transmitted, 2 received, 0% packet loss", out)


if __name__ == "__main__":
    unittest.main()
