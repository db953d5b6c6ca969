"""netkit http serve: every Location it sends, from hostile targets and awkward names.

A Location must be a same-origin, percent-encoded, normalised path (locationcheck.py, run
on every response by the wire check) and must lead to the right resource: fetching it
answers 200.
"""
import os
import unittest

import httptest as H
from httptest import get_close, req
from locationcheck import check_location

# directory names that need percent-encoding: (name on disk, encoded path). A name with a
# control character may be refused outright (400); served, its Location must be encoded.
NAMES = [
    ("a b", "/a%20b"),
    ("100%", "/100%25"),
    ("what?", "/what%3F"),
    ("hash#", "/hash%23"),
    ("caf\u00e9", "/caf%C3%A9"),
    ("new\nline", "/new%0Aline"),
    ("semi;colon", "/semi%3Bcolon"),
]

# targets a client can send to reach /sub by a detour; the redirect must not follow it
HOSTILE = [
    "//evil.example/../sub",
    "//evil.example/%2e%2e/sub",
    "//evil.example/%2E%2E/sub",
    "//evil/%2e%2e/sub?x=1",
    "///evil.example/../sub",
    "/%2e%2e/sub",
    "/%2E%2E/sub",
    "/./sub",
    "/sub/../sub",
    "/sub/%2e%2e/sub",
    "/%2fevil.example/../sub",
    "/\\evil.example/../sub",
    "/\\\\evil.example/../sub",
    "/sub\\..\\sub",
    "//evil.example/../sub?next=//evil.example",
    "/%5cevil.example/%2e%2e/sub",
]


def refusable(path):
    return "%0A" in path


def fetch(test, addr, target, method="GET", headers=(), body=b""):
    """One request on its own connection; the response (wire-checked)."""
    hs = tuple(headers) + (("Connection", "close"),)
    if body:
        hs += (("Content-Length", str(len(body))),)
    data = req(method, target, hs) + body
    out, _ = H.raw_ex(addr[0], addr[1], data, 5)
    resps, rest = H.parse_responses(out, [method])
    test.assertEqual(len(resps), 1, "expected one response to %s %r: %r" % (method, target,
                                                                              out[:300]))
    test.assertEqual(rest, b"")
    return resps[0]


def follows(test, addr, resp, what):
    """resp's Location is well formed and fetching it gives 200."""
    loc = resp.header("Location")
    test.assertIsNotNone(loc, "%s: %d without Location" % (what, resp.status))
    check_location(loc)
    r = fetch(test, addr, loc)
    test.assertEqual(r.status, 200, "%s: Location %r answers %d" % (what, loc, r.status))
    return r


class DirectoryRedirectTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = H.build_docroot(owner)
        for name, _ in NAMES:
            cls.d.write(os.path.join(name, "index.html"), "INDEX OF %s\n" % name)
        cls.addr = H.serve(owner, cls.d.root, "-q", workers=1).host_port()

    def test_hostile_targets(self):
        for target in HOSTILE:
            with self.subTest(target=target):
                r = fetch(self, self.addr, target)
                if 300 <= r.status < 400:
                    follows(self, self.addr, r, target)
                else:
                    self.assertIn(r.status, (200, 400, 404), r)

    def test_names_needing_encoding(self):
        for name, path in NAMES:
            for suffix in ("", "?x=1", "?a=%2F%2Fb"):
                with self.subTest(name=name, suffix=suffix):
                    r = fetch(self, self.addr, path + suffix)
                    if refusable(path) and r.status == 400:
                        continue
                    self.assertEqual(r.status, 301, r)
                    got = follows(self, self.addr, r, path + suffix)
                    self.assertEqual(got.body, ("INDEX OF %s\n" % name).encode())


def multipart(boundary, filename, data):
    return (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"file\"; "
            b"filename=\"" + filename + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            + data + b"\r\n--" + boundary + b"--\r\n")


class UploadLocationTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = H.build_docroot(owner)
        for name, _ in NAMES:
            os.makedirs(cls.d.path(name), exist_ok=True)
        cls.addr = H.serve(owner, cls.d.root, "-q", "--upload", "--upload-anonymous",
                           workers=1).host_port()

    def test_put_201_location(self):
        for i, (name, path) in enumerate(NAMES):
            for target in (path + "-new.txt", "/sub" + path + ".txt", path + "/file.txt"):
                with self.subTest(target=target):
                    body = ("content %d of %r\n" % (i, target)).encode()
                    r = fetch(self, self.addr, target, "PUT", body=body)
                    if refusable(path) and r.status == 400:
                        continue
                    self.assertEqual(r.status, 201, r)
                    got = follows(self, self.addr, r, "PUT " + target)
                    self.assertEqual(got.body, body)

    def test_post_303_location(self):
        boundary = b"hostileB0undary"
        ct = ("Content-Type", "multipart/form-data; boundary=" + boundary.decode())
        for name, path in NAMES + [("sub", "/sub")]:
            for target in (path + "/", path + "/?x=1"):
                with self.subTest(target=target):
                    # a name per target: a form does not replace a file without overwrite=1
                    fname = b"posted-q.txt" if "?" in target else b"posted.txt"
                    body = multipart(boundary, fname, b"posted to " + path.encode())
                    r = fetch(self, self.addr, target, "POST",
                              headers=(ct, ("Accept", "text/html")), body=body)
                    if refusable(path) and r.status == 400:
                        continue
                    self.assertEqual(r.status, 303, r)
                    follows(self, self.addr, r, "POST " + target)
        for target in HOSTILE[:6]:
            with self.subTest(target=target + "/"):
                body = multipart(boundary, b"posted.txt", b"hostile")
                r = fetch(self, self.addr, target + "/", "POST",
                          headers=(ct, ("Accept", "text/html")), body=body)
                if 300 <= r.status < 400:
                    follows(self, self.addr, r, "POST " + target + "/")


if __name__ == "__main__":
    unittest.main()
