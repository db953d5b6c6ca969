"""The build's dependencies: plain `make` needs only the compiler and the libraries; each other
target asks scripts/install-deps for what it uses; a user who cannot install gets one line."""
import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPS = os.path.join(ROOT, "scripts", "install-deps")


def as_unprivileged():
    """preexec_fn and a reason: install-deps must never apt-get from a test."""
    if os.geteuid() != 0:
        return None, None
    import pwd
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return None, "no 'nobody' user to drop root to"

    def drop():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    return drop, None


class TestInstallDeps(unittest.TestCase):
    def run_deps(self, tools, *groups):
        """Run install-deps as a user who cannot install, with only `tools` on PATH."""
        drop, why = as_unprivileged()
        if why:
            self.skipTest(why)
        bindir = tempfile.mkdtemp(prefix="nk-deps-")
        self.addCleanup(shutil.rmtree, bindir)
        os.chmod(bindir, 0o755)
        for t in tools + ["id", "grep", "find", "head"]:
            path = shutil.which(t)
            if path:
                os.symlink(path, os.path.join(bindir, t))
        # dpkg-query would find packages installed on this machine: hide it, so that only the
        # probes on PATH and the header files decide.
        # A copy, readable by the unprivileged user wherever the checkout sits.
        script = os.path.join(bindir, "install-deps")
        shutil.copy(DEPS, script)
        os.chmod(script, 0o755)
        return subprocess.run(["/bin/sh", script] + list(groups), capture_output=True, cwd=bindir,
                              env={"PATH": bindir, "LC_ALL": "C"}, preexec_fn=drop, timeout=30)

    def test_build_needs_only_compiler_and_libraries(self):
        headers = ("/usr/include/zlib.h", "/usr/include/openssl/evp.h", "/usr/include/liburing.h")
        if not all(os.path.exists(h) for h in headers):
            self.skipTest("zlib, OpenSSL or liburing headers are not installed here")
        r = self.run_deps(["cmake", "gcc", "make", "pkg-config"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")

    def test_missing_test_tools_is_one_clear_line(self):
        r = self.run_deps(["cmake", "gcc", "make", "pkg-config"], "test")
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("netkit: missing Debian packages for test:"), lines)
        for pkg in ("curl", "socat", "ncat", "tcpdump"):
            self.assertIn(pkg, lines[0])
        # wrk is a test tool too (the balancer tests load HAProxy with it); the analysers and
        # valgrind are not.
        for pkg in ("cppcheck", "clang-tidy", "valgrind"):
            self.assertNotIn(pkg, lines[0])

    def test_lint_asks_for_the_analysers(self):
        r = self.run_deps(["cmake", "gcc", "make", "pkg-config", "python3"], "lint")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cppcheck", r.stderr.decode())
        self.assertIn("clang-tidy", r.stderr.decode())


class TestMakeTargets(unittest.TestCase):
    def dry_run(self, target):
        if not shutil.which("make"):
            self.skipTest("make is not installed")
        r = subprocess.run(["make", "-n", "-C", ROOT, target], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.decode()

    def test_each_target_installs_what_it_uses(self):
        self.assertIn("scripts/install-deps test", self.dry_run("test"))
        self.assertIn("scripts/install-deps test", self.dry_run("asan"))
        self.assertIn("scripts/install-deps lint", self.dry_run("lint"))
        self.assertIn("scripts/install-deps fuzz", self.dry_run("fuzz"))
        self.assertIn("scripts/install-deps bench", self.dry_run("bench"))
        build = self.dry_run("build")
        self.assertNotIn("install-deps test", build)
        self.assertNotIn("install-deps lint", build)


if __name__ == "__main__":
    unittest.main()
