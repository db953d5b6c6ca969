/* libFuzzer target for the HTTP/2 server (src/httpd/h2.c, h2stream.c): frames in, frames
 * out, checked by invariants an HTTP/2 client relies on.
 *
 * Input: the first byte is a control byte:
 *   bits 0-1  the engine (0 or 1: A, static files with listings, gzip, CORS and a status page;
 *             2: B, echo behind HTTP Basic; 3: C, no listing, SPA, tiny limits, 2 streams)
 *   bits 2-4  how the bytes are written: all at once, or pieces of 1, 2, 3, 7, 16, 61, 512
 *             bytes with one loop iteration between pieces
 *   bit 5     raw: the rest is the byte stream after the preface, as is
 *   bit 6     the client ends by closing its socket at once, not by a shutdown of its side
 *   bit 7     the client opens its windows wide first (SETTINGS_INITIAL_WINDOW_SIZE and a
 *             connection WINDOW_UPDATE), so every complete request must be answered
 * Otherwise the rest is a list of records, each one frame whose 9-byte header the harness
 * writes: a kind byte (bits 0-3: DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE,
 * PING, GOAWAY, WINDOW_UPDATE, CONTINUATION, PRIORITY_UPDATE, an unknown type, a pause, a
 * request (14 too; 15 HEADERS); bit 4: the payload is built from the record rather than copied; bit 5: the header
 * declares a wrong length; bit 6: a header block is cut into CONTINUATION frames), a flags
 * byte, a stream selector byte (0-127: that id; above: the next new client stream, the last
 * one, the one before, or one near 2^31), a 2-byte length, then what the payload takes.
 * Built header blocks are lists of fields from a table or from the input, compressed by
 * nghttp2's HPACK encoder with the connection's one dynamic table, so the server decodes
 * them; a pause lets the server answer what came so far before the rest is written.
 *
 * The docroot and the engines (server_fixture.c, shared with fuzz_httpd.c) serve HTTP/2 here,
 * the client end driven from here without blocking: a run is deterministic (no timer fires).
 *
 * Invariants (any violation aborts with a message on stderr):
 *   - the server's bytes are HTTP/2 frames: its SETTINGS first, then only types a server
 *     sends, with lengths the receiver allows (16384 unless the client raised
 *     SETTINGS_MAX_FRAME_SIZE) and the layout each type has, stream frames on odd ids only,
 *     header blocks not interleaved with other frames;
 *   - every header block decodes (HPACK, nghttp2's decoder) to a valid :status first, then
 *     lowercase names, no other pseudo-header, no connection-specific field; at most one
 *     final head per stream, only on a stream the client opened, never after GOAWAY on a
 *     stream above its last-stream-id, and GOAWAY's last-stream-id never grows;
 *   - no DATA before the final head, none after HEAD, 204 or 304, never more than
 *     Content-Length and exactly that much by END_STREAM;
 *   - a 200 or 206 to a GET of a docroot file carries its bytes (or its .gz sidecar's, or gzip
 *     that inflates to it); the dotfile's and the outside file's contents never appear;
 *     engine B never answers 2xx without the credentials;
 *   - with the windows open, every request the client completed is ended by the server
 *     (END_STREAM or RST_STREAM) once the connection is quiet, unless it sent GOAWAY;
 *   - after the client's end the server closes; after the client's close it lets go.
 * A model of the client's own bytes (frames, HPACK with nghttp2's decoder) tells which
 * request each stream carries. */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "netkit/http.h"
#include "server_fixture.h"

#define MAX_IN_BYTES (64 * 1024)      /* input bytes taken from one run */
#define MAX_CLIENT (512 * 1024)    /* client bytes built from them */
#define MAX_RECORDS 1024
#define QUIET 64                   /* rounds without a byte moving: the server has said all */
#define MAX_BODY (4u << 20)        /* body bytes kept per stream for the content checks */
#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

/* ---- small tools ------------------------------------------------------------------------ */

static int trace; /* FUZZ_H2_TRACE set: every frame and stream outcome on stderr */

typedef struct bytes {
    unsigned char *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    grow(&b->p, &b->cap, b->len + n);
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put8(bytes *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}

static void put32(bytes *b, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put(b, c, 4);
}

static void frame_header(bytes *b, size_t len, unsigned type, unsigned flags, uint32_t id)
{
    unsigned char h[9] = {(unsigned char)(len >> 16), (unsigned char)(len >> 8),
                          (unsigned char)len, (unsigned char)type, (unsigned char)flags,
                          (unsigned char)(id >> 24), (unsigned char)(id >> 16),
                          (unsigned char)(id >> 8), (unsigned char)id};
    put(b, h, 9);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- the client's bytes, built from the input ---------------------------------------------- */

enum { K_DATA, K_HEADERS, K_PRIORITY, K_RST, K_SETTINGS, K_PUSH, K_PING, K_GOAWAY, K_WINDOW,
       K_CONT, K_PRIO_UPDATE, K_UNKNOWN, K_PAUSE, K_REQUEST };

typedef struct field {
    const char *name, *value;
} field;

/* Fields a request is made of; the ones a server must refuse are among them. */
static const field table[] = {
    {":method", "GET"}, {":method", "HEAD"}, {":method", "POST"}, {":method", "PUT"},
    {":method", "OPTIONS"}, {":method", "CONNECT"}, {":method", "DELETE"}, {":scheme", "http"},
    {":scheme", "https"}, {":authority", "localhost"}, {":authority", "a b"}, {":path", "/"},
    {":path", "/hello.txt"}, {":path", "/big.txt"}, {":path", "/app.js"}, {":path", "/style.css"},
    {":path", "/sub/"}, {":path", "/sub/a.txt"}, {":path", "/status"}, {":path", "/.hidden"},
    {":path", "/out/secret.txt"}, {":path", "/escape.txt"}, {":path", "/%2e%2e/outside/secret.txt"},
    {":path", "/sp%20ace%25.txt"}, {":path", "/nope?x=1"}, {":path", "*"}, {":path", ""},
    {":status", "200"}, {":protocol", "websocket"}, {"accept-encoding", "gzip"},
    {"accept-encoding", "gzip, br"}, {"range", "bytes=0-4"}, {"range", "bytes=-3"},
    {"range", "bytes=2-"}, {"range", "bytes=0-1,3-5"}, {"range", "bytes=99999-"},
    {"if-range", "\"x\""}, {"if-none-match", "*"}, {"if-modified-since", "Sun, 06 Nov 2044 08:49:37 GMT"},
    {"content-length", "0"}, {"content-length", "5"}, {"content-length", "100000"},
    {"content-type", "text/plain"}, {"authorization", "Basic dXNlcjpwYXNz"},
    {"authorization", "Basic Zm9vOmJhcg=="}, {"te", "trailers"}, {"te", "gzip"},
    {"connection", "close"}, {"keep-alive", "1"}, {"transfer-encoding", "chunked"},
    {"upgrade", "h2c"}, {"host", "example"}, {"expect", "100-continue"}, {"cookie", "a=b"},
    {"cookie", "c=d"}, {"user-agent", "fuzz"}, {"priority", "u=0, i"}, {"origin", "http://x"},
    {"access-control-request-method", "PUT"}, {"X-Upper", "1"}, {"x-empty", ""},
    {"x-long", "0123456789012345678901234567890123456789012345678901234567890123456789"},
};
#define NTABLE (sizeof table / sizeof table[0])

static const char *const methods[] = {"GET", "HEAD", "POST", "GET", "PUT", "OPTIONS", "GET", "HEAD"};
static const char *const paths[] = {"/", "/hello.txt", "/big.txt", "/app.js", "/style.css",
                                    "/sub/", "/sub/a.txt", "/empty", "/withindex/", "/status",
                                    "/link.txt", "/sp%20ace%25.txt", "/index.html", "/.hidden",
                                    "/nope", "/sub/empty.txt"};
static const uint32_t interesting[16] = {0, 1, 2, 100, 4096, 16383, 16384, 16385, 65535, 65536,
                                         1u << 20, (1u << 24) - 1, 1u << 24, 0x7fffffff,
                                         0x80000000u, 0xffffffffu};
static const uint32_t codes[8] = {0, 1, 2, 3, 5, 7, 8, 11};
static const char *const prio_values[] = {"u=0", "u=7, i", "i", "u=9", "u=3, i=?0", "", "\x01"};

typedef struct reader {
    const uint8_t *p;
    size_t n, off;
} reader;

static unsigned take8(reader *r)
{
    return r->off < r->n ? r->p[r->off++] : 0;
}

typedef struct builder {
    bytes out;
    size_t pauses[MAX_RECORDS + 1]; /* offsets in out where the writer waits for quiet */
    size_t npauses;
    uint32_t last_new; /* the last "next new stream" id */
    nghttp2_hd_deflater *def;
} builder;

static uint32_t stream_sel(builder *b, unsigned s)
{
    if (s < 0x80)
        return s;
    switch (s & 3) {
    case 0:
        b->last_new = b->last_new ? b->last_new + 2 : 1;
        return b->last_new;
    case 1:
        return b->last_new ? b->last_new : 1;
    case 2:
        return b->last_new > 2 ? b->last_new - 2 : 1;
    default:
        return 0x7fffffffu - ((s >> 2) & 0x1f);
    }
}

/* Fields from the input: a table entry per byte, or (from 0xe0) a table name with a value
 * of the next byte's length from the input. */
static size_t fields_from(reader *r, size_t n, nghttp2_nv *nv, size_t max, char *store,
                          size_t store_len)
{
    size_t end = r->off + n < r->n ? r->off + n : r->n, k = 0, used = 0;
    while (r->off < end && k < max) {
        unsigned c = take8(r);
        const field *f = &table[c % NTABLE];
        nv[k] = (nghttp2_nv){(uint8_t *)f->name, (uint8_t *)f->value, strlen(f->name),
                             strlen(f->value), c & 0x10 ? NGHTTP2_NV_FLAG_NO_INDEX : 0};
        if (c >= 0xe0) {
            size_t vl = r->off < end ? r->p[r->off++] & 0x3f : 0;
            if (vl > end - r->off)
                vl = end - r->off;
            if (used + vl > store_len)
                vl = 0;
            memcpy(store + used, r->p + r->off, vl);
            r->off += vl;
            nv[k].value = (uint8_t *)store + used;
            nv[k].valuelen = vl;
            used += vl;
        }
        k++;
    }
    r->off = end;
    return k;
}

static void deflate_block(builder *b, const nghttp2_nv *nv, size_t n, bytes *block)
{
    size_t bound = nghttp2_hd_deflate_bound(b->def, nv, n);
    grow(&block->p, &block->cap, block->len + bound);
    ssize_t w = nghttp2_hd_deflate_hd(b->def, block->p + block->len, bound, nv, n);
    if (w < 0)
        abort();
    block->len += (size_t)w;
}

/* A frame with this payload, the header's length possibly wrong. */
static void emit(builder *b, unsigned type, unsigned flags, uint32_t id, const bytes *pl,
                 int wrong, reader *r)
{
    size_t len = pl->len;
    if (wrong) {
        int d = (int8_t)take8(r);
        len = d < 0 && (size_t)-d > len ? 0 : len + (size_t)d;
        if (d == 0)
            len += 0x10000;
    }
    frame_header(&b->out, len, type, flags, id);
    put(&b->out, pl->p, pl->len);
}

static void padded(bytes *pl, unsigned flags, size_t pad, const bytes *body, int prio)
{
    if (flags & NGHTTP2_FLAG_PADDED)
        put8(pl, (unsigned)pad);
    if (prio) {
        put32(pl, 0);
        put8(pl, 15);
    }
    put(pl, body->p, body->len);
    if (flags & NGHTTP2_FLAG_PADDED)
        for (size_t i = 0; i < pad; i++)
            put8(pl, 0);
}

/* A header block as HEADERS (or PUSH_PROMISE) plus CONTINUATION frames when cut. */
static void emit_block(builder *b, unsigned type, unsigned flags, uint32_t id, const bytes *block,
                       int cut, int wrong, reader *r, uint32_t promised)
{
    size_t first = cut ? block->len / 3 : block->len;
    bytes body = {0}, pl = {0};
    if (type == NGHTTP2_PUSH_PROMISE)
        put32(&body, promised);
    put(&body, block->p, first);
    unsigned f = flags;
    if (cut)
        f &= ~(unsigned)NGHTTP2_FLAG_END_HEADERS;
    padded(&pl, f, (id * 7 + first) % 23, &body,
           type == NGHTTP2_HEADERS && (f & NGHTTP2_FLAG_PRIORITY));
    emit(b, type, f, id, &pl, wrong, r);
    size_t off = first, step = block->len / 3 ? block->len / 3 : 1;
    while (cut && off < block->len) {
        size_t k = block->len - off < step ? block->len - off : step;
        int last = off + k == block->len;
        bytes c = {block->p + off, k, 0};
        frame_header(&b->out, k, NGHTTP2_CONTINUATION,
                     last ? (flags & NGHTTP2_FLAG_END_HEADERS) : 0, id);
        put(&b->out, c.p, c.len);
        off += k;
    }
    if (cut && block->len == 0 && (flags & NGHTTP2_FLAG_END_HEADERS))
        frame_header(&b->out, 0, NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS, id);
    free(body.p);
    free(pl.p);
}

static void build_record(builder *b, reader *r)
{
    unsigned kind = take8(r), flags = take8(r), sel = take8(r);
    size_t len = take8(r) << 8;
    len |= take8(r);
    int built = kind & 0x10, wrong = kind & 0x20, cut = kind & 0x40;
    kind &= 0x0f;
    if (kind > K_REQUEST)
        kind = kind == K_REQUEST + 1 ? K_REQUEST : K_HEADERS;
    if (kind == K_PAUSE) {
        b->pauses[b->npauses++] = b->out.len;
        return;
    }
    uint32_t id = stream_sel(b, sel);
    static const unsigned types[] = {NGHTTP2_DATA, NGHTTP2_HEADERS, NGHTTP2_PRIORITY,
                                     NGHTTP2_RST_STREAM, NGHTTP2_SETTINGS, NGHTTP2_PUSH_PROMISE,
                                     NGHTTP2_PING, NGHTTP2_GOAWAY, NGHTTP2_WINDOW_UPDATE,
                                     NGHTTP2_CONTINUATION, NGHTTP2_PRIORITY_UPDATE, 0xfb};
    bytes pl = {0}, block = {0};
    nghttp2_nv nv[64];
    char store[2048];
    if (kind == K_REQUEST || (built && (kind == K_HEADERS || kind == K_CONT || kind == K_PUSH))) {
        size_t n = 0;
        uint32_t promised = 0;
        if (kind == K_PUSH)
            promised = stream_sel(b, take8(r));
        if (kind == K_REQUEST) {
            /* one byte picks the method, the path and the credentials; the payload adds
             * more fields */
            unsigned m = take8(r);
            nv[n++] = (nghttp2_nv){(uint8_t *)":method", (uint8_t *)methods[m & 7], 7,
                                   strlen(methods[m & 7]), 0};
            nv[n++] = (nghttp2_nv){(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0};
            nv[n++] = (nghttp2_nv){(uint8_t *)":path", (uint8_t *)paths[(m >> 3) & 15], 5,
                                   strlen(paths[(m >> 3) & 15]), 0};
            nv[n++] = (nghttp2_nv){(uint8_t *)":authority", (uint8_t *)"localhost", 10, 9, 0};
            if (m & 0x80)
                nv[n++] = (nghttp2_nv){(uint8_t *)"authorization",
                                       (uint8_t *)"Basic dXNlcjpwYXNz", 13, 18, 0};
        }
        n += fields_from(r, len, nv + n, 64 - n, store, sizeof store);
        deflate_block(b, nv, n, &block);
        if (kind == K_CONT) {
            emit(b, NGHTTP2_CONTINUATION, flags, id, &block, wrong, r);
        } else {
            unsigned type = kind == K_PUSH ? NGHTTP2_PUSH_PROMISE : NGHTTP2_HEADERS;
            if (kind == K_REQUEST)
                flags |= NGHTTP2_FLAG_END_HEADERS;
            emit_block(b, type, flags, id, &block, cut, wrong, r, promised);
        }
    } else if (!built) {
        if (len > r->n - r->off)
            len = r->n - r->off;
        put(&pl, r->p + r->off, len);
        r->off += len;
        emit(b, types[kind], flags, id, &pl, wrong, r);
    } else {
        switch (kind) {
        case K_DATA: {
            if (len > 70000)
                len = 70000;
            bytes body = {0};
            grow(&body.p, &body.cap, len + 1);
            for (size_t i = 0; i < len; i++)
                body.p[i] = (unsigned char)('a' + i % 26);
            body.len = len;
            padded(&pl, flags, len % 17, &body, 0);
            free(body.p);
            break;
        }
        case K_PRIORITY:
            put32(&pl, stream_sel(b, take8(r)));
            put8(&pl, take8(r));
            break;
        case K_RST:
            put32(&pl, codes[take8(r) & 7]);
            break;
        case K_SETTINGS:
            if (flags & NGHTTP2_FLAG_ACK)
                break;
            for (size_t i = 0; i + 2 <= len && r->off < r->n; i += 2) {
                unsigned which = take8(r), v = take8(r);
                put8(&pl, 0);
                put8(&pl, which % 10);
                put32(&pl, interesting[v & 15] + (v >> 4));
            }
            break;
        case K_PING:
            for (int i = 0; i < 8; i++)
                put8(&pl, take8(r));
            break;
        case K_GOAWAY:
            put32(&pl, stream_sel(b, take8(r)));
            put32(&pl, codes[take8(r) & 7]);
            put(&pl, "bye", len & 3);
            break;
        case K_WINDOW:
            put32(&pl, interesting[take8(r) & 15]);
            break;
        case K_PRIO_UPDATE: {
            const char *v = prio_values[take8(r) % (sizeof prio_values / sizeof prio_values[0])];
            put32(&pl, stream_sel(b, take8(r)));
            put(&pl, v, strlen(v));
            break;
        }
        default:
            put(&pl, "??", len & 1 ? 2 : 0);
            break;
        }
        emit(b, types[kind], flags, id, &pl, wrong, r);
    }
    free(pl.p);
    free(block.p);
}

/* The client's bytes: the preface, optionally wide windows, then the records (or the input
 * as is). */
static void build(builder *b, const uint8_t *in, size_t n, unsigned ctl)
{
    put(&b->out, PREFACE, sizeof PREFACE - 1);
    if (ctl & 0x80) {
        frame_header(&b->out, 6, NGHTTP2_SETTINGS, 0, 0);
        put8(&b->out, 0);
        put8(&b->out, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE);
        put32(&b->out, 1u << 30);
        frame_header(&b->out, 4, NGHTTP2_WINDOW_UPDATE, 0, 0);
        put32(&b->out, (1u << 30) - 65535);
    }
    if (ctl & 0x20) {
        put(&b->out, in, n);
        return;
    }
    if (nghttp2_hd_deflate_new(&b->def, 4096) != 0)
        abort();
    reader r = {in, n, 0};
    for (int i = 0; r.off < r.n && i < MAX_RECORDS && b->out.len < MAX_CLIENT; i++)
        build_record(b, &r);
    nghttp2_hd_deflate_del(b->def);
}

/* ---- the model of the client's bytes ------------------------------------------------------- */

typedef struct cstream {
    uint32_t id;
    int opened; /* its request head was whole */
    int ended;  /* the client ended its side (END_STREAM) */
    int reset;  /* the client reset it */
    nk_http_method method;
    const doc *doc;
    int authorized;
} cstream;

typedef struct cmodel {
    cstream *s;
    size_t n, cap;
    uint32_t max_frame;  /* the largest valid SETTINGS_MAX_FRAME_SIZE the client sent */
    uint32_t table_size; /* the largest SETTINGS_HEADER_TABLE_SIZE */
    int window_settings; /* SETTINGS_INITIAL_WINDOW_SIZE entries */
    int client_goaway;
} cmodel;

static cstream *cs_find(cmodel *m, uint32_t id, int create)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->s[i].id == id)
            return &m->s[i];
    if (!create)
        return NULL;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->s = realloc(m->s, m->cap * sizeof *m->s);
        if (!m->s)
            abort();
    }
    cstream *s = &m->s[m->n++];
    memset(s, 0, sizeof *s);
    s->id = id;
    return s;
}

/* The request a stream carries, as the engine reads it: the request line the stream makes. */
static void model_request(cstream *s, const engine *e, const bytes *method, const bytes *path,
                          int authorized)
{
    static nk_http_request req;
    char line[8192];
    int k = snprintf(line, sizeof line, "%.*s %.*s HTTP/1.1\r\nHost: x\r\n\r\n",
                     (int)method->len, (const char *)method->p, (int)path->len,
                     (const char *)path->p);
    int status = 0;
    s->method = NK_HTTP_UNKNOWN;
    if (k > 0 && (size_t)k < sizeof line && method->len && path->len &&
        nk_http_parse_request(line, (size_t)k, 0, &e->cfg.limits, &req, &status) > 0) {
        s->method = req.method;
        s->doc = e->serves_files ? doc_for(&req) : NULL;
    }
    s->authorized = authorized;
}

/* Decode one header block; 0 when the decoder fails (the connection then ends). */
static int inflate_block(nghttp2_hd_inflater *inf, const unsigned char *p, size_t n,
                         void (*each)(void *, const nghttp2_nv *), void *arg)
{
    static const unsigned char none[1];
    if (!p)
        p = none; /* an empty block */
    for (;;) {
        nghttp2_nv nv;
        int fl = 0;
        ssize_t used = nghttp2_hd_inflate_hd2(inf, &nv, &fl, p, n, 1);
        if (used < 0)
            return 0;
        p += used;
        n -= (size_t)used;
        if (fl & NGHTTP2_HD_INFLATE_EMIT)
            each(arg, &nv);
        if (fl & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(inf);
            return 1;
        }
        if (used == 0 && n == 0)
            return 0;
    }
}

typedef struct reqfields {
    bytes method, path;
    int authorized;
} reqfields;

static void req_field(void *arg, const nghttp2_nv *nv)
{
    reqfields *f = arg;
    if (nv->namelen == 7 && memcmp(nv->name, ":method", 7) == 0 && !f->method.len)
        put(&f->method, nv->value, nv->valuelen);
    else if (nv->namelen == 5 && memcmp(nv->name, ":path", 5) == 0 && !f->path.len)
        put(&f->path, nv->value, nv->valuelen);
    else if (nv->namelen == 13 && memcmp(nv->name, "authorization", 13) == 0 &&
             memmem(nv->value, nv->valuelen, "dXNlcjpwYXNz", 12))
        f->authorized = 1;
}

/* Walk the client's frames as the server's nghttp2 reads them, up to the first thing that
 * surely ends the connection (a frame over 16384 bytes, a header block that does not decode,
 * a PUSH_PROMISE, a stream id going back). */
static void walk(cmodel *m, const engine *e, const unsigned char *p, size_t n)
{
    nghttp2_hd_inflater *inf;
    if (nghttp2_hd_inflate_new(&inf) != 0)
        abort();
    m->max_frame = 16384;
    m->table_size = 4096;
    bytes block = {0};
    uint32_t bid = 0, last_opened = 0;
    unsigned bflags = 0;
    int in_block = 0;
    size_t off = sizeof PREFACE - 1;
    while (n - off >= 9) {
        const unsigned char *h = p + off;
        size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        unsigned type = h[3], flags = h[4];
        uint32_t id = get32(h + 5) & 0x7fffffff;
        if (len > 16384 || n - off - 9 < len)
            break;
        const unsigned char *pl = h + 9;
        off += 9 + len;
        int complete = 0;
        if (in_block) {
            if (type != NGHTTP2_CONTINUATION || id != bid)
                break;
            put(&block, pl, len);
            complete = flags & NGHTTP2_FLAG_END_HEADERS;
        } else if (type == NGHTTP2_HEADERS) {
            size_t pos = 0, pad = 0;
            if (flags & NGHTTP2_FLAG_PADDED) {
                if (len < 1)
                    break;
                pad = pl[0];
                pos = 1;
            }
            if (flags & NGHTTP2_FLAG_PRIORITY)
                pos += 5;
            if (pos + pad > len || id == 0 || !(id & 1))
                break;
            cstream *s = cs_find(m, id, 0);
            if (!s && id <= last_opened)
                break;
            block.len = 0;
            put(&block, pl + pos, len - pos - pad);
            bid = id;
            bflags = flags;
            in_block = 1;
            complete = flags & NGHTTP2_FLAG_END_HEADERS;
        } else if (type == NGHTTP2_DATA) {
            cstream *s = cs_find(m, id, 0);
            if (s && s->opened && (flags & NGHTTP2_FLAG_END_STREAM))
                s->ended = 1;
        } else if (type == NGHTTP2_RST_STREAM) {
            cstream *s = cs_find(m, id, 0);
            if (s && len == 4)
                s->reset = 1;
        } else if (type == NGHTTP2_SETTINGS && id == 0 && !(flags & NGHTTP2_FLAG_ACK) &&
                   len % 6 == 0) {
            for (size_t i = 0; i < len; i += 6) {
                unsigned which = (unsigned)pl[i] << 8 | pl[i + 1];
                uint32_t v = get32(pl + i + 2);
                if (which == NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE)
                    m->window_settings++;
                if (which == NGHTTP2_SETTINGS_MAX_FRAME_SIZE && v >= 16384 && v <= 16777215 &&
                    v > m->max_frame)
                    m->max_frame = v;
                if (which == NGHTTP2_SETTINGS_HEADER_TABLE_SIZE && v > m->table_size)
                    m->table_size = v;
            }
        } else if (type == NGHTTP2_GOAWAY) {
            m->client_goaway = 1;
        } else if (type == NGHTTP2_PUSH_PROMISE) {
            break;
        }
        if (!complete)
            continue;
        in_block = 0;
        reqfields f = {{0}, {0}, 0};
        int ok = inflate_block(inf, block.p, block.len, req_field, &f);
        if (ok) {
            cstream *s = cs_find(m, bid, 1);
            if (!s->opened) {
                s->opened = 1;
                if (bid > last_opened)
                    last_opened = bid;
                model_request(s, e, &f.method, &f.path, f.authorized);
            }
            if (bflags & NGHTTP2_FLAG_END_STREAM)
                s->ended = 1;
        }
        free(f.method.p);
        free(f.path.p);
        if (!ok)
            break;
    }
    free(block.p);
    nghttp2_hd_inflate_del(inf);
}

/* ---- the server's frames ------------------------------------------------------------------- */

typedef struct sstream {
    uint32_t id;
    int status; /* the final status, 0 before it */
    int64_t clen;
    int gzip, multipart;
    char range[96];
    int ended, reset;
    uint64_t data;
    bytes body;
    int body_cut;
} sstream;

typedef struct rx {
    bytes in;   /* received, not yet parsed */
    size_t total;
    unsigned frames;
    uint32_t max_frame;
    nghttp2_hd_inflater *inf;
    bytes block;
    uint32_t bid;
    unsigned bflags;
    int in_block;
    sstream *s;
    size_t n, cap;
    int goaway;
    uint32_t goaway_last;
    const engine *e;
    cmodel *m;
} rx;

static sstream *ss_find(rx *r, uint32_t id, int create)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->s[i].id == id)
            return &r->s[i];
    if (!create)
        return NULL;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->s = realloc(r->s, r->cap * sizeof *r->s);
        if (!r->s)
            abort();
    }
    sstream *s = &r->s[r->n++];
    memset(s, 0, sizeof *s);
    s->id = id;
    s->clen = -1;
    return s;
}

/* A 200 or 206 to a GET or HEAD of a docroot file carries its bytes. */
static void check_content(const sstream *s, const cstream *q)
{
    const doc *d = q->doc;
    const unsigned char *rep = d->plain;
    size_t rep_len = d->plain_len;
    if (s->gzip && s->clen >= 0) {
        if (!d->gz)
            fail("stream %u: %s sent gzip-encoded with a length, but it has no sidecar", s->id,
                 d->url);
        rep = d->gz;
        rep_len = d->gz_len;
    }
    if (q->method == NK_HTTP_HEAD) {
        if (s->status == 200 && s->clen >= 0 && (uint64_t)s->clen != rep_len)
            fail("stream %u: HEAD %s: content-length %lld, the file has %zu bytes", s->id, d->url,
                 (long long)s->clen, rep_len);
        return;
    }
    if (s->status == 200 && s->gzip && s->clen < 0) {
        check_inflates_to(s->body.p, s->body.len, d);
        return;
    }
    size_t from = 0;
    if (s->status == 206) {
        if (s->multipart)
            return;
        unsigned long long a, b, total;
        char tail;
        if (sscanf(s->range, "bytes %llu-%llu/%llu%c", &a, &b, &total, &tail) != 3 || a > b ||
            b >= total || total != rep_len)
            fail("stream %u: 206 for %s with content-range \"%s\" (the representation has %zu "
                 "bytes)", s->id, d->url, s->range, rep_len);
        from = (size_t)a;
        rep_len = (size_t)(b - a + 1);
    }
    if (s->body.len != rep_len || (rep_len && memcmp(s->body.p, rep + from, rep_len) != 0)) {
        show("body", s->body.p, s->body.len);
        fail("stream %u: %d for %s: the body is not the file's %zu bytes at %zu", s->id,
             s->status, d->url, rep_len, from);
    }
}

static int bodiless(const sstream *s, const cstream *q)
{
    return s->status == 204 || s->status == 304 || (q && q->method == NK_HTTP_HEAD);
}

/* The server ended the stream (END_STREAM). */
static void stream_end(rx *r, sstream *s)
{
    if (s->ended)
        fail("stream %u: a frame after END_STREAM", s->id);
    s->ended = 1;
    const cstream *q = cs_find(r->m, s->id, 0);
    if (trace)
        fprintf(stderr, "fuzz_h2: stream %u ended: %d, %llu bytes, request %s\n", s->id,
                s->status, (unsigned long long)s->data, q && q->doc ? q->doc->url : "-");
    if (s->status < 200)
        fail("stream %u: END_STREAM without a final head", s->id);
    if (!bodiless(s, q) && s->clen >= 0 && s->data != (uint64_t)s->clen)
        fail("stream %u: END_STREAM after %llu DATA bytes, content-length %lld", s->id,
             (unsigned long long)s->data, (long long)s->clen);
    if (r->e->serves_files && s->body.len &&
        (memmem(s->body.p, s->body.len, SECRET_DOT, sizeof SECRET_DOT - 1) ||
         memmem(s->body.p, s->body.len, SECRET_OUT, sizeof SECRET_OUT - 1))) {
        show("body", s->body.p, s->body.len);
        fail("stream %u: a dotfile or a file outside the root was served", s->id);
    }
    if (q && q->doc && !s->body_cut && (s->status == 200 || s->status == 206) &&
        (q->method == NK_HTTP_GET || q->method == NK_HTTP_HEAD))
        check_content(s, q);
}

typedef struct headstate {
    rx *r;
    sstream *s;
    unsigned nfields;
    int status;
    int64_t clen;
    int gzip, multipart;
    char range[96];
} headstate;

static int name_is(const nghttp2_nv *nv, const char *s)
{
    return nv->namelen == strlen(s) && memcmp(nv->name, s, nv->namelen) == 0;
}

static void resp_field(void *arg, const nghttp2_nv *nv)
{
    headstate *h = arg;
    uint32_t id = h->s->id;
    if (h->nfields++ == 0) {
        if (!name_is(nv, ":status") || nv->valuelen != 3 || nv->value[0] < '1' ||
            nv->value[0] > '5' || nv->value[1] < '0' || nv->value[1] > '9' ||
            nv->value[2] < '0' || nv->value[2] > '9')
            fail("stream %u: the head does not begin with a valid :status (\"%.*s: %.*s\")", id,
                 (int)nv->namelen, nv->name, (int)nv->valuelen, nv->value);
        h->status = (nv->value[0] - '0') * 100 + (nv->value[1] - '0') * 10 + nv->value[2] - '0';
        return;
    }
    if (nv->namelen == 0)
        fail("stream %u: an empty field name", id);
    if (nv->name[0] == ':')
        fail("stream %u: pseudo-header %.*s after :status", id, (int)nv->namelen, nv->name);
    for (size_t i = 0; i < nv->namelen; i++)
        if ((nv->name[i] >= 'A' && nv->name[i] <= 'Z') || nv->name[i] <= 0x20 ||
            nv->name[i] >= 0x7f)
            fail("stream %u: field name \"%.*s\" is not a lowercase token", id,
                 (int)nv->namelen, nv->name);
    for (size_t i = 0; i < nv->valuelen; i++)
        if (nv->value[i] == '\r' || nv->value[i] == '\n' || nv->value[i] == 0)
            fail("stream %u: CR, LF or NUL in the value of %.*s", id, (int)nv->namelen,
                 nv->name);
    static const char *const conn[] = {"connection", "keep-alive", "transfer-encoding", "upgrade",
                                       "proxy-connection"};
    for (size_t i = 0; i < sizeof conn / sizeof conn[0]; i++)
        if (name_is(nv, conn[i]))
            fail("stream %u: connection-specific field %s", id, conn[i]);
    if (name_is(nv, "content-length")) {
        int64_t v = 0;
        if (nv->valuelen == 0 || nv->valuelen > 15)
            fail("stream %u: content-length \"%.*s\"", id, (int)nv->valuelen, nv->value);
        for (size_t i = 0; i < nv->valuelen; i++) {
            if (nv->value[i] < '0' || nv->value[i] > '9')
                fail("stream %u: content-length \"%.*s\"", id, (int)nv->valuelen, nv->value);
            v = v * 10 + (nv->value[i] - '0');
        }
        if (h->clen >= 0 && h->clen != v)
            fail("stream %u: two different content-length fields", id);
        h->clen = v;
    } else if (name_is(nv, "content-encoding")) {
        h->gzip = nv->valuelen == 4 && memcmp(nv->value, "gzip", 4) == 0;
    } else if (name_is(nv, "content-type")) {
        h->multipart = nv->valuelen >= 10 && strncasecmp((const char *)nv->value, "multipart/", 10) == 0;
    } else if (name_is(nv, "content-range")) {
        snprintf(h->range, sizeof h->range, "%.*s", (int)nv->valuelen, nv->value);
    }
}

static void on_head(rx *r, uint32_t id, unsigned flags)
{
    if (r->goaway && id > r->goaway_last)
        fail("stream %u: HEADERS after GOAWAY with last-stream-id %u", id, r->goaway_last);
    const cstream *q = cs_find(r->m, id, 0);
    if (!q || !q->opened)
        fail("stream %u: HEADERS on a stream the client did not open", id);
    sstream *s = ss_find(r, id, 1);
    if (s->status >= 200)
        fail("stream %u: a second head after the final one (%d)", id, s->status);
    if (s->ended || s->reset)
        fail("stream %u: HEADERS on a stream the server ended or reset", id);
    headstate h = {r, s, 0, 0, -1, 0, 0, ""};
    if (!inflate_block(r->inf, r->block.p, r->block.len, resp_field, &h)) {
        show("header block", r->block.p, r->block.len);
        fail("stream %u: the server's header block does not decode", id);
    }
    if (h.nfields == 0)
        fail("stream %u: an empty head", id);
    if (h.status < 200) {
        if (h.status == 101)
            fail("stream %u: 101 over HTTP/2", id);
        if (flags & NGHTTP2_FLAG_END_STREAM)
            fail("stream %u: END_STREAM on an interim head", id);
        return;
    }
    s->status = h.status;
    s->clen = h.clen;
    s->gzip = h.gzip;
    s->multipart = h.multipart;
    memcpy(s->range, h.range, sizeof s->range);
    if (r->e->needs_auth && !q->authorized && h.status >= 200 && h.status < 300)
        fail("stream %u: %d to a request without credentials", id, h.status);
    if (flags & NGHTTP2_FLAG_END_STREAM)
        stream_end(r, s);
}

static void check_stream_id(uint32_t id, const char *what)
{
    if (id == 0 || !(id & 1))
        fail("%s on stream %u (a server sends it on client streams only)", what, id);
}

/* Strip PADDED (and PRIORITY) from a DATA or HEADERS payload. */
static void unpad(const unsigned char **p, size_t *len, unsigned flags, int prio, uint32_t id)
{
    size_t pos = 0, pad = 0;
    if (flags & NGHTTP2_FLAG_PADDED) {
        if (*len < 1)
            fail("stream %u: PADDED without a pad length", id);
        pad = (*p)[0];
        pos = 1;
    }
    if (prio && (flags & NGHTTP2_FLAG_PRIORITY))
        pos += 5;
    if (pos + pad > *len)
        fail("stream %u: padding longer than the frame", id);
    *p += pos;
    *len -= pos + pad;
}

static void one_frame(rx *r, const unsigned char *h)
{
    size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
    unsigned type = h[3], flags = h[4];
    if (trace)
        fprintf(stderr, "fuzz_h2: < type %u flags %#x stream %u length %zu\n", type, flags,
                get32(h + 5), len);
    if (h[5] & 0x80)
        fail("the reserved bit of a stream id is set");
    uint32_t id = get32(h + 5);
    const unsigned char *p = h + 9;
    if (r->frames++ == 0 && (type != NGHTTP2_SETTINGS || (flags & NGHTTP2_FLAG_ACK) || id))
        fail("the server's first frame is not its SETTINGS (type %u flags %#x stream %u)", type,
             flags, id);
    if (r->in_block && type != NGHTTP2_CONTINUATION)
        fail("a frame of type %u inside a header block of stream %u", type, r->bid);
    switch (type) {
    case NGHTTP2_DATA: {
        check_stream_id(id, "DATA");
        sstream *s = ss_find(r, id, 0);
        if (!s || s->status < 200)
            fail("stream %u: DATA before a final head", id);
        if (s->ended || s->reset)
            fail("stream %u: DATA after the stream ended", id);
        unpad(&p, &len, flags, 0, id);
        const cstream *q = cs_find(r->m, id, 0);
        if (len && bodiless(s, q))
            fail("stream %u: DATA in an answer without a body (%d%s)", id, s->status,
                 q && q->method == NK_HTTP_HEAD ? " to HEAD" : "");
        s->data += len;
        if (s->clen >= 0 && s->data > (uint64_t)s->clen)
            fail("stream %u: %llu DATA bytes, more than content-length %lld", id,
                 (unsigned long long)s->data, (long long)s->clen);
        if (s->body.len + len <= MAX_BODY)
            put(&s->body, p, len);
        else
            s->body_cut = 1;
        if (flags & NGHTTP2_FLAG_END_STREAM)
            stream_end(r, s);
        break;
    }
    case NGHTTP2_HEADERS:
        check_stream_id(id, "HEADERS");
        unpad(&p, &len, flags, 1, id);
        r->block.len = 0;
        put(&r->block, p, len);
        r->bid = id;
        r->bflags = flags;
        r->in_block = !(flags & NGHTTP2_FLAG_END_HEADERS);
        if (!r->in_block)
            on_head(r, id, flags);
        break;
    case NGHTTP2_CONTINUATION:
        if (!r->in_block || id != r->bid)
            fail("CONTINUATION on stream %u outside a header block", id);
        put(&r->block, p, len);
        if (flags & NGHTTP2_FLAG_END_HEADERS) {
            r->in_block = 0;
            on_head(r, id, r->bflags);
        }
        break;
    case NGHTTP2_RST_STREAM: {
        check_stream_id(id, "RST_STREAM");
        if (len != 4)
            fail("RST_STREAM of %zu bytes", len);
        sstream *s = ss_find(r, id, 1);
        if (s->reset)
            fail("stream %u: reset twice", id);
        s->reset = 1;
        break;
    }
    case NGHTTP2_SETTINGS:
        if (id || ((flags & NGHTTP2_FLAG_ACK) ? len != 0 : len % 6 != 0))
            fail("a malformed SETTINGS (stream %u, flags %#x, %zu bytes)", id, flags, len);
        break;
    case NGHTTP2_PING:
        if (id || len != 8)
            fail("a malformed PING (stream %u, %zu bytes)", id, len);
        break;
    case NGHTTP2_GOAWAY: {
        if (id || len < 8)
            fail("a malformed GOAWAY (stream %u, %zu bytes)", id, len);
        uint32_t last = get32(p) & 0x7fffffff;
        if (r->goaway && last > r->goaway_last)
            fail("GOAWAY's last-stream-id grew from %u to %u", r->goaway_last, last);
        r->goaway = 1;
        r->goaway_last = last;
        break;
    }
    case NGHTTP2_WINDOW_UPDATE:
        if (len != 4 || (id && !(id & 1)) || (get32(p) & 0x7fffffff) == 0)
            fail("a malformed WINDOW_UPDATE (stream %u, %zu bytes)", id, len);
        break;
    default:
        fail("a frame of type %u (a server does not send it here)", type);
    }
}

static void parse_frames(rx *r)
{
    size_t off = 0;
    if (r->in.len < 9)
        return;
    while (r->in.len - off >= 9) {
        const unsigned char *h = r->in.p + off;
        size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        if (len > r->max_frame)
            fail("a frame of %zu bytes (type %u), over the client's maximum of %u", len, h[3],
                 r->max_frame);
        if (r->in.len - off - 9 < len)
            break;
        one_frame(r, h);
        off += 9 + len;
    }
    memmove(r->in.p, r->in.p + off, r->in.len - off);
    r->in.len -= off;
}

/* ---- one run ----------------------------------------------------------------------------- */

/* Run the loop and read until nothing moves for `rounds` rounds or the server closes. */
static void settle(rx *r, int fd, int *eof, unsigned rounds)
{
    unsigned idle = 0;
    while (!*eof && idle < rounds) {
        int progress = loop_turn(r->e);
        client_recv(fd, &r->in.p, &r->in.len, &r->in.cap, &r->total, eof, &progress);
        parse_frames(r);
        idle = progress ? 0 : idle + 1;
    }
}

/* With the windows wide open, a request the client completed is ended by the server. */
static void check_answered(rx *r, unsigned ctl)
{
    const cmodel *m = r->m;
    if (!(ctl & 0x80) || m->window_settings != 1 || m->client_goaway || r->goaway)
        return;
    for (size_t i = 0; i < m->n; i++) {
        const cstream *q = &m->s[i];
        if (!q->opened || !q->ended || q->reset)
            continue;
        const sstream *s = ss_find(r, q->id, 0);
        if (!s || !(s->ended || s->reset))
            fail("stuck: stream %u, a complete request, is neither ended nor reset once the "
                 "connection is quiet (head %d, %llu DATA bytes)", q->id, s ? s->status : 0,
                 s ? (unsigned long long)s->data : 0ull);
    }
}

static void run(engine *e, const uint8_t *in, size_t n, unsigned ctl, size_t piece)
{
    builder b;
    memset(&b, 0, sizeof b);
    build(&b, in, n, ctl);
    cmodel m;
    memset(&m, 0, sizeof m);
    walk(&m, e, b.out.p, b.out.len);
    rx r;
    memset(&r, 0, sizeof r);
    r.e = e;
    r.m = &m;
    r.max_frame = m.max_frame;
    if (nghttp2_hd_inflate_new(&r.inf) != 0 ||
        nghttp2_hd_inflate_change_table_size(r.inf, m.table_size) != 0)
        abort();
    int fd = client_connect(e);
    size_t sent = 0, seg = 0;
    int eof = 0, writing = 1;
    unsigned idle = 0;
    while (writing && !eof) {
        size_t until = seg < b.npauses ? b.pauses[seg] : b.out.len;
        if (sent >= until) {
            settle(&r, fd, &eof, QUIET);
            if (seg++ < b.npauses)
                continue;
            break;
        }
        int progress = 0;
        size_t want = until - sent;
        if (piece && want > piece)
            want = piece;
        ssize_t w = send(fd, b.out.p + sent, want, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            progress = 1;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            writing = 0; /* the server closed: it reads no more */
        }
        if (loop_turn(e))
            progress = 1;
        client_recv(fd, &r.in.p, &r.in.len, &r.in.cap, &r.total, &eof, &progress);
        parse_frames(&r);
        if (progress)
            idle = 0;
        else if (++idle > MAX_IDLE)
            fail("stuck: %zu of %zu client bytes sent, the server reads none and says nothing",
                 sent, b.out.len);
    }
    settle(&r, fd, &eof, QUIET);
    if (!eof)
        check_answered(&r, ctl);
    if (ctl & 0x40) {
        close(fd);
        fd = -1;
    } else {
        shutdown(fd, SHUT_WR);
        settle(&r, fd, &eof, MAX_IDLE);
        if (!eof)
            fail("the server does not close after the client's end (%zu frames received)",
                 (size_t)r.frames);
        close(fd);
    }
    wait_released(e);
    for (size_t i = 0; i < r.n; i++)
        free(r.s[i].body.p);
    free(r.s);
    free(r.in.p);
    free(r.block.p);
    nghttp2_hd_inflate_del(r.inf);
    free(m.s);
    free(b.out.p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    trace = getenv("FUZZ_H2_TRACE") != NULL;
    fixture_start("h2", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned ctl = data[0];
    size_t n = size - 1 > MAX_IN_BYTES ? MAX_IN_BYTES : size - 1;
    run(engine_for(ctl), data + 1, n, ctl, piece_for(ctl));
    return 0;
}
