"""The uring variants skip only where the kernel refuses io_uring, and say why.

A suite run with NETKIT_BACKEND=uring (integration_uring.*) starts `http serve --backend uring`
once when it imports the harness: a refusal (EPERM or ENOSYS from io_uring_setup) exits 77,
which CTest reports as a skip; any other failure to start is a failure. bench/servers.sh drops
its netkit-uring contender on the same refusal, in one line. The refusal is made real here
with the seccomp filter of test_cli (a container runtime's way of refusing io_uring)."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import harness
import test_cli

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", "..", "bench")


def run_python(code, env_extra, preexec_fn=None):
    """Run `python3 -c code` in this directory with NETKIT_BACKEND and env_extra set."""
    env = dict(os.environ)
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env, capture_output=True,
                          timeout=60, preexec_fn=preexec_fn)


class TestSuiteSkip(unittest.TestCase):
    def setUp(self):
        if test_cli.IO_URING_SETUP is None:
            self.skipTest("io_uring_setup's number on %s is not known here" % os.uname().machine)

    def test_refused_kernel_skips_with_reason(self):
        for err, text in ((1, "Operation not permitted"), (38, "Function not implemented")):
            with self.subTest(errno=err):
                res = run_python("import unittest; unittest.main(module='test_http_basic')",
                                 {"NETKIT_BACKEND": "uring"}, test_cli.refuse_io_uring(err))
                out = res.stdout.decode()
                self.assertEqual(res.returncode, 77, (out, res.stderr.decode()[-500:]))
                self.assertIn("skipped: this kernel refuses the uring backend: cannot start the "
                              "uring backend: " + text, out)

    def test_working_kernel_runs(self):
        why = harness.serve_refused("uring")
        if why:
            self.skipTest("this kernel refuses the uring backend: %s" % why)
        res = run_python("import harness", {"NETKIT_BACKEND": "uring"})
        self.assertEqual(res.returncode, 0, res.stderr.decode()[-500:])

    def test_other_failure_is_not_a_skip(self):
        # A server that cannot start for another reason (here: no netkit at all, only a
        # program that exits at once) must fail the suite, not skip it.
        res = run_python("import harness", {"NETKIT_BACKEND": "uring", "NETKIT_BIN": "/bin/false"})
        self.assertNotIn(res.returncode, (0, 77), res.stdout.decode())
        self.assertIn("RuntimeError", res.stderr.decode())

    def test_without_backend_no_probe(self):
        # Suites not run on a named backend never probe: even a netkit that cannot start
        # leaves the import alone.
        res = run_python("import harness", {"NETKIT_BACKEND": "", "NETKIT_BIN": "/bin/false"})
        self.assertEqual(res.returncode, 0, res.stderr.decode()[-500:])


class TestBenchSkip(unittest.TestCase):
    """bench/servers.sh: netkit-uring is skipped in one line where io_uring is refused."""

    def setUp(self):
        if test_cli.IO_URING_SETUP is None:
            self.skipTest("io_uring_setup's number on %s is not known here" % os.uname().machine)
        if shutil.which("bash") is None:
            self.skipTest("bash is not installed")
        self.tmp = tempfile.mkdtemp(prefix="netkit-uring-skip-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start(self, preexec_fn):
        script = ('. "$BENCH/lib.sh"; . "$BENCH/servers.sh"; trap bench_cleanup EXIT; '
                  'mkdir -p "$T/www"; '
                  'if bench_server_start netkit-uring "$T/www" "$T" 1 64; then '
                  'echo started; bench_stop "$SERVER_PID"; else echo not-started; fi')
        env = dict(os.environ, BENCH=BENCH, T=self.tmp, NETKIT_BIN=os.path.abspath(harness.NETKIT))
        env.pop("NETKIT_BACKEND", None)
        return subprocess.run(["bash", "-c", script], env=env, capture_output=True, timeout=60,
                              preexec_fn=preexec_fn)

    def test_refused_is_skipped_in_one_line(self):
        res = self.start(test_cli.refuse_io_uring(1))
        self.assertEqual(res.stdout.decode().strip(), "not-started")
        lines = res.stderr.decode().splitlines()
        self.assertEqual(lines, ["bench: skipping netkit-uring: this kernel refuses io_uring "
                                 "(Operation not permitted)"])

    def test_working_kernel_starts(self):
        why = harness.serve_refused("uring")
        if why:
            self.skipTest("this kernel refuses the uring backend: %s" % why)
        res = self.start(None)
        self.assertEqual(res.stdout.decode().strip(), "started", res.stderr.decode())


if __name__ == "__main__":
    unittest.main()
