"""Shared helpers for the `netkit http serve` integration tests.

- build_docroot(): a temporary tree with a docroot and a secret file *next to* it (never
  servable), symlinks in and out, dotfiles, a listing directory, gzip sidecars, ...
- serve(): start `netkit http serve` on 127.0.0.1:0 through harness.start.
- raw()/raw_ex(): send bytes on a fresh connection, read until the peer closes or a deadline.
- parse_responses()/parse_one(): split a byte stream into responses, honouring 1xx, HEAD,
  204/304, Content-Length and chunked framing, so pipelined responses can be checked one by one.
- Conn: a persistent connection (keep-alive, pipelining, timeouts).
- check_common(): Date, Server and Content-Length on every response.

Every byte read from the server through these helpers is also checked at the wire level
(wirecheck.py: h11 as an independent strict parser, no byte beyond a response's declared
end but the next response, every Location same-origin and normalised): connect() returns a
wirecheck.CheckedSocket, parse_responses() runs the same check on the stream it is given,
and http.client responses from netkit get their Location checked too.

Over https (NETKIT_TEST_TRANSPORT=https, see harness.py) serve() starts the server with TLS
listeners and connect() returns a wirecheck.CheckedSSLSocket: the same checks on the
plaintext, and a body delimited by the close must then end with close_notify.
"""
import email.utils
import gzip
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import harness
import wirecheck
from locationcheck import check_location

# ---------------------------------------------------------------------------------------------
# requests


def req(method="GET", target="/", headers=(), body=b"", version="HTTP/1.1", host="localhost"):
    """Build one request as bytes. headers: iterable of (name, value) or raw 'Name: value'."""
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    for h in headers:
        if isinstance(h, tuple):
            lines.append("%s: %s" % h)
        else:
            lines.append(h)
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if isinstance(body, str):
        body = body.encode()
    return head + body


def get(target="/", *headers, **kw):
    return req("GET", target, headers, **kw)


def get_close(target="/", *headers, **kw):
    return req("GET", target, tuple(headers) + (("Connection", "close"),), **kw)


# ---------------------------------------------------------------------------------------------
# sockets


def client_socket(family=socket.AF_INET):
    """A stream socket whose received bytes are wire-checked (wirecheck.CheckedSocket): use
    it, not socket.socket, for any connection to `http serve` whose answers a test reads."""
    return wirecheck.CheckedSocket(family, socket.SOCK_STREAM)


def connect(addr, timeout=5.0, setup=None, defer_handshake=False):
    """addr: (host, port) or a Unix socket path. A wire-checked socket, speaking TLS when addr
    is an https:// listener (harness.connect: setup, defer_handshake)."""
    return harness.connect(addr, timeout, tls_class=wirecheck.CheckedSSLSocket,
                           plain_class=wirecheck.CheckedSocket, setup=setup,
                           defer_handshake=defer_handshake)


def _recv_until(s, deadline, stop=None, buf=b""):
    """Read until EOF, deadline, or stop(buf) is true. Returns (buf, closed)."""
    while True:
        if stop is not None and stop(buf):
            return buf, False
        left = deadline - time.monotonic()
        if left <= 0:
            return buf, False
        s.settimeout(left)
        try:
            chunk = s.recv(262144)
        except socket.timeout:
            return buf, False
        except (ConnectionResetError, BrokenPipeError):
            return buf, True
        if not chunk:
            return buf, True
        buf += chunk


def raw_ex(host, port, data, timeout=3.0, half_close=False):
    """Send data on a new connection; read until the server closes or timeout seconds pass.
    Returns (received bytes, closed): closed is True when the server closed (EOF or reset).
    host may be a Unix socket path (port ignored)."""
    addr = host if port is None else (host, port)
    deadline = time.monotonic() + timeout
    if half_close and harness.tls_peer(addr) is not None:
        out, closed, clean = harness.tls_half_closed(addr, data, deadline)
        wire = wirecheck.WireChecker()
        wire.sent(data)
        wire.received(out)
        if closed:
            wire.received(b"", clean=clean)
        return out, closed
    s = connect(addr, timeout)
    try:
        try:
            if data:
                s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may refuse early and close; what it sent is still readable
        return _recv_until(s, deadline)
    finally:
        s.close()


def raw(host, port, data, timeout=3.0):
    """Send data, read until close or timeout; returns the bytes received."""
    return raw_ex(host, port, data, timeout)[0]


class Conn:
    """A persistent client connection with a receive buffer."""

    def __init__(self, addr, timeout=5.0, defer_handshake=False):
        self.sock = connect(addr, timeout, defer_handshake=defer_handshake)
        self.buf = b""
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)

    def read_response(self, method="GET", timeout=5.0):
        """The next response (1xx included) or AssertionError on timeout or early close."""
        deadline = time.monotonic() + timeout
        while True:
            got = parse_one(self.buf, method, eof=self.closed)
            if got is not None:
                resp, used = got
                self.buf = self.buf[used:]
                return resp
            if self.closed:
                raise AssertionError("connection closed before a complete response; have %r"
                                     % self.buf[:300])
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no complete response within %.1fs; have %r"
                                     % (timeout, self.buf[:300]))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(262144)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
            self.buf += chunk

    def request(self, data, method="GET", timeout=5.0):
        self.send(data)
        return self.read_response(method, timeout)

    def wait_closed(self, timeout):
        """True if the server closes within timeout (extra bytes go to self.buf)."""
        if self.closed:
            return True
        self.buf, closed = _recv_until(self.sock, time.monotonic() + timeout, buf=self.buf)
        self.closed = closed
        return closed

    def read_some(self, timeout):
        """Whatever arrives within timeout (stops at the first chunk)."""
        self.buf, self.closed = _recv_until(self.sock, time.monotonic() + timeout,
                                            stop=lambda b: len(b) > 0, buf=self.buf)
        data, self.buf = self.buf, b""
        return data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# responses


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        """The value of the only field `name` (None when absent; AssertionError if repeated)."""
        vals = self.all(name)
        if len(vals) > 1:
            raise AssertionError("field %s repeated: %r" % (name, vals))
        return vals[0] if vals else None

    def all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def has_token(self, name, token):
        for v in self.all(name):
            if token.lower() in [t.strip().lower() for t in v.split(",")]:
                return True
        return False

    def __repr__(self):
        return "<Response %s %s %r body=%d bytes>" % (self.status, self.reason, self.headers,
                                                      len(self.body))


STATUS_RE = re.compile(rb"^(HTTP/\d\.\d) (\d{3}) ?([^\r\n]*)$")


def parse_head(head):
    """head: bytes up to (not including) the empty line. -> (version, status, reason, headers)."""
    lines = head.split(b"\r\n")
    m = STATUS_RE.match(lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    headers = []
    for line in lines[1:]:
        if b":" not in line:
            raise AssertionError("bad header line %r in %r" % (line, head))
        k, v = line.split(b":", 1)
        if k != k.strip() or not k:
            raise AssertionError("bad header name %r" % k)
        headers.append((k.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
    return m.group(1).decode(), int(m.group(2)), m.group(3).decode("latin-1"), headers


def _dechunk(buf, start):
    """Decode a chunked body from buf[start:]. -> (body, end) or None when incomplete."""
    pos = start
    body = b""
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(buf[pos:eol].split(b";")[0].strip(), 16)
        pos = eol + 2
        if size == 0:
            while True:  # trailers
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                line = buf[pos:eol]
                pos = eol + 2
                if not line:
                    return body, pos
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos:pos + size]
        if buf[pos + size:pos + size + 2] != b"\r\n":
            raise AssertionError("bad chunk terminator")
        pos += size + 2


def parse_one(buf, method="GET", eof=False):
    """Parse one response from the start of buf. -> (Response, bytes used) or None if more
    bytes are needed. A response without Content-Length or chunked framing ends at EOF."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if eof and buf:
            raise AssertionError("truncated response head %r" % buf[:300])
        return None
    head = buf[:end]
    version, status, reason, headers = parse_head(head)
    start = end + 4
    resp = Response(version, status, reason, headers, b"", head)
    for location in resp.all("Location"):
        check_location(location)
    if 100 <= status < 200 or status in (204, 304) or method == "HEAD":
        return resp, start
    te = resp.all("Transfer-Encoding")
    if te:
        got = _dechunk(buf, start)
        if got is None:
            if eof:
                raise AssertionError("truncated chunked body")
            return None
        resp.body, used = got
        return resp, used
    cl = resp.all("Content-Length")
    if cl:
        if len(set(cl)) != 1 or not cl[0].isdigit():
            raise AssertionError("bad Content-Length %r" % cl)
        n = int(cl[0])
        if len(buf) < start + n:
            if eof:
                raise AssertionError("body truncated: Content-Length %d, got %d bytes"
                                     % (n, len(buf) - start))
            return None
        resp.body = buf[start:start + n]
        return resp, start + n
    if not eof:
        return None
    resp.body = buf[start:]
    return resp, len(buf)


def parse_responses(data, methods=None, eof=True):
    """Split a stream into responses. methods: the request methods in order (for HEAD).
    Interim (1xx) responses are included in the list. Returns (responses, leftover bytes).
    The stream is first checked by h11 (wirecheck): excess bytes fail here, whoever read
    them, and both parsers must agree on every response."""
    wire = wirecheck.check_stream(data, methods, eof)
    out, rest = _split_responses(data, methods, eof)
    for i, (ours, theirs) in enumerate(zip(out, wire.responses)):
        if (ours.status, ours.body) != (theirs["status"], theirs["body"]):
            raise AssertionError("response #%d: this parser read %d with %d body bytes, h11 "
                                 "read %d with %d" % (i + 1, ours.status, len(ours.body),
                                                      theirs["status"], len(theirs["body"])))
    return out, rest


def _split_responses(data, methods, eof):
    out = []
    i = 0
    pos = 0
    while pos < len(data):
        method = "GET"
        if methods is not None and i < len(methods):
            method = methods[i]
        got = parse_one(data[pos:], method, eof=eof)
        if got is None:
            break
        resp, used = got
        out.append(resp)
        pos += used
        if not 100 <= resp.status < 200:
            i += 1
    return out, data[pos:]


# ---------------------------------------------------------------------------------------------
# checks

IMF_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                    r"\d{2}:\d{2}:\d{2} GMT$")

_version = None


def server_version():
    """'netkit/<version>' from `netkit --version`."""
    global _version
    if _version is None:
        out = subprocess.run([harness.NETKIT, "--version"], capture_output=True,
                             timeout=10).stdout.decode().split()
        _version = "netkit/" + (out[1] if len(out) > 1 else "?")
    return _version


def http_date(ts):
    return email.utils.formatdate(ts, usegmt=True)


def check_common(test, resp, expect_length=True):
    """Date (IMF-fixdate, now), Server (netkit/<version>), exact Content-Length."""
    date = resp.header("Date")
    test.assertIsNotNone(date, "no Date in %r" % resp)
    test.assertRegex(date, IMF_RE)
    ts = email.utils.parsedate_to_datetime(date).timestamp()
    test.assertLess(abs(ts - time.time()), 5, "Date %r is not now" % date)
    test.assertEqual(resp.header("Server"), server_version())
    if 100 <= resp.status < 200 or resp.status == 204:
        test.assertIsNone(resp.header("Content-Length"),
                          "Content-Length in a %d response (RFC 9110 8.6)" % resp.status)
        return
    if resp.status == 304:
        return
    if expect_length:
        cl = resp.header("Content-Length")
        test.assertIsNotNone(cl, "no Content-Length in %r" % resp)
        test.assertEqual(int(cl), len(resp.body))


def _location_checked(begin):
    """http.client's HTTPResponse.begin, plus the Location check on responses from netkit
    (tests that use http.client or urllib get it without asking)."""
    def begin_and_check(self):
        begin(self)
        if (self.getheader("Server") or "").startswith("netkit/"):
            for location in self.msg.get_all("Location") or ():
                check_location(location)
    begin_and_check.location_checked = True
    return begin_and_check


if not getattr(http.client.HTTPResponse.begin, "location_checked", False):
    http.client.HTTPResponse.begin = _location_checked(http.client.HTTPResponse.begin)


def check_error(test, resp, status):
    """An error response: status, small HTML page, exact length."""
    test.assertEqual(resp.status, status, resp)
    check_common(test, resp)
    test.assertEqual(resp.header("Content-Type"), "text/html; charset=utf-8")
    test.assertGreater(len(resp.body), 0)
    test.assertLess(len(resp.body), 4096)


# ---------------------------------------------------------------------------------------------
# servers


class _ClassCleanup:
    """Lets harness.start register its cleanup on a TestCase class (for setUpClass)."""

    def __init__(self, cls):
        self.cls = cls

    def addCleanup(self, fn, *args, **kw):
        self.cls.addClassCleanup(fn, *args, **kw)


def class_owner(cls):
    return _ClassCleanup(cls)


def serve(owner, root, *args, workers=1, backend=None, listen=("127.0.0.1:0",), stdout=None,
          env=None):
    """Start `netkit http serve ROOT -l ... -w N [--backend B] ARGS`; returns harness.Server.
    owner: a TestCase (cleanup per test) or class_owner(cls)."""
    argv = ["http", "serve", root]
    for addr in listen:
        argv += ["-l", addr]
    argv += ["-w", str(workers)]
    if backend:
        argv += ["--backend", backend]
    argv += list(args)
    kw = {}
    if stdout is not None:
        kw["stdout"] = stdout
    srv = harness.start(owner, argv, listeners=len(listen), env=env, **kw)
    # Runs before the harness's SIGKILL: stop gracefully, and make sure no worker of this
    # server outlives it (workers are our grandchildren; killed by PID, only if still ours).
    owner.addCleanup(stop_tree, srv)
    return srv


def strace_refused():
    """Why strace cannot trace a child here (not installed, or ptrace refused), or None."""
    if not shutil.which("strace"):
        return "strace is not installed (scripts/install-deps test)"
    r = subprocess.run(["strace", "-f", "-o", "/dev/null", "true"],
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        return "strace cannot trace here: %s" % r.stderr.decode(errors="replace").strip()
    return None


def alive_pid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return None


def stop_tree(srv, timeout=10):
    if srv.proc.poll() is not None:
        return
    pids = proc_tree(srv.proc.pid)
    cmd = _cmdline(srv.proc.pid)
    srv.stop(signal.SIGTERM, timeout)
    for p in pids[1:]:
        if alive_pid(p) and _cmdline(p) == cmd:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def proc_tree(pid):
    """pid and all its descendants (live ones), from /proc."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids):
    """User+system CPU seconds of these processes (their own, not reaped children)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def socket_fds(pid):
    """Open sockets of a process, each counted once however many descriptors name it (the only
    worker of http serve keeps a second descriptor of each listener for SIGUSR2)."""
    seen = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:"):
                seen.add(target)
    except OSError:
        pass
    return len(seen)


# ---------------------------------------------------------------------------------------------
# docroot

ESCAPE_NAME = "<b>&\"x'.txt"
MTIME = 1577836800  # Wed, 01 Jan 2020 00:00:00 GMT
MTIME_HTTP = "Wed, 01 Jan 2020 00:00:00 GMT"
RANGE_DATA = b"0123456789abcdefghijklmnopqrstuvwxyz"  # 36 bytes


class Docroot:
    """base/secret.txt (outside), base/docroot/... (served)."""

    def __init__(self, base):
        self.base = base
        self.root = os.path.join(base, "docroot")
        self.secret = ("NETKIT-SECRET-" + uuid.uuid4().hex).encode()
        self.files = {}  # url path -> bytes

    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))

    def write(self, rel, data, mtime=None):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        with open(p, "wb") as f:
            f.write(data)
        if mtime is not None:
            os.utime(p, (mtime, mtime))
        self.files["/" + rel.lstrip("/")] = data
        return p


def build_docroot(owner, big=False):
    """Create the standard tree; owner gets the rmtree cleanup (TestCase or class_owner)."""
    base = tempfile.mkdtemp(prefix="netkit-httptest-")
    owner.addCleanup(shutil.rmtree, base, True)
    d = Docroot(base)
    os.mkdir(d.root)
    with open(os.path.join(base, "secret.txt"), "wb") as f:
        f.write(d.secret)
    os.mkdir(os.path.join(base, "outside"))
    with open(os.path.join(base, "outside", "secret.txt"), "wb") as f:
        f.write(d.secret)

    d.write("index.html", "<!DOCTYPE html><title>root index</title>ROOT-INDEX\n")
    d.write("hello.txt", "hello, world\n")
    d.write("page.html", "<!DOCTYPE html><p>page</p>\n")
    d.write("style.css", "body { color: red }\n")
    d.write("app.js", "console.log('app');\n")
    d.write("image.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    d.write("blob.zzqqx", b"\x00\x01unknown extension\xff")
    d.write("range.txt", RANGE_DATA, mtime=MTIME)
    d.write("a b.txt", "space in name\n")
    d.write("caf\u00e9.txt", "utf-8 name\n")
    d.write("%2e", "literal percent name\n")
    d.write(".hidden", "HIDDEN-DOTFILE\n")
    d.write(".git/config", "[core]\nGIT-CONFIG-DOTDIR\n")
    d.write("sub/index.html", "<!DOCTYPE html>SUB-INDEX\n")
    d.write("sub/a.txt", "sub a\n")
    d.write("sub/.hidden", "SUB-HIDDEN\n")
    # listing directory (no index)
    d.write("listing/alpha.txt", "a")
    d.write("listing/mid.txt", "mm")
    d.write("listing/zeta.txt", "zzz")
    d.write("listing/sized.bin", b"s" * 12345)
    d.write("listing/" + ESCAPE_NAME, "escape me")
    d.write("listing/.dotfile", "dot")
    os.mkdir(d.path("listing/adir"))
    os.mkdir(d.path("listing/bdir"))
    os.mkdir(d.path("empty"))
    # gzip sidecars
    d.write("gz/page.html", "<!DOCTYPE html>PLAIN-PAGE-CONTENT\n")
    d.write("gz/page.html.gz", gzip.compress(b"<!DOCTYPE html>GZIPPED-PAGE-CONTENT\n"))
    d.write("gz/style.css", "body{} /* plain css */\n")
    d.write("gz/style.css.gz", gzip.compress(b"body{} /* gzipped css */\n"))
    d.write("gz/nogz.txt", "no sidecar here\n")
    # a sidecar left older than its file (the file was edited since) must not be served
    d.write("gz/edited.txt.gz", gzip.compress(b"OLD CONTENT\n"), mtime=1_000_000_000)
    d.write("gz/edited.txt", "new content, edited after the sidecar was made\n")
    # symlinks
    os.symlink("../secret.txt", d.path("link_out"))
    os.symlink(os.path.join(base, "secret.txt"), d.path("link_abs_out"))
    os.symlink("../outside", d.path("linkdir_out"))
    os.symlink("hello.txt", d.path("link_in"))
    os.symlink("sub", d.path("linkdir_in"))
    # pipelining / keep-alive files with distinct content
    for i in range(20):
        d.write("seq/f%02d.txt" % i, "file number %02d\n" % i * (i + 1))
    d.write("medium.bin", os.urandom(65536))
    if big:
        d.write("big.bin", os.urandom(10 * 1024 * 1024))
    return d
