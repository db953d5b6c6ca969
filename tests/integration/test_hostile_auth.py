"""netkit http serve --auth in every mode: without credentials, or with wrong ones, nothing
guarded answers 2xx/3xx and nothing the client sent is echoed back; with the right ones
it works. Without --upload every request is guarded; with it only writes (README)."""
import base64
import os
import unittest

import httptest as H
from httptest import req

USER, PASS = "u", "p"
MARK = "hostile-marker-7f3a"


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


WRONG = [None, basic(USER, "wrong"), basic("nobody", PASS), "Basic !!!", "Bearer x",
         basic(USER, PASS + "x"), basic(USER, "")]
RIGHT = basic(USER, PASS)
BIG_TEXT = ("compressible line of text\n" * 200).encode()

# mode -> (extra args, guarded requests: (method, target, headers, body), check with creds)
MODES = {
    "plain": ((), [("GET", "/hello.txt", (), b""), ("GET", "/listing/", (), b""),
                   ("GET", "/sub", (), b""), ("HEAD", "/hello.txt", (), b""),
                   ("OPTIONS", "/", (), b"")]),
    "echo": (("--echo",), [("GET", "/" + MARK, (("X-Mark", MARK),), b""),
                           ("POST", "/x", (("Content-Type", "text/plain"),), MARK.encode()),
                           ("GET", "/x", (("Accept", "application/json"), ("X-Mark", MARK)),
                            b"")]),
    "status": (("--status", "/status"), [("GET", "/status", (), b""),
                                         ("GET", "/status?format=prometheus", (), b"")]),
    "status-public": (("--status", "/status", "--status-public"),
                      [("GET", "/status", (), b"")]),
    "cors": (("--cors",), [("GET", "/hello.txt", (("Origin", "http://evil.example"),), b"")]),
    "spa": (("--spa",), [("GET", "/some/route", (("Accept", "text/html"),), b""),
                         ("GET", "/", (("Accept", "text/html"),), b"")]),
    "gzip": (("--gzip",), [("GET", "/big.txt", (("Accept-Encoding", "gzip"),), b"")]),
    "upload": (("--upload",), [("PUT", "/new-" + MARK, (), MARK.encode()),
                               ("DELETE", "/victim.txt", (), b""),
                               ("POST", "/sub/", (("Content-Type",
                                                   "multipart/form-data; boundary=bb"),),
                                b"--bb\r\nContent-Disposition: form-data; name=\"f\"; "
                                b"filename=\"posted.txt\"\r\n\r\nx\r\n--bb--\r\n")]),
}


def request(method, target, headers, body, auth):
    hs = list(headers) + [("Connection", "close")]
    if auth is not None:
        hs.append(("Authorization", auth))
    if body or method in ("PUT", "POST"):
        hs.append(("Content-Length", str(len(body))))
    return req(method, target, hs) + body


class AuthEveryModeTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = H.build_docroot(owner)
        cls.d.write("big.txt", BIG_TEXT)
        cls.d.write("victim.txt", "to be deleted\n")
        cls.servers = {}
        for mode, (args, _) in MODES.items():
            srv = H.serve(owner, cls.d.root, "-q", "--auth", "%s:%s" % (USER, PASS), *args,
                          workers=1)
            cls.servers[mode] = srv.host_port()

    def send(self, mode, method, target, headers, body, auth):
        addr = self.servers[mode]
        out, _ = H.raw_ex(addr[0], addr[1], request(method, target, headers, body, auth), 5)
        resps, rest = H.parse_responses(out, [method])
        self.assertEqual(len(resps), 1, out[:300])
        return resps[0]

    def test_without_or_with_wrong_credentials(self):
        for mode, (_, cases) in MODES.items():
            for method, target, headers, body in cases:
                for auth in WRONG:
                    with self.subTest(mode=mode, request="%s %s" % (method, target),
                                      auth=auth):
                        r = self.send(mode, method, target, headers, body, auth)
                        self.assertFalse(200 <= r.status < 400,
                                         "%s mode answered %d without valid credentials: %r"
                                         % (mode, r.status, r.body[:200]))
                        self.assertNotIn(MARK.encode(), r.body, "what the client sent was "
                                         "echoed without valid credentials")
                        self.assertNotIn(MARK.encode(), r.raw_head)
                        if r.status == 401:
                            self.assertTrue(r.header("WWW-Authenticate").startswith("Basic "))
        self.assertFalse(os.path.exists(self.d.path("new-" + MARK)))
        self.assertTrue(os.path.exists(self.d.path("victim.txt")))
        self.assertFalse(os.path.exists(self.d.path("sub/posted.txt")))

    def test_preflight_is_not_an_open_door(self):
        # A CORS preflight never carries credentials; whatever the server answers to it,
        # the guarded request itself still needs them.
        r = self.send("cors", "OPTIONS", "/hello.txt", (
            ("Origin", "http://evil.example"), ("Access-Control-Request-Method", "GET")),
            b"", None)
        self.assertNotIn(b"hello, world", r.body)
        r = self.send("cors", "GET", "/hello.txt", (("Origin", "http://evil.example"),), b"",
                      None)
        self.assertEqual(r.status, 401)

    def test_with_the_right_credentials(self):
        ok = {
            "plain": lambda r: r.status in (200, 204, 301),
            "echo": lambda r: r.status == 200 and MARK.encode() in r.body,
            "status": lambda r: r.status == 200,
            "status-public": lambda r: r.status == 200,
            "cors": lambda r: r.status == 200 and r.header("Access-Control-Allow-Origin") == "*",
            "spa": lambda r: r.status == 200 and b"ROOT-INDEX" in r.body,
            "gzip": lambda r: r.status == 200 and r.header("Content-Encoding") == "gzip",
            "upload": lambda r: r.status in (201, 204),
        }
        for mode, (_, cases) in MODES.items():
            for method, target, headers, body in cases:
                with self.subTest(mode=mode, request="%s %s" % (method, target)):
                    r = self.send(mode, method, target, headers, body, RIGHT)
                    self.assertTrue(ok[mode](r), "%s mode with credentials: %r" % (mode, r))
        # undo the writes, whichever order the tests run in
        self.d.write("victim.txt", "to be deleted\n")
        for rel in ("new-" + MARK, "sub/posted.txt"):
            if os.path.exists(self.d.path(rel)):
                os.remove(self.d.path(rel))

    def test_upload_reads_stay_public(self):
        r = self.send("upload", "GET", "/seq/f01.txt", (), b"", None)
        self.assertEqual(r.status, 200)


if __name__ == "__main__":
    unittest.main()
