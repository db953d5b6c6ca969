"""`netkit sniff` on loopback: one TCP connection of our own decoded with its handshake and
close annotations, the BPF filter keeping other traffic out, -c, pcap files read back by
tcpdump, and the errors."""
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_conversation(port, payload=b"hello sniff\n"):
    """One connection to a server of ours on port: connect, send, close both ends."""
    with socket.socket() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen(1)
        cli = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn, _ = srv.accept()
        conn.settimeout(5)
        cli.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += conn.recv(100)
        cli.close()
        assert conn.recv(10) == b""  # the client's FIN
        conn.close()


def read_until(proc, pattern, timeout=10):
    """Read proc's stdout until a line matches pattern; returns everything read."""
    out = b""
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    while not re.search(pattern, out.decode("utf-8", "replace")):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no %r within %ss; output: %s" % (pattern, timeout, out))
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    return out.decode("utf-8", "replace")


class Sniff(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nksniff-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def sniff(self, *args):
        return harness.start(self, ["sniff", "-i", "lo"] + list(args), stdout=subprocess.PIPE)

    def test_handshake_close_and_filter(self):
        port = free_port()
        pcap = os.path.join(self.tmp, "x.pcap")
        s = self.sniff("--handshake", "-w", pcap, "tcp", "port", str(port))
        self.assertEqual(s.urls, ["lo"])
        # UDP to the same port must be filtered out by "tcp port P".
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(b"udp-not-shown", ("127.0.0.1", port))
        tcp_conversation(port)
        out = read_until(s.proc, r"close 4/4 \(ACK\)")
        self.assertEqual(s.stop(signal.SIGINT), 0)
        rest = s.proc.stdout.read().decode()
        out += rest
        lines = out.splitlines()
        self.assertNotIn("udp-not-shown", out)
        self.assertNotIn("UDP", out)
        syn = [l for l in lines if "handshake 1/3 (SYN)" in l]
        synack = [l for l in lines if "handshake 2/3 (SYN-ACK)" in l]
        ack = [l for l in lines if "handshake 3/3 (ACK)" in l]
        self.assertEqual((len(syn), len(synack), len(ack)), (1, 1, 1), out)
        self.assertIn("[S] seq 0 ", syn[0])
        self.assertIn("> %d [S]" % port, syn[0])
        self.assertIn("[S.] seq 0 ack 1 ", synack[0])
        self.assertRegex(synack[0], r"\+\d+\.\d{3} ms$")
        self.assertIn("[.] seq 1 ack 1 ", ack[0])
        self.assertIn('"hello sniff\\n"', out)
        self.assertRegex(out, r"\[P\.\] seq 1 ack 1 win \d+ len 12 \"hello sniff")
        # Link-layer addresses only with -e (as tcpdump): loopback's are all zero anyway.
        self.assertNotIn("00:00:00:00:00:00", out)
        self.assertRegex(syn[0], r"^\d\d:\d\d:\d\d\.\d{6} IPv4 127.0.0.1 > 127.0.0.1 ttl 64")
        # The close: FIN, then either ACK + FIN or one FIN+ACK, then the last ACK.
        self.assertEqual(len([l for l in lines if "close 1/4 (FIN)" in l]), 1, out)
        three = [l for l in lines if "close 2/4+3/4 (FIN+ACK)" in l]
        if not three:
            self.assertEqual(len([l for l in lines if "close 2/4 (ACK)" in l]), 1, out)
            self.assertEqual(len([l for l in lines if "close 3/4 (FIN)" in l]), 1, out)
        self.assertEqual(len([l for l in lines if "close 4/4 (ACK)" in l]), 1, out)
        # Each packet once on lo (the outgoing copy is skipped), no other connection shown.
        packets = [l for l in lines if " TCP " in l]
        self.assertEqual(len(packets), len(set(packets)), out)
        err = s.proc.stderr.read().decode()
        self.assertIn("%d packets captured, 0 dropped by kernel\n" % len(packets), err)

        if not shutil.which("tcpdump"):
            self.skipTest("tcpdump is not installed (scripts/install-deps installs it)")
        r = subprocess.run(["tcpdump", "-nr", pcap], capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"link-type EN10MB", r.stderr)
        dump = r.stdout.decode().splitlines()
        self.assertEqual(len(dump), len(packets), r.stdout)
        self.assertIn("127.0.0.1.%d > 127.0.0.1." % port, "\n".join(dump))
        self.assertIn("Flags [S.]", "\n".join(dump))
        self.assertIn("Flags [P.]", "\n".join(dump))

    def test_count_stops(self):
        port = free_port()
        s = self.sniff("-c", "3", "--handshake", "tcp", "port", str(port))
        tcp_conversation(port)
        s.proc.wait(10)
        self.assertEqual(s.proc.returncode, 0)
        out = s.proc.stdout.read().decode().splitlines()
        self.assertEqual(len(out), 3, out)
        self.assertIn("handshake 1/3 (SYN)", out[0])
        self.assertIn("handshake 2/3 (SYN-ACK)", out[1])
        self.assertIn("handshake 3/3 (ACK)", out[2])
        self.assertIn("3 packets captured, 0 dropped by kernel\n", s.proc.stderr.read().decode())

    @unittest.skipUnless(os.geteuid() == 0, "capturing on lo needs root")
    def test_one_packet_singular_and_link_addresses_with_e(self):
        port = free_port()
        s = self.sniff("-e", "-c", "1", "udp", "port", str(port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(b"one", ("127.0.0.1", port))
        s.proc.wait(10)
        self.assertEqual(s.proc.returncode, 0)
        out = s.proc.stdout.read().decode()
        self.assertRegex(out, r"^\d\d:\d\d:\d\d\.\d{6} 00:00:00:00:00:00 > 00:00:00:00:00:00, "
                              r"IPv4 127.0.0.1 > 127.0.0.1 ttl 64 len 31, UDP \d+ > %d len 3" % port)
        err = s.proc.stderr.read().decode()
        self.assertRegex(err, r"(^|\n)1 packet captured, 0 dropped by kernel\n")

    @unittest.skipUnless(os.geteuid() == 0, "capturing on lo needs root")
    def test_interrupt_on_terminal_ends_the_line(self):
        # A terminal shows "^C" where the cursor is: the summary must start a new line.
        import pty
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        proc = subprocess.Popen([harness.NETKIT, "sniff", "-i", "lo", "udp", "port", "9"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=slave)
        os.close(slave)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        got = b""
        sent = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                got += chunk
            # Once, as one Ctrl-C: a second one while the summary is being written (the
            # signal is no longer watched then) would kill the process, as it should.
            if b"listening on lo" in got and not sent:
                proc.send_signal(signal.SIGINT)
                sent = True
            if proc.poll() is not None and b"captured" in got:
                break
        self.assertEqual(proc.wait(5), 0)
        self.assertIn(b"listening on lo\r\n\r\n0 packets captured, 0 dropped by kernel\r\n", got)

    def test_verbose_layers_and_udp(self):
        port = free_port()
        s = self.sniff("-v", "--hex", "udp", "and", "dst", "port", str(port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(b"layered", ("127.0.0.1", port))
        out = read_until(s.proc, r"application:[\s\S]*0000 ")
        self.assertEqual(s.stop(signal.SIGINT), 0)
        for block in ("  link:\n", "  network:\n", "  transport:\n", "  application:\n"):
            self.assertIn(block, out)
        self.assertRegex(out, r"    udp sport \d+ dport %d length 15" % port)
        self.assertIn('7 bytes "layered"', out)
        self.assertIn("ipv4 header 20", out)

    def test_bad_filter_and_iface(self):
        r = harness.run(["sniff", "tcp", "port", "99999"])
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"netkit: sniff: bad filter at '99999'", r.stderr)
        r = harness.run(["sniff", "-i", "no-such-if0", "tcp"])
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"no interface 'no-such-if0'", r.stderr)
        r = harness.run(["sniff", "--help"])
        self.assertEqual(r.returncode, 0)

    def test_unprivileged(self):
        if os.geteuid() != 0:
            r = harness.run(["sniff", "-i", "lo", "-c", "1"])
        else:
            def drop():
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            # The checkout may sit where other users cannot enter (a 0700 home or mktemp -d
            # directory): run a copy from a directory anybody can search.
            d = tempfile.mkdtemp(prefix="nk-unpriv-")
            self.addCleanup(shutil.rmtree, d, True)
            os.chmod(d, 0o755)
            binary = os.path.join(d, "netkit")
            shutil.copy(harness.NETKIT, binary)
            os.chmod(binary, 0o755)
            r = subprocess.run([binary, "sniff", "-i", "lo", "-c", "1"], cwd=d,
                               capture_output=True, timeout=10, preexec_fn=drop)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"netkit: sniff: capturing needs root or CAP_NET_RAW", r.stderr)


if __name__ == "__main__":
    unittest.main()
