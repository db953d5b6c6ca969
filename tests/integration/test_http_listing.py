"""netkit http serve: what listings show and what is served behind them.

A listing shows only what its links would serve, and every link fetches what it names:
temporary upload files are never listed or served (also through a symlink), the dotfile
rule applies to where a symlink leads, refused or dangling links, names a request cannot
carry and special files are left out. Listings are cached per directory and capped.
"""
import gzip
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import time
import unittest
import urllib.parse

import harness
import httptest as H

TMP_PREFIX = ".netkit-upload-"


class Base(unittest.TestCase):
    args = ()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="netkit-listing-")
        self.addCleanup(self.tmp.cleanup)
        self.base = self.tmp.name
        self.root = os.path.join(self.base, "root")
        os.makedirs(os.path.join(self.root, ".git"))
        self.write(".git/config", b"[core]\nGIT-CONFIG-SECRET\n")
        self.write("plain.txt", b"plain\n")
        self.write(os.path.join(self.base, "outside.txt"), b"OUTSIDE-SECRET\n")
        self.build()
        self.srv = H.serve(self, self.root, *self.args)
        self.host, self.port = self.srv.host_port()

    def build(self):
        pass

    def write(self, rel, data):
        p = os.path.join(self.root, rel)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def fetch(self, target, method="GET"):
        data = H.req(method, target, (("Connection", "close"),))
        out, _ = H.raw_ex(self.host, self.port, data, 10)
        resps, _ = H.parse_responses(out, [method])
        self.assertEqual(len(resps), 1, out[:300])
        return resps[0]

    def listing(self, path="/"):
        r = self.fetch(path)
        self.assertEqual(r.status, 200, r)
        return r.body.decode("utf-8")

    def names_json(self, path="/"):
        r = self.fetch(path + "?format=json")
        self.assertEqual(r.status, 200, r)
        return {e["name"] for e in json.loads(r.body.decode("utf-8"))}

    def hrefs(self, path="/"):
        body = self.listing(path)
        rows = re.search(r"<tbody>(.*)</tbody>", body, re.S).group(1)
        return [h for h in re.findall(r'<a href="([^"]*)"', rows) if h != "../"]

    def assert_every_link_served(self, path="/"):
        """Each link of the listing answers 200 with exactly the listed entry."""
        for href in self.hrefs(path):
            with self.subTest(href=href):
                r = self.fetch(path + href)
                self.assertEqual(r.status, 200, "%s%s listed but answered %d" %
                                 (path, href, r.status))


class UploadTempTests(Base):
    """--upload --dotfiles: a body being uploaded sits in a .netkit-upload-* file."""
    args = ("--upload", "--upload-anonymous", "--dotfiles", "-q")

    def test_upload_in_progress_not_listed_or_served(self):
        s = harness.connect((self.host, self.port), 5)
        self.addCleanup(s.close)
        s.sendall(b"PUT /incoming.bin HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n"
                  + b"PARTIAL-UPLOAD-BYTES" * 10)
        deadline = time.monotonic() + 5
        temps = []
        while not temps and time.monotonic() < deadline:
            temps = [n for n in os.listdir(self.root) if n.startswith(TMP_PREFIX)]
            time.sleep(0.02)
        self.assertTrue(temps, "the upload made no temporary file")
        tmpname = temps[0]
        os.symlink(tmpname, os.path.join(self.root, "tmplink"))
        # dotfiles are on and listed, the temporary file is not
        body = self.listing("/")
        self.assertIn(".git/", body)
        self.assertNotIn(TMP_PREFIX, body)
        self.assertNotIn("tmplink", body)
        names = self.names_json("/")
        self.assertIn(".git", names)
        self.assertFalse([n for n in names if n.startswith(TMP_PREFIX)], names)
        self.assertNotIn("tmplink", names)
        for target in ("/" + tmpname, "/tmplink"):
            with self.subTest(target=target):
                r = self.fetch(target)
                self.assertEqual(r.status, 404, r)
                self.assertNotIn(b"PARTIAL-UPLOAD", r.body)


class SymlinkDotfileTests(Base):
    """A symlink inside the root that leads to a dotfile is refused like the dotfile."""

    def build(self):
        os.symlink(".git/config", os.path.join(self.root, "dotlink"))
        os.symlink(".git", os.path.join(self.root, "dotdirlink"))
        os.symlink("plain.txt", os.path.join(self.root, "goodlink"))

    def test_link_to_dotfile_refused(self):
        for target in ("/dotlink", "/dotdirlink/config", "/dotdirlink/"):
            with self.subTest(target=target):
                r = self.fetch(target)
                self.assertEqual(r.status, 404, r)
                self.assertNotIn(b"GIT-CONFIG-SECRET", r.body)
        r = self.fetch("/goodlink")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"plain\n")

    def test_listing_omits_link_to_dotfile(self):
        names = self.names_json("/")
        self.assertEqual(names, {"plain.txt", "goodlink"})
        self.assert_every_link_served("/")


class SymlinkDotfileAllowedTests(SymlinkDotfileTests):
    args = ("--dotfiles",)

    def test_link_to_dotfile_refused(self):
        r = self.fetch("/dotlink")
        self.assertEqual(r.status, 200)
        self.assertIn(b"GIT-CONFIG-SECRET", r.body)

    def test_listing_omits_link_to_dotfile(self):
        self.assertEqual(self.names_json("/"),
                         {"plain.txt", "goodlink", "dotlink", "dotdirlink", ".git"})
        self.assert_every_link_served("/")


class ListingContentTests(Base):
    """Only what would be served is listed; each listed name is fetchable by its link."""

    def build(self):
        os.symlink("../outside.txt", os.path.join(self.root, "link_out"))
        os.symlink(os.path.join(self.base, "outside.txt"), os.path.join(self.root, "abs_out"))
        os.symlink("missing", os.path.join(self.root, "dangling"))
        os.symlink("plain.txt", os.path.join(self.root, "link_in"))
        os.mkfifo(os.path.join(self.root, "a-fifo"))
        self.write("line\nfeed.txt", b"lf\n")
        self.write("tab\there.txt", b"tab\n")
        self.write(b"bad-\xff-utf8.txt".decode("utf-8", "surrogateescape"), b"bad\n")
        self.write("caf\u00e9 & <b>.txt", b"utf-8 name\n")
        self.write("100%.txt", b"percent\n")

    def test_only_servable_entries_listed(self):
        names = self.names_json("/")
        self.assertEqual(names, {"plain.txt", "link_in", "caf\u00e9 & <b>.txt", "100%.txt"})
        body = self.listing("/")
        self.assertNotIn("OUTSIDE", body)
        for name in ("link_out", "abs_out", "dangling", "a-fifo", "%0A", "%09", "feed.txt"):
            self.assertNotIn(name, body)

    def test_every_link_served(self):
        self.assert_every_link_served("/")
        self.assertEqual(len(self.hrefs("/")), 4)

    def test_refused_names_are_refused(self):
        # what is left out of the listing is indeed not served
        for target in ("/link_out", "/abs_out", "/dangling", "/a-fifo", "/line%0Afeed.txt"):
            with self.subTest(target=target):
                self.assertIn(self.fetch(target).status, (400, 404))


class BreadcrumbTests(Base):
    """The heading of a listing links every ancestor directory, each link served."""

    def build(self):
        os.makedirs(os.path.join(self.root, "a b", "c&<d>", "caf\u00e9"))

    def crumbs(self, path):
        body = self.listing(path)
        h1 = re.search(r"<h1>(.*?)</h1>", body, re.S).group(1)
        return re.findall(r'<a href="([^"]*)"[^>]*>([^<]*)</a>', h1), h1

    def test_every_ancestor_linked(self):
        path = "/" + "/".join(urllib.parse.quote(s) for s in
                              ("a b", "c&<d>", "caf\u00e9")) + "/"
        crumbs, h1 = self.crumbs(path)
        self.assertEqual([t for _, t in crumbs], ["/", "a b", "c&amp;&lt;d&gt;", "caf\u00e9"])
        self.assertEqual([h for h, _ in crumbs],
                         ["/", "/a%20b/", "/a%20b/c%26%3Cd%3E/", "/a%20b/c%26%3Cd%3E/caf%C3%A9/"])
        self.assertEqual(re.sub(r"<[^>]*>", "", h1), "Index of /a b/c&amp;&lt;d&gt;/caf\u00e9/")
        # Each crumb leads to that directory's own listing, whose last crumb is itself.
        for href, _ in crumbs:
            with self.subTest(href=href):
                sub, _ = self.crumbs(href)
                self.assertEqual(sub[-1][0], href)


class SortTests(Base):
    """?sort=name|size|mtime&order=asc|desc, HTML and JSON alike; directories always first."""
    FILES = (("b.txt", 300, 1000), ("a.txt", 20, 3000), ("c.txt", 20, 2000), ("D.txt", 4000, 500))

    def build(self):
        os.mkdir(os.path.join(self.root, "zz"))
        os.mkdir(os.path.join(self.root, "aa"))
        for name, size, mtime in self.FILES:
            p = self.write(name, b"x" * size)
            os.utime(p, (mtime, mtime))
        os.utime(os.path.join(self.root, "plain.txt"), (1500, 1500))

    def order(self, query, json_=True):
        if json_:
            r = self.fetch("/?format=json&" + query if query else "/?format=json")
            self.assertEqual(r.status, 200)
            return [e["name"] for e in json.loads(r.body)]
        return [urllib.parse.unquote(h).rstrip("/")
                for h in self.hrefs("/?" + query if query else "/")]

    def test_orders(self):
        # plain.txt is 6 bytes at 1500; ties broken by name (a.txt, c.txt both 20 bytes)
        want = {
            "": ["aa", "zz", "D.txt", "a.txt", "b.txt", "c.txt", "plain.txt"],
            "sort=name&order=desc": ["zz", "aa", "plain.txt", "c.txt", "b.txt", "a.txt", "D.txt"],
            "sort=size": ["aa", "zz", "plain.txt", "a.txt", "c.txt", "b.txt", "D.txt"],
            "sort=size&order=desc": ["aa", "zz", "D.txt", "b.txt", "a.txt", "c.txt", "plain.txt"],
            "sort=mtime&order=asc": ["aa", "zz", "D.txt", "b.txt", "plain.txt", "c.txt", "a.txt"],
            "order=desc&sort=mtime": ["zz", "aa", "a.txt", "c.txt", "plain.txt", "b.txt", "D.txt"],
        }
        # the directories' own times decide their order by mtime
        os.utime(os.path.join(self.root, "aa"), (100, 100))
        os.utime(os.path.join(self.root, "zz"), (200, 200))
        for query, names in want.items():
            for json_ in (True, False):
                with self.subTest(query=query, json=json_):
                    self.assertEqual(self.order(query, json_), names)

    def test_unknown_values_ignored(self):
        default = self.order("")
        for query in ("sort=bogus", "sort=size;drop", "order=sideways", "sort=&order=",
                      "sort=%73ize", "SORT=size"):
            with self.subTest(query=query):
                self.assertEqual(self.order(query), default)
                self.assertEqual(self.order(query, False), default)

    def test_headers_toggle(self):
        body = self.listing("/?sort=size&order=asc")
        heads = re.findall(r'<th[^>]*><a href="([^"]*)">([^<]*)</a>', body)
        self.assertEqual(heads, [("?sort=name&amp;order=asc", "Name"),
                                 ("?sort=size&amp;order=desc", "Size"),
                                 ("?sort=mtime&amp;order=asc", "Modified (UTC)")])
        self.assertIn('aria-sort="ascending"', body)

    def test_cache_keys_on_sort(self):
        # Old enough for the listing cache to keep pages; each order is a page of its own.
        time.sleep(2.2)
        for _ in range(2):
            self.assertEqual(self.order("sort=size")[2], "plain.txt")
            self.assertEqual(self.order("sort=size&order=desc")[2], "D.txt")
            self.assertEqual(self.order("")[2], "D.txt")
            self.assertEqual(self.order("sort=name&order=desc")[2], "plain.txt")
            self.assertEqual(self.order("sort=mtime", False)[2], "D.txt")
            self.assertEqual(self.order("sort=mtime&order=desc", False)[2], "a.txt")


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class ArchiveTests(Base):
    """--archives: ?download=tar|tar.gz streams exactly what the listings list."""
    args = ("--archives",)
    LONG = "long-" + "n" * 140 + ".txt"  # over ustar's 100 bytes: a pax header

    def build(self):
        os.makedirs(os.path.join(self.root, "docs", "deep", "deeper"))
        os.makedirs(os.path.join(self.root, "docs", ".secret"))
        self.write("docs/.secret/key", b"DOTDIR-SECRET\n")
        self.write("docs/.env", b"DOTFILE-SECRET\n")
        self.write("docs/readme.md", b"# readme\n")
        self.write("docs/deep/data.bin", os.urandom(70000))
        self.write("docs/deep/deeper/" + self.LONG, b"long name\n")
        self.write("docs/caf\u00e9 & <b>.txt", b"utf-8 name\n")
        self.write("docs/.netkit-upload-1-x", b"TEMP-UPLOAD\n")
        os.symlink("../../outside.txt", os.path.join(self.root, "docs", "link_out"))
        os.symlink("readme.md", os.path.join(self.root, "docs", "link_in"))
        os.symlink("..", os.path.join(self.root, "docs", "deep", "up"))  # a loop
        os.mkfifo(os.path.join(self.root, "docs", "fifo"))

    def listed_tree(self, path, prefix):
        """{member name: bytes or None for a directory}, from the JSON listings and GETs."""
        out = {prefix: None}
        for e in json.loads(self.fetch(urllib.parse.quote(path) + "?format=json").body):
            if e["type"] == "dir":
                if e["name"] == "up":
                    continue  # the way back up: left out of the archive, as it is walking there
                out.update(self.listed_tree(path + e["name"] + "/", prefix + e["name"] + "/"))
            else:
                r = self.fetch(urllib.parse.quote(path + e["name"]))
                self.assertEqual(r.status, 200)
                out[prefix + e["name"]] = r.body
        return out

    def download(self, target):
        r = self.fetch(target)
        self.assertEqual(r.status, 200, r)
        return r

    def members(self, data, mode="r:"):
        got = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as t:
            for m in t.getmembers():
                self.assertTrue(m.isfile() or m.isdir(), m.name)
                got[m.name + "/" if m.isdir() else m.name] = (
                    t.extractfile(m).read() if m.isfile() else None)
        return got

    def test_tar_holds_what_is_listed(self):
        r = self.download("/docs/?download=tar")
        self.assertEqual(r.header("Content-Type"), "application/x-tar")
        self.assertEqual(r.header("Content-Disposition"), 'attachment; filename="docs.tar"')
        self.assertEqual(len(r.body) % 512, 0)
        got = self.members(r.body)
        want = self.listed_tree("/docs/", "docs/")
        self.assertEqual(set(got), set(want))
        self.assertEqual(got, want)
        self.assertIn("docs/deep/deeper/" + self.LONG, got)
        self.assertIn("docs/link_in", got)
        for absent in ("link_out", ".env", ".secret", "fifo", ".netkit-upload", "up/"):
            self.assertFalse([n for n in got if absent in n], absent)
        for secret in (b"SECRET", b"TEMP-UPLOAD"):
            self.assertNotIn(secret, r.body)
        # GNU tar reads it too, names and all
        path = os.path.join(self.base, "docs.tar")
        with open(path, "wb") as f:
            f.write(r.body)
        names = subprocess.run(["tar", "-tf", path], capture_output=True, check=True,
                               env=dict(os.environ, LC_ALL="C.UTF-8")).stdout.decode()
        self.assertEqual(sorted(n for n in names.split("\n") if n), sorted(want))

    def test_tar_gz(self):
        r = self.download("/docs/?download=tar.gz")
        self.assertEqual(r.header("Content-Type"), "application/gzip")
        self.assertEqual(r.header("Content-Disposition"), 'attachment; filename="docs.tar.gz"')
        self.assertEqual(r.body[:2], b"\x1f\x8b")
        self.assertEqual(self.members(gzip.decompress(r.body)),
                         self.listed_tree("/docs/", "docs/"))

    def test_root_and_head(self):
        r = self.download("/?download=tar")
        got = self.members(r.body)
        self.assertIn("root/plain.txt", got)
        self.assertNotIn("root/.git/", got)
        self.assertIn("root/docs/readme.md", got)
        h = self.fetch("/docs/?download=tar", "HEAD")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.body, b"")
        self.assertEqual(self.fetch("/docs/?download=zip").status, 404)
        # the listing links both archives
        body = self.listing("/docs/")
        self.assertIn('href="?download=tar"', body)
        self.assertIn('href="?download=tar.gz"', body)

    def test_memory_stays_bounded(self):
        # 50 MiB of incompressible data; the server must stream it, not buffer it.
        size = 50 << 20
        with open(os.path.join(self.root, "docs", "deep", "big.bin"), "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(size >> 20):
                f.write(block)
        pids = H.proc_tree(self.srv.proc.pid)
        for target in ("/docs/?download=tar", "/docs/?download=tar.gz"):
            with self.subTest(target=target):
                before = rss_kib(pids)
                s = harness.connect((self.host, self.port), 30)
                try:
                    s.sendall(H.req("GET", target, (("Connection", "close"),)))
                    got, peak, deadline = 0, before, time.monotonic() + 120
                    next_sample = 0
                    while time.monotonic() < deadline:
                        b = s.recv(1 << 16)
                        if not b:
                            break
                        got += len(b)
                        if got < (8 << 20):
                            time.sleep(0.002)  # a slow reader at first: nothing may pile up
                        if got >= next_sample:  # the server's RSS every 512 KiB received
                            peak = max(peak, rss_kib(pids))
                            next_sample = got + (512 << 10)
                finally:
                    s.close()
                self.assertGreater(got, size)
                print("\n%s: %d bytes, server RSS %d KiB before, peak %d KiB"
                      % (target, got, before, peak))
                if not harness.tls_under_asan():  # see its docstring
                    self.assertLess(peak - before, 20 << 10)


class ArchiveOffTests(Base):
    """Without --archives the parameter finds nothing; with --no-listing it is refused."""

    def test_off(self):
        self.assertEqual(self.fetch("/?download=tar").status, 404)
        self.assertEqual(self.fetch("/?download=tar.gz").status, 404)
        self.assertNotIn("download=", self.listing("/"))


class ArchiveNoListingTests(Base):
    args = ("--archives", "--no-listing")

    def test_refused(self):
        self.assertEqual(self.fetch("/?download=tar").status, 403)


class ListingCacheTests(Base):
    """The rendered listing is cached per directory and still follows every change."""

    def test_change_seen_at_once(self):
        # The directory changes within the same second as the cached render: never stale.
        self.assertNotIn("new1.txt", self.names_json("/"))
        self.listing("/")
        self.write("new1.txt", b"1")
        self.assertIn("new1.txt", self.names_json("/"))
        self.assertIn("new1.txt", self.listing("/"))
        os.unlink(os.path.join(self.root, "new1.txt"))
        self.assertNotIn("new1.txt", self.names_json("/"))
        self.assertNotIn("new1.txt", self.listing("/"))

    def test_change_seen_after_quiet_period(self):
        # A listing cached once the directory was quiet for a while is dropped on a change.
        time.sleep(2.2)
        self.assertNotIn("late.txt", self.listing("/"))
        self.assertNotIn("late.txt", self.names_json("/"))
        self.write("late.txt", b"late")
        self.assertIn("late.txt", self.listing("/"))
        self.assertIn("late.txt", self.names_json("/"))


class BigListingTests(Base):
    """20,000 entries: capped rendering, and a cache that makes repeats cheap."""
    N = 20000
    args = ("--status", "/_status")

    def build(self):
        big = os.path.join(self.root, "big")
        os.mkdir(big)
        for i in range(self.N):
            with open(os.path.join(big, "file-%05d.txt" % i), "wb"):
                pass

    def test_rows_capped_and_said(self):
        body = self.listing("/big/")
        rows = body.count("<tr><td><a href=\"file-")
        self.assertEqual(rows, 10000)
        self.assertIn("truncated", body)
        self.assertIn("10000 more entries", body)
        self.assertEqual(len(json.loads(self.fetch("/big/?format=json").body)), 10000)

    def pipelined(self, n):
        """n pipelined GETs of /big/ on one connection; (bytes, wall seconds, server CPU)."""
        pids = H.proc_tree(self.srv.proc.pid)
        cpu0, t0 = H.cpu_seconds(pids), time.monotonic()
        s = harness.connect((self.host, self.port), 60)
        try:
            s.sendall(H.req("GET", "/big/") * (n - 1)
                      + H.req("GET", "/big/", (("Connection", "close"),)))
            chunks = []
            while True:
                b = s.recv(1 << 20)
                if not b:
                    break
                chunks.append(b)
        finally:
            s.close()
        out = b"".join(chunks)
        return out, time.monotonic() - t0, H.cpu_seconds(pids) - cpu0

    def rendered(self):
        return json.loads(self.fetch("/_status").body)["listings_rendered"]

    def test_pipelined_repeats_are_served_from_the_cache(self):
        # Let the directory's times age past the cache's same-second rule.
        time.sleep(2.2)
        before = self.rendered()
        one, t_one, cpu_one = self.pipelined(1)
        self.assertEqual(one.count(b"HTTP/1.1 200 OK\r\n"), 1)
        self.assertEqual(self.rendered(), before + 1)
        out, t_all, cpu_all = self.pipelined(20)
        self.assertEqual(out.count(b"HTTP/1.1 200 OK\r\n"), 20)
        self.assertEqual(out.count(b"truncated"), 20)
        # Counted, not timed: all 20 answers came from the page rendered once above.
        self.assertEqual(self.rendered(), before + 1)
        print("\nlisting of %d entries: 1 request %.3f s (server CPU %.2f s), 20 pipelined "
              "%.3f s (server CPU %.2f s)" % (self.N, t_one, cpu_one, t_all, cpu_all))
        # A change to the directory is seen: the next request renders again.
        with open(os.path.join(self.root, "big", "new.txt"), "wb"):
            pass
        self.assertIn("10001 more entries", self.listing("/big/"))
        self.assertEqual(self.rendered(), before + 2)

if __name__ == "__main__":
    unittest.main()
