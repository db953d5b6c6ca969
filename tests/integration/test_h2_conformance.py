"""HTTP/2 conformance of `netkit http serve` (RFC 9113, RFC 7541), frame by frame.

A table of cases, each: the frames a client sends once the preface and SETTINGS are exchanged,
and what the server must answer: a connection error (GOAWAY with that code, then the
connection closed), a stream error (RST_STREAM with that code on that stream; a GOAWAY with the
same code is taken too, as RFC 9113 5.4.2 lets an endpoint treat any stream error as a
connection error), or a normal response. The codes are the ones RFC 9113 names for each fault,
the ground h2spec covers. After every case another client must still be served.

The server speaks h2c with prior knowledge on an explicit http:// listener: these tests choose
their transport themselves (the TLS case at the end offers "h2" by ALPN over https://).

NETKIT_H2_REFERENCE=HOST:PORT runs the cases against another server listening there (h2c with
prior knowledge, /hello.txt holding "hello, world\\n" and /big.bin at least 1 MiB) instead, to
tell a fault of the cases from one of the server.
"""
import os
import shutil
import struct
import tempfile
import time
import unittest

import harness
import h2frames as F
from h2frames import (ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PADDED,
                      PING, PRIORITY, PRIORITY_FLAG, PUSH_PROMISE, RST_STREAM, SETTINGS,
                      WINDOW_UPDATE, frame)
from test_hardening import asan_build

HELLO = b"hello, world\n"
BIG = 1024 * 1024
REFERENCE = os.environ.get("NETKIT_H2_REFERENCE")


def slow():
    """How much longer everything takes here: ASan builds run some 3 times slower."""
    return 3.0 if not REFERENCE and asan_build() else 1.0


# ---------------------------------------------------------------------------------------------
# what the server must answer

class ConnError:
    """GOAWAY with one of codes, then the connection closed (RFC 9113 5.4.1)."""

    def __init__(self, *codes):
        self.codes = codes

    def done(self, ev):
        return ev.goaway is not None and ev.goaway[1] != F.NO_ERROR or ev.eof

    def check(self, test, c, deadline):
        ev = c.ev
        names = "/".join(F.error_name(x) for x in self.codes)
        test.assertIsNotNone(ev.goaway, "no GOAWAY %s: %s" % (names, ev.describe()))
        test.assertIn(ev.goaway[1], self.codes, "GOAWAY %s, not %s: %s"
                      % (F.error_name(ev.goaway[1]), names, ev.describe()))
        test.assertTrue(c.wait_closed(deadline), "the connection stays open after GOAWAY: %s"
                        % ev.describe())

    def __repr__(self):
        return "connection error %s" % "/".join(F.error_name(x) for x in self.codes)


class StreamError:
    """RST_STREAM on sid with one of codes, or the same taken to the connection (GOAWAY)."""

    def __init__(self, sid, *codes):
        self.sid, self.codes = sid, codes

    def done(self, ev):
        return self.sid in ev.rst or ev.goaway is not None and ev.goaway[1] != F.NO_ERROR or \
            ev.eof

    def check(self, test, c, deadline):
        ev = c.ev
        names = "/".join(F.error_name(x) for x in self.codes)
        if self.sid in ev.rst:
            test.assertIn(ev.rst[self.sid], self.codes, "RST_STREAM %s on stream %d, not %s: %s"
                          % (F.error_name(ev.rst[self.sid]), self.sid, names, ev.describe()))
            return
        test.assertIsNotNone(ev.goaway, "no RST_STREAM %s on stream %d nor GOAWAY: %s"
                             % (names, self.sid, ev.describe()))
        test.assertIn(ev.goaway[1], self.codes, "GOAWAY %s, not %s (stream %d): %s"
                      % (F.error_name(ev.goaway[1]), names, self.sid, ev.describe()))
        test.assertTrue(c.wait_closed(deadline), "the connection stays open after GOAWAY: %s"
                        % ev.describe())

    def __repr__(self):
        return "stream error %s on %s" % ("/".join(F.error_name(x) for x in self.codes), self.sid)


class Ok:
    """A complete response on sid with that status (and body), and the connection healthy: a
    PING sent after the case is answered and no error is announced."""

    def __init__(self, sid, status=200, body=None, contains=None):
        self.sid, self.status, self.body, self.contains = sid, status, body, contains

    def done(self, ev):
        r = ev.streams.get(self.sid)
        return (r is not None and r.ended and PROBE in ev.ping_acks) or self.sid in ev.rst or \
            ev.goaway is not None or ev.eof

    def check(self, test, c, deadline):
        ev = c.ev
        r = ev.streams.get(self.sid)
        test.assertNotIn(self.sid, ev.rst, "RST_STREAM on stream %d: %s"
                         % (self.sid, ev.describe()))
        test.assertIsNone(ev.goaway, "GOAWAY: %s" % ev.describe())
        test.assertTrue(r is not None and r.ended, "no complete response on stream %d: %s"
                        % (self.sid, ev.describe()))
        test.assertIsNone(ev.decode_error, ev.decode_error)
        test.assertEqual(r.status, self.status, "%r: %s" % (r.headers, ev.describe()))
        if self.body is not None:
            test.assertEqual(bytes(r.body), self.body)
        if self.contains is not None:
            test.assertIn(self.contains, bytes(r.body))
        test.assertIn(PROBE, ev.ping_acks, "the PING after the case is not answered: %s"
                      % ev.describe())

    def __repr__(self):
        return "response %d on stream %d" % (self.status, self.sid)


PROBE = b"probe-42"


class Alive:
    """Nothing wrong: no error announced, the PING sent after the case answered, and what
    more(ev) asks for seen."""

    def __init__(self, more=None, what=""):
        self.more, self.what = more, what

    def done(self, ev):
        return (PROBE in ev.ping_acks and (self.more is None or self.more(ev))) or \
            ev.goaway is not None or ev.eof

    def check(self, test, c, deadline):
        ev = c.ev
        test.assertIsNone(ev.goaway, "GOAWAY: %s" % ev.describe())
        test.assertFalse(ev.rst, "RST_STREAM: %s" % ev.describe())
        test.assertIn(PROBE, ev.ping_acks, "the PING after the case is not answered: %s"
                      % ev.describe())
        if self.more is not None:
            test.assertTrue(self.more(ev), "%s: %s" % (self.what, ev.describe()))

    def __repr__(self):
        return "no error" + (", " + self.what if self.what else "")


class BadPreface:
    """An invalid connection preface is a connection error PROTOCOL_ERROR (RFC 9113 3.4): a
    GOAWAY PROTOCOL_ERROR, or, where cleartext HTTP/1.1 and HTTP/2 share the port, an
    HTTP/1.1 4xx answer; the connection is closed either way and nothing is served."""

    def done(self, ev):
        return ev.eof or ev.goaway is not None

    def check(self, test, c, deadline):
        ev = c.ev
        test.assertFalse([r for r in ev.streams.values() if r.headers],
                         "a response came: %s" % ev.describe())
        if ev.goaway is not None:
            test.assertEqual(ev.goaway[1], F.PROTOCOL_ERROR, ev.describe())
        elif ev.http1 is not None:
            # a 4xx, or 505 HTTP Version Not Supported for the "HTTP/2.0" of its request line
            status = ev.http1.split(b"\r\n", 1)[0].split(b" ")
            test.assertTrue(len(status) > 1 and (status[1][:1] == b"4" or status[1] == b"505"),
                            ev.describe())
        test.assertTrue(c.wait_closed(deadline), "the connection stays open: %s" % ev.describe())

    def __repr__(self):
        return "preface refused"


# ---------------------------------------------------------------------------------------------
# the cases

class Case:
    def __init__(self, name, send, expect, server="files", settings=(), preface=None, rfc=""):
        self.name, self.send, self.expect, self.server = name, send, expect, server
        self.settings, self.preface, self.rfc = settings, preface, rfc


def get_block(c, path="/hello.txt", extra=()):
    return c.block(F.request_fields(path=path, extra=extra))


def get(c, sid=1, path="/hello.txt", extra=()):
    return F.headers(sid, get_block(c, path, extra))


def post_headers(c, sid=1, extra=(), path="/echo"):
    return F.headers(sid, c.block(F.request_fields("POST", path, extra=extra)), end_stream=False)


def bad(sid, fields, end_stream=True):
    """A request whose fields go exactly as given (literal, never indexed)."""
    return F.headers(sid, F.raw_block(fields), end_stream=end_stream)


def req_with(extra=(), drop=(), replace=None, method="GET", path="/hello.txt"):
    fields = [f for f in F.request_fields(method, path) if f[0] not in drop]
    if replace:
        fields = [(n, replace.get(n, v)) for n, v in fields]
    return fields + list(extra)


# a stream the server cannot finish: the client's initial window is 0, so after the response's
# HEADERS the stream stays half-closed (remote) with the body waiting
WINDOW0 = ((F.INITIAL_WINDOW_SIZE, 0),)


def held(c, sid=1):
    return get(c, sid, "/big.bin")


def after_response(c, sid=1):
    """Send a GET on sid and read until its response is complete (the stream closed)."""
    c.send(get(c, sid))
    c.collect(lambda ev: sid in ev.streams and ev.streams[sid].ended or ev.eof,
              time.monotonic() + 5 * slow())
    return b""


def too_many_streams(c):
    n = c.server_settings.get(F.MAX_CONCURRENT_STREAMS)
    if n is None or n > 1000:
        raise AssertionError("the server announces no usable SETTINGS_MAX_CONCURRENT_STREAMS: %r"
                             % c.server_settings)
    c.case_sid = 2 * n + 1  # the first stream past the limit
    return b"".join(held(c, 2 * i + 1) for i in range(n + 1))


class TooMany(StreamError):
    """The stream past SETTINGS_MAX_CONCURRENT_STREAMS: REFUSED_STREAM or PROTOCOL_ERROR on it
    (RFC 9113 5.1.2), learnt from the server's SETTINGS once connected."""

    def __init__(self):
        super().__init__(None, F.REFUSED_STREAM, F.PROTOCOL_ERROR)

    def bind(self, c):
        self.sid = c.case_sid

    def check(self, test, c, deadline):
        test.assertNotIn(self.sid, [s for s, r in c.ev.streams.items() if r.headers],
                         "the stream past the limit was served: %s" % c.ev.describe())
        super().check(test, c, deadline)


P = F.PROTOCOL_ERROR
FS = F.FRAME_SIZE_ERROR
FC = F.FLOW_CONTROL_ERROR
SC = F.STREAM_CLOSED
CE = F.COMPRESSION_ERROR


def big_frame(c):
    return c.server_settings.get(F.MAX_FRAME_SIZE, F.DEFAULT_MAX_FRAME) + 1


CASES = [
    # 3.4 preface
    Case("preface_invalid", None, BadPreface(), preface=b"PRI * HTTP/2.0\r\n\r\nXY\r\n\r\n",
         rfc="3.4"),
    Case("preface_not_followed_by_settings", None, ConnError(P),
         preface=F.PREFACE + F.ping(), rfc="3.4"),
    # 4.1 frame format: unknown types and flags and the reserved bit are ignored
    Case("unknown_frame_type_ignored", lambda c: frame(0xfa, 0, 0, b"abcdef") +
         frame(0xfb, 0xff, 1, b"x") + get(c, 1), Ok(1, body=HELLO), rfc="4.1, 5.5"),
    Case("unknown_flags_ignored", lambda c: frame(PING, 0xfe, 0, b"ignflags"),
         Alive(lambda ev: b"ignflags" in ev.ping_acks, "PING with unknown flags answered"),
         rfc="4.1"),
    Case("reserved_bit_ignored", lambda c: frame(HEADERS, END_STREAM | END_HEADERS, 0x80000001,
                                                 get_block(c)), Ok(1, body=HELLO), rfc="4.1"),
    # 4.2 frame size
    Case("data_over_max_frame_size", lambda c: post_headers(c) +
         frame(DATA, 0, 1, b"x" * big_frame(c)), StreamError(1, FS), server="echo", rfc="4.2"),
    Case("headers_over_max_frame_size", lambda c: frame(
        HEADERS, END_STREAM | END_HEADERS, 1, F.raw_block(req_with(
            [("x-long", "a" * big_frame(c))]))), ConnError(FS), rfc="4.2"),
    Case("settings_over_max_frame_size", lambda c: frame(
        SETTINGS, 0, 0, struct.pack(">HI", 0x99, 0) * (big_frame(c) // 6 + 1)),
         ConnError(FS), rfc="4.2"),
    # 4.3 field block decoding: a block that cannot be decoded is a connection error
    Case("hpack_index_zero", lambda c: F.headers(1, b"\x80"), ConnError(CE), rfc="4.3; 7541 6.1"),
    Case("hpack_index_past_tables", lambda c: F.headers(1, F.hpack_indexed(300)), ConnError(CE),
         rfc="4.3; 7541 2.3.3"),
    Case("hpack_table_size_above_setting", lambda c: F.headers(
        1, F.hpack_int(4097, 5, 0x20) + F.raw_block(req_with())), ConnError(CE),
         rfc="4.3; 7541 6.3"),
    Case("hpack_table_size_update_after_field", lambda c: F.headers(
        1, F.raw_block(req_with()) + F.hpack_int(0, 5, 0x20)), ConnError(CE),
         rfc="4.3; 7541 4.2"),
    Case("hpack_huffman_eos", lambda c: F.headers(
        1, F.raw_block(req_with()) + b"\x00\x84\xff\xff\xff\xff\x01a"), ConnError(CE),
         rfc="4.3; 7541 5.2"),
    Case("hpack_truncated_block", lambda c: F.headers(1, F.raw_block(req_with())[:-3]),
         ConnError(CE), rfc="4.3"),
    # 5.1 stream states
    Case("data_on_idle_stream", lambda c: F.data(1, b"x", end_stream=True), ConnError(P),
         rfc="5.1 idle"),
    Case("rst_stream_on_idle_stream", lambda c: F.rst_stream(1), ConnError(P), rfc="5.1 idle"),
    Case("window_update_on_idle_stream", lambda c: F.window_update(1, 100), ConnError(P),
         rfc="5.1 idle"),
    Case("continuation_on_idle_stream", lambda c: F.continuation(1, get_block(c)), ConnError(P),
         rfc="5.1 idle, 6.10"),
    Case("priority_on_idle_stream_allowed", lambda c: F.priority(3, 0, 200) + get(c, 3) +
         F.priority(7, 3, 20), Ok(3, body=HELLO), rfc="5.1 idle, 6.3"),
    Case("headers_on_half_closed_remote", lambda c: held(c) + get(c, 1), StreamError(1, SC),
         settings=WINDOW0, rfc="5.1 half-closed (remote)"),
    Case("data_on_half_closed_remote", lambda c: held(c) + F.data(1, b"x"), StreamError(1, SC),
         settings=WINDOW0, rfc="5.1 half-closed (remote)"),
    Case("data_after_rst_stream", lambda c: held(c) + F.rst_stream(1, F.CANCEL) +
         F.data(1, b"x"), StreamError(1, SC), settings=WINDOW0, rfc="5.1 closed"),
    Case("headers_after_rst_stream", lambda c: held(c) + F.rst_stream(1, F.CANCEL) +
         bad(1, req_with()), StreamError(1, SC, P), settings=WINDOW0, rfc="5.1 closed, 5.1.1"),
    Case("data_on_closed_stream", lambda c: after_response(c) + F.data(1, b"x"),
         StreamError(1, SC), rfc="5.1 closed"),
    Case("stream_id_reused", lambda c: after_response(c) + bad(1, req_with()), ConnError(SC, P),
         rfc="5.1 closed, 5.1.1"),
    Case("stream_id_decreasing", lambda c: get(c, 5) + bad(3, req_with()), ConnError(P),
         rfc="5.1.1"),
    Case("stream_id_even", lambda c: bad(2, req_with()), ConnError(P), rfc="5.1.1"),
    Case("streams_past_max_concurrent", too_many_streams, TooMany(), settings=WINDOW0,
         rfc="5.1.2"),
    # 5.3 priority: a stream cannot depend on itself
    Case("headers_depends_on_itself", lambda c: F.headers(1, get_block(c), depends_on=1),
         StreamError(1, P), rfc="5.3.1"),
    Case("priority_depends_on_itself", lambda c: F.priority(1, 1), StreamError(1, P),
         rfc="5.3.1"),
    # 5.5 extensions: unknown frames are ignored, except inside a field block
    Case("unknown_frame_inside_field_block", lambda c: F.headers(
        1, get_block(c), end_headers=False) + frame(0xfa, 0, 1, b"xyz") +
         F.continuation(1, b""), ConnError(P), rfc="5.5, 6.10"),
    # 6.1 DATA
    Case("data_on_stream_0", lambda c: frame(DATA, 0, 0, b"x"), ConnError(P), rfc="6.1"),
    Case("data_padded_served", lambda c: post_headers(c) + F.data(1, b"padded-", pad=10) +
         F.data(1, b"body", end_stream=True, pad=0), Ok(1, contains=b"\npadded-body"),
         server="echo", rfc="6.1"),
    Case("data_pad_length_too_big", lambda c: post_headers(c) +
         frame(DATA, PADDED | END_STREAM, 1, b"\x05abcd"), ConnError(P), server="echo",
         rfc="6.1"),
    Case("data_pad_length_equal_to_payload", lambda c: post_headers(c) +
         frame(DATA, PADDED | END_STREAM, 1, b"\x04abc"), ConnError(P), server="echo",
         rfc="6.1"),
    # 6.2 HEADERS
    Case("headers_on_stream_0", lambda c: frame(HEADERS, END_STREAM | END_HEADERS, 0,
                                                F.raw_block(req_with())), ConnError(P),
         rfc="6.2"),
    Case("headers_padded_served", lambda c: F.headers(1, get_block(c), pad=33),
         Ok(1, body=HELLO), rfc="6.2"),
    Case("headers_padded_with_priority_served", lambda c: F.headers(
        1, get_block(c), pad=5, depends_on=0, weight=100), Ok(1, body=HELLO), rfc="6.2"),
    Case("headers_pad_length_too_big", lambda c: frame(
        HEADERS, PADDED | END_STREAM | END_HEADERS, 1,
        bytes([200]) + F.raw_block(req_with())), ConnError(P), rfc="6.2"),
    Case("headers_then_other_frame", lambda c: F.headers(1, get_block(c), end_headers=False) +
         F.ping(), ConnError(P), rfc="6.2, 6.10"),
    Case("headers_then_data_on_same_stream", lambda c: F.headers(
        1, F.raw_block(req_with()), end_stream=False, end_headers=False) + F.data(1, b"x"),
         ConnError(P), rfc="6.2, 6.10"),
    Case("headers_continuation_served", lambda c: (lambda b: F.headers(
        1, b[:4], end_headers=False) + F.continuation(1, b[4:9], end_headers=False) +
        F.continuation(1, b[9:]))(get_block(c)), Ok(1, body=HELLO), rfc="6.10"),
    Case("continuation_on_other_stream", lambda c: F.headers(
        1, F.raw_block(req_with())[:4], end_headers=False) +
         F.continuation(3, F.raw_block(req_with())[4:]), ConnError(P), rfc="6.10"),
    Case("continuation_after_end_headers", lambda c: held(c) + F.continuation(1, b"\x00\x01a\x01b"),
         ConnError(P), settings=WINDOW0, rfc="6.10"),
    Case("continuation_on_stream_0", lambda c: F.headers(
        1, F.raw_block(req_with())[:4], end_headers=False) +
         frame(CONTINUATION, END_HEADERS, 0, F.raw_block(req_with())[4:]), ConnError(P),
         rfc="6.10"),
    # 6.3 PRIORITY
    Case("priority_on_stream_0", lambda c: frame(PRIORITY, 0, 0, b"\x00\x00\x00\x01\x10"),
         ConnError(P), rfc="6.3"),
    Case("priority_wrong_length", lambda c: held(c) + frame(PRIORITY, 0, 1, b"\x00\x00\x00\x00"),
         StreamError(1, FS), settings=WINDOW0, rfc="6.3"),
    # 6.4 RST_STREAM
    Case("rst_stream_on_stream_0", lambda c: frame(RST_STREAM, 0, 0, b"\x00\x00\x00\x08"),
         ConnError(P), rfc="6.4"),
    Case("rst_stream_wrong_length", lambda c: held(c) + frame(RST_STREAM, 0, 1, b"\x00\x00\x08"),
         ConnError(FS), settings=WINDOW0, rfc="6.4"),
    # 6.5 SETTINGS
    Case("settings_ack_with_payload", lambda c: frame(SETTINGS, ACK, 0, b"\x00\x01\x00\x00\x10\x00"),
         ConnError(FS), rfc="6.5"),
    Case("settings_on_stream_1", lambda c: frame(SETTINGS, 0, 1, b""), ConnError(P), rfc="6.5"),
    Case("settings_length_not_multiple_of_6",
         lambda c: frame(SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00\x64\x00"), ConnError(FS),
         rfc="6.5"),
    Case("settings_enable_push_2", lambda c: F.settings((F.ENABLE_PUSH, 2)), ConnError(P),
         rfc="6.5.2"),
    Case("settings_initial_window_too_big", lambda c: F.settings((F.INITIAL_WINDOW_SIZE, 2 ** 31)),
         ConnError(FC), rfc="6.5.2"),
    Case("settings_max_frame_size_too_small", lambda c: F.settings((F.MAX_FRAME_SIZE, 16383)),
         ConnError(P), rfc="6.5.2"),
    Case("settings_max_frame_size_too_big", lambda c: F.settings((F.MAX_FRAME_SIZE, 2 ** 24)),
         ConnError(P), rfc="6.5.2"),
    Case("settings_unknown_ignored_and_acked", lambda c: F.settings((0x99, 7), (0xff00, 1)),
         Alive(lambda ev: ev.settings_acks >= 2, "both SETTINGS acknowledged"), rfc="6.5.2, 6.5.3"),
    # 6.7 PING
    Case("ping_answered", lambda c: F.ping(b"pingpong"),
         Alive(lambda ev: b"pingpong" in ev.ping_acks, "PING answered with its data"), rfc="6.7"),
    Case("ping_ack_not_answered", lambda c: F.ping(b"ackedack", ack=True),
         Alive(lambda ev: b"ackedack" not in ev.ping_acks, "a PING ACK is not answered"),
         rfc="6.7"),
    Case("ping_on_stream_1", lambda c: frame(PING, 0, 1, b"12345678"), ConnError(P), rfc="6.7"),
    Case("ping_wrong_length", lambda c: frame(PING, 0, 0, b"123456"), ConnError(FS), rfc="6.7"),
    # 6.8 GOAWAY
    Case("goaway_on_stream_1", lambda c: frame(GOAWAY, 0, 1, b"\x00" * 8), ConnError(P),
         rfc="6.8"),
    # 6.9 WINDOW_UPDATE and flow control
    Case("window_update_0_on_connection", lambda c: F.window_update(0, 0), ConnError(P),
         rfc="6.9"),
    Case("window_update_0_on_stream", lambda c: held(c) + F.window_update(1, 0),
         StreamError(1, P), settings=WINDOW0, rfc="6.9"),
    Case("window_update_wrong_length", lambda c: frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"),
         ConnError(FS), rfc="6.9"),
    Case("connection_window_overflow", lambda c: F.window_update(0, F.MAX_WINDOW),
         ConnError(FC), rfc="6.9.1"),
    Case("stream_window_overflow", lambda c: held(c) + F.window_update(1, F.MAX_WINDOW) +
         F.window_update(1, F.MAX_WINDOW), StreamError(1, FC), settings=WINDOW0, rfc="6.9.1"),
    Case("initial_window_change_overflows_stream", lambda c: held(c) +
         F.window_update(1, F.MAX_WINDOW) + F.settings((F.INITIAL_WINDOW_SIZE, 1)),
         ConnError(FC), settings=WINDOW0, rfc="6.9.2"),
    # 8.1 message framing: content-length and trailers
    Case("content_length_above_data", lambda c: post_headers(c, extra=[("content-length", "10")]) +
         F.data(1, b"12345", end_stream=True), StreamError(1, P), server="echo", rfc="8.1.1"),
    Case("content_length_below_data", lambda c: post_headers(c, extra=[("content-length", "2")]) +
         F.data(1, b"12345", end_stream=True), StreamError(1, P), server="echo", rfc="8.1.1"),
    Case("content_length_matching_served", lambda c: post_headers(
        c, extra=[("content-length", "5")]) + F.data(1, b"12", end_stream=False) +
         F.data(1, b"345", end_stream=True), Ok(1, contains=b"\n12345"), server="echo",
         rfc="8.1.1"),
    Case("trailers_served", lambda c: post_headers(c) + F.data(1, b"with-trailers") +
         F.headers(1, c.block([("x-checksum", "abc")]), end_stream=True),
         Ok(1, contains=b"\nwith-trailers"), server="echo", rfc="8.1"),
    Case("trailers_with_pseudo_header", lambda c: post_headers(c) + F.data(1, b"x") +
         bad(1, [(":method", "POST"), ("x-checksum", "abc")]), StreamError(1, P), server="echo",
         rfc="8.1, 8.3"),
    Case("trailers_without_end_stream", lambda c: post_headers(c) + F.data(1, b"x") +
         bad(1, [("x-checksum", "abc")], end_stream=False), StreamError(1, P), server="echo",
         rfc="8.1"),
    # 8.2 fields
    Case("field_name_uppercase", lambda c: bad(1, req_with([("X-Upper", "1")])),
         StreamError(1, P), rfc="8.2"),
    Case("field_name_with_space", lambda c: bad(1, req_with([("x bad", "1")])),
         StreamError(1, P), rfc="8.2.1"),
    Case("field_value_with_crlf", lambda c: bad(1, req_with([("x-split", "a\r\nx-evil: 1")])),
         StreamError(1, P), rfc="8.2.1"),
    Case("field_value_with_nul", lambda c: bad(1, req_with([("x-nul", "a\x00b")])),
         StreamError(1, P), rfc="8.2.1"),
    Case("field_value_leading_space", lambda c: bad(1, req_with([("x-space", " a")])),
         StreamError(1, P), rfc="8.2.1"),
    Case("connection_header", lambda c: bad(1, req_with([("connection", "keep-alive")])),
         StreamError(1, P), rfc="8.2.2"),
    Case("transfer_encoding_header", lambda c: bad(1, req_with([("transfer-encoding", "chunked")])),
         StreamError(1, P), rfc="8.2.2"),
    Case("keep_alive_header", lambda c: bad(1, req_with([("keep-alive", "timeout=5")])),
         StreamError(1, P), rfc="8.2.2"),
    Case("upgrade_header", lambda c: bad(1, req_with([("upgrade", "h2c")])),
         StreamError(1, P), rfc="8.2.2"),
    Case("proxy_connection_header", lambda c: bad(1, req_with([("proxy-connection", "close")])),
         StreamError(1, P), rfc="8.2.2"),
    Case("te_not_trailers", lambda c: bad(1, req_with([("te", "gzip")])), StreamError(1, P),
         rfc="8.2.2"),
    Case("te_trailers_served", lambda c: get(c, 1, extra=[("te", "trailers")]),
         Ok(1, body=HELLO), rfc="8.2.2"),
    # 8.3 pseudo-header fields
    Case("pseudo_header_unknown", lambda c: bad(1, [(":foo", "bar")] + req_with()),
         StreamError(1, P), rfc="8.3"),
    Case("pseudo_header_of_response", lambda c: bad(1, req_with() + [(":status", "200")]),
         StreamError(1, P), rfc="8.3"),
    Case("pseudo_header_after_regular", lambda c: bad(
        1, req_with(drop=(":path",)) + [("x-first", "1"), (":path", "/hello.txt")]),
         StreamError(1, P), rfc="8.3"),
    Case("missing_method", lambda c: bad(1, req_with(drop=(":method",))), StreamError(1, P),
         rfc="8.3.1"),
    Case("missing_scheme", lambda c: bad(1, req_with(drop=(":scheme",))), StreamError(1, P),
         rfc="8.3.1"),
    Case("missing_path", lambda c: bad(1, req_with(drop=(":path",))), StreamError(1, P),
         rfc="8.3.1"),
    Case("duplicate_method", lambda c: bad(1, [(":method", "GET")] + req_with()),
         StreamError(1, P), rfc="8.3.1"),
    Case("duplicate_scheme", lambda c: bad(1, [(":scheme", "http")] + req_with()),
         StreamError(1, P), rfc="8.3.1"),
    Case("duplicate_path", lambda c: bad(1, [(":path", "/hello.txt")] + req_with()),
         StreamError(1, P), rfc="8.3.1"),
    Case("empty_path", lambda c: bad(1, req_with(replace={":path": ""})), StreamError(1, P),
         rfc="8.3.1"),
    Case("connect_with_path_and_scheme", lambda c: bad(1, req_with(replace={":method": "CONNECT"})),
         StreamError(1, P), rfc="8.5"),
    # 8.4 push: a client cannot push
    Case("push_promise_from_client", lambda c: held(c) + frame(
        PUSH_PROMISE, END_HEADERS, 1, b"\x00\x00\x00\x02" + F.raw_block(req_with())),
         ConnError(P), settings=WINDOW0, rfc="8.4"),
]


# ---------------------------------------------------------------------------------------------

def make_root(owner):
    base = tempfile.mkdtemp(prefix="netkit-h2conf-")
    owner.addCleanup(shutil.rmtree, base, True)
    with open(os.path.join(base, "hello.txt"), "wb") as f:
        f.write(HELLO)
    with open(os.path.join(base, "big.bin"), "wb") as f:
        f.write(bytes(range(256)) * (BIG // 256))
    return base


def reference_addr():
    host, port = REFERENCE.rsplit(":", 1)
    return host.strip("[]"), int(port)


@unittest.skipUnless(F.AVAILABLE, F.MISSING)
class Conformance(unittest.TestCase):
    """One test per case (test_<name>); the servers are shared by the class."""

    @classmethod
    def setUpClass(cls):
        if REFERENCE:
            cls.servers = {"files": None, "echo": None}
            cls.addrs = {"files": reference_addr(), "echo": reference_addr()}
            return
        owner = _ClassOwner(cls)
        root = make_root(owner)
        files = harness.start(owner, ["http", "serve", root, "-l", "http://127.0.0.1:0", "-w", "1",
                                      "--access-log", "off"])
        echo = harness.start(owner, ["http", "serve", root, "-l", "http://127.0.0.1:0", "-w", "1",
                                     "--access-log", "off", "--echo"])
        cls.servers = {"files": files, "echo": echo}
        cls.addrs = {k: v.host_port() for k, v in cls.servers.items()}

    def run_case(self, case):
        t = 5.0 * slow()
        addr = self.addrs[case.server]
        srv = self.servers[case.server]
        if srv is not None:
            self.assertIsNone(srv.proc.poll(), "the server is gone (exit %s)" % srv.proc.returncode)
        deadline = time.monotonic() + t
        expect = case.expect
        with F.Conn(addr, timeout=t) as c:
            if case.preface is not None:
                c.send(case.preface)
            else:
                c.handshake(case.settings, deadline)
                out = case.send(c)
                if hasattr(expect, "bind"):
                    expect.bind(c)
                # the PING after the case tells a server that ignored it from one that is slow
                c.send((out or b"") + F.ping(PROBE))
            c.collect(expect.done, deadline)
            try:
                expect.check(self, c, time.monotonic() + t)
            except AssertionError as e:
                sent = b"".join(c.sent)
                raise AssertionError("%s (RFC 9113 %s), expected %r\nsent (%d bytes): %s\n%s"
                                     % (case.name, case.rfc, expect, len(sent), sent[:600].hex(),
                                        e)) from None
        # and the server goes on serving others
        r = F.get(addr, timeout=t)
        self.assertEqual(r.status, 200)
        if case.server == "echo" and not REFERENCE:
            self.assertIn(b"\nrequest-line GET /hello.txt ", bytes(r.body))
        else:
            self.assertEqual(bytes(r.body), HELLO)


class _ClassOwner:
    def __init__(self, cls):
        self.cls = cls

    def addCleanup(self, fn, *args, **kw):
        self.cls.addClassCleanup(fn, *args, **kw)


def _make_test(case):
    def test(self):
        self.run_case(case)
    test.__doc__ = "%s: %r (RFC 9113 %s)" % (case.name, case.expect, case.rfc)
    return test


for _case in CASES:
    assert not hasattr(Conformance, "test_" + _case.name), _case.name
    setattr(Conformance, "test_" + _case.name, _make_test(_case))


@unittest.skipUnless(F.AVAILABLE, F.MISSING)
class TLS(unittest.TestCase):
    """h2 chosen by ALPN on an https:// listener; HTTP/1.1 kept for clients that ask for it."""

    def setUp(self):
        if REFERENCE:
            self.skipTest("NETKIT_H2_REFERENCE names a cleartext server")
        root = make_root(self)
        self.srv = harness.start(self, ["http", "serve", root, "-l", "https://127.0.0.1:0",
                                        "--tls-self-signed", "-w", "1", "--access-log", "off"])
        self.addr = self.srv.host_port()

    def test_alpn_h2_get(self):
        t = 5.0 * slow()
        with F.Conn(self.addr, tls=F.tls_context(["h2"]), timeout=t) as c:
            self.assertEqual(c.sock.selected_alpn_protocol(), "h2")
            self.assertEqual(F.cert_sha256(c.sock), self.srv.fingerprint)
            c.handshake(deadline=time.monotonic() + t)
            sid = c.request(F.request_fields(scheme="https"))
            r = c.response(sid, time.monotonic() + t)
        self.assertEqual(r.status, 200)
        self.assertEqual(bytes(r.body), HELLO)
        self.assertEqual(r.header("content-length"), str(len(HELLO)))

    def test_alpn_h2_preferred(self):
        with F.Conn(self.addr, tls=F.tls_context(["http/1.1", "h2"])) as c:
            self.assertEqual(c.sock.selected_alpn_protocol(), "h2")

    def test_alpn_http11_only(self):
        with F.Conn(self.addr, tls=F.tls_context(["http/1.1"])) as c:
            self.assertEqual(c.sock.selected_alpn_protocol(), "http/1.1")
            c.sock.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = b""
            while True:
                chunk = c.sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:100])
        self.assertTrue(got.endswith(HELLO), got[-100:])


if __name__ == "__main__":
    unittest.main()
