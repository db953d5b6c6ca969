#!/usr/bin/python3
"""Write the seed corpus of fuzz/fuzz_h2.c into fuzz/corpus/h2/.

Run with the system python3 (it needs python3-hyperframe and python3-hpack):
    /usr/bin/python3 fuzz/corpus/make_h2_seeds.py

Most seeds are in the target's record format (see the comment at the top of fuzz_h2.c): the
field, method and path tables are read from fuzz_h2.c itself, so the seeds follow them when
they change. A few are raw frame streams (control bit 5) made with hyperframe and hpack.
"""
import os
import re
import struct
import sys

import hpack
from hyperframe import frame as hf

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "fuzz_h2.c")
OUT = os.path.join(HERE, "h2")

src = open(SRC).read()


def c_strings(block):
    return [bytes(s, "latin-1").decode("unicode_escape") for s in re.findall(r'"((?:[^"\\]|\\.)*)"', block)]


table_src = re.search(r"static const field table\[\] = \{(.*?)\n\};", src, re.S).group(1)
flat = c_strings(table_src)
TABLE = list(zip(flat[0::2], flat[1::2]))
METHODS = c_strings(re.search(r"methods\[\] = \{(.*?)\};", src, re.S).group(1))
PATHS = c_strings(re.search(r"paths\[\] = \{(.*?)\};", src, re.S).group(1))

(K_DATA, K_HEADERS, K_PRIORITY, K_RST, K_SETTINGS, K_PUSH, K_PING, K_GOAWAY, K_WINDOW, K_CONT,
 K_PRIO_UPDATE, K_UNKNOWN, K_PAUSE, K_REQUEST) = range(14)
BUILT, WRONG, CUT = 0x10, 0x20, 0x40
NEW, CUR, PREV = 0x80, 0x81, 0x82
END_STREAM, END_HEADERS, PADDED, PRIORITY, ACK = 0x1, 0x4, 0x8, 0x20, 0x1

# control byte
ENGINE_A, ENGINE_B, ENGINE_C = 0, 2, 3
PIECES = {0: 0, 1: 1, 2: 2, 3: 3, 7: 4, 16: 5, 61: 6, 512: 7}
RAW, ABRUPT, WIDE = 0x20, 0x40, 0x80


def ctl(engine=ENGINE_A, piece=0, flags=WIDE):
    return bytes([engine | PIECES[piece] << 2 | flags])


def rec(kind, flags=0, sel=0, length=0, tail=b""):
    return bytes([kind, flags, sel]) + struct.pack(">H", length) + tail


def fields(*pairs):
    out = b""
    for p in pairs:
        out += bytes([TABLE.index(p)])
    return out


def request(method, path, end=True, auth=False, extra=b"", sel=NEW, kind=K_REQUEST):
    m = METHODS.index(method) | PATHS.index(path) << 3 | (0x80 if auth else 0)
    return rec(kind, END_STREAM if end else 0, sel, len(extra), bytes([m]) + extra)


def headers(flist, flags=END_HEADERS | END_STREAM, sel=NEW, cut=False):
    body = fields(*flist)
    return rec(K_HEADERS | BUILT | (CUT if cut else 0), flags, sel, len(body), body)


def data(n, flags=END_STREAM, sel=CUR):
    return rec(K_DATA | BUILT, flags, sel, n)


def settings(pairs, flags=0):
    body = b"".join(bytes([k, v]) for k, v in pairs)
    return rec(K_SETTINGS | BUILT, flags, 0, len(body), body)


PAUSE = rec(K_PAUSE)
GET = [(":method", "GET"), (":scheme", "http"), (":authority", "localhost")]


def raw_stream(frames):
    return b"".join(f.serialize() for f in frames)


def raw_get(enc, sid, path, end=True, extra=()):
    f = hf.HeadersFrame(sid)
    f.data = enc.encode([(":method", "GET"), (":scheme", "http"), (":path", path),
                         (":authority", "localhost")] + list(extra))
    f.flags.add("END_HEADERS")
    if end:
        f.flags.add("END_STREAM")
    return f


def seeds():
    s = {}
    s["get-hello"] = ctl() + request("GET", "/hello.txt")
    s["get-pieces"] = ctl(piece=7) + request("GET", "/app.js") + request("HEAD", "/big.txt")
    s["gzip"] = ctl() + request("GET", "/big.txt", extra=fields(("accept-encoding", "gzip"))) + \
        request("GET", "/app.js", extra=fields(("accept-encoding", "gzip, br")))
    s["ranges"] = ctl() + request("GET", "/big.txt", extra=fields(("range", "bytes=0-4"))) + \
        request("GET", "/hello.txt", extra=fields(("range", "bytes=0-1,3-5"))) + \
        request("GET", "/hello.txt", extra=fields(("range", "bytes=99999-")))
    s["post-echo"] = ctl(ENGINE_B) + request("POST", "/", end=False, auth=True) + \
        data(100, flags=0) + data(30)
    s["post-noauth"] = ctl(ENGINE_B) + request("POST", "/", end=False) + data(10)
    s["many-streams"] = ctl(piece=61) + b"".join(
        request(["GET", "HEAD"][i % 2], PATHS[i % len(PATHS)]) for i in range(24))
    s["continuation"] = ctl() + headers(GET + [(":path", "/sub/a.txt"), ("x-long", TABLE[-1][1]),
                                               ("cookie", "a=b"), ("cookie", "c=d")], cut=True)
    s["padding"] = ctl() + headers(GET + [(":path", "/hello.txt")],
                                   flags=END_HEADERS | PADDED | PRIORITY | END_STREAM) + \
        request("PUT", "/", end=False) + data(40, flags=PADDED | END_STREAM)
    s["prio-update"] = ctl() + rec(K_PRIO_UPDATE | BUILT, 0, 0, 0, bytes([1, NEW])) + \
        request("GET", "/big.txt") + rec(K_PRIO_UPDATE | BUILT, 0, 0, 0, bytes([0, CUR]))
    s["rst"] = ctl() + request("GET", "/big.txt") + rec(K_RST | BUILT, 0, CUR, 0, b"\x05") + \
        request("POST", "/", end=False) + PAUSE + rec(K_RST | BUILT, 0, CUR, 0, b"\x00")
    s["window"] = ctl(flags=0) + settings([(4, 0x01)]) + request("GET", "/big.txt") + PAUSE + \
        rec(K_WINDOW | BUILT, 0, 0, 0, b"\x0a") + rec(K_WINDOW | BUILT, 0, CUR, 0, b"\x0a")
    s["settings"] = ctl() + settings([(5, 0x0b), (1, 0x00), (3, 0x03), (2, 0x01)]) + \
        rec(K_SETTINGS | BUILT, ACK, 0, 0) + request("GET", "/big.txt")
    s["ping-goaway"] = ctl() + rec(K_PING | BUILT, 0, 0, 0, b"12345678") + \
        request("GET", "/") + rec(K_GOAWAY | BUILT, 0, 0, 0, bytes([CUR, 0]))
    s["limits-c"] = ctl(ENGINE_C) + b"".join(request("GET", p) for p in
                                             ["/hello.txt", "/nope", "/sub/", "/big.txt"])
    s["upload-body-c"] = ctl(ENGINE_C) + request("POST", "/", end=False) + data(200)
    s["bad-length"] = ctl() + request("GET", "/") + rec(K_PING | BUILT | WRONG, 0, 0, 0,
                                                        b"12345678\x03")
    s["abrupt"] = ctl(flags=WIDE | ABRUPT) + request("GET", "/big.txt", end=False) + \
        request("GET", "/app.js")

    enc = hpack.Encoder()
    su = hf.SettingsFrame(0, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 1 << 20})
    wu = hf.WindowUpdateFrame(0, window_increment=1 << 20)
    post = hf.HeadersFrame(3)
    post.data = enc.encode([(":method", "POST"), (":scheme", "http"), (":path", "/"),
                            (":authority", "localhost"), ("content-length", "5")])
    post.flags.add("END_HEADERS")
    body = hf.DataFrame(3, data=b"hello")
    body.flags.add("END_STREAM")
    s["raw-get-post"] = ctl(flags=RAW) + raw_stream(
        [su, wu, raw_get(enc, 1, "/hello.txt", extra=[("range", "bytes=1-3")]), post, body,
         hf.PingFrame(0, opaque_data=b"abcdefgh"), hf.RstStreamFrame(3)])
    enc = hpack.Encoder()
    s["raw-errors"] = ctl(flags=RAW, piece=3) + raw_stream(
        [raw_get(enc, 1, "/"), raw_get(enc, 1, "/again"), hf.GoAwayFrame(0, last_stream_id=1)])
    return s


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.unlink(os.path.join(OUT, name))
    for name, blob in seeds().items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)
    print(f"{len(seeds())} seeds in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
