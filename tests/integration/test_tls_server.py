"""TLS in `netkit http serve`: https:// listeners, certificates chosen by SNI, session tickets
shared by the workers, --redirect-https, --hsts, certificate reload on SIGHUP, hostile
handshakes, and what an idle TLS connection costs.

Everything is checked from the outside with clients that share no code with the server:
openssl s_client, curl, sslscan, wrk and Python's ssl module. The test makes its own small
PKI with the openssl command in a temporary directory (a CA, ECDSA P-256 certificates for
localhost and 127.0.0.1 and for third.test, an RSA 2048 one for other.test); nothing leaves
loopback.
"""
import gzip
import hashlib
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import harness
import httptest as H
from locationcheck import check_location

MIB = 1024 * 1024
HEAD_CLOSE = b"HEAD /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
PKI = None  # made once for the module (setUpModule)


_asan = None


def asan_build():
    global _asan
    if _asan is None:
        with open(harness.NETKIT, "rb") as f:
            _asan = b"__asan_init" in f.read()
    return _asan


def slack():
    """Liveness bounds are doubled under the sanitizers (they slow every process down)."""
    return 2.0 if os.environ.get("ASAN_OPTIONS") or asan_build() else 1.0


def asan_env():
    """A small ASan quarantine, so that RSS measures the server more than freed memory held
    back (harmless without ASan)."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=4"}


def vm_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


def need(tool):
    if shutil.which(tool) is None:
        raise unittest.SkipTest("%s is not installed (Debian package %s)" % (tool, tool))


# ---------------------------------------------------------------------------------------------
# PKI: a CA and server certificates made with the openssl command


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), r.stderr.decode()))
    return r.stdout


def der_fingerprint(der):
    return hashlib.sha256(der).hexdigest()


def pem_fingerprint(pem_text):
    return der_fingerprint(ssl.PEM_cert_to_DER_cert(pem_text))


class Cert:
    def __init__(self, crt, key):
        self.crt = crt
        self.key = key
        with open(crt) as f:
            self.pem = f.read()
        self.fp = pem_fingerprint(self.pem)


class Pki:
    def __init__(self, base):
        self.base = base
        self.serial = 1
        self.ca = os.path.join(base, "ca.pem")
        self.ca_key = os.path.join(base, "ca.key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.ca_key, "-out", self.ca, "-days", "3", "-subj",
                "/CN=netkit test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        local = "DNS:localhost,IP:127.0.0.1,IP:::1"
        self.ec = self.issue("ec", "ec", "localhost", local)
        self.ec2 = self.issue("ec2", "ec", "localhost", local)  # the same names, a new key
        self.other = self.issue("other", "rsa", "other.test", "DNS:other.test,DNS:*.wild.test")
        self.third = self.issue("third", "ec", "third.test", "DNS:third.test")

    def issue(self, name, kind, cn, sans):
        p = lambda ext: os.path.join(self.base, name + ext)
        newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec"
                  else ["-newkey", "rsa:2048"])
        openssl("req", "-new", *newkey, "-nodes", "-keyout", p(".key"), "-out", p(".csr"),
                "-subj", "/CN=" + cn)
        usage = "digitalSignature" + (",keyEncipherment" if kind == "rsa" else "")
        with open(p(".ext"), "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,%s\n"
                    "extendedKeyUsage=serverAuth\n" % (sans, usage))
        self.serial += 1
        openssl("x509", "-req", "-in", p(".csr"), "-CA", self.ca, "-CAkey", self.ca_key,
                "-set_serial", str(self.serial), "-days", "3", "-out", p(".crt"),
                "-extfile", p(".ext"))
        return Cert(p(".crt"), p(".key"))


_pki_dir = None


def setUpModule():
    global PKI, _pki_dir
    if shutil.which("openssl") is None:
        raise unittest.SkipTest("the openssl command is needed to make test certificates")
    _pki_dir = tempfile.mkdtemp(prefix="netkit-tls-pki-")
    PKI = Pki(_pki_dir)


def tearDownModule():
    if _pki_dir:
        shutil.rmtree(_pki_dir, True)


# ---------------------------------------------------------------------------------------------
# documents and servers


def make_root(test):
    base = tempfile.mkdtemp(prefix="netkit-tls-")
    test.addCleanup(shutil.rmtree, base, True)
    root = os.path.join(base, "root")
    os.mkdir(root)
    files = {"hello.txt": b"hello over tls\n"}
    rnd = random.Random(7)
    # Text that compresses (> 1 KiB, --gzip applies) and a bigger one that compresses only
    # about 2:1 (hex), so a slow reader really holds the gzip stream back.
    files["text.txt"] = b"".join(b"line %05d: the quick brown fox jumps over the lazy dog\n" % i
                                 for i in range(4000))
    files["hex.txt"] = b"".join(b"%064x\n" % rnd.getrandbits(256) for _ in range(48000))
    files["big.bin"] = rnd.randbytes(10 * MIB)
    for i in range(20):
        files["n%02d.txt" % i] = b"piece %02d\n" % i
        files["b%02d.bin" % i] = (b"block %02d " % i) * 1820  # 16 KiB
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    return base, root, files


class Served:
    """A running server: .srv (harness.Server), .https and .http ports, .pid."""

    def __init__(self, srv):
        self.srv = srv
        self.pid = srv.proc.pid
        self.https = self.http = self.unix = None
        for i, url in enumerate(srv.urls):
            if url.startswith("https://"):
                self.https = self.https or srv.host_port(i)[1]
            elif url.startswith("http://"):
                self.http = self.http or srv.host_port(i)[1]
            elif url.startswith("unix:"):
                self.unix = url[5:]

    def status(self):
        """The --status JSON (over cleartext when there is a listener for it)."""
        if self.http:
            conn = H.Conn(("127.0.0.1", self.http))
            try:
                return json.loads(conn.request(H.get_close("/s")).body)
            finally:
                conn.close()
        st, _, body = https_get(self.https, "/s")
        if st != 200:
            raise AssertionError("status page: %d" % st)
        return json.loads(body)

    def workers(self):
        st = self.status()
        return st.get("workers") or [st]


def serve(test, root, *args, workers=1, clear=False, certs=None, status=True, listen=None,
          env=None):
    """`netkit http serve ROOT` with an https:// listener on 127.0.0.1 (and an http:// one with
    clear=True), the given certificates (default: the ECDSA one for localhost)."""
    if listen is None:
        listen = ["https://127.0.0.1:0"] + (["http://127.0.0.1:0"] if clear else [])
    argv = []
    for c in (PKI.ec,) if certs is None else certs:
        argv += ["--tls-cert", c.crt, "--tls-key", c.key]
    argv += ["--access-log", "off"]
    if status:
        argv += ["--status", "/s"]
    argv += list(args)
    return Served(H.serve(test, root, *argv, workers=workers, listen=listen, env=env))


def client_ctx(alpn=None):
    ctx = ssl.create_default_context(cafile=PKI.ca)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def https_get(port, path, method="GET", headers=None, timeout=10):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_ctx(), timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


def tls_connect(port, server_hostname="localhost", timeout=10, ctx=None, rcvbuf=None):
    if rcvbuf:  # set before connecting: a fixed small window, no autotuning
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(timeout)
        try:
            raw.connect(("127.0.0.1", port))
        except BaseException:
            raw.close()
            raise
    else:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return (ctx or client_ctx()).wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def peer_fp(sock):
    return der_fingerprint(sock.getpeercert(binary_form=True))


def fresh_fp(port):
    """SHA-256 of the certificate a new handshake gets (not verified: a test may expect a
    certificate the CA did not sign)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with tls_connect(port, ctx=ctx) as s:
        return peer_fp(s)


def s_client(port, *args, send=HEAD_CLOSE, timeout=20):
    """Run openssl s_client against 127.0.0.1:port; returns its stdout and stderr together.
    -ign_eof: it stays until the server closes (after answering the request sent), so TLS 1.3
    tickets that follow the handshake are received too."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", PKI.ca,
           "-ign_eof"] + list(args)
    r = subprocess.run(cmd, input=send, capture_output=True, timeout=timeout)
    return r.stdout.decode("latin-1") + r.stderr.decode("latin-1")


def negotiated(out):
    """(New|Reused, protocol, cipher) from s_client's summary line, or None."""
    m = re.search(r"^(New|Reused), (\S+), Cipher is (\S+)", out, re.M)
    return m.groups() if m else (None, None, None)


def leaf_fp(out):
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    return pem_fingerprint(m.group(0)) if m else None


def client_hello():
    """The bytes of a real ClientHello (Python's ssl module writing into memory)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and len(hello) > 100, hello[:10]
    return hello


def closed_by_server(sock, timeout):
    """Read (and drop) what the server sends until it closes; True when it closed in time."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return False
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            continue
        except OSError:  # a reset, or a TLS alert or error: closed either way
            return True


def wait_for(cond, timeout, step=0.05):
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= end:
            return v
        time.sleep(step)


def tls_pump(sock, payload, enough, timeout=30):
    """Send payload on a TLS socket while reading what comes back, in one thread (an SSL
    object must not be used by two at once), until enough(received) or the server closes."""
    sock.setblocking(False)
    sent = 0
    got = bytearray()
    end = time.monotonic() + timeout
    while not enough(bytes(got)):
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("TLS exchange: sent %d of %d bytes, received %d, no more "
                                 "within %ss" % (sent, len(payload), len(got), timeout))
        wlist = [sock] if sent < len(payload) else []
        select.select([sock], wlist, [], min(left, 0.2))
        if sent < len(payload):
            try:
                sent += sock.send(payload[sent:sent + 16384])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        while True:  # decrypted bytes can wait inside without the socket being readable
            try:
                chunk = sock.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            if not chunk:
                return bytes(got)
            got += chunk
    return bytes(got)


def tls_send_then_read(sock, payload, enough, timeout=60):
    """Send all of payload before reading anything (as long as the socket takes it: after 2 s
    without progress, reading starts so that nothing can deadlock), then read until
    enough(received). The server meanwhile meets a client that does not read."""
    sock.setblocking(False)
    sent = 0
    stuck = time.monotonic() + 2
    while sent < len(payload) and time.monotonic() < stuck:
        select.select([], [sock], [], 0.1)
        try:
            n = sock.send(payload[sent:sent + 16384])
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            continue
        sent += n
        stuck = time.monotonic() + 2
    time.sleep(0.3)  # let the server fill its buffers against the unread responses
    return tls_pump(sock, payload[sent:], enough, timeout)


def curl(*args, timeout=120):
    cmd = ["curl", "-sS", "--max-time", "60", "--cacert", PKI.ca] + list(args)
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def replace_cert(crt_path, key_path, cert):
    """Put cert's files in place, each replaced in one step."""
    for src, dst in ((cert.key, key_path), (cert.crt, crt_path)):
        tmp = dst + ".tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


class StderrWatch:
    """Collects a server's stderr after its readiness lines and waits for a text in it."""

    def __init__(self, srv):
        self.srv = srv
        self.text = ""

    def wait(self, needle, count=1, timeout=10):
        end = time.monotonic() + timeout
        while self.text.count(needle) < count and time.monotonic() < end:
            self.text += self.srv.read_stderr(0.2)
        return self.text.count(needle) >= count


# ---------------------------------------------------------------------------------------------
# 1. protocol versions, ciphers, ALPN (openssl s_client)


class ProtocolTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base, cls.root, cls.files = make_root(H.class_owner(cls))
        cls.s = serve(H.class_owner(cls), cls.root)

    def test_tls13_handshake(self):
        out = s_client(self.s.https, "-tls1_3")
        self.assertEqual(negotiated(out)[:2], ("New", "TLSv1.3"), out)
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertIn("HTTP/1.1 200 OK", out)
        self.assertEqual(leaf_fp(out), PKI.ec.fp)

    def test_tls12_handshake_forward_secret_aead(self):
        out = s_client(self.s.https, "-tls1_2")
        _, proto, cipher = negotiated(out)
        self.assertEqual(proto, "TLSv1.2", out)
        self.assertTrue(cipher.startswith("ECDHE-ECDSA-"), cipher)
        self.assertTrue("GCM" in cipher or "CHACHA20" in cipher, cipher)
        self.assertIn("HTTP/1.1 200 OK", out)
        self.assertRegex(out, r"Compression: NONE")

    def test_tls12_without_ecdhe_or_aead_refused(self):
        # A client that offers only RSA key exchange, or only CBC, gets no handshake.
        for cipher in ("AES128-GCM-SHA256", "AES128-SHA", "ECDHE-ECDSA-AES128-SHA",
                       "ECDHE-ECDSA-AES256-SHA384"):
            with self.subTest(cipher=cipher):
                out = s_client(self.s.https, "-tls1_2", "-cipher", cipher)
                self.assertEqual(negotiated(out)[2], "(NONE)", out)
                self.assertNotIn("HTTP/1.1", out)

    def test_old_versions_refused(self):
        for flag, name in (("-tls1_1", "TLSv1.1"), ("-tls1", "TLSv1")):
            with self.subTest(version=name):
                # SECLEVEL=0 lets this client offer the old version at all (Debian's default
                # configuration refuses it before anything is sent).
                out = s_client(self.s.https, flag, "-cipher", "DEFAULT@SECLEVEL=0")
                if "no protocols available" in out or "unknown option" in out:
                    self.skipTest("this openssl cannot offer %s: %s" % (name, out[-300:]))
                self.assertEqual(negotiated(out)[2], "(NONE)", out)
                self.assertNotIn("HTTP/1.1", out)
                # The server's answer, not a local failure: a protocol_version alert (70).
                self.assertRegex(out, r"alert protocol version|alert number 70")

    def test_alpn_http11(self):
        out = s_client(self.s.https, "-alpn", "http/1.1")
        self.assertRegex(out, r"(?m)^ALPN protocol: http/1\.1$")
        # HTTP/2 first when the client offers it (RFC 9113 section 3.2).
        out = s_client(self.s.https, "-alpn", "h2,http/1.1")
        self.assertRegex(out, r"(?m)^ALPN protocol: h2$")
        out = s_client(self.s.https, "-alpn", "http/1.1,h2")
        self.assertRegex(out, r"(?m)^ALPN protocol: h2$", "the server's preference decides")
        out = s_client(self.s.https)
        self.assertIn("No ALPN negotiated", out)
        self.assertIn("HTTP/1.1 200 OK", out, "a client without ALPN is served")

    def test_alpn_without_http2(self):
        served = serve(self, self.root, "--no-http2")
        out = s_client(served.https, "-alpn", "h2,http/1.1")
        self.assertRegex(out, r"(?m)^ALPN protocol: http/1\.1$", "--no-http2: h2 is not offered")

    def test_alpn_without_overlap_fails(self):
        # RFC 7301 3.2: only unknown protocols offered -> no_application_protocol (120).
        out = s_client(self.s.https, "-alpn", "h2x")
        self.assertRegex(out, r"alert no application protocol|alert number 120")
        self.assertEqual(negotiated(out)[2], "(NONE)", out)
        self.assertNotIn("HTTP/1.1", out)


# ---------------------------------------------------------------------------------------------
# 2. SNI


class SniTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base, cls.root, cls.files = make_root(H.class_owner(cls))
        cls.s = serve(H.class_owner(cls), cls.root, certs=(PKI.ec, PKI.other, PKI.third))

    def fp_for(self, *args):
        out = s_client(self.s.https, *args)
        self.assertIsNotNone(leaf_fp(out), out)
        return leaf_fp(out), out

    def test_other_name_gets_other_cert(self):
        for name in ("other.test", "OTHER.test", "a.wild.test"):
            with self.subTest(name=name):
                fp, out = self.fp_for("-servername", name, "-verify_hostname", name)
                self.assertEqual(fp, PKI.other.fp)
                self.assertIn("Verify return code: 0 (ok)", out)
                self.assertIn("HTTP/1.1 200 OK", out)

    def test_same_key_type_by_name(self):
        # third.test is ECDSA like the default: only the name tells them apart.
        for version in ("-tls1_3", "-tls1_2"):
            with self.subTest(version=version):
                fp, out = self.fp_for(version, "-servername", "third.test", "-verify_hostname",
                                      "third.test")
                self.assertEqual(fp, PKI.third.fp)
                self.assertIn("Verify return code: 0 (ok)", out)

    def test_rsa_cert_over_tls12(self):
        fp, out = self.fp_for("-tls1_2", "-servername", "other.test")
        self.assertEqual(fp, PKI.other.fp)
        cipher = negotiated(out)[2]
        self.assertTrue(cipher.startswith("ECDHE-RSA-") and ("GCM" in cipher or "CHACHA" in cipher),
                        cipher)

    def test_no_or_unknown_name_gets_default(self):
        for args in (("-noservername",), ("-servername", "unknown.test"),
                     ("-servername", "b.a.wild.test"), ("-servername", "localhost")):
            with self.subTest(args=args):
                fp, out = self.fp_for(*args)
                self.assertEqual(fp, PKI.ec.fp)
                self.assertIn("HTTP/1.1 200 OK", out)

    def test_python_client_sni(self):
        with tls_connect(self.s.https, server_hostname="other.test") as s:
            self.assertEqual(peer_fp(s), PKI.other.fp)
        with tls_connect(self.s.https, server_hostname="localhost") as s:
            self.assertEqual(peer_fp(s), PKI.ec.fp)


class CertDirectoryTests(unittest.TestCase):
    def make_dir(self):
        base, root, _ = make_root(self)
        d = os.path.join(base, "certs")
        os.mkdir(d)
        # "a-" sorts first: the default. "b-" is chosen by SNI.
        for name, cert in (("a-local", PKI.ec), ("b-other", PKI.other)):
            shutil.copyfile(cert.crt, os.path.join(d, name + ".crt"))
            shutil.copyfile(cert.key, os.path.join(d, name + ".key"))
        return root, d

    def check_dir_served(self, s):
        self.assertEqual(leaf_fp(s_client(s.https, "-servername", "other.test")), PKI.other.fp)
        self.assertEqual(leaf_fp(s_client(s.https, "-noservername")), PKI.ec.fp)
        self.assertEqual(https_get(s.https, "/hello.txt")[0], 200)

    def test_directory_with_a_stray_key_is_refused(self):
        # A directory brings its own keys: a --tls-key beside it pairs with no certificate file.
        root, d = self.make_dir()
        r = harness.run(["http", "serve", root, "-l", "https://127.0.0.1:0", "--tls-cert", d,
                         "--tls-key", d], timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"--tls-key", r.stderr)

    def test_directory_alone(self):
        # The manual: "A directory stands for every NAME.crt in it with its NAME.key".
        root, d = self.make_dir()
        self.check_dir_served(serve(self, root, "--tls-cert", d, certs=()))


class StartupTests(unittest.TestCase):
    def test_bad_certificates_fail_at_start(self):
        base, root, _ = make_root(self)
        garbage = os.path.join(base, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("not a certificate\n")
        cases = [
            (["--tls-cert", PKI.ec.crt, "--tls-key", PKI.ec2.key], 1, "does not match"),
            (["--tls-cert", garbage, "--tls-key", PKI.ec.key], 1, "garbage.pem"),
            (["--tls-cert", os.path.join(base, "missing.pem"), "--tls-key", PKI.ec.key], 1,
             "missing.pem"),
            (["--tls-cert", PKI.ec.crt], 2, "--tls-key"),
        ]
        for extra, code, text in cases:
            with self.subTest(extra=extra):
                r = harness.run(["http", "serve", root, "-l", "https://127.0.0.1:0", "-w", "1"]
                                + extra, timeout=20)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, code, err)
                self.assertIn(text, err)
                self.assertRegex(err, r"^netkit: http serve: ")
                self.assertNotIn("listening on", err)

    def test_self_signed_fingerprint(self):
        base, root, _ = make_root(self)
        s = serve(self, root, "--tls-self-signed", certs=())
        lines = [l for l in s.srv.stderr_lines if l.startswith("TLS certificate:")]
        self.assertEqual(len(lines), 1, s.srv.stderr_lines)
        m = re.match(r"^TLS certificate: self-signed, sha256 ([0-9a-f]{64})$", lines[0])
        self.assertTrue(m, lines[0])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with tls_connect(s.https, ctx=ctx) as sock:
            der = sock.getpeercert(binary_form=True)
        self.assertEqual(der_fingerprint(der), m.group(1))
        pem_path = os.path.join(base, "self.pem")
        with open(pem_path, "w") as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))
        text = openssl("x509", "-in", pem_path, "-noout", "-text").decode()
        self.assertIn("DNS:localhost", text)
        self.assertIn("IP Address:127.0.0.1", text)
        self.assertIn("prime256v1", text)
        # Trusting exactly that certificate, a verifying client gets through.
        ctx = ssl.create_default_context(cafile=pem_path)
        with tls_connect(s.https, server_hostname="localhost", ctx=ctx) as sock:
            sock.sendall(HEAD_CLOSE)
            self.assertTrue(sock.recv(100).startswith(b"HTTP/1.1 200"))


# ---------------------------------------------------------------------------------------------
# 3. resumption across workers


class ResumptionTests(unittest.TestCase):
    def test_tickets_resume_across_workers(self):
        base, root, _ = make_root(self)
        s = serve(self, root, workers=2)
        for version in ("-tls1_3", "-tls1_2"):
            with self.subTest(version=version):
                sess = os.path.join(base, "sess%s.pem" % version)
                before = {w["worker"]: w["tls_resumed"] for w in s.workers()}
                out = s_client(s.https, version, "-sess_out", sess)
                self.assertEqual(negotiated(out)[0], "New", out)
                self.assertTrue(os.path.getsize(sess) > 0)
                tries = 0
                while True:
                    tries += 1
                    out = s_client(s.https, version, "-sess_in", sess)
                    self.assertEqual(negotiated(out)[0], "Reused",
                                     "reconnection %d not resumed: %s" % (tries, out))
                    self.assertIn("HTTP/1.1 200 OK", out)
                    if tries < 6:
                        continue
                    now = {w["worker"]: w["tls_resumed"] for w in s.workers()}
                    grew = [k for k in now if now[k] > before.get(k, 0)]
                    if len(grew) == 2 or tries >= 30:
                        break
                # Both workers resumed the one session: their ticket keys are the same.
                self.assertEqual(len(grew), 2, "resumed per worker: before %r, after %r"
                                 % (before, now))


# ---------------------------------------------------------------------------------------------
# 4. curl


class CurlTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need("curl")
        cls.base, cls.root, cls.files = make_root(H.class_owner(cls))
        cls.s = serve(H.class_owner(cls), cls.root, "--gzip", "--upload", "--auth",
                      "user:secret", "--max-body-bytes", str(8 * MIB))
        cls.url = "https://127.0.0.1:%d" % cls.s.https

    def out_file(self, name):
        return os.path.join(self.base, name)

    def test_get(self):
        r = curl(self.url + "/hello.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, self.files["hello.txt"])
        r = curl("https://localhost:%d/hello.txt" % self.s.https)
        self.assertEqual(r.stdout, self.files["hello.txt"], r.stderr)

    def test_untrusted_fails(self):
        r = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", PKI.other.crt,
                            self.url + "/hello.txt"], capture_output=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")

    def test_head(self):
        r = curl("-I", self.url + "/text.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        head = r.stdout.decode()
        self.assertRegex(head, r"^HTTP/(1\.1|2) 200")  # curl picks h2 by ALPN
        m = re.search(r"(?im)^content-length: (\d+)", head)
        self.assertEqual(int(m.group(1)), len(self.files["text.txt"]))
        self.assertTrue(head.endswith("\r\n\r\n"), "a body after HEAD: %r" % head[-80:])

    def test_range(self):
        hdr, body = self.out_file("range.h"), self.out_file("range.b")
        r = curl("-r", "100-1099", "-D", hdr, "-o", body, self.url + "/big.bin")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(hdr) as f:
            self.assertRegex(f.readline(), r"^HTTP/(1\.1|2) 206")
        with open(body, "rb") as f:
            self.assertEqual(f.read(), self.files["big.bin"][100:1100])

    def check_gzip(self, name, *extra):
        hdr, body = self.out_file(name + ".h"), self.out_file(name + ".gz")
        r = curl("-H", "Accept-Encoding: gzip", "-D", hdr, "-o", body, *extra,
                 self.url + "/" + name)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(hdr) as f:
            self.assertRegex(f.read(), r"(?im)^content-encoding: gzip\r?$")
        with open(body, "rb") as f:
            raw = f.read()
        self.assertLess(len(raw), len(self.files[name]))
        self.assertEqual(gzip.decompress(raw), self.files[name])

    def test_gzip(self):
        self.check_gzip("text.txt")

    def test_gzip_slow_reader(self):
        # ~1.7 MB of gzip read at 3 MB/s: the server's TLS writes of a chunked stream meet a
        # full socket again and again and must resume with the same bytes.
        self.check_gzip("hex.txt", "--limit-rate", "3M")

    def test_big_file_intact(self):
        for extra in ((), ("--limit-rate", "8M")):
            with self.subTest(extra=extra):
                out = self.out_file("big.out")
                r = curl("-o", out, *extra, self.url + "/big.bin")
                self.assertEqual(r.returncode, 0, r.stderr)
                with open(out, "rb") as f:
                    got = hashlib.sha256(f.read()).hexdigest()
                self.assertEqual(got, hashlib.sha256(self.files["big.bin"]).hexdigest())
                os.unlink(out)

    def test_keep_alive(self):
        args = ["-w", "%{num_connects} %{http_code}\n"]
        for name in ("hello.txt", "n01.txt", "text.txt", "n02.txt"):
            args += ["-o", os.devnull, self.url + "/" + name]
        r = curl(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split("\n"), ["1 200", "0 200", "0 200", "0 200", ""],
                         "one connection for four requests")

    def test_put_upload(self):
        src = self.out_file("upload.src")
        data = random.Random(3).randbytes(3 * MIB + 123)
        with open(src, "wb") as f:
            f.write(data)
        r = curl("-T", src, "-o", os.devnull, "-w", "%{http_code}", self.url + "/put.bin")
        self.assertEqual(r.stdout, b"401", "PUT without credentials")
        r = curl("-T", src, "-u", "user:secret", "-o", os.devnull, "-w", "%{http_code}",
                 self.url + "/put.bin")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(r.stdout, (b"201", b"204", b"200"))
        with open(os.path.join(self.root, "put.bin"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(data).digest())
        st, _, body = https_get(self.s.https, "/put.bin")
        self.assertEqual((st, body == data), (200, True))


# ---------------------------------------------------------------------------------------------
# 5. Python's ssl module


class PythonClientTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base, cls.root, cls.files = make_root(H.class_owner(cls))
        cls.s = serve(H.class_owner(cls), cls.root)

    def test_get(self):
        conn = http.client.HTTPSConnection("127.0.0.1", self.s.https,
                                           context=client_ctx(["http/1.1"]), timeout=10)
        self.addCleanup(conn.close)
        conn.request("GET", "/hello.txt")
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, self.files["hello.txt"]))
        self.assertIn(conn.sock.version(), ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(conn.sock.selected_alpn_protocol(), "http/1.1")
        sock = conn.sock
        conn.request("GET", "/n03.txt")
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, self.files["n03.txt"]))
        self.assertIs(conn.sock, sock, "the second request used the same connection")

    def read_to_close(self, request):
        """Send request on a new TLS connection; returns (bytes, how it ended): "close_notify"
        when the server closed TLS first, "eof" for a bare TCP close (a truncation attacker
        could make the same)."""
        raw = socket.create_connection(("127.0.0.1", self.s.https), timeout=10)
        with client_ctx().wrap_socket(raw, server_hostname="localhost",
                                      suppress_ragged_eofs=False) as sock:
            sock.sendall(request)
            data = b""
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return data, "close_notify"
                    data += chunk
            except ssl.SSLEOFError:
                return data, "eof"

    def test_error_response_ends_with_close_notify(self):
        data, end = self.read_to_close(b"NONSENSE\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 400"), data[:100])
        self.assertEqual(end, "close_notify")

    def test_connection_close_ends_with_close_notify(self):
        # RFC 8446 6.1: each party sends close_notify before closing its write side; without
        # it, a client cannot tell the end of the stream from a cut (a body delimited by the
        # close, or a client that does not check Content-Length).
        for request in (H.get_close("/hello.txt"), b"GET /hello.txt HTTP/1.0\r\n\r\n",
                        H.get_close("/missing")):
            with self.subTest(request=request[:30]):
                data, end = self.read_to_close(request)
                self.assertTrue(data.startswith(b"HTTP/1."), data[:100])
                self.assertEqual(end, "close_notify")

    def test_pipelined_in_order(self):
        # Several 16 KiB TLS records of small requests, sent while the answers come back.
        order = [i % 20 for i in range(1200)]
        random.Random(5).shuffle(order)
        payload = b"".join(H.get("/n%02d.txt" % i) for i in order)
        self.assertGreater(len(payload), 3 * 16384)
        with tls_connect(self.s.https) as sock:
            def enough(data):  # every body seen, the last one whole
                return data.count(b"piece ") >= len(order) and data.endswith(b"\n")
            data = tls_pump(sock, payload, enough)
        resps, rest = H.parse_responses(data, eof=False)
        self.assertEqual(len(resps), len(order))
        self.assertEqual(rest, b"")
        for i, (want, resp) in enumerate(zip(order, resps)):
            self.assertEqual((resp.status, resp.body), (200, b"piece %02d\n" % want),
                             "response %d out of order" % i)

    def test_pipelined_against_a_client_that_reads_late(self):
        # The responses (16 KiB each) pile up unread (small socket buffers on both sides)
        # while the requests keep coming (~700 bytes each, in full 16 KiB TLS records): the
        # server's input buffer fills, and each answered request frees room for a read of
        # only part of a record, the rest waiting decrypted inside OpenSSL.
        s = serve(self, self.root, "--sndbuf", "32768")
        order = [(i * 7) % 20 for i in range(400)]
        reqs = [H.get("/b%02d.bin" % i, ("X-Pad", "p" * 640)) for i in order]
        short = -sum(len(r) for r in reqs) % 16384
        reqs[-1] = H.get("/b%02d.bin" % order[-1], ("X-Pad", "p" * (640 + short)))
        payload = b"".join(reqs)
        self.assertEqual(len(payload) % 16384, 0)
        last = self.files["b%02d.bin" % order[-1]]
        with tls_connect(s.https, rcvbuf=65536) as sock:
            def enough(data):
                return data.count(b"HTTP/1.1 ") >= len(order) and data.endswith(last)
            data = tls_send_then_read(sock, payload, enough)
        resps, rest = H.parse_responses(data, eof=False)
        self.assertEqual((len(resps), rest), (len(order), b""))
        for i, (want, resp) in enumerate(zip(order, resps)):
            self.assertEqual((resp.status, resp.body), (200, self.files["b%02d.bin" % want]),
                             "response %d" % i)


# ---------------------------------------------------------------------------------------------
# 6. sslscan


class SslscanTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need("sslscan")
        cls.base, cls.root, _ = make_root(H.class_owner(cls))
        cls.s = serve(H.class_owner(cls), cls.root, certs=(PKI.ec, PKI.other))

    def scan(self, *args):
        r = subprocess.run(["sslscan", "--no-colour"] + list(args)
                           + ["127.0.0.1:%d" % self.s.https], capture_output=True, timeout=120)
        out = r.stdout.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())
        return out

    def check(self, out, kx):
        protos = dict(re.findall(r"(?m)^(SSLv2|SSLv3|TLSv1\.[0-3])\s+(enabled|disabled)\s*$",
                                 out))
        for p in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"):
            self.assertEqual(protos.get(p), "disabled", "%s: %r\n%s" % (p, protos, out))
        for p in ("TLSv1.2", "TLSv1.3"):
            self.assertEqual(protos.get(p), "enabled", "%s: %r\n%s" % (p, protos, out))
        ciphers = re.findall(r"(?m)^(Preferred|Accepted)\s+(\S+)\s+(\d+) bits\s+(\S+)", out)
        self.assertTrue(ciphers, out)
        seen13 = seen12 = False
        for _, proto, bits, name in ciphers:
            self.assertIn(proto, ("TLSv1.2", "TLSv1.3"), name)
            self.assertGreaterEqual(int(bits), 128, name)
            self.assertTrue("GCM" in name or "CHACHA20" in name, "not AEAD: %s %s" % (proto, name))
            if proto == "TLSv1.3":
                seen13 = True
                self.assertTrue(name.startswith("TLS_"), name)
            else:
                seen12 = True
                self.assertTrue(name.startswith("ECDHE-" + kx + "-"), "not ECDHE-%s: %s"
                                % (kx, name))
        self.assertTrue(seen12 and seen13, out)
        m = re.search(r"TLS renegotiation:\s*\n(.*)", out)
        self.assertTrue(m, out)
        self.assertNotIn("Insecure", m.group(1))
        self.assertRegex(m.group(1), r"not supported", "renegotiation is off")
        m = re.search(r"TLS Compression:\s*\n(.*)", out)
        self.assertTrue(m, out)
        self.assertNotRegex(m.group(1), r"(?i)compression enabled")
        self.assertNotRegex(out, r"(?i)(?<!not )vulnerable to heartbleed")
        groups = re.search(r"Server Key Exchange Group\(s\):\s*\n((?:TLS.*\n)+)", out)
        if groups:
            self.assertNotIn("ffdhe", groups.group(1))

    def test_ecdsa_default(self):
        self.check(self.scan(), "ECDSA")

    def test_rsa_by_sni(self):
        out = self.scan("--sni-name=other.test")
        self.assertIn("other.test", out)
        self.check(out, "RSA")


# ---------------------------------------------------------------------------------------------
# 7. --redirect-https and --hsts


def plain_exchange(port, data, timeout=10):
    """Cleartext bytes on a plain socket (the redirect's Location is absolute by design, so
    not the wire check's same-origin rule); returns (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return status, headers, body


class RedirectTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base, cls.root, cls.files = make_root(H.class_owner(cls))
        cls.s = serve(H.class_owner(cls), cls.root, "--redirect-https", "--hsts", "600",
                      clear=True)

    def ask(self, host, target="/a/b?q=1", method="GET", version="HTTP/1.1"):
        lines = ["%s %s %s" % (method, target, version)]
        if host is not None:
            lines.append("Host: " + host)
        lines.append("Connection: close")
        return plain_exchange(self.s.http, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def location(self, headers):
        locs = headers.get("location", [])
        self.assertEqual(len(locs), 1, headers)
        u = urllib.parse.urlsplit(locs[0])
        self.assertEqual(u.scheme, "https", locs[0])
        self.assertEqual(u.port, self.s.https, locs[0])
        self.assertIsNone(u.username, locs[0])
        self.assertEqual(u.fragment, "", locs[0])
        check_location(u.path + ("?" + u.query if u.query else ""))
        return u

    def test_redirect_keeps_host_path_query(self):
        cases = [("localhost:%d" % self.s.http, "localhost"),
                 ("localhost", "localhost"),
                 ("127.0.0.1:%d" % self.s.http, "127.0.0.1"),
                 ("[::1]:%d" % self.s.http, "::1")]
        for host, want in cases:
            with self.subTest(host=host):
                st, hd, _ = self.ask(host)
                self.assertEqual(st, 308)
                u = self.location(hd)
                self.assertEqual((u.hostname, u.path, u.query), (want, "/a/b", "q=1"))
                self.assertNotIn("strict-transport-security", hd, "HSTS over cleartext")

    def test_redirect_methods_and_paths(self):
        st, hd, body = self.ask("localhost", method="HEAD")
        self.assertEqual((st, body), (308, b""))
        self.assertEqual(self.location(hd).path, "/a/b")
        st, hd, _ = self.ask("localhost", method="POST")
        self.assertEqual(st, 308)
        u = self.location(hd)
        self.assertEqual(u.path, "/a/b")
        st, hd, _ = self.ask("localhost", target="/x/../caf%C3%A9%20y?z=%41&w")
        self.assertEqual(st, 308)
        u = self.location(hd)
        self.assertEqual((u.hostname, u.path, u.query), ("localhost", "/caf%C3%A9%20y", "z=%41&w"))
        for target in ("//evil.example/x", "/\\evil.example/x", "/../../etc/passwd"):
            with self.subTest(target=target):
                st, hd, _ = self.ask("localhost", target=target)
                self.assertIn(st, (308, 400))
                if st == 308:
                    self.assertEqual(self.location(hd).hostname, "localhost")

    def test_http10_without_host_goes_to_own_address(self):
        st, hd, _ = self.ask(None, version="HTTP/1.0")
        self.assertEqual(st, 308)
        self.assertEqual(self.location(hd).hostname, "127.0.0.1")

    def test_hostile_host_values(self):
        hostile = ["evil.com@x", "a/b", 'x"y', "h" * 5000, "user:pass@evil.com",
                   "user@evil.com", "evil.com:80@x", "[::1]@evil.com", "[::1]:1@evil.com",
                   "evil.com\\@x", "evil.com%40x", "evil.com#x", "evil.com?x", "evil.com/x",
                   "[evil.com]", "evil.com:x@y", "\u00e9vil.com", "evil.com,x", "ev il.com",
                   "evil.com;x", "%65vil.com", "[::1", "javascript:alert(1)", "evil.com:[::1]"]
        for host in hostile:
            with self.subTest(host=host[:40]):
                st, hd, _ = self.ask(host)
                self.assertIn(st, (308, 400))
                if st == 308:
                    loc = hd["location"][0]
                    u = self.location(hd)
                    # Not a plain name: the server's own address, never a part of the value.
                    self.assertEqual(u.hostname, "127.0.0.1", loc)
                    self.assertNotIn("evil", loc)

    def test_https_not_redirected_and_hsts(self):
        for path, want in (("/hello.txt", 200), ("/a/b?q=1", 404)):
            with self.subTest(path=path):
                st, hd, body = https_get(self.s.https, path)
                self.assertEqual(st, want)
                self.assertNotIn("location", hd)
                self.assertEqual(hd.get("strict-transport-security"), "max-age=600")
        st, hd, body = https_get(self.s.https, "/hello.txt")
        self.assertEqual(body, self.files["hello.txt"])

    def test_status_page_not_redirected(self):
        st, hd, body = plain_exchange(self.s.http, H.get_close("/s"))
        self.assertEqual(st, 200)
        self.assertIn("tls_handshakes", json.loads(body))


# ---------------------------------------------------------------------------------------------
# 8. hostile handshakes


class HostileHandshakeTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base, cls.root, cls.files = make_root(H.class_owner(cls))
        cls.s = serve(H.class_owner(cls), cls.root, "--header-timeout", "1", clear=True)
        cls.hello = client_hello()

    def assert_serving(self):
        self.assertIsNone(self.s.srv.proc.poll(), "the server exited")
        st, _, body = https_get(self.s.https, "/hello.txt")
        self.assertEqual((st, body), (200, self.files["hello.txt"]))

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.s.https), timeout=10)
        self.addCleanup(s.close)
        return s

    def test_garbage_instead_of_client_hello(self):
        failed = self.s.status()["tls_failed"]
        junk = [os.urandom(700), H.get("/hello.txt"),
                b"\x16\x03\x01\x40\x00" + b"\x01" * 200,  # a record header promising 16 KiB
                b"\x16\x03\x03\x00\x04\x01\xff\xff\xff",  # a handshake message too long
                self.hello[:5] + bytes(len(self.hello) - 5)]
        for data in junk:
            with self.subTest(data=data[:8]):
                s = self.connect()
                t0 = time.monotonic()
                try:
                    s.sendall(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.assertTrue(closed_by_server(s, 8 * slack()),
                                "not closed after %r..." % data[:8])
                self.assertLess(time.monotonic() - t0, 8 * slack())
                self.assert_serving()
        self.assertGreaterEqual(self.s.status()["tls_failed"], failed + len(junk))

    def test_dribbled_client_hello_cut_at_header_timeout(self):
        s = self.connect()
        t0 = time.monotonic()
        sent = 0
        closed = False
        while sent < len(self.hello) and time.monotonic() - t0 < 10 * slack():
            try:
                s.send(self.hello[sent:sent + 1])
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            r, _, _ = select.select([s], [], [], 0.2)
            if r and closed_by_server(s, 0.01):
                closed = True
                break
        self.assertTrue(closed, "still open after %.1fs and %d bytes"
                        % (time.monotonic() - t0, sent))
        self.assertLess(sent, len(self.hello), "the whole ClientHello got through")
        self.assert_serving()

    def test_half_client_hello_closed_after_header_timeout(self):
        s = self.connect()
        s.sendall(self.hello[:len(self.hello) // 2])
        self.assertTrue(closed_by_server(s, 8 * slack()), "a half ClientHello kept open")
        self.assert_serving()

    def test_stalled_after_client_hello_closed(self):
        # The server answers (ServerHello ... Finished) and waits for the client's Finished.
        s = self.connect()
        s.sendall(self.hello)
        self.assertTrue(closed_by_server(s, 8 * slack()), "a handshake left unfinished kept open")
        self.assert_serving()

    def test_idle_after_handshake_closed(self):
        with tls_connect(self.s.https) as sock:
            self.assertTrue(closed_by_server(sock, 8 * slack()),
                            "a TLS connection with no request kept open")
        self.assert_serving()


def open_idle_tcp(port, n, timeout=30):
    """n connected TCP sockets that never send a byte."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.settimeout(timeout)
            s.connect(("127.0.0.1", port))
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


class IdleFloodTests(unittest.TestCase):
    N = 1000

    def setUp(self):
        if not harness.raise_nofile(self.N + 200):
            self.skipTest("RLIMIT_NOFILE too low for %d connections" % self.N)
        self.base, self.root, self.files = make_root(self)
        # One worker (the cap is per worker); the head deadline longer than the test.
        self.s = serve(self, self.root, "--header-timeout", "60", clear=True,
                       listen=["http://127.0.0.1:0", "https://127.0.0.1:0"], env=asan_env())
        self.assertEqual(https_get(self.s.https, "/hello.txt")[0], 200)
        self.rss0 = vm_rss(self.s.pid)
        self.socks = open_idle_tcp(self.s.https, self.N)
        self.addCleanup(lambda: [s.close() for s in self.socks])
        # Until the server has taken every one of them from the backlog.
        base = self.s.status()["connections_total"]
        ok = wait_for(lambda: self.s.status()["connections_total"] - base >= self.N - 1,
                      20 * slack(), 0.1)
        self.assertTrue(ok, self.s.status())

    def test_idle_tcp_flood_memory_and_recovery(self):
        rss = vm_rss(self.s.pid)
        growth = rss - self.rss0
        print("\n%d idle TCP connections on an https listener: VmRSS %+.1f KiB (%.0f B each)"
              % (self.N, growth / 1024, growth / self.N))
        if not asan_build():  # ASan's allocator says more about itself than about the server
            self.assertLess(growth, self.N * 48 * 1024, "VmRSS %d -> %d" % (self.rss0, rss))
        self.assertIsNone(self.s.srv.proc.poll())
        # Once they go, TLS is served again at once.
        for s in self.socks:
            s.close()

        def served():
            try:
                return https_get(self.s.https, "/hello.txt", timeout=5)[0] == 200
            except (OSError, http.client.HTTPException):
                return False
        self.assertTrue(wait_for(served, 10 * slack(), 0.2))

    def test_idle_tcp_flood_does_not_lock_out_https(self):
        # Connections that sent nothing cost no handshake work, yet each counts against the
        # cap of 512 handshakes in flight, and what comes past the cap is closed unanswered.
        st, _, body = https_get(self.s.https, "/hello.txt", timeout=5)
        self.assertEqual((st, body), (200, self.files["hello.txt"]))


def client_hello():
    """The first flight of a TLS client (its ClientHello), made in memory, nothing sent."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class StalledHandshakeFloodTests(unittest.TestCase):
    # More stalled handshakes than the cap of 512 in flight: clients that send the start of a
    # record, or a whole ClientHello, and then nothing. A handshake waiting for its client
    # holds no slot, so https is served at once, not after their header timeout.
    N = 600

    def test_stalled_handshakes_do_not_lock_out_https(self):
        if not harness.raise_nofile(self.N + 200):
            self.skipTest("RLIMIT_NOFILE too low for %d connections" % self.N)
        base, root, files = make_root(self)
        s = serve(self, root, "--header-timeout", "60", clear=True,
                  listen=["http://127.0.0.1:0", "https://127.0.0.1:0"])
        hello = client_hello()
        socks = open_idle_tcp(s.https, self.N)
        self.addCleanup(lambda: [k.close() for k in socks])
        for i, k in enumerate(socks):
            k.sendall(hello if i % 2 else hello[:3])
        # The whole hellos are answered: those handshakes began and wait for their clients.
        for k in socks[1::2][:20]:
            k.settimeout(10 * slack())
            self.assertTrue(k.recv(5).startswith(b"\x16\x03"), "no ServerHello")
        st, _, body = https_get(s.https, "/hello.txt", timeout=10 * slack())
        self.assertEqual((st, body), (200, files["hello.txt"]))


class IdleTlsMemoryTests(unittest.TestCase):
    N = 200

    def test_memory_per_idle_tls_connection(self):
        if not harness.raise_nofile(self.N + 200):
            self.skipTest("RLIMIT_NOFILE too low")
        base, root, files = make_root(self)
        s = serve(self, root, "--header-timeout", "60", "--idle-timeout", "60", clear=True,
                  listen=["http://127.0.0.1:0", "https://127.0.0.1:0"], env=asan_env())
        for _ in range(5):  # warm up: the first handshakes allocate OpenSSL's tables
            self.assertEqual(https_get(s.https, "/hello.txt")[0], 200)
        done0 = s.status()["tls_handshakes"]
        rss0 = vm_rss(s.pid)
        conns = []
        self.addCleanup(lambda: [c.close() for c in conns])
        for _ in range(self.N):
            conns.append(tls_connect(s.https))
        ok = wait_for(lambda: s.status()["tls_handshakes"] - done0 >= self.N, 20 * slack(), 0.1)
        self.assertTrue(ok, s.status())
        time.sleep(0.3)
        rss = vm_rss(s.pid)
        per = (rss - rss0) / self.N
        print("\n%d idle TLS connections (handshake done, no request): VmRSS %+.1f KiB, "
              "%.1f KiB per connection" % (self.N, (rss - rss0) / 1024, per / 1024))
        if not asan_build():  # ASan's redzones and quarantine would be measured too
            self.assertLess(per, 64 * 1024)
        self.assertGreaterEqual(s.status()["connections_open"], self.N)
        # They are all still usable.
        for c in conns[:: self.N // 10]:
            c.sendall(H.get_close("/hello.txt"))
            data = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])


# ---------------------------------------------------------------------------------------------
# 9. certificate reload (SIGHUP)


class ReloadTests(unittest.TestCase):
    def start(self, workers=2):
        base, root, files = make_root(self)
        self.crt = os.path.join(base, "site.crt")
        self.key = os.path.join(base, "site.key")
        replace_cert(self.crt, self.key, PKI.ec)
        site = Cert(self.crt, self.key)
        self.files = files
        s = serve(self, root, workers=workers, certs=(site,))
        return s, StderrWatch(s.srv)

    def all_fresh(self, s, fp, n=8):
        """n new handshakes in a row get fp (several workers: each asked by chance)."""
        return all(fresh_fp(s.https) == fp for _ in range(n))

    def test_reload_new_cert_keeps_open_connection(self):
        s, err = self.start()
        self.assertTrue(self.all_fresh(s, PKI.ec.fp))
        conn = http.client.HTTPSConnection("127.0.0.1", s.https, context=client_ctx(),
                                           timeout=10)
        self.addCleanup(conn.close)
        conn.request("GET", "/hello.txt")
        self.assertEqual(conn.getresponse().read(), self.files["hello.txt"])
        sock = conn.sock

        replace_cert(self.crt, self.key, PKI.ec2)
        os.kill(s.pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.all_fresh(s, PKI.ec2.fp), 10 * slack(), 0.1),
                        "new handshakes never got the new certificate")
        # The connection made before the reload goes on, on its old certificate.
        conn.request("GET", "/n04.txt")
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, self.files["n04.txt"]))
        self.assertIs(conn.sock, sock)
        self.assertEqual(peer_fp(sock), PKI.ec.fp)

        # A broken certificate: the server says so and keeps the one it has.
        with open(self.crt, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        os.kill(s.pid, signal.SIGHUP)
        self.assertTrue(err.wait("keeping the old TLS certificate", 1), err.text)
        self.assertRegex(err.text, r"netkit: http serve: keeping the old TLS certificate: .+")
        self.assertEqual(err.text.count("keeping the old"), 1, "said once, not once per worker")
        self.assertTrue(self.all_fresh(s, PKI.ec2.fp))
        # A certificate that does not match the key in place (a half-done renewal): the same.
        shutil.copyfile(PKI.ec.crt, self.crt)
        os.kill(s.pid, signal.SIGHUP)
        self.assertTrue(err.wait("keeping the old TLS certificate", 2), err.text)
        self.assertTrue(self.all_fresh(s, PKI.ec2.fp))
        self.assertEqual(https_get(s.https, "/hello.txt")[0], 200)

    def test_restarted_worker_keeps_reloaded_cert(self):
        s, err = self.start()
        replace_cert(self.crt, self.key, PKI.ec2)
        os.kill(s.pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.all_fresh(s, PKI.ec2.fp), 10 * slack(), 0.1))
        with open(self.crt, "w") as f:
            f.write("garbage\n")
        os.kill(s.pid, signal.SIGHUP)
        self.assertTrue(err.wait("keeping the old TLS certificate", 1), err.text)
        workers = [p for p in H.proc_tree(s.pid) if p != s.pid]
        self.assertEqual(len(workers), 2, workers)
        os.kill(workers[0], signal.SIGKILL)
        self.assertTrue(err.wait("restarting", 1), err.text)

        def new_worker():
            now = [p for p in H.proc_tree(s.pid) if p not in (s.pid, workers[1])]
            return now and now[0] != workers[0] and now[0] in [w["pid"] for w in s.workers()]
        self.assertTrue(wait_for(new_worker, 15 * slack(), 0.1), "no new worker")
        # The certificate in force is the one of the last good reload, in every worker.
        fps = [fresh_fp(s.https) for _ in range(24)]
        self.assertEqual(set(fps), {PKI.ec2.fp},
                         "%d of %d handshakes got the certificate replaced before"
                         % (fps.count(PKI.ec.fp), len(fps)))

    def test_reload_during_wrk(self):
        need("wrk")
        s, err = self.start()
        url = "https://127.0.0.1:%d/hello.txt" % s.https
        # Keep-alive connections, then a new handshake per request (Connection: close), while
        # the certificates change under SIGHUP every 0.3 s.
        for extra in ((), ("-H", "Connection: close")):
            with self.subTest(extra=extra):
                stop = threading.Event()
                reloads = []

                def reloader():
                    certs = (PKI.ec2, PKI.ec)
                    while not stop.wait(0.3) and len(reloads) < 12:
                        replace_cert(self.crt, self.key, certs[len(reloads) % 2])
                        os.kill(s.pid, signal.SIGHUP)
                        reloads.append(1)
                t = threading.Thread(target=reloader)
                t.start()
                try:
                    r = subprocess.run(["wrk", "-t1", "-c8", "-d3s", "--timeout", "5s"]
                                       + list(extra) + [url], capture_output=True, timeout=60)
                finally:
                    stop.set()
                    t.join()
                out = r.stdout.decode()
                self.assertEqual(r.returncode, 0, out + r.stderr.decode())
                self.assertGreaterEqual(len(reloads), 5)
                m = re.search(r"(\d+) requests in", out)
                self.assertTrue(m and int(m.group(1)) > 0, out)
                self.assertNotIn("Socket errors", out)
                self.assertNotIn("Non-2xx", out)
        self.assertIsNone(s.srv.proc.poll())


# ---------------------------------------------------------------------------------------------
# 10. an https listener on a Unix socket


class UnixSocketTests(unittest.TestCase):
    def test_https_over_unix_socket(self):
        base, root, files = make_root(self)
        path = os.path.join(base, "tls.sock")
        s = serve(self, root, status=False, listen=["https://unix:" + path])
        self.assertEqual(s.unix, path)
        # Python: TLS over the Unix socket, the name checked is localhost.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(10)
            raw.connect(path)
            with client_ctx().wrap_socket(raw, server_hostname="localhost") as sock:
                self.assertEqual(peer_fp(sock), PKI.ec.fp)
                sock.sendall(H.get_close("/hello.txt"))
                data = b""
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        resps, _ = H.parse_responses(data)
        self.assertEqual((resps[0].status, resps[0].body), (200, files["hello.txt"]))
        # Cleartext HTTP on it gets no HTTP answer.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(10)
            raw.connect(path)
            raw.sendall(H.get_close("/hello.txt"))
            got = b""
            try:
                while True:
                    chunk = raw.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except (ConnectionResetError, socket.timeout):
                pass
            self.assertFalse(got.startswith(b"HTTP/"), got[:100])
        if shutil.which("curl"):
            r = curl("--unix-socket", path, "https://localhost/hello.txt")
            self.assertEqual(r.stdout, files["hello.txt"], r.stderr)


if __name__ == "__main__":
    unittest.main()
