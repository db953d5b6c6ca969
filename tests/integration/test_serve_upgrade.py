"""http serve's zero-downtime upgrade (SIGUSR2): the server starts the binary found now at the
path it was started from, with its command line, on the same listening sockets; once the new
one accepts, the old one drains and exits.

Checked as a client sees it: under load no request fails and no connection is refused or reset
(a reset of connections queued on a closed listener would show as failures of the
new-connection clients), the health check never says 503 on the way, the new binary is the file
now at the path, a unix socket survives the handover and is removed by the last server, and a
new binary that cannot start leaves the old server serving."""
import http.client
import os
import shutil
import signal
import socket
import ssl
import stat
import tempfile
import threading
import time
import unittest

import harness

BODY = b"upgrade me\n" * 100


def proc_state(pid):
    """'Z' for a zombie, None once gone, else the state letter of /proc/PID/stat."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def socket_descriptors(pid):
    """Descriptors of pid that are sockets (each counted, not each socket)."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except OSError:
            pass
    return n


def wait_gone(pid, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc_state(pid) in (None, "Z"):
            return True
        time.sleep(0.05)
    return False


def get_once(addr, path="/a.txt"):
    """One request on a new connection: (status, body)."""
    conn = http.client.HTTPConnection(*addr, timeout=10) if isinstance(addr, tuple) else addr()
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


class Load:
    """Clients until stop(): new-connection ones must never fail; keep-alive ones may find an
    idle connection closed by a draining server (then they retry on a new one, as every HTTP
    client does) but must never get a wrong answer. Bounded by max_seconds."""

    def __init__(self, connect, fresh=4, keepalive=2, health=None, max_seconds=40):
        self.connect = connect
        self.health = health
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.health_codes = set()
        self.deadline = time.monotonic() + max_seconds
        self.threads = [threading.Thread(target=self.fresh) for _ in range(fresh)]
        self.threads += [threading.Thread(target=self.keepalive) for _ in range(keepalive)]
        if health:
            self.threads.append(threading.Thread(target=self.check_health))
        for t in self.threads:
            t.start()

    def running(self):
        return not self.done.is_set() and time.monotonic() < self.deadline

    def record(self, status, body, how):
        with self.lock:
            if status == 200 and body == BODY:
                self.ok += 1
            else:
                self.failures.append("%s: status %s, %d bytes" % (how, status, len(body)))

    def fresh(self):
        while self.running():
            try:
                status, body = get_once(self.connect)
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append("new connection: %r" % e)
                continue
            self.record(status, body, "new connection")

    def keepalive(self):
        conn = None
        while self.running():
            reused = conn is not None
            if conn is None:
                conn = self.connect()
            try:
                conn.request("GET", "/a.txt")
                r = conn.getresponse()
                body = r.read()
                self.record(r.status, body, "keep-alive")
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as e:
                conn.close()
                conn = None
                if not reused:
                    with self.lock:
                        self.failures.append("keep-alive, first request: %r" % e)
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = None
                with self.lock:
                    self.failures.append("keep-alive: %r" % e)
        if conn:
            conn.close()

    def check_health(self):
        while self.running():
            try:
                status, _ = get_once(self.connect, "/health")
            except (OSError, http.client.HTTPException) as e:
                status = repr(e)
            with self.lock:
                self.health_codes.add(status)
            time.sleep(0.01)

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(30)


class Upgrade(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="nk-upgrade-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.www = os.path.join(self.dir, "www")
        os.mkdir(self.www)
        with open(os.path.join(self.www, "a.txt"), "wb") as f:
            f.write(BODY)
        # The server runs from a path of its own, so that the test can put another file there.
        os.mkdir(os.path.join(self.dir, "bin"))
        self.bin = os.path.join(self.dir, "bin", "netkit")
        shutil.copy2(harness.NETKIT, self.bin)
        self.marker = os.path.join(self.dir, "started")
        self.new_pids = []

    def replace_binary(self, script):
        """Put a new file at the binary's path the way installers do (write, rename)."""
        tmp = self.bin + ".new"
        with open(tmp, "w") as f:
            f.write(script)
        os.chmod(tmp, stat.S_IRWXU)
        os.rename(tmp, self.bin)

    def new_binary_that_serves(self):
        # The new "binary" notes its pid (the process that then becomes netkit) and runs the
        # real one: the test knows the file at the path is what started.
        self.replace_binary("#!/bin/sh\necho $$ > '%s'\nexec '%s' \"$@\"\n"
                            % (self.marker, harness.NETKIT))

    def start(self, *args):
        server = harness.start(self, ["http", "serve", self.www, "--access-log", "off"]
                               + list(args), program=self.bin)
        return server

    def forget_new(self, pid):
        """The new server is not our child: stop it by pid at the end, whatever happened."""
        self.new_pids.append(pid)

        def stop():
            if proc_state(pid) not in (None, "Z"):
                os.kill(pid, signal.SIGKILL)
                wait_gone(pid, 10)
        self.addCleanup(stop)

    def upgrade(self, server, timeout=30):
        """SIGUSR2, then wait for the old server to exit; returns the new server's pid."""
        os.kill(server.proc.pid, signal.SIGUSR2)
        try:
            code = server.proc.wait(timeout)
        except Exception:
            self.fail("the old server did not exit after the upgrade; stderr: %r"
                      % server.read_stderr(0.5))
        self.assertEqual(code, 0)
        # The pipe is shared with the new server, which keeps it open: read what is there.
        err = server.read_stderr(1.0)
        self.assertIn("upgrade: the new server (pid", err)
        pid = int(err.split("upgrade: the new server (pid ", 1)[1].split(")", 1)[0])
        self.forget_new(pid)
        with open(self.marker) as f:
            self.assertEqual(int(f.read()), pid, "the new server is not the file at the path")
        return pid, err

    def usr2_fails(self, server):
        """SIGUSR2 with a new binary that cannot serve: the old server says so."""
        os.kill(server.proc.pid, signal.SIGUSR2)
        err = ""
        end = time.monotonic() + 20
        while "upgrade failed" not in err and time.monotonic() < end:
            err += server.read_stderr(0.5)
        self.assertIn("upgrade failed", err)
        return err

    def stop_new(self, pid):
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(wait_gone(pid, 20), "the new server did not stop on SIGTERM")

    def run_under_load(self, workers, extra=()):
        server = self.start("-l", "127.0.0.1:0", "-w", str(workers), *extra)
        addr = server.host_port()
        health = "--health" in extra
        load = Load(lambda: http.client.HTTPConnection(*addr, timeout=10), health=health)
        try:
            time.sleep(0.5)
            self.new_binary_that_serves()
            pid, err = self.upgrade(server)
            time.sleep(0.5)  # the new server alone, still under load
        finally:
            load.stop()
        self.assertEqual(load.failures, [], "requests failed during the upgrade")
        self.assertGreater(load.ok, 50)
        if health:
            self.assertEqual(load.health_codes, {200},
                             "the health check failed during the upgrade")
        status, body = get_once(addr)
        self.assertEqual((status, body), (200, BODY))
        self.stop_new(pid)
        with self.assertRaises(OSError):
            get_once(addr)  # nobody is left on the port
        return err

    def test_two_workers_under_load(self):
        self.run_under_load(2)

    def test_one_worker_under_load(self):
        self.run_under_load(1)

    def test_health_stays_up_with_grace(self):
        # --health-grace is for a node going away; an upgraded node stays, so its old workers
        # drain at once and the check never says 503.
        self.run_under_load(2, ("--health", "/health", "--health-grace", "3"))

    def test_unix_socket_handed_over_and_removed_by_the_last(self):
        path = os.path.join(self.dir, "s.sock")
        server = self.start("-l", "unix:" + path, "-w", "2")
        self.new_binary_that_serves()
        pid, _ = self.upgrade(server)
        self.assertTrue(os.path.exists(path), "the old server removed the path it handed over")
        status, body = get_once(lambda: UnixHTTPConnection(path))
        self.assertEqual((status, body), (200, BODY))
        self.stop_new(pid)
        self.assertFalse(os.path.exists(path), "the last server left its socket path behind")

    def test_tls_listener_stays_tls(self):
        # The handover names each socket's scheme: an https:// listener is TLS (with h2 by
        # ALPN) in the new server too. Its self-signed certificate is made anew.
        server = self.start("-l", "https://127.0.0.1:0", "-w", "2", "--tls-self-signed")
        host, port = server.host_port()
        self.new_binary_that_serves()
        pid, _ = self.upgrade(server)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # a new self-signed certificate: TLS is what is checked
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with ctx.wrap_socket(socket.create_connection((host, port), timeout=10)) as s:
            self.assertEqual(s.selected_alpn_protocol(), "h2")
        ctx.set_alpn_protocols(["http/1.1"])
        conn = http.client.HTTPSConnection(host, port, timeout=10, context=ctx)
        conn.request("GET", "/a.txt")
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, BODY))
        conn.close()
        self.stop_new(pid)

    def test_twice_in_a_row(self):
        server = self.start("-l", "127.0.0.1:0", "-w", "2")
        addr = server.host_port()
        self.new_binary_that_serves()
        pid, _ = self.upgrade(server)
        # The second upgrade is of a server that was itself started by one (from the real
        # binary, which the script ran: that is the path it knows now). It writes to the same
        # stderr as the first.
        os.kill(pid, signal.SIGUSR2)
        err = ""
        end = time.monotonic() + 30
        while time.monotonic() < end and proc_state(pid) not in (None, "Z"):
            err += server.read_stderr(0.1)
        self.assertIn(proc_state(pid), (None, "Z"), "the second old server did not exit")
        err += server.read_stderr(0.5)
        self.assertIn("upgrade: the new server (pid", err)
        pid2 = int(err.split("upgrade: the new server (pid ", 1)[1].split(")", 1)[0])
        self.forget_new(pid2)
        self.assertNotEqual(pid2, pid)
        # One descriptor per listener (one per worker) in the supervisor, whatever the number
        # of upgrades before: nothing leaks across the exec.
        self.assertEqual(socket_descriptors(pid2), 2)
        self.assertEqual(get_once(addr), (200, BODY))
        self.stop_new(pid2)

    def test_new_binary_that_fails_leaves_the_old_serving(self):
        server = self.start("-l", "127.0.0.1:0", "-w", "2")
        addr = server.host_port()
        self.replace_binary("#!/bin/sh\necho broken >&2\nexit 3\n")
        err = self.usr2_fails(server)
        self.assertIsNone(server.proc.poll(), "the old server stopped")
        self.assertEqual(get_once(addr), (200, BODY))
        self.assertEqual(server.stop(), 0)

    def test_new_binary_missing(self):
        server = self.start("-l", "127.0.0.1:0", "-w", "1")
        addr = server.host_port()
        os.unlink(self.bin)
        err = self.usr2_fails(server)
        self.assertIn("cannot start the new binary", err)
        self.assertEqual(get_once(addr), (200, BODY))
        self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
