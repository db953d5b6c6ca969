"""http serve started by a service manager: listeners inherited through LISTEN_FDS/LISTEN_PID
(named by LISTEN_FDNAMES: http, https) and readiness and stopping said on NOTIFY_SOCKET
(READY=1, STOPPING=1), driven by systemd's own systemd-socket-activate.

Skipped, saying why, when systemd-socket-activate is not installed."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import harness

ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, tls=False, timeout=10.0):
    """GET /a.txt; the activator starts the server on the first connection."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the self-signed certificate; TLS is not the point here
        raw = ctx.wrap_socket(raw)
    with raw as s:
        s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    return data


@unittest.skipUnless(os.access(ACTIVATE, os.X_OK), "systemd-socket-activate not installed")
class SocketActivation(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="nk-activate-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.mkdir(os.path.join(self.dir, "www"))
        with open(os.path.join(self.dir, "www", "a.txt"), "w") as f:
            f.write("hello\n")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(self.notify.close)
        self.notify_name = "@nk-test-notify-%d-%d" % (os.getpid(), id(self))
        self.notify.bind("\0" + self.notify_name[1:])
        self.notify.settimeout(10)

    def activate(self, ports, names, *args):
        cmd = [ACTIVATE]
        for p in ports:
            cmd += ["-l", "127.0.0.1:%d" % p]
        cmd += ["--fdname=" + ":".join(names), "-E", "NOTIFY_SOCKET=" + self.notify_name,
                harness.NETKIT, "http", "serve", os.path.join(self.dir, "www"),
                "--access-log", "off"] + list(args)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def stop():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            proc.stderr.close()
        self.addCleanup(stop)
        return proc

    def test_two_named_sockets_and_notify(self):
        http_port, https_port = free_port(), free_port()
        proc = self.activate((http_port, https_port), ("http", "https"), "-w", "2",
                             "--tls-self-signed")
        deadline = time.monotonic() + 10
        while True:  # the activator listens as soon as it runs
            try:
                out = get(http_port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.assertTrue(out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"hello\n"), out[:200])
        self.assertEqual(self.notify.recv(4096), b"READY=1")
        out = get(https_port, tls=True)
        self.assertTrue(out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"hello\n"), out[:200])
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.notify.recv(4096), b"STOPPING=1")
        self.assertEqual(proc.wait(timeout=15), 0)
        err = proc.stderr.read().decode()
        self.assertIn("listening on http://127.0.0.1:%d" % http_port, err)
        self.assertIn("listening on https://127.0.0.1:%d" % https_port, err)

    def test_not_for_us_is_ignored(self):
        """LISTEN_FDS meant for another process (LISTEN_PID) is not taken: the default
        listener is used (here an explicit one)."""
        port = free_port()
        env = dict(os.environ, LISTEN_PID="1", LISTEN_FDS="1")
        srv = harness.start(self, ["http", "serve", os.path.join(self.dir, "www"), "-w", "1",
                                   "-l", "127.0.0.1:%d" % port, "--access-log", "off"], env=env)
        self.assertIn("127.0.0.1:%d" % port, srv.url)
        self.assertTrue(get(port).endswith(b"hello\n"))


if __name__ == "__main__":
    unittest.main()
