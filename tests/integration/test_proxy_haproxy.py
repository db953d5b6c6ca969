"""http serve behind a real HAProxy (Debian's haproxy), configured by contrib/haproxy.cfg (the file
docs/deploy.md quotes) with its placeholders filled in: three nodes on proxy+http:// listeners,
HAProxy sending PROXY v2 (send-proxy-v2), checking them with `option httpchk` on --health, and
retrying failed requests on another node (retry-on all-retryable-errors, option redispatch).

- Every node logs the client (127.0.0.2) from the header, not HAProxy (127.0.0.1).
- A node killed with SIGKILL under load (wrk through HAProxy): HAProxy marks it DOWN and not one
  request fails (wrk counts no socket error and no non-2xx answer).
- A rolling upgrade (SIGUSR2 to each node in turn, under wrk): each old server hands its
  listening socket to the new one and drains; HAProxy never sees a check fail, counts no
  connection or response error and retries nothing, and not one request fails.
- A node stopped with SIGTERM and --health-grace: its health check answers 503 while it still
  serves, HAProxy marks it DOWN before it stops, sends it nothing after that, and no request
  fails (wrk, and a sequential client whose requests are numbered).

Skipped, saying why, when haproxy or wrk is not installed (scripts/install-deps test)."""
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

import lbtest

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def show_stat(sock_path):
    """HAProxy's `show stat` on its stats socket: {server name: {column: value}} for the
    backend's servers."""
    data = b""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(sock_path)
        s.sendall(b"show stat\n")
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    lines = data.decode().splitlines()
    if not lines or not lines[0].startswith("# "):
        raise AssertionError("unexpected answer to show stat: %r" % data[:200])
    cols = lines[0][2:].split(",")
    out = {}
    for line in lines[1:]:
        row = dict(zip(cols, line.split(",")))
        if row.get("pxname") == "netkit" and row.get("svname", "").startswith("node"):
            out[row["svname"]] = row
    return out


@unittest.skipUnless(os.access(HAPROXY, os.X_OK), "haproxy not installed (scripts/install-deps test)")
class BehindHaproxy(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="nk-haproxy-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.nodes = lbtest.start_nodes(self, self.dir, 3, grace=4)
        self.stats = os.path.join(self.dir, "stats.sock")
        cfg = os.path.join(self.dir, "haproxy.cfg")
        for _ in range(5):
            self.port = lbtest.free_port()
            with open(cfg, "w") as f:
                f.write(lbtest.fill("haproxy.cfg", {
                    "LISTEN": "127.0.0.1:%d" % self.port, "STATS_SOCKET": self.stats,
                    "NODE1": self.nodes[0].addr, "NODE2": self.nodes[1].addr,
                    "NODE3": self.nodes[2].addr}))
            self.haproxy = lbtest.start_balancer(
                self, [HAPROXY, "-f", cfg, "-db"], self.port, os.path.join(self.dir, "haproxy.log"),
                lambda: lbtest.try_get(self.port) == 200)
            if self.haproxy:
                break
        self.assertIsNotNone(self.haproxy, "haproxy: no free port in 5 attempts")
        self.assertTrue(lbtest.wait_for(lambda: self.all_up(), 10),
                        "the nodes are not all UP: %r" % self.status())

    def status(self, name=None):
        st = show_stat(self.stats)
        return st[name]["status"] if name else {k: v["status"] for k, v in st.items()}

    def all_up(self):
        return sorted(self.status().values()) == ["UP", "UP", "UP"]

    def served(self):
        """2xx answers HAProxy counted per node."""
        return {k: int(v["hrsp_2xx"] or 0) for k, v in show_stat(self.stats).items()}

    def test_nodes_log_the_client_from_the_header(self):
        for i in range(9):
            self.assertEqual(lbtest.get_via(self.port, "/a.txt?n=%d" % i), (200, lbtest.PAGE))
        lbtest.assert_clients_logged(self, self.nodes, "/a.txt?n=")
        for i, node in enumerate(self.nodes):
            # HAProxy's checks arrive too, as LOCAL headers: the socket's own address.
            checks = [l for l in node.log_lines() if "/health" in l]
            self.assertTrue(checks, "node %d saw no health check" % (i + 1))
            self.assertTrue(all(l.startswith("127.0.0.1 ") for l in checks), checks[:3])

    @unittest.skipUnless(lbtest.WRK, "wrk not installed (scripts/install-deps test)")
    def test_a_killed_node_costs_no_request(self):
        wrk = lbtest.Wrk(self, "http://127.0.0.1:%d/a.txt" % self.port, seconds=4)
        # Node 1 carries its share of the load when it dies.
        self.assertTrue(lbtest.wait_for(lambda: self.served()["node1"] > 100, 3),
                        "node1 got no load: %r" % self.served())
        self.nodes[0].kill()
        before = self.served()
        self.assertTrue(lbtest.wait_for(lambda: self.status("node1").startswith("DOWN"), 5),
                        "HAProxy did not mark the killed node DOWN: %r" % self.status())
        r = wrk.result()
        self.assertGreater(r["requests"], 0, r["text"])
        self.assertEqual(r["socket_errors"], 0, r["text"])
        self.assertEqual(r["non2xx"], 0, r["text"])
        after = self.served()
        for name in ("node2", "node3"):
            self.assertGreater(after[name], before[name], "%s took no load after the kill" % name)
        # The kill did hit requests (refused connections until the checks saw it), and HAProxy
        # sent them elsewhere: the zero above is the retries' doing, not luck.
        row = show_stat(self.stats)["node1"]
        self.assertGreater(int(row["wretr"] or 0) + int(row["wredis"] or 0), 0, row)

    @unittest.skipUnless(lbtest.WRK, "wrk not installed (scripts/install-deps test)")
    def test_a_rolling_upgrade_costs_no_request(self):
        wrk = lbtest.Wrk(self, "http://127.0.0.1:%d/a.txt" % self.port, seconds=8, conns=8)
        self.assertTrue(lbtest.wait_for(lambda: self.served()["node1"] > 100, 3),
                        "node1 got no load: %r" % self.served())
        seen = set()
        for i, node in enumerate(self.nodes):
            name = "node%d" % (i + 1)
            old = node.srv.proc
            # The new server is the old one's child, in its process group: the group outlives
            # the old server, so the cleanup stops whatever is left of the node by group.
            self.addCleanup(lambda pgid=old.pid: lbtest.kill_group(pgid))
            old.send_signal(signal.SIGUSR2)
            self.assertEqual(old.wait(timeout=30), 0, "%s: the old server failed" % name)
            err = node.srv.read_stderr(1.0)
            self.assertIn("upgrade: the new server (pid", err)
            before = self.served()[name]
            self.assertTrue(lbtest.wait_for(
                lambda: seen.update(self.status().values()) or self.served()[name] > before + 50,
                5), "%s: the new server took no load: %r" % (name, self.served()))
        r = wrk.result()
        seen.update(self.status().values())
        self.assertEqual(seen, {"UP"}, "HAProxy saw a node not UP during the upgrade")
        self.assertGreater(r["requests"], 1000, r["text"])
        self.assertEqual(r["socket_errors"], 0, r["text"])
        self.assertEqual(r["non2xx"], 0, r["text"])
        for name, row in show_stat(self.stats).items():
            # Not a check failed, not a connection refused or reset, not a request retried:
            # the zero failures above are not the retries' doing.
            for col in ("chkfail", "econ", "eresp", "wretr", "wredis"):
                self.assertEqual(int(row[col] or 0), 0, "%s %s: %r" % (name, col, row))

    @unittest.skipUnless(lbtest.WRK, "wrk not installed (scripts/install-deps test)")
    def test_a_draining_node_is_taken_out_before_it_stops(self):
        node = self.nodes[0]
        wrk = lbtest.Wrk(self, "http://127.0.0.1:%d/a.txt" % self.port, seconds=7, conns=4)
        self.assertTrue(lbtest.wait_for(lambda: self.served()["node1"] > 100, 3),
                        "node1 got no load: %r" % self.served())
        node.srv.proc.send_signal(signal.SIGTERM)  # --health-grace 4: 503 for 4 s, then drains
        failures, seq, seq_at_down, alive_at_down = [], 0, None, None
        end = time.monotonic() + 9
        while time.monotonic() < end and (seq_at_down is None or node.srv.proc.poll() is None):
            if seq_at_down is None and self.status("node1").startswith("DOWN"):
                seq_at_down, alive_at_down = seq, node.srv.proc.poll() is None
            status, body = lbtest.get_via(self.port, "/a.txt?seq=%d" % seq)
            if (status, body) != (200, lbtest.PAGE):
                failures.append((seq, status))
            seq += 1
            time.sleep(0.01)
        self.assertEqual(node.srv.proc.wait(timeout=15), 0)
        r = wrk.result()
        self.assertEqual(failures, [])
        self.assertEqual(r["socket_errors"], 0, r["text"])
        self.assertEqual(r["non2xx"], 0, r["text"])
        self.assertIsNotNone(seq_at_down, "HAProxy never marked the draining node DOWN")
        self.assertTrue(alive_at_down, "the node stopped before HAProxy took it out")
        log = "\n".join(node.log_lines())
        self.assertRegex(log, r'"GET /health HTTP/1\.[01]" 503')
        # Once HAProxy said DOWN, the node got none of the numbered requests.
        late = [int(n) for n in re.findall(r"/a\.txt\?seq=(\d+) ", log) if int(n) >= seq_at_down]
        self.assertEqual(late, [], "requests sent to the node after HAProxy marked it DOWN")
        self.assertGreater(seq, seq_at_down, "no request was made after the node went DOWN")


if __name__ == "__main__":
    unittest.main()
