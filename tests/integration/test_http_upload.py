"""netkit http serve --upload: PUT, DELETE, POST multipart/form-data behind Basic auth.

Every write must leave either the old file or the whole new one, never a part, and no
temporary file (".netkit-upload-*") once the request is over.
"""
import base64
import gzip
import hashlib
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness
import httptest as H

USER, PASS = "alice", "s3cret pass:word"


def basic(user=USER, password=PASS):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def temps(root):
    found = []
    for d, _, files in os.walk(root):
        found += [os.path.join(d, f) for f in files if f.startswith(".netkit-upload-")]
    return found


def wait_for(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


class Base(unittest.TestCase):
    args = ("--upload", "--auth", "%s:%s" % (USER, PASS), "-q")

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.root = os.path.join(self.tmp.name, "root")
        os.makedirs(os.path.join(self.root, "sub"))
        self.write("old.txt", b"old content\n")
        self.srv = H.serve(self, self.root, *self.args)
        self.host, self.port = self.srv.host_port()

    def write(self, rel, data):
        with open(os.path.join(self.root, rel), "wb") as f:
            f.write(data)

    def read(self, rel):
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, auth=True):
        c = harness.http_connection(self.host, self.port, timeout=30)
        self.addCleanup(c.close)
        h = dict(headers or {})
        if auth:
            h["Authorization"] = auth if isinstance(auth, str) else basic()
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()


class AuthTests(Base):
    def test_put_needs_credentials(self):
        st, h, _ = self.request("PUT", "/new.txt", b"x", auth=False)
        self.assertEqual(st, 401)
        self.assertEqual(h["www-authenticate"], 'Basic realm="netkit", charset="UTF-8"')
        st, _, _ = self.request("PUT", "/new.txt", b"x", auth=basic(password="wrong"))
        self.assertEqual(st, 401)
        st, _, _ = self.request("PUT", "/new.txt", b"x", auth=basic(user="bob"))
        self.assertEqual(st, 401)
        st, _, _ = self.request("PUT", "/new.txt", b"x", auth="Bearer abc")
        self.assertEqual(st, 401)
        self.assertFalse(os.path.exists(os.path.join(self.root, "new.txt")))
        self.assertEqual(temps(self.root), [])

    def test_put_create_then_replace(self):
        st, h, body = self.request("PUT", "/new.txt", b"first\n")
        self.assertEqual(st, 201)
        self.assertEqual(h["location"], "/new.txt")
        self.assertEqual(self.read("new.txt"), b"first\n")
        # the read side serves it at once (and after replacing, the new bytes)
        st, _, body = self.request("GET", "/new.txt", auth=False)
        self.assertEqual((st, body), (200, b"first\n"))
        st, h, body = self.request("PUT", "/new.txt", b"second, longer\n")
        self.assertEqual((st, body), (204, b""))
        st, _, body = self.request("GET", "/new.txt", auth=False)
        self.assertEqual((st, body), (200, b"second, longer\n"))
        self.assertEqual(temps(self.root), [])

    def test_put_retires_an_older_sidecar(self):
        self.write("doc.txt", b"version one\n")
        self.write("doc.txt.gz", gzip.compress(b"version one\n"))
        # both made a minute ago (as `gzip -k` does, the sidecar keeps its file's mtime)
        past = time.time() - 60
        for name in ("doc.txt", "doc.txt.gz"):
            os.utime(os.path.join(self.root, name), (past, past))
        gz = {"Accept-Encoding": "gzip"}
        st, h, body = self.request("GET", "/doc.txt", headers=gz, auth=False)
        self.assertEqual((st, h.get("content-encoding")), (200, "gzip"))
        self.assertEqual(gzip.decompress(body), b"version one\n")
        st, _, _ = self.request("PUT", "/doc.txt", b"version two\n")
        self.assertEqual(st, 204)
        # the sidecar now predates the file: gzip clients get the new bytes, not the old ones
        st, h, body = self.request("GET", "/doc.txt", headers=gz, auth=False)
        self.assertEqual(st, 200)
        self.assertIsNone(h.get("content-encoding"))
        self.assertEqual(body, b"version two\n")

    def test_put_pipelined_and_half_closed(self):
        # The commit (fsync, rename) runs in the server's job thread; answers stay in order
        # and a pipelined GET sees the new bytes.
        auth = "Authorization: %s\r\n" % basic()
        put = ("PUT /pipe.txt HTTP/1.1\r\nHost: x\r\n%sContent-Length: 4\r\n\r\nnew\n"
               % auth).encode()
        get = b"GET /pipe.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        out, closed = H.raw_ex(self.host, self.port, put + get, 10)
        self.assertTrue(closed, out)
        first, _, rest = out.partition(b"\r\n\r\n")
        self.assertTrue(first.startswith(b"HTTP/1.1 201 "), out)
        self.assertIn(b"HTTP/1.1 200 OK", rest)
        self.assertTrue(rest.endswith(b"\r\n\r\nnew\n"), rest)
        # the loop thread, the commit thread and, but on uring (where file steps are the
        # kernel's), the loop's file thread that opened the file for the GET; io_uring's own
        # workers (iou-*) are the kernel's
        tasks = []
        for t in os.listdir("/proc/%d/task" % self.srv.proc.pid):
            try:
                with open("/proc/%d/task/%s/comm" % (self.srv.proc.pid, t)) as f:
                    tasks.append(f.read().strip())
            except OSError:
                pass
        ours = [t for t in tasks if not t.startswith("iou-")]
        want = 2 if os.environ.get("NETKIT_BACKEND") == "uring" else 3
        self.assertEqual(len(ours), want, "the commit thread should exist after an upload: %r"
                         % tasks)
        # a client that half-closes after its body still gets the answer
        out, closed = H.raw_ex(self.host, self.port, put.replace(b"/pipe.txt", b"/half.txt"),
                               10, half_close=True)
        self.assertTrue(closed, out)
        self.assertTrue(out.startswith(b"HTTP/1.1 201 "), out)
        self.assertEqual(self.read("half.txt"), b"new\n")
        self.assertEqual(temps(self.root), [])

    def test_put_empty_and_chunked(self):
        st, _, _ = self.request("PUT", "/empty", b"")
        self.assertEqual(st, 201)
        self.assertEqual(self.read("empty"), b"")
        c = harness.http_connection(self.host, self.port, timeout=10)
        self.addCleanup(c.close)
        c.request("PUT", "/sub/chunked.bin", body=iter([b"abc", b"", b"x" * 100000, b"end"]),
                  headers={"Authorization": basic()}, encode_chunked=True)
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 201)
        self.assertEqual(self.read("sub/chunked.bin"), b"abc" + b"x" * 100000 + b"end")

    def test_delete(self):
        st, _, _ = self.request("DELETE", "/old.txt", auth=False)
        self.assertEqual(st, 401)
        self.assertTrue(os.path.exists(os.path.join(self.root, "old.txt")))
        st, _, body = self.request("DELETE", "/old.txt")
        self.assertEqual((st, body), (204, b""))
        self.assertFalse(os.path.exists(os.path.join(self.root, "old.txt")))
        st, _, _ = self.request("DELETE", "/old.txt")
        self.assertEqual(st, 404)
        # an empty directory goes too (test_http_delete.py: trees, links, limits)
        st, _, body = self.request("DELETE", "/sub/")
        self.assertEqual((st, body), (204, b""))
        self.assertFalse(os.path.exists(os.path.join(self.root, "sub")))

    def test_reads_stay_public(self):
        st, _, body = self.request("GET", "/old.txt", auth=False)
        self.assertEqual((st, body), (200, b"old content\n"))

    def test_options_and_allow(self):
        st, h, _ = self.request("OPTIONS", "/", auth=False)
        self.assertEqual(st, 204)
        self.assertEqual(h["allow"], "GET, HEAD, OPTIONS, PUT, DELETE, POST")

    def test_post_multipart(self):
        boundary = "----nkTest7MA4YWxk"
        parts = [
            ("field", None, b"just a field"),
            ("file", "one.txt", b"first file\r\n--not a boundary\r\n"),
            ("file", "C:\\Users\\x\\two.bin", bytes(range(256)) * 40),
        ]
        body = b""
        for name, fn, data in parts:
            body += b"--" + boundary.encode() + b"\r\n"
            disp = 'form-data; name="%s"' % name + ('; filename="%s"' % fn if fn else "")
            body += b"Content-Disposition: " + disp.encode() + b"\r\n"
            body += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
        body += b"--" + boundary.encode() + b"--\r\n"
        ct = {"Content-Type": "multipart/form-data; boundary=" + boundary}
        st, _, _ = self.request("POST", "/sub/", body, ct, auth=False)
        self.assertEqual(st, 401)
        st, h, resp = self.request("POST", "/sub/", body, ct)
        self.assertEqual(st, 201, resp)
        self.assertEqual(resp, b"stored 2 files\none.txt\ntwo.bin\n")
        self.assertEqual(self.read("sub/one.txt"), parts[1][2])
        self.assertEqual(self.read("sub/two.bin"), parts[2][2])
        self.assertFalse(os.path.exists(os.path.join(self.root, "sub", "field")))
        # a browser (Accept: text/html) is sent back to the listing
        st, h, _ = self.request("POST", "/sub/", body, dict(ct, Accept="text/html"))
        self.assertEqual(st, 409)  # both files exist: replacing needs the overwrite box
        ticked = body.replace(b"just a field", b"1").replace(b'name="field"', b'name="overwrite"')
        st, h, _ = self.request("POST", "/sub/", ticked, dict(ct, Accept="text/html"))
        self.assertEqual((st, h["location"]), (303, "/sub/"))
        # the listing has the upload form
        st, _, page = self.request("GET", "/sub/", auth=False)
        self.assertIn(b'<form method="post" enctype="multipart/form-data"', page)
        # bad bodies
        st, _, _ = self.request("POST", "/sub/", b"x", {"Content-Type": "text/plain"})
        self.assertEqual(st, 415)
        cut = body[: len(body) // 2]
        st, _, _ = self.request("POST", "/sub/", cut, ct)
        self.assertEqual(st, 400)
        st, _, _ = self.request("POST", "/missing/", body, ct)
        self.assertEqual(st, 404)
        evil = body.replace(b"one.txt", b"..").replace(b"C:\\Users\\x\\two.bin", b"x")
        st, _, _ = self.request("POST", "/sub/", evil, ct)
        self.assertEqual(st, 400)
        self.assertEqual(temps(self.root), [])

    def test_conflicts_and_preconditions(self):
        st, _, _ = self.request("PUT", "/nodir/x.txt", b"x")
        self.assertEqual(st, 409)
        self.assertFalse(os.path.exists(os.path.join(self.root, "nodir")))
        st, _, _ = self.request("PUT", "/sub/", b"x")
        self.assertEqual(st, 409)
        st, _, _ = self.request("PUT", "/sub", b"x")
        self.assertEqual(st, 409)
        st, _, _ = self.request("PUT", "/old.txt", b"x", {"If-None-Match": "*"})
        self.assertEqual(st, 412)
        st, _, _ = self.request("PUT", "/fresh.txt", b"x", {"If-Match": "*"})
        self.assertEqual(st, 412)
        st, _, _ = self.request("PUT", "/fresh.txt", b"x", {"If-None-Match": "*"})
        self.assertEqual(st, 201)
        st, h, _ = self.request("GET", "/old.txt", auth=False)
        etag = h["etag"]
        st, _, _ = self.request("PUT", "/old.txt", b"y", {"If-Match": '"nope"'})
        self.assertEqual(st, 412)
        st, _, _ = self.request("DELETE", "/old.txt", headers={"If-Match": '"nope"'})
        self.assertEqual(st, 412)
        self.assertEqual(self.read("old.txt"), b"old content\n")
        st, _, _ = self.request("PUT", "/old.txt", b"y", {"If-Match": etag})
        self.assertEqual(st, 204)
        self.assertEqual(self.read("old.txt"), b"y")

    def test_partial_put_is_refused(self):
        # RFC 9110 section 14.4: Content-Range on a PUT means a part of the file; storing it
        # as the whole file would lose the rest, so the request is refused and nothing changes.
        st, _, _ = self.request("PUT", "/old.txt", b"NEW", {"Content-Range": "bytes 0-2/12"})
        self.assertEqual(st, 400)
        self.assertEqual(self.read("old.txt"), b"old content\n")
        st, _, _ = self.request("PUT", "/part.txt", b"ab", {"Content-Range": "bytes 10-11/12"})
        self.assertEqual(st, 400)
        self.assertFalse(os.path.exists(os.path.join(self.root, "part.txt")))
        self.assertEqual(temps(self.root), [])

    def test_traversal_and_refused_paths(self):
        outside = os.path.join(self.tmp.name, "outside")
        os.makedirs(outside)
        os.symlink(outside, os.path.join(self.root, "out"))
        os.symlink(os.path.join(self.tmp.name, "victim"), os.path.join(self.root, "link.txt"))
        cases = [
            ("/../escape.txt", 400),
            ("/%2e%2e/escape.txt", 400),
            ("/sub/../../escape.txt", 400),
            ("/a%2fb", 400),
            ("/.hidden", 403),
            ("/.git/config", 403),
            ("/out/x.txt", 403),       # a symlink that leaves the root
            ("/link.txt", 403),        # never write over a symbolic link
        ]
        for target, want in cases:
            raw = H.req("PUT", target, [("Authorization", basic()), ("Content-Length", "1"),
                                        ("Connection", "close")], b"z")
            out = H.raw(self.host, self.port, raw)
            resp, _ = H.parse_one(out, "PUT", eof=True)
            self.assertEqual(resp.status, want, target)
        self.assertEqual(os.listdir(outside), [])
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "escape.txt")))
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "victim")))
        self.assertEqual(temps(self.tmp.name), [])


class LimitTests(Base):
    args = ("--upload", "--auth", "%s:%s" % (USER, PASS), "-q", "--max-body-bytes", "100000")

    def test_413(self):
        st, _, _ = self.request("PUT", "/old.txt", b"x" * 100001)
        self.assertEqual(st, 413)
        c = harness.http_connection(self.host, self.port, timeout=10)
        self.addCleanup(c.close)
        try:
            c.request("PUT", "/old.txt", body=iter([b"y" * 60000] * 3),
                      headers={"Authorization": basic()}, encode_chunked=True)
            st = c.getresponse().status
        except (ConnectionError, BrokenPipeError):
            st = None  # the server may close before the whole body is sent
        self.assertIn(st, (413, None))
        self.assertEqual(self.read("old.txt"), b"old content\n")
        self.assertTrue(wait_for(lambda: temps(self.root) == []), temps(self.root))
        st, _, _ = self.request("PUT", "/old.txt", b"x" * 100000)
        self.assertEqual(st, 204)


def form(parts):
    """A multipart/form-data body of (filename, bytes) parts with boundary XX."""
    body = b""
    for name, data in parts:
        body += (b'--XX\r\nContent-Disposition: form-data; name="f"; filename="' +
                 name.encode() + b'"\r\n\r\n' + data + b"\r\n")
    return body + b"--XX--\r\n"


class RefusedFormTests(Base):
    """A form refused half-way (more parts than allowed, a body cut short) leaves nothing."""
    args = ("--upload", "--auth", "%s:%s" % (USER, PASS), "-q", "--body-timeout", "2")

    def files(self):
        return sorted(n for n in os.listdir(self.root) if n != "sub")

    def test_too_many_parts_413_stores_nothing(self):
        # 1,000 files per form at most: the parts before the refused one were complete,
        # and none of them may be left (nor any temporary file).
        body = form([("f%04d.txt" % i, b"x") for i in range(1100)])
        st, _, _ = self.request("POST", "/", body,
                                {"Content-Type": "multipart/form-data; boundary=XX"})
        self.assertEqual(st, 413)
        self.assertTrue(wait_for(lambda: temps(self.root) == []), temps(self.root))
        self.assertEqual(self.files(), ["old.txt"])

    def test_whole_form_commits(self):
        body = form([("a.txt", b"A"), ("b.txt", b"B" * 5000)])
        st, h, out = self.request("POST", "/sub/", body,
                                  {"Content-Type": "multipart/form-data; boundary=XX"})
        self.assertEqual(st, 201, out)
        self.assertEqual(h["location"], "/sub/")
        self.assertEqual(self.read("sub/a.txt"), b"A")
        self.assertEqual(self.read("sub/b.txt"), b"B" * 5000)
        self.assertEqual(temps(self.root), [])

    def test_trickled_body_is_dropped_by_the_total_deadline(self):
        # One byte every 0.5 s never trips the gap timeout (--send-timeout), only the
        # total one: the connection must end within the deadline plus its slack, and the
        # staged parts and temporary file must go with it.
        s = H.connect((self.host, self.port), timeout=10)
        body = form([("early.txt", b"complete part"), ("late.txt", b"z" * 200)])
        head = ("POST / HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: "
                "multipart/form-data; boundary=XX\r\nContent-Length: %d\r\n\r\n"
                % (basic(), len(body))).encode()
        cut = body.index(b"z")
        s.sendall(head + body[:cut])
        start = time.monotonic()
        closed = False
        for b in body[cut:cut + 40]:
            try:
                s.sendall(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.5)
            s.settimeout(0.01)
            try:
                if s.recv(4096) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
        s.close()
        self.assertTrue(closed, "a body trickled for %.1f s was still being read"
                        % (time.monotonic() - start))
        self.assertTrue(wait_for(lambda: temps(self.root) == []), temps(self.root))
        self.assertEqual(self.files(), ["old.txt"])


class StartupCleanupTests(unittest.TestCase):
    def test_leftovers_of_a_killed_server_are_removed_at_start(self):
        # What a killed server left: temporary files at any depth go; a symlink with the
        # same name (and what it points at) and other files stay.
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        root = os.path.join(tmp.name, "root")
        os.makedirs(os.path.join(root, "a", "b"))
        outside = os.path.join(tmp.name, "outside.txt")
        for path in (outside, os.path.join(root, "keep.txt")):
            with open(path, "w") as f:
                f.write("keep\n")
        stale = [os.path.join(root, ".netkit-upload-1-abc"),
                 os.path.join(root, "a", "b", ".netkit-upload-XYZ")]
        for path in stale:
            with open(path, "w") as f:
                f.write("partial")
        link = os.path.join(root, ".netkit-upload-link")
        os.symlink(outside, link)
        H.serve(self, root, "-q", "--upload", "--upload-anonymous")
        self.assertEqual([p for p in stale if os.path.exists(p)], [])
        self.assertTrue(os.path.islink(link))
        self.assertTrue(os.path.exists(outside))
        self.assertTrue(os.path.exists(os.path.join(root, "keep.txt")))


class BodyLimitTests(unittest.TestCase):
    """The 1 MiB default holds for anonymous bodies; an authenticated upload is bounded only
    by the disk unless --max-body-bytes was given."""

    def serve(self, *args):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        srv = H.serve(self, tmp.name, "-q", *args)
        return tmp.name, srv.host_port()

    def put(self, addr, size, auth=None):
        c = harness.http_connection(addr[0], addr[1], timeout=60)
        self.addCleanup(c.close)
        h = {"Authorization": auth} if auth else {}
        try:
            c.request("PUT", "/big.bin", body=b"b" * size, headers=h)
            return c.getresponse().status
        except (ConnectionError, BrokenPipeError):
            return None  # refused before the whole body was sent

    def test_authenticated_upload_has_no_default_limit(self):
        root, addr = self.serve("--upload", "--auth", "%s:%s" % (USER, PASS))
        self.assertEqual(self.put(addr, 3 << 20, basic()), 201)
        self.assertEqual(os.path.getsize(os.path.join(root, "big.bin")), 3 << 20)
        self.assertIn(self.put(addr, 3 << 20, basic(USER, "wrong")), (401, None))

    def test_anonymous_upload_keeps_the_limit(self):
        root, addr = self.serve("--upload", "--upload-anonymous")
        self.assertIn(self.put(addr, 3 << 20), (413, None))
        self.assertFalse(os.path.exists(os.path.join(root, "big.bin")))
        self.assertEqual(self.put(addr, 1000), 201)

    def test_explicit_limit_holds_for_everyone(self):
        root, addr = self.serve("--upload", "--auth", "%s:%s" % (USER, PASS),
                                "--max-body-bytes", "100000")
        self.assertIn(self.put(addr, 200000, basic()), (413, None))

    def test_echo_keeps_the_limit_for_authenticated_clients(self):
        root, addr = self.serve("--echo", "--auth", "%s:%s" % (USER, PASS))
        self.assertIn(self.put(addr, 2 << 20, basic()), (413, None))


class BigTests(Base):
    args = ("--upload", "--auth", "%s:%s" % (USER, PASS), "-q", "--max-body-bytes",
            str(1 << 30))

    def vm(self, key):
        with open("/proc/%d/status" % self.srv.proc.pid) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
        return 0

    def test_50mib_sha256_and_bounded_memory(self):
        block = os.urandom(1 << 20)
        digest = hashlib.sha256()
        blocks = []
        for i in range(50):
            b = bytes([i]) + block[1:]
            blocks.append(b)
            digest.update(b)
        before = self.vm("VmRSS")
        c = harness.http_connection(self.host, self.port, timeout=60)
        self.addCleanup(c.close)
        c.putrequest("PUT", "/big.bin")
        c.putheader("Authorization", basic())
        c.putheader("Content-Length", str(50 << 20))
        c.endheaders()
        for b in blocks:
            c.send(b)
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 201)
        with open(os.path.join(self.root, "big.bin"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest.hexdigest())
        # The body streams to disk: the server's memory does not grow with it.
        grown = self.vm("VmRSS") - before
        if not harness.tls_under_asan():  # see its docstring
            self.assertLess(grown, 16 * 1024, "server grew by %d KiB" % grown)

    def test_concurrent_puts_one_wins_whole(self):
        size = 4 << 20
        bodies = [b"A" * size, b"B" * size]
        results = []

        def put(body):
            s = H.connect((self.host, self.port), timeout=30)
            try:
                s.sendall(H.req("PUT", "/race.bin", [("Authorization", basic()),
                                                      ("Content-Length", str(size))]))
                for i in range(0, size, 65536):  # interleave the two bodies
                    s.sendall(body[i:i + 65536])
                    time.sleep(0.001)
                out, _ = H._recv_until(s, time.monotonic() + 20,
                                       lambda b: b"\r\n\r\n" in b)
                results.append(out.split(b" ")[1])
            finally:
                s.close()

        ts = [threading.Thread(target=put, args=(b,)) for b in bodies]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(sorted(results), [b"201", b"201"] if results[0] == results[1] == b"201"
                         else sorted([b"201", b"204"]))
        data = self.read("race.bin")
        self.assertIn(data, bodies)
        self.assertEqual(temps(self.root), [])

    def test_client_disconnects_halfway(self):
        s = H.connect((self.host, self.port))
        s.sendall(H.req("PUT", "/old.txt", [("Authorization", basic()),
                                             ("Content-Length", str(1 << 20))]))
        s.sendall(b"n" * 300000)
        self.assertTrue(wait_for(lambda: len(temps(self.root)) == 1))
        s.close()
        self.assertTrue(wait_for(lambda: temps(self.root) == []), temps(self.root))
        self.assertEqual(self.read("old.txt"), b"old content\n")
        st, _, body = self.request("GET", "/old.txt", auth=False)
        self.assertEqual((st, body), (200, b"old content\n"))

    def test_sigkill_during_upload_then_restart(self):
        s = H.connect((self.host, self.port))
        self.addCleanup(s.close)
        s.sendall(H.req("PUT", "/old.txt", [("Authorization", basic()),
                                             ("Content-Length", str(1 << 20))]))
        s.sendall(b"k" * 300000)
        self.assertTrue(wait_for(lambda: len(temps(self.root)) == 1))
        self.srv.proc.send_signal(signal.SIGKILL)
        self.srv.proc.wait(10)
        left = temps(self.root)
        self.assertEqual(len(left), 1)  # the killed server could not clean up...
        self.assertEqual(self.read("old.txt"), b"old content\n")
        srv2 = H.serve(self, self.root, "--upload", "--auth", "%s:%s" % (USER, PASS))
        self.assertEqual(temps(self.root), [])  # ...the next start does
        self.assertIn("removed 1 unfinished upload", "\n".join(srv2.stderr_lines)
                      + srv2.read_stderr())
        self.assertEqual(self.read("old.txt"), b"old content\n")


def form_fields(fields, files):
    """multipart/form-data (boundary XX): plain fields first, then (filename, bytes) files."""
    body = b""
    for name, value in fields:
        body += (b'--XX\r\nContent-Disposition: form-data; name="' + name.encode() +
                 b'"\r\n\r\n' + value.encode() + b"\r\n")
    return body + form(files)


class OverwriteTests(Base):
    """A form that would replace a file is refused (409, nothing stored from it) unless it
    carries overwrite=1 or overwrite=on; PUT still replaces unless If-None-Match: *."""
    CT = {"Content-Type": "multipart/form-data; boundary=XX"}

    def test_form_refuses_to_replace_without_overwrite(self):
        body = form([("new.txt", b"N"), ("old.txt", b"replaced")])
        st, _, out = self.request("POST", "/", body, self.CT)
        self.assertEqual(st, 409, out)
        self.assertEqual(self.read("old.txt"), b"old content\n")
        self.assertFalse(os.path.exists(os.path.join(self.root, "new.txt")))
        self.assertTrue(wait_for(lambda: temps(self.root) == []), temps(self.root))
        # an unticked box (any other value) is not consent either
        st, _, _ = self.request("POST", "/", form_fields([("overwrite", "0")], [("old.txt", b"r")]),
                                self.CT)
        self.assertEqual(st, 409)
        self.assertEqual(self.read("old.txt"), b"old content\n")
        # the same name twice in one form would replace the first part
        st, _, _ = self.request("POST", "/sub/", form([("d.txt", b"1"), ("d.txt", b"2")]), self.CT)
        self.assertEqual(st, 409)
        self.assertFalse(os.path.exists(os.path.join(self.root, "sub", "d.txt")))
        self.assertTrue(wait_for(lambda: temps(self.root) == []), temps(self.root))

    def test_ticked_overwrite_replaces(self):
        for value in ("1", "on"):
            data = ("replaced " + value).encode()
            body = form_fields([("overwrite", value)], [("old.txt", data), ("n.txt", b"N")])
            st, h, out = self.request("POST", "/", body, dict(self.CT, Accept="text/html"))
            self.assertEqual((st, h.get("location")), (303, "/"), out)
            self.assertEqual(self.read("old.txt"), data)
        # the field may come after the files, as a form's order allows
        body = form([("old.txt", b"after")])[:-len(b"--XX--\r\n")]
        body += b'--XX\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\non\r\n--XX--\r\n'
        st, _, out = self.request("POST", "/", body, self.CT)
        self.assertEqual(st, 201, out)
        self.assertEqual(self.read("old.txt"), b"after")

    def test_put_keeps_its_semantics(self):
        st, _, _ = self.request("PUT", "/old.txt", b"put")
        self.assertEqual(st, 204)
        st, _, _ = self.request("PUT", "/old.txt", b"x", {"If-None-Match": "*"})
        self.assertEqual(st, 412)
        self.assertEqual(self.read("old.txt"), b"put")

    def test_page_has_the_checkbox(self):
        st, _, page = self.request("GET", "/", auth=False)
        self.assertEqual(st, 200)
        self.assertIn(b'<input type="checkbox" name="overwrite" value="1"', page)


VOID = {"meta", "input", "br", "hr", "img", "link", "source", "wbr"}


def tag_errors(page):
    """Elements closed out of order or left open (void elements aside): a cheap validity check
    of the page's markup with the standard library's tokenizer."""
    import html.parser
    errors, stack = [], []

    class P(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag not in VOID:
                stack.append(tag)

        def handle_endtag(self, tag):
            if not stack or stack[-1] != tag:
                errors.append("</%s> with %s open" % (tag, stack[-3:]))
            else:
                stack.pop()
    P().feed(page)
    return errors + (["left open: %s" % stack] if stack else [])


class UploadPageTests(Base):
    """The listing's upload form: a drop zone, several files, the overwrite box, a progress
    bar driven by an inline script, and the size limit when one applies."""

    def test_form_parts_and_no_limit_for_authenticated_writers(self):
        st, _, page = self.request("GET", "/sub/", auth=False)
        self.assertEqual(st, 200)
        text = page.decode()
        for piece in ('<form method="post" enctype="multipart/form-data" action=""',
                      'class="drop"', '<input type="file" name="file" id="files" multiple',
                      '<progress id="progress" max="100" value="0" hidden>',
                      "x.upload.onprogress", "new FormData(f)", "<script>"):
            self.assertIn(piece, text)
        # the bar and the script come with the form only
        self.assertLess(text.index("<form"), text.index("<script>"))
        self.assertEqual(tag_errors(text), [])
        # authenticated uploads have no limit by default: none shown
        self.assertNotIn('class="limit"', text)
        # a delete button for each entry (files and directories), hidden until the script runs
        self.assertEqual(text.count('<button type="button" class="del"'), 0)  # /sub/ is empty
        st, _, page = self.request("GET", "/", auth=False)
        rows = [r for r in page.decode().split("\n") if r.startswith("<tr><td>")]
        dels = [r for r in rows if 'class="del"' in r]
        self.assertEqual(len(dels), 2, rows)
        self.assertIn('<a href="sub/">sub/</a> <button type="button" class="del" '
                      'title="Delete" aria-label="Delete" hidden>', dels[0])
        self.assertIn('<a href="old.txt">old.txt</a> <button type="button" class="del" '
                      'title="Delete" aria-label="Delete" hidden>', dels[1])
        self.assertIn("method:'DELETE'", page.decode())
        self.assertEqual(tag_errors(page.decode()), [])
        # no style element in the body
        self.assertNotIn("<style>", text[text.index("<body>"):])


class UploadLimitPageTests(Base):
    args = ("--upload", "--auth", "%s:%s" % (USER, PASS), "-q", "--max-body-bytes", "5242880")

    def test_limit_shown(self):
        st, _, page = self.request("GET", "/", auth=False)
        self.assertIn(b'<p class="limit">Up to <span title="5242880 bytes">5.0 MiB</span>', page)
        self.assertEqual(tag_errors(page.decode()), [])


class AnonymousLimitPageTests(Base):
    args = ("--upload", "--upload-anonymous", "-q")

    def test_default_limit_shown(self):
        st, _, page = self.request("GET", "/", auth=False)
        self.assertIn(b'title="1048576 bytes">1.0 MiB</span>', page)


class NoUploadPageTests(Base):
    args = ("-q",)

    def test_no_form_no_script(self):
        st, _, page = self.request("GET", "/", auth=False)
        self.assertEqual(st, 200)
        self.assertNotIn(b"<form", page)
        self.assertNotIn(b"<script", page)
        self.assertNotIn(b'class="del"', page)


class MkdirsTests(Base):
    args = ("--upload", "--upload-anonymous", "--mkdirs", "-q")

    def test_mkdirs_and_anonymous(self):
        st, h, _ = self.request("PUT", "/a/b/c.txt", b"deep", auth=False)
        self.assertEqual(st, 201)
        self.assertEqual(self.read("a/b/c.txt"), b"deep")


class NewFolderTests(Base):
    """POST of a form field mkdir=NAME to a directory creates NAME there (with --mkdirs)."""
    args = ("--upload", "--auth", "%s:%s" % (USER, PASS), "--mkdirs", "-q")
    CT = {"Content-Type": "multipart/form-data; boundary=XX"}

    def mkdir(self, where, name, headers=None, auth=True):
        return self.request("POST", where, form_fields([("mkdir", name)], []),
                            dict(self.CT, **(headers or {})), auth=auth)

    def test_browser_is_sent_back_to_the_listing(self):
        st, h, _ = self.mkdir("/sub/", "new folder \u00fc", {"Accept": "text/html"})
        self.assertEqual((st, h.get("location")), (303, "/sub/"))
        self.assertTrue(os.path.isdir(os.path.join(self.root, "sub", "new folder \u00fc")))
        st, h, out = self.mkdir("/", "plain")
        self.assertEqual(st, 201, out)
        self.assertEqual(h["location"], "/plain/")
        self.assertTrue(os.path.isdir(os.path.join(self.root, "plain")))
        # the page offers the form
        st, _, page = self.request("GET", "/", auth=False)
        self.assertIn(b'<input type="text" name="mkdir"', page)
        self.assertEqual(tag_errors(page.decode()), [])

    def test_urlencoded_form(self):
        # what `curl -d mkdir=NAME` sends: application/x-www-form-urlencoded
        ct = {"Content-Type": "application/x-www-form-urlencoded"}
        st, h, out = self.request("POST", "/sub/", b"x=1&mkdir=a+b%C3%BC%21", ct)
        self.assertEqual(st, 201, out)
        self.assertEqual(h["location"], "/sub/a%20b%C3%BC%21/")
        self.assertTrue(os.path.isdir(os.path.join(self.root, "sub", "a b\u00fc!")))
        for body, want in ((b"mkdir=a%2Fb", 400), (b"mkdir=%2e%2e", 400), (b"mkdir=%zz", 400),
                           (b"mkdir=.h", 403), (b"other=1", 400), (b"mkdir=" + b"x" * 5000, 413)):
            st, _, out = self.request("POST", "/", body, ct)
            self.assertEqual(st, want, (body[:20], out))
        self.assertEqual(sorted(os.listdir(self.root)), ["old.txt", "sub"])

    def test_refused_names_and_conflicts(self):
        for name, want in (("a/b", 400), ("..", 400), (".", 400), ("", 400), ("x\x01y", 400),
                           (".hidden", 403), (".netkit-upload-1-abc", 403), ("a\\b", 400)):
            st, _, out = self.mkdir("/", name)
            self.assertEqual(st, want, (name, out))
        self.assertEqual(st, 400)
        st, _, _ = self.mkdir("/", "sub")
        self.assertEqual(st, 409)
        st, _, _ = self.mkdir("/", "old.txt")
        self.assertEqual(st, 409)
        st, _, _ = self.mkdir("/", "anon", auth=False)
        self.assertEqual(st, 401)
        self.assertEqual(sorted(os.listdir(self.root)), ["old.txt", "sub"])


class NoMkdirsTests(Base):
    def test_mkdir_needs_the_option(self):
        st, _, _ = self.request("POST", "/", form_fields([("mkdir", "d")], []),
                                {"Content-Type": "multipart/form-data; boundary=XX"})
        self.assertEqual(st, 403)
        self.assertFalse(os.path.exists(os.path.join(self.root, "d")))
        st, _, page = self.request("GET", "/", auth=False)
        self.assertNotIn(b'name="mkdir"', page)


class NoUploadTests(Base):
    args = ("-q",)

    def test_writes_are_405(self):
        for method in ("PUT", "DELETE", "POST"):
            st, h, _ = self.request(method, "/old.txt", b"x" if method != "DELETE" else None,
                                    auth=False)
            self.assertEqual(st, 405, method)
            self.assertEqual(h["allow"], "GET, HEAD, OPTIONS")
        self.assertEqual(self.read("old.txt"), b"old content\n")


class AuthFileTests(unittest.TestCase):
    def test_hashed_password_on_a_closing_connection_is_answered(self):
        """A request that ends its connection (Connection: close, or HTTP/1.0) still gets its
        answer when its password is checked off the loop: the connection waited for the
        verdict, then answered, then closed (it used to close without a word)."""
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        r = subprocess.run([harness.NETKIT, "http", "passwd", "bob", "--iterations", "2000"],
                           input=b"hunter2\n", capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        af = os.path.join(tmp.name, "users")
        with open(af, "w") as f:
            f.write(r.stdout.decode())
        with open(os.path.join(tmp.name, "f.txt"), "w") as f:
            f.write("secret")
        srv = H.serve(self, tmp.name, "--auth-file", af, "-q")
        host, port = srv.host_port()
        for password, want_st in (("hunter2", 200), ("hunter3", 401)):
            c = harness.http_connection(host, port, timeout=10)
            c.request("GET", "/f.txt", headers={"Authorization": basic("bob", password),
                                                "Connection": "close"})
            resp = c.getresponse()
            body = resp.read()
            c.close()
            self.assertEqual(resp.status, want_st)
            if want_st == 200:
                self.assertEqual(body, b"secret")

    def test_passwd_and_auth_file_protect_reads(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        r = subprocess.run([harness.NETKIT, "http", "passwd", "bob", "--iterations", "2000"],
                           input=b"hunter2\n", capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        line = r.stdout.decode().strip()
        self.assertRegex(line, r"^bob:pbkdf2-sha256\$2000\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$")
        user, h = line.split(":", 1)
        _, it, salt, dk = h.split("$")
        want = hashlib.pbkdf2_hmac("sha256", b"hunter2", base64.b64decode(salt), int(it))
        self.assertEqual(base64.b64decode(dk), want)
        af = os.path.join(tmp.name, "users")
        with open(af, "w") as f:
            f.write("# users\n\n" + line + "\n")
        with open(os.path.join(tmp.name, "f.txt"), "w") as f:
            f.write("secret")
        srv = H.serve(self, tmp.name, "--auth-file", af, "-q")
        host, port = srv.host_port()
        for auth, want_st in ((None, 401), (basic("bob", "hunter3"), 401),
                              (basic("bob", "hunter2"), 200), (basic("bob", "hunter2"), 200)):
            c = harness.http_connection(host, port, timeout=10)
            c.request("GET", "/f.txt", headers={"Authorization": auth} if auth else {})
            resp = c.getresponse()
            body = resp.read()
            c.close()
            self.assertEqual(resp.status, want_st)
            if want_st == 200:
                self.assertEqual(body, b"secret")

    def _hashed_server(self, *extra):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        # The default cost: each check takes long enough that a check on the loop would
        # hold every other client of the worker.
        r = subprocess.run([harness.NETKIT, "http", "passwd", "bob"], input=b"hunter2\n",
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        af = os.path.join(tmp.name, "users")
        with open(af, "w") as f:
            f.write(r.stdout.decode())
        with open(os.path.join(tmp.name, "f.txt"), "w") as f:
            f.write("secret")
        return H.serve(self, tmp.name, "--auth-file", af, "-q", *extra)

    def test_wrong_passwords_are_checked_off_the_loop(self):
        # A pipeline of wrong guesses is verified in the job thread one by one; meanwhile
        # the worker (one, -w 1) keeps answering another client at once.
        srv = self._hashed_server()
        host, port = srv.host_port()
        bad = b"GET /f.txt HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic("bob", "nope").encode()
        flood = H.Conn((host, port), timeout=60)
        flood.send((bad + b"\r\n\r\n") * 6)
        first = flood.read_response(timeout=60)  # the first verdict: a hash was computed
        self.assertEqual(first.status, 401)
        # The other five are still being checked (each costs as much as the first).
        other = H.Conn((host, port))
        r = other.request(b"GET /f.txt HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                          basic("bob", "hunter2").encode() + b"\r\n\r\n", timeout=60)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"secret")
        # Take what the flood connection has so far without waiting: had the checks run on
        # the loop, all five answers would have been written before the other client's.
        flood.sock.setblocking(False)
        try:
            while True:
                chunk = flood.sock.recv(65536)
                if not chunk:
                    break
                flood.buf += chunk
        except BlockingIOError:
            pass
        flood.sock.setblocking(True)
        self.assertLess(flood.buf.count(b"HTTP/1.1 401"), 5,
                        "the whole flood was answered before the other client")
        statuses = [flood.read_response(timeout=60).status for _ in range(5)]
        self.assertEqual(statuses, [401] * 5)
        other.close()
        flood.close()

    def test_repeated_failures_get_429_then_nothing_is_checked(self):
        srv = self._hashed_server()
        host, port = srv.host_port()
        c = H.Conn((host, port), timeout=120)
        statuses = []
        for user in ["bob", "nobody"] * 6:  # unknown names count as failures too
            r = c.request(b"GET /f.txt HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                          basic(user, "nope").encode() + b"\r\n\r\n", timeout=60)
            statuses.append(r.status)
        self.assertEqual(statuses[:10], [401] * 10)
        self.assertEqual(statuses[10:], [429, 429])
        r = c.request(b"GET /f.txt HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                      basic("bob", "hunter2").encode() + b"\r\n\r\n", timeout=60)
        self.assertEqual(r.status, 429, "a locked-out address must not get to guess")
        self.assertEqual(r.header("Retry-After"), "60")
        # Asking without credentials is not a failed guess and still gets the challenge.
        r = c.request(b"GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(r.status, 401)
        c.close()

    def test_refusals(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        r = harness.run(["http", "serve", tmp.name, "-l", "127.0.0.1:0", "--upload"])
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--upload needs --auth", r.stderr)
        bad = os.path.join(tmp.name, "bad")
        with open(bad, "w") as f:
            f.write("bob:plaintext\n")
        r = harness.run(["http", "serve", tmp.name, "-l", "127.0.0.1:0", "--auth-file", bad])
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([harness.NETKIT, "http", "passwd", "a:b"], input=b"x\n",
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)

    def test_warns_on_non_loopback_listener(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        # http:// named, so the server stays cleartext in the https pass too: the warning is
        # about passwords sent without TLS.
        srv = H.serve(self, tmp.name, "--auth", "a:b", "-q", listen=("http://0.0.0.0:0",))
        self.assertIn("WARNING: passwords travel in clear text",
                      "\n".join(srv.stderr_lines) + srv.read_stderr())
        srv2 = H.serve(self, tmp.name, "--auth", "a:b", "-q")
        self.assertNotIn("WARNING", "\n".join(srv2.stderr_lines) + srv2.read_stderr())


@unittest.skipUnless(os.geteuid() == 0, "needs root to mount a small tmpfs (CI runs as root)")
class FullDiskTests(unittest.TestCase):
    """A write that runs out of space answers 507 and leaves the old file and no temp file."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.root = os.path.join(self.tmp.name, "small")
        os.mkdir(self.root)
        m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs",
                            self.root], capture_output=True, text=True)
        if m.returncode != 0:
            self.skipTest("cannot mount a tmpfs here: %s" % m.stderr.strip())
        # registered after the cleanup of the directory, so it runs before it
        self.addCleanup(subprocess.run, ["umount", "-l", self.root])
        with open(os.path.join(self.root, "old.txt"), "wb") as f:
            f.write(b"old content\n")
        self.srv = H.serve(self, self.root, "--upload", "--upload-anonymous",
                           "--max-body-bytes", str(8 << 20), "-q")
        self.host, self.port = self.srv.host_port()

    def put(self, path, body):
        c = harness.http_connection(self.host, self.port, timeout=30)
        self.addCleanup(c.close)
        c.request("PUT", path, body=body)
        r = c.getresponse()
        return r.status, r.read()

    def test_507_keeps_the_old_file_and_leaves_no_temp(self):
        big = os.urandom(1 << 20)   # twice the filesystem, within what lingering close drains
        for path in ("/new.bin", "/old.txt"):
            with self.subTest(path=path):
                st, _ = self.put(path, big)
                self.assertEqual(st, 507)
                self.assertEqual(temps(self.root), [])
        self.assertFalse(os.path.exists(os.path.join(self.root, "new.bin")))
        with open(os.path.join(self.root, "old.txt"), "rb") as f:
            self.assertEqual(f.read(), b"old content\n")
        # the space was given back: a small write succeeds
        st, _ = self.put("/old.txt", b"new content\n")
        self.assertEqual(st, 204)
        with open(os.path.join(self.root, "old.txt"), "rb") as f:
            self.assertEqual(f.read(), b"new content\n")
        self.assertIsNone(self.srv.proc.poll())


if __name__ == "__main__":
    unittest.main()
