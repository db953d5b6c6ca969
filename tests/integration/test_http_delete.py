"""netkit http serve --upload: DELETE of a directory.

An empty directory goes; one that holds anything is refused (409, the number of entries said)
unless the request asks for the tree ("Depth: infinity" or "?recursive=1"). The tree is removed
without following a link, never above the target, never the root, and refused whole when it
holds something the listing would not show or passes the depth and entry limits. Every answer
is read through the harness's wire-checked connections (wirecheck: h11).
"""
import base64
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import httptest as H

USER, PASS = "alice", "pw"
MAX_ENTRIES, MAX_DEPTH = 10000, 32  # NK__RMTREE_MAX_* in src/httpd/internal.h


def basic(user=USER, password=PASS):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def tree_files(root):
    """Every path below root, links not followed, relative and sorted."""
    out = []
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(out)


class Base(unittest.TestCase):
    args = ("--upload", "--auth", "%s:%s" % (USER, PASS), "-q")

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.root = os.path.join(self.tmp.name, "root")
        self.outside = os.path.join(self.tmp.name, "outside")
        os.makedirs(self.outside)
        self.write_abs(os.path.join(self.outside, "keep.txt"), b"outside\n")
        os.makedirs(os.path.join(self.root, "empty"))
        os.makedirs(os.path.join(self.root, "tree", "a", "b"))
        self.write("tree/f.txt", b"f\n")
        self.write("tree/a/g.txt", b"g\n")
        self.write("tree/a/b/h.txt", b"h\n")
        self.srv = H.serve(self, self.root, *self.args)
        self.addr = self.srv.host_port()

    def write(self, rel, data):
        self.write_abs(os.path.join(self.root, rel), data)

    @staticmethod
    def write_abs(path, data):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def exists(self, rel):
        return os.path.lexists(os.path.join(self.root, rel))

    def send(self, method, target, headers=(), auth=True):
        hs = list(headers)
        if auth:
            hs.append(("Authorization", auth if isinstance(auth, str) else basic()))
        c = H.Conn(self.addr, timeout=30)
        self.addCleanup(c.close)
        r = c.request(H.req(method, target, hs), method, timeout=30)
        H.check_common(self, r, expect_length=method != "HEAD")
        return r

    def delete(self, target, *headers, auth=True):
        return self.send("DELETE", target, headers, auth)

    def message(self, r):
        """The explanation of an error page (its <p>)."""
        text = r.body.decode()
        return text[text.index("<p>") + 3:text.index("</p>")]


class DirectoryDeleteTests(Base):
    def test_empty_directory(self):
        r = self.delete("/empty/")
        self.assertEqual((r.status, r.body), (204, b""))
        self.assertFalse(self.exists("empty"))
        for method in ("GET", "HEAD"):
            self.assertEqual(self.send(method, "/empty/", auth=False).status, 404)
        # without the trailing slash too
        os.mkdir(os.path.join(self.root, "again"))
        self.assertEqual(self.delete("/again").status, 204)
        self.assertFalse(self.exists("again"))
        self.assertEqual(self.delete("/again/").status, 404)

    def test_not_empty_refused_then_recursive(self):
        # cache what is about to go: the listing pages and a file's open descriptor
        self.assertEqual(self.send("GET", "/tree/a/g.txt", auth=False).body, b"g\n")
        self.assertIn(b'href="tree/"', self.send("GET", "/", auth=False).body)
        self.assertIn(b'href="b/"', self.send("GET", "/tree/a/", auth=False).body)
        before = tree_files(self.root)
        r = self.delete("/tree/")
        self.assertEqual(r.status, 409)
        self.assertIn("This directory is not empty: 5 entries are below it.", self.message(r))
        self.assertEqual(tree_files(self.root), before)
        r = self.delete("/tree/", ("Depth", "infinity"))
        self.assertEqual((r.status, r.body), (204, b""))
        self.assertFalse(self.exists("tree"))
        for target in ("/tree/", "/tree", "/tree/a/", "/tree/a/g.txt", "/tree/f.txt"):
            for method in ("GET", "HEAD"):
                self.assertEqual(self.send(method, target, auth=False).status, 404,
                                 (method, target))
        self.assertNotIn(b"tree", self.send("GET", "/", auth=False).body)
        # ?recursive=1 asks the same; a file inside it is named in the count
        self.write("other/x.txt", b"x")
        r = self.delete("/other")
        self.assertIn("not empty: 1 entry is below it", self.message(r))
        self.assertEqual(self.delete("/other?a=b&recursive=1").status, 204)
        self.assertFalse(self.exists("other"))
        self.assertEqual(tree_files(self.root), ["empty"])

    def test_pipelined_get_after_delete(self):
        c = H.Conn(self.addr, timeout=30)
        self.addCleanup(c.close)
        get = H.get("/tree/a/b/h.txt")
        self.assertEqual(c.request(get).body, b"h\n")
        c.send(H.req("DELETE", "/tree/?recursive=1", [("Authorization", basic())]) + get)
        self.assertEqual(c.read_response("DELETE", 30).status, 204)
        self.assertEqual(c.read_response("GET", 30).status, 404)

    def test_other_depth_is_refused(self):
        r = self.delete("/tree/", ("Depth", "1"))
        self.assertEqual(r.status, 400)
        self.assertTrue(self.exists("tree/a/b/h.txt"))

    def test_symlinks_are_removed_not_followed(self):
        keep = os.path.join(self.root, "keep")
        os.makedirs(os.path.join(keep, "inner"))
        self.write("keep/inner/k.txt", b"k\n")
        os.symlink(os.path.join(self.outside, "keep.txt"), os.path.join(self.root, "tree/out"))
        os.symlink(self.outside, os.path.join(self.root, "tree/a/outdir"))
        os.symlink("../../keep", os.path.join(self.root, "tree/a/indir"))
        os.symlink("nowhere", os.path.join(self.root, "tree/dangling"))
        r = self.delete("/tree/", ("Depth", "infinity"))
        self.assertEqual(r.status, 204, r.body)
        self.assertFalse(self.exists("tree"))
        with open(os.path.join(self.outside, "keep.txt"), "rb") as f:
            self.assertEqual(f.read(), b"outside\n")
        self.assertEqual(sorted(os.listdir(self.outside)), ["keep.txt"])
        self.assertEqual(tree_files(keep), ["inner", "inner/k.txt"])

    def test_link_to_a_directory_is_not_a_directory_to_delete(self):
        os.symlink("tree", os.path.join(self.root, "alias"))
        for target in ("/alias", "/alias/", "/alias/?recursive=1"):
            self.assertEqual(self.delete(target).status, 403, target)
        self.assertTrue(os.path.islink(os.path.join(self.root, "alias")))
        self.assertTrue(self.exists("tree/a/b/h.txt"))

    def test_root_and_traversal_refused(self):
        before = tree_files(self.root)
        for target in ("/", "/?recursive=1", "/tree/..", "/tree/%2e%2e/"):
            r = self.delete(target, ("Depth", "infinity"))
            self.assertEqual(r.status, 403, target)
            self.assertEqual(self.message(r), "The root directory is never deleted.")
        for target in ("/../outside/", "/%2e%2e/outside/", "/tree/../../outside",
                       "/%2E%2E%2Foutside/"):
            r = self.delete(target, ("Depth", "infinity"))
            self.assertIn(r.status, (400, 404), target)
        self.assertEqual(tree_files(self.root), before)
        self.assertEqual(sorted(os.listdir(self.outside)), ["keep.txt"])

    def test_unauthenticated_refused(self):
        self.assertEqual(self.delete("/empty/", auth=False).status, 401)
        self.assertEqual(self.delete("/tree/?recursive=1", auth=basic(password="no")).status,
                         401)
        self.assertTrue(self.exists("empty"))
        self.assertTrue(self.exists("tree/a/b/h.txt"))

    def test_trailing_slash_on_a_file(self):
        self.assertEqual(self.delete("/tree/f.txt/").status, 404)
        self.assertTrue(self.exists("tree/f.txt"))

    def test_hidden_entries_refuse_the_whole_tree(self):
        for hidden in ("tree/a/b/.secret", "tree/.netkit-upload-1-abcdef"):
            self.write(hidden, b"s")
            before = tree_files(self.root)
            for extra in ((), (("Depth", "infinity"),)):
                r = self.delete("/tree/", *extra)
                self.assertEqual(r.status, 409, hidden)
                self.assertEqual(self.message(r), "Nothing was deleted: the directory holds "
                                 "entries this server does not list (dotfiles, uploads in "
                                 "progress, special files).")
            self.assertEqual(tree_files(self.root), before)
            os.unlink(os.path.join(self.root, hidden))
        os.mkfifo(os.path.join(self.root, "tree/a/fifo"))
        self.assertEqual(self.delete("/tree/?recursive=1").status, 409)
        self.assertTrue(self.exists("tree/a/fifo"))
        os.unlink(os.path.join(self.root, "tree/a/fifo"))
        self.assertEqual(self.delete("/tree/?recursive=1").status, 204)

    def test_depth_limit(self):
        deep = os.path.join(self.root, "deep")
        os.makedirs(os.path.join(deep, *["d"] * (MAX_DEPTH + 1)))
        r = self.delete("/deep/?recursive=1")
        self.assertEqual(r.status, 409)
        self.assertIn("the tree is more than %d directories deep" % MAX_DEPTH, self.message(r))
        self.assertTrue(os.path.isdir(os.path.join(deep, *["d"] * (MAX_DEPTH + 1))))
        os.rmdir(os.path.join(deep, *["d"] * (MAX_DEPTH + 1)))
        self.assertEqual(self.delete("/deep/?recursive=1").status, 204)
        self.assertFalse(self.exists("deep"))

    def test_entry_limit(self):
        many = os.path.join(self.root, "many")
        os.mkdir(many)
        for i in range(MAX_ENTRIES + 1):
            os.close(os.open(os.path.join(many, "f%05d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
        r = self.delete("/many/?recursive=1")
        self.assertEqual(r.status, 409)
        self.assertIn("the tree holds more than %d entries" % MAX_ENTRIES, self.message(r))
        self.assertEqual(len(os.listdir(many)), MAX_ENTRIES + 1)
        os.unlink(os.path.join(many, "f00000"))
        r = self.delete("/many/?recursive=1")
        self.assertEqual(r.status, 204, r.body[:300])
        self.assertFalse(self.exists("many"))

    def test_partial_failure_names_the_entry(self):
        victim = os.path.join(self.root, "tree/a/b/h.txt")
        if shutil.which("chattr") is None or subprocess.run(
                ["chattr", "+i", victim], capture_output=True).returncode != 0:
            self.skipTest("no immutable attribute here (chattr +i) to make an unlink fail")
        self.addCleanup(subprocess.run, ["chattr", "-i", victim], capture_output=True)
        r = self.delete("/tree/", ("Depth", "infinity"))
        self.assertEqual(r.status, 403)
        self.assertRegex(self.message(r), r'(Deleted \d+ entr(y|ies), then stopped|Nothing was '
                         r'deleted): could not delete "a/b/h.txt": Operation not '
                         r'permitted\.$')
        self.assertTrue(os.path.exists(victim))


class DotfilesTests(Base):
    args = ("--upload", "--auth", "%s:%s" % (USER, PASS), "--dotfiles", "-q")

    def test_listed_dotfiles_may_go(self):
        self.write("tree/a/.profile", b"p")
        self.write("tree/.netkit-upload-1-abcdef", b"s")  # never listed, whatever the options
        self.assertEqual(self.delete("/tree/?recursive=1").status, 409)
        os.unlink(os.path.join(self.root, "tree/.netkit-upload-1-abcdef"))
        self.assertEqual(self.delete("/tree/?recursive=1").status, 204)
        self.assertFalse(self.exists("tree"))


class ListingButtonTests(Base):
    def test_directories_have_a_delete_button(self):
        r = self.send("GET", "/", auth=False)
        rows = [x for x in r.body.decode().split("\n") if x.startswith("<tr><td>")]
        self.assertEqual(len([x for x in rows if 'class="del"' in x]), 2, rows)
        self.assertIn('<a href="tree/">tree/</a> <button type="button" class="del"', r.body.decode())
        self.assertIn("?recursive=1", r.body.decode())


class ListingCacheTests(Base):
    def test_cached_page_forgets_the_directory(self):
        time.sleep(2.2)  # the listing cache keeps only pages of directories quiet for a second
        for _ in range(2):
            self.assertIn(b'href="tree/"', self.send("GET", "/", auth=False).body)
        self.assertEqual(self.delete("/tree/?recursive=1").status, 204)
        self.assertNotIn(b'href="tree/"', self.send("GET", "/", auth=False).body)


if __name__ == "__main__":
    unittest.main()
