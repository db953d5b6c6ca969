"""Wire-level checks of what `netkit http serve` sends, with an independent parser (h11).

The tests' own response parser was written alongside the server and shares its blind spots;
h11 (client role) is strict and was not. Every byte a test reads through the shared helpers
goes through a WireChecker, which fails the test as soon as:

- a response is malformed (status line, field syntax, framing fields), or
- bytes follow a response that are not the start of the next response: a body longer than
  its Content-Length (or than the nothing a HEAD, 204 or 304 carries) leaks into the stream,
  and any byte at all after a response that ends the connection (Connection: close, or a
  close-delimited body) is excess.

A connection the server closes mid-response is recorded (`truncated`), not failed: a server
that cannot finish a response has no other way to say so. Over TLS (CheckedSSLSocket) a body
delimited by the close must end with close_notify, the only way to tell its end from a cut. Every response with a Location is
also checked by locationcheck.check_location.

h11 must interpret each response against the request it answers (a HEAD response has no
body); RequestScanner recovers the request methods from the bytes the client sent, leniently,
since hostile tests send malformed requests on purpose.
"""
import collections
import socket

import harness

from debian_modules import import_debian
from locationcheck import location_problem


def _import_h11():
    try:
        return import_debian("h11")[0]
    except ImportError:
        raise ImportError("the wire check needs h11: run scripts/install-deps "
                          "(Debian package python3-h11)")


h11 = _import_h11()


class WireError(AssertionError):
    """The server sent something that is not a well-formed sequence of HTTP/1.1 responses."""


# ---------------------------------------------------------------------------------------------
# requests sent


class RequestScanner:
    """The methods of the requests written on a connection, in order, from the raw bytes.
    Lenient: it stops (and later responses are taken as answering GET) at anything it cannot
    frame, which is where a correct server stops answering too."""

    MAX_HEAD = 1 << 20

    def __init__(self):
        self.buf = bytearray()
        self.methods = collections.deque()
        self.body_left = 0         # bytes of a Content-Length body still to skip
        self.chunked = False       # inside a chunked body
        self.lost = False

    def feed(self, data):
        if self.lost:
            return
        self.buf += data
        while not self.lost and self._step():
            pass

    def _step(self):
        """Consume one piece (a head, a body, a chunk); False when more bytes are needed."""
        if self.body_left:
            n = min(self.body_left, len(self.buf))
            del self.buf[:n]
            self.body_left -= n
            return n > 0 and bool(self.buf)
        if self.chunked:
            return self._chunk()
        while self.buf[:2] == b"\r\n" or self.buf[:1] == b"\n":
            del self.buf[:2 if self.buf[:1] == b"\r" else 1]
        end = self.buf.find(b"\r\n\r\n")
        size = 4
        lf = self.buf.find(b"\n\n")
        if lf >= 0 and (end < 0 or lf < end):
            end, size = lf, 2
        if end < 0:
            if len(self.buf) > self.MAX_HEAD:
                self.lost = True
            return False
        head = bytes(self.buf[:end])
        del self.buf[:end + size]
        lines = head.replace(b"\r\n", b"\n").split(b"\n")
        parts = lines[0].split()
        self.methods.append(parts[0].decode("latin-1") if parts else "")
        te, cl = [], []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            name = name.strip().lower()
            if name == b"transfer-encoding":
                te += [t.strip().lower() for t in value.split(b",")]
            elif name == b"content-length":
                cl.append(value.strip())
        if te:
            if te[-1] != b"chunked":
                self.lost = True
            self.chunked = True
        elif cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                self.lost = True
            else:
                self.body_left = int(cl[0])
        return bool(self.buf)

    def _chunk(self):
        eol = self.buf.find(b"\r\n")
        if eol < 0:
            return False
        line = bytes(self.buf[:eol]).split(b";")[0].strip()
        try:
            size = int(line, 16)
        except ValueError:
            self.lost = True
            return False
        if size == 0:
            end = self.buf.find(b"\r\n\r\n", eol)  # trailers end with an empty line
            if end < 0:
                return False
            del self.buf[:end + 4]
            self.chunked = False
            return bool(self.buf)
        if len(self.buf) < eol + 2 + size + 2:
            return False
        del self.buf[:eol + 2 + size + 2]
        return bool(self.buf)

    def next_method(self):
        """The method the next response answers, as h11 needs it (only HEAD changes framing)."""
        m = self.methods.popleft() if self.methods else "GET"
        return "HEAD" if m == "HEAD" else "GET"


# ---------------------------------------------------------------------------------------------
# responses received

_STATUS_TEMPLATE = b"HTTP/9.9 999 "


def could_start_response(data):
    """True when data is a prefix of (or starts with) an HTTP/1.x status line."""
    for i, c in enumerate(data[:len(_STATUS_TEMPLATE)]):
        t = _STATUS_TEMPLATE[i]
        if t == ord("9"):
            if not 0x30 <= c <= 0x39:
                return False
        elif c != t:
            return False
    return True


def _framing(resp):
    if resp is None:
        return "?"
    fields = dict((k.lower(), v) for k, v in resp["headers"])
    if b"transfer-encoding" in fields:
        return "Transfer-Encoding: %s" % fields[b"transfer-encoding"].decode("latin-1")
    if b"content-length" in fields:
        return "Content-Length: %s" % fields[b"content-length"].decode("latin-1")
    return "no length"


class WireChecker:
    """Feed it what the client sent (sent) and what it received (received; b"" is EOF)."""

    def __init__(self, keep_bodies=False):
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 20)
        self.requests = RequestScanner()
        self.keep_bodies = keep_bodies
        self.responses = []   # dicts: status, headers, method, length, body (if kept)
        self.current = None
        self.closed = False
        self.truncated = False
        self.error = None     # the first WireError; it is raised again on every later feed
        self.method = "GET"   # what the response being read answers
        self.window = bytearray()  # bytes received since the end of the last whole response

    def sent(self, data):
        self.requests.feed(bytes(data))

    def received(self, data, clean=True):
        """data: bytes as read; b"" is the EOF, clean=False when it came over TLS without
        close_notify."""
        if self.error is not None:
            raise self.error
        if self.closed:
            return
        if not data:
            self.closed = True
        self.window += data
        self.conn.receive_data(bytes(data))
        try:
            self._drain()
            if not data and not clean:
                self._check_tls_close()
        except WireError as e:
            self.error = e
            raise

    def _check_tls_close(self):
        """Over TLS only the close_notify tells the end of a body delimited by the close from a
        truncation (RFC 9112 9.8): such a body must end with one."""
        last = self.responses[-1] if self.responses else None
        if (last is not None and self.current is None and _framing(last) == "no length"
                and last["method"] != "HEAD" and last["status"] not in (204, 304)
                and last["status"] >= 200):
            raise WireError("wire check: response #%d (%s %d) has a body delimited by the "
                            "close, and the TLS connection ended without close_notify: a "
                            "truncation cannot be told from its end"
                            % (len(self.responses), last["method"], last["status"]))

    def _fail(self, what):
        last = self.responses[-1] if self.responses else None
        pending = bytes(self.window)
        where = ("after response #%d (%s %d, %s)"
                 % (len(self.responses), last["method"], last["status"], _framing(last))
                 if last else "in the first response")
        if self.current is not None:
            where = "in response #%d (%s %d, %s)" % (
                len(self.responses) + 1, self.current["method"], self.current["status"],
                _framing(self.current))
        raise WireError("wire check: %s %s; the bytes from there: %r"
                        % (what, where, pending[:200]))

    def _next_event(self):
        state = self.conn.their_state
        try:
            return self.conn.next_event()
        except h11.RemoteProtocolError as e:
            pending = bytes(self.window)
            if state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
                self._fail("%d excess bytes (anything is excess once a response ends the "
                           "connection; %s)" % (len(pending), e))
            if self.closed and "peer closed" in str(e) and state is h11.SEND_BODY:
                self.truncated = True  # closed mid-body
                return None
            if (self.closed and state in (h11.IDLE, h11.SEND_RESPONSE)
                    and could_start_response(pending) and b"\r\n\r\n" not in pending):
                self.truncated = True  # closed mid-head
                return None
            if self.current is None and self.responses:
                self._fail("excess bytes: what follows the declared end is not a valid "
                           "response (%s)" % e)
            self._fail("malformed response (%s)" % e)

    def _drain(self):
        c = self.conn
        while True:
            pending, _ = c.trailing_data
            if pending and c.our_state is h11.DONE and c.their_state is h11.DONE:
                c.start_next_cycle()
            if pending and c.our_state is h11.IDLE:
                self.method = self.requests.next_method()
                c.send(h11.Request(method=self.method, target="/",
                                   headers=[("Host", "wirecheck")]))
                c.send(h11.EndOfMessage())
            event = self._next_event()
            if event is None or event is h11.NEED_DATA:
                rest = bytes(self.window)
                if self.current is None and rest and not could_start_response(rest):
                    if self.responses:
                        self._fail("excess bytes: what follows the declared end does not start "
                                   "a response")
                    self._fail("bytes that do not start a response")
                return
            if event is h11.PAUSED:
                if c.our_state is h11.DONE and c.their_state is h11.DONE:
                    continue
                return
            if isinstance(event, h11.ConnectionClosed):
                return
            if isinstance(event, (h11.Response, h11.InformationalResponse)):
                resp = {"status": event.status_code, "headers": list(event.headers),
                        "method": self.method,
                        "length": 0, "body": []}
                self._check_fields(resp)
                if isinstance(event, h11.InformationalResponse):
                    del self.window[:len(self.window) - len(c.trailing_data[0])]
                    resp["body"] = b""
                    self.responses.append(resp)
                else:
                    self.current = resp
            elif isinstance(event, h11.Data):
                del self.window[:len(self.window) - len(c.trailing_data[0])]
                self.current["length"] += len(event.data)
                if self.keep_bodies:
                    self.current["body"].append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                del self.window[:len(self.window) - len(c.trailing_data[0])]
                self.current["body"] = b"".join(self.current["body"])
                self.responses.append(self.current)
                self.current = None

    def _check_fields(self, resp):
        for name, value in resp["headers"]:
            if name.lower() == b"location":
                problem = location_problem(value.decode("latin-1"))
                if problem is not None:
                    self.current = resp
                    raise WireError("wire check: response #%d (%s %d) has a bad Location %r: %s"
                                    % (len(self.responses) + 1, resp["method"], resp["status"],
                                       value, problem))


def check_stream(data, methods=None, eof=True):
    """Check a whole stream read from one connection; returns the WireChecker (its
    .responses). methods: the request methods in order (default: every one GET).
    eof: the stream ended because the server closed."""
    w = WireChecker(keep_bodies=True)
    if methods is not None:
        w.requests.methods.extend(methods)
        w.requests.lost = True  # the given methods are the whole truth
    w.received(data)
    if eof:
        w.received(b"")
    return w


# ---------------------------------------------------------------------------------------------
# a socket that checks what it receives


class CheckedSocket(socket.socket):
    """A client stream socket whose every send and recv goes through a WireChecker, so a
    test reading raw bytes fails at the first byte the server should not have sent."""

    def __init__(self, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0, fileno=None):
        super().__init__(family, type, proto, fileno)
        self.wire = WireChecker()

    def send(self, data, flags=0):
        n = super().send(data, flags)
        self.wire.sent(memoryview(data)[:n])
        return n

    def sendall(self, data, flags=0):
        super().sendall(data, flags)
        self.wire.sent(data)

    def recv(self, bufsize, flags=0):
        data = super().recv(bufsize, flags)
        if not flags & socket.MSG_PEEK:
            self.wire.received(data)
        return data


class CheckedSSLSocket(harness.PinnedSSLSocket):
    """CheckedSocket over TLS: the same checks on the plaintext (sendall goes through send)."""

    wire = None  # created with the first byte: ssl.SSLSocket objects skip __init__

    def _checker(self):
        if self.wire is None:
            self.wire = WireChecker()
        return self.wire

    def send(self, data, flags=0):
        n = super().send(data, flags)
        self._checker().sent(memoryview(data)[:n])
        return n

    def recv(self, bufsize=1024, flags=0):
        data = super().recv(bufsize, flags)
        self._checker().received(data, clean=bool(data) or not self.unclean_eof)
        return data
