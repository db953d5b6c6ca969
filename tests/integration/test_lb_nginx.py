"""http serve behind a real nginx (Debian's, with its stream module), configured by
contrib/nginx-lb.conf (the stream {} block docs/deploy.md quotes) with its placeholders filled
in: three nodes on proxy+http:// listeners, nginx opening each connection to them with a PROXY
v1 header (proxy_protocol on).

- Every node logs the client (127.0.0.2) from the header, not nginx (127.0.0.1).
- A node killed with SIGKILL: nginx's connect to it is refused, the connection goes to another
  node (proxy_next_upstream), and no request made after the kill fails.

Skipped, saying why, when nginx or its stream module is not installed (scripts/install-deps
test installs nginx-light and libnginx-mod-stream)."""
import os
import shutil
import subprocess
import tempfile
import unittest

import lbtest

NGINX = "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else shutil.which("nginx")
STREAM_SO = "/usr/lib/nginx/modules/ngx_stream_module.so"


def stream_module():
    """The load_module line nginx needs for stream {} ("" when built in), or None without it."""
    if os.path.exists(STREAM_SO):
        return "load_module %s;" % STREAM_SO
    built = subprocess.run([NGINX, "-V"], capture_output=True, text=True).stderr
    if "--with-stream " in built + " ":
        return ""
    return None


MAIN_CONF = """# the test's own main context: the tested part is the included block from contrib/
{load}
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
include {d}/nginx-lb.conf;
"""


@unittest.skipUnless(NGINX, "nginx is not installed (Debian: nginx-light)")
class BehindNginx(unittest.TestCase):
    def setUp(self):
        load = stream_module()
        if load is None:
            self.skipTest("nginx has no stream module (Debian: libnginx-mod-stream)")
        self.dir = tempfile.mkdtemp(prefix="nk-nginx-lb-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.nodes = lbtest.start_nodes(self, self.dir, 3)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(MAIN_CONF.format(load=load, d=self.dir))
        self.nginx = None
        for _ in range(5):
            self.port = lbtest.free_port()
            with open(os.path.join(self.dir, "nginx-lb.conf"), "w") as f:
                f.write(lbtest.fill("nginx-lb.conf", {
                    "LISTEN": "127.0.0.1:%d" % self.port, "NODE1": self.nodes[0].addr,
                    "NODE2": self.nodes[1].addr, "NODE3": self.nodes[2].addr}))
            self.nginx = lbtest.start_balancer(
                self, [NGINX, "-p", self.dir, "-e", self.dir + "/error.log", "-c", conf],
                self.port, os.path.join(self.dir, "error.log"),
                lambda: lbtest.try_get(self.port) == 200)
            if self.nginx:
                break
        self.assertIsNotNone(self.nginx, "nginx: no free port in 5 attempts")

    def test_nodes_log_the_client_from_the_header(self):
        for i in range(9):
            self.assertEqual(lbtest.get_via(self.port, "/a.txt?n=%d" % i), (200, lbtest.PAGE))
        lbtest.assert_clients_logged(self, self.nodes, "/a.txt?n=")

    def test_a_killed_node_is_skipped(self):
        self.nodes[0].kill()
        for i in range(12):
            self.assertEqual(lbtest.get_via(self.port, "/a.txt?k=%d" % i), (200, lbtest.PAGE),
                             "request %d after the kill" % i)
        lbtest.assert_clients_logged(self, self.nodes[1:], "/a.txt?k=")
        # nginx did try the dead node, and moved on.
        with open(os.path.join(self.dir, "error.log"), errors="replace") as f:
            self.assertIn("Connection refused", f.read())


if __name__ == "__main__":
    unittest.main()
