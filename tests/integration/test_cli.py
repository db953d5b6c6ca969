"""The command-line contract: usage errors exit 2 with a "netkit: ..." line, --help and
--version exit 0 and print to stdout."""
import ctypes
import os
import signal
import struct
import subprocess
import unittest

import harness


class TestUsage(unittest.TestCase):
    def usage_error(self, args, prefix, exact=None):
        res = harness.run(args, timeout=10)
        err = res.stderr.decode()
        self.assertEqual(res.returncode, 2, "netkit %s: %r" % (" ".join(args), err))
        first = err.splitlines()[0] if err else ""
        self.assertTrue(first.startswith(prefix), "first stderr line %r, expected %r..."
                        % (first, prefix))
        if exact is not None:
            self.assertEqual(first, exact)
        self.assertEqual(res.stdout, b"")
        return first

    def test_bad_backend(self):
        self.usage_error(["echo", "serve", "127.0.0.1:0", "--backend", "foo"],
                         "netkit: echo serve: ",
                         "netkit: echo serve: unknown backend 'foo' (choose from epoll, uring, "
                         "poll, select)")

    def test_bad_port(self):
        first = self.usage_error(["echo", "serve", "127.0.0.1:99999"], "netkit: echo serve: ")
        self.assertIn("99999", first)
        self.usage_error(["echo", "serve", "99999", "--proto", "udp"], "netkit: echo serve: ")

    def test_bad_address(self):
        self.usage_error(["echo", "serve", "1.2.3:x:y"], "netkit: echo serve: ")
        self.usage_error(["echo", "serve", "unix:/tmp/x", "--proto", "tcp"],
                         "netkit: echo serve: ")

    def test_unix_path_too_long(self):
        long_path = "/tmp/" + "a" * 200
        self.usage_error(["echo", "serve", "unix:" + long_path], "netkit: echo serve: ")
        self.usage_error(["echo", "serve", long_path, "--proto", "unix"], "netkit: echo serve: ")

    def test_docroot_that_is_a_file(self):
        """A regular file as the docroot says so at once (one line, no worker restarts)."""
        res = harness.run(["http", "serve", "/etc/hostname", "-l", "127.0.0.1:0", "-w", "1"],
                          timeout=20)
        err = res.stderr.decode()
        self.assertEqual(res.returncode, 1, err)
        self.assertEqual(err, "netkit: http serve: cannot serve '/etc/hostname': is not a "
                              "directory\n")

    def test_bad_proto(self):
        self.usage_error(["echo", "serve", "127.0.0.1:0", "--proto", "sctp"],
                         "netkit: echo serve: ")

    def test_unknown_command(self):
        self.usage_error(["frobnicate"], "netkit: ", "netkit: unknown command 'frobnicate'")
        self.usage_error(["echo", "frobnicate"], "netkit: echo: ")
        self.usage_error(["lookup", "frobnicate"], "netkit: lookup: ")

    def test_unknown_option(self):
        first = self.usage_error(["echo", "serve", "--bogus", "127.0.0.1:0"],
                                 "netkit: echo serve: ")
        self.assertIn("--bogus", first)
        first = self.usage_error(["echo", "serve", "-z", "127.0.0.1:0"], "netkit: echo serve: ")
        self.assertIn("-z", first)
        self.usage_error(["lookup", "addr", "--bogus", "1.2.3.4"], "netkit: lookup addr: ")

    def test_missing_argument(self):
        self.usage_error(["echo", "serve"], "netkit: echo serve: ")
        first = self.usage_error(["echo", "serve", "127.0.0.1:0", "--backend"],
                                 "netkit: echo serve: ")
        self.assertIn("--backend", first)
        self.usage_error(["echo", "serve", "127.0.0.1:0", "extra"], "netkit: echo serve: ")
        self.usage_error(["lookup", "host"], "netkit: lookup host: ")
        self.usage_error(["lookup", "addr"], "netkit: lookup addr: ")
        self.usage_error(["lookup", "service"], "netkit: lookup service: ")
        self.usage_error(["lookup", "hostname", "extra"], "netkit: lookup hostname: ")

    def test_no_command(self):
        for args in ([], ["echo"], ["lookup"]):
            res = harness.run(args, timeout=10)
            self.assertEqual(res.returncode, 2, args)
            self.assertEqual(res.stdout, b"")
            self.assertIn(b"usage: netkit", res.stderr)


class TestHelp(unittest.TestCase):
    def ok(self, args):
        res = harness.run(args, timeout=10)
        self.assertEqual(res.returncode, 0, "netkit %s: %r" % (" ".join(args), res.stderr))
        self.assertEqual(res.stderr, b"")
        self.assertTrue(res.stdout, "no output for %r" % (args,))
        return res.stdout.decode()

    def test_version(self):
        self.assertRegex(self.ok(["--version"]), r"^netkit \d+\.\d+\.\d+\n$")

    def test_help(self):
        out = self.ok(["--help"])
        self.assertIn("echo", out)
        self.assertIn("lookup", out)
        self.assertEqual(self.ok(["-h"]), out)

    def test_echo_help(self):
        self.assertIn("serve", self.ok(["echo", "--help"]))
        out = self.ok(["echo", "serve", "--help"])
        self.assertIn("usage: netkit echo serve ADDR", out)
        for backend in ("epoll", "uring", "poll", "select"):
            self.assertIn(backend, out)

    def test_lookup_help(self):
        out = self.ok(["lookup", "--help"])
        verbs = ("host", "addr", "service", "ifaces", "hostname")
        for verb in verbs:
            self.assertIn(verb, out)
            self.assertIn("usage: netkit lookup " + verb, self.ok(["lookup", verb, "--help"]))



class TestMessagePrefix(unittest.TestCase):
    """Every error and warning is one line 'netkit: CMD: ...' (CMD as typed: 'tcp connect'),
    whichever command and whatever went wrong; a usage error may add a 'Try' line."""

    def check(self, args, cmd, code=None):
        res = harness.run(args, timeout=30)
        err = res.stderr.decode()
        self.assertNotEqual(res.returncode, 0, "netkit %s succeeded" % " ".join(args))
        if code is not None:
            self.assertEqual(res.returncode, code, err)
        lines = [l for l in err.splitlines() if not l.startswith("Try 'netkit ")]
        self.assertTrue(lines, "netkit %s: nothing on stderr" % " ".join(args))
        for line in lines:
            self.assertTrue(line.startswith("netkit: %s: " % cmd),
                            "netkit %s: %r does not start with 'netkit: %s: '"
                            % (" ".join(args), line, cmd))

    def test_failures(self):
        import socket
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            closed = "127.0.0.1:%d" % s.getsockname()[1]
        self.check(["tcp", "connect", closed], "tcp connect", 1)
        self.check(["http", "get", "http://%s/" % closed], "http get", 1)
        self.check(["file", "send", closed, "/etc/hostname"], "file send", 1)
        self.check(["unix", "connect", "/nonexistent/netkit.sock"], "unix connect", 1)
        self.check(["http", "serve", "/nonexistent/dir", "-l", "127.0.0.1:0"], "http serve", 1)
        self.check(["udp", "send", "127.0.0.1:abc", "x"], "udp send", 2)
        self.check(["lookup", "addr", "not-an-address!"], "lookup addr")
        self.check(["http", "passwd", "a:b"], "http passwd", 2)
        self.check(["ping", "-c", "1", "-s", "999999", "127.0.0.1"], "ping", 2)
        self.check(["sniff", "--count", "x"], "sniff", 2)
        self.check(["chat", "join", closed, "--name", "ann"], "chat join", 1)
        self.check(["bench", "echo", closed, "--duration", "1"], "bench echo")

    def test_chat_server_notices(self):
        import socket
        import time
        srv = harness.start(self, ["chat", "serve", "127.0.0.1:0", "--hello-timeout", "1"])
        silent = socket.create_connection(srv.host_port(), timeout=10)
        self.addCleanup(silent.close)
        self.assertEqual(silent.recv(100), b"")
        text = ""
        deadline = time.monotonic() + 5
        while "HELLO" not in text and time.monotonic() < deadline:
            text += srv.read_stderr(0.2)
        line = [l for l in text.splitlines() if "HELLO" in l]
        self.assertTrue(line, text)
        self.assertRegex(line[0], r"^netkit: chat serve: 127\.0\.0\.1:\d+ sent no HELLO "
                                  r"within 1 s: closed$")

if __name__ == "__main__":
    unittest.main()


# io_uring_setup has the same number on the architectures this test knows.
IO_URING_SETUP = {"x86_64": 425, "aarch64": 425}.get(os.uname().machine)


def refuse_io_uring(err):
    """A preexec_fn: the child's io_uring_setup fails with errno err, through a seccomp filter,
    as a container runtime's would (PR_SET_NO_NEW_PRIVS first, so no privilege is needed)."""
    def preexec():
        libc = ctypes.CDLL(None, use_errno=True)
        ld_nr, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET
        code = [(ld_nr, 0, 0, 0),  # seccomp_data.nr is at offset 0
                (jeq, 0, 1, IO_URING_SETUP),
                (ret, 0, 0, 0x00050000 | err),  # SECCOMP_RET_ERRNO
                (ret, 0, 0, 0x7fff0000)]  # SECCOMP_RET_ALLOW
        filt = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *c) for c in code))

        class Prog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
        prog = Prog(len(code), ctypes.cast(filt, ctypes.c_void_p))
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
        if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
            raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")
    return preexec


class TestUringRefused(unittest.TestCase):
    """A kernel that refuses io_uring: --backend uring fails with one clear line, the default
    backend is unaffected (it never tries uring)."""

    def setUp(self):
        if IO_URING_SETUP is None:
            self.skipTest("io_uring_setup's number on %s is not known here" % os.uname().machine)

    def refused(self, args, err, env=None):
        full_env = dict(os.environ)
        full_env.pop("NETKIT_BACKEND", None)
        full_env.update(env or {})
        res = subprocess.run([harness.NETKIT] + args, capture_output=True, timeout=30,
                             env=full_env, preexec_fn=refuse_io_uring(err))
        lines = res.stderr.decode().splitlines()
        self.assertEqual(res.returncode, 1, lines)
        self.assertEqual(len(lines), 1, lines)
        return lines[0]

    def test_named_uring_fails_clearly(self):
        line = self.refused(["echo", "serve", "127.0.0.1:0", "--backend", "uring"], 1)
        self.assertEqual(line, "netkit: echo serve: cannot start the uring backend: Operation not "
                         "permitted (this kernel refuses io_uring: not built in, "
                         "kernel.io_uring_disabled, or a seccomp filter)")
        line = self.refused(["bench", "echo", "127.0.0.1:9"], 38, env={"NETKIT_BACKEND": "uring"})
        self.assertTrue(line.startswith("netkit: bench echo: cannot start the uring backend: "
                                        "Function not implemented (this kernel refuses"), line)
        line = self.refused(["http", "serve", ".", "-l", "127.0.0.1:0", "--backend", "uring"], 1)
        self.assertEqual(line, "netkit: http serve: cannot start the uring backend: Operation not "
                         "permitted (this kernel refuses io_uring: not built in, "
                         "kernel.io_uring_disabled, or a seccomp filter)")
        line = self.refused(["http", "serve", ".", "-l", "127.0.0.1:0"], 1,
                            env={"NETKIT_BACKEND": "uring"})
        self.assertTrue(line.startswith("netkit: http serve: cannot start the uring backend: "
                                        "Operation not permitted (this kernel refuses"), line)

    def test_default_backend_unaffected(self):
        env = {"NETKIT_BACKEND": ""}
        server = harness.start(self, ["echo", "serve", "127.0.0.1:0"], env=env,
                               preexec_fn=refuse_io_uring(1))
        with harness.connect(server.host_port()) as s:
            self.assertEqual(harness.stream_roundtrip(s, b"ping\n", timeout=10), b"ping\n")
        self.assertEqual(server.stop(signal.SIGTERM), 0, server.read_stderr())
