/* HTTP/2 for `netkit http get` (RFC 9113), nghttp2 as a client session driven through memory:
 * http/client.c reads and writes the connection, this file feeds what it reads to
 * nghttp2_session_mem_recv and hands it what nghttp2_session_mem_send produces.
 *
 * The request is the HTTP/1.1 head the command built, taken apart: the request line gives
 * :method and :path, Host gives :authority, the other fields go as they are but lowercased
 * (section 8.2.1), and the connection-specific ones HTTP/2 forbids (section 8.2.2) are left
 * out. The response's fields are put back together as a head ("HTTP/2 200" and "name: value"
 * lines), which is what -i writes and what the command reads Location and Content-Encoding
 * from, exactly as over HTTP/1.1.
 *
 * With -v every frame is shown when it is sent or received, one line each, header fields and
 * settings indented below their frame.
 */
#include "http/client_h2.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

/* What the client tells the server (section 6.5.2): no server push; a large stream window so
 * a download is not held up by WINDOW_UPDATE round trips; the response head limit that
 * HTTP/1.1 responses have too. */
#define H2_STREAM_WINDOW (1 << 20)
#define H2_CONN_WINDOW (1 << 24)
/* Interim responses one request may get, as over HTTP/1.1. */
#define H2_MAX_INTERIM 32

typedef struct h2_field {
    size_t name, name_len, value, value_len; /* offsets into the head buffer */
} h2_field;

struct hc_h2 {
    nghttp2_session *session;
    const hc_request *req;
    const hc_events *ev;
    int32_t stream;
    size_t body_off;          /* request body bytes handed to nghttp2 */
    /* the head being received */
    nk_buf head;
    h2_field fields[NK_HTTP_RESPONSE_MAX_HEADERS];
    size_t nfields;
    int status;               /* of the head being received */
    int final_status;         /* of the final response, once its head is complete */
    int trailers;             /* the HEADERS being received follow the final head */
    int interim;
    uint64_t received;        /* bytes from the server so far */
    int done;                 /* the response is complete */
    /* what ended things */
    int err;
    char msg[256];
    int rst_code;             /* RST_STREAM from the server on our stream, -1 if none */
    int goaway_code;          /* GOAWAY from the server, -1 if none */
    int32_t goaway_last;
    char goaway_debug[128];
    char lib_reason[128];     /* nghttp2's reason for a connection error it detected */
};

static void fail(hc_h2 *h, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(hc_h2 *h, int err, const char *fmt, ...)
{
    if (h->err)
        return; /* the first reason is the one that explains */
    h->err = err;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(h->msg, sizeof h->msg, fmt, ap);
        va_end(ap);
    }
}

/* ---- -v: the frames ------------------------------------------------------------------------- */

static const char *frame_name(uint8_t type)
{
    static const char *const names[] = {"DATA", "HEADERS", "PRIORITY", "RST_STREAM",
                                        "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
                                        "WINDOW_UPDATE", "CONTINUATION", "ALTSVC", "0xb",
                                        "ORIGIN"};
    if (type < sizeof names / sizeof names[0])
        return names[type];
    return type == 0x10 ? "PRIORITY_UPDATE" : "UNKNOWN";
}

static const char *setting_name(int32_t id)
{
    switch (id) {
    case NGHTTP2_SETTINGS_HEADER_TABLE_SIZE: return "HEADER_TABLE_SIZE";
    case NGHTTP2_SETTINGS_ENABLE_PUSH: return "ENABLE_PUSH";
    case NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS: return "MAX_CONCURRENT_STREAMS";
    case NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE: return "INITIAL_WINDOW_SIZE";
    case NGHTTP2_SETTINGS_MAX_FRAME_SIZE: return "MAX_FRAME_SIZE";
    case NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE: return "MAX_HEADER_LIST_SIZE";
    case NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL: return "ENABLE_CONNECT_PROTOCOL";
    case NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES: return "NO_RFC7540_PRIORITIES";
    default: return NULL;
    }
}

/* The flags a frame of this type defines, by name, '|' between them. */
static void flag_names(uint8_t type, uint8_t flags, char *buf, size_t len)
{
    static const struct {
        const char *name;
        unsigned types; /* bit i: frame type i defines it */
        uint8_t bit;
    } defs[] = {
        {"END_STREAM", 1u << NGHTTP2_DATA | 1u << NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM},
        {"ACK", 1u << NGHTTP2_SETTINGS | 1u << NGHTTP2_PING, NGHTTP2_FLAG_ACK},
        {"END_HEADERS",
         1u << NGHTTP2_HEADERS | 1u << NGHTTP2_PUSH_PROMISE | 1u << NGHTTP2_CONTINUATION,
         NGHTTP2_FLAG_END_HEADERS},
        {"PADDED", 1u << NGHTTP2_DATA | 1u << NGHTTP2_HEADERS | 1u << NGHTTP2_PUSH_PROMISE,
         NGHTTP2_FLAG_PADDED},
        {"PRIORITY", 1u << NGHTTP2_HEADERS, NGHTTP2_FLAG_PRIORITY},
    };
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        /* END_STREAM and ACK share bit 0: the type says which one it is. */
        if (type >= 16 || !(defs[i].types & (1u << type)) || !(flags & defs[i].bit))
            continue;
        int n = snprintf(buf + off, len - off, "%s%s", off ? "|" : "", defs[i].name);
        if (n < 0 || (size_t)n >= len - off)
            break;
        off += (size_t)n;
    }
}

static void show_field(char dir, const uint8_t *name, size_t nlen, const uint8_t *value,
                       size_t vlen)
{
    fprintf(stderr, "%c   %.*s: %.*s\n", dir, (int)nlen, (const char *)name, (int)vlen,
            (const char *)value);
}

/* One line for the frame; below it what it carries that is not a header field (those are
 * shown as they are sent or decoded). */
static void show_frame(char dir, const nghttp2_frame *f)
{
    char flags[64];
    flag_names(f->hd.type, f->hd.flags, flags, sizeof flags);
    fprintf(stderr, "%c %s stream=%d flags=%s length=%zu", dir, frame_name(f->hd.type),
            f->hd.stream_id, flags, f->hd.length);
    switch (f->hd.type) {
    case NGHTTP2_RST_STREAM:
        fprintf(stderr, " error=%s", nghttp2_http2_strerror(f->rst_stream.error_code));
        break;
    case NGHTTP2_GOAWAY:
        fprintf(stderr, " last_stream=%d error=%s", f->goaway.last_stream_id,
                nghttp2_http2_strerror(f->goaway.error_code));
        break;
    case NGHTTP2_WINDOW_UPDATE:
        fprintf(stderr, " increment=%d", f->window_update.window_size_increment);
        break;
    default:
        break;
    }
    fputc('\n', stderr);
    if (f->hd.type == NGHTTP2_SETTINGS) {
        for (size_t i = 0; i < f->settings.niv; i++) {
            const char *name = setting_name(f->settings.iv[i].settings_id);
            if (name)
                fprintf(stderr, "%c   %s: %u\n", dir, name, f->settings.iv[i].value);
            else
                fprintf(stderr, "%c   0x%x: %u\n", dir, (unsigned)f->settings.iv[i].settings_id,
                        f->settings.iv[i].value);
        }
    } else if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.opaque_data_len > 0) {
        fprintf(stderr, "%c   debug: ", dir);
        for (size_t i = 0; i < f->goaway.opaque_data_len; i++) {
            uint8_t b = f->goaway.opaque_data[i];
            fputc(b >= 0x20 && b < 0x7f ? b : '.', stderr);
        }
        fputc('\n', stderr);
    }
}

/* ---- callbacks -------------------------------------------------------------------------- */

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
    (void)s;
    hc_h2 *h = arg;
    if (!h->req->verbose)
        return 0;
    show_frame('>', f);
    if (f->hd.type == NGHTTP2_HEADERS)
        for (size_t i = 0; i < f->headers.nvlen; i++)
            show_field('>', f->headers.nva[i].name, f->headers.nva[i].namelen,
                       f->headers.nva[i].value, f->headers.nva[i].valuelen);
    return 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
    (void)s;
    hc_h2 *h = arg;
    /* Shown here, before the fields it carries are decoded one by one. */
    if (h->req->verbose)
        show_frame('<', f);
    if (f->hd.stream_id != h->stream || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    h->trailers = h->final_status != 0;
    nk_buf_clear(&h->head);
    h->nfields = 0;
    h->status = 0;
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
    (void)s;
    (void)flags;
    hc_h2 *h = arg;
    if (h->req->verbose)
        show_field('<', name, nlen, value, vlen);
    if (f->hd.stream_id != h->stream || f->hd.type != NGHTTP2_HEADERS || h->trailers)
        return 0;
    int rc;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        /* nghttp2 has checked it is three digits and that it comes first (section 8.3) */
        h->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        rc = nk_buf_printf(&h->head, "HTTP/2 %d\r\n", h->status);
    } else if (nlen > 0 && name[0] == ':') {
        return 0; /* no other pseudo-header belongs in a response; nghttp2 refuses them */
    } else if (h->nfields >= NK_HTTP_RESPONSE_MAX_HEADERS) {
        fail(h, -EBADMSG, "more than %d header fields in a response from the server",
             NK_HTTP_RESPONSE_MAX_HEADERS);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    } else {
        h2_field *fl = &h->fields[h->nfields];
        fl->name = nk_buf_len(&h->head);
        fl->name_len = nlen;
        fl->value = fl->name + nlen + 2;
        fl->value_len = vlen;
        rc = nk_buf_append(&h->head, name, nlen);
        if (rc >= 0)
            rc = nk_buf_append(&h->head, ": ", 2);
        if (rc >= 0)
            rc = nk_buf_append(&h->head, value, vlen);
        if (rc >= 0)
            rc = nk_buf_append(&h->head, "\r\n", 2);
        h->nfields++;
    }
    if (rc < 0) {
        fail(h, -EBADMSG, "a response head from the server is larger than %d bytes",
             NK_HTTP_RESPONSE_MAX_HEAD);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

/* A complete head: in the form the command reads (the framing fields are nghttp2's business
 * over HTTP/2: a body ends with END_STREAM, and nghttp2 checks it against content-length). */
static int deliver_head(hc_h2 *h)
{
    if (nk_buf_append(&h->head, "\r\n", 2) < 0) {
        fail(h, -EBADMSG, "a response head from the server is larger than %d bytes",
             NK_HTTP_RESPONSE_MAX_HEAD);
        return -1;
    }
    const char *base = nk_buf_rptr(&h->head);
    nk_http_response resp;
    memset(&resp, 0, sizeof resp);
    resp.version_major = 2;
    resp.status = h->status;
    resp.reason.p = "";
    resp.content_length = -1;
    resp.head_len = nk_buf_len(&h->head);
    for (size_t i = 0; i < h->nfields; i++) {
        nk_http_header *hd = &resp.headers[i];
        hd->name.p = base + h->fields[i].name;
        hd->name.len = h->fields[i].name_len;
        hd->value.p = base + h->fields[i].value;
        hd->value.len = h->fields[i].value_len;
        if (hd->name.len == 14 && strncasecmp(hd->name.p, "content-length", 14) == 0) {
            int64_t v = 0;
            for (size_t k = 0; k < hd->value.len && v < INT64_MAX / 10 - 9; k++)
                v = v * 10 + (hd->value.p[k] - '0');
            resp.content_length = v;
        }
    }
    resp.nheaders = h->nfields;
    resp.no_body = h->status < 200 || h->status == 204 || h->status == 304;
    h->ev->on_head(h->ev->arg, &resp, base, resp.head_len);
    if (h->status < 200) {
        /* 101 cannot happen: nghttp2 refuses it over HTTP/2 (section 8.6) */
        if (++h->interim > H2_MAX_INTERIM) {
            fail(h, -EPROTO, "more than %d interim responses", H2_MAX_INTERIM);
            return -1;
        }
        return 0;
    }
    h->final_status = h->status;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
    (void)s;
    hc_h2 *h = arg;
    if (h->req->verbose && f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_PUSH_PROMISE)
        show_frame('<', f);
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (f->hd.stream_id == h->stream && !h->trailers && deliver_head(h) < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        break;
    case NGHTTP2_RST_STREAM:
        if (f->hd.stream_id == h->stream)
            h->rst_code = (int)f->rst_stream.error_code;
        break;
    case NGHTTP2_GOAWAY: {
        h->goaway_code = (int)f->goaway.error_code;
        h->goaway_last = f->goaway.last_stream_id;
        size_t n = f->goaway.opaque_data_len;
        if (n >= sizeof h->goaway_debug)
            n = sizeof h->goaway_debug - 1;
        for (size_t i = 0; i < n; i++) {
            uint8_t b = f->goaway.opaque_data[i];
            h->goaway_debug[i] = b >= 0x20 && b < 0x7f ? (char)b : '.';
        }
        h->goaway_debug[n] = '\0';
        /* An error ends the connection now, whatever the streams below last_stream were
         * doing (section 6.8); NO_ERROR lets those finish. */
        if (h->goaway_code != NGHTTP2_NO_ERROR && !h->done)
            fail(h, -ECONNRESET, "the server ended the connection: GOAWAY %s%s%s",
                 nghttp2_http2_strerror(f->goaway.error_code), h->goaway_debug[0] ? ": " : "",
                 h->goaway_debug);
        break;
    }
    default:
        break;
    }
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        f->hd.stream_id == h->stream && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        h->final_status)
        h->done = 1;
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream, const uint8_t *data,
                   size_t len, void *arg)
{
    (void)s;
    (void)flags;
    hc_h2 *h = arg;
    if (stream != h->stream || !h->final_status || len == 0)
        return 0;
    int e = h->ev->on_body(h->ev->arg, (const char *)data, len);
    if (e < 0) {
        fail(h, e, NULL); /* the command knows why it refused */
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream, uint32_t code, void *arg)
{
    (void)s;
    hc_h2 *h = arg;
    if (stream != h->stream || h->done)
        return 0;
    const char *name = nghttp2_http2_strerror(code);
    if (h->rst_code >= 0)
        fail(h, -ECONNRESET, "the server reset the stream: RST_STREAM %s (HTTP/2 error 0x%x)",
             name, code);
    else if (h->goaway_code >= 0 && stream > h->goaway_last)
        fail(h, -ECONNRESET, "the server ended the connection before answering: GOAWAY %s "
                             "(last stream %d)%s%s",
             nghttp2_http2_strerror((uint32_t)h->goaway_code), h->goaway_last,
             h->goaway_debug[0] ? ": " : "", h->goaway_debug);
    else if (code != NGHTTP2_NO_ERROR)
        /* reset on this side: nghttp2 found the response broken (section 8.1.1) */
        fail(h, -EBADMSG, "invalid HTTP/2 response from the server (stream reset with %s%s%s)",
             name, h->lib_reason[0] ? ": " : "", h->lib_reason);
    else
        fail(h, -EBADMSG, "the server closed the stream before the response ended");
    return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *f, int lib_error, void *arg)
{
    (void)s;
    hc_h2 *h = arg;
    snprintf(h->lib_reason, sizeof h->lib_reason, "%s %s", frame_name(f->hd.type),
             nghttp2_strerror(lib_error));
    return 0;
}

static int on_error(nghttp2_session *s, int lib_error, const char *msg, size_t len, void *arg)
{
    (void)s;
    (void)lib_error;
    hc_h2 *h = arg;
    snprintf(h->lib_reason, sizeof h->lib_reason, "%.*s", (int)len, msg);
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t stream, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    (void)s;
    (void)stream;
    (void)src;
    hc_h2 *h = arg;
    size_t left = h->req->body_len - h->body_off;
    size_t n = left < len ? left : len;
    if (n)
        memcpy(buf, h->req->body + h->body_off, n);
    h->body_off += n;
    if (h->body_off == h->req->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- the request ---------------------------------------------------------------------------- */

/* Fields a message over HTTP/2 must not carry (section 8.2.2): the connection itself says
 * what they said over HTTP/1.1. */
static int connection_specific(const char *name, size_t nlen, const char *value, size_t vlen)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == nlen && strncasecmp(name, names[i], nlen) == 0)
            return 1;
    /* TE may only say "trailers" */
    return nlen == 2 && strncasecmp(name, "te", 2) == 0 &&
           !(vlen == 8 && strncasecmp(value, "trailers", 8) == 0);
}

static nghttp2_nv nv(const char *name, size_t nlen, const char *value, size_t vlen)
{
    nghttp2_nv v = {(uint8_t *)name, (uint8_t *)value, nlen, vlen, NGHTTP2_NV_FLAG_NONE};
    return v;
}

/* The head "METHOD TARGET HTTP/1.1\r\n" + "Name: value\r\n"... + "\r\n" (built by the command,
 * so well formed) into the fields of a HEADERS frame; head is modified (names lowercased).
 * nghttp2 copies what it is given, so the fields may point into head and authority. */
static int submit(hc_h2 *h, char *head, size_t len, char *authority, size_t alen)
{
    const hc_request *req = h->req;
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += head[i] == '\n';
    nghttp2_nv *nva = calloc(lines + 4, sizeof *nva);
    if (!nva)
        return -ENOMEM;
    char *end = head + len;
    char *eol = memchr(head, '\n', len);
    char *sp1 = eol ? memchr(head, ' ', (size_t)(eol - head)) : NULL;
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2) {
        free(nva);
        return -EINVAL;
    }
    const char *scheme = req->url->tls ? "https" : "http";
    size_t n = 0;
    nva[n++] = nv(":method", 7, head, (size_t)(sp1 - head));
    nva[n++] = nv(":scheme", 7, scheme, strlen(scheme));
    size_t auth_at = n++;
    nva[auth_at] = nv(":authority", 10, authority, alen);
    nva[n++] = nv(":path", 5, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    for (char *p = eol + 1; p < end;) {
        char *lf = memchr(p, '\n', (size_t)(end - p));
        if (!lf)
            break;
        size_t l = (size_t)(lf - p);
        if (l > 0 && p[l - 1] == '\r')
            l--;
        char *colon = l ? memchr(p, ':', l) : NULL;
        if (colon) {
            size_t nlen = (size_t)(colon - p);
            char *v = colon + 1;
            while (v < p + l && (*v == ' ' || *v == '\t'))
                v++;
            size_t vlen = (size_t)(p + l - v);
            for (size_t i = 0; i < nlen; i++)
                p[i] = (char)tolower((unsigned char)p[i]);
            if (nlen == 4 && memcmp(p, "host", 4) == 0) {
                /* section 8.3.1: :authority instead of Host (a -H Host too) */
                nva[auth_at] = nv(":authority", 10, v, vlen);
            } else if (connection_specific(p, nlen, v, vlen)) {
                if (req->verbose)
                    fprintf(stderr, "* HTTP/2: not sending %.*s (connection-specific, RFC 9113 "
                                    "section 8.2.2)\n", (int)nlen, p);
            } else {
                nva[n++] = nv(p, nlen, v, vlen);
            }
        }
        p = lf + 1;
    }
    nghttp2_data_provider prd = {.read_callback = read_body};
    int32_t id = nghttp2_submit_request(h->session, NULL, nva, n, req->body ? &prd : NULL, h);
    free(nva);
    if (id < 0)
        return id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EINVAL;
    h->stream = id;
    return 0;
}

int hc_h2_new(const hc_request *req, const hc_events *ev, hc_h2 **out, char *msg, size_t msglen)
{
    *out = NULL;
    hc_h2 *h = calloc(1, sizeof *h);
    char *head = malloc(req->head_len + 1);
    char authority[300];
    const hc_url *u = req->url;
    const char *lb = u->ipv6 ? "[" : "", *rb = u->ipv6 ? "]" : "";
    int alen = u->port == hc_url_default_port(u)
                   ? snprintf(authority, sizeof authority, "%s%s%s", lb, u->host, rb)
                   : snprintf(authority, sizeof authority, "%s%s%s:%d", lb, u->host, rb, u->port);
    if (alen < 0 || (size_t)alen >= sizeof authority)
        alen = 0;
    nghttp2_session_callbacks *cb = NULL;
    int rc = h && head && nghttp2_session_callbacks_new(&cb) == 0 ? 0 : -ENOMEM;
    if (rc == 0) {
        h->req = req;
        h->ev = ev;
        h->rst_code = h->goaway_code = -1;
        nk_buf_init(&h->head, NK_HTTP_RESPONSE_MAX_HEAD);
        nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
        nghttp2_session_callbacks_set_error_callback2(cb, on_error);
        if (nghttp2_session_client_new(&h->session, cb, h) != 0)
            rc = -ENOMEM;
        nghttp2_session_callbacks_del(cb);
    }
    if (rc == 0) {
        if (req->verbose)
            fputs("> PRI * HTTP/2.0 (the connection preface)\n", stderr);
        nghttp2_settings_entry iv[] = {
            {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, NK_HTTP_RESPONSE_MAX_HEAD},
        };
        if (nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv,
                                    sizeof iv / sizeof iv[0]) != 0 ||
            nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0,
                                                  H2_CONN_WINDOW) != 0)
            rc = -ENOMEM;
    }
    if (rc == 0) {
        memcpy(head, req->head, req->head_len);
        rc = submit(h, head, req->head_len, authority, (size_t)alen);
    }
    free(head);
    if (rc < 0) {
        snprintf(msg, msglen, "HTTP/2: cannot start the request: %s", nk_strerror(rc));
        hc_h2_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

/* ---- moving bytes ------------------------------------------------------------------------- */

static int result(hc_h2 *h, int *status, char *msg, size_t msglen)
{
    if (h->done) {
        *status = h->final_status;
        return 1;
    }
    if (h->err) {
        snprintf(msg, msglen, "%s", h->msg);
        return h->err;
    }
    return 0;
}

int hc_h2_recv(hc_h2 *h, const char *p, size_t n, int *status, char *msg, size_t msglen)
{
    /* A server that does not speak HTTP/2 answers the preface as a bad HTTP/1.1 request:
     * say that rather than nghttp2's view of "HTTP/1.1 400" as a frame. */
    if (h->received == 0 && n >= 7 && memcmp(p, "HTTP/1.", 7) == 0) {
        snprintf(msg, msglen, "the server answered in HTTP/1.x: it does not speak HTTP/2 "
                              "(over http://, --http2-prior-knowledge needs a server that "
                              "does)");
        return -EPROTO;
    }
    h->received += n;
    ssize_t rc = nghttp2_session_mem_recv(h->session, (const uint8_t *)p, n);
    /* A callback may have failed after the response was complete (a trailing frame): the
     * answer is still whole. */
    if (rc < 0 && !h->done && !h->err)
        fail(h, -EPROTO, "HTTP/2: %s%s%s", nghttp2_strerror((int)rc),
             h->lib_reason[0] ? ": " : "", h->lib_reason);
    return result(h, status, msg, msglen);
}

int hc_h2_send(hc_h2 *h, nk_buf *out, size_t cap, char *msg, size_t msglen)
{
    while (nk_buf_len(out) < cap) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h->session, &data);
        if (n < 0) {
            snprintf(msg, msglen, "HTTP/2: %s", nghttp2_strerror((int)n));
            return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
        }
        if (n == 0)
            break;
        int rc = nk_buf_append(out, data, (size_t)n);
        if (rc < 0) {
            snprintf(msg, msglen, "%s", nk_strerror(rc));
            return rc;
        }
    }
    /* nghttp2 gives up on a connection it found broken (after queueing its GOAWAY). */
    if (!h->done && !h->err && !nghttp2_session_want_read(h->session) &&
        !nghttp2_session_want_write(h->session)) {
        snprintf(msg, msglen, "invalid HTTP/2 from the server%s%s",
                 h->lib_reason[0] ? ": " : "", h->lib_reason);
        return -EPROTO;
    }
    return 0;
}

void hc_h2_eof(const hc_h2 *h, char *msg, size_t msglen)
{
    if (h->goaway_code >= 0)
        snprintf(msg, msglen, "the server closed the connection after GOAWAY %s (last stream "
                              "%d)%s%s, before the response ended",
                 nghttp2_http2_strerror((uint32_t)h->goaway_code), h->goaway_last,
                 h->goaway_debug[0] ? ": " : "", h->goaway_debug);
    else if (h->final_status)
        snprintf(msg, msglen, "the server closed the connection in the middle of the body");
    else
        snprintf(msg, msglen, "the server closed the connection without answering");
}

void hc_h2_goodbye(hc_h2 *h, nk_buf *out)
{
    char msg[8];
    /* What is already queued (a SETTINGS ACK) first: GOAWAY would drop it. */
    hc_h2_send(h, out, SIZE_MAX, msg, sizeof msg);
    if (nghttp2_session_terminate_session(h->session, NGHTTP2_NO_ERROR) == 0)
        hc_h2_send(h, out, SIZE_MAX, msg, sizeof msg);
}

void hc_h2_free(hc_h2 *h)
{
    if (!h)
        return;
    nghttp2_session_del(h->session);
    nk_buf_free(&h->head);
    free(h);
}
