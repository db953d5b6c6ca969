"""`netkit http get` and `netkit lookup tls` over TLS, against `netkit http serve` (https
listeners) and nginx, with a test PKI made here by the openssl command: a root CA, an
intermediate CA, a server certificate for 127.0.0.1 and localhost, and one for other.test only.

Checked: verification by --cacert (and its failure against the system store, the wrong name,
the wrong address), --pin-sha256, -k, what -v, --tls-info and lookup tls show, redirects from
http:// to https:// (and that credentials do not follow them to another origin), the handshake
timeout, large, chunked and gzip bodies arriving intact, and nginx interop (TLS 1.3 and 1.2).
"""
import gzip
import hashlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import harness

OPENSSL = shutil.which("openssl")
NGINX = "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else shutil.which("nginx")
VERIFY_FAILED = "netkit: http get: TLS: certificate verify failed: "


def openssl(*args, cwd):
    r = subprocess.run([OPENSSL] + list(args), cwd=cwd, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), r.stderr.decode()))


def fingerprint(pem_path):
    """SHA-256 of the first certificate of a PEM file, hex."""
    with open(pem_path) as f:
        text = f.read()
    first = text[:text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


class Pki:
    """Root CA -> intermediate CA -> server certificates, in a temporary directory."""

    def __init__(self, d):
        self.dir = d
        self.ca = os.path.join(d, "ca.pem")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3",
                "-subj", "/O=netkit tests/CN=netkit test root CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
        self._write("int.ext", "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                               "keyUsage=critical,keyCertSign,cRLSign\n")
        openssl("req", *ec, "-keyout", "int.key", "-out", "int.csr",
                "-subj", "/O=netkit tests/CN=netkit test intermediate CA", cwd=d)
        openssl("x509", "-req", "-in", "int.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-set_serial", "2", "-days", "3", "-extfile", "int.ext", "-out", "int.pem",
                cwd=d)
        self.server_chain, self.server_key = self._leaf("server", "localhost",
                                                        "IP:127.0.0.1,DNS:localhost", 3)
        self.other_chain, self.other_key = self._leaf("other", "other.test",
                                                      "DNS:other.test", 4)
        self.server_fp = fingerprint(self.server_chain)

    def _write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def _leaf(self, name, cn, san, serial):
        d = self.dir
        self._write(name + ".ext", "subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                                   "keyUsage=critical,digitalSignature\n"
                                   "extendedKeyUsage=serverAuth\n" % san)
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/O=netkit tests/CN=" + cn, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "int.pem", "-CAkey", "int.key",
                "-set_serial", str(serial), "-days", "3", "-extfile", name + ".ext",
                "-out", name + ".pem", cwd=d)
        # what a server sends: the leaf, then the intermediate (the root is the client's)
        with open(os.path.join(d, name + ".pem")) as a, open(os.path.join(d, "int.pem")) as b:
            self._write(name + "-chain.pem", a.read() + b.read())
        return os.path.join(d, name + "-chain.pem"), os.path.join(d, name + ".key")


PKI = None
TMP = None


def setUpModule():
    global PKI, TMP
    if not OPENSSL:
        raise unittest.SkipTest("the openssl command is not installed (Debian: openssl)")
    TMP = tempfile.mkdtemp(prefix="nk-tls-client-")
    PKI = Pki(TMP)


def tearDownModule():
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def get(*args, timeout=60):
    return harness.run(["http", "get"] + list(args), timeout=timeout)


def make_www(test):
    """A site: a small file, 4 MiB of random bytes, 3 MiB of compressible text."""
    d = tempfile.mkdtemp(prefix="nk-tls-www-")
    test.addCleanup(shutil.rmtree, d, True)
    with open(os.path.join(d, "hello.txt"), "wb") as f:
        f.write(b"hello over tls\n")
    big = os.urandom(4 * 1024 * 1024 + 123)
    with open(os.path.join(d, "big.bin"), "wb") as f:
        f.write(big)
    text = b"".join(b"line %d of a long text file, compressed on the fly\n" % i
                    for i in range(60000))
    with open(os.path.join(d, "text.txt"), "wb") as f:
        f.write(text)
    return d, big, text


def serve(test, www, *extra, listeners=1):
    return harness.start(test, ["http", "serve", www, "-w", "1", "-q"] + list(extra),
                         listeners=listeners)


def serve_ca(test, www, *extra):
    """netkit http serve over https with the test PKI's server certificate; its https URL."""
    s = serve(test, www, "-l", "https://127.0.0.1:0", "--tls-cert", PKI.server_chain,
              "--tls-key", PKI.server_key, *extra)
    return s, s.url.rstrip("/")


def one_line_error(test, r, prefix):
    """Exit 1, nothing on stdout, exactly one line on stderr starting with prefix."""
    err = r.stderr.decode()
    test.assertEqual(r.returncode, 1, err)
    test.assertEqual(r.stdout, b"")
    test.assertTrue(err.startswith(prefix), err)
    test.assertEqual(err.count("\n"), 1, err)
    return err


class Verify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.www = tempfile.mkdtemp(prefix="nk-tls-www-")
        with open(os.path.join(cls.www, "hello.txt"), "wb") as f:
            f.write(b"hello over tls\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.www, ignore_errors=True)

    def test_cacert(self):
        _, url = serve_ca(self, self.www)
        r = get("--cacert", PKI.ca, url + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello over tls\n")
        # by name: SNI and the certificate's DNS name
        port = url.rsplit(":", 1)[1]
        r = get("--cacert", PKI.ca, "https://localhost:%s/hello.txt" % port)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello over tls\n")

    def test_system_store_does_not_know_the_test_ca(self):
        _, url = serve_ca(self, self.www)
        r = get(url + "/hello.txt")
        err = one_line_error(self, r, VERIFY_FAILED)
        self.assertIn("local issuer", err)

    def test_wrong_host(self):
        s = serve(self, self.www, "-l", "https://127.0.0.1:0", "--tls-cert", PKI.other_chain,
                  "--tls-key", PKI.other_key)
        port = s.url.rstrip("/").rsplit(":", 1)[1]
        # an address is checked against the certificate's IP addresses (it has none)
        r = get("--cacert", PKI.ca, "https://127.0.0.1:%s/hello.txt" % port)
        err = one_line_error(self, r, VERIFY_FAILED)
        self.assertIn("IP address mismatch", err)
        # a name against its DNS names (other.test only)
        r = get("--cacert", PKI.ca, "https://localhost:%s/hello.txt" % port)
        err = one_line_error(self, r, VERIFY_FAILED)
        self.assertIn("hostname mismatch", err)

    def test_pin(self):
        s = serve(self, self.www, "-l", "https://127.0.0.1:0", "--tls-self-signed")
        url = s.url.rstrip("/")
        fps = [m.group(1) for m in (re.search(r"TLS certificate: self-signed, sha256 "
                                              r"([0-9a-f]{64})", l) for l in s.stderr_lines) if m]
        self.assertEqual(len(fps), 1, s.stderr_lines)
        fp = fps[0]
        r = get("--pin-sha256", fp, url + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello over tls\n")
        # colons between the bytes, upper case: the same pin
        colons = ":".join(fp[i:i + 2] for i in range(0, 64, 2)).upper()
        r = get("--pin-sha256", colons, url + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        # one digit off: refused
        wrong = ("0" if fp[0] != "0" else "1") + fp[1:]
        r = get("--pin-sha256", wrong, url + "/hello.txt")
        one_line_error(self, r, VERIFY_FAILED)
        # without the pin, the self-signed certificate is not trusted
        r = get(url + "/hello.txt")
        one_line_error(self, r, VERIFY_FAILED)
        # a malformed pin is bad usage
        r = get("--pin-sha256", fp[:-1], url + "/hello.txt")
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_pin_skips_ca_and_name_checks(self):
        # the CA-signed certificate for other.test, reached as 127.0.0.1, without its CA
        s = serve(self, self.www, "-l", "https://127.0.0.1:0", "--tls-cert", PKI.other_chain,
                  "--tls-key", PKI.other_key)
        r = get("--pin-sha256", fingerprint(PKI.other_chain), s.url.rstrip("/") + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = get("--pin-sha256", PKI.server_fp, s.url.rstrip("/") + "/hello.txt")
        one_line_error(self, r, VERIFY_FAILED)

    def test_insecure(self):
        s = serve(self, self.www, "-l", "https://127.0.0.1:0", "--tls-self-signed")
        for flag in ("-k", "--insecure"):
            r = get(flag, s.url.rstrip("/") + "/hello.txt")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, b"hello over tls\n")

    def test_bad_cacert_and_usage(self):
        _, url = serve_ca(self, self.www)
        missing = os.path.join(TMP, "missing.pem")
        r = get("--cacert", missing, url + "/hello.txt")
        err = one_line_error(self, r, "netkit: http get: TLS: cannot read --cacert '%s': "
                                      % missing)
        self.assertIn("No such file", err)
        # a file that holds no certificate
        r = get("--cacert", PKI.server_key, url + "/hello.txt")
        one_line_error(self, r, "netkit: http get: TLS: cannot load CA certificates")
        r = get("--cacert", PKI.ca, "-k", url + "/hello.txt")
        self.assertEqual(r.returncode, 2, r.stderr)
        r = get("--tls-info", "http://127.0.0.1:1/")
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_plain_http_server(self):
        s = serve(self, self.www, "-l", "http://127.0.0.1:0")
        http_url = s.url.rstrip("/")
        r = get("--cacert", PKI.ca, "https" + http_url[4:] + "/hello.txt")
        err = one_line_error(self, r, "netkit: http get: TLS: ")
        self.assertIn("plain http://", err)


class Show(unittest.TestCase):
    """-v, --tls-info and lookup tls."""

    @classmethod
    def setUpClass(cls):
        cls.www = tempfile.mkdtemp(prefix="nk-tls-www-")
        with open(os.path.join(cls.www, "hello.txt"), "wb") as f:
            f.write(b"hello over tls\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.www, ignore_errors=True)

    def check_report(self, text, prefix):
        """The handshake's lines: TLS 1.3, ALPN, and both certificates the server sent."""
        self.assertIn(prefix + "protocol    TLSv1.3\n", text)
        self.assertRegex(text, re.escape(prefix) +
                         r"cipher      TLS_(AES_\d+_GCM|CHACHA20_POLY1305)_SHA\d+\n")
        self.assertIn(prefix + "alpn        http/1.1\n", text)
        self.assertIn(prefix + "verify      ok: address 127.0.0.1, chain trusted by " + PKI.ca,
                      text)
        self.assertIn(prefix + "chain       2 certificates", text)
        self.assertIn(prefix + "  0 subject: O = netkit tests, CN = localhost\n", text)
        self.assertIn(prefix + "    issuer: O = netkit tests, CN = netkit test intermediate "
                      "CA\n", text)
        self.assertIn(prefix + "    sha256: %s\n" % PKI.server_fp, text)
        self.assertIn(prefix + "  1 subject: O = netkit tests, CN = netkit test intermediate "
                      "CA\n", text)
        self.assertIn(prefix + "    issuer: O = netkit tests, CN = netkit test root CA\n", text)
        self.assertIn(prefix + "    sha256: %s\n" % fingerprint(os.path.join(TMP, "int.pem")),
                      text)
        self.assertRegex(text, re.escape(prefix) + r"    valid: \w{3} +\d+ [\d:]+ \d{4} GMT to ")

    def test_verbose(self):
        _, url = serve_ca(self, self.www)
        r = get("-v", "--cacert", PKI.ca, url + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello over tls\n")
        err = r.stderr.decode()
        self.check_report(err, "* ")
        self.assertIn("* TLS handshake, server name 127.0.0.1 (an address: no SNI), ALPN offers "
                      "http/1.1\n", err)
        # the handshake is reported before the request goes out
        self.assertLess(err.index("* protocol"), err.index("> GET /hello.txt HTTP/1.1"))
        self.assertIn("< HTTP/1.1 200 OK", err)

    def test_tls_info(self):
        log = os.path.join(TMP, "access-%d.log" % os.getpid())
        self.addCleanup(lambda: os.path.exists(log) and os.unlink(log))
        _, url = serve_ca(self, self.www, "--access-log", log)
        r = get("--tls-info", "--cacert", PKI.ca, url + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")
        out = r.stdout.decode()
        self.assertRegex(out, r"^address     127\.0\.0\.1:\d+\nname        127\.0\.0\.1\n")
        self.check_report(out, "")
        # no request was sent: the access log stays empty, until a real request is logged
        r = get("--cacert", PKI.ca, url + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.monotonic() + 10
        lines = []
        while time.monotonic() < deadline:
            with open(log) as f:
                lines = f.read().splitlines()
            if lines:
                break
            time.sleep(0.05)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("GET /hello.txt", lines[0])
        # a failed check says so and shows nothing
        r = get("--tls-info", url + "/")
        one_line_error(self, r, VERIFY_FAILED)

    def test_lookup_tls(self):
        _, url = serve_ca(self, self.www)
        hostport = url[len("https://"):]
        r = harness.run(["lookup", "tls", hostport, "--cacert", PKI.ca], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertTrue(out.startswith("address     %s\nname        127.0.0.1\n" % hostport),
                        out)
        self.check_report(out, "")
        # another name to check (and send as SNI)
        port = hostport.rsplit(":", 1)[1]
        r = harness.run(["lookup", "tls", "127.0.0.1:" + port, "--servername", "localhost",
                         "--cacert", PKI.ca], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("name        localhost\n", r.stdout.decode())
        self.assertIn("verify      ok: name localhost,", r.stdout.decode())
        r = harness.run(["lookup", "tls", "127.0.0.1:" + port, "--servername", "other.test",
                         "--cacert", PKI.ca], timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("hostname mismatch", r.stderr.decode())
        # the system store does not know the test CA; -k shows the chain anyway
        r = harness.run(["lookup", "tls", hostport], timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.decode().startswith(
            "netkit: lookup tls: TLS: certificate verify failed: "), r.stderr)
        r = harness.run(["lookup", "tls", "-k", "https://%s/" % hostport], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("verify      NOT verified (--insecure)\n", r.stdout.decode())
        self.assertIn("sha256: %s\n" % PKI.server_fp, r.stdout.decode())
        for bad in (["lookup", "tls"], ["lookup", "tls", "a/b"], ["lookup", "tls", "x", "-k",
                                                                   "--cacert", PKI.ca]):
            r = harness.run(bad, timeout=60)
            self.assertEqual(r.returncode, 2, (bad, r.stderr))


class Redirects(unittest.TestCase):
    def test_http_to_https(self):
        www, _, _ = make_www(self)
        s = serve(self, www, "-l", "http://127.0.0.1:0", "-l", "https://127.0.0.1:0", "--tls-cert",
                  PKI.server_chain, "--tls-key", PKI.server_key, "--redirect-https",
                  listeners=2)
        http_url = [u for u in s.urls if u.startswith("http://")][0].rstrip("/")
        https_url = [u for u in s.urls if u.startswith("https://")][0].rstrip("/")
        r = get("-L", "-v", "--cacert", PKI.ca, http_url + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello over tls\n")
        self.assertIn("* Following redirect (308) to %s/hello.txt" % https_url,
                      r.stderr.decode())
        # without -L, the redirect is the answer
        r = get("-i", "--cacert", PKI.ca, http_url + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"308", r.stdout.split(b"\r\n")[0])
        # the https hop is verified like any other
        r = get("-L", http_url + "/hello.txt")
        one_line_error(self, r, VERIFY_FAILED)

    def test_credentials_stay_with_their_origin(self):
        www, _, _ = make_www(self)
        s = serve(self, www, "--echo", "-l", "http://127.0.0.1:0", "-l", "https://127.0.0.1:0",
                  "--tls-cert", PKI.server_chain, "--tls-key", PKI.server_key,
                  "--redirect-https", listeners=2)
        http_url = [u for u in s.urls if u.startswith("http://")][0].rstrip("/")
        https_url = [u for u in s.urls if u.startswith("https://")][0].rstrip("/")
        creds = ["-H", "Authorization: Bearer secret", "-H", "Cookie: a=b", "-H", "X-Other: y"]
        # asked of the https origin itself: sent
        r = get("--cacert", PKI.ca, *creds, https_url + "/x")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"header Authorization: Bearer secret", r.stdout)
        self.assertIn(b"header Cookie: a=b", r.stdout)
        # asked of http://, redirected to https:// (another scheme and port): not sent there
        r = get("-L", "-v", "--cacert", PKI.ca, *creds, http_url + "/x")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"request-line GET /x HTTP/1.1", r.stdout)
        self.assertNotIn(b"secret", r.stdout)
        self.assertNotIn(b"Cookie", r.stdout)
        self.assertIn(b"header X-Other: y", r.stdout)
        self.assertIn("* Another origin: -H Authorization and Cookie are not sent there",
                      r.stderr.decode())


class Timeouts(unittest.TestCase):
    def listener(self):
        s = socket.socket()
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        return s

    def test_silent_server(self):
        s = self.listener()
        r = get("-w", "0.5", "https://127.0.0.1:%d/" % s.getsockname()[1])
        one_line_error(self, r, "netkit: http get: TLS: handshake not done after 0.5 s")

    def test_trickling_server_does_not_extend_the_handshake(self):
        # A record header announcing 80 bytes, then one byte every 0.25 s (20 s in all): the
        # bytes keep moving, but the handshake as a whole gets one timeout.
        s = self.listener()
        stop = threading.Event()
        self.addCleanup(stop.set)

        def trickle():
            try:
                c, _ = s.accept()
            except OSError:
                return
            with c:
                c.sendall(b"\x16\x03\x03\x00\x50")
                for _ in range(80):
                    if stop.wait(0.25):
                        return
                    try:
                        c.sendall(b"\x00")
                    except OSError:
                        return

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        start = time.monotonic()
        r = get("-w", "1", "https://127.0.0.1:%d/" % s.getsockname()[1])
        elapsed = time.monotonic() - start
        one_line_error(self, r, "netkit: http get: TLS: handshake not done after 1 s")
        # liveness only: far less than the 20 s the trickle would take
        self.assertLess(elapsed, 15)
        stop.set()
        t.join(10)

    def test_lookup_silent_server(self):
        s = self.listener()
        r = harness.run(["lookup", "tls", "-w", "0.5", "127.0.0.1:%d" % s.getsockname()[1]],
                        timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.decode(),
                         "netkit: lookup tls: TLS: handshake not done after 0.5 s\n")


class Truncation(unittest.TestCase):
    """A body that ends with the connection (no Content-Length, not chunked) is whole over TLS
    only when close_notify ends it: a bare TCP close, which anyone on the path can forge, is an
    error instead of a short file accepted as complete."""

    def serve_once(self, clean):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(PKI.server_chain, PKI.server_key)
        ls = socket.socket()
        self.addCleanup(ls.close)
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        ls.settimeout(20)

        def run():
            try:
                raw, _ = ls.accept()
            except OSError:
                return
            with raw:
                t = ctx.wrap_socket(raw, server_side=True)
                t.recv(4096)
                t.sendall(b"HTTP/1.0 200 OK\r\n\r\nhalf of the bo")
                if clean:
                    t.unwrap()  # close_notify, then the TCP close

        th = threading.Thread(target=run)
        th.start()
        self.addCleanup(th.join, 20)
        return ls.getsockname()[1]

    def test_close_notify_ends_the_body(self):
        port = self.serve_once(clean=True)
        r = get("--cacert", PKI.ca, "https://127.0.0.1:%d/" % port)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"half of the bo")

    def test_bare_tcp_close_is_an_error(self):
        port = self.serve_once(clean=False)
        r = get("--cacert", PKI.ca, "https://127.0.0.1:%d/" % port)
        # What came is written as it came (as curl does); the exit status and the line say
        # it is not the whole body.
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertTrue(err.startswith("netkit: http get: the server closed the connection "
                                       "without TLS close_notify"), err)


class Bodies(unittest.TestCase):
    def test_large_body(self):
        www, big, _ = make_www(self)
        _, url = serve_ca(self, www)
        r = get("--cacert", PKI.ca, url + "/big.bin", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout), len(big))
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), hashlib.sha256(big).hexdigest())
        # and to a file, atomically
        out = os.path.join(www, "copy.bin")
        r = get("--cacert", PKI.ca, "-o", out, url + "/big.bin", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(),
                             hashlib.sha256(big).hexdigest())

    def test_large_upload(self):
        # a body larger than the socket buffers goes out through TLS in full
        www, big, _ = make_www(self)
        src = os.path.join(www, "up.bin")
        with open(src, "wb") as f:
            f.write(big[:2 * 1024 * 1024])
        s = serve(self, www, "--echo", "--max-body-bytes", "4194304", "-l",
                  "https://127.0.0.1:0", "--tls-cert", PKI.server_chain, "--tls-key",
                  PKI.server_key)
        r = get("--cacert", PKI.ca, "-X", "PUT", "-d", "@" + src, s.url.rstrip("/") + "/up",
                timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"body %d bytes" % (2 * 1024 * 1024), r.stdout)

    def test_chunked_gzip(self):
        www, _, text = make_www(self)
        _, url = serve_ca(self, www, "--gzip")
        r = get("-v", "--compressed", "--cacert", PKI.ca, url + "/text.txt", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        err = r.stderr.decode()
        self.assertIn("< Transfer-Encoding: chunked", err)
        self.assertIn("< Content-Encoding: gzip", err)
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), hashlib.sha256(text).hexdigest())
        # without --compressed, the gzip bytes as sent, which decode to the file
        r = get("--cacert", PKI.ca, "-H", "Accept-Encoding: gzip", url + "/text.txt",
                timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(gzip.decompress(r.stdout), text)


NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type text/plain;
    gzip on;
    gzip_types text/plain;
    server {{
        listen 127.0.0.1:{port13} ssl;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        root {www};
    }}
    server {{
        listen 127.0.0.1:{port12} ssl;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2;
        root {www};
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@unittest.skipUnless(NGINX, "nginx is not installed (Debian: nginx-light)")
class Nginx(unittest.TestCase):
    def start_nginx(self, www):
        d = tempfile.mkdtemp(prefix="nk-tls-nginx-")
        self.addCleanup(shutil.rmtree, d, True)
        for attempt in range(5):
            p13, p12 = free_port(), free_port()
            conf = os.path.join(d, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(d=d, port13=p13, port12=p12, chain=PKI.server_chain,
                                          key=PKI.server_key, www=www))
            proc = subprocess.Popen([NGINX, "-p", d, "-c", conf, "-e", d + "/error.log"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            self.addCleanup(harness._reap, proc)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                if can_connect(p13) and can_connect(p12):
                    return p13, p12
                time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            with open(d + "/error.log", errors="replace") as f:
                log = f.read()
            if "Address already in use" not in log:
                self.fail("nginx did not start: %s" % log[-2000:])
        self.fail("nginx: no free port pair in 5 attempts")

    def test_interop(self):
        www, big, text = make_www(self)
        p13, p12 = self.start_nginx(www)
        url = "https://127.0.0.1:%d" % p13
        r = get("--cacert", PKI.ca, url + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello over tls\n")
        # by name, with SNI
        r = get("--cacert", PKI.ca, "https://localhost:%d/hello.txt" % p13)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"hello over tls\n")
        # several MB intact
        r = get("--cacert", PKI.ca, url + "/big.bin", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), hashlib.sha256(big).hexdigest())
        # nginx's gzip is chunked
        r = get("-v", "--compressed", "--cacert", PKI.ca, url + "/text.txt", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("< Transfer-Encoding: chunked", r.stderr.decode())
        self.assertIn("< Content-Encoding: gzip", r.stderr.decode())
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), hashlib.sha256(text).hexdigest())
        # what was negotiated, on each server
        r = get("--tls-info", "--cacert", PKI.ca, url + "/")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("protocol    TLSv1.3\n", r.stdout.decode())
        self.assertIn("alpn        http/1.1\n", r.stdout.decode())
        self.assertIn("chain       2 certificates", r.stdout.decode())
        r = get("--tls-info", "--cacert", PKI.ca, "https://127.0.0.1:%d/" % p12)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("protocol    TLSv1.2\n", r.stdout.decode())
        self.assertRegex(r.stdout.decode(),
                         r"cipher      ECDHE-ECDSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)\n")
        r = get("--cacert", PKI.ca, "https://127.0.0.1:%d/big.bin" % p12, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), hashlib.sha256(big).hexdigest())
        # and verification still applies
        r = get(url + "/hello.txt")
        one_line_error(self, r, VERIFY_FAILED)


if __name__ == "__main__":
    unittest.main()
