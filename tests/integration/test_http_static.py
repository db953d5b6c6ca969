"""netkit http serve: static files. Paths and confinement, dotfiles, symlinks, index and
redirects, listings (HTML, JSON), content types, validators and conditional requests, ranges,
precompressed gzip sidecars."""
import email.utils
import gzip
import json
import os
import re
import time
import unittest

import harness
import httptest as H
from httptest import get, get_close, req


class StaticBase(unittest.TestCase):
    server_args = ()

    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.d = H.build_docroot(owner)
        cls.srv = H.serve(owner, cls.d.root, *cls.server_args)
        cls.host, cls.port = cls.srv.host_port()

    def setUp(self):
        self.assertIsNone(self.srv.proc.poll(), "server died (exit %s); stderr: %s"
                          % (self.srv.proc.returncode, self.srv.read_stderr()))

    def fetch(self, target, *headers, method="GET", raw_target=None):
        """One request with Connection: close; exactly one response, then close."""
        if raw_target is not None:
            data = (method.encode() + b" " + raw_target + b" HTTP/1.1\r\nHost: localhost\r\n"
                    b"Connection: close\r\n\r\n")
        else:
            data = req(method, target, tuple(headers) + (("Connection", "close"),))
        out, closed = H.raw_ex(self.host, self.port, data, 5)
        self.assertTrue(closed, "server did not close after Connection: close: %r" % out[:200])
        resps, rest = H.parse_responses(out, [method])
        self.assertEqual(len(resps), 1, resps)
        self.assertEqual(rest, b"", "bytes after the response")
        H.check_common(self, resps[0], expect_length=(method != "HEAD"))
        return resps[0]

    def etag(self, target):
        r = self.fetch(target)
        self.assertEqual(r.status, 200)
        return r.header("ETag")


class PathTests(StaticBase):
    TRAVERSAL = [
        b"/../secret.txt",
        b"/../../secret.txt",
        b"/../../../../../../../../etc/passwd",
        b"/..%2fsecret.txt",
        b"/..%2Fsecret.txt",
        b"/%2e%2e/secret.txt",
        b"/%2E%2E/secret.txt",
        b"/.%2e/secret.txt",
        b"/%2e./secret.txt",
        b"/%2e%2e%2fsecret.txt",
        b"/sub/../../secret.txt",
        b"/sub/%2e%2e/%2e%2e/secret.txt",
        b"/sub/./../../secret.txt",
        b"/./../secret.txt",
        b"//../secret.txt",
        b"/..\\secret.txt",
        b"/%5c..%5csecret.txt",
        b"/..%5csecret.txt",
        b"/%252e%252e/secret.txt",
        b"/..%252fsecret.txt",
        b"/%c0%ae%c0%ae/secret.txt",
        b"/%c0%ae%c0%ae%c0%afsecret.txt",
        b"/%e0%80%ae%e0%80%ae/secret.txt",
        b"/..%c0%afsecret.txt",
        b"/..%00/secret.txt",
        b"/secret.txt%00.html",
        b"/..;/secret.txt",
        b"/...//secret.txt",
        b"/..../secret.txt",
        b"/outside/secret.txt",
        b"/linkdir_out/secret.txt",
        b"/link_out",
        b"/link_abs_out",
        b"/linkdir_out/",
        b"/sub/..%2f..%2fsecret.txt",
        b"/%2e%2e%5csecret.txt",
    ]

    def test_traversal_vectors(self):
        self.assertGreaterEqual(len(self.TRAVERSAL), 20)
        for target in self.TRAVERSAL:
            with self.subTest(target=target):
                r = self.fetch(None, raw_target=target)
                self.assertIn(r.status, (400, 404), r)
                self.assertNotIn(self.d.secret, r.body)
                self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")

    def test_traversal_absolute_form(self):
        for path in (b"/../secret.txt", b"/%2e%2e/secret.txt"):
            with self.subTest(path=path):
                target = harness.origin((self.host, self.port)).encode() + path
                r = self.fetch(None, raw_target=target)
                self.assertIn(r.status, (400, 404))
                self.assertNotIn(self.d.secret, r.body)

    def test_traversal_listing_json(self):
        for target in (b"/../?format=json", b"/%2e%2e/?format=json", b"/linkdir_out/?format=json"):
            with self.subTest(target=target):
                r = self.fetch(None, raw_target=target)
                self.assertIn(r.status, (400, 404))
                self.assertNotIn(b"secret.txt", r.body)

    def test_exact_refusals(self):
        cases = [
            (b"/sub%2fa.txt", 400),          # encoded slash
            (b"/sub%2Fa.txt", 400),
            (b"/sub\\a.txt", 400),           # backslash
            (b"/sub%5ca.txt", 400),          # encoded backslash
            (b"/hello.txt%00", 400),         # NUL
            (b"/%00", 400),
            (b"/%c0%ae%c0%ae/x", 400),       # overlong UTF-8 dots
            (b"/%c0%afetc", 400),            # overlong slash
            (b"/%ff%fe", 400),               # not UTF-8
            (b"/%zz", 400),                  # bad percent-encoding
            (b"/%4", 400),
            (b"/hello%2", 400),
            (b"/%252e%252e/secret.txt", 404),  # double encoding: a literal "%2e%2e" directory
            (b"/nope/../../secret.txt", 400),  # climbs above the root
        ]
        for target, status in cases:
            with self.subTest(target=target):
                r = self.fetch(None, raw_target=target)
                self.assertEqual(r.status, status, r)
                self.assertNotIn(self.d.secret, r.body)

    def test_double_encoding_is_one_decode(self):
        # a file literally named "%2e" exists: /%252e names it
        r = self.fetch(None, raw_target=b"/%252e")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.d.files["/%2e"])

    def test_normalised_paths_inside_root(self):
        cases = [
            (b"/sub/../hello.txt", "/hello.txt"),
            (b"/sub/./a.txt", "/sub/a.txt"),
            (b"//hello.txt", "/hello.txt"),
            (b"/sub//a.txt", "/sub/a.txt"),
            (b"/%68%65%6C%6c%6f.txt", "/hello.txt"),
            (b"/sub/%2e%2e/hello.txt", "/hello.txt"),
            (b"/sub/%2e/a.txt", "/sub/a.txt"),
            (b"/a%20b.txt", "/a b.txt"),
            (b"/caf%C3%A9.txt", "/caf\u00e9.txt"),
            (b"/hello.txt?x=../../secret.txt", "/hello.txt"),
        ]
        for target, name in cases:
            with self.subTest(target=target):
                r = self.fetch(None, raw_target=target)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, self.d.files[name])

    def test_not_found(self):
        for target in ("/nope", "/nope/", "/sub/nope.txt", "/hello.txt/x"):
            with self.subTest(target=target):
                r = self.fetch(target)
                self.assertEqual(r.status, 404, r)
                self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")

    def test_dotfiles_hidden(self):
        for target in ("/.hidden", "/.git/config", "/.git/", "/.git", "/sub/.hidden",
                       "/%2ehidden", "/sub/../.hidden", "/listing/.dotfile"):
            with self.subTest(target=target):
                r = self.fetch(target)
                self.assertEqual(r.status, 404, r)
                self.assertNotIn(b"HIDDEN", r.body)
                self.assertNotIn(b"GIT-CONFIG", r.body)

    def test_symlinks(self):
        r = self.fetch("/link_in")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"hello, world\n")
        r = self.fetch("/linkdir_in/a.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.d.files["/sub/a.txt"])
        for target in ("/link_out", "/link_abs_out", "/linkdir_out/secret.txt"):
            with self.subTest(target=target):
                r = self.fetch(target)
                self.assertEqual(r.status, 404)
                self.assertNotIn(self.d.secret, r.body)


    def test_symlink_to_dotfile_refused(self):
        # The dotfile rule applies to where a link leads, not only to the request path.
        os.symlink(".git/config", self.d.path("dotlink"))
        os.symlink(".git", self.d.path("dotdirlink"))
        for target in ("/dotlink", "/dotdirlink/config", "/dotdirlink/"):
            with self.subTest(target=target):
                r = self.fetch(target)
                self.assertEqual(r.status, 404, r)
                self.assertNotIn(b"GIT-CONFIG", r.body)


class DotfilesOptionTests(StaticBase):
    server_args = ("--dotfiles",)

    def test_dotfiles_served(self):
        r = self.fetch("/.hidden")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"HIDDEN-DOTFILE\n")
        r = self.fetch("/.git/config")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.d.files["/.git/config"])

    def test_dotfiles_still_confined(self):
        for target in (b"/../secret.txt", b"/%2e%2e/secret.txt", b"/.%2e/secret.txt"):
            with self.subTest(target=target):
                r = self.fetch(None, raw_target=target)
                self.assertIn(r.status, (400, 404))
                self.assertNotIn(self.d.secret, r.body)


class FollowSymlinksTests(StaticBase):
    server_args = ("--follow-symlinks",)

    def test_symlink_out_served(self):
        r = self.fetch("/link_out")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.d.secret)
        r = self.fetch("/linkdir_out/secret.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.d.secret)

    def test_traversal_still_refused(self):
        for target in PathTests.TRAVERSAL[:20]:
            with self.subTest(target=target):
                r = self.fetch(None, raw_target=target)
                self.assertIn(r.status, (400, 404), r)
                self.assertNotIn(self.d.secret, r.body)


class DirectoryTests(StaticBase):
    def test_index(self):
        r = self.fetch("/sub/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.d.files["/sub/index.html"])
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertIsNotNone(r.header("ETag"))

    def test_redirect_without_slash(self):
        for target, location in (("/sub", "/sub/"), ("/sub?x=1", "/sub/?x=1"),
                                 ("/listing", "/listing/"), ("/empty?a=b&c", "/empty/?a=b&c")):
            with self.subTest(target=target):
                r = self.fetch(target)
                self.assertEqual(r.status, 301, r)
                self.assertEqual(r.header("Location"), location)
                H.check_common(self, r)

    def test_redirect_keeps_encoding(self):
        os.makedirs(self.d.path("sp ace"), exist_ok=True)
        r = self.fetch("/sp%20ace")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "/sp%20ace/")

    def test_head_directory(self):
        r = self.fetch("/sub/", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(int(r.header("Content-Length")), len(self.d.files["/sub/index.html"]))

    def test_listing_html(self):
        r = self.fetch("/listing/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        body = r.body.decode("utf-8")
        self.assertTrue(body.lstrip().lower().startswith("<!doctype html>"), body[:100])
        for name in ("alpha.txt", "mid.txt", "zeta.txt", "sized.bin", "adir", "bdir"):
            self.assertIn(name, body)
        # escaped, never raw
        self.assertNotIn("<b>", body)
        self.assertNotIn(H.ESCAPE_NAME, body)
        self.assertIn("&lt;b&gt;&amp;", body)
        # hidden by default
        self.assertNotIn(".dotfile", body)
        # directories first, each group sorted
        pos = [body.index(n) for n in ("adir", "bdir", "alpha.txt", "mid.txt", "sized.bin",
                                       "zeta.txt")]
        self.assertEqual(pos, sorted(pos), "listing order wrong: %s" % body)
        # sizes
        self.assertRegex(body, r"12345|12\.\d ?Ki?B?|12 ?Ki?B?\b")

    def test_listing_root(self):
        r = self.fetch("/empty/")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.body.lstrip().lower().startswith(b"<!doctype html>"))

    def test_listing_json(self):
        r = self.fetch("/listing/?format=json")
        self.assertEqual(r.status, 200)
        # RFC 8259 section 11: application/json has no charset parameter
        self.assertEqual(r.header("Content-Type"), "application/json")
        entries = json.loads(r.body.decode("utf-8"))
        self.assertIsInstance(entries, list)
        by_name = {}
        for e in entries:
            self.assertIsInstance(e, dict)
            for key in ("name", "type", "mtime"):
                self.assertIn(key, e)
            self.assertIn(e["type"], ("file", "dir"))
            if e["type"] == "file":  # a directory's size means nothing; not required
                self.assertIsInstance(e.get("size"), int, e)
            by_name[e["name"].rstrip("/")] = e
        self.assertEqual(set(by_name), {"alpha.txt", "mid.txt", "zeta.txt", "sized.bin",
                                        H.ESCAPE_NAME, "adir", "bdir"})
        self.assertEqual(by_name["adir"]["type"], "dir")
        self.assertEqual(by_name["sized.bin"]["type"], "file")
        self.assertEqual(by_name["sized.bin"]["size"], 12345)
        self.assertEqual(by_name["zeta.txt"]["size"], 3)
        want = os.stat(self.d.path("listing/zeta.txt")).st_mtime
        mt = by_name["zeta.txt"]["mtime"]
        if isinstance(mt, str):
            mt = (email.utils.parsedate_to_datetime(mt).timestamp() if mt[:3].isalpha()
                  else __import__("datetime").datetime.fromisoformat(
                      mt.replace("Z", "+00:00")).timestamp())
        self.assertLess(abs(mt - want), 1.5)
        # directories first, sorted
        names = [e["name"].rstrip("/") for e in entries]
        self.assertEqual(names[:2], ["adir", "bdir"])

    def test_listing_json_empty(self):
        r = self.fetch("/empty/?format=json")
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body.decode()), [])


class NoListingTests(StaticBase):
    server_args = ("--no-listing",)

    def test_no_listing_403(self):
        for target in ("/listing/", "/listing/?format=json", "/empty/"):
            with self.subTest(target=target):
                r = self.fetch(target)
                self.assertEqual(r.status, 403, r)
                self.assertNotIn(b"alpha.txt", r.body)

    def test_index_still_served(self):
        r = self.fetch("/sub/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.d.files["/sub/index.html"])


class IndexOptionTests(StaticBase):
    server_args = ("--index", "home.htm")

    def test_custom_index(self):
        with open(self.d.path("sub/home.htm"), "wb") as f:
            f.write(b"HOME-HTM")
        r = self.fetch("/sub/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"HOME-HTM")
        r = self.fetch("/")  # no home.htm at the root: a listing
        self.assertEqual(r.status, 200)
        self.assertIn(b"index.html", r.body)
        self.assertNotEqual(r.body, self.d.files["/index.html"])


class MimeTests(StaticBase):
    def test_content_types(self):
        cases = {
            "/page.html": {"text/html; charset=utf-8"},
            "/style.css": {"text/css; charset=utf-8"},
            "/app.js": {"text/javascript; charset=utf-8", "application/javascript; charset=utf-8"},
            "/image.png": {"image/png"},
            "/blob.zzqqx": {"application/octet-stream"},
        }
        for target, types in cases.items():
            with self.subTest(target=target):
                r = self.fetch(target)
                self.assertEqual(r.status, 200)
                self.assertIn(r.header("Content-Type"), types)
                self.assertEqual(r.body, self.d.files[target])

    def test_json_has_no_charset(self):
        # RFC 8259 section 11: the application/json media type defines no charset parameter
        self.d.write("data.json", '{"a": 1}\n')
        r = self.fetch("/data.json")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "application/json")


class ConditionalTests(StaticBase):
    def test_validators(self):
        r = self.fetch("/range.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Last-Modified"), H.MTIME_HTTP)
        self.assertRegex(r.header("ETag"), r'^"[!#-~]+"$')
        r2 = self.fetch("/hello.txt")
        self.assertNotEqual(r.header("ETag"), r2.header("ETag"))

    def test_etag_has_no_inode(self):
        # Two files with the same size and mtime (a copy, a restore, another server) get the
        # same ETag; the inode number never appears in it.
        t = 1600000000.123456789
        self.d.write("twin1.txt", "same bytes\n")
        self.d.write("twin2.txt", "same bytes\n")
        for name in ("twin1.txt", "twin2.txt"):
            os.utime(self.d.path(name), ns=(1600000000123456789, 1600000000123456789))
        e1, e2 = self.etag("/twin1.txt"), self.etag("/twin2.txt")
        self.assertEqual(e1, e2)
        ino = os.stat(self.d.path("twin1.txt")).st_ino
        self.assertNotIn("%x" % ino, e1)
        self.assertEqual(e1, '"%x.%x-%x"' % (int(t), 123456789, len("same bytes\n")))

    def test_etag_changes_with_content(self):
        p = self.d.path("changing.txt")
        with open(p, "wb") as f:
            f.write(b"one")
        os.utime(p, (H.MTIME, H.MTIME))
        e1 = self.etag("/changing.txt")
        with open(p, "wb") as f:
            f.write(b"two!")
        os.utime(p, (H.MTIME + 10, H.MTIME + 10))
        e2 = self.etag("/changing.txt")
        self.assertNotEqual(e1, e2)

    def assert_304(self, r, etag):
        self.assertEqual(r.status, 304, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("ETag"), etag)
        self.assertEqual(r.header("Last-Modified"), H.MTIME_HTTP)
        cl = r.header("Content-Length")
        self.assertIn(cl, (None, str(len(H.RANGE_DATA))), "304 with a wrong Content-Length")

    def test_if_none_match(self):
        etag = self.etag("/range.txt")
        self.assert_304(self.fetch("/range.txt", ("If-None-Match", etag)), etag)
        self.assert_304(self.fetch("/range.txt", ("If-None-Match", "*")), etag)
        self.assert_304(self.fetch("/range.txt", ("If-None-Match", '"zzz", ' + etag)), etag)
        self.assert_304(self.fetch("/range.txt", ("If-None-Match", "W/" + etag)), etag)
        r = self.fetch("/range.txt", ("If-None-Match", '"not-the-etag"'))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, H.RANGE_DATA)

    def test_if_none_match_head(self):
        etag = self.etag("/range.txt")
        r = self.fetch("/range.txt", ("If-None-Match", etag), method="HEAD")
        self.assertEqual(r.status, 304)

    def test_304_keeps_connection_in_sync(self):
        etag = self.etag("/range.txt")
        data = (get("/range.txt", ("If-None-Match", etag)) + get("/hello.txt")
                + get_close("/range.txt", ("If-None-Match", etag)))
        out, closed = H.raw_ex(self.host, self.port, data)
        self.assertTrue(closed)
        resps, rest = H.parse_responses(out)
        self.assertEqual([r.status for r in resps], [304, 200, 304])
        self.assertEqual(resps[1].body, b"hello, world\n")
        self.assertEqual(rest, b"")

    def test_if_modified_since(self):
        etag = self.etag("/range.txt")
        self.assert_304(self.fetch("/range.txt", ("If-Modified-Since", H.MTIME_HTTP)), etag)
        later = H.http_date(H.MTIME + 3600)
        self.assert_304(self.fetch("/range.txt", ("If-Modified-Since", later)), etag)
        for value in (H.http_date(H.MTIME - 1), "Tue, 01 Jan 2019 00:00:00 GMT"):
            with self.subTest(value=value):
                r = self.fetch("/range.txt", ("If-Modified-Since", value))
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, H.RANGE_DATA)
        for bad in ("yesterday", "Wed, 01 Jan 2020 00:00:00", "", "0"):
            with self.subTest(bad=bad):
                r = self.fetch("/range.txt", ("If-Modified-Since", bad))
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, H.RANGE_DATA)

    def test_if_modified_since_obsolete_formats(self):
        etag = self.etag("/range.txt")
        for value in ("Wednesday, 01-Jan-20 00:00:00 GMT", "Wed Jan  1 00:00:00 2020"):
            with self.subTest(value=value):
                self.assert_304(self.fetch("/range.txt", ("If-Modified-Since", value)), etag)

    def test_if_none_match_precedence(self):
        etag = self.etag("/range.txt")
        r = self.fetch("/range.txt", ("If-None-Match", '"other"'),
                       ("If-Modified-Since", H.MTIME_HTTP))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, H.RANGE_DATA)
        self.assert_304(self.fetch("/range.txt", ("If-None-Match", etag),
                                   ("If-Modified-Since", H.http_date(H.MTIME - 86400))), etag)

    def test_if_match(self):
        etag = self.etag("/range.txt")
        r = self.fetch("/range.txt", ("If-Match", '"other"'))
        H.check_error(self, r, 412)
        for value in (etag, "*", '"a", ' + etag):
            with self.subTest(value=value):
                r = self.fetch("/range.txt", ("If-Match", value))
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, H.RANGE_DATA)
        r = self.fetch("/range.txt", ("If-Match", "W/" + etag))  # strong comparison
        self.assertEqual(r.status, 412)

    def test_if_unmodified_since(self):
        r = self.fetch("/range.txt", ("If-Unmodified-Since", H.http_date(H.MTIME - 3600)))
        H.check_error(self, r, 412)
        for value in (H.MTIME_HTTP, H.http_date(H.MTIME + 3600)):
            with self.subTest(value=value):
                r = self.fetch("/range.txt", ("If-Unmodified-Since", value))
                self.assertEqual(r.status, 200)
        # If-Match takes precedence over If-Unmodified-Since
        etag = self.etag("/range.txt")
        r = self.fetch("/range.txt", ("If-Match", etag),
                       ("If-Unmodified-Since", H.http_date(H.MTIME - 3600)))
        self.assertEqual(r.status, 200)


class RangeTests(StaticBase):
    N = len(H.RANGE_DATA)

    def ranged(self, value, *extra):
        return self.fetch("/range.txt", ("Range", value), *extra)

    def assert_206(self, r, first, last):
        self.assertEqual(r.status, 206, r)
        self.assertEqual(r.header("Content-Range"), "bytes %d-%d/%d" % (first, last, self.N))
        self.assertEqual(r.body, H.RANGE_DATA[first:last + 1])
        self.assertEqual(r.header("Accept-Ranges"), "bytes")
        self.assertIsNotNone(r.header("ETag"))

    def test_single_ranges(self):
        cases = [("bytes=0-9", 0, 9), ("bytes=-5", 31, 35), ("bytes=5-", 5, 35),
                 ("bytes=30-100", 30, 35), ("bytes=35-35", 35, 35), ("bytes=0-0", 0, 0),
                 ("bytes=-100", 0, 35), ("bytes=0-35", 0, 35)]
        for value, first, last in cases:
            with self.subTest(value=value):
                self.assert_206(self.ranged(value), first, last)

    def test_unsatisfiable_416(self):
        for value in ("bytes=36-", "bytes=100-200", "bytes=36-40", "bytes=-0"):
            with self.subTest(value=value):
                r = self.ranged(value)
                self.assertEqual(r.status, 416, r)
                self.assertEqual(r.header("Content-Range"), "bytes */%d" % self.N)

    def test_malformed_ignored(self):
        for value in ("bytes=abc", "items=0-1", "bytes=", "bytes=-", "bytes=1-2-3",
                      "bytes=0x1-2", "bytes 0-1", "bytes=--1", "bytes=1--2"):
            with self.subTest(value=value):
                r = self.ranged(value)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, H.RANGE_DATA)
                self.assertIsNone(r.header("Content-Range"))

    def parse_multipart(self, r):
        ctype = r.header("Content-Type")
        m = re.match(r'^multipart/byteranges; ?boundary="?([^";]+)"?$', ctype or "")
        self.assertTrue(m, "Content-Type %r" % ctype)
        boundary = m.group(1).encode()
        body = r.body
        parts = []
        segs = body.split(b"--" + boundary)
        self.assertTrue(segs[-1].startswith(b"--"), "no closing delimiter: %r" % body[-80:])
        for seg in segs[1:-1]:
            self.assertTrue(seg.startswith(b"\r\n"))
            head, _, data = seg[2:].partition(b"\r\n\r\n")
            self.assertTrue(data.endswith(b"\r\n"))
            data = data[:-2]
            fields = {}
            for line in head.split(b"\r\n"):
                k, _, v = line.partition(b":")
                fields[k.strip().lower().decode()] = v.strip().decode()
            parts.append((fields, data))
        return parts

    def test_multiple_ranges(self):
        r = self.ranged("bytes=0-1,5-6")
        self.assertEqual(r.status, 206)
        self.assertIsNone(r.header("Content-Range"))
        parts = self.parse_multipart(r)
        self.assertEqual(len(parts), 2)
        for (fields, data), (a, b) in zip(parts, [(0, 1), (5, 6)]):
            self.assertTrue(fields.get("content-type", "").startswith("text/plain"), fields)
            self.assertEqual(fields.get("content-range"), "bytes %d-%d/%d" % (a, b, self.N))
            self.assertEqual(data, H.RANGE_DATA[a:b + 1])

    def test_multiple_ranges_three_with_suffix(self):
        r = self.ranged("bytes=0-0, 10-12, -2")
        self.assertEqual(r.status, 206)
        parts = self.parse_multipart(r)
        self.assertEqual([(f["content-range"], d) for f, d in parts],
                         [("bytes 0-0/36", b"0"), ("bytes 10-12/36", b"abc"),
                          ("bytes 34-35/36", b"yz")])

    def test_overlapping_ranges_merged(self):
        r = self.ranged("bytes=0-5,3-9")
        self.assertEqual(r.status, 206)
        if r.header("Content-Range") is not None:
            self.assert_206(r, 0, 9)
        else:
            parts = self.parse_multipart(r)
            self.assertEqual([(f["content-range"], d) for f, d in parts],
                             [("bytes 0-9/36", H.RANGE_DATA[:10])])

    def test_multiple_with_one_unsatisfiable(self):
        r = self.ranged("bytes=0-1,100-200")
        self.assertEqual(r.status, 206)
        if r.header("Content-Range") is not None:
            self.assert_206(r, 0, 1)
        else:
            parts = self.parse_multipart(r)
            self.assertEqual([(f["content-range"], d) for f, d in parts],
                             [("bytes 0-1/36", b"01")])

    def test_if_range(self):
        etag = self.etag("/range.txt")
        self.assert_206(self.ranged("bytes=0-9", ("If-Range", etag)), 0, 9)
        r = self.ranged("bytes=0-9", ("If-Range", '"old-etag"'))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, H.RANGE_DATA)
        self.assertIsNone(r.header("Content-Range"))
        r = self.ranged("bytes=0-9", ("If-Range", H.http_date(H.MTIME - 100)))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, H.RANGE_DATA)

    def test_if_range_date_must_be_a_strong_validator(self):
        # RFC 9110 section 13.1.5: an If-Range date is honoured only when it is a strong
        # validator, a Last-Modified at least a second before the Date (section 8.8.2.2).
        self.assert_206(self.ranged("bytes=0-9", ("If-Range", H.MTIME_HTTP)), 0, 9)
        # A modification time in the future is sent as the Date, never later (8.8.2.1), and
        # such a time is too fresh to validate a range: the whole file comes back.
        self.d.write("future.txt", H.RANGE_DATA, mtime=time.time() + 3600)
        r = self.fetch("/future.txt")
        self.assertEqual(r.status, 200)
        last_modified = r.header("Last-Modified")
        self.assertLessEqual(email.utils.parsedate_to_datetime(last_modified),
                             email.utils.parsedate_to_datetime(r.header("Date")))
        for validator in (last_modified, H.http_date(os.stat(self.d.path("future.txt")).st_mtime)):
            with self.subTest(validator=validator):
                r = self.fetch("/future.txt", ("Range", "bytes=0-9"), ("If-Range", validator))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, H.RANGE_DATA)
        # An entity-tag still validates a range of that file.
        etag = self.etag("/future.txt")
        r = self.fetch("/future.txt", ("Range", "bytes=0-9"), ("If-Range", etag))
        self.assertEqual(r.status, 206, r)
        self.assertEqual(r.body, H.RANGE_DATA[:10])

    def test_range_on_head(self):
        r = self.fetch("/range.txt", ("Range", "bytes=0-9"), method="HEAD")
        self.assertIn(r.status, (200, 206))
        self.assertEqual(r.body, b"")

    def test_range_big_offsets(self):
        r = self.fetch("/medium.bin", ("Range", "bytes=65000-65535"))
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Range"), "bytes 65000-65535/65536")
        self.assertEqual(r.body, self.d.files["/medium.bin"][65000:])
        r = self.fetch("/medium.bin", ("Range", "bytes=99999999999999999999-"))
        self.assertIn(r.status, (200, 416))

    def test_accept_ranges_on_files(self):
        for target in ("/hello.txt", "/image.png", "/sub/"):
            with self.subTest(target=target):
                self.assertEqual(self.fetch(target).header("Accept-Ranges"), "bytes")


class GzipSidecarTests(StaticBase):
    def test_gzip_when_accepted(self):
        for ae in ("gzip", "gzip, deflate, br", "deflate, gzip;q=0.5", "GZIP"):
            with self.subTest(ae=ae):
                r = self.fetch("/gz/page.html", ("Accept-Encoding", ae))
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("Content-Encoding"), "gzip")
                self.assertTrue(r.has_token("Vary", "Accept-Encoding"), r)
                self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
                self.assertEqual(r.body, self.d.files["/gz/page.html.gz"])
                self.assertEqual(gzip.decompress(r.body),
                                 b"<!DOCTYPE html>GZIPPED-PAGE-CONTENT\n")

    def test_plain_otherwise(self):
        for headers in ((), (("Accept-Encoding", "deflate, br"),),
                        (("Accept-Encoding", "identity"),), (("Accept-Encoding", "gzip;q=0"),)):
            with self.subTest(headers=headers):
                r = self.fetch("/gz/page.html", *headers)
                self.assertEqual(r.status, 200)
                self.assertIsNone(r.header("Content-Encoding"))
                self.assertTrue(r.has_token("Vary", "Accept-Encoding"), r)
                self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
                self.assertEqual(r.body, self.d.files["/gz/page.html"])

    def test_css_sidecar_type(self):
        r = self.fetch("/gz/style.css", ("Accept-Encoding", "gzip"))
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.header("Content-Type"), "text/css; charset=utf-8")
        self.assertEqual(r.body, self.d.files["/gz/style.css.gz"])

    def test_distinct_etags(self):
        gz = self.fetch("/gz/page.html", ("Accept-Encoding", "gzip"))
        plain = self.fetch("/gz/page.html")
        self.assertNotEqual(gz.header("ETag"), plain.header("ETag"))
        # and each validates only its own representation
        r = self.fetch("/gz/page.html", ("Accept-Encoding", "gzip"),
                       ("If-None-Match", gz.header("ETag")))
        self.assertEqual(r.status, 304)
        self.assertTrue(r.has_token("Vary", "Accept-Encoding"))
        r = self.fetch("/gz/page.html", ("If-None-Match", gz.header("ETag")))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.d.files["/gz/page.html"])

    def test_no_sidecar(self):
        r = self.fetch("/gz/nogz.txt", ("Accept-Encoding", "gzip"))
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, self.d.files["/gz/nogz.txt"])

    def test_stale_sidecar_is_ignored(self):
        r = self.fetch("/gz/edited.txt", ("Accept-Encoding", "gzip"))
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, self.d.files["/gz/edited.txt"])

    def test_gzip_range(self):
        # a range applies to the representation sent: the gzip bytes
        gzdata = self.d.files["/gz/page.html.gz"]
        r = self.fetch("/gz/page.html", ("Accept-Encoding", "gzip"), ("Range", "bytes=0-3"))
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.header("Content-Range"), "bytes 0-3/%d" % len(gzdata))
        self.assertEqual(r.body, gzdata[:4])


if __name__ == "__main__":
    unittest.main()
