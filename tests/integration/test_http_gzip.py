"""netkit http serve --gzip: on-the-fly compression, streamed with chunked framing."""
import gzip
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import harness
import httptest as H
from httptest import req


def make_root(owner):
    base = tempfile.mkdtemp(prefix="netkit-gzip-")
    owner.addCleanup(shutil.rmtree, base, True)
    rnd = random.Random(7)
    files = {}
    words = ["alpha", "beta", "gamma", "delta", "netkit", "chunk", "stream", "zlib"]
    files["page.txt"] = "".join("%d %s\n" % (i, " ".join(rnd.choice(words) for _ in range(8)))
                                for i in range(4000)).encode()           # ~200 KiB, fd path
    files["small.css"] = ("body { color: red; }\n" * 200).encode()      # 4 KiB, memory copy
    files["tiny.txt"] = b"short text\n" * 10                             # below 1 KiB
    files["image.png"] = b"\x89PNG\r\n\x1a\n" + bytes(rnd.randrange(256) for _ in range(8000))
    for name, data in files.items():
        with open(os.path.join(base, name), "wb") as f:
            f.write(data)
    return base, files


def dechunk_strict(body):
    """Parse a chunked body; assert the framing is exact. -> (data, number of chunks)."""
    pos, out, n = 0, b"", 0
    while True:
        eol = body.index(b"\r\n", pos)
        size_text = body[pos:eol]
        assert size_text and all(c in b"0123456789abcdefABCDEF" for c in size_text), size_text
        size = int(size_text, 16)
        pos = eol + 2
        if size == 0:
            assert body[pos:] == b"\r\n", "bad last chunk / trailer %r" % body[pos:pos + 20]
            return out, n
        out += body[pos:pos + size]
        assert body[pos + size:pos + size + 2] == b"\r\n", "bad chunk end"
        pos += size + 2
        n += 1


def raw_response(host, port, data):
    """Send one request with Connection: close; return (head bytes, raw body bytes)."""
    out, closed = H.raw_ex(host, port, data, 10)
    assert closed, "server did not close"
    end = out.index(b"\r\n\r\n")
    return out[:end], out[end + 4:]


class GzipTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        owner = H.class_owner(cls)
        cls.root, cls.files = make_root(owner)
        cls.srv = H.serve(owner, cls.root, "--gzip", "-q")
        cls.host, cls.port = cls.srv.host_port()

    def setUp(self):
        self.assertIsNone(self.srv.proc.poll(), "server died")

    def fetch(self, target, *headers, method="GET", version="HTTP/1.1"):
        data = req(method, target, tuple(headers) + (("Connection", "close"),), version=version)
        out, closed = H.raw_ex(self.host, self.port, data, 10)
        self.assertTrue(closed)
        resps, rest = H.parse_responses(out, [method])
        self.assertEqual(len(resps), 1, resps)
        self.assertEqual(rest, b"")
        return resps[0]

    def test_curl_compressed(self):
        if not shutil.which("curl"):
            self.skipTest("curl is not installed")
        for name in ("page.txt", "small.css"):
            url = "%s/%s" % (self.srv.urls[0], name)
            out = subprocess.run(["curl", "--compressed", "-s"] + harness.curl_args(url) + [url],
                                 capture_output=True, timeout=20).stdout
            self.assertEqual(out, self.files[name], name)

    def test_raw_chunked_gzip(self):
        for name in ("page.txt", "small.css"):
            head, body = raw_response(self.host, self.port, req(
                "GET", "/" + name, (("Accept-Encoding", "gzip"), ("Connection", "close"))))
            _, status, _, headers = H.parse_head(head)
            hd = {k.lower(): v for k, v in headers}
            self.assertEqual(status, 200)
            self.assertEqual(hd.get("content-encoding"), "gzip")
            self.assertEqual(hd.get("transfer-encoding"), "chunked")
            self.assertEqual(hd.get("vary"), "Accept-Encoding")
            self.assertNotIn("content-length", hd)
            self.assertIn("last-modified", hd)
            self.assertTrue(hd["etag"].endswith('-gzip"'), hd["etag"])
            data, nchunks = dechunk_strict(body)
            self.assertGreaterEqual(nchunks, 1)
            self.assertEqual(gzip.decompress(data), self.files[name])
            self.assertLess(len(data), len(self.files[name]))

    def test_identity_for_non_gzip_clients(self):
        r = self.fetch("/page.txt")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(r.body, self.files["page.txt"])
        H.check_common(self, r)
        r = self.fetch("/page.txt", ("Accept-Encoding", "gzip;q=0, deflate"))
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, self.files["page.txt"])

    @harness.http1_framing("an HTTP/1.0 client")
    def test_http10_gets_identity(self):
        r = self.fetch("/page.txt", ("Accept-Encoding", "gzip"), version="HTTP/1.0")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertIsNone(r.header("Transfer-Encoding"))
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(r.body, self.files["page.txt"])
        H.check_common(self, r)

    def test_range_is_identity(self):
        r = self.fetch("/page.txt", ("Accept-Encoding", "gzip"), ("Range", "bytes=100-1099"))
        self.assertEqual(r.status, 206)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(r.body, self.files["page.txt"][100:1100])
        H.check_common(self, r)

    def test_binary_and_tiny_sent_as_is(self):
        for name in ("image.png", "tiny.txt"):
            r = self.fetch("/" + name, ("Accept-Encoding", "gzip"))
            self.assertEqual(r.status, 200)
            self.assertIsNone(r.header("Content-Encoding"), name)
            self.assertEqual(r.body, self.files[name])
            H.check_common(self, r)
        self.assertIsNone(self.fetch("/image.png", ("Accept-Encoding", "gzip")).header("Vary"))

    def test_head_same_headers(self):
        hdrs = (("Accept-Encoding", "gzip"),)
        g = self.fetch("/page.txt", *hdrs)
        h = self.fetch("/page.txt", *hdrs, method="HEAD")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.body, b"")
        for name in ("Content-Encoding", "Transfer-Encoding", "Vary", "ETag", "Content-Type",
                     "Last-Modified"):
            self.assertEqual(h.header(name), g.header(name), name)
        self.assertIsNone(h.header("Content-Length"))
        # and nothing follows the head on the wire
        out, _ = H.raw_ex(self.host, self.port, req(
            "HEAD", "/page.txt", hdrs + (("Connection", "close"),)), 5)
        self.assertTrue(out.endswith(b"\r\n\r\n"))
        self.assertEqual(out.count(b"\r\n\r\n"), 1)

    def test_if_none_match_gzip_etag(self):
        g = self.fetch("/page.txt", ("Accept-Encoding", "gzip"))
        plain = self.fetch("/page.txt")
        self.assertNotEqual(g.header("ETag"), plain.header("ETag"))
        r = self.fetch("/page.txt", ("Accept-Encoding", "gzip"), ("If-None-Match", g.header("ETag")))
        self.assertEqual(r.status, 304)
        self.assertEqual(r.header("ETag"), g.header("ETag"))
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        # the identity ETag does not match the gzip representation
        r = self.fetch("/page.txt", ("Accept-Encoding", "gzip"),
                       ("If-None-Match", plain.header("ETag")))
        self.assertEqual(r.status, 200)
        self.assertEqual(gzip.decompress(r.body), self.files["page.txt"])

    def test_pipelined_after_gzip(self):
        c = H.Conn((self.host, self.port))
        self.addCleanup(c.close)
        c.send(req("GET", "/page.txt", (("Accept-Encoding", "gzip"),)) +
               req("GET", "/small.css", (("Accept-Encoding", "gzip"),)) +
               req("GET", "/tiny.txt"))
        r1 = c.read_response()
        r2 = c.read_response()
        r3 = c.read_response()
        self.assertEqual(gzip.decompress(r1.body), self.files["page.txt"])
        self.assertEqual(gzip.decompress(r2.body), self.files["small.css"])
        self.assertEqual(r3.body, self.files["tiny.txt"])

    def test_precompressed_sidecar_wins(self):
        sidecar = gzip.compress(b"from the sidecar\n" * 100)
        path = os.path.join(self.root, "side.txt")
        with open(path, "wb") as f:
            f.write(b"plain text\n" * 200)
        with open(path + ".gz", "wb") as f:
            f.write(sidecar)
        r = self.fetch("/side.txt", ("Accept-Encoding", "gzip"))
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.body, sidecar)
        self.assertEqual(r.header("Content-Length"), str(len(sidecar)))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class GzipLargeTest(unittest.TestCase):
    def test_large_file_bounded_memory(self):
        base = tempfile.mkdtemp(prefix="netkit-gzip-big-")
        self.addCleanup(shutil.rmtree, base, True)
        rnd = random.Random(3)
        line = [("%08x " % rnd.getrandbits(32)) * 8 + "\n" for _ in range(2000)]
        data = ("".join(line) * 80)[:5 * 1024 * 1024].encode()
        with open(os.path.join(base, "big.log"), "wb") as f:
            f.write(data)
        srv = H.serve(self, base, "--gzip", "--gzip-level", "1", "-q")
        host, port = srv.host_port()
        # warm up (loop, buffers, zlib) so the baseline includes the fixed costs
        r = H.raw(host, port, req("GET", "/big.log", (("Accept-Encoding", "gzip"),
                                                       ("Connection", "close"), ("Range", "bytes=0-0"))))
        before = rss_kib(srv.proc.pid)
        # read slowly at first so the server has to hold the stream while the client lags
        s = H.connect((host, port), 20)
        self.addCleanup(s.close)
        s.setsockopt(H.socket.SOL_SOCKET, H.socket.SO_RCVBUF, 16384)
        s.sendall(req("GET", "/big.log", (("Accept-Encoding", "gzip"), ("Connection", "close"))))
        got = b""
        peak = before
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
            peak = max(peak, rss_kib(srv.proc.pid))
        end = got.index(b"\r\n\r\n")
        body, _ = dechunk_strict(got[end + 4:])
        self.assertEqual(gzip.decompress(body), data)
        self.assertLess(peak - before, 8 * 1024, "RSS grew by %d KiB" % (peak - before))
        del r

    def test_streams_in_flight_are_capped(self):
        # Each on-the-fly stream holds ~330 KiB of zlib state: clients that request and never
        # read must not pin more than 64 of them; past that the identity response is sent.
        base = tempfile.mkdtemp(prefix="netkit-gzip-cap-")
        self.addCleanup(shutil.rmtree, base, True)
        data = os.urandom(2 * 1024 * 1024).hex().encode()   # 4 MiB of text, ~2.3 MiB gzipped
        with open(os.path.join(base, "big.txt"), "wb") as f:
            f.write(data)
        # a small send buffer, so a stream stays in flight while its client does not read
        srv = H.serve(self, base, "--gzip", "--gzip-level", "1", "--sndbuf", "65536", "-q")
        host, port = srv.host_port()
        get = req("GET", "/big.txt", (("Accept-Encoding", "gzip"),))
        socks, encodings = [], []
        for _ in range(72):
            s = H.connect((host, port), 20, setup=lambda s: s.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, 4096))
            self.addCleanup(s.close)
            s.sendall(get)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(1)   # the head only: the body stays unread in the buffers
                self.assertTrue(chunk, "server closed before the head")
                head += chunk
            encodings.append(b"\r\ncontent-encoding: gzip\r\n" in head.lower())
            self.assertTrue(b"\r\nvary: accept-encoding\r\n" in head.lower(), head)
            socks.append(s)
        self.assertEqual(encodings.count(True), 64, encodings)
        self.assertEqual(encodings[64:], [False] * 8)
        for s in socks:
            s.close()
        # the closed streams were given back: gzip is offered again
        deadline = time.monotonic() + 10
        while True:
            head, body = raw_response(host, port, req("GET", "/big.txt", (
                ("Accept-Encoding", "gzip"), ("Connection", "close"))))
            if b"content-encoding: gzip" in head.lower() or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertIn(b"content-encoding: gzip", head.lower())
        self.assertEqual(gzip.decompress(dechunk_strict(body)[0]), data)
        self.assertIsNone(srv.proc.poll())


if __name__ == "__main__":
    unittest.main()
