"""What a client that stops reading can make the kernel hold for it.

With the kernel's send-buffer autotuning alone, each connection stalled on a large response
queues up to net.ipv4.tcp_wmem's maximum (4 MiB by default) on the server's side: 100 such
clients pin about 400 MiB of kernel memory until the send timeout. By default the server bounds
the unsent bytes per connection (--unsent-max, TCP_NOTSENT_LOWAT), which leaves the bytes in
flight to autotuning, so fast clients are not slowed down. bench/stalled.py measures it with
100 clients; here one is enough to see the bound.
"""
import os
import shutil
import tempfile
import time
import unittest

import harness

MIB = 1024 * 1024
SIZE = 10 * MIB


def server_queue(server_port, client_port):
    """tx_queue (bytes written, not yet acknowledged) of the server's side of one connection."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            next(f)
            for line in f:
                fields = line.split()
                local = int(fields[1].rsplit(":", 1)[1], 16)
                remote = int(fields[2].rsplit(":", 1)[1], 16)
                if local == server_port and remote == client_port:
                    return int(fields[4].split(":")[0], 16)
    return None


class UnsentBound(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root)
        self.body = os.urandom(SIZE)
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(self.body)

    def stalled_queue(self, extra):
        """Start a server, ask for the big file without reading for a while, return the
        largest queue seen on the server's side and the socket (still unread)."""
        srv = harness.start(self, ["http", "serve", self.root, "-l", "127.0.0.1:0", "-w", "1",
                                   "--access-log", "off"] + extra)
        host, port = srv.host_port()
        s = harness.connect((host, port), 10)
        self.addCleanup(s.close)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        client_port = s.getsockname()[1]
        peak = 0
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            q = server_queue(port, client_port)
            self.assertIsNotNone(q, "the server's side of the connection is gone")
            peak = max(peak, q)
            time.sleep(0.05)
        return peak, s

    def read_all(self, s):
        got = bytearray()
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        head, _, body = bytes(got).partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head[:100])
        self.assertEqual(len(body), SIZE)
        self.assertTrue(body == self.body, "the body arrived altered")

    def test_default_bounds_what_a_stalled_client_queues(self):
        peak, s = self.stalled_queue([])
        # 256 KiB unsent by default, plus what is in flight and a segment of slack; the
        # kernel's autotuning alone lets this reach about 4 MiB.
        self.assertLess(peak, 1 * MIB, "server-side queue of a stalled client: %d bytes" % peak)
        self.assertGreater(peak, 0)
        # The bound only paces the writes: once the client reads, the whole file arrives.
        self.read_all(s)

    def test_explicit_bound(self):
        peak, s = self.stalled_queue(["--unsent-max", "65536"])
        self.assertLess(peak, 512 * 1024, "server-side queue: %d bytes" % peak)
        self.read_all(s)


if __name__ == "__main__":
    unittest.main()
