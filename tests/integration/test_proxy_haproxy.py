"""http serve behind a real HAProxy (Debian's haproxy): two nodes on proxy+http:// listeners,
HAProxy sending PROXY v2 (`send-proxy-v2`) and checking them with `option httpchk` on
--health. The client connects from 127.0.0.2, HAProxy reaches the nodes from 127.0.0.1, so a
node's log shows 127.0.0.2 only if it took the client from the header. A node stopped with
SIGTERM and --health-grace fails its checks first, and no request through HAProxy fails.

Skipped, saying why, when haproxy is not installed (scripts/install-deps test installs it)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get_via(port, path="/a.txt", timeout=5.0):
    """GET through the balancer from 127.0.0.2: (status, body)."""
    data = b""
    with socket.socket() as s:
        s.settimeout(timeout)
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0, body


def wait_for(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


@unittest.skipUnless(os.access(HAPROXY, os.X_OK), "haproxy not installed (scripts/install-deps test)")
class BehindHaproxy(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="nk-haproxy-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.root = os.path.join(self.dir, "www")
        os.mkdir(self.root)
        with open(os.path.join(self.root, "a.txt"), "w") as f:
            f.write("hello\n")
        self.nodes, self.logs = [], []
        for i in range(2):
            log = os.path.join(self.dir, "node%d.log" % i)
            srv = harness.start(self, ["http", "serve", self.root, "-w", "1", "-l",
                                       "proxy+http://127.0.0.1:0", "--proxy-from", "127.0.0.1/32",
                                       "--access-log", log, "--health", "/health",
                                       "--health-grace", "3"])
            self.nodes.append(srv)
            self.logs.append(log)
        self.port = free_port()
        servers = "\n".join(
            "    server n%d 127.0.0.1:%d send-proxy-v2 check inter 200ms fall 1 rise 1" %
            (i, int(srv.url.rsplit(":", 1)[1].rstrip("/"))) for i, srv in enumerate(self.nodes))
        cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("""global
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 2
    option redispatch
    retry-on conn-failure empty-response response-timeout
frontend fe
    bind 127.0.0.1:%d
    default_backend be
backend be
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
%s
""" % (self.port, servers))
        self.haproxy = subprocess.Popen([HAPROXY, "-f", cfg, "-db"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        self.addCleanup(self.stop_haproxy)
        self.assertTrue(wait_for(lambda: self.try_get() == 200, 10), "haproxy does not serve")

    def stop_haproxy(self):
        if self.haproxy.poll() is None:
            self.haproxy.kill()
        self.haproxy.wait(timeout=10)
        self.haproxy.stderr.close()

    def try_get(self):
        try:
            return get_via(self.port)[0]
        except OSError:
            return 0

    def node_log(self, i):
        time.sleep(1.2)  # the access log is written at least once a second
        with open(self.logs[i]) as f:
            return f.read()

    def test_nodes_log_the_client_from_the_header(self):
        for _ in range(6):
            self.assertEqual(get_via(self.port), (200, b"hello\n"))
        for i in range(2):
            lines = [l for l in self.node_log(i).splitlines() if "/a.txt" in l]
            self.assertTrue(lines, "node %d served nothing" % i)
            for line in lines:
                self.assertTrue(line.startswith("127.0.0.2 "), line)
            # HAProxy's checks arrive too, as LOCAL headers: the socket's own address.
            self.assertIn("/health", self.node_log(i))

    def test_a_draining_node_is_taken_out_before_it_stops(self):
        node = self.nodes[0]
        node.proc.send_signal(signal.SIGTERM)  # --health-grace 3: 503 for 3 s, then the drain
        failures = 0
        end = time.monotonic() + 5
        while time.monotonic() < end:
            status, _ = get_via(self.port)
            failures += status != 200
            time.sleep(0.05)
        self.assertEqual(failures, 0)
        node.proc.wait(timeout=15)
        self.assertEqual(node.proc.returncode, 0)
        self.assertRegex(self.node_log(0), r'"GET /health HTTP/1\.[01]" 503')


if __name__ == "__main__":
    unittest.main()
