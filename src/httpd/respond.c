/* Responses: the head is built in a per-server scratch buffer and written together with any
 * in-memory body in one sendmsg; a file body follows with sendfile, so file bytes never pass
 * through user space, or, when copy_body says so (cfg.sendfile: by default, bodies from
 * 4 MiB up to loopback clients), in pieces read into the exchange's fcopy buffer and sent
 * from there. Only what the socket does not take right away is copied into the
 * connection's own buffer, which keeps the common case free of per-request allocation.
 * On TCP the head is sent with MSG_MORE when a file body follows, so the two leave in one
 * segment instead of two (a small file then costs one packet, not two).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define SENDFILE_CHUNK (4u << 20) /* per call, so one fast client cannot hog the loop */
/* File bytes a connection on readiness writes per turn of the loop at most. A client that
 * drains its socket as fast as the server fills it (one on loopback) would otherwise take its
 * whole body in one call while the other connections wait: with 8 clients of a 10 MiB file,
 * the slowest response took 10x the mean (p99 660 ms against a 60 ms mean). The rest goes on
 * the next turn, the socket still being writable. */
#define TURN_BUDGET (1u << 20)
/* A copied piece: the --unsent-max default, so one read fills what the kernel queues per
 * wake-up. 64 KiB pieces cost 1.4x the server CPU per 10 MiB response on loopback. */
#define COPY_CHUNK (256u << 10)

void nk__resp_init(nk__resp *r, int status)
{
    memset(r, 0, sizeof *r);
    r->status = status;
    r->file_fd = -1;
}

void nk__resp_body_scratch(nk__resp *r, nk_httpd *srv)
{
    r->mem_body = nk_buf_rptr(&srv->body);
    r->content_length = nk_buf_len(&srv->body);
}

nk__outcome nk__respond_live(nk__conn *c, const nk_http_request *req, nk__status status,
                             const char *content_type)
{
    nk__resp r;
    nk__resp_init(&r, status);
    r.content_type = content_type;
    nk__resp_body_scratch(&r, c->srv);
    r.no_body = req->method == NK_HTTP_HEAD;
    r.extra_headers = "Cache-Control: no-store\r\n";
    return nk__respond(c, &r);
}

static void put(nk_buf *b, const char *s, size_t n)
{
    /* The scratch head keeps its memory from one response to the next, so the copy nearly
     * always fits: a head is some twenty pieces, and going through nk_buf_append for each
     * was a tenth of the server's own instructions per small response. */
    if (n <= nk_buf_space(b)) {
        memcpy(nk_buf_wptr(b), s, n);
        b->wpos += n;
        return;
    }
    /* The scratch head has no size limit of its own; an allocation failure truncates the
     * head, which the caller detects through the final length check. */
    (void)nk_buf_append(b, s, n);
}

/* "Name: " comes as a literal with its length known to the compiler: one copy, no strlen. */
static void put_field(nk_buf *b, const char *name_colon, size_t len, const char *value)
{
    put(b, name_colon, len);
    put(b, value, strlen(value));
    put(b, "\r\n", 2);
}
#define put_header(b, name, value) put_field((b), name ": ", sizeof(name ": ") - 1, (value))

static void put_u64(nk_buf *b, uint64_t v)
{
    char tmp[24];
    size_t n = sizeof tmp;
    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(b, tmp + n, sizeof tmp - n);
}

/* Location from a normalised path: each segment percent-encoded (so a segment can neither
 * add a "/" nor look like a scheme), empty segments dropped (so the value never starts with
 * "//", which a browser reads as another host), the query kept to the characters RFC 3986
 * section 3.4 allows there. The result is always an absolute path on this server. */
static void put_location(nk_buf *h, const nk__resp *r)
{
    put(h, "Location: ", 10);
    if (r->location_origin)
        put(h, r->location_origin, strlen(r->location_origin));
    const char *p = r->location_path;
    int wrote = 0;
    while (*p) {
        while (*p == '/')
            p++;
        const char *seg = p;
        while (*p && *p != '/')
            p++;
        if (p > seg) {
            put(h, "/", 1);
            (void)nk_http_url_escape(seg, (size_t)(p - seg), h);
            wrote = 1;
        }
    }
    size_t plen = strlen(r->location_path);
    int dir = r->location_dir || (plen && r->location_path[plen - 1] == '/');
    if (!wrote || dir)
        put(h, "/", 1);
    if (r->location_query.p) {
        put(h, "?", 1);
        (void)nk_http_query_escape(r->location_query.p, r->location_query.len, h);
    }
    put(h, "\r\n", 2);
}

_Static_assert(sizeof(((nk_httpd *)0)->lm_text) > NK_HTTP_DATE_LEN, "lm_text holds a date");

static void build_head(nk__conn *c, const nk__resp *r)
{
    nk_httpd *srv = c->srv;
    nk_buf *h = &srv->head;
    nk_buf_clear(h);
    static const char ok_line[] = "HTTP/1.1 200 OK\r\nServer: " NK_SERVER_NAME "\r\nDate: ";
    if (r->status == 200) {
        put(h, ok_line, sizeof ok_line - 1); /* nearly every response: one copy */
    } else {
        const char *reason = nk_http_reason(r->status);
        put(h, "HTTP/1.1 ", 9);
        put_u64(h, (uint64_t)r->status);
        put(h, " ", 1);
        put(h, reason, strlen(reason));
        put(h, "\r\nServer: " NK_SERVER_NAME "\r\nDate: ", 10 + sizeof NK_SERVER_NAME - 1 + 8);
    }
    put(h, nk__httpd_date(srv), NK_HTTP_DATE_LEN);
    put(h, "\r\n", 2);
    if (r->content_type)
        put_header(h, "Content-Type", r->content_type);
    /* RFC 9110 section 8.6: no Content-Length in 204 (and none in 1xx); in a 304 it could
     * only repeat the 200's value, which is left out as nginx and lighttpd do. */
    if ((r->gzip && r->status == 200) || (r->stream && !c->http10)) {
        /* RFC 9112 section 6.1: the compressed length is unknown until the end. */
        put(h, "Transfer-Encoding: chunked\r\n", 28);
    } else if (r->stream) {
        /* HTTP/1.0 has no chunked coding: the end of the connection ends the body
         * (RFC 9112 section 6.3, point 8); close_after is set by the caller. */
    } else if (r->status != 204 && r->status != 304) {
        put(h, "Content-Length: ", 16);
        put_u64(h, r->content_length);
        put(h, "\r\n", 2);
    }
    if (r->last_modified) {
        if (r->last_modified != srv->lm_sec) {
            nk_http_date_format(r->last_modified, srv->lm_text);
            srv->lm_sec = r->last_modified;
        }
        put(h, "Last-Modified: ", 15);
        put(h, srv->lm_text, NK_HTTP_DATE_LEN);
        put(h, "\r\n", 2);
    }
    if (r->etag)
        put_header(h, "ETag", r->etag);
    if (r->accept_ranges)
        put(h, "Accept-Ranges: bytes\r\n", 22);
    if (r->content_encoding)
        put_header(h, "Content-Encoding", r->content_encoding);
    if (r->vary_accept_encoding)
        put(h, "Vary: Accept-Encoding\r\n", 23);
    if (r->content_range[0])
        put_header(h, "Content-Range", r->content_range);
    if (r->allow)
        put_header(h, "Allow", r->allow);
    if (r->location_path)
        put_location(h, r);
    if (r->extra_headers)
        put(h, r->extra_headers, strlen(r->extra_headers));
    /* Fetch standard, CORS protocol: any origin may read; no credentials are involved. */
    if (srv->cfg.cors)
        put(h, "Access-Control-Allow-Origin: *\r\n", 32);
    /* RFC 6797 section 7.2: only over a secure transport. */
    if (srv->hsts_s && nk__conn_secure(c)) {
        put(h, "Strict-Transport-Security: max-age=", 35);
        put_u64(h, srv->hsts_s);
        put(h, "\r\n", 2);
    }
    /* RFC 9112 section 9.6 / 9.3: say when the connection ends; HTTP/1.0 clients need the
     * keep-alive said explicitly. */
    if (c->close_after)
        put(h, "Connection: close\r\n", 19);
    else if (c->http10)
        put(h, "Connection: keep-alive\r\n", 24);
    put(h, "\r\n", 2);
}

/* Append iov data the socket did not take to c->x->out, as memory of the current segment. */
static int keep_rest(nk__conn *c, const struct iovec *iov, int iovcnt, size_t written)
{
    for (int i = 0; i < iovcnt; i++) {
        size_t len = iov[i].iov_len;
        if (written >= len) {
            written -= len;
            continue;
        }
        size_t n = len - written;
        if (nk_buf_append(&c->x->out, (const char *)iov[i].iov_base + written, n) < 0)
            return -ENOMEM;
        c->x->seg.mem += n;
        written = 0;
    }
    return 0;
}

/* Write head + memory body directly when nothing is queued; queue what remains. */
static int send_now(nk__conn *c, const char *body, size_t body_len, int more)
{
    nk_httpd *srv = c->srv;
    struct iovec iov[2] = {
        {nk_buf_rptr(&srv->head), nk_buf_len(&srv->head)},
        {(void *)body, body_len},
    };
    int iovcnt = body_len ? 2 : 1;
    size_t total = iov[0].iov_len + body_len;
    size_t written = 0;
    if (!c->x->seg.mem && nk_buf_len(&c->x->out) == 0) {
        ssize_t n = nk__xp_sendv(c, iov, iovcnt, more);
        if (n < 0 && n != -EAGAIN)
            return (int)n;
        if (n > 0) {
            written = (size_t)n;
            NK__COUNT(srv, bytes_sent, n);
        }
    }
    if (written < total)
        return keep_rest(c, iov, iovcnt, written);
    return 0;
}

/* File bodies through user space (x->copy_body): a piece of the file is read into x->fcopy,
 * then written from there like any other memory. */
static int copy_fill(nk__conn *c)
{
    nk__ex *x = c->x;
    size_t want = x->seg.len < COPY_CHUNK ? (size_t)x->seg.len : COPY_CHUNK;
    /* On operations the read's memory is lent out while it runs (nk__opc_pread): reserved
     * before it starts, not again when its result is asked for. */
    if (!(c->opc && nk__opc_sending(c)) && nk_buf_reserve(&x->fcopy, want) < 0)
        return -ENOMEM;
    ssize_t n;
    if (c->opc) {
        n = nk__opc_pread(c, x->file_fd, x->seg.off, want, &x->fcopy); /* -EAGAIN: running */
    } else {
        do
            n = pread(x->file_fd, nk_buf_wptr(&x->fcopy), want, x->seg.off);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            n = errno == EAGAIN ? -EIO : -errno; /* -EAGAIN means "a read runs" below */
        else
            x->fcopy.wpos += (size_t)n;
    }
    if (n < 0)
        return (int)n;
    if (n == 0)
        return -EIO; /* the file shrank under us: the promised length cannot be kept */
    x->seg.off += n;
    x->seg.len -= (uint64_t)n;
    return (int)n;
}

/* Write what x->fcopy holds: 1 when all of it went, 0 when the socket is full, or an error.
 * Its memory stays for the next piece, and for the next part of a multipart answer, until
 * the response ends (nk__ex_file_release). */
static int copy_flush(nk__conn *c)
{
    nk__ex *x = c->x;
    int more = x->seg.len != 0 || x->iseg < x->nsegs;
    ssize_t n = nk__xp_send(c, nk_buf_rptr(&x->fcopy), nk_buf_len(&x->fcopy), more);
    if (n < 0)
        return n == -EAGAIN ? 0 : (int)n;
    NK__COUNT(c->srv, bytes_sent, n);
    nk_buf_consume(&x->fcopy, (size_t)n);
    if (nk_buf_len(&x->fcopy))
        return 0; /* short write: the socket is full */
    return 1;
}

int nk__respond_flush(nk__conn *c)
{
    if (!c->x)
        return 0; /* idle: nothing to write */
    /* Operations send one piece per completion and HTTP/2 streams have the session's turns:
     * the budget is for sockets on readiness, plain or TLS. A TLS write that counts towards
     * it has been taken whole (OpenSSL holds no record half-written after a success), so
     * stopping there leaves nothing that must be repeated with the same bytes. */
    size_t spent = 0, budget = c->opc || nk__conn_h2s(c) ? SIZE_MAX : TURN_BUDGET;
    for (;;) {
        if (c->x->seg.mem) {
            ssize_t n = nk__xp_send(c, nk_buf_rptr(&c->x->out), c->x->seg.mem, c->x->seg.len != 0);
            if (n < 0)
                return n == -EAGAIN ? 0 : (int)n;
            nk_buf_consume(&c->x->out, (size_t)n);
            c->x->seg.mem -= (size_t)n;
            NK__COUNT(c->srv, bytes_sent, n);
            continue;
        }
        if (nk_buf_len(&c->x->fcopy)) {
            int r = copy_flush(c);
            if (r <= 0)
                return r;
            continue;
        }
        if (c->x->seg.len && spent >= budget)
            return 0; /* this turn's share: more on the next one */
        if (c->x->seg.len && c->x->copy_body && !nk__conn_h2s(c)) {
            int r = copy_fill(c);
            if (r == -EAGAIN)
                return 0; /* the read runs: its completion comes back here */
            if (r < 0)
                return r;
            spent += (size_t)r;
            continue;
        }
        if (c->x->seg.len) {
            size_t chunk = c->opc ? NK__OPC_SENDFILE_STEP : SENDFILE_CHUNK;
            size_t want = c->x->seg.len < chunk ? (size_t)c->x->seg.len : chunk;
            ssize_t n = nk__xp_sendfile(c, c->x->file_fd, &c->x->seg.off, want);
            if (n < 0)
                return n == -EAGAIN ? 0 : (int)n;
            if (n == 0)
                return -EIO; /* the file shrank under us: the promised length cannot be kept */
            NK__COUNT(c->srv, bytes_sent, n);
            spent += (size_t)n;
            c->x->seg.len -= (uint64_t)n;
            /* TLS sends a record's worth per call: only -EAGAIN means the socket is full. */
            if (c->x->seg.len && ((size_t)n == want || c->tls))
                continue;
            if (c->x->seg.len)
                return 0; /* short write: the socket is full */
            continue;
        }
        if (c->x->iseg < c->x->nsegs) {
            c->x->seg = c->x->segs[c->x->iseg++];
            continue;
        }
        if (c->x->gz) {
            /* The previous piece is out: compress the next one. */
            int r = nk__gz_fill(c);
            if (r < 0)
                return r;
            if (r > 0)
                continue;
        }
        if (c->x->produce) {
            if (c->x->produce_paused)
                return 0; /* nothing yet: nk_httpd_ex_resume wakes it */
            int r = nk__produce_fill(c);
            if (r < 0)
                return r;
            if (r > 0)
                continue;
            return 0;
        }
        break;
    }
    nk__ex_file_release(c->srv, c->x);
    free(c->x->segs);
    c->x->segs = NULL;
    c->x->nsegs = c->x->iseg = 0;
    return 1;
}

void nk__resp_release(nk_httpd *srv, nk__resp *r)
{
    nk__fcache_release(srv, r->file);
    r->file = NULL;
    if (r->file_fd_owned && r->file_fd >= 0)
        close(r->file_fd);
    r->file_fd_owned = 0;
}

void nk__ex_file_release(nk_httpd *srv, nk__ex *x)
{
    nk__fcache_release(srv, x->file);
    x->file = NULL;
    nk_buf_free(&x->fcopy);
    if (x->file_fd_owned)
        close(x->file_fd);
    x->file_fd_owned = 0;
    x->file_fd = -1;
}

/* Whether a file body of this length goes through user space (cfg.sendfile). TLS and HTTP/2
 * streams copy anyway, through their own paths. */
static int copy_wanted(const nk__conn *c, uint64_t length)
{
    if (c->tls || c->tls_side || nk__conn_h2s(c))
        return 0;
    switch (c->srv->cfg.sendfile) {
    case NK_HTTPD_SENDFILE_OFF:
        return 1;
    case NK_HTTPD_SENDFILE_AUTO:
        return c->peer_local && length >= NK__COPY_MIN;
    default:
        return 0;
    }
}

/* The plan's file and descriptor go to the exchange, which sends from them. */
static void hand_file(nk__conn *c, nk__resp *r)
{
    c->x->file = r->file;
    c->x->file_fd = r->file_fd;
    c->x->file_fd_owned = (unsigned char)r->file_fd_owned;
    c->x->copy_body = (unsigned char)copy_wanted(c, r->content_length);
    r->file = NULL;
    r->file_fd_owned = 0;
}

/* Every way out of sending a plan: what the exchange did not take is released, then the
 * output is written (or c closed after err). */
static nk__outcome respond_finish(nk__conn *c, nk__resp *r, int err)
{
    nk__resp_release(c->srv, r);
    if (err == 0)
        err = nk__respond_flush(c);
    if (err < 0) {
        nk__conn_close(c);
        return NK__CLOSED;
    }
    return NK__DONE;
}

nk__outcome nk__respond(nk__conn *c, nk__resp *r)
{
    nk_httpd *srv = c->srv;
    build_head(c, r);
    if (r->gzip && !r->no_body) {
        /* Uncompressed size in the log: known now, when the line is written. */
        nk__log_request(c, r->status, r->content_length);
        int err = nk__gz_start(c, r->file_fd, r->mem_body, r->content_length);
        if (err == 0) {
            hand_file(c, r);
            err = send_now(c, NULL, 0, 1);
        }
        return respond_finish(c, r, err);
    }
    int has_file = (r->file || r->file_fd_owned) && r->file_fd >= 0 && !r->no_body &&
                   r->content_length > 0 && !r->mem_body;
    nk__log_request(c, r->status, r->no_body ? 0 : r->content_length);
    /* The body is exactly content_length bytes from the one source the plan names: the
     * file, or mem_body. There is no implicit source: a plan that declares a length without
     * naming where the bytes are is a bug, answered by closing rather than by sending
     * whatever a scratch buffer last held (another client's page). */
    const char *body = NULL;
    size_t body_len = 0;
    if (!has_file && !r->no_body && r->content_length > 0) {
        if (!r->mem_body) {
            nk__httpd_log(srv, NK_LOG_ERROR,
                          "response %d declares %llu body bytes without a source", r->status,
                          (unsigned long long)r->content_length);
            return respond_finish(c, r, -EINVAL);
        }
        body = r->mem_body;
        body_len = (size_t)r->content_length;
    }
    int err = send_now(c, body, body_len, has_file);
    /* Without a file body, what the socket did not take was copied: the plan's file (a
     * cached body, a handler's descriptor with nothing to send) goes in respond_finish. */
    if (has_file) {
        hand_file(c, r);
        c->x->seg.off = r->file_off;
        c->x->seg.len = r->content_length;
    }
    return respond_finish(c, r, err);
}

nk__outcome nk__respond_multipart(nk__conn *c, nk__resp *r)
{
    /* The parts (memory in c->x->out, ranges of the file) were laid out by the caller in
     * c->x->segs; the head goes in front of the first part's memory. */
    nk_httpd *srv = c->srv;
    build_head(c, r);
    nk__log_request(c, r->status, r->content_length);
    if (r->no_body) {
        nk_buf_clear(&c->x->out);
        free(c->x->segs);
        c->x->segs = NULL;
        c->x->nsegs = c->x->iseg = 0;
        return respond_finish(c, r, send_now(c, NULL, 0, 0));
    }
    size_t hlen = nk_buf_len(&srv->head);
    int err = nk_buf_reserve(&c->x->out, hlen);
    if (err == 0) {
        /* prepend the head to the queued part bytes */
        char *p = nk_buf_rptr(&c->x->out);
        memmove(p + hlen, p, nk_buf_len(&c->x->out));
        memcpy(p, nk_buf_rptr(&srv->head), hlen);
        nk_buf_commit(&c->x->out, hlen);
        hand_file(c, r);
        c->x->seg = c->x->segs[0];
        c->x->seg.mem += hlen;
        c->x->iseg = 1;
    }
    return respond_finish(c, r, err);
}

const char *nk__resp_allow(const nk_httpd *srv)
{
    return srv->cfg.upload ? "GET, HEAD, OPTIONS, PUT, DELETE, POST" : "GET, HEAD, OPTIONS";
}

static const char *status_detail(int status)
{
    switch (status) {
    case 400: return "The request could not be understood.";
    case 401: return "This resource needs a user name and password.";
    case 409: return "The request conflicts with the state of the resource (missing directory?).";
    case 412: return "A precondition of the request does not hold.";
    case 415: return "The request body has a type this resource does not accept.";
    case 507: return "The server has no room left to store the request body.";
    case 403: return "You are not allowed to see this resource.";
    case 404: return "The requested resource was not found on this server.";
    case 408: return "The request took too long to arrive.";
    case 413: return "The request body is larger than this server accepts.";
    case 414: return "The request target is longer than this server accepts.";
    case 416: return "The requested range cannot be satisfied.";
    case 429: return "Too many failed attempts from this address; try again later.";
    case 431: return "The request header fields are too large.";
    case 500: return "The server failed to handle the request.";
    case 501: return "The server does not support this method or transfer coding.";
    case 505: return "The server supports HTTP/1.x only.";
    default: return "";
    }
}

/* A 413 says which limit was passed and, when the embedder gave one, how to change it
 * (nk_httpd_set_limit_hint): an operator reading the page or the log finds the knob. */
static const char *body_limit_text(const nk__conn *c, char *out, size_t len)
{
    const nk_httpd *srv = c->srv;
    uint64_t limit = c->x && c->x->authenticated ? srv->cfg.max_body_authenticated
                                                 : srv->cfg.max_body;
    if (limit == UINT64_MAX)
        limit = srv->cfg.max_body;
    snprintf(out, len, "The request body is larger than this server accepts (%llu bytes)%s%s.",
             (unsigned long long)limit, srv->limit_hint ? "; " : "",
             srv->limit_hint ? srv->limit_hint : "");
    return out;
}

static void body_limit_log(nk__conn *c, const char *text)
{
    nk_httpd *srv = c->srv;
    uint64_t now = nk_loop_now(srv->loop);
    if (srv->last_413_log_ms && now - srv->last_413_log_ms < 10000)
        return; /* one line per ten seconds is enough to find the knob */
    srv->last_413_log_ms = now;
    nk__httpd_log(srv, NK_LOG_WARN, "413: %s", text);
}

nk__outcome nk__respond_error(nk__conn *c, nk__status status, const char *detail)
{
    nk_httpd *srv = c->srv;
    if (status == 400) {
        /* A request we could not understand (a bad target as much as bad framing) leaves
         * no trustworthy position in the stream: nothing after it is answered. */
        c->close_after = 1;
        c->linger_needed = 1;
    }
    char limit_text[300];
    if (status == 413 && !detail) {
        detail = body_limit_text(c, limit_text, sizeof limit_text);
        body_limit_log(c, detail);
    }
    nk_buf *b = &srv->body;
    nk_buf_clear(b);
    const char *reason = nk_http_reason(status);
    if (!detail)
        detail = status_detail(status);
    nk_buf_printf(b,
                  "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%d %s</title></head>\n"
                  "<body><h1>%d %s</h1>\n<p>%s</p>\n<hr><address>" NK_SERVER_NAME
                  "</address></body></html>\n",
                  status, reason, status, reason, detail);
    nk__resp r;
    nk__resp_init(&r, status);
    r.content_type = "text/html; charset=utf-8";
    nk__resp_body_scratch(&r, srv);
    r.allow = (status == 405) ? nk__resp_allow(srv) : NULL;
    /* RFC 9110 section 11.6.1 / RFC 7617 section 2: a 401 names the scheme and realm. */
    if (status == 401)
        r.extra_headers = "WWW-Authenticate: Basic realm=\"netkit\", charset=\"UTF-8\"\r\n";
    else if (status == 429)
        r.extra_headers = "Retry-After: 60\r\n"; /* RFC 6585 section 4; auth.c's window */
    /* A HEAD answer never has a body (RFC 9110 section 9.3.2), an error included (refuse
     * sets the flag from the method as sent when the rest of the request failed). */
    if (srv->req_is_head)
        r.no_body = 1;
    return nk__respond(c, &r);
}

/* The host of a redirect to https: the request's own, when it is a plain name, an IPv4
 * address or an IPv6 literal (no user info, no odd characters a browser could read as
 * another URL part); else the address the client connected to. Port dropped. */
static int redirect_host(const nk__conn *c, const nk_http_request *req, char *out, size_t len)
{
    const char *h = req->host.p;
    size_t n = req->host.len;
    if (h && n && n < len - 2) {
        int ok = 1, v6 = memchr(h, ':', n) != NULL;
        if (v6 && n > 0 && h[0] == '[') { /* "[::1]:8443" */
            const char *end = memchr(h, ']', n);
            n = end ? (size_t)(end - h) - 1 : 0;
            h++;
        } else if (v6 && !(n > 1 && memchr(h, ':', n) != memrchr(h, ':', n))) {
            n = (size_t)((const char *)memchr(h, ':', n) - h); /* "name:port" */
            v6 = 0;
        }
        for (size_t i = 0; i < n && ok; i++) {
            unsigned char ch = (unsigned char)h[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '.' || (v6 && ch == ':');
        }
        if (ok && n) {
            snprintf(out, len, v6 ? "[%.*s]" : "%.*s", (int)n, h);
            return 0;
        }
    }
    nk_addr local;
    if (nk_sock_local(nk__conn_fd(c), &local) < 0)
        return -1;
    char text[NK_ADDR_STRLEN];
    if (nk_addr_format_host(&local, text, sizeof text) < 0 || nk_addr_family(&local) == AF_UNIX)
        return -1;
    snprintf(out, len, nk_addr_family(&local) == AF_INET6 ? "[%s]" : "%s", text);
    return 0;
}

nk__outcome nk__respond_https_redirect(nk__conn *c, const nk_http_request *req)
{
    nk_httpd *srv = c->srv;
    char host[300], origin[340];
    if (redirect_host(c, req, host, sizeof host) < 0)
        return nk__respond_error(c, 400, "This server is reached over https.");
    if (srv->https_port == 443)
        snprintf(origin, sizeof origin, "https://%s", host);
    else
        snprintf(origin, sizeof origin, "https://%s:%u", host, srv->https_port);
    int n = nk_http_path_normalize(req->path.p, req->path.len, srv->path, sizeof srv->path);
    if (n < 0 || req->path.len == 0 || req->path.p[0] != '/')
        snprintf(srv->path, sizeof srv->path, "/");
    nk_buf *b = &srv->body;
    nk_buf_clear(b);
    nk_buf_printf(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>308 Permanent "
                     "Redirect</title></head>\n<body><h1>308 Permanent Redirect</h1>\n<p>This "
                     "server is reached over https.</p></body></html>\n");
    nk__resp r;
    nk__resp_init(&r, 308);
    r.content_type = "text/html; charset=utf-8";
    nk__resp_body_scratch(&r, srv);
    r.location_origin = origin;
    r.location_path = srv->path;
    r.location_query = req->query;
    if (srv->req_is_head)
        r.no_body = 1;
    return nk__respond(c, &r);
}
