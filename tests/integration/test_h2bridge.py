"""The h2 transport's own client (h2bridge.py) against a server that is not netkit: h2o.

Under NETKIT_TEST_TRANSPORT=h2 every HTTP/1.1 exchange of the HTTP suites goes through the
bridge, so a bridge that lost, reordered or invented bytes would blame (or excuse) the server.
Here it carries requests to h2o over TLS with ALPN h2, and what the test reads back must be the
HTTP/1.1 those requests call for: GET and HEAD, Content-Length and chunked request bodies,
pipelined requests answered in order, Connection: close, a half-closed client still answered,
a client that stops reading (flow control, not buffering), a closed client ending the HTTP/2
connection, and the certificate pin.
"""
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import h2bridge
import harness
import httptest as H
import wirecheck

H2O = shutil.which("h2o")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipIf(H2O is None, "h2o is not installed (scripts/install-deps)")
@unittest.skipIf(shutil.which("openssl") is None, "openssl is not installed")
class BridgeAgainstH2o(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="netkit-h2bridge-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        os.chmod(cls.tmp, 0o755)  # h2o's workers may run as another user
        key, cert = os.path.join(cls.tmp, "key.pem"), os.path.join(cls.tmp, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=localhost"], check=True,
                       capture_output=True, timeout=30)
        os.chmod(key, 0o644)
        www = os.path.join(cls.tmp, "www")
        os.mkdir(www)
        with open(os.path.join(www, "hello.txt"), "wb") as f:
            f.write(b"hello, world\n")
        cls.big = os.urandom(3 << 20)
        with open(os.path.join(www, "big.bin"), "wb") as f:
            f.write(cls.big)
        cls.port = free_port()
        conf = os.path.join(cls.tmp, "h2o.conf")
        with open(conf, "w") as f:
            if os.geteuid() == 0:
                f.write("user: root\n")
            f.write("""listen:
  host: 127.0.0.1
  port: %d
  ssl:
    certificate-file: %s
    key-file: %s
error-log: %s
hosts:
  default:
    paths:
      /:
        file.dir: %s
      /echo:
        mruby.handler: |
          Proc.new do |env|
            body = env["rack.input"] ? env["rack.input"].read : ""
            [200, {"content-type" => "text/plain"},
             [env["REQUEST_METHOD"] + " " + body.bytesize.to_s + " " + body[0, 16]]]
          end
""" % (cls.port, cert, key, os.path.join(cls.tmp, "error.log"), www))
        cls.proc = subprocess.Popen([H2O, "-c", conf], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.addClassCleanup(cls._stop)
        with open(cert) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        cls.addr = ("127.0.0.1", cls.port)
        cls.peer = harness.TLSPeer(hashlib.sha256(der).hexdigest(), cls.addr)
        deadline = time.monotonic() + 10
        while True:
            try:
                h2bridge.connect(cls.addr, cls.peer.h2_context(), cls.peer.check, 2).close()
                break
            except OSError:
                if time.monotonic() > deadline or cls.proc.poll() is not None:
                    cls._stop()
                    raise AssertionError("h2o did not start (exit %s)" % cls.proc.poll())
                time.sleep(0.1)

    @classmethod
    def _stop(cls):
        if cls.proc.poll() is None:
            cls.proc.terminate()
            try:
                cls.proc.wait(10)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()

    def connect(self, timeout=10):
        s = h2bridge.connect(self.addr, self.peer.h2_context(), self.peer.check, timeout,
                             plain_class=wirecheck.CheckedSocket)
        self.addCleanup(s.close)
        return s

    def conn(self):
        c = H.Conn.__new__(H.Conn)
        c.sock, c.buf, c.closed = self.connect(), b"", False
        return c

    def test_get_and_head(self):
        c = self.conn()
        r = c.request(H.get("/hello.txt"))
        self.assertEqual((r.version, r.status, r.body), ("HTTP/1.1", 200, b"hello, world\n"))
        self.assertEqual(r.header("Content-Length"), "13")
        c.send(H.req("HEAD", "/hello.txt"))
        r = c.read_response("HEAD")
        self.assertEqual((r.status, r.body, r.header("Content-Length")), (200, b"", "13"))
        r = c.request(H.get("/nope"))
        self.assertEqual(r.status, 404)

    def test_bodies_by_length_and_chunked(self):
        c = self.conn()
        body = bytes(range(256)) * 800
        r = c.request(H.req("PUT", "/echo", [("Content-Length", str(len(body)))], body))
        self.assertEqual(r.body[:10], b"PUT 204800")
        r = c.request(H.req("POST", "/echo", [("Transfer-Encoding", "chunked")],
                            b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"))
        self.assertEqual(r.body, b"POST 8 helloabc")

    def test_pipelined_in_order_then_close(self):
        data = b"".join(H.get("/hello.txt") if i % 2 else H.req("POST", "/echo", [
            ("Content-Length", "2")], b"%02d" % i) for i in range(10))
        data += H.get_close("/big.bin") + H.get("/hello.txt")  # the last one is never sent
        s = self.connect()
        s.sendall(data)
        out, closed = H._recv_until(s, time.monotonic() + 20)
        self.assertTrue(closed)
        resps, rest = H.parse_responses(out)
        self.assertEqual(rest, b"")
        self.assertEqual(len(resps), 11)
        for i, r in enumerate(resps[:10]):
            self.assertEqual(r.body, b"hello, world\n" if i % 2 else b"POST 2 %02d" % i)
        self.assertEqual(resps[10].body, self.big)
        self.assertTrue(resps[10].has_token("Connection", "close"))

    def test_half_closed_client_is_answered(self):
        s = self.connect()
        s.sendall(H.get("/hello.txt") + H.get("/hello.txt"))
        s.shutdown(socket.SHUT_WR)
        out, closed = H._recv_until(s, time.monotonic() + 10)
        self.assertTrue(closed)
        self.assertEqual([r.body for r in H.parse_responses(out)[0]], [b"hello, world\n"] * 2)

    def test_a_client_that_stops_reading_stops_the_server(self):
        # flow control, not buffering: the server sends ahead of what the test took at most
        # one stream window (the socketpair holds the rest of what was taken)
        s = self.connect()
        s.sendall(H.get("/big.bin"))
        time.sleep(1.0)
        held = len(s._bridge.to_test)
        self.assertLessEqual(held, h2bridge.WINDOW + 65536)
        out, _ = H._recv_until(s, time.monotonic() + 20,
                               stop=lambda b: len(b) > len(self.big))
        self.assertEqual(H.parse_responses(out, eof=False)[0][0].body, self.big)

    def test_a_closed_client_ends_its_bridge(self):
        before = sum(1 for t in threading.enumerate() if t.name == "h2bridge")
        for _ in range(10):
            s = self.connect()
            s.sendall(H.get("/big.bin"))
            s.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if sum(1 for t in threading.enumerate() if t.name == "h2bridge") <= before:
                break
            time.sleep(0.05)
        self.assertLessEqual(sum(1 for t in threading.enumerate() if t.name == "h2bridge"),
                             before)

    def test_the_pin_is_checked(self):
        wrong = harness.TLSPeer("0" * 64, self.addr)
        with self.assertRaises(ssl.SSLCertVerificationError):
            h2bridge.connect(self.addr, wrong.h2_context(), wrong.check, 5)


if __name__ == "__main__":
    unittest.main()
