/* One HTTP/2 stream (see h2.h): the request, decoded by nghttp2, is written as HTTP/1.1
 * bytes for the stream's virtual connection, and what that connection answers is read back
 * as an HTTP/1.1 response and handed to nghttp2 as HEADERS and DATA.
 *
 * The request bytes are made only from what nghttp2 validated (RFC 9113 section 8.2: field
 * names lowercase tokens, values without CR, LF or NUL, pseudo-header rules), checked once
 * more here where they become a request line, so nothing a client sends over HTTP/2 can
 * read as more than one HTTP/1.1 request or a different one. A body without Content-Length
 * goes chunked, each DATA frame one chunk. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <unistd.h>

#include "httpd/h2.h"

#define BODY_CAP (64u * 1024) /* answer bytes buffered per stream before the handler waits */
#define IN_LOW (16u * 1024)   /* request bytes buffered below which the windows reopen */
#define DISCARD_MAX (8u << 20) /* request bytes read and dropped after a whole early answer */

static nk__conn *parent(const nk__h2s *s)
{
    return s->h2 ? s->h2->c : NULL;
}

int nk__conn_fd(const nk__conn *c)
{
    if (nk__conn_h2s(c)) {
        const nk__conn *p = parent(nk__conn_h2s(c));
        return p ? p->io.fd : -1;
    }
    return c->io.fd;
}

int nk__conn_secure(const nk__conn *c)
{
    if (nk__conn_h2s(c)) {
        const nk__conn *p = parent(nk__conn_h2s(c));
        return p && p->tls;
    }
    return c->tls != NULL;
}

nk__h2s *nk__h2s_new(nk__h2 *h, int32_t id)
{
    nk__h2s *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->h2 = h;
    s->srv = h->c->srv;
    s->srv->h2_streams_open++;
    s->id = id;
    nk_buf_init(&s->in, 0);
    nk_buf_init(&s->head, NK_HTTP_RESPONSE_MAX_HEAD);
    nk_buf_init(&s->body, 0);
    s->next = h->streams;
    if (h->streams)
        h->streams->prev = s;
    h->streams = s;
    h->nstreams++;
    return s;
}

static void ready_remove(nk__h2s *s)
{
    nk__h2 *h = s->h2;
    if (!h || !s->on_ready)
        return;
    nk__h2s *prev = NULL;
    for (nk__h2s *r = h->ready; r; prev = r, r = r->ready_next) {
        if (r != s)
            continue;
        if (prev)
            prev->ready_next = r->ready_next;
        else
            h->ready = r->ready_next;
        if (h->ready_tail == s)
            h->ready_tail = prev;
        break;
    }
    s->on_ready = 0;
}

void nk__h2s_free(nk__h2s *s)
{
    nk__h2 *h = s->h2;
    if (h) {
        ready_remove(s);
        if (s->prev)
            s->prev->next = s->next;
        else
            h->streams = s->next;
        if (s->next)
            s->next->prev = s->prev;
        h->nstreams--;
        if (s->unacked)
            nghttp2_session_consume(h->ng, s->id, s->unacked);
        if (!s->ng_closed)
            nghttp2_session_set_stream_user_data(h->ng, s->id, NULL);
    }
    s->srv->h2_streams_open--;
    free(s->method);
    free(s->path);
    free(s->authority);
    nk_buf_free(&s->in);
    nk_buf_free(&s->head);
    nk_buf_free(&s->body);
    free(s);
}

/* ---- the request ------------------------------------------------------------------------------ */

static size_t head_cap(const nk__h2s *s)
{
    /* Past the engine's own limit by a margin: it answers 431 as over HTTP/1.1. */
    return s->h2->c->srv->cfg.limits.max_head + 4096;
}

static int is_token(const uint8_t *p, size_t n)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'z') ||
              (p[i] >= 'A' && p[i] <= 'Z') || (p[i] && strchr(extra, p[i]))))
            return 0;
    return 1;
}

/* A request-target as it will stand in a request line: visible ASCII only. */
static int is_target(const uint8_t *p, size_t n)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return 0;
    return 1;
}

static int keep_pseudo(char **slot, const uint8_t *v, size_t n)
{
    if (*slot)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* nghttp2 refuses duplicates first */
    *slot = strndup((const char *)v, n);
    return *slot ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int name_is(const uint8_t *name, size_t nlen, const char *what)
{
    return nlen == strlen(what) && memcmp(name, what, nlen) == 0;
}

int nk__h2s_header(nk__h2s *s, const uint8_t *name, size_t nlen, const uint8_t *value,
                   size_t vlen)
{
    /* An HPACK bomb expands a small block into huge fields: past this, the connection ends. */
    s->decoded += nlen + vlen + 32;
    s->nfields++;
    if (s->decoded > 4 * head_cap(s) || s->nfields > 4 * NK_HTTP_MAX_HEADERS)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (nlen && name[0] == ':') {
        if (name_is(name, nlen, ":method"))
            return is_token(value, vlen) ? keep_pseudo(&s->method, value, vlen)
                                         : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (name_is(name, nlen, ":path"))
            return is_target(value, vlen) ? keep_pseudo(&s->path, value, vlen)
                                          : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (name_is(name, nlen, ":authority"))
            return is_target(value, vlen) ? keep_pseudo(&s->authority, value, vlen)
                                          : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0; /* :scheme: the listener says whether TLS is under it */
    }
    /* RFC 9113 section 8.3.1: :authority wins over Host. */
    if (s->authority && name_is(name, nlen, "host"))
        return 0;
    if (name_is(name, nlen, "content-length"))
        s->has_length = 1;
    if (s->oversize)
        return 0;
    for (size_t i = 0; i < vlen; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (!is_token(name, nlen))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (nk_buf_len(&s->in) + nlen + vlen + 4 > head_cap(s)) {
        /* Too large: the head given to the engine is filled to past its limit with what
         * fits of this field, so the engine answers 431 as over HTTP/1.1; the rest of the
         * fields are dropped. */
        s->oversize = 1;
        size_t room = head_cap(s) - nk_buf_len(&s->in);
        if (room < nlen + 4)
            return 0; /* the head is over the limit already */
        if (nk_buf_append(&s->in, name, nlen) < 0 || nk_buf_append(&s->in, ": ", 2) < 0 ||
            nk_buf_append(&s->in, value, room - nlen - 4) < 0 ||
            nk_buf_append(&s->in, "\r\n", 2) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    }
    if (nk_buf_append(&s->in, name, nlen) < 0 || nk_buf_append(&s->in, ": ", 2) < 0 ||
        nk_buf_append(&s->in, value, vlen) < 0 || nk_buf_append(&s->in, "\r\n", 2) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

int nk__h2s_head_end(nk__h2s *s, int end_stream)
{
    int is_connect = s->method && strcmp(s->method, "CONNECT") == 0;
    const char *target = is_connect ? s->authority : s->path;
    if (!s->method || !target)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* nghttp2 checks this first */
    nk_buf head;
    nk_buf_init(&head, 0);
    int rc = nk_buf_reserve(&head, nk_buf_len(&s->in) + strlen(target) + 128 +
                                       (s->authority ? strlen(s->authority) : 0));
    if (rc >= 0) {
        nk_buf_append_str(&head, s->method);
        nk_buf_append(&head, " ", 1);
        nk_buf_append_str(&head, target);
        rc = nk_buf_append(&head, " HTTP/1.1\r\n", 11);
    }
    if (rc >= 0 && s->authority) {
        nk_buf_append(&head, "Host: ", 6);
        nk_buf_append_str(&head, s->authority);
        rc = nk_buf_append(&head, "\r\n", 2);
    }
    if (rc >= 0 && nk_buf_len(&s->in))
        rc = nk_buf_append(&head, nk_buf_rptr(&s->in), nk_buf_len(&s->in));
    /* One request per virtual connection: it ends with the answer. */
    if (rc >= 0)
        rc = nk_buf_append_str(&head, "Connection: close\r\n");
    if (rc >= 0 && !s->has_length) {
        if (!end_stream) {
            s->chunked_in = 1;
            rc = nk_buf_append_str(&head, "Transfer-Encoding: chunked\r\n");
        } else if (strcmp(s->method, "GET") != 0 && strcmp(s->method, "HEAD") != 0) {
            rc = nk_buf_append_str(&head, "Content-Length: 0\r\n"); /* an empty body */
        }
    }
    if (rc >= 0)
        rc = nk_buf_append(&head, "\r\n", 2);
    if (rc < 0) {
        nk_buf_free(&head);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    nk_buf_free(&s->in);
    s->in = head;
    s->is_head = strcmp(s->method, "HEAD") == 0;
    free(s->method);
    free(s->path);
    free(s->authority);
    s->method = s->path = s->authority = NULL;
    s->head_done = 1;
    s->in_eof = (unsigned char)(end_stream != 0);
    nk__h2_ready(s);
    return 0;
}

int nk__h2s_data(nk__h2s *s, const uint8_t *data, size_t len)
{
    int rc = 0;
    if (s->chunked_in)
        rc = nk_buf_printf(&s->in, "%zx\r\n", len);
    if (rc >= 0)
        rc = nk_buf_append(&s->in, data, len);
    if (rc >= 0 && s->chunked_in)
        rc = nk_buf_append(&s->in, "\r\n", 2);
    if (rc < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->unacked += len;
    if (s->want & NK_READ)
        nk__h2_ready(s);
    return 0;
}

void nk__h2s_body_end(nk__h2s *s)
{
    if (s->in_eof)
        return;
    if (s->chunked_in)
        nk_buf_append(&s->in, "0\r\n\r\n", 5);
    s->in_eof = 1;
    if (s->want & NK_READ)
        nk__h2_ready(s);
}

void nk__h2s_run(nk__h2s *s)
{
    nk__h2 *h = s->h2;
    s->vc_started = 1;
    if (s->reset)
        return;
    s->vc = nk__conn_new_stream(h->c, s);
    if (s->vc)
        h->nvc++;
    if (!s->vc) {
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    nk__conn_run(s->vc, NK_READ);
}

int nk__h2s_received_head(const nk__h2s *s, const char *head, size_t len, int with_stream,
                          nk_buf *out)
{
    /* The head made by nk__h2s_head_end: its request line ends in "HTTP/1.1", the fields
     * added for the engine have capitalised names (a client's are lowercase, RFC 9113
     * section 8.2.1), and Host stands for :authority. */
    const char *eol = memchr(head, '\n', len);
    const char *line_end = eol && eol > head && eol[-1] == '\r' ? eol - 1 : eol;
    if (!eol || line_end - head < 9)
        return -EINVAL;
    int rc = nk_buf_append(out, head, (size_t)(line_end - 9 - head));
    if (rc >= 0 && with_stream)
        rc = nk_buf_printf(out, " HTTP/2 (stream %d)\r\n", (int)s->id);
    else if (rc >= 0)
        rc = nk_buf_append_str(out, " HTTP/2\r\n");
    const char *q = eol + 1, *end = head + len;
    while (rc >= 0 && q < end) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        const char *next = nl ? nl + 1 : end;
        if (next - q > 6 && memcmp(q, "Host: ", 6) == 0) {
            rc = nk_buf_append_str(out, ":authority: ");
            if (rc >= 0)
                rc = nk_buf_append(out, q + 6, (size_t)(next - q - 6));
        } else if (!(*q >= 'A' && *q <= 'Z')) {
            rc = nk_buf_append(out, q, (size_t)(next - q));
        }
        q = next;
    }
    return rc < 0 ? rc : 0;
}

void nk__h2s_show_head(nk__h2s *s, const char *head, size_t len)
{
    nk__conn *p = parent(s);
    if (!p)
        return;
    const nk_httpd_config *cfg = &p->srv->cfg;
    nk_buf b;
    nk_buf_init(&b, 0);
    if (nk__h2s_received_head(s, head, len, 1, &b) == 0)
        cfg->on_head_from(cfg->head_arg, p, p->requests++, p->peer_family,
                          p->peer_family == AF_UNIX ? NULL : p->peer_ip, p->peer_port,
                          nk_buf_rptr(&b), nk_buf_len(&b));
    nk_buf_free(&b);
}

/* ---- the virtual connection's transport -------------------------------------------------------- */

ssize_t nk__h2s_recv(nk__h2s *s, void *buf, size_t len)
{
    if (!s->h2 || s->reset)
        return -ECONNRESET;
    size_t n = nk_buf_len(&s->in);
    if (n == 0)
        return s->in_eof ? 0 : -EAGAIN;
    if (n > len)
        n = len;
    memcpy(buf, nk_buf_rptr(&s->in), n);
    nk_buf_consume(&s->in, n);
    if (s->unacked && nk_buf_len(&s->in) < IN_LOW) {
        /* Read: the client may send as much again (WINDOW_UPDATE). */
        nghttp2_session_consume(s->h2->ng, s->id, s->unacked);
        s->unacked = 0;
        nk__h2_schedule(s->h2);
    }
    if (nk_buf_len(&s->in) == 0 && s->in_eof)
        nk_buf_release(&s->in);
    return (ssize_t)n;
}

/* nghttp2 asks for the next DATA frame's payload: its length only (NO_COPY), the bytes are
 * written by nk__h2s_send_data straight from s->body into the session's output, one copy
 * fewer than through nghttp2's frame buffer. */
static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)id;
    (void)buf;
    (void)ud;
    nk__h2s *s = src->ptr;
    size_t have = nk_buf_len(&s->body);
    size_t n = have < length ? have : length;
    if (n == have && s->body_done) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (n == 0) {
            nk_buf_release(&s->body);
            return 0;
        }
    }
    if (n == 0) {
        s->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    return (ssize_t)n;
}

int nk__h2s_send_data(nk__h2s *s, nk_buf *out, const uint8_t *framehd, size_t length)
{
    if (nk_buf_append(out, framehd, 9) < 0 ||
        nk_buf_append(out, nk_buf_rptr(&s->body), length) < 0)
        return -ENOMEM;
    nk_buf_consume(&s->body, length);
    if (nk_buf_len(&s->body) == 0 && s->body_done)
        nk_buf_release(&s->body);
    if (s->vc && (s->want & NK_WRITE))
        nk__h2_ready(s); /* room again for the handler's next piece */
    return 0;
}

static int is_hop_by_hop(nk_str name)
{
    static const struct {
        const char *name;
        size_t len;
    } hop[] = {{"connection", 10}, {"keep-alive", 10}, {"proxy-connection", 16},
               {"transfer-encoding", 17}, {"upgrade", 7}};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (name.len == hop[i].len && strncasecmp(name.p, hop[i].name, name.len) == 0)
            return 1;
    return 0;
}

/* The head is complete in s->head: HEADERS go to nghttp2 (RFC 9113 section 8.2.2: names in
 * lowercase, no connection-specific fields). 0, or negative when the stream must end. */
static int submit_head(nk__h2s *s, const nk_http_response *resp)
{
    nk__h2 *h = s->h2;
    nghttp2_nv nva[NK_HTTP_RESPONSE_MAX_HEADERS + 1];
    char status[4];
    snprintf(status, sizeof status, "%03d", resp->status);
    size_t n = 0;
    nva[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < resp->nheaders; i++) {
        const nk_http_header *f = &resp->headers[i];
        if (is_hop_by_hop(f->name))
            continue;
        char *name = (char *)f->name.p; /* inside s->head, which is ours */
        for (size_t k = 0; k < f->name.len; k++)
            if (name[k] >= 'A' && name[k] <= 'Z')
                name[k] = (char)(name[k] - 'A' + 'a');
        nva[n++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)f->value.p, f->name.len, f->value.len,
                                NGHTTP2_NV_FLAG_NONE};
    }
    if (resp->status < 200)
        return nghttp2_submit_headers(h->ng, NGHTTP2_FLAG_NONE, s->id, NULL, nva, n, NULL) == 0
                   ? 0
                   : -EIO;
    if (s->is_head || resp->no_body || (!resp->chunked && resp->content_length == 0)) {
        s->resp = NK__H2_RESP_NONE;
        s->body_done = 1;
    } else if (resp->chunked) {
        s->resp = NK__H2_RESP_CHUNKED;
        nk_http_chunked_init(&s->chunk, UINT64_MAX);
    } else if (resp->content_length > 0) {
        s->resp = NK__H2_RESP_LENGTH;
        s->body_left = (uint64_t)resp->content_length;
    } else {
        s->resp = NK__H2_RESP_CLOSE;
    }
    nghttp2_data_provider dp = {.source = {.ptr = s}, .read_callback = read_body};
    int rv = nghttp2_submit_response(h->ng, s->id, nva, n,
                                     s->resp == NK__H2_RESP_NONE ? NULL : &dp);
    s->submitted = 1;
    return rv == 0 ? 0 : -EIO;
}

/* Body bytes as the virtual connection wrote them: decoded into s->body. Returns how many
 * were taken (0: no room now). */
static size_t take_body(nk__h2s *s, const char *p, size_t n)
{
    size_t room = BODY_CAP > nk_buf_len(&s->body) ? BODY_CAP - nk_buf_len(&s->body) : 0;
    size_t take = n < room ? n : room;
    switch (s->resp) {
    case NK__H2_RESP_NONE:
        return n; /* nothing may follow: dropped */
    case NK__H2_RESP_LENGTH:
        if (s->body_done)
            return n;
        if (take > s->body_left)
            take = (size_t)s->body_left;
        if (nk_buf_append(&s->body, p, take) < 0)
            return 0;
        s->body_left -= take;
        if (s->body_left == 0) {
            s->body_done = 1;
            return n; /* anything after the promised length is not the body: dropped */
        }
        return take;
    case NK__H2_RESP_CHUNKED: {
        if (s->body_done)
            return n;
        size_t used = 0;
        while (used < take) {
            size_t consumed = 0;
            const char *data = NULL;
            size_t dlen = 0;
            int r = nk_http_chunked_step(&s->chunk, p + used, take - used, &consumed, &data,
                                         &dlen);
            used += consumed;
            if (r < 0)
                return 0; /* cannot happen with the engine's own framing */
            if (r == 1 && nk_buf_append(&s->body, data, dlen) < 0)
                return used - consumed;
            if (r == 2) {
                s->body_done = 1;
                return n;
            }
            if (r == 0)
                break;
        }
        return used;
    }
    case NK__H2_RESP_CLOSE:
        if (nk_buf_append(&s->body, p, take) < 0)
            return 0;
        return take;
    default:
        return 0;
    }
}

static void body_grew(nk__h2s *s)
{
    if (s->deferred && s->h2) {
        s->deferred = 0;
        nghttp2_session_resume_data(s->h2->ng, s->id);
    }
    nk__h2_schedule(s->h2);
}

ssize_t nk__h2s_send(nk__h2s *s, const void *buf, size_t len)
{
    if (!s->h2 || s->reset)
        return -ECONNRESET;
    const char *p = buf;
    size_t done = 0;
    while (done < len && s->resp == NK__H2_RESP_HEAD) {
        /* The head: bounded by NK_HTTP_RESPONSE_MAX_HEAD, parsed once whole. */
        size_t have = nk_buf_len(&s->head);
        if (nk_buf_append(&s->head, p + done, len - done) < 0)
            return -EIO;
        nk_http_response resp;
        int st = 0;
        int r = nk_http_parse_response(nk_buf_rptr(&s->head), nk_buf_len(&s->head), &resp, &st);
        if (r == -EAGAIN)
            return (ssize_t)len;
        if (r < 0 || submit_head(s, &resp) < 0)
            return -EIO;
        size_t head_part = (size_t)r - have; /* of these bytes, the rest is body */
        done += head_part;
        nk_buf_clear(&s->head);
        if (s->resp == NK__H2_RESP_HEAD)
            continue; /* 1xx: the final head follows */
        nk_buf_release(&s->head);
        nk__h2_schedule(s->h2);
    }
    if (done == len)
        return (ssize_t)len;
    size_t before = nk_buf_len(&s->body);
    size_t took = take_body(s, p + done, len - done);
    if (nk_buf_len(&s->body) != before || s->body_done)
        body_grew(s);
    done += took;
    return done ? (ssize_t)done : -EAGAIN;
}

ssize_t nk__h2s_sendfile(nk__h2s *s, int fd, off_t *off, size_t len)
{
    if (!s->h2 || s->reset)
        return -ECONNRESET;
    if (s->resp != NK__H2_RESP_LENGTH && s->resp != NK__H2_RESP_CLOSE) {
        /* Not a plain body (cannot happen with the engine's framing): through a buffer. */
        char buf[4096];
        ssize_t n = pread(fd, buf, len < sizeof buf ? len : sizeof buf, *off);
        if (n <= 0)
            return n < 0 ? -errno : 0;
        ssize_t took = nk__h2s_send(s, buf, (size_t)n);
        if (took > 0)
            *off += took;
        return took;
    }
    if (s->body_done)
        return (ssize_t)len; /* past the promised length: nothing more is the body */
    size_t room = BODY_CAP > nk_buf_len(&s->body) ? BODY_CAP - nk_buf_len(&s->body) : 0;
    if (room == 0)
        return -EAGAIN;
    size_t want = len < room ? len : room;
    if (s->resp == NK__H2_RESP_LENGTH && want > s->body_left)
        want = (size_t)s->body_left;
    /* Read straight into the stream's body buffer. */
    int rc = nk_buf_reserve(&s->body, want);
    if (rc < 0)
        return rc;
    ssize_t n = pread(fd, nk_buf_wptr(&s->body), want, *off);
    if (n <= 0)
        return n < 0 ? -errno : 0;
    nk_buf_commit(&s->body, (size_t)n);
    *off += n;
    if (s->resp == NK__H2_RESP_LENGTH) {
        s->body_left -= (uint64_t)n;
        if (s->body_left == 0)
            s->body_done = 1;
    }
    body_grew(s);
    return n;
}

void nk__h2s_want(nk__h2s *s, unsigned events)
{
    s->want = (unsigned char)events;
    /* A stream that is gone is ready at once: its connection learns it and ends. */
    int gone = !s->h2 || s->reset;
    int ready = ((events & NK_READ) && (gone || nk_buf_len(&s->in) || s->in_eof)) ||
                ((events & NK_WRITE) && (gone || nk_buf_len(&s->body) < BODY_CAP));
    if (ready)
        nk__h2_ready(s);
}

void nk__h2s_kick(nk__h2s *s)
{
    nk__h2_ready(s);
}

/* ---- ends ------------------------------------------------------------------------------------ */

void nk__h2s_sent_end(nk__h2s *s)
{
    /* The answer is whole while the request still comes (an early 401 or 413 of an upload).
     * RFC 9113 section 8.1 would let RST_STREAM(NO_ERROR) stop the client, but clients in use
     * (curl 7.88) then drop the answer: as an HTTP/1.1 server lingers, the rest is read and
     * discarded (nk__h2s_discard), up to a bound past which the stream is reset after all. */
    s->answered = 1;
}

/* DATA for a stream whose answer is out: 1 when it is discarded, 0 when the stream was reset
 * (past the bound). */
int nk__h2s_discard(nk__h2s *s, size_t len)
{
    s->discarded += len;
    if (s->discarded <= DISCARD_MAX)
        return 1;
    if (s->h2 && !s->ng_closed)
        nghttp2_submit_rst_stream(s->h2->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    return 0;
}

void nk__h2s_stream_closed(nk__h2s *s, uint32_t code)
{
    s->ng_closed = 1;
    if (code != NGHTTP2_NO_ERROR || !s->body_done)
        s->reset = 1;
    if (s->vc) {
        if (s->reset)
            nk__h2_ready(s); /* its next read or write fails: it closes and undoes its work */
        return;
    }
    nk__h2s_free(s);
}

void nk__h2s_conn_closed(nk__h2s *s)
{
    s->vc = NULL;
    nk__h2 *h = s->h2;
    if (h)
        h->nvc--;
    if (!h) {
        nk__h2s_free(s); /* the session went first */
        return;
    }
    ready_remove(s);
    if (!s->ng_closed) {
        if (s->resp == NK__H2_RESP_CLOSE)
            s->body_done = 1;
        if (s->body_done) {
            body_grew(s); /* the end goes out after the buffered body */
        } else {
            /* Closed before its answer was whole. Without an answer begun the request was
             * given up (a timeout, a body cut short): CANCEL; an answer cut midway is a
             * failure (a file that shrank, no memory): INTERNAL_ERROR. */
            nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id,
                                      s->submitted ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_CANCEL);
            nk__h2_schedule(h);
        }
        if (s->unacked) {
            nghttp2_session_consume(h->ng, s->id, s->unacked);
            s->unacked = 0;
        }
        nk_buf_free(&s->in);
        return; /* freed when nghttp2 closes the stream */
    }
    nk__h2s_free(s);
}
