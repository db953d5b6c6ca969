"""TLS in the socket tools: tcp and unix listen|connect, file send|recv, chat serve|join.

The real binary talks to itself, to a python ssl peer (exact half-close: close_notify, then the
reply), to `openssl s_server`/`s_client` and to `ncat --ssl`, on loopback. Certificates are made
by `openssl` in a scratch directory: a CA, a leaf for localhost and 127.0.0.1 signed by it, and
a leaf naming only localhost. Every exchange is ordered by what was seen (no sleeps), every wait
is bounded, and every process is killed at the end of its test."""
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

WAIT = 20  # seconds: a generous liveness bound, never a timing assertion


class Proc:
    """A process with stdin piped and stdout/stderr collected by threads."""

    def __init__(self, test, argv, stdin=subprocess.PIPE):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        test.addCleanup(harness._reap, self.proc)
        self.out = bytearray()
        self.err = bytearray()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._drain, args=(f, buf), daemon=True)
                        for f, buf in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self.threads:
            t.start()

    def _drain(self, f, buf):
        while True:
            chunk = os.read(f.fileno(), 65536)
            if not chunk:
                return
            with self.lock:
                buf += chunk

    def wait_for(self, what, pred, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if pred(bytes(self.out), bytes(self.err)):
                    return
            if self.proc.poll() is not None:
                for t in self.threads:
                    t.join(5)
                with self.lock:
                    if pred(bytes(self.out), bytes(self.err)):
                        return
                break
            time.sleep(0.02)
        raise AssertionError("%s: no %s (exit %s); stdout %r, stderr %r"
                             % (" ".join(self.argv[:3]), what, self.proc.poll(),
                                bytes(self.out[-200:]), bytes(self.err[-500:])))

    def wait_out(self, data, timeout=WAIT):
        self.wait_for("%r on stdout" % data[:40], lambda o, e: data in o, timeout)

    def wait_err(self, pattern, timeout=WAIT):
        """The first match of a regular expression on stderr."""
        found = []

        def pred(o, e):
            m = re.search(pattern, e.decode("utf-8", "replace"))
            if m:
                found.append(m)
            return bool(m)
        self.wait_for("%r on stderr" % pattern, pred, timeout)
        return found[0]

    def send(self, data, close=False):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        if close:
            self.proc.stdin.close()

    def finish(self, timeout=WAIT):
        """Wait for the exit (stdin closed first); returns the status with the output drained."""
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        rc = self.proc.wait(timeout)
        for t in self.threads:
            t.join(5)
        return rc

    @property
    def stderr(self):
        with self.lock:
            return bytes(self.err).decode("utf-8", "replace")


def netkit(test, *args, stdin=subprocess.PIPE):
    return Proc(test, [harness.NETKIT] + list(args), stdin=stdin)


def start_listener(test, *args, stdin=subprocess.PIPE):
    """A netkit listener: (proc, port, fingerprint or None) once "listening on" is out."""
    p = netkit(test, *args, stdin=stdin)
    m = p.wait_err(r"listening on (?:\S+:(\d+)|unix:\S+)\n")
    fp = re.search(r"TLS certificate: self-signed, sha256 ([0-9a-f]{64})\n", p.stderr)
    return p, int(m.group(1) or 0), fp.group(1) if fp else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port_listening(port, timeout=WAIT):
    """Until a TCP socket listens on 127.0.0.1:port (read from /proc: nothing connects, so a
    one-shot peer does not take the check for its client)."""
    needle = ":%04X" % port
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1].endswith(needle) and fields[3] == "0A":
                    return
        time.sleep(0.02)
    raise AssertionError("nothing listens on port %d" % port)


def sha(data):
    return hashlib.sha256(data).hexdigest()


class TlsTools(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="nk-tls-tools-")
        cls.openssl = shutil.which("openssl")
        if not cls.openssl:
            return

        def run(*args):
            subprocess.run([cls.openssl] + list(args), cwd=cls.dir, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=netkit test CA")
        for name, san in (("leaf", "DNS:localhost,IP:127.0.0.1"), ("dnsonly", "DNS:localhost")):
            with open(os.path.join(cls.dir, name + ".ext"), "w") as f:
                f.write("subjectAltName=%s\n" % san)
            run("req", *ec, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=localhost")
            run("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def need_openssl(self):
        if not self.openssl:
            self.skipTest("openssl is not installed (scripts/install-deps): no certificates")

    # ---- netkit to netkit ------------------------------------------------------------------

    def test_pinned_bytes_both_ways_and_half_close(self):
        srv, port, fp = start_listener(self, "tcp", "listen", "127.0.0.1:0", "--tls",
                                       "--tls-self-signed", "-v")
        self.assertIsNotNone(fp, srv.stderr)
        cli = netkit(self, "tcp", "connect", "127.0.0.1:%d" % port, "--tls", "--pin-sha256", fp,
                     "-v")
        cli.send(b"ping\n")
        srv.wait_out(b"ping\n")
        srv.send(b"first\n")
        cli.wait_out(b"first\n")
        # The client's input ends: it sends close_notify and FIN, and keeps reading; the
        # server's reply after that must still arrive.
        cli.proc.stdin.close()
        srv.send(b"reply after your end\n", close=True)
        self.assertEqual(cli.finish(), 0, cli.stderr)
        self.assertEqual(srv.finish(), 0, srv.stderr)
        self.assertEqual(bytes(cli.out), b"first\nreply after your end\n")
        self.assertEqual(bytes(srv.out), b"ping\n")
        self.assertRegex(cli.stderr, r"TLS: TLSv1\.[23], \S+")
        self.assertIn("TLS peer: O = netkit self-signed, CN = localhost, sha256 " + fp, cli.stderr)
        self.assertIn("closed: peer 127.0.0.1:%d, 27 bytes in, 5 bytes out" % port, cli.stderr)
        self.assertNotIn("close_notify", cli.stderr + srv.stderr)

    def test_five_mib_each_way(self):
        a, b = os.urandom(5 << 20), os.urandom(5 << 20)
        with open(self.path("a.bin"), "wb") as f:
            f.write(a)
        with open(self.path("b.bin"), "wb") as f:
            f.write(b)
        with open(self.path("b.bin"), "rb") as sin:
            srv, port, fp = start_listener(self, "tcp", "listen", "127.0.0.1:0", "--tls",
                                           "--tls-self-signed", stdin=sin)
        with open(self.path("a.bin"), "rb") as cin:
            cli = netkit(self, "tcp", "connect", "127.0.0.1:%d" % port, "--tls",
                         "--pin-sha256", fp, stdin=cin)
            self.assertEqual(cli.finish(60), 0, cli.stderr)
        self.assertEqual(srv.finish(60), 0, srv.stderr)
        self.assertEqual(sha(bytes(srv.out)), sha(a))
        self.assertEqual(sha(bytes(cli.out)), sha(b))

    def test_hex_dump_shows_plaintext(self):
        srv, port, fp = start_listener(self, "tcp", "listen", "127.0.0.1:0", "--tls",
                                       "--tls-self-signed")
        cli = netkit(self, "tcp", "connect", "127.0.0.1:%d" % port, "--tls", "--pin-sha256", fp,
                     "-x")
        cli.send(b"hello\n", close=True)
        srv.wait_out(b"hello\n")
        srv.send(b"", close=True)
        self.assertEqual(cli.finish(), 0, cli.stderr)
        self.assertIn("68 65 6c 6c 6f 0a", cli.stderr)
        self.assertIn("|hello.|", cli.stderr)

    def test_unix_sockets(self):
        sock = self.path("tls-%d.sock" % os.getpid())
        srv, _, fp = start_listener(self, "unix", "listen", sock, "--tls", "--tls-self-signed")
        # No host name on a unix socket: the client has to say what to check.
        r = harness.run(["unix", "connect", sock, "--tls"], timeout=WAIT)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"--servername, --pin-sha256 or -k", r.stderr)
        cli = netkit(self, "unix", "connect", sock, "--tls", "--pin-sha256", fp)
        cli.send(b"over unix\n", close=True)
        srv.wait_out(b"over unix\n")
        srv.send(b"and back\n", close=True)
        self.assertEqual(cli.finish(), 0, cli.stderr)
        self.assertEqual(srv.finish(), 0, srv.stderr)
        self.assertEqual(bytes(cli.out), b"and back\n")

    # ---- verification --------------------------------------------------------------------

    def refused(self, port, *client_args, reason):
        r = harness.run(["tcp", "connect"] + list(client_args), input=b"secret\n", timeout=WAIT)
        self.assertEqual(r.returncode, 1, r.stderr)
        line = r.stderr.decode().strip()
        self.assertRegex(line, r"^netkit: tcp connect: TLS: certificate verify failed: " + reason)
        self.assertEqual(len(line.splitlines()), 1, line)
        self.assertEqual(r.stdout, b"")

    def test_verification_failures(self):
        srv, port, fp = start_listener(self, "tcp", "listen", "127.0.0.1:0", "--tls",
                                       "--tls-self-signed", "-k")
        addr = "127.0.0.1:%d" % port
        self.refused(port, addr, "--tls", reason="self-signed certificate")
        wrong = ("0" if fp[0] != "0" else "1") + fp[1:]
        self.refused(port, addr, "--tls", "--pin-sha256", wrong, reason="certificate rejected")
        # the listener said why for each, and goes on serving
        srv.wait_err(r"TLS: .*unknown ca \(client 127\.0\.0\.1:\d+\)")
        srv.wait_err(r"TLS: .*bad certificate \(client 127\.0\.0\.1:\d+\)")
        self.assertEqual(srv.out, b"", "nothing may arrive from a refused handshake")
        cli = netkit(self, "tcp", "connect", addr, "--tls", "--pin-sha256", fp.upper())
        cli.send(b"pinned\n", close=True)
        srv.wait_out(b"pinned\n")

    def test_names_and_addresses_checked(self):
        self.need_openssl()
        srv, port, _ = start_listener(self, "tcp", "listen", "127.0.0.1:0", "--tls", "-k",
                                      "--tls-cert", self.path("dnsonly.crt"),
                                      "--tls-key", self.path("dnsonly.key"))
        ca = self.path("ca.crt")
        # An IP literal is checked as an IP address, which this certificate does not hold.
        self.refused(port, "127.0.0.1:%d" % port, "--tls", "--cacert", ca,
                     reason="IP address mismatch")
        self.refused(port, "127.0.0.1:%d" % port, "--tls", "--cacert", ca,
                     "--servername", "other.example", reason="hostname mismatch")
        # The system store does not know the test CA.
        self.refused(port, "localhost:%d" % port, "--tls",
                     reason="unable to get local issuer certificate")
        for args in (["localhost:%d" % port], ["127.0.0.1:%d" % port, "--servername",
                                               "localhost"]):
            cli = netkit(self, "tcp", "connect", *args, "--tls", "--cacert", ca)
            cli.send(b"checked %s\n" % args[0].encode(), close=True)
            srv.wait_out(b"checked %s\n" % args[0].encode())

    def test_handshake_timeout(self):
        # A peer that accepts and never answers the ClientHello.
        lsock = socket.socket()
        self.addCleanup(lsock.close)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        r = harness.run(["tcp", "connect", "127.0.0.1:%d" % lsock.getsockname()[1], "--tls",
                         "-k", "-w", "0.5"], timeout=WAIT)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr.decode().strip(),
                         "netkit: tcp connect: TLS: handshake timed out after 500 ms")

    def test_usage_errors(self):
        for args, msg in (
                (["tcp", "listen", "127.0.0.1:0", "--tls"], "--tls needs --tls-cert"),
                (["tcp", "listen", "127.0.0.1:0", "--tls-self-signed"], "needs --tls"),
                (["tcp", "listen", "127.0.0.1:0", "--tls", "--tls-self-signed", "--cacert", "x"],
                 "--cacert is for the connecting side"),
                (["tcp", "connect", "127.0.0.1:1", "--tls", "--tls-cert", "x"],
                 "--tls-cert is for the listening side"),
                (["tcp", "connect", "127.0.0.1:1", "-k"], "--insecure needs --tls"),
                (["tcp", "connect", "127.0.0.1:1", "--keep-open"], "--keep-open is for listen"),
                (["tcp", "connect", "127.0.0.1:1", "--tls", "--pin-sha256", "abc"],
                 "64 hex digits"),
                (["tcp", "connect", "127.0.0.1:1", "--tls", "-k", "--pin-sha256", "ab" * 32],
                 "not with --pin-sha256"),
                (["file", "send", "127.0.0.1:1", "x", "--pin-sha256", "ab" * 32],
                 "--pin-sha256 needs --tls"),
                (["file", "recv", "127.0.0.1:0", "--tls"], "--tls-self-signed"),
                (["chat", "serve", "127.0.0.1:0", "--tls", "--tls-cert", "x"], "--tls-key")):
            r = harness.run(args, timeout=WAIT)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(msg, r.stderr.decode(), args)

    # ---- a python ssl peer: the exact half-close ------------------------------------------

    def test_half_close_against_python_ssl(self):
        self.need_openssl()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.path("leaf.crt"), self.path("leaf.key"))
        lsock = socket.socket()
        self.addCleanup(lsock.close)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(WAIT)
        seen = {}

        def serve():
            conn, _ = lsock.accept()
            # suppress_ragged_eofs=False: a FIN without close_notify raises instead of
            # passing for the end.
            with ctx.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False) as s:
                s.settimeout(WAIT)
                got = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                seen["got"] = got
                s.sendall(b"reply after close_notify\n")
                s.unwrap()  # our close_notify
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        cli = netkit(self, "tcp", "connect", "localhost:%d" % lsock.getsockname()[1], "--tls",
                     "--cacert", self.path("ca.crt"))
        cli.send(b"all I have\n", close=True)
        self.assertEqual(cli.finish(), 0, cli.stderr)
        t.join(WAIT)
        self.assertEqual(seen.get("got"), b"all I have\n")
        self.assertEqual(bytes(cli.out), b"reply after close_notify\n")
        self.assertNotIn("warning", cli.stderr)

    def test_end_without_close_notify_is_warned(self):
        self.need_openssl()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.path("leaf.crt"), self.path("leaf.key"))
        lsock = socket.socket()
        self.addCleanup(lsock.close)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(WAIT)

        def serve():
            conn, _ = lsock.accept()
            s = ctx.wrap_socket(conn, server_side=True)
            s.sendall(b"cut here\n")
            s.settimeout(WAIT)
            s.recv(100)  # until the client's close_notify
            # a bare FIN, as when the connection is cut on the path
            conn2 = socket.socket(fileno=s.detach())
            conn2.shutdown(socket.SHUT_WR)
            conn2.close()
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        cli = netkit(self, "tcp", "connect", "127.0.0.1:%d" % lsock.getsockname()[1], "--tls",
                     "--cacert", self.path("ca.crt"))
        cli.wait_out(b"cut here\n")
        self.assertEqual(cli.finish(), 0, cli.stderr)
        t.join(WAIT)
        self.assertIn("netkit: tcp connect: warning: the peer ended without TLS close_notify",
                      cli.stderr)

    # ---- other implementations -------------------------------------------------------------

    def payload(self):
        return bytes(range(256)) * 1024  # 256 KiB, every byte value

    def test_openssl_s_server_to_connect(self):
        self.need_openssl()
        port = free_port()
        ss = Proc(self, [self.openssl, "s_server", "-quiet", "-naccept", "1",
                         "-accept", "127.0.0.1:%d" % port, "-cert", self.path("leaf.crt"),
                         "-key", self.path("leaf.key")])
        wait_port_listening(port)
        cli = netkit(self, "tcp", "connect", "localhost:%d" % port, "--tls", "--cacert",
                     self.path("ca.crt"))
        ss.send(b"from openssl\n")
        cli.wait_out(b"from openssl\n")
        data = self.payload()
        cli.send(data, close=True)  # then close_notify: s_server ends the connection
        self.assertEqual(cli.finish(), 0, cli.stderr)
        ss.finish()
        self.assertEqual(sha(bytes(ss.out)), sha(data))

    def test_openssl_s_client_to_listen(self):
        self.need_openssl()
        srv, port, _ = start_listener(self, "tcp", "listen", "127.0.0.1:0", "--tls",
                                      "--tls-cert", self.path("leaf.crt"),
                                      "--tls-key", self.path("leaf.key"))
        sc = Proc(self, [self.openssl, "s_client", "-quiet", "-verify_return_error",
                         "-CAfile", self.path("ca.crt"), "-servername", "localhost",
                         "-connect", "127.0.0.1:%d" % port])
        srv.send(b"from netkit\n")
        sc.wait_out(b"from netkit\n")
        data = self.payload()
        sc.send(data)
        srv.wait_for("the payload", lambda o, e: len(o) >= len(data))
        srv.send(b"", close=True)  # close_notify and FIN: s_client closes too
        self.assertEqual(srv.finish(), 0, srv.stderr)
        sc.finish()
        self.assertEqual(sha(bytes(srv.out)), sha(data))

    def need_ncat(self):
        if not shutil.which("ncat"):
            self.skipTest("ncat is not installed (scripts/install-deps)")

    def test_ncat_listen_to_connect(self):
        self.need_openssl()
        self.need_ncat()
        port = free_port()
        nc = Proc(self, ["ncat", "-l", "--ssl", "--ssl-cert", self.path("leaf.crt"),
                         "--ssl-key", self.path("leaf.key"), "127.0.0.1", str(port)])
        wait_port_listening(port)
        cli = netkit(self, "tcp", "connect", "localhost:%d" % port, "--tls", "--cacert",
                     self.path("ca.crt"))
        nc.send(b"from ncat\n")
        cli.wait_out(b"from ncat\n")
        data = self.payload()
        cli.send(data, close=True)
        nc.wait_for("the payload", lambda o, e: len(o) >= len(data))
        nc.send(b"", close=True)
        self.assertEqual(cli.finish(), 0, cli.stderr)
        nc.finish()
        self.assertEqual(sha(bytes(nc.out)), sha(data))
        self.assertEqual(bytes(cli.out), b"from ncat\n")

    def test_ncat_connect_to_listen(self):
        self.need_openssl()
        self.need_ncat()
        srv, port, _ = start_listener(self, "tcp", "listen", "127.0.0.1:0", "--tls",
                                      "--tls-cert", self.path("leaf.crt"),
                                      "--tls-key", self.path("leaf.key"))
        nc = Proc(self, ["ncat", "--ssl", "--ssl-verify", "--ssl-trustfile", self.path("ca.crt"),
                         "localhost", str(port)])
        srv.send(b"from netkit\n")
        nc.wait_out(b"from netkit\n")
        data = self.payload()
        nc.send(data, close=True)
        srv.wait_for("the payload", lambda o, e: len(o) >= len(data))
        srv.send(b"", close=True)
        self.assertEqual(srv.finish(), 0, srv.stderr)
        self.assertEqual(nc.finish(), 0, nc.stderr)
        self.assertEqual(sha(bytes(srv.out)), sha(data))

    # ---- file and chat ---------------------------------------------------------------------

    def test_file_send_recv(self):
        inbox = self.path("inbox-%d" % os.getpid())
        os.mkdir(inbox)
        self.addCleanup(shutil.rmtree, inbox, True)
        data = os.urandom(3 << 20)
        with open(self.path("sent.bin"), "wb") as f:
            f.write(data)
        rcv, port, fp = start_listener(self, "file", "recv", "127.0.0.1:0", "--dir", inbox,
                                       "--once", "--tls", "--tls-self-signed")
        addr = "127.0.0.1:%d" % port
        # a probe and a refused handshake do not count as the --once sender
        self.assertEqual(harness.run(["tcp", "wait", addr], timeout=WAIT).returncode, 0)
        r = harness.run(["file", "send", addr, self.path("sent.bin"), "--tls"], timeout=WAIT)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"netkit: file send: TLS: certificate verify failed: self-signed", r.stderr)
        r = harness.run(["file", "send", addr, self.path("sent.bin"), "--tls", "--pin-sha256",
                         fp], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"sent sent.bin (%d bytes)\n" % len(data))
        self.assertEqual(rcv.finish(), 0, rcv.stderr)
        self.assertIn(b"received sent.bin (%d bytes, sha256 %s)" % (len(data), sha(data).encode()),
                      bytes(rcv.out))
        with open(os.path.join(inbox, "sent.bin"), "rb") as f:
            self.assertEqual(sha(f.read()), sha(data))
        self.assertNotIn("closed during", rcv.stderr)  # the probe went unreported
        self.assertRegex(rcv.stderr, r"TLS: .*unknown ca")

    def test_chat(self):
        self.need_openssl()
        srv, port, _ = start_listener(self, "chat", "serve", "127.0.0.1:0", "--tls",
                                      "--tls-cert", self.path("leaf.crt"),
                                      "--tls-key", self.path("leaf.key"))
        addr = "localhost:%d" % port
        ca = self.path("ca.crt")
        ada = netkit(self, "chat", "join", addr, "--name", "ada", "--tls", "--cacert", ca)
        ada.wait_out(b"* joined as ada")
        bob = netkit(self, "chat", "join", addr, "--name", "bob", "--tls", "--cacert", ca)
        bob.wait_out(b"* joined as bob")
        ada.wait_out(b"* bob joined\n")
        bob.send(b"hello from bob\n")
        ada.wait_out(b"[bob] hello from bob\n")
        ada.send(b"hello from ada\n")
        bob.wait_out(b"[ada] hello from ada\n")
        # A client that does not trust the server gets no further than the handshake.
        r = harness.run(["chat", "join", addr, "--name", "eve", "--tls"], input=b"hi\n",
                        timeout=WAIT)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"netkit: chat join: TLS: certificate verify failed", r.stderr)
        self.assertEqual(ada.finish(), 0, ada.stderr)
        bob.wait_out(b"* ada left\n")
        self.assertEqual(bob.finish(), 0, bob.stderr)
        self.assertNotIn(b"eve", bytes(bob.out))
        srv.proc.terminate()
        self.assertEqual(srv.finish(), 0, srv.stderr)
        self.assertIn("ada joined from", srv.stderr)


if __name__ == "__main__":
    unittest.main()
