/* libFuzzer target for the whole server path (src/httpd/): request bytes in, response bytes
 * out, checked by invariants a client relies on.
 *
 * Input: the first byte chooses the engine (bits 0-1: 0 or 1 for A, static files with
 * listings, gzip, CORS and a status page; 2 for B, echo behind HTTP Basic; 3 for C, no
 * listing, SPA and tiny limits) and
 * how the rest is written (bits 2-4: all at once, or pieces of 1, 2, 3, 7, 16, 61, 512 bytes
 * with one loop iteration between pieces). The rest is the byte stream of one connection,
 * followed by the client's end of stream (shutdown SHUT_WR).
 *
 * The docroot and the engines (server_fixture.c, shared with fuzz_h2.c) serve HTTP/1.x only
 * here; the client end is driven from here without blocking, so a run is deterministic.
 *
 * Invariants (any violation aborts with a message on stderr):
 *   - every response is a strict HTTP/1.1 message: status line, CRLF field lines with token
 *     names and no control characters, one Content-Length or Transfer-Encoding: chunked;
 *   - its body is exactly what the framing declares (valid, complete chunked coding), and
 *     nothing follows it but the next response; no body after HEAD, 204 or 304; no chunked
 *     coding to an HTTP/1.0 request; nothing at all after "Connection: close";
 *   - as many final responses as complete requests (plus one for a refused tail), never more,
 *     and fewer only when the last one said "Connection: close";
 *   - a request the client ends with "close" gets "Connection: close";
 *   - Location is a path on this server: one leading "/" (never "//" or "/\"), no space or
 *     control, no "." or ".." segment, even percent-encoded;
 *   - a 200 or 206 for a file of the docroot carries exactly that file's bytes (or its .gz
 *     sidecar's, or gzip that inflates to it); a HEAD's Content-Length is the file's size;
 *   - the dotfile's and the outside-the-root file's contents never appear in a response;
 *   - after the client's end of stream the server answers and closes; after the client
 *     closes, the server's connection is gone.
 * A model of the request stream (nk_http_parse_request and the chunked decoder, with each
 * engine's limits, as the engine frames requests) tells which request each response answers.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "netkit/http.h"
#include "server_fixture.h"

#define MAX_REQUEST_BYTES (64 * 1024)       /* request bytes taken from one input */
#define MAX_RESP_HEAD (64 * 1024)

/* ---- the model of the request stream ------------------------------------------------------ */

typedef struct mreq {
    nk_http_method method;
    int http10;
    int closes;     /* the client ended the connection with this request */
    const doc *doc; /* the docroot file its path names, or NULL */
    int authorized; /* carries users[0]'s credentials */
} mreq;

typedef struct model {
    mreq *reqs;
    size_t n, cap;
    int tail; /* bytes after the last complete request that the server may refuse (one 4xx) */
} model;

/* Frame the requests as the engine does: a head, then Content-Length bytes or a chunked body
 * (within max_body), until a head or body is incomplete or invalid, or a request says close. */
static void model_build(model *m, const engine *e, const char *in, size_t n)
{
    static nk_http_request req;
    size_t off = 0;
    while (off < n) {
        int status = 0;
        int r = nk_http_parse_request(in + off, n - off, 0, &e->cfg.limits, &req, &status);
        if (r <= 0)
            break;
        size_t pos = off + (size_t)r;
        if (req.content_length > 0) {
            if ((uint64_t)req.content_length > e->cfg.max_body ||
                (uint64_t)req.content_length > n - pos)
                break;
            pos += (size_t)req.content_length;
        } else if (req.chunked) {
            nk_http_chunked ch;
            nk_http_chunked_init(&ch, e->cfg.max_body);
            int cr;
            do {
                size_t used;
                const char *data;
                size_t dlen;
                cr = nk_http_chunked_step(&ch, in + pos, n - pos, &used, &data, &dlen);
                pos += used;
            } while (cr == 1);
            if (cr != 2)
                break;
        }
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 16;
            m->reqs = realloc(m->reqs, m->cap * sizeof *m->reqs);
            if (!m->reqs)
                abort();
        }
        mreq *q = &m->reqs[m->n++];
        q->method = req.method;
        q->http10 = req.version_minor == 0;
        q->closes = !req.keep_alive;
        q->doc = e->serves_files ? doc_for(&req) : NULL;
        /* base64 of "user:pass"; a request without it must never get a 2xx */
        const nk_http_header *auth = nk_http_find_header(&req, "Authorization");
        q->authorized = auth && memmem(auth->value.p, auth->value.len, "dXNlcjpwYXNz", 12);
        off = pos;
        if (q->closes)
            return; /* the server answers it and closes: the rest is never read */
    }
    m->tail = off < n;
}

/* ---- the response checker ---------------------------------------------------------------- */

typedef struct rx {
    unsigned char *p; /* received bytes not yet checked */
    size_t len, cap;
    size_t total;
    size_t finals;    /* final (non-1xx) responses checked */
    int closed;       /* a response said Connection: close */
    const engine *e;
    const model *m;
    unsigned char *scratch; /* a dechunked body */
    size_t scratch_len, scratch_cap;
} rx;

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int ieq(const unsigned char *p, size_t n, const char *s)
{
    return strlen(s) == n && strncasecmp((const char *)p, s, n) == 0;
}

static void check_location(const unsigned char *v, size_t n)
{
    if (n == 0 || v[0] != '/' || (n > 1 && (v[1] == '/' || v[1] == '\\')))
        fail("Location \"%.*s\" is not one path on this server (must start with exactly one /)",
             (int)n, v);
    size_t end = n;
    for (size_t i = 0; i < n; i++) {
        if (v[i] <= 0x20 || v[i] >= 0x7f)
            fail("Location \"%.*s\" holds a space, control or non-ASCII byte", (int)n, v);
        if ((v[i] == '?' || v[i] == '#') && end == n)
            end = i;
    }
    /* every segment of the path part, with %2e decoded, must not be "." or ".." */
    for (size_t s = 1; s <= end;) {
        size_t e = s;
        while (e < end && v[e] != '/')
            e++;
        int dots = 0, other = 0;
        for (size_t i = s; i < e; i++) {
            if (v[i] == '.')
                dots++;
            else if (v[i] == '%' && i + 2 < e && v[i + 1] == '2' && (v[i + 2] | 0x20) == 'e')
                dots++, i += 2;
            else
                other = 1;
        }
        if (!other && (dots == 1 || dots == 2))
            fail("Location \"%.*s\" has a dot segment", (int)n, v);
        s = e + 1;
    }
}

/* Content-Length: digits only, bounded. */
static int64_t parse_length(const unsigned char *v, size_t n)
{
    if (n == 0 || n > 18)
        fail("Content-Length \"%.*s\" is not a bounded decimal number", (int)n, v);
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            fail("Content-Length \"%.*s\" is not a decimal number", (int)n, v);
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

typedef struct head {
    int status;
    int64_t length;      /* -1 when absent */
    int chunked, close, gzip, multipart;
    const unsigned char *range; /* Content-Range value, or NULL */
    size_t range_len;
    size_t len;          /* through the empty line */
} head;

/* Parse the head at r->p strictly. 0 when more bytes are needed. */
static int parse_head(rx *r, head *h, int eof)
{
    const unsigned char *p = r->p, *end = NULL;
    for (size_t i = 0; i + 3 < r->len; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
            end = p + i + 2;
            break;
        }
    size_t k = r->len < 9 ? r->len : 9;
    if (memcmp(p, "HTTP/1.1 ", k) != 0) {
        show("received", p, r->len);
        if (r->finals)
            fail("bytes after response %zu's declared end are not a response (a body after "
                 "HEAD, 204 or 304, or longer than its framing says?)", r->finals);
        fail("the first response does not start with an HTTP/1.1 status line");
    }
    if (!end) {
        if (r->len > MAX_RESP_HEAD || eof) {
            show("received", p, r->len);
            fail(eof ? "the connection ended inside a response head" : "a response head over 64 KiB");
        }
        return 0;
    }
    memset(h, 0, sizeof *h);
    h->length = -1;
    h->len = (size_t)(end - p) + 2;
    if (h->len < 17 || !(p[9] >= '1' && p[9] <= '5') || p[10] < '0' || p[10] > '9' ||
        p[11] < '0' || p[11] > '9' || p[12] != ' ') {
        show("received", p, r->len);
        fail("a malformed status line after %zu response(s)", r->finals);
    }
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const unsigned char *line = p + 13;
    int seen_length = 0, seen_te = 0;
    for (;;) {
        const unsigned char *eol = line;
        while (*eol != '\r' && *eol != '\n')
            eol++;
        if (*eol != '\r' || eol[1] != '\n') {
            show("head", p, h->len);
            fail("a bare CR or LF in a response head");
        }
        if (line != p + 13) { /* a field line (the first line is the reason) */
            if (eol == line)
                break;
            const unsigned char *colon = line;
            while (colon < eol && is_tchar(*colon))
                colon++;
            if (colon == line || colon == eol || *colon != ':') {
                show("head", p, h->len);
                fail("a field line without a token name and a colon");
            }
            const unsigned char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            for (const unsigned char *c = v; c < ve; c++)
                if ((*c < 0x20 && *c != '\t') || *c == 0x7f) {
                    show("head", p, h->len);
                    fail("a control character in a field value");
                }
            size_t nl = (size_t)(colon - line), vl = (size_t)(ve - v);
            if (ieq(line, nl, "Content-Length")) {
                if (seen_length++)
                    fail("two Content-Length fields");
                h->length = parse_length(v, vl);
            } else if (ieq(line, nl, "Transfer-Encoding")) {
                if (seen_te++ || !ieq(v, vl, "chunked"))
                    fail("Transfer-Encoding other than one \"chunked\"");
                h->chunked = 1;
            } else if (ieq(line, nl, "Connection")) {
                h->close = ieq(v, vl, "close");
            } else if (ieq(line, nl, "Content-Encoding")) {
                h->gzip = ieq(v, vl, "gzip");
            } else if (ieq(line, nl, "Content-Type")) {
                h->multipart = vl >= 10 && strncasecmp((const char *)v, "multipart/", 10) == 0;
            } else if (ieq(line, nl, "Content-Range")) {
                h->range = v;
                h->range_len = vl;
            } else if (ieq(line, nl, "Location")) {
                check_location(v, vl);
            }
        } else {
            for (const unsigned char *c = line; c < eol; c++)
                if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
                    fail("a control character in the reason phrase");
        }
        line = eol + 2;
    }
    if (seen_length && seen_te)
        fail("both Content-Length and Transfer-Encoding");
    return 1;
}

/* Walk a chunked body strictly (hex size CRLF data CRLF ... "0" CRLF CRLF), copying the data
 * to r->scratch. Returns its length on the wire, or 0 when more bytes are needed. */
static size_t chunked_body(rx *r, size_t start, int eof)
{
    const unsigned char *p = r->p;
    size_t i = start;
    r->scratch_len = 0;
    for (;;) {
        uint64_t size = 0;
        size_t digits = 0;
        for (; i < r->len; i++, digits++) {
            int c = p[i];
            int d = c >= '0' && c <= '9' ? c - '0'
                    : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
            if (d < 0)
                break;
            if (digits >= 15)
                fail("a chunk size of more than 15 hex digits");
            size = size * 16 + (uint64_t)d;
        }
        if (i + 2 > r->len)
            goto more;
        if (digits == 0 || p[i] != '\r' || p[i + 1] != '\n') {
            show("chunked body", p + start, r->len - start);
            fail("a chunk size line that is not HEX CRLF");
        }
        i += 2;
        if (size == 0) {
            if (i + 2 > r->len)
                goto more;
            if (p[i] != '\r' || p[i + 1] != '\n')
                fail("trailer fields or garbage after the last chunk");
            return i + 2 - start;
        }
        if (r->len - i < size + 2)
            goto more;
        grow(&r->scratch, &r->scratch_cap, r->scratch_len + size);
        memcpy(r->scratch + r->scratch_len, p + i, size);
        r->scratch_len += size;
        i += size;
        if (p[i] != '\r' || p[i + 1] != '\n')
            fail("chunk data not followed by CRLF");
        i += 2;
    }
more:
    if (eof) {
        show("chunked body", p + start, r->len - start);
        fail("the connection ended inside a chunked body");
    }
    return 0;
}

/* A 200 or 206 for a known file carries its bytes. */
static void check_content(const head *h, const mreq *q, const unsigned char *body, size_t n)
{
    const doc *d = q->doc;
    const unsigned char *rep = d->plain;
    size_t rep_len = d->plain_len;
    if (h->gzip && !h->chunked) {
        if (!d->gz)
            fail("%s sent gzip-encoded with a length, but it has no sidecar", d->url);
        rep = d->gz;
        rep_len = d->gz_len;
    }
    if (q->method == NK_HTTP_HEAD) {
        if (h->status == 200 && !h->chunked && (uint64_t)h->length != rep_len)
            fail("HEAD %s: Content-Length %lld, the file has %zu bytes", d->url,
                 (long long)h->length, rep_len);
        return;
    }
    if (h->status == 200 && h->gzip && h->chunked) {
        check_inflates_to(body, n, d);
        return;
    }
    size_t from = 0;
    if (h->status == 206) {
        if (h->multipart)
            return;
        unsigned long long a, b, total;
        char tail;
        char spec[96];
        snprintf(spec, sizeof spec, "%.*s", (int)h->range_len, h->range ? (const char *)h->range : "");
        if (sscanf(spec, "bytes %llu-%llu/%llu%c", &a, &b, &total, &tail) != 3 || a > b ||
            b >= total || total != rep_len)
            fail("206 for %s with Content-Range \"%s\" (the representation has %zu bytes)",
                 d->url, spec, rep_len);
        from = (size_t)a;
        rep_len = (size_t)(b - a + 1);
    }
    if (n != rep_len || memcmp(body, rep + from, n) != 0) {
        show("body", body, n);
        fail("%d for %s: the body is not the file's %zu bytes at %zu", h->status, d->url, rep_len,
             from);
    }
}

/* Check the response at the front of r->p and drop it. 0 when more bytes are needed. */
static int check_one(rx *r, int eof)
{
    head h;
    if (!parse_head(r, &h, eof))
        return 0;
    if (r->closed)
        fail("a response after one that said Connection: close");
    const model *m = r->m;
    int interim = h.status < 200;
    if (interim && (h.status != 100 || h.length >= 0 || h.chunked))
        fail("an interim response other than a bare 100 Continue (%d)", h.status);
    if (!interim && r->finals >= m->n + (size_t)m->tail)
        fail("response %zu, but only %zu complete request(s)%s", r->finals + 1, m->n,
             m->tail ? " and a refused tail" : "");
    const mreq *q = !interim && r->finals < m->n ? &m->reqs[r->finals] : NULL;
    if (q && q->http10 && h.chunked)
        fail("chunked coding in a response to an HTTP/1.0 request");
    if (q && q->closes && !h.close)
        fail("the request said close, its response does not say Connection: close");
    if (q && r->e->needs_auth && !q->authorized && h.status >= 200 && h.status < 300)
        fail("%d to a request without credentials", h.status);
    if (h.status == 204 && (h.length >= 0 || h.chunked))
        fail("a 204 with Content-Length or Transfer-Encoding");
    size_t body_at = h.len, body_len = 0, wire = 0;
    const unsigned char *body = r->p + body_at;
    if (interim || h.status == 204 || h.status == 304 || (q && q->method == NK_HTTP_HEAD)) {
        wire = 0;
    } else if (h.chunked) {
        if (!(wire = chunked_body(r, body_at, eof)))
            return 0;
        body = r->scratch;
        body_len = r->scratch_len;
    } else if (h.length < 0) {
        show("head", r->p, h.len);
        fail("a response with a body but neither Content-Length nor chunked coding");
    } else if (!q) {
        /* The refusal of an unframed tail: a HEAD's (no body) or anyone else's. It is the last
         * response, so wait for the end to see which. */
        if (!eof)
            return 0;
        if (r->len - body_at != 0 && r->len - body_at != (uint64_t)h.length) {
            show("after the head", r->p + body_at, r->len - body_at);
            fail("the last response has %zu bytes after its head, Content-Length says %lld",
                 r->len - body_at, (long long)h.length);
        }
        wire = body_len = r->len - body_at;
    } else {
        if (r->len - body_at < (uint64_t)h.length) {
            if (eof) {
                show("head", r->p, h.len);
                fail("the connection ended %zu bytes into a %lld-byte body", r->len - body_at,
                     (long long)h.length);
            }
            return 0;
        }
        wire = body_len = (size_t)h.length;
    }
    if (r->e->serves_files) {
        /* The body only: a Location may repeat the request's query, which the fuzzer can
         * fill with the marker itself. */
        const unsigned char *b = r->p + body_at;
        if (memmem(b, wire, SECRET_DOT, sizeof SECRET_DOT - 1) ||
            memmem(b, wire, SECRET_OUT, sizeof SECRET_OUT - 1)) {
            show("response", r->p, body_at + wire);
            fail("a dotfile or a file outside the root was served");
        }
    }
    if (q && q->doc && (h.status == 200 || h.status == 206))
        check_content(&h, q, body, body_len);
    if (!interim) {
        r->finals++;
        r->closed = h.close;
    }
    size_t used = body_at + wire;
    memmove(r->p, r->p + used, r->len - used);
    r->len -= used;
    return 1;
}

/* ---- one run ----------------------------------------------------------------------------- */

static void run(engine *e, const uint8_t *in, size_t n, size_t piece)
{
    model m = {0};
    model_build(&m, e, (const char *)in, n);
    rx r = {0};
    r.e = e;
    r.m = &m;
    int fd = client_connect(e);
    size_t sent = 0;
    int writing = 1, eof = 0;
    unsigned idle = 0;
    if (n == 0) {
        shutdown(fd, SHUT_WR);
        writing = 0;
    }
    while (!eof) {
        int progress = 0;
        if (writing) {
            size_t want = n - sent;
            if (piece && want > piece)
                want = piece;
            ssize_t w = send(fd, in + sent, want, MSG_NOSIGNAL);
            if (w > 0) {
                sent += (size_t)w;
                progress = 1;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                writing = 0; /* the server closed: it reads no more */
            }
            if (sent == n) {
                shutdown(fd, SHUT_WR);
                writing = 0;
            }
        }
        if (loop_turn(e))
            progress = 1;
        client_recv(fd, &r.p, &r.len, &r.cap, &r.total, &eof, &progress);
        while (r.len && check_one(&r, 0))
            ;
        if (progress)
            idle = 0;
        else if (++idle > MAX_IDLE)
            fail("stuck: %zu of %zu request bytes sent, the server neither answers nor closes "
                 "(%zu response(s) so far)", sent, n, r.finals);
    }
    while (r.len)
        check_one(&r, 1);
    if (r.finals < m.n && !r.closed)
        fail("%zu complete request(s), %zu response(s), and none said Connection: close", m.n,
             r.finals);
    close(fd);
    wait_released(e);
    free(r.p);
    free(r.scratch);
    free(m.reqs);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fixture_start("httpd", 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t n = size - 1 > MAX_REQUEST_BYTES ? MAX_REQUEST_BYTES : size - 1;
    run(engine_for(data[0]), data + 1, n, piece_for(data[0]));
    return 0;
}
