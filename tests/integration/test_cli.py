"""The command-line contract: usage errors exit 2 with a "netkit: ..." line, --help and
--version exit 0 and print to stdout."""
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
                         "netkit: echo serve: unknown backend 'foo' (choose from epoll, poll, "
                         "select)")

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
        for backend in ("epoll", "poll", "select"):
            self.assertIn(backend, out)

    def test_lookup_help(self):
        out = self.ok(["lookup", "--help"])
        verbs = ("host", "addr", "service", "ifaces", "hostname")
        for verb in verbs:
            self.assertIn(verb, out)
            self.assertIn("usage: netkit lookup " + verb, self.ok(["lookup", verb, "--help"]))


if __name__ == "__main__":
    unittest.main()
