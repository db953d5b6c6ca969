"""Load, signals under load and a mixed soak against `netkit http serve`.

wrk drives sustained keep-alive load (skipped with a reason when wrk is not installed:
scripts/install-deps installs it). Every run is bounded in time; the server's memory and
descriptors are read from /proc.
"""
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

import harness
import httptest as H
from test_hardening import (MIB, asan_env, fd_count, fd_targets, make_root, rst_close, timed_get,
                            vm_rss, wait_until)

WRK = shutil.which("wrk")


def wrk_cmd(url, seconds, conns, threads=2):
    return [WRK, "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--timeout", "3s", url]


def wrk_errors(out):
    """(non-2xx/3xx count, {connect, read, write, timeout}) from wrk's summary."""
    non2xx = 0
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if m:
        non2xx = int(m.group(1))
    errs = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errs = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    return non2xx, errs


def requests_done(out):
    m = re.search(r"(\d+) requests in", out)
    return int(m.group(1)) if m else 0


@unittest.skipUnless(WRK, "wrk is not installed (scripts/install-deps installs it)")
class WrkTests(unittest.TestCase):
    def run_wrk(self, url, seconds, conns):
        proc = subprocess.Popen(wrk_cmd(url, seconds, conns), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def finish_wrk(self, proc, seconds):
        out, _ = proc.communicate(timeout=seconds + 15)
        return out.decode("utf-8", "replace")

    def test_memory_stable_under_load(self):
        root = make_root(self)
        srv = H.serve(self, root, "--access-log", "off", env=asan_env())
        pid = srv.proc.pid
        host, port = srv.host_port()
        url = "http://%s:%d/small.txt" % (host, port)
        proc = self.run_wrk(url, 10, 200)
        t0 = time.monotonic()
        time.sleep(1.0)
        rss1 = vm_rss(pid)
        time.sleep(max(0, t0 + 9.5 - time.monotonic()))
        rss_end = vm_rss(pid)
        out = self.finish_wrk(proc, 10)
        self.assertGreater(requests_done(out), 1000, out)
        non2xx, errs = wrk_errors(out)
        self.assertEqual(non2xx, 0, out)
        self.assertEqual(errs, {"connect": 0, "read": 0, "write": 0, "timeout": 0}, out)
        allowed = max(rss1 * 0.10, 2 * MIB)
        self.assertLessEqual(rss_end, rss1 + allowed,
                             "RSS grew from %.1f MiB (1s) to %.1f MiB (10s)"
                             % (rss1 / MIB, rss_end / MIB))

    def test_sighup_under_load_loses_nothing(self):
        root = make_root(self)
        srv = H.serve(self, root, "--access-log", "off", workers=2, env=asan_env())
        host, port = srv.host_port()
        proc = self.run_wrk("http://%s:%d/small.txt" % (host, port), 5, 50)
        t0 = time.monotonic()
        for at in (1.0, 2.0, 3.0):
            time.sleep(max(0, t0 + at - time.monotonic()))
            srv.proc.send_signal(signal.SIGHUP)
        out = self.finish_wrk(proc, 5)
        self.assertIsNone(srv.proc.poll(), "SIGHUP stopped the server")
        self.assertGreater(requests_done(out), 500, out)
        non2xx, errs = wrk_errors(out)
        self.assertEqual(non2xx, 0, out)
        self.assertEqual(errs, {"connect": 0, "read": 0, "write": 0, "timeout": 0}, out)
        timed_get(self, (host, port))

    def test_sigterm_under_load_exits_cleanly(self):
        root = make_root(self)
        srv = H.serve(self, root, "--access-log", "off", workers=2, env=asan_env())
        host, port = srv.host_port()
        proc = self.run_wrk("http://%s:%d/small.txt" % (host, port), 5, 50)
        time.sleep(2.0)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        try:
            rc = srv.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.fail("server still running 5s after SIGTERM under load")
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, "exit status after SIGTERM under load")
        out = self.finish_wrk(proc, 5)
        self.assertGreater(requests_done(out), 200, out)
        non2xx, errs = wrk_errors(out)
        self.assertEqual(non2xx, 0, out)
        # Read and write errors are not checked here: once the server is gone wrk keeps
        # reconnecting, and its refused non-blocking connects are counted as write and read
        # errors (tens of thousands), indistinguishable from requests lost in flight. That
        # graceful stop answers requests in flight is tested in test_http_conn; what is
        # checked here is a prompt exit 0 under load, no error statuses and nothing hanging.
        self.assertEqual(errs["timeout"], 0, out)


class SoakTests(unittest.TestCase):
    def test_mixed_soak(self):
        root = make_root(self)
        # --send-timeout 10: a soak client is a Python thread reading 10 MiB beside three others
        # on a loaded 2-core machine; with 3 s one of them, starved of the GIL, was cut
        # mid-body now and then (a truncated body, reported as a failure of the server).
        srv = H.serve(self, root, "--access-log", "off", "--header-timeout", "2",
                      "--idle-timeout", "2", "--send-timeout", "10", env=asan_env())
        pid = srv.proc.pid
        addr = srv.host_port()
        for _ in range(5):
            timed_get(self, addr, limit=2.0)
        rss0 = vm_rss(pid)
        fds0 = fd_count(pid)
        deadline = time.monotonic() + 20
        failures = []
        counts = {}
        lock = threading.Lock()

        def note(kind):
            with lock:
                counts[kind] = counts.get(kind, 0) + 1

        def valid(rng):
            target, status, size = rng.choice([("/small.txt", 200, 11), ("/", 200, None),
                                               ("/nope", 404, None),
                                               ("/big.bin", 200, 10 * MIB)])
            headers = []
            method = "HEAD" if rng.random() < 0.2 else "GET"
            # RFC 9110 section 14.2: range handling is defined for GET only.
            if rng.random() < 0.3 and status == 200 and method == "GET":
                headers.append(("Range", "bytes=0-99"))
                status, size = 206, (None if size is None else min(size, 100))
            conn = H.Conn(addr, timeout=20)
            try:
                resp = conn.request(H.req(method, target, headers), method=method, timeout=20)
                ok = resp.status == status and (method == "HEAD" or size is None or
                                                len(resp.body) == size)
                if not ok:
                    failures.append("%s %s %r -> %d (%d bytes)" % (method, target, headers,
                                                                   resp.status, len(resp.body)))
            except AssertionError as e:
                failures.append("%s %s: %s" % (method, target, e))
            finally:
                conn.close()
            note("valid")

        def garbage(rng):
            s = H.connect(addr)
            try:
                s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000))))
                s.settimeout(3)
                while s.recv(65536):
                    pass
            except OSError:
                pass
            finally:
                s.close()
            note("garbage")

        def partial(rng):
            s = H.connect(addr)
            full = H.get("/small.txt")
            s.sendall(full[: rng.randint(1, len(full) - 1)])
            time.sleep(rng.random() * 0.2)
            (rst_close if rng.random() < 0.5 else socket.socket.close)(s)
            note("partial")

        def disconnect(rng):
            s = H.connect(addr)
            s.sendall(H.get("/big.bin"))
            if rng.random() < 0.5:
                s.recv(rng.randint(1, 200000))
            (rst_close if rng.random() < 0.5 else socket.socket.close)(s)
            note("disconnect")

        def worker(seed):
            rng = random.Random(seed)
            actions = [valid, valid, garbage, partial, disconnect]
            while time.monotonic() < deadline:
                try:
                    rng.choice(actions)(rng)
                except OSError as e:
                    failures.append("client error: %r" % e)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(4)]
        for t in threads:
            t.start()
        peak = 0
        while time.monotonic() < deadline:
            peak = max(peak, vm_rss(pid))
            time.sleep(0.5)
        for t in threads:
            t.join(15)
        self.assertFalse(any(t.is_alive() for t in threads), "soak clients did not finish")
        self.assertIsNone(srv.proc.poll(), "server died during the soak")
        self.assertEqual(failures[:20], [], "%d failures; counts %r" % (len(failures), counts))
        self.assertGreater(counts.get("valid", 0), 50, counts)
        timed_get(self, addr)
        # Every connection is gone; besides them the file cache may keep one descriptor for
        # each of the other files the soak served (index.html, big.bin).
        socks0 = 1  # the listener
        self.assertTrue(wait_until(lambda: H.socket_fds(pid) == socks0 and
                                   fd_count(pid) <= fds0 + 2, 6),
                        "%d descriptors after the soak, %d before: %r"
                        % (fd_count(pid), fds0, fd_targets(pid)))
        rss = vm_rss(pid)
        self.assertLess(rss, rss0 + 16 * MIB, "RSS %.1f MiB after the soak (peak %.1f), %.1f "
                        "before" % (rss / MIB, peak / MIB, rss0 / MIB))


if __name__ == "__main__":
    unittest.main()
