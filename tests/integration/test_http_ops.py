"""netkit http serve --spa, --status, --cors and --log-format json."""
import json
import os
import re
import shutil
import tempfile
import time
import unittest

import harness
import httptest as H
from httptest import req

INDEX = b"<!DOCTYPE html><html><body>app shell</body></html>\n"


def make_root(owner):
    base = tempfile.mkdtemp(prefix="netkit-ops-")
    owner.addCleanup(shutil.rmtree, base, True)
    with open(os.path.join(base, "index.html"), "wb") as f:
        f.write(INDEX)
    with open(os.path.join(base, "app.js"), "wb") as f:
        f.write(b"console.log(1);\n")
    return base


class OpsBase(unittest.TestCase):
    server_args = ()
    workers = 1

    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.root = make_root(owner)
        cls.srv = H.serve(owner, cls.root, "-q", *cls.server_args, workers=cls.workers)
        cls.host, cls.port = cls.srv.host_port()

    def fetch(self, target, *headers, method="GET"):
        out, closed = H.raw_ex(self.host, self.port,
                               req(method, target, tuple(headers) + (("Connection", "close"),)), 5)
        self.assertTrue(closed)
        resps, rest = H.parse_responses(out, [method])
        self.assertEqual(len(resps), 1, resps)
        self.assertEqual(rest, b"")
        return resps[0]


NAV = ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")


class SpaTest(OpsBase):
    server_args = ("--spa",)

    def test_route_gets_index(self):
        for target in ("/some/route", "/deep/a/b/c", "/page.html", "/x?y=1"):
            r = self.fetch(target, NAV)
            self.assertEqual(r.status, 200, target)
            self.assertEqual(r.body, INDEX)
            self.assertIsNotNone(r.header("ETag"))
            self.assertIsNotNone(r.header("Last-Modified"))
            H.check_common(self, r)
        r = self.fetch("/some/route", NAV, method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), str(len(INDEX)))

    def test_missing_asset_is_404(self):
        H.check_error(self, self.fetch("/missing.js", NAV), 404)
        H.check_error(self, self.fetch("/img/logo.png", NAV), 404)

    def test_client_without_html_gets_404(self):
        H.check_error(self, self.fetch("/some/route"), 404)
        H.check_error(self, self.fetch("/some/route", ("Accept", "application/json")), 404)
        H.check_error(self, self.fetch("/some/route", ("Accept", "*/*")), 404)
        # Listing text/html with q=0 refuses it (RFC 9110 section 12.4.2), it does not ask.
        H.check_error(self, self.fetch("/some/route", ("Accept", "text/html;q=0, */*")), 404)
        H.check_error(self, self.fetch("/some/route", ("Accept", "text/html; q=0.000")), 404)
        # q-values and parameters are read as values, not as text to search.
        self.assertEqual(self.fetch("/some/route", ("Accept", "text/html;q=0.001")).status, 200)

    def test_existing_files_unchanged(self):
        r = self.fetch("/app.js", NAV)
        self.assertEqual(r.body, b"console.log(1);\n")
        self.assertEqual(self.fetch("/", NAV).body, INDEX)

    def test_without_spa_404(self):
        srv = H.serve(self, self.root, "-q")
        host, port = srv.host_port()
        out = H.raw(host, port, req("GET", "/some/route", (NAV, ("Connection", "close"))))
        self.assertEqual(H.parse_responses(out)[0][0].status, 404)


class StatusTest(OpsBase):
    server_args = ("--status", "/.netkit/status")

    def status(self, query=""):
        r = self.fetch("/.netkit/status" + query)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        H.check_common(self, r)
        return r

    def test_json_counters_move(self):
        r = self.status()
        self.assertEqual(r.header("Content-Type"), "application/json")
        a = json.loads(r.body)
        for k in ("pid", "worker", "uptime_seconds", "connections_open", "connections_total",
                  "requests_total", "requests_by_class", "bytes_sent", "workers"):
            self.assertIn(k, a)
        self.assertEqual(a["pid"], self.srv.proc.pid)
        self.assertEqual(a["connections_open"], 1)  # this very request
        self.fetch("/index.html")
        self.fetch("/index.html")
        self.fetch("/nope")
        b = json.loads(self.status().body)
        self.assertEqual(b["requests_total"], a["requests_total"] + 4)  # 3 + the first status
        self.assertEqual(b["requests_by_class"]["2xx"], a["requests_by_class"]["2xx"] + 3)
        self.assertEqual(b["requests_by_class"]["4xx"], a["requests_by_class"]["4xx"] + 1)
        self.assertEqual(b["connections_total"], a["connections_total"] + 4)
        self.assertGreater(b["bytes_sent"], a["bytes_sent"] + 2 * len(INDEX))
        self.assertEqual(len(b["workers"]), 1)
        self.assertEqual(b["workers"][0]["requests_total"], b["requests_total"])

    def test_prometheus(self):
        r = self.status("?format=prometheus")
        self.assertTrue(r.header("Content-Type").startswith("text/plain; version=0.0.4"))
        text = r.body.decode()
        self.assertIn("# TYPE netkit_http_requests_total counter\n", text)
        self.assertIn("# HELP netkit_http_requests_total ", text)
        for cls in ("1xx", "2xx", "3xx", "4xx", "5xx"):
            self.assertRegex(text, r'(?m)^netkit_http_requests_total\{class="%s"\} \d+$' % cls)
        self.assertRegex(text, r"(?m)^netkit_http_connections_open 1$")
        self.assertRegex(text, r"(?m)^netkit_http_sent_bytes_total \d+$")
        # every sample line is NAME[{labels}] VALUE
        for line in text.splitlines():
            if not line.startswith("#"):
                self.assertRegex(line, r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z]+="[^"]*"\})? \d+$')

    def test_head_and_methods(self):
        r = self.fetch("/.netkit/status", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(self.fetch("/.netkit/status", method="POST").status, 405)

    def test_local_only(self):
        # Every address this test can reach the server on is loopback; the predicate that
        # refuses other peers is unit-tested (tests/unit/test_httpd_ops.c). A unix-socket
        # client counts as local:
        sock = os.path.join(tempfile.mkdtemp(prefix="netkit-ops-sock-"), "s")
        self.addCleanup(shutil.rmtree, os.path.dirname(sock), True)
        H.serve(self, self.root, "-q", "--status", "/st", listen=("unix:" + sock,))
        out = H.raw(sock, None, req("GET", "/st", (("Connection", "close"),)))
        r = H.parse_responses(out)[0][0]
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["requests_total"], 0)


class StatusWorkersTest(OpsBase):
    server_args = ("--status", "/st")
    workers = 2

    def test_totals_include_both_workers(self):
        a = json.loads(self.fetch("/st").body)
        self.assertEqual(len(a["workers"]), 2)
        pids = {w["pid"] for w in a["workers"]}
        self.assertEqual(len(pids), 2)
        self.assertNotIn(0, pids)
        for _ in range(40):
            self.fetch("/index.html")
        b = json.loads(self.fetch("/st").body)
        self.assertEqual(b["requests_total"], a["requests_total"] + 41)
        self.assertEqual(b["requests_total"], sum(w["requests_total"] for w in b["workers"]))
        # the kernel spreads 40 connections over both workers (SO_REUSEPORT hashing)
        self.assertTrue(all(w["requests_total"] > 0 for w in b["workers"]), b["workers"])


class CorsTest(OpsBase):
    server_args = ("--cors",)

    def test_simple_responses(self):
        for target in ("/index.html", "/nope"):
            r = self.fetch(target, ("Origin", "http://example.test"))
            self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")

    def test_preflight(self):
        r = self.fetch("/index.html", ("Origin", "http://example.test"),
                       ("Access-Control-Request-Method", "GET"),
                       ("Access-Control-Request-Headers", "x-token, content-type"),
                       method="OPTIONS")
        self.assertEqual(r.status, 204)
        H.check_common(self, r)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")
        self.assertEqual(r.header("Access-Control-Allow-Methods"), "GET, HEAD, OPTIONS")
        self.assertEqual(r.header("Access-Control-Allow-Headers"), "x-token, content-type")
        self.assertEqual(r.header("Access-Control-Max-Age"), "86400")

    def test_preflight_bad_headers_omitted(self):
        r = self.fetch("/", ("Origin", "http://example.test"),
                       ("Access-Control-Request-Method", "GET"),
                       ("Access-Control-Request-Headers", "x-a, (bad)"), method="OPTIONS")
        self.assertEqual(r.status, 204)
        self.assertIsNone(r.header("Access-Control-Allow-Headers"))

    def test_plain_options_unchanged(self):
        r = self.fetch("/", method="OPTIONS")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        self.assertIsNone(r.header("Access-Control-Allow-Methods"))

    def test_upload_methods(self):
        srv = H.serve(self, self.root, "-q", "--cors", "--upload", "--upload-anonymous")
        host, port = srv.host_port()
        out = H.raw(host, port, req("OPTIONS", "/", (
            ("Origin", "http://e.test"), ("Access-Control-Request-Method", "PUT"),
            ("Connection", "close"))))
        r = H.parse_responses(out)[0][0]
        self.assertEqual(r.header("Access-Control-Allow-Methods"),
                         "GET, HEAD, OPTIONS, PUT, DELETE, POST")


class JsonLogTest(unittest.TestCase):
    def test_every_line_parses(self):
        root = make_root(self)
        logdir = tempfile.mkdtemp(prefix="netkit-ops-log-")
        self.addCleanup(shutil.rmtree, logdir, True)
        log = os.path.join(logdir, "access.log")
        srv = H.serve(self, root, "--access-log", log, "--log-format", "json")
        host, port = srv.host_port()
        sent = [("GET", "/index.html", 200), ("HEAD", "/app.js", 200), ("GET", "/nope", 404),
                ("GET", "/caf%C3%A9?a=1&b=%22", 404)]
        for method, target, _ in sent:
            H.raw(host, port, req(method, target, (("User-Agent", 'agent "7"'),
                                                   ("Referer", "http://r.test/"),
                                                   ("Connection", "close"))))
        H.stop_tree(srv)
        with open(log) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), len(sent))
        for line, (method, target, status) in zip(lines, sent):
            e = json.loads(line)
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertLess(abs(time.mktime(time.strptime(e["time"][:19], "%Y-%m-%dT%H:%M:%S"))
                                - time.timezone - time.time()), 60)
            self.assertEqual(e["client"], "127.0.0.1")
            self.assertEqual(e["method"], method)
            self.assertEqual(e["path"], target)
            self.assertEqual(e["protocol"], harness.PROTOCOL)
            self.assertEqual(e["status"], status)
            self.assertIsInstance(e["bytes"], int)
            self.assertIsInstance(e["duration_us"], int)
            self.assertGreaterEqual(e["duration_us"], 0)
            self.assertEqual(e["user_agent"], 'agent "7"')
            self.assertEqual(e["referer"], "http://r.test/")
        self.assertEqual(json.loads(lines[0])["bytes"], len(INDEX))
        self.assertEqual(json.loads(lines[1])["bytes"], 0)

    def test_bad_format_is_usage_error(self):
        import subprocess
        p = subprocess.run([H.harness.NETKIT, "http", "serve", "--log-format", "xml"],
                           capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--log-format", p.stderr)


if __name__ == "__main__":
    unittest.main()
