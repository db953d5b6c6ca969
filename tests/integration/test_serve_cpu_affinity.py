"""http serve --cpu-affinity: worker N is pinned to the N-th CPU the server may use, and a new
connection goes to the worker on the CPU that received it.

On loopback a connection's SYN is handled on the CPU of the process that calls connect(), so
the test pins itself to each CPU in turn and reads, from -v's "[PEER #W.N]" tags, which worker
served: all connections made from CPU c must reach the worker pinned to c. Without the steering
the kernel's hash spreads them over both workers, so the test can fail.

Skipped, saying why, with fewer than two CPUs."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import unittest

import harness

TAG = re.compile(r"^\[127\.0\.0\.1:\d+ #(\d+)\.\d+\] GET /a\.txt")


def children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(p) for p in f.read().split()]


def allowed_cpus(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    return None


@unittest.skipUnless(len(os.sched_getaffinity(0)) >= 2, "needs two CPUs")
class CpuAffinity(unittest.TestCase):
    def setUp(self):
        self.cpus = sorted(os.sched_getaffinity(0))[:2]
        self.addCleanup(os.sched_setaffinity, 0, os.sched_getaffinity(0))
        self.dir = tempfile.mkdtemp(prefix="nk-affinity-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        with open(os.path.join(self.dir, "a.txt"), "w") as f:
            f.write("a\n")

    def start(self, *extra):
        # The server may use exactly the two CPUs the test uses.
        cpus = set(self.cpus)
        return harness.start(self, ["http", "serve", self.dir, "-l", "127.0.0.1:0", "-w", "2",
                                    "-v", "--access-log", "off"] + list(extra),
                             preexec_fn=lambda: os.sched_setaffinity(0, cpus))

    def workers_by_request(self, server, cpu, count=12):
        """Pinned to cpu, make count connections with one request each: the workers (1-based)
        -v names for them."""
        os.sched_setaffinity(0, {cpu})
        addr = server.host_port()
        for _ in range(count):
            with socket.create_connection(addr, timeout=5) as s:
                s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while s.recv(65536):
                    pass
        text = ""
        seen = []
        for _ in range(50):
            text += server.read_stderr(0.2)
            seen = [int(m.group(1)) for m in map(TAG.match, text.splitlines()) if m]
            if len(seen) >= count:
                break
        self.assertEqual(len(seen), count, "-v printed %r" % text)
        return seen

    def test_workers_pinned_and_connections_steered(self):
        server = self.start("--cpu-affinity")
        pids = children(server.proc.pid)
        self.assertEqual(len(pids), 2)
        pinned = sorted(allowed_cpus(p) for p in pids)
        self.assertEqual(pinned, sorted(str(c) for c in self.cpus))
        for index, cpu in enumerate(self.cpus):
            served = self.workers_by_request(server, cpu)
            self.assertEqual(set(served), {index + 1},
                             "connections from CPU %d went to workers %r" % (cpu, served))

    def test_more_workers_than_cpus_refused(self):
        cpus = set(self.cpus)
        p = subprocess.run([harness.NETKIT, "http", "serve", self.dir, "-l", "127.0.0.1:0",
                            "-w", "3", "--cpu-affinity"], capture_output=True, timeout=20,
                           preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(b"at most one worker per CPU", p.stderr)


if __name__ == "__main__":
    unittest.main()
