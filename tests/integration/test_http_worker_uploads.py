"""A worker killed in the middle of an upload: its temporary file goes when it is restarted.

Uploads stream into ".netkit-upload-PID-XXXXXX" files. A worker that dies (SIGKILL, a crash)
cannot remove its own; the supervisor removes the dead worker's (and only those: the other
workers' uploads in progress stay, and nothing but regular files is touched) before it starts
the replacement. With -w 1 there is no supervisor (the process is the worker), so these tests
run two workers.
"""
import glob
import os
import shutil
import signal
import tempfile
import time
import unittest

import harness

TMP_PREFIX = ".netkit-upload-"


def children(pid):
    out = []
    for path in glob.glob("/proc/%d/task/*/children" % pid):
        try:
            with open(path) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return sorted(set(out))


def open_temp_files(pid, root):
    """The upload temporary files below root that process pid holds open."""
    found = []
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith(root + "/") and os.path.basename(target).startswith(TMP_PREFIX):
            found.append(target)
    return found


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class WorkerKilledDuringUpload(unittest.TestCase):
    def setUp(self):
        self.root = os.path.realpath(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.root, True)
        self.outside = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.outside, True)
        self.srv = harness.start(self, ["http", "serve", self.root, "-l", "127.0.0.1:0",
                                        "-w", "2", "--upload", "--upload-anonymous",
                                        "--access-log", "off"])
        self.host, self.port = self.srv.host_port()
        self.workers = wait_for(lambda: len(children(self.srv.proc.pid)) == 2
                                and children(self.srv.proc.pid), 5, "two workers")

    def begin_put(self, name):
        """Start a PUT whose body never completes; returns (socket, worker pid, temp path)."""
        # Taken before the request is sent: a worker can open the temporary file before
        # sendall returns, and a snapshot taken after would count it as already there.
        before = {p for w in self.workers for p in open_temp_files(w, self.root)}
        s = harness.connect((self.host, self.port), 5)
        self.addCleanup(s.close)
        s.sendall(b"PUT /%s HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n"
                  % name.encode() + b"x" * 65536)

        def holder():
            for w in children(self.srv.proc.pid):
                for p in open_temp_files(w, self.root):
                    if p not in before:
                        return w, p
            return None
        worker, path = wait_for(holder, 5, "the temporary file of PUT /" + name)
        return s, worker, path

    def put(self, name, body):
        s = harness.connect((self.host, self.port), 5)
        with s:
            s.sendall(b"PUT /%s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n" % (name.encode(), len(body)) + body)
            got = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        return got

    def test_dead_workers_temporary_file_is_removed_at_restart(self):
        sock, worker, path = self.begin_put("big.bin")
        # Decoys with the dead worker's name pattern that are not regular files: untouched.
        victim = os.path.join(self.outside, "victim")
        with open(victim, "w") as f:
            f.write("keep me\n")
        link = os.path.join(self.root, "%s%d-decoy1" % (TMP_PREFIX, worker))
        os.symlink(victim, link)
        subdir = os.path.join(self.root, "%s%d-decoy2" % (TMP_PREFIX, worker))
        os.mkdir(subdir)
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: worker not in children(self.srv.proc.pid)
                 and len(children(self.srv.proc.pid)) == 2, 5, "the worker's replacement")
        wait_for(lambda: not os.path.exists(path), 5, "removal of " + path)
        self.assertTrue(os.path.islink(link), "a symlink was removed")
        self.assertTrue(os.path.isdir(subdir), "a directory was removed")
        with open(victim) as f:
            self.assertEqual(f.read(), "keep me\n")
        self.assertIsNone(self.srv.proc.poll())
        # A new upload works, and leaves no temporary file behind.
        got = self.put("after.txt", b"fresh\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 201 "), got[:200])
        with open(os.path.join(self.root, "after.txt"), "rb") as f:
            self.assertEqual(f.read(), b"fresh\n")
        left = [n for n in os.listdir(self.root) if n.startswith(TMP_PREFIX)
                and os.path.isfile(os.path.join(self.root, n))
                and not os.path.islink(os.path.join(self.root, n))]
        self.assertEqual(left, [])

    def test_other_workers_upload_in_progress_is_kept(self):
        # Connections land on a worker by their address hash: open uploads until both hold one.
        held = {}
        for i in range(40):
            s, worker, path = self.begin_put("f%d.bin" % i)
            held.setdefault(worker, (s, path))
            if len(held) == 2:
                break
        if len(held) < 2:
            self.skipTest("every connection landed on the same worker")
        (dead, (_, dead_path)), (alive, (alive_sock, alive_path)) = sorted(held.items())
        os.kill(dead, signal.SIGKILL)
        wait_for(lambda: dead not in children(self.srv.proc.pid)
                 and len(children(self.srv.proc.pid)) == 2, 5, "the worker's replacement")
        wait_for(lambda: not os.path.exists(dead_path), 5, "removal of " + dead_path)
        self.assertTrue(os.path.exists(alive_path), "the live worker's upload was removed")
        # ... and it still completes.
        alive_sock.sendall(b"y" * (1048576 - 65536))
        alive_sock.settimeout(10)
        got = alive_sock.recv(4096)
        self.assertTrue(got.startswith(b"HTTP/1.1 201 "), got[:200])


if __name__ == "__main__":
    unittest.main()
