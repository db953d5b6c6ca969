"""HTTP/2 on the wire for the tests of `http serve` over h2: frames made byte by byte (valid ones
through hyperframe, broken ones by hand: a 9-byte header and a payload), header blocks through
hpack, a reader that takes whatever the server sends apart, and a small well-behaved client.

Nothing here hides a protocol error: the reader records every frame as it came (kept for the
failure messages), and only the client of Conn.get() answers the server's PINGs and grants
flow-control window, as a real client would.
"""
import hashlib
import select
import socket
import ssl
import struct
import time

from debian_modules import import_debian

try:
    hpack, hf = import_debian("hpack", "hyperframe.frame")
except ImportError:
    hpack = hf = None

AVAILABLE = hpack is not None and hf is not None
MISSING = "python3-hpack and python3-hyperframe are needed to speak HTTP/2 (Debian packages)"

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
TYPE_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
              "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]

END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM, INADEQUATE_SECURITY, HTTP_1_1_REQUIRED = range(14)
ERROR_NAMES = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
               "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
               "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY",
               "HTTP_1_1_REQUIRED"]

HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = range(1, 7)

MAX_WINDOW = 2 ** 31 - 1
DEFAULT_MAX_FRAME = 16384


def error_name(code):
    return ERROR_NAMES[code] if 0 <= code < len(ERROR_NAMES) else "0x%x" % code


def type_name(t):
    return TYPE_NAMES[t] if 0 <= t < len(TYPE_NAMES) else "type 0x%x" % t


# ---------------------------------------------------------------------------------------------
# frames

def frame(ftype, flags, sid, payload=b"", length=None):
    """A frame as bytes, anything allowed: length (the 24-bit field) may lie about the payload,
    sid may carry the reserved bit."""
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


def _flags(f, end_stream=False, end_headers=False):
    if end_stream:
        f.flags.add("END_STREAM")
    if end_headers:
        f.flags.add("END_HEADERS")
    return f


def data(sid, payload=b"", end_stream=False, pad=None):
    f = hf.DataFrame(sid, data=payload)
    if pad is not None:
        f.flags.add("PADDED")
        f.pad_length = pad
    return _flags(f, end_stream).serialize()


def headers(sid, block, end_stream=True, end_headers=True, pad=None, depends_on=None, weight=16,
            exclusive=False):
    """HEADERS carrying block (already encoded); with depends_on, the PRIORITY fields."""
    f = hf.HeadersFrame(sid, data=block)
    if pad is not None:
        f.flags.add("PADDED")
        f.pad_length = pad
    if depends_on is not None:
        f.flags.add("PRIORITY")
        f.depends_on, f.stream_weight, f.exclusive = depends_on, weight - 1, exclusive
    return _flags(f, end_stream, end_headers).serialize()


def continuation(sid, block, end_headers=True):
    return _flags(hf.ContinuationFrame(sid, data=block), end_headers=end_headers).serialize()


def priority(sid, depends_on=0, weight=16, exclusive=False):
    return hf.PriorityFrame(sid, depends_on=depends_on, stream_weight=weight - 1,
                            exclusive=exclusive).serialize()


def rst_stream(sid, code=CANCEL):
    return hf.RstStreamFrame(sid, error_code=code).serialize()


def settings(*pairs, ack=False):
    """SETTINGS with (id, value) pairs in order (ids may repeat or be unknown)."""
    payload = b"".join(struct.pack(">HI", k, v) for k, v in pairs)
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def ping(opaque=b"\x01\x02\x03\x04\x05\x06\x07\x08", ack=False):
    f = hf.PingFrame(0, opaque_data=opaque)
    if ack:
        f.flags.add("ACK")
    return f.serialize()


def goaway(last_sid=0, code=NO_ERROR, debug=b""):
    return hf.GoAwayFrame(0, last_stream_id=last_sid, error_code=code,
                          additional_data=debug).serialize()


def window_update(sid, increment):
    """WINDOW_UPDATE by hand: hyperframe refuses an increment of 0, which tests need."""
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment))


def request_fields(method="GET", path="/hello.txt", authority="127.0.0.1", scheme="http",
                   extra=()):
    """The fields of a request, pseudo-header fields first, as (name, value) pairs."""
    out = [(":method", method), (":scheme", scheme), (":authority", authority), (":path", path)]
    return out + list(extra)


def hpack_int(value, prefix_bits, first=0):
    """An HPACK integer (RFC 7541 5.1) with the bits of its first octet above the prefix."""
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out = [first | top]
    value -= top
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_literal(name, value, index=False):
    """A literal field with a literal name, not Huffman coded: incremental indexing (index=True,
    RFC 7541 6.2.1) or without indexing (6.2.2). Any bytes go, upper case and NULs included."""
    if isinstance(name, str):
        name = name.encode()
    if isinstance(value, str):
        value = value.encode()
    return (b"\x40" if index else b"\x00") + hpack_int(len(name), 7) + name + \
        hpack_int(len(value), 7) + value


def hpack_indexed(index):
    return hpack_int(index, 7, 0x80)


def raw_block(fields):
    """A header block of literal fields without indexing, exactly as given (no lower-casing, no
    validation): for the fields an encoder would refuse or fix."""
    return b"".join(hpack_literal(n, v) for n, v in fields)


# ---------------------------------------------------------------------------------------------
# reading

class Frame:
    __slots__ = ("type", "flags", "sid", "payload")

    def __init__(self, ftype, flags, sid, payload):
        self.type, self.flags, self.sid, self.payload = ftype, flags, sid, payload

    def __repr__(self):
        extra = ""
        if self.type == GOAWAY and len(self.payload) >= 8:
            last, code = struct.unpack(">II", self.payload[:8])
            extra = " last=%d %s %r" % (last & MAX_WINDOW, error_name(code), self.payload[8:80])
        elif self.type == RST_STREAM and len(self.payload) == 4:
            extra = " " + error_name(struct.unpack(">I", self.payload)[0])
        elif self.type == WINDOW_UPDATE and len(self.payload) == 4:
            extra = " +%d" % struct.unpack(">I", self.payload)[0]
        elif self.type == SETTINGS and not self.flags & ACK:
            extra = " %r" % parse_settings(self.payload)
        return "%s(sid=%d flags=0x%x len=%d%s)" % (type_name(self.type), self.sid, self.flags,
                                                   len(self.payload), extra)


def parse_settings(payload):
    return [struct.unpack(">HI", payload[i:i + 6]) for i in range(0, len(payload) - 5, 6)]


def _unpad(f):
    body = f.payload
    if f.flags & PADDED:
        body = body[1:len(body) - body[0]] if body else b""
    if f.type == HEADERS and f.flags & PRIORITY_FLAG:
        body = body[5:]
    return body


class Response:
    def __init__(self):
        self.headers = None  # [(name, value)] of the first (final) field block
        self.trailers = None
        self.informational = []
        self.body = bytearray()
        self.ended = False

    @property
    def status(self):
        for name, value in self.headers or ():
            if name == ":status":
                return int(value)
        return None

    def header(self, name):
        for n, v in self.headers or ():
            if n == name:
                return v
        return None


class Events:
    """What a connection received: every frame in order, and the state they add up to."""

    def __init__(self):
        self.frames = []
        self.times = []  # time.monotonic() when each frame was read
        self.goaway = None  # (last_sid, code, debug)
        self.rst = {}  # sid -> code
        self.streams = {}  # sid -> Response
        self.ping_acks = []
        self.pings = []  # the server's own PINGs (not ACKs)
        self.settings = []  # the server's SETTINGS frames (lists of pairs), in order
        self.settings_acks = 0
        self.window_updates = []  # (sid, increment)
        self.eof = False
        self.reset = False
        self.http1 = None  # the bytes of an HTTP/1.x answer, when that is what came
        self.decode_error = None

    def describe(self, limit=40):
        shown = [repr(f) for f in self.frames[:limit]]
        if len(self.frames) > limit:
            shown.append("... %d more" % (len(self.frames) - limit))
        if self.http1 is not None:
            shown.append("HTTP/1.x answer %r" % self.http1[:200])
        if self.eof:
            shown.append("connection reset" if self.reset else "EOF")
        return "[" + ", ".join(shown) + "]"


class Conn:
    """One HTTP/2 connection to addr: cleartext h2c with prior knowledge, or TLS with ALPN
    (tls=an ssl.SSLContext). Nothing is sent until the caller says so."""

    def __init__(self, addr, tls=None, timeout=5.0, rcvbuf=None, server_hostname=None):
        self.addr = addr
        s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET)
        s.settimeout(timeout)
        if rcvbuf is not None:
            # set before connect, so the window scale the kernel offers follows it
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        try:
            s.connect(addr)
            if tls is not None:
                s = tls.wrap_socket(s, server_hostname=server_hostname)
        except BaseException:
            s.close()
            raise
        self.sock = s
        self.buf = bytearray()
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_header_list_size = 1 << 24
        self.ev = Events()
        self.server_settings = {}
        self.sent = []  # what was sent, for failure messages
        self.next_sid = 1
        self._block = None  # (sid, bytes) of a field block waiting for its CONTINUATION
        self.answer_pings = False
        self.grant_window = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def fileno(self):
        return self.sock.fileno()

    def send(self, data):
        """Send all of data; False when the server had closed the connection."""
        self.sent.append(bytes(data[:4096]))
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            return False
        except socket.timeout:
            return False

    def block(self, fields, huffman=True):
        """fields encoded with this connection's HPACK encoder (its dynamic table follows the
        server's: every block must be sent, in order)."""
        return self.enc.encode(fields, huffman=huffman)

    def handshake(self, client_settings=(), deadline=None):
        """Preface and SETTINGS; waits for the server's SETTINGS (the first frame it must
        send) and acknowledges them. Returns the server's settings as a dict."""
        self.send(PREFACE + settings(*client_settings))
        deadline = deadline or time.monotonic() + 5
        while True:
            f = self.read_frame(deadline)
            if f is None:
                raise AssertionError("no SETTINGS from the server: %s" % self.ev.describe())
            if f.type == SETTINGS and not f.flags & ACK:
                break
            raise AssertionError("the server's first frame is not SETTINGS: %s"
                                 % self.ev.describe())
        self.send(settings(ack=True))
        return self.server_settings

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("nothing more by the deadline")
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            pass
        else:
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                raise socket.timeout("nothing more by the deadline")
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(262144)
        except (ConnectionResetError, ConnectionAbortedError):
            self.ev.reset = True
            chunk = b""
        except ssl.SSLError:
            chunk = b""
        if not chunk:
            self.ev.eof = True
            return False
        self.buf += chunk
        return True

    def read_frame(self, deadline):
        """The next frame, recorded in self.ev; None at EOF. socket.timeout past the deadline."""
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            if self.ev.eof:
                return None
            if len(self.buf) >= 5 and self.buf[:5] == b"HTTP/":
                # an HTTP/1.x answer: keep all of it
                while self._fill(deadline):
                    pass
                self.ev.http1 = bytes(self.buf)
                return None
            if not self._fill(deadline):
                if self.buf[:5] == b"HTTP/":
                    self.ev.http1 = bytes(self.buf)
                return None
        n = int.from_bytes(self.buf[:3], "big")
        ftype, flags, sid = struct.unpack(">BBI", self.buf[3:9])
        f = Frame(ftype, flags, sid & MAX_WINDOW, bytes(self.buf[9:9 + n]))
        del self.buf[:9 + n]
        self._record(f)
        return f

    def _record(self, f):
        ev = self.ev
        ev.frames.append(f)
        ev.times.append(time.monotonic())
        if f.type == SETTINGS:
            if f.flags & ACK:
                ev.settings_acks += 1
            else:
                pairs = parse_settings(f.payload)
                ev.settings.append(pairs)
                self.server_settings.update(dict(pairs))
        elif f.type == PING and len(f.payload) == 8:
            if f.flags & ACK:
                ev.ping_acks.append(f.payload)
            else:
                ev.pings.append(f.payload)
                if self.answer_pings:
                    self.send(ping(f.payload, ack=True))
        elif f.type == GOAWAY and len(f.payload) >= 8:
            last, code = struct.unpack(">II", f.payload[:8])
            if ev.goaway is None or code != NO_ERROR:
                ev.goaway = (last & MAX_WINDOW, code, f.payload[8:])
        elif f.type == RST_STREAM and len(f.payload) == 4:
            ev.rst[f.sid] = struct.unpack(">I", f.payload)[0]
        elif f.type == WINDOW_UPDATE and len(f.payload) == 4:
            ev.window_updates.append((f.sid, struct.unpack(">I", f.payload)[0] & MAX_WINDOW))
        elif f.type in (HEADERS, CONTINUATION):
            body = _unpad(f) if f.type == HEADERS else f.payload
            if f.type == HEADERS:
                self._block = (f.sid, bytearray(body), bool(f.flags & END_STREAM))
            elif self._block is not None:
                self._block[1].extend(body)
            if f.flags & END_HEADERS and self._block is not None:
                sid, block, end = self._block
                self._block = None
                self._fields(sid, bytes(block), end)
        elif f.type == DATA:
            r = ev.streams.setdefault(f.sid, Response())
            body = _unpad(f)
            r.body += body
            if f.flags & END_STREAM:
                r.ended = True
            if self.grant_window and f.payload:
                # what a reader that keeps up gives back: all it consumed, padding included
                self.send(window_update(0, len(f.payload)) +
                          (window_update(f.sid, len(f.payload)) if not r.ended else b""))

    def _fields(self, sid, block, end):
        r = self.ev.streams.setdefault(sid, Response())
        try:
            fields = [(n.decode("latin-1"), v.decode("latin-1"))
                      for n, v in self.dec.decode(block, raw=True)]
        except Exception as e:  # what the server sent cannot be decoded: recorded, not raised
            self.ev.decode_error = "%s: %s" % (type(e).__name__, e)
            fields = []
        status = dict(fields).get(":status")
        if r.headers is None and status is not None and status.startswith("1") and not end:
            r.informational.append(fields)
        elif r.headers is None:
            r.headers = fields
        else:
            r.trailers = fields
        if end:
            r.ended = True

    def collect(self, until, deadline):
        """Read frames until until(self.ev) is true, EOF or the deadline; returns until(ev)."""
        while not until(self.ev):
            try:
                if self.read_frame(deadline) is None:
                    break
            except socket.timeout:
                break
            except OSError:
                self.ev.eof = self.ev.reset = True
                break
        return until(self.ev)

    def poll(self):
        """Read and record whatever has already arrived, without waiting."""
        while not self.ev.eof:
            try:
                self.read_frame(time.monotonic() + 0.001)
            except socket.timeout:
                return
            except OSError:
                self.ev.eof = self.ev.reset = True
                return

    def ended(self):
        """The server ended the connection or said it will (a GOAWAY with an error code)."""
        return self.ev.eof or (self.ev.goaway is not None and self.ev.goaway[1] != NO_ERROR)

    def wait_closed(self, deadline):
        """Read (and record) until EOF; True if it came by the deadline."""
        return self.collect(lambda ev: ev.eof, deadline)

    def request(self, fields, body=None, sid=None):
        """Send a request: HEADERS (END_STREAM without body), then DATA; returns its stream."""
        if sid is None:
            sid = self.next_sid
        self.next_sid = max(self.next_sid, sid + 2)
        out = headers(sid, self.block(fields), end_stream=body is None)
        if body is not None:
            out += data(sid, body, end_stream=True)
        self.send(out)
        return sid

    def response(self, sid, deadline):
        """Wait for the whole response of stream sid (window granted, PINGs answered)."""
        self.answer_pings = self.grant_window = True
        ok = self.collect(lambda ev: (sid in ev.streams and ev.streams[sid].ended) or
                          sid in ev.rst or ev.goaway is not None, deadline)
        r = self.ev.streams.get(sid)
        if not ok or r is None or not r.ended:
            raise AssertionError("no complete response on stream %d: %s"
                                 % (sid, self.ev.describe()))
        return r


def tls_context(alpn=("h2",)):
    """A client context for the self-signed test servers: no chain to check (the caller compares
    the certificate with the fingerprint the server printed), ALPN offered as given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def cert_sha256(sock):
    return hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()


def get(addr, path="/hello.txt", timeout=5.0, tls=None, extra=()):
    """One GET on a fresh connection, as a well-behaved client does it: (Response, Conn
    closed). Raises AssertionError when no complete response comes within timeout."""
    deadline = time.monotonic() + timeout
    with Conn(addr, tls=tls, timeout=timeout) as c:
        c.handshake(deadline=deadline)
        sid = c.request(request_fields(path=path, scheme="https" if tls else "http",
                                       extra=extra))
        return c.response(sid, deadline)
