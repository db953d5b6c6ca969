"""HTTP/1.1 in, HTTP/2 out: lets the tests' HTTP/1.1 clients reach `http serve` over h2.

The tests speak HTTP/1.1: raw bytes on sockets, http.client, urllib. Under
NETKIT_TEST_TRANSPORT=h2 (harness.py) each of their connections is a Bridge: the test holds
one end of a socketpair; a thread reads the HTTP/1.1 requests the test writes there (request
line, fields, a body framed by Content-Length or chunked, pipelined requests in order), sends
each as an HTTP/2 stream on one TLS connection that negotiated "h2" by ALPN (the server's
certificate checked against the fingerprint it printed), and writes each response back as
HTTP/1.1: a status line, the fields, the body as the server framed it (Content-Length) or
chunked when it gave no length.

What the test observes stays what an HTTP/1.1 server would show it:
- requests are answered one after the other, in order: the stream of a request is opened
  once the response before it has ended (a PUT then a GET of the same file must not race);
- the server's DATA is acknowledged (WINDOW_UPDATE) only once the test has taken the bytes
  from its socket, so a test that stops reading stops the server as TCP would;
- the test side is closed (EOF) after a response to a request that asked for the close
  (Connection: close, HTTP/1.0), when the server resets the stream or sends GOAWAY (after
  the streams it said it still answers), when the server's connection ends, and when the
  test ended its sending side with nothing left to answer;
- a head the bridge cannot parse is not guessed at: the test side is closed, so a test of
  HTTP/1.1 framing itself fails here rather than passing on the bridge's word.
"""
import collections
import http
import os
import select
import socket
import ssl
import sys
import threading
import time

from debian_modules import import_debian


def _import_h2():
    try:
        import_debian("h2.config", "h2.connection", "h2.errors", "h2.events", "h2.exceptions",
                      "h2.settings")
    except ImportError:
        raise ImportError("the h2 transport needs python3-h2: run scripts/install-deps")
    import h2
    return h2


h2 = _import_h2()
from h2.connection import ConnectionState  # noqa: E402  (after the path fix above)

# Fields that belong to one HTTP/1.1 connection and are forbidden in HTTP/2 (RFC 9113 8.2.2).
_HOP_FIELDS = {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
               b"upgrade", b"http2-settings"}

# HTTP/2 names are lower case; the test sees them as HTTP/1.1 servers usually write them.
_NAME_CASE = {b"www-authenticate": b"WWW-Authenticate", b"etag": b"ETag",
              b"content-md5": b"Content-MD5", b"x-xss-protection": b"X-XSS-Protection",
              b"dnt": b"DNT", b"te": b"TE"}

WINDOW = 1 << 18         # per stream, and added to the connection's: what the server sends ahead
MAX_BUFFERED = 1 << 20   # request bytes held before the bridge stops reading the test's socket
HELD_BACK = 1 << 16      # answer bytes the test has not taken past which the server's are left
                         # unread, as a stalled client leaves them in its socket
LINGER_S = 5.0           # how long a closing bridge reads and drops what the test still sends
MAX_HEAD = 1 << 20       # a request head longer than this is not HTTP the bridge can carry


def _title(name):
    known = _NAME_CASE.get(name)
    if known is not None:
        return known
    return b"-".join(p[:1].upper() + p[1:] for p in name.split(b"-"))


class _Request:
    def __init__(self, method, target, version, fields):
        self.method = method
        self.target = target
        self.version = version
        self.fields = fields           # [(lower-case name, value)]
        self.stream_id = None
        self.body = bytearray()        # parsed, not yet sent
        self.body_complete = False
        self.ended = False             # END_STREAM sent
        self.reset = False             # the stream was reset (by either side)
        self.response_ended = False
        self.chunked_out = False       # the response is written chunked
        self.trailers = []             # the request's, from a chunked body
        self.trailers_in = []          # the response's
        connection = b",".join(v for n, v in fields if n == b"connection").lower()
        tokens = [t.strip() for t in connection.split(b",")]
        if version == b"HTTP/1.0":
            self.close = b"keep-alive" not in tokens
        else:
            self.close = b"close" in tokens


class _Parser:
    """The test's byte stream as requests; heads and body pieces come out in order."""

    def __init__(self):
        self.buf = bytearray()
        self.state = "head"
        self.left = 0          # body bytes (Content-Length) or chunk bytes still to come
        self.current = None
        self.broken = False

    def feed(self, data, out):
        """Parse what data completes; out(kind, value): ("head", _Request), ("body", bytes),
        ("end", None) for each request's end."""
        self.buf += data
        while not self.broken:
            if not self._step(out):
                return

    def partial(self):
        """True when a request has begun and not ended."""
        return self.state != "head" or bool(self.buf.strip(b"\r\n"))

    def _step(self, out):
        if self.state == "head":
            while self.buf[:2] == b"\r\n" or self.buf[:1] == b"\n":
                del self.buf[:2 if self.buf[:1] == b"\r" else 1]
            end = self.buf.find(b"\r\n\r\n")
            size = 4
            lf = self.buf.find(b"\n\n")
            if lf >= 0 and (end < 0 or lf < end):
                end, size = lf, 2
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self.broken = True
                return False
            head = bytes(self.buf[:end])
            del self.buf[:end + size]
            req = self._head(head)
            if req is None:
                self.broken = True
                return False
            self.current = req
            out("head", req)
            te = [t.strip().lower() for n, v in req.fields if n == b"transfer-encoding"
                  for t in v.split(b",")]
            cl = [v.strip() for n, v in req.fields if n == b"content-length"]
            if te:
                if te[-1] != b"chunked":
                    self.broken = True
                    return False
                self.state = "chunk-size"
            elif cl:
                if len(set(cl)) != 1 or not cl[0].isdigit():
                    self.broken = True
                    return False
                self.left = int(cl[0])
                self.state = "body"
                if self.left == 0:
                    self._end(out)
            else:
                self._end(out)
            return True
        if self.state == "body":
            if not self.buf:
                return False
            n = min(self.left, len(self.buf))
            out("body", bytes(self.buf[:n]))
            del self.buf[:n]
            self.left -= n
            if self.left == 0:
                self._end(out)
            return True
        if self.state == "chunk-size":
            eol = self.buf.find(b"\r\n")
            if eol < 0:
                if len(self.buf) > 4096:
                    self.broken = True
                return False
            line = bytes(self.buf[:eol]).split(b";")[0].strip()
            del self.buf[:eol + 2]
            try:
                self.left = int(line, 16)
            except ValueError:
                self.broken = True
                return False
            self.state = "chunk-data" if self.left else "trailers"
            return True
        if self.state == "chunk-data":
            if self.left:
                if not self.buf:
                    return False
                n = min(self.left, len(self.buf))
                out("body", bytes(self.buf[:n]))
                del self.buf[:n]
                self.left -= n
                return True
            if len(self.buf) < 2:
                return False
            if self.buf[:2] != b"\r\n":
                self.broken = True
                return False
            del self.buf[:2]
            self.state = "chunk-size"
            return True
        if self.state == "trailers":
            eol = self.buf.find(b"\r\n")
            if eol < 0:
                return False
            line = bytes(self.buf[:eol])
            del self.buf[:eol + 2]
            if line:
                name, sep, value = line.partition(b":")
                if sep:
                    self.current.trailers.append((name.strip().lower(), value.strip()))
                return True
            self._end(out)
            return True
        return False

    def _end(self, out):
        self.state = "head"
        out("end", None)
        self.current = None

    @staticmethod
    def _head(head):
        lines = head.replace(b"\r\n", b"\n").split(b"\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[0] or not parts[1] or parts[2] not in (b"HTTP/1.1",
                                                                                 b"HTTP/1.0"):
            return None
        fields = []
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):
                return None  # obs-fold: HTTP/1.1 framing, no HTTP/2 form
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                return None
            fields.append((name.lower(), value.strip(b" \t")))
        return _Request(parts[0], parts[1], parts[2], fields)


class _Connection(h2.connection.H2Connection):
    """h2's client connection, reading on after a GOAWAY: the streams up to its last stream
    id still complete (RFC 9113 6.8), where h2 4.1 refuses every frame after it. The bridge
    opens no stream after a GOAWAY."""

    def _receive_goaway_frame(self, frame):
        event = h2.events.ConnectionTerminated()
        event.error_code = h2.connection._error_code_from_int(frame.error_code)
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


class Bridge:
    """One test connection carried over one HTTP/2 connection (see the module's comment)."""

    def __init__(self, tls, test_end):
        self.tls = tls
        self.sock = test_end
        self.conn = _Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False))
        self.parser = _Parser()
        self.requests = collections.deque()   # not yet answered in full, in order
        self.parsing = None                    # the request whose body is being read
        self.streams = {}                      # stream id -> _Request
        self.to_test = bytearray()
        self.written = 0                       # bytes handed to the test so far
        self.acks = collections.deque()        # (offset, stream id, flow-controlled length)
        self.to_server = bytearray()
        self.test_eof = False
        self.server_gone = False
        self.goaway = False
        self.closing = False                   # close the test side once to_test is written
        self.done = False
        self.linger_reset = False              # the test asked for an RST on close
        self.write_failed = False              # the server takes no more bytes

    # -- the loop ---------------------------------------------------------------------------

    def start(self):
        self.conn.initiate_connection()
        self.conn.update_settings({
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
            # fewer, larger DATA frames: each frame costs the bridge's Python more than bytes
            h2.settings.SettingCodes.MAX_FRAME_SIZE: 1 << 16})
        self.conn.increment_flow_control_window(WINDOW)
        self.to_server += self.conn.data_to_send()
        self.tls.setblocking(False)
        self.sock.setblocking(False)
        t = threading.Thread(target=self._run, name="h2bridge", daemon=True)
        t.start()

    def _run(self):
        try:
            while not self.done:
                self._once()
        except Exception as e:  # noqa: BLE001 - the bridge ends; the test sees EOF
            self._log("bridge ended: %r" % (e,))
        finally:
            self._teardown()

    @staticmethod
    def _log(msg):
        if os.environ.get("NETKIT_H2BRIDGE_DEBUG"):
            sys.stderr.write("h2bridge: %s\n" % msg)

    def _once(self):
        events = {}
        held = len(self.to_server) + sum(len(r.body) for r in self.requests)
        if not self.test_eof and not self.closing and held < MAX_BUFFERED:
            events[self.sock.fileno()] = select.POLLIN
        else:
            events[self.sock.fileno()] = 0   # POLLHUP still comes: the test closed its socket
        if self.to_test:
            events[self.sock.fileno()] |= select.POLLOUT
        if self.write_failed:
            self.to_server.clear()
        reading = len(self.to_test) < HELD_BACK
        if not self.server_gone:
            events[self.tls.fileno()] = ((select.POLLIN if reading else 0)
                                         | (select.POLLOUT if self.to_server else 0))
        if reading and self.tls.pending() and not self.server_gone:
            ready = {self.tls.fileno(): select.POLLIN}
        else:
            p = select.poll()
            for fd, mask in events.items():
                p.register(fd, mask)
            ready = dict(p.poll(1000))
        test_ev = ready.get(self.sock.fileno(), 0)
        tls_ev = ready.get(self.tls.fileno(), 0)
        if test_ev & (select.POLLHUP | select.POLLERR) and not test_ev & select.POLLIN:
            # both directions closed: the test is gone, as a TCP client that closed (a mere
            # shutdown of its sending side reads as EOF below and is answered)
            self.done = True
            return
        if tls_ev & select.POLLOUT:
            self._write_server()
        if test_ev & select.POLLOUT:
            self._write_test()
        if tls_ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
            self._read_server()
        if test_ev & (select.POLLIN | select.POLLHUP):
            self._read_test()
        self._progress()

    def _progress(self):
        for req in list(self.streams.values()):
            self._pump(req)
        self._open_next()
        self._finish_if_idle()
        if not self.server_gone:
            self.to_server += self.conn.data_to_send()
        if self.closing and not self.to_test:
            self.done = True

    def _finish_if_idle(self):
        if self.closing:
            return
        if self.server_gone or (self.goaway and not self.streams):
            self.closing = True
        elif self.test_eof and not self.requests and self.parsing is None:
            self.closing = True

    # -- the test's side --------------------------------------------------------------------

    def _read_test(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.test_eof = True
            self._abandon_partial()
            return
        self.parser.feed(data, self._parsed)
        if self.parser.broken:
            # nothing after this can be framed: the requests before it are answered, then
            # the test side closes
            self._log("unparsable request bytes: %r" % bytes(self.parser.buf[:200]))
            self.test_eof = True
            self._abandon_partial()

    def _abandon_partial(self):
        """The test's bytes ended inside a request's body: that request cannot be finished.
        Its stream is cancelled; those before it are still answered."""
        req, self.parsing = self.parsing, None
        if req is None:
            return
        self._reset(req, h2.errors.ErrorCodes.CANCEL)
        if req in self.requests:
            self.requests.remove(req)

    def _parsed(self, kind, value):
        if kind == "head":
            self.parsing = value
            self.requests.append(value)
        elif kind == "body":
            self.parsing.body += value
        else:
            self.parsing.body_complete = True
            self.parsing = None

    def _write_test(self):
        try:
            n = self.sock.send(self.to_test[:262144])
        except BlockingIOError:
            return
        except OSError:
            # the test closed its socket: nothing more can reach it
            self.to_test.clear()
            self.done = True
            return
        del self.to_test[:n]
        self.written += n
        while self.acks and self.acks[0][0] <= self.written:
            _, sid, length = self.acks.popleft()
            try:
                self.conn.acknowledge_received_data(length, sid)
            except h2.exceptions.H2Error:
                pass  # the stream or the connection is gone: nothing to acknowledge

    def _emit(self, data, sid=None, flow=0):
        self.to_test += data
        if flow:
            self.acks.append((self.written + len(self.to_test), sid, flow))

    # -- the server's side ------------------------------------------------------------------

    def _write_server(self):
        try:
            n = self.tls.send(self.to_server[:65536])
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            return
        except OSError as e:
            # The server closed (it may reset a connection whose last WINDOW_UPDATEs it did
            # not read): nothing more can be sent, but what it sent before is still read.
            self._log("write to the server failed: %r" % (e,))
            self.write_failed = True
            self.to_server.clear()
            return
        del self.to_server[:n]

    def _read_server(self):
        while True:
            try:
                data = self.tls.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            except (OSError, ssl.SSLError) as e:
                self._log("the server's connection ended: %r" % (e,))
                data = b""
            if not data:
                self._server_ended()
                return
            try:
                events = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                self._log("the server broke HTTP/2: %r" % (e,))
                self._server_ended()
                return
            for event in events:
                self._event(event)
            if not self.tls.pending() or len(self.to_test) >= HELD_BACK:
                return

    def _server_ended(self):
        self.server_gone = True
        self.to_server.clear()

    def _event(self, ev):
        E = h2.events
        if isinstance(ev, E.InformationalResponseReceived):
            self._head_out(self.streams.get(ev.stream_id), ev.headers, interim=True)
        elif isinstance(ev, E.ResponseReceived):
            self._head_out(self.streams.get(ev.stream_id), ev.headers, interim=False)
        elif isinstance(ev, E.DataReceived):
            req = self.streams.get(ev.stream_id)
            if req is None or not ev.data:
                if ev.flow_controlled_length:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                return
            data = ev.data
            if req.chunked_out:
                data = b"%x\r\n%s\r\n" % (len(data), data)
            self._emit(data, ev.stream_id, ev.flow_controlled_length)
        elif isinstance(ev, E.TrailersReceived):
            req = self.streams.get(ev.stream_id)
            if req is not None:
                req.trailers_in = [(n, v) for n, v in ev.headers if not n.startswith(b":")]
        elif isinstance(ev, E.StreamEnded):
            self._response_ended(self.streams.get(ev.stream_id))
        elif isinstance(ev, E.StreamReset):
            req = self.streams.pop(ev.stream_id, None)
            if req is not None:
                req.reset = True
                self._log("stream %d reset by the server (%s)" % (ev.stream_id, ev.error_code))
                # what an HTTP/1.1 server does where an HTTP/2 one resets: it closes
                self.closing = True
        elif isinstance(ev, E.ConnectionTerminated):
            self.goaway = True
            self._log("GOAWAY %s, last stream %s" % (ev.error_code, ev.last_stream_id))
            if ev.error_code != h2.errors.ErrorCodes.NO_ERROR:
                self.closing = True
                self._server_ended()
                return
            for sid in [s for s in self.streams if s > (ev.last_stream_id or 0)]:
                self.streams.pop(sid).reset = True
                self.closing = True  # a request the server will never answer: as a close

    def _head_out(self, req, headers, interim):
        if req is None:
            return
        status = b"200"
        fields = []
        for name, value in headers:
            if name == b":status":
                status = value
            elif not name.startswith(b":"):
                fields.append((name, value))
        code = int(status)
        try:
            reason = http.HTTPStatus(code).phrase.encode()
        except ValueError:
            reason = b"Unknown"
        names = {n for n, _ in fields}
        if not interim:
            if not req.body_complete or req.body:
                # answered before its body was all sent: an HTTP/1.1 server could not read
                # on past the unread body, and closes; so does the bridge after this answer
                req.close = True
            if code not in (204, 304) and b"content-length" not in names:
                if req.version == b"HTTP/1.0":
                    req.close = True   # delimited by the close, as HTTP/1.0 has it
                else:
                    # a HEAD gets the fields its GET would have (RFC 9110 9.3.2), framing too
                    req.chunked_out = req.method != b"HEAD"
                    fields.append((b"transfer-encoding", b"chunked"))
            if req.close or self.goaway:
                fields.append((b"connection", b"close"))
        lines = [b"HTTP/1.1 " + status + b" " + reason]
        lines += [_title(n) + b": " + v for n, v in fields]
        self._emit(b"\r\n".join(lines) + b"\r\n\r\n")

    def _response_ended(self, req):
        if req is None:
            return
        req.response_ended = True
        if req.chunked_out:
            self._emit(b"0\r\n" + b"".join(_title(n) + b": " + v + b"\r\n"
                                            for n, v in req.trailers_in) + b"\r\n")
        if req.body_complete or req.reset:
            self.streams.pop(req.stream_id, None)
        if self.requests and self.requests[0] is req:
            self.requests.popleft()
        if req.close:
            self.closing = True
            if not req.ended:
                self._reset(req, h2.errors.ErrorCodes.CANCEL)
        elif self.goaway and not self.streams:
            self.closing = True

    # -- requests as streams ----------------------------------------------------------------

    def _open_next(self):
        if self.closing or self.goaway or self.server_gone or not self.requests:
            return
        req = self.requests[0]
        if req.stream_id is not None:
            return
        if self.conn.state_machine.state == ConnectionState.CLOSED:
            return
        sid = self.conn.get_next_available_stream_id()
        req.stream_id = sid
        self.streams[sid] = req
        authority = None
        path = req.target
        if b"://" in req.target:
            # absolute-form: HTTP/2 carries its parts as :authority and :path
            rest = req.target.split(b"://", 1)[1]
            slash = rest.find(b"/")
            authority = rest if slash < 0 else rest[:slash]
            path = b"/" if slash < 0 else rest[slash:]
        fields = []
        for name, value in req.fields:
            if name in _HOP_FIELDS:
                continue
            if name == b"te" and value.strip().lower() != b"trailers":
                continue
            if name == b"host":
                if authority is None:
                    authority = value
                continue
            fields.append((name, value))
        if req.method == b"CONNECT":
            # authority-form: only :method and :authority (RFC 9113 8.5)
            headers = [(b":method", req.method), (b":authority", req.target)]
        else:
            headers = [(b":method", req.method), (b":scheme", b"https")]
            if authority is not None:
                headers.append((b":authority", authority))
            headers.append((b":path", path))
        end = req.body_complete and not req.body and not req.trailers
        self.conn.send_headers(sid, headers + fields, end_stream=end)
        req.ended = end
        self._pump(req)

    def _pump(self, req):
        if req.stream_id is None or req.ended or req.reset:
            return
        sid = req.stream_id
        while req.body:
            try:
                window = self.conn.local_flow_control_window(sid)
            except h2.exceptions.H2Error:
                req.body.clear()
                return
            n = min(len(req.body), window, self.conn.max_outbound_frame_size)
            if n <= 0:
                return
            try:
                self.conn.send_data(sid, bytes(req.body[:n]))
            except h2.exceptions.H2Error:
                req.body.clear()   # the stream closed under it: the rest has nowhere to go
                return
            del req.body[:n]
        if req.body_complete and not req.ended:
            req.ended = True
            try:
                if req.trailers:
                    self.conn.send_headers(sid, req.trailers, end_stream=True)
                else:
                    self.conn.end_stream(sid)
            except h2.exceptions.H2Error:
                pass
            if req.response_ended:
                self.streams.pop(sid, None)

    def _reset(self, req, code):
        if req.stream_id is not None and not req.reset:
            req.reset = True
            try:
                self.conn.reset_stream(req.stream_id, code)
            except h2.exceptions.H2Error:
                pass
            self.streams.pop(req.stream_id, None)

    # -- the end ----------------------------------------------------------------------------

    def _linger_test_side(self):
        """A lingering close, as an HTTP/1.1 server's: the answer is complete, so the test
        reads EOF after it, while what it still sends (a body refused before its end) is read
        and dropped until it closes, for at most LINGER_S. Closing over unread bytes would
        reset the test's socket under its send, before it reads the answer."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        deadline = time.monotonic() + LINGER_S
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.sock.settimeout(left)
                if not self.sock.recv(65536):
                    break
        except OSError:
            pass  # the timeout, or the test reset its end: either way nothing more to take

    def _teardown(self):
        try:
            if not self.server_gone and not self.write_failed:
                self.conn.close_connection()
                self.to_server += self.conn.data_to_send()
                self.tls.setblocking(True)
                self.tls.settimeout(1.0)
                self.tls.sendall(bytes(self.to_server))
        except Exception:  # noqa: BLE001 - best effort: the server sees the close anyway
            pass
        if self.linger_reset:
            try:
                self.tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            except OSError:
                pass
        else:
            try:
                self.tls.unwrap()
            except Exception:  # noqa: BLE001
                pass
        self._linger_test_side()
        for s in (self.tls, self.sock):
            try:
                s.close()
            except OSError:
                pass


class _BridgedSocket:
    """Mixed into the test's socket class: the end of a socketpair that stands for a TCP
    connection; what a test asks of the connection itself goes to the real TCP socket."""

    _bridge_tcp = None
    _bridge = None

    def getsockname(self):
        return self._bridge_tcp.getsockname()

    def getpeername(self):
        return self._bridge_tcp.getpeername()

    def setsockopt(self, level, option, value, *rest):
        if level == socket.SOL_SOCKET and option == socket.SO_LINGER:
            # an RST on close: the bridge resets its TCP connection when the test closes
            if self._bridge is not None:
                self._bridge.linger_reset = bytes(value)[:4] != b"\0\0\0\0"
            else:
                self._bridge_tcp.setsockopt(level, option, value, *rest)
            return None
        if level == socket.SOL_SOCKET:
            return super().setsockopt(level, option, value, *rest)
        return self._bridge_tcp.setsockopt(level, option, value, *rest)


_classes = {}


def _bridged_class(base):
    cls = _classes.get(base)
    if cls is None:
        cls = type("Bridged" + base.__name__, (_BridgedSocket, base), {})
        _classes[base] = cls
    return cls


def connect(addr, context, check, timeout=5.0, plain_class=socket.socket, setup=None,
            defer_handshake=False):
    """A socket of plain_class (the end of a socketpair) whose HTTP/1.1 requests reach addr
    over HTTP/2. context: a client SSLContext offering only "h2"; check(der) raises unless
    the certificate is the pinned one."""
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    tcp = socket.socket(family, socket.SOCK_STREAM)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    test_sock = None
    try:
        test_sock = _bridged_class(plain_class)(socket.AF_UNIX, socket.SOCK_STREAM, 0,
                                                theirs.detach())
        test_sock._bridge_tcp = tcp
        test_sock.settimeout(timeout)
        tcp.settimeout(timeout)
        if setup is not None:
            setup(test_sock)
        tcp.connect(addr)
        tls = context.wrap_socket(tcp, do_handshake_on_connect=False,
                                  suppress_ragged_eofs=False)
        test_sock._bridge_tcp = tls
    except BaseException:
        ours.close()
        tcp.close()
        if test_sock is not None:
            test_sock.close()
        raise
    bridge = Bridge(tls, ours)
    test_sock._bridge = bridge

    def handshake():
        tls.do_handshake()
        check(tls.getpeercert(binary_form=True))
        if tls.selected_alpn_protocol() != "h2":
            raise ssl.SSLError("the server did not negotiate h2 (ALPN %r)"
                               % tls.selected_alpn_protocol())

    if not defer_handshake:
        try:
            handshake()
        except BaseException:
            ours.close()
            tls.close()
            test_sock.close()
            raise
        bridge.start()
    else:
        # a client the server has not accepted yet: its handshake (and everything the test
        # writes meanwhile, held in the socketpair) waits until the server takes it
        def later():
            try:
                tls.settimeout(max(timeout, 30.0))
                handshake()
            except (OSError, ValueError) as e:
                Bridge._log("deferred handshake failed: %r" % (e,))
                ours.close()
                tls.close()
                return
            bridge.start()
        threading.Thread(target=later, name="h2bridge-handshake", daemon=True).start()
    return test_sock
