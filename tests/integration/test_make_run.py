"""The everyday make targets: `make run PORT=N DIR=...`, `make help`, and a build whose output
is not flooded with sub-make "Entering directory" lines (cmake --build runs make below ours)."""
import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def make(test, *args, env=None):
    if not shutil.which("make"):
        test.skipTest("make is not installed")
    full = dict(os.environ)
    full.pop("MAKEFLAGS", None)
    full.pop("MAKELEVEL", None)
    full.update(env or {})
    return subprocess.run(["make"] + list(args), cwd=ROOT, capture_output=True, timeout=120,
                          env=full)


class MakeTargets(unittest.TestCase):
    def test_run_port_and_dir(self):
        r = make(self, "-n", "run", "PORT=9123", "DIR=/srv/site")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("./build/netkit http serve /srv/site -l 127.0.0.1:9123", r.stdout.decode())
        r = make(self, "-n", "run")
        self.assertIn("./build/netkit http serve www -l 127.0.0.1:8080", r.stdout.decode())

    def test_help(self):
        r = make(self, "help")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        for target in ("build", "test", "run", "asan", "bench", "fuzz", "valgrind", "lint",
                       "coverage", "install", "clean", "help"):
            self.assertRegex(out, r"(?m)^  make %s\b" % target)
        for var in ("PORT=", "DIR=", "PREFIX=", "V=1"):
            self.assertIn(var, out)

    def test_no_entering_directory_lines(self):
        """A stand-in for cmake whose --build runs make in nested directories, as CMake's
        makefiles do: none of them may print 'Entering directory'."""
        tmp = tempfile.mkdtemp(prefix="nk-make-")
        self.addCleanup(shutil.rmtree, tmp)
        os.mkdir(os.path.join(tmp, "sub"))
        with open(os.path.join(tmp, "Makefile"), "w") as f:
            f.write("all:\n\t@$(MAKE) -C sub\n")
        with open(os.path.join(tmp, "sub", "Makefile"), "w") as f:
            f.write("all:\n\t@echo compiled\n")
        fake = os.path.join(tmp, "cmake")
        with open(fake, "w") as f:
            f.write('#!/bin/sh\n[ "$1" = "--build" ] && exec make -C "%s"\nexit 0\n' % tmp)
        os.chmod(fake, 0o755)
        r = make(self, "build", "CMAKE=" + fake)
        out = r.stdout.decode() + r.stderr.decode()
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("compiled", out)
        self.assertNotIn("Entering directory", out)
        self.assertNotIn("Leaving directory", out)


if __name__ == "__main__":
    unittest.main()
