"""Helpers for integration tests that drive the real `netkit` binary.

A server is started on port 0 and the test waits for its readiness line
("listening on <url>") on stderr, so there are no fixed ports and no sleeps.
Every process started through this module is killed when the test ends,
whether it passed or not (register with TestCase.addCleanup).

The transport under `http serve` is chosen by NETKIT_TEST_TRANSPORT: "http" (the default),
"https" or "h2". TLS is a layer under the connection, so every HTTP test must pass the same over
both. With "https", start() gives each `http serve` it launches --tls-self-signed and turns
its TCP listeners into https:// ones (unix: listeners, and servers whose arguments already
name a scheme or a TLS option, are left as they are). Every https:// listener a server
announces is remembered with the certificate fingerprint the server printed, and the client
helpers below speak TLS to exactly those addresses, checking that the certificate presented
is the one announced: connect() for sockets, http_connection() for http.client, urlopen() for
urllib, curl_args() for curl, origin() for URLs and absolute request targets.

"h2" starts the servers as "https" does, and the clients then carry every request over
HTTP/2 (ALPN h2): curl with --http2; the HTTP/1.1 clients the tests hold (connect(),
http_connection(), urlopen()) through h2bridge.py, which turns the HTTP/1.1 they write into
HTTP/2 streams and the answers back into HTTP/1.1. HTTP semantics are the same over both;
the HTTP/1.1 message syntax is not, so a test of that syntax itself is marked
@http1_framing("why") and skipped under "h2" alone.
"""
import base64
import errno
import hashlib
import http.client
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

NETKIT = os.environ.get("NETKIT_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "netkit")

LISTEN_RE = re.compile(r"listening on (\S+)")
FINGERPRINT_RE = re.compile(r"TLS certificate: self-signed, sha256 ([0-9a-f]{64})")

TRANSPORT = os.environ.get("NETKIT_TEST_TRANSPORT") or "http"
if TRANSPORT not in ("http", "https", "h2"):
    raise ValueError("NETKIT_TEST_TRANSPORT must be http, https or h2, not %r" % TRANSPORT)
TLS = TRANSPORT in ("https", "h2")      # http serve gets https:// listeners
SCHEME = "https" if TLS else "http"     # the scheme of the URLs it announces
# How the server names the protocol of a request (access log, --echo): the version HTTP/2
# requests carry is "HTTP/2.0" (RFC 9113 8.3 has no request line; servers log it so).
PROTOCOL = "HTTP/2.0" if TRANSPORT == "h2" else "HTTP/1.1"
# How --echo and -v show a request's version: as it came, "HTTP/2" being the protocol's name.
SHOWN_VERSION = "HTTP/2" if TRANSPORT == "h2" else "HTTP/1.1"


def http1_framing(why):
    """Marks a test of the HTTP/1.1 message syntax itself (request line, field lines, chunked
    framing, persistence, pipelining): HTTP/2 has no such bytes, so under
    NETKIT_TEST_TRANSPORT=h2 it is skipped with why; it runs over http and https."""
    import unittest
    return unittest.skipIf(TRANSPORT == "h2", "HTTP/1.1 framing, not carried over h2: " + why)


class Server:
    """A running netkit server: .proc, .urls (one per listener), .stderr_lines."""

    def __init__(self, proc, urls, lines):
        self.proc = proc
        self.urls = urls
        self.stderr_lines = lines
        self.fingerprint = None  # sha256 hex of a self-signed certificate it printed

    @property
    def url(self):
        return self.urls[0]

    def host_port(self, index=0):
        """(host, port) of a tcp/udp/http listener URL."""
        m = re.match(r"^[a-z]+://\[?([^\]]*?)\]?:(\d+)/?$", self.urls[index])
        if not m:
            raise ValueError("not a host:port url: %r" % self.urls[index])
        return m.group(1), int(m.group(2))

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Send sig and wait; returns the exit code (kills on timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def read_stderr(self, timeout=0.2):
        """Collect whatever the server has written to stderr since the readiness lines."""
        out = []
        end = time.monotonic() + timeout
        fd = self.proc.stderr.fileno()
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out.append(chunk.decode("utf-8", "replace"))
        return "".join(out)


def start(test, args, listeners=1, timeout=10, env=None, stdout=subprocess.DEVNULL,
          preexec_fn=None, cwd=None, program=None):
    """Start `netkit ARGS` (or `program ARGS`), wait for `listeners` readiness lines,
    register cleanup. Under NETKIT_TEST_TRANSPORT=https or h2 an `http serve` gets TLS
    listeners
    (see the module's comment)."""
    made_tls = False
    if program is None:
        converted = transport_args(args)
        made_tls = converted != list(args)
        args = converted
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.Popen([program or NETKIT] + list(args), stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.PIPE, env=full_env, preexec_fn=preexec_fn,
                            cwd=cwd)
    server = Server(proc, [], [])
    test.addCleanup(_reap, proc)
    fd = proc.stderr.fileno()
    pending = b""
    deadline = time.monotonic() + timeout
    while len(server.urls) < listeners:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("netkit %s: no readiness line within %ss; stderr: %r"
                                 % (" ".join(args), timeout, pending + b"".join(
                                     l.encode() for l in server.stderr_lines)))
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            proc.wait()
            raise AssertionError("netkit %s exited with %s before it was ready; stderr: %r"
                                 % (" ".join(args), proc.returncode,
                                    "".join(server.stderr_lines) + pending.decode()))
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            text = line.decode("utf-8", "replace")
            server.stderr_lines.append(text)
            m = FINGERPRINT_RE.search(text)
            if m:
                server.fingerprint = m.group(1)
            m = LISTEN_RE.search(text)
            if m:
                server.urls.append(m.group(1))
    if made_tls and server.fingerprint is None:
        raise AssertionError("netkit %s: no certificate fingerprint before the readiness lines; "
                             "stderr: %r" % (" ".join(args), server.stderr_lines))
    _remember_tls(test, server)
    return server


# ---------------------------------------------------------------------------------------------
# the transport: https:// listeners and the clients that reach them

_LISTEN_OPTS = ("-l", "--listen")


def _https_listener(addr):
    """A bare TCP listener address as an https:// one; unix: and explicit schemes unchanged."""
    if addr.startswith("unix:") or "://" in addr:
        return addr
    return "https://" + addr


def transport_args(args):
    """args as start() runs them: under NETKIT_TEST_TRANSPORT=https or h2, `http serve` with
    bare TCP listeners gets them as https:// ones and --tls-self-signed. A server whose arguments
    already speak of TLS (a scheme on a listener, a --tls option, --redirect-https, --hsts)
    is the test's own choice and is left alone, as is every other command."""
    args = list(args)
    if not TLS or args[:2] != ["http", "serve"]:
        return args
    for a in args:
        if a.startswith("--tls") or a.startswith("--redirect-https") or a.startswith("--hsts"):
            return args
    for i, a in enumerate(args):
        value = args[i + 1] if a in _LISTEN_OPTS and i + 1 < len(args) else None
        if a.startswith("--listen="):
            value = a.split("=", 1)[1]
        if value is not None and "://" in value:
            return args
    out, converted = [], False
    i = 0
    while i < len(args):
        a = args[i]
        if a in _LISTEN_OPTS and i + 1 < len(args):
            new = _https_listener(args[i + 1])
            converted |= new != args[i + 1]
            out += [a, new]
            i += 2
            continue
        if a.startswith("--listen="):
            new = _https_listener(a.split("=", 1)[1])
            converted |= new != a.split("=", 1)[1]
            a = "--listen=" + new
        out.append(a)
        i += 1
    if converted:
        out.append("--tls-self-signed")
    return out


class TLSPeer:
    """An https:// listener as a client sees it: the certificate fingerprint its server printed
    (None if it printed none: then whatever certificate comes is taken), the certificate once
    a handshake showed it (DER), and the client contexts."""

    def __init__(self, fingerprint, addr):
        self.fingerprint = fingerprint
        self.addr = addr
        self.cert = None
        self.cafile = None
        self._contexts = {}

    def context(self, socket_class=None):
        socket_class = socket_class or PinnedSSLSocket
        ctx = self._contexts.get(socket_class)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            # The certificate is self-signed: no chain to verify, but its hash must be the
            # one the server printed (PinnedSSLSocket checks it after every handshake).
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["http/1.1"])
            ctx.sslsocket_class = socket_class
            ctx.netkit_peer = self
            self._contexts[socket_class] = ctx
        return ctx

    def h2_context(self):
        """A client context that offers only h2 (ALPN): the bridge's, pinned like the others
        by check() after each handshake."""
        ctx = self._contexts.get("h2")
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            self._contexts["h2"] = ctx
        return ctx

    def check(self, der):
        """Raise unless der is the certificate the server announced; remember it."""
        got = hashlib.sha256(der).hexdigest()
        if self.fingerprint is not None and got != self.fingerprint:
            raise ssl.SSLCertVerificationError(
                "the server presented a certificate with sha256 %s, not the %s it printed"
                % (got, self.fingerprint))
        self.cert = der

    def certificate(self):
        """The server's certificate (DER), from a pinned handshake (one is made if none was)."""
        if self.cert is None:
            connect(self.addr, 10).close()
        return self.cert

    def ca_file(self):
        """A PEM file holding the server's certificate, for clients that verify against a
        trust anchor (curl --cacert)."""
        if self.cafile is None:
            fd, path = tempfile.mkstemp(prefix="netkit-test-cert-", suffix=".pem")
            with os.fdopen(fd, "w") as f:
                f.write(ssl.DER_cert_to_PEM_cert(self.certificate()))
            self.cafile = path
        return self.cafile

    def spki_sha256_b64(self):
        """base64 of the SHA-256 of the certificate's public key (SubjectPublicKeyInfo): the
        form Chromium's --ignore-certificate-errors-spki-list takes."""
        return base64.b64encode(hashlib.sha256(spki(self.certificate())).digest()).decode()


def _der(buf, pos):
    """The DER element at pos: (tag, start of its contents, end)."""
    tag, n = buf[pos], buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, pos, pos + n


def spki(cert):
    """The SubjectPublicKeyInfo (DER) of an X.509 certificate (DER): the seventh field of
    tbsCertificate, or the sixth when the [0] version is absent (RFC 5280 4.1)."""
    _, tbs, _ = _der(cert, 0)
    _, pos, end = _der(cert, tbs)
    fields = []
    while pos < end:
        tag, _, nxt = _der(cert, pos)
        fields.append((tag, pos, nxt))
        pos = nxt
    if fields and fields[0][0] == 0xA0:
        fields = fields[1:]
    tag, start, stop = fields[5]
    if tag != 0x30:
        raise ValueError("no SubjectPublicKeyInfo where RFC 5280 puts it")
    return cert[start:stop]


class PinnedSSLSocket(ssl.SSLSocket):
    """A TLS client socket that checks, after the handshake, that the server's certificate is
    the one it announced. An EOF without close_notify reads as EOF and is recorded
    (unclean_eof). With connect(defer_handshake=True) what is sent before the first recv is
    held back (as a TCP send buffer would hold it) until that recv completes the handshake:
    for a client the server does not accept yet (--max-conns)."""

    _deferred = False
    _pending = None
    unclean_eof = False

    def do_handshake(self, block=False):
        super().do_handshake(block)
        peer = getattr(self.context, "netkit_peer", None)
        if peer is not None:
            peer.check(self.getpeercert(binary_form=True))

    def send(self, data, flags=0):
        if self._deferred:
            self._pending += data
            return len(data)
        try:
            return super().send(data, flags)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            raise BlockingIOError(errno.EAGAIN, "cannot write yet (TLS)") from None
        except ssl.SSLEOFError:
            # OpenSSL's word for a write the peer's close cut short: EPIPE on a plain socket
            raise BrokenPipeError(errno.EPIPE, "the server closed the connection (TLS)") from None

    _ended = None  # what a read while gathering met: EOF (b"") or an exception, for the next

    def recv(self, bufsize=1024, flags=0):
        if self._deferred:
            self._finish_handshake()
        if self._ended is not None:
            if isinstance(self._ended, BaseException):
                raise self._ended
            return b""
        data = self._read_record(bufsize, flags)
        # ssl.SSLSocket.recv returns one record (16 KiB) at most; a plain recv returns all
        # that has arrived. Gather what is already here, so readers see the chunks they
        # would see without TLS (and do not slow down by the count of their calls).
        parts, n = [data], len(data)
        while data and n < bufsize and (self.pending() or self._readable()):
            try:
                data = self._read_record(bufsize - n, flags)
            except (socket.timeout, BlockingIOError):
                break
            except OSError as e:
                self._ended = e
                break
            if not data:
                self._ended = b""
                break
            parts.append(data)
            n += len(data)
        return b"".join(parts) if len(parts) > 1 else parts[0]

    def _readable(self):
        p = select.poll()
        p.register(self.fileno(), select.POLLIN)
        return bool(p.poll(0))

    def _read_record(self, bufsize, flags):
        try:
            return super().recv(bufsize, flags)
        except ssl.SSLEOFError:
            self.unclean_eof = True
            return b""
        except ssl.SSLWantReadError:
            # non-blocking and nothing to read: what a plain socket says then
            raise BlockingIOError(errno.EAGAIN, "no data yet (TLS)") from None

    def _finish_handshake(self):
        self.do_handshake()  # up to the socket's timeout; a later recv resumes it
        self._deferred = False
        pending, self._pending = bytes(self._pending), bytearray()
        view, sent = memoryview(pending), 0
        while sent < len(pending):
            sent += ssl.SSLSocket.send(self, view[sent:])  # already counted by send()

    def shutdown(self, how):
        if how == socket.SHUT_WR:
            # ssl.SSLSocket would drop TLS here and read the records that follow as plain
            # bytes, and OpenSSL refuses data after its own close_notify on this path.
            raise NotImplementedError("half-close over TLS: use harness.tls_half_closed()")
        super().shutdown(how)


_tls_peers = {}  # (host, port) -> TLSPeer; host "*" for a listener on every address


def _url_host_port(url):
    m = re.match(r"^([a-z]+)://(?:\[([^\]]+)\]|([^:/\[\]]+)):(\d+)(?:/|$)", url)
    if not m:
        return None, None, None
    return m.group(1), m.group(2) or m.group(3), int(m.group(4))


def _remember_tls(test, server):
    """Register the server's https:// listeners, forgotten when the owner cleans up."""
    keys, peer = [], None
    for url in server.urls:
        scheme, host, port = _url_host_port(url)
        if scheme != "https":
            continue
        if peer is None:
            addr = ("::1" if host == "::" else "127.0.0.1" if host == "0.0.0.0" else host, port)
            peer = TLSPeer(server.fingerprint, addr)
        key = ("*" if host in ("0.0.0.0", "::") else host, port)
        _tls_peers[key] = peer
        keys.append(key)
    if keys:
        test.addCleanup(_forget_tls, keys, peer)


def _forget_tls(keys, peer):
    for key in keys:
        if _tls_peers.get(key) is peer:
            del _tls_peers[key]
    if peer.cafile:
        try:
            os.unlink(peer.cafile)
        except OSError:
            pass


def tls_peer(addr):
    """The TLSPeer of an https:// listener at addr ((host, port)), or None: plain."""
    if isinstance(addr, str) or addr is None:
        return None
    host, port = addr[0], addr[1]
    peer = _tls_peers.get((host, port)) or _tls_peers.get(("*", port))
    if peer is None and host in ("localhost", "127.0.0.1", "::1"):
        for (h, p), candidate in _tls_peers.items():
            if p == port and h in ("localhost", "127.0.0.1", "::1"):
                return candidate
    return peer


def connect(addr, timeout=5.0, tls_class=None, plain_class=socket.socket, setup=None,
            defer_handshake=False):
    """A connected stream socket to addr ((host, port) or a Unix socket path): TLS (tls_class,
    default PinnedSSLSocket) when addr is an https:// listener started through start(), else
    plain_class. setup(sock) runs before the connect (options that must precede it)."""
    peer = tls_peer(addr)
    if peer is not None and TRANSPORT == "h2":
        import h2bridge
        return h2bridge.connect(addr, peer.h2_context(), peer.check, timeout,
                                plain_class=plain_class, setup=setup,
                                defer_handshake=defer_handshake)
    if isinstance(addr, str):
        family = socket.AF_UNIX
    else:
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    s = (plain_class if peer is None else socket.socket)(family, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        if setup is not None:
            setup(s)
        s.connect(addr)
        if peer is None:
            return s
        t = peer.context(tls_class).wrap_socket(s, do_handshake_on_connect=not defer_handshake,
                                                 suppress_ragged_eofs=False)
        if defer_handshake:
            t._deferred = True
            t._pending = bytearray()
        return t
    except BaseException:
        s.close()
        raise


def tls_handshake_all(peer, socks, deadline, then=None, settle=1.0):
    """Many clients at once: socks (connected, non-blocking) as TLS sockets of peer, their
    handshakes driven side by side; then(sock) runs as each one completes. Clients the server
    has not accepted cannot finish theirs, so this stops once none has completed for `settle`
    seconds (or at the deadline). Returns (the TLS sockets, a repr of what ended each
    handshake the server cut short)."""
    tls = [peer.context().wrap_socket(s, do_handshake_on_connect=False,
                                      suppress_ragged_eofs=False) for s in socks]
    waiting, failed = list(tls), []
    last = time.monotonic()
    while waiting and time.monotonic() < deadline and time.monotonic() - last < settle:
        still = []
        for t in waiting:
            try:
                t.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                still.append(t)
                continue
            except OSError as e:  # closed or reset by the server
                failed.append(repr(e))
                continue
            last = time.monotonic()
            if then is not None:
                then(t)
        waiting = still
        if waiting:
            p = select.poll()
            for t in waiting:
                p.register(t.fileno(), select.POLLIN)
            p.poll(50)
    return tls, failed


def tls_half_closed(addr, data, deadline):
    """Send data over TLS to addr, then end the sending side the TLS way (close_notify, then
    TCP FIN) and read what comes back until the server closes or the deadline passes:
    (bytes, closed, clean), clean being True when the server's close was a close_notify.
    A memory-BIO client, since ssl.SSLSocket cannot close one direction only."""
    peer = tls_peer(addr)
    if TRANSPORT == "h2":
        return _h2_half_closed(addr, data, deadline)
    raw = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()

    def flush():
        out = outgoing.read()
        if out:
            raw.sendall(out)

    def fill():
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no answer by the deadline")
        raw.settimeout(left)
        chunk = raw.recv(65536)
        if chunk:
            incoming.write(chunk)
        else:
            incoming.write_eof()
        return chunk

    got = bytearray()
    with raw:
        raw.settimeout(max(0.1, deadline - time.monotonic()))
        raw.connect(addr)
        tls = peer.context().wrap_bio(incoming, outgoing)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                flush()
                if not fill():
                    return bytes(got), True, False
        flush()
        peer.check(tls.getpeercert(binary_form=True))
        try:
            tls.write(data)
            flush()
            try:
                tls.unwrap()  # queues close_notify; the server's own is not awaited here
            except ssl.SSLWantReadError:
                pass
            flush()
            raw.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early: what the server sent is still readable
        eof = False
        while True:
            try:
                while True:
                    got += tls.read(65536)
            except ssl.SSLWantReadError:
                if eof:
                    return bytes(got), True, False
            except ssl.SSLZeroReturnError:
                return bytes(got), True, True
            except ssl.SSLEOFError:
                return bytes(got), True, False
            try:
                eof = not fill()
            except socket.timeout:
                return bytes(got), False, False
            except ConnectionResetError:
                return bytes(got), True, False


def _h2_half_closed(addr, data, deadline):
    """tls_half_closed over h2: the bridge's socketpair closes one direction like TCP, and the
    bridge ends the HTTP/2 connection (GOAWAY, close_notify) once it has answered."""
    s = connect(addr, max(0.1, deadline - time.monotonic()))
    got = bytearray()
    with s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(got), False, False
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return bytes(got), False, False
            except ConnectionResetError:
                return bytes(got), True, True
            if not chunk:
                return bytes(got), True, True
            got += chunk


def origin(addr):
    """'http://HOST:PORT' or 'https://HOST:PORT' for the listener at addr (host, port)."""
    host, port = addr[0], addr[1]
    if ":" in host:
        host = "[%s]" % host
    return "%s://%s:%d" % ("https" if tls_peer(addr) else "http", host, port)


def http_connection(host, port, timeout=5.0):
    """http.client's HTTPConnection, or HTTPSConnection with the pin for an https:// listener."""
    peer = tls_peer((host, port))
    if peer is None:
        return http.client.HTTPConnection(host, port, timeout=timeout)
    if TRANSPORT == "h2":
        return H2BridgedConnection(host, port, timeout=timeout)
    return http.client.HTTPSConnection(host, port, timeout=timeout, context=peer.context())


class H2BridgedConnection(http.client.HTTPConnection):
    """http.client over HTTP/2: its HTTP/1.1 goes through a bridge (h2bridge.py) to the
    https:// listener at host:port."""

    default_port = http.client.HTTPS_PORT

    def connect(self):
        if self._tunnel_host:
            raise http.client.HTTPException("no CONNECT tunnels over the h2 bridge")
        self.sock = connect((self.host, self.port), self.timeout)


class _H2Handler(urllib.request.HTTPSHandler):
    """urllib's https:// through H2BridgedConnection when the URL is an https:// listener
    started through start(), else TLS as usual."""

    def https_open(self, req):
        host = req.host
        scheme, h, port = _url_host_port("https://" + host + "/")
        if tls_peer((h, port)) is not None:
            return self.do_open(H2BridgedConnection, req)
        return super().https_open(req)


def urlopen(url, timeout=10, **kw):
    """urllib.request.urlopen with the pinned context when url is on an https:// listener."""
    target = url.full_url if isinstance(url, urllib.request.Request) else url
    scheme, host, port = _url_host_port(target)
    peer = tls_peer((host, port)) if scheme == "https" else None
    if peer is not None and TRANSPORT == "h2":
        data = kw.pop("data", None)
        if kw:
            raise TypeError("urlopen over h2 takes url, data and timeout, not %r" % sorted(kw))
        return urllib.request.build_opener(_H2Handler()).open(url, data=data, timeout=timeout)
    if peer is not None:
        kw["context"] = peer.context()
    return urllib.request.urlopen(url, timeout=timeout, **kw)


def curl_args(url):
    """Options curl needs for url: for an https:// listener the server's certificate as its
    only trust anchor (--cacert), so curl verifies it, host name included."""
    scheme, host, port = _url_host_port(url)
    peer = tls_peer((host, port)) if scheme == "https" else None
    if peer is None:
        return []
    if TRANSPORT == "h2":
        # after any --http1.1 of the test's own: curl takes the last of these
        return ["--cacert", peer.ca_file(), "--http2"]
    return ["--cacert", peer.ca_file()]


_CURL_H2_STATUS = re.compile(rb"(\A|\r\n\r\n)HTTP/2 (\d{3}) ?\r\n")


def curl_heads_as_http1(out):
    """curl's -D/-i/-I output with each HTTP/2 status line ("HTTP/2 200 ") written as an
    HTTP/1.1 one, so the tests' HTTP/1.1 parsers read the heads; the fields (lower case
    over h2) and bodies are left as curl wrote them. Under h2 a head that is not HTTP/2 is
    an error: curl was meant to speak it."""
    if TRANSPORT != "h2":
        return out
    if re.match(rb"HTTP/1\.[01] ", out):
        raise AssertionError("curl did not speak HTTP/2: %r" % out[:100])
    return _CURL_H2_STATUS.sub(rb"\1HTTP/1.1 \2 \r\n", out)


def run(args, input=None, timeout=30, env=None):
    """Run netkit to completion: CompletedProcess with text stdout/stderr."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([NETKIT] + list(args), input=input, capture_output=True,
                          timeout=timeout, env=full_env)


_REFUSED = {}


def backend_refused(name):
    """Why this kernel cannot run the loop backend `name` (uring, where io_uring is disabled by
    kernel.io_uring_disabled or a seccomp filter), or None when it can. Asked once per name of
    `netkit bench echo`, which opens its loop before it connects (to a closed loopback port)."""
    if name not in _REFUSED:
        res = run(["bench", "echo", "127.0.0.1:9", "--backend", name, "--conns", "1",
                   "--duration", "0.1"], timeout=30)
        m = re.search(r"cannot start the %s backend: (.*)" % re.escape(name),
                      res.stderr.decode("utf-8", "replace"))
        _REFUSED[name] = m.group(1).strip() if m else None
    return _REFUSED[name]


# How netkit says that the kernel refused a backend it was asked for: EPERM (seccomp,
# kernel.io_uring_disabled) or ENOSYS (not built in), the two errors tests/unit/backend_skip.h
# also takes for a refusal, in the words of every command (cli_backend_fail).
_REFUSAL_RE = re.compile(r"cannot start the [a-z]+ backend: "
                         r"(?:Operation not permitted|Function not implemented).*")


def serve_refused(name):
    """Why `netkit http serve --backend name` cannot start on this kernel, or None when it can.
    A real start on 127.0.0.1:0: None once it announces its listener (it is then stopped), the
    reason when it exits saying the kernel refused the backend (_REFUSAL_RE). Any other failure is not a refusal and is raised, so that a broken
    server fails its suite instead of skipping it."""
    docroot = tempfile.mkdtemp(prefix="netkit-backend-probe-")
    proc = subprocess.Popen([NETKIT, "http", "serve", docroot, "-l", "127.0.0.1:0",
                             "--backend", name, "--access-log", "off"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    text = ""
    try:
        deadline = time.monotonic() + 15
        fd = proc.stderr.fileno()
        while not LISTEN_RE.search(text):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("netkit http serve --backend %s: no listener within 15 s: %r"
                                   % (name, text[-300:]))
            r, _, _ = select.select([fd], [], [], left)
            chunk = os.read(fd, 65536) if r else b""
            if r and not chunk:
                break
            text += chunk.decode("utf-8", "replace")
        if LISTEN_RE.search(text):
            return None
        proc.wait(10)
        m = _REFUSAL_RE.search(text)
        if m:
            return m.group(0).strip()
        raise RuntimeError("netkit http serve --backend %s exited %s: %r"
                           % (name, proc.returncode, text[-300:]))
    finally:
        _reap(proc)
        os.rmdir(docroot)


def _skip_suite_if_backend_refused():
    """A suite run with NETKIT_BACKEND set (integration_uring.*, tests/CMakeLists.txt) on a
    kernel that refuses that backend exits 77, which CTest reports as a skip
    (SKIP_RETURN_CODE) with this reason, rather than failing every test or passing none."""
    name = os.environ.get("NETKIT_BACKEND") or ""
    if not name:
        return
    why = serve_refused(name)
    if why:
        print("skipped: this kernel refuses the %s backend: %s" % (name, why), flush=True)
        raise SystemExit(77)


def skip_if_backend_refused(test, name):
    """Skip test (with the kernel's reason) when this kernel refuses the backend `name`."""
    why = backend_refused(name)
    if why:
        test.skipTest("this kernel refuses the %s backend: %s" % (name, why))


def _reap(proc):
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream:
            stream.close()


def raise_nofile(minimum):
    """Raise this process's RLIMIT_NOFILE soft limit to at least `minimum` (up to the hard
    limit). Returns True when the soft limit is now >= minimum."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < minimum:
        target = minimum if hard == resource.RLIM_INFINITY else min(minimum, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft == resource.RLIM_INFINITY or soft >= minimum


def nofile_preexec(minimum):
    """A preexec_fn for start(): the child's RLIMIT_NOFILE soft limit raised to `minimum`
    (or as far as the hard limit allows)."""
    def preexec():
        raise_nofile(minimum)
    return preexec


def stream_roundtrip(sock, payload, timeout=30):
    """Send payload on a stream socket while reading what comes back, until as many bytes
    came back as were sent (so neither side's buffers can fill and deadlock). Returns the
    bytes received; fewer than sent when the peer closed. Raises TimeoutError after
    `timeout` seconds."""
    sock.setblocking(False)
    view = memoryview(payload)
    sent = 0
    got = bytearray()
    deadline = time.monotonic() + timeout
    while len(got) < len(payload):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("echo of %d bytes: sent %d, received %d"
                               % (len(payload), sent, len(got)))
        wlist = [sock] if sent < len(payload) else []
        r, w, _ = select.select([sock], wlist, [], left)
        if w:
            try:
                sent += sock.send(view[sent:sent + 65536])
            except BlockingIOError:
                pass
        if r:
            try:
                chunk = sock.recv(262144)
            except BlockingIOError:
                continue
            if not chunk:
                break
            got += chunk
    return bytes(got)


_asan_binary = None


def tls_under_asan():
    """True when http serve runs over TLS (NETKIT_TEST_TRANSPORT=https or h2) in an ASan build. Its
    RSS is then no measure of the server's memory: OpenSSL gives its record buffers back after
    each record (SSL_MODE_RELEASE_BUFFERS) and ASan keeps every freed block in its quarantine
    (up to 256 MiB), so RSS grows with the bytes moved. Memory bounds are asserted over http
    in every build and over https without ASan."""
    global _asan_binary
    if not TLS:
        return False
    if _asan_binary is None:
        with open(NETKIT, "rb") as f:
            _asan_binary = b"__asan_init" in f.read()
    return _asan_binary


# Last, once every helper above is defined: the suite's backend must start on this kernel.
_skip_suite_if_backend_refused()
