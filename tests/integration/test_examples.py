"""The programs in examples/, built against the public headers and the shared library, run
against real clients: what an outside C programmer would write works as shown."""
import json
import os
import tempfile
import unittest
import urllib.request

import harness
import httptest as H

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(harness.NETKIT)), "examples")


class HttpJsonExample(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        with open(os.path.join(tmp.name, "index.html"), "w") as f:
            f.write("<!DOCTYPE html><title>example</title>\n")
        prog = os.path.join(EXAMPLES, "http_json")
        self.assertTrue(os.access(prog, os.X_OK), "examples are built with the project: " + prog)
        self.srv = harness.start(self, ["127.0.0.1:0", tmp.name], program=prog)
        self.host, self.port = self.srv.host_port()

    def get(self, path):
        with urllib.request.urlopen("http://%s:%d%s" % (self.host, self.port, path),
                                    timeout=10) as r:
            return r.status, r.headers, r.read()

    def test_json_route(self):
        st, h, body = self.get("/api/time?tz=UTC")
        self.assertEqual(st, 200)
        self.assertEqual(h["Content-Type"], "application/json")
        doc = json.loads(body)
        self.assertIs(doc["utc"], True)
        self.assertGreater(doc["unix"], 1700000000)

    def test_static_files_behind_it(self):
        st, h, body = self.get("/")
        self.assertEqual(st, 200)
        self.assertIn(b"<title>example</title>", body)
        out, _ = H.raw_ex(self.host, self.port,
                          b"HEAD /api/time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        resps, _ = H.parse_responses(out, ["HEAD"])
        self.assertEqual([r.status for r in resps], [200])
        self.assertEqual(resps[0].body, b"")

    def test_stops_on_sigterm(self):
        self.assertEqual(self.srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
