"""Every command parses its addresses through one function: the same bad address gets the same
message and exit code 2 in every command, and PORT / :PORT mean the same thing everywhere
(every interface when listening, this machine when connecting)."""
import os
import socket
import tempfile
import unittest

import harness

# (command words, arguments after the address); "{}" is where the address goes.
LISTENERS = [
    ["tcp", "listen", "{}"],
    ["udp", "listen", "{}"],
    ["http", "serve", "-l", "{}", "."],
    ["echo", "serve", "{}"],
    ["chat", "serve", "{}"],
    ["file", "recv", "{}", "--dir", "."],
]
CONNECTORS = [
    ["tcp", "connect", "{}"],
    ["tcp", "wait", "{}", "--timeout", "1"],
    ["udp", "send", "{}", "hi"],
    ["chat", "join", "{}"],
    ["file", "send", "{}", "/etc/hostname"],
    ["bench", "echo", "{}", "--duration", "1"],
]


def fill(template, addr):
    return [addr if a == "{}" else a for a in template]


class TestOneAddressParser(unittest.TestCase):
    def check(self, template, addr, want):
        args = fill(template, addr)
        res = harness.run(args, timeout=10)
        err = res.stderr.decode()
        first = err.splitlines()[0] if err else ""
        cmd = " ".join(template[:2])
        self.assertEqual(res.returncode, 2, "netkit %s: %r" % (" ".join(args), err))
        self.assertTrue(first.startswith("netkit: %s: %s" % (cmd, want)),
                        "netkit %s: %r, expected %r" % (" ".join(args), first, want))

    def test_invalid_port_everywhere(self):
        for t in LISTENERS + CONNECTORS:
            with self.subTest(cmd=t[:2]):
                self.check(t, "127.0.0.1:abc", "invalid port 'abc'")
                self.check(t, ":abc", "invalid port 'abc'")

    def test_port_out_of_range_everywhere(self):
        for t in LISTENERS + CONNECTORS:
            with self.subTest(cmd=t[:2]):
                self.check(t, "127.0.0.1:70000", "port out of range")
                self.check(t, "[::1]:99999", "port out of range")
        for t in CONNECTORS:
            with self.subTest(cmd=t[:2]):
                self.check(t, "127.0.0.1:0", "port out of range")

    def test_unix_path_too_long(self):
        long_path = "unix:/tmp/" + "a" * 200
        for t in [["unix", "listen", "{}"], ["unix", "connect", "{}"],
                  ["unix", "listen", "{}", "--dgram"], ["echo", "serve", "{}"],
                  ["http", "serve", "-l", "{}", "."], ["bench", "echo", "{}"]]:
            with self.subTest(cmd=t[:2]):
                self.check(t, long_path, "unix socket path too long (at most 107 bytes)")

    def test_bare_port_and_colon_port_listen_everywhere(self):
        for form in ("{}", ":{}"):
            srv = harness.start(self, ["tcp", "listen", form.format(0)])
            host, _ = srv.host_port()
            self.assertEqual(host, "0.0.0.0", srv.urls)
            srv.stop()

    def test_colon_port_connects_to_this_machine(self):
        lsock = socket.socket()
        self.addCleanup(lsock.close)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(4)
        port = lsock.getsockname()[1]
        for form in ("{}", ":{}"):
            res = harness.run(["tcp", "wait", form.format(port), "--timeout", "5"], timeout=10)
            self.assertEqual(res.returncode, 0, res.stderr)

    def test_http_serve_colon_port_binds_both_families(self):
        with tempfile.TemporaryDirectory() as d:
            srv = harness.start(self, ["http", "serve", d, "-l", ":0", "-w", "1"], listeners=2)
            self.assertEqual(len(srv.urls), 2, srv.urls)
            srv.stop()


if __name__ == "__main__":
    unittest.main()
