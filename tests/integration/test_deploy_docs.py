"""docs/deploy.md says what the code does: the balancer configurations it quotes are the files in
contrib/ that the balancer tests run (byte for byte), and every Prometheus metric and status-page
field it tells operators to watch is one that `http serve --status` serves."""
import json
import os
import re
import tempfile
import unittest
import urllib.request

import harness

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def read(*path):
    with open(os.path.join(TOP, *path)) as f:
        return f.read()


def json_keys(value, prefix=""):
    """Every key of a JSON document, as dotted paths ("workers[].pid" for a list's members)."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            out.add(prefix + k)
            out |= json_keys(v, prefix + k + ".")
    elif isinstance(value, list):
        for v in value:
            out |= json_keys(v, prefix[:-1] + "[].")
    return out


class DeployDocs(unittest.TestCase):
    def setUp(self):
        self.doc = read("docs", "deploy.md")

    def test_configs_are_quoted_verbatim(self):
        blocks = re.findall(r"^```[a-z]*\n(.*?)^```$", self.doc, re.S | re.M)
        for name in ("haproxy.cfg", "nginx-lb.conf"):
            self.assertIn(read("contrib", name), blocks,
                          "docs/deploy.md does not quote contrib/%s as it is" % name)

    def test_the_metrics_named_exist(self):
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        srv = harness.start(self, ["http", "serve", d.name, "-w", "2", "--access-log", "off",
                                   "--status", "/status", "--no-http2"])
        prom = harness.urlopen(srv.url.rstrip("/") + "/status?format=prometheus", timeout=10).read()
        served = set(re.findall(r"^(netkit_[a-z0-9_]+)", prom.decode(), re.M))
        named = set(re.findall(r"`(netkit_[a-z0-9_]+)", self.doc))
        self.assertTrue(named, "docs/deploy.md names no metric")
        self.assertEqual(named - served, set(), "named in docs/deploy.md, not served")
        doc = json.loads(harness.urlopen(srv.url.rstrip("/") + "/status", timeout=10).read())
        keys = json_keys(doc)
        # The table's JSON column: `requests_by_class.5xx`, `workers[].pid` ...
        table = [l for l in self.doc.splitlines() if l.startswith("| `netkit_")]
        fields = set()
        for line in table:
            fields |= set(re.findall(r"`([a-z0-9_]+(?:\[\])?(?:\.[a-z0-9_]+)*)`", line.split("|")[2]))
        self.assertTrue(fields, "docs/deploy.md names no status field")
        self.assertEqual(fields - keys, set(), "named in docs/deploy.md, not on the status page")


if __name__ == "__main__":
    unittest.main()
