"""`netkit lookup`: host names, address forms, services, interfaces, this host's name."""
import socket
import unittest

import harness


def rows(stdout):
    """The "label  value" lines as (label, value) pairs."""
    out = []
    for line in stdout.decode().splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            out.append((parts[0], parts[1].strip()))
    return out


class TestLookup(unittest.TestCase):
    def lookup(self, *args, code=0):
        res = harness.run(["lookup"] + list(args))
        self.assertEqual(res.returncode, code, "netkit lookup %s: stderr %r, stdout %r"
                         % (" ".join(args), res.stderr, res.stdout))
        if code == 0:
            self.assertEqual(res.stderr, b"")
        return res

    def test_host_localhost(self):
        r = rows(self.lookup("host", "localhost").stdout)
        addrs = [v for k, v in r if k in ("ipv4", "ipv6")]
        self.assertTrue("127.0.0.1" in addrs or "::1" in addrs, r)
        self.assertIn(("name", "localhost"), r)
        # Every address the system resolver knows for localhost is listed, with its family.
        expected = {(("ipv4" if fam == socket.AF_INET else "ipv6"), sa[0])
                    for fam, _, _, _, sa in socket.getaddrinfo("localhost", None)
                    if fam in (socket.AF_INET, socket.AF_INET6)}
        self.assertEqual({(k, v) for k, v in r if k in ("ipv4", "ipv6")}, expected)

    def test_host_family_filter(self):
        r = rows(self.lookup("host", "-4", "localhost").stdout)
        self.assertIn(("ipv4", "127.0.0.1"), r)
        self.assertNotIn("ipv6", [k for k, _ in r])

    def test_host_unknown(self):
        res = self.lookup("host", "nonexistent.invalid", code=1)
        lines = res.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("netkit: lookup host: nonexistent.invalid: "),
                        lines[0])
        self.assertEqual(res.stdout, b"")

    def test_addr_ipv4(self):
        r = dict(rows(self.lookup("addr", "-n", "192.168.1.2").stdout))
        self.assertEqual(r["address"], "192.168.1.2")
        self.assertEqual(r["family"], "ipv4")
        self.assertEqual(r["hex"], "c0a80102")
        self.assertEqual(r["integer"], "3232235778")
        self.assertEqual(r["arpa"], "2.1.168.192.in-addr.arpa")
        self.assertEqual(r["binary"], "11000000.10101000.00000001.00000010")

    def test_addr_from_hex_and_integer(self):
        for text in ("c0a80102", "0xc0a80102", "C0A80102", "3232235778"):
            r = dict(rows(self.lookup("addr", "-n", text).stdout))
            self.assertEqual(r["address"], "192.168.1.2", text)
            self.assertEqual(r["hex"], "c0a80102", text)
            self.assertEqual(r["integer"], "3232235778", text)
        r = dict(rows(self.lookup("addr", "-n", "0").stdout))
        self.assertEqual(r["address"], "0.0.0.0")
        r = dict(rows(self.lookup("addr", "-n", "4294967295").stdout))
        self.assertEqual(r["address"], "255.255.255.255")

    def test_addr_bad(self):
        for text in ("4294967296", "1.2.3.4.5", "zzzz", "c0a801", "::g"):
            res = self.lookup("addr", text, code=2)
            self.assertTrue(res.stderr.startswith(b"netkit: lookup addr: "), res.stderr)

    def test_addr_reverse_name(self):
        # 127.0.0.1 has a name in every /etc/hosts; the name line shows it.
        expected = socket.gethostbyaddr("127.0.0.1")[0]
        r = dict(rows(self.lookup("addr", "127.0.0.1").stdout))
        self.assertEqual(r["name"], expected)
        self.assertEqual(r["kind"], "loopback")
        r = dict(rows(self.lookup("addr", "-n", "127.0.0.1").stdout))
        self.assertNotIn("name", r)

    def test_addr_ipv6(self):
        r = dict(rows(self.lookup("addr", "-n", "2001:db8::1").stdout))
        self.assertEqual(r["family"], "ipv6")
        self.assertEqual(r["full"], "2001:0db8:0000:0000:0000:0000:0000:0001")
        self.assertEqual(r["compressed"], "2001:db8::1")
        self.assertEqual(r["arpa"], "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
                         ".ip6.arpa")
        r = dict(rows(self.lookup("addr", "-n", "[0:0:0:0:0:0:0:1]").stdout))
        self.assertEqual(r["compressed"], "::1")
        self.assertEqual(r["kind"], "loopback")

    def test_service_by_name(self):
        out = self.lookup("service", "http").stdout.decode()
        line = [l for l in out.splitlines() if "80/tcp" in l]
        self.assertEqual(len(line), 1, out)
        self.assertTrue(line[0].startswith("http "), line)

    def test_service_by_port(self):
        out = self.lookup("service", "22/tcp").stdout.decode()
        lines = out.splitlines()
        self.assertEqual(len(lines), 2, out)  # header and one entry
        self.assertEqual(lines[1].split()[:2], ["ssh", "22/tcp"])

    def test_service_unknown(self):
        res = self.lookup("service", "no-such-service-here", code=1)
        self.assertEqual(len(res.stderr.decode().splitlines()), 1)
        res = self.lookup("service", "70000", code=2)
        self.assertTrue(res.stderr.startswith(b"netkit: lookup service: "))

    def test_ifaces_loopback(self):
        out = self.lookup("ifaces").stdout.decode()
        blocks = {}
        name = None
        for line in out.splitlines():
            if line and not line.startswith(" "):
                name = line.split()[0]
                blocks[name] = [line]
            elif line and name:
                blocks[name].append(line.split())
        self.assertIn("lo", blocks, out)
        header = blocks["lo"][0]
        self.assertIn("LOOPBACK", header)
        self.assertIn("UP", header.split("flags ")[1].split(","))
        inet = [f for f in blocks["lo"][1:] if f[0] == "inet"]
        self.assertTrue(inet, blocks["lo"])
        self.assertEqual(inet[0][1], "127.0.0.1/8")
        self.assertEqual(inet[0][2:4], ["netmask", "255.0.0.0"])
        # Only the named interface when one is given; an unknown one fails.
        only = self.lookup("ifaces", "lo").stdout.decode()
        self.assertEqual([l for l in only.splitlines() if l and not l.startswith(" ")],
                         [blocks["lo"][0]])
        res = self.lookup("ifaces", "no-such-if0", code=1)
        self.assertEqual(res.stderr, b"netkit: lookup ifaces: no-such-if0: no such interface\n")

    def test_hostname(self):
        r = dict(rows(self.lookup("hostname").stdout))
        self.assertEqual(r["hostname"], socket.gethostname())


if __name__ == "__main__":
    unittest.main()
