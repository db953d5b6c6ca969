/* The HTTP client: URLs (RFC 3986) and one exchange on the event loop (RFC 9112; RFC 9113
 * through http/client_h2.c when ALPN picks h2 or the user knows the server speaks it).
 *
 * An exchange resolves the host, tries its addresses in the resolver's order (each with the
 * connect timeout), for https does the TLS handshake (RFC 9110 section 4.3.4: the certificate
 * must name the URL's host; the whole handshake within one timeout, however slowly the server
 * trickles it), sends the request while already reading (a server may answer, and close,
 * before it has read everything), skips interim 1xx responses, and delivers the body framed by
 * Content-Length, chunked coding or the connection's end (RFC 9112 section 6.3). Every wait for
 * the server after the handshake is bounded by the timeout, restarted whenever bytes move.
 *
 * Over TLS the socket's readiness says little about what a read or a write can do (either may
 * need the other direction first, and a read may leave decrypted bytes inside the TLS layer
 * that no readiness event announces): every event tries both directions, and the watcher asks
 * for what the last attempts said they wait for.
 */
#include "http/client.h"
#include "http/client_h2.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <netkit/tls.h>

#define HC_MAX_ADDRS 8
/* Read buffer: a whole response head (the parser's limit) plus one read after it. */
#define HC_READ_CHUNK (64 * 1024)
#define HC_IN_MAX (NK_HTTP_RESPONSE_MAX_HEAD + HC_READ_CHUNK)
/* Interim responses one exchange may skip: a server sending 1xx forever is not answering. */
#define HC_MAX_INTERIM 32
/* HTTP/2 frames taken from nghttp2 at a time: enough to keep the socket busy, little enough
 * that a large upload is not copied whole into the output buffer. */
#define HC_H2_OUT_CAP (256 * 1024)

/* ---- URLs ---------------------------------------------------------------------------------- */

void hc_url_free(hc_url *u)
{
    free(u->host);
    free(u->target);
    u->host = u->target = NULL;
}

/* From the library's components to what this client sends: an http or https URL with a
 * host, no userinfo (sent nowhere by this client), a port from 1 to 65535, and an origin-form
 * target (path, "/" when empty, RFC 9110 section 4.2.3, and query; the fragment stays here). */
static int from_url(const nk_url *u, hc_url *out)
{
    memset(out, 0, sizeof *out);
    if (!u->scheme.p)
        return -EPROTONOSUPPORT;
    if (u->scheme.len == 5 && strncasecmp(u->scheme.p, "https", 5) == 0)
        out->tls = 1;
    else if (u->scheme.len != 4 || strncasecmp(u->scheme.p, "http", 4) != 0)
        return -EPROTONOSUPPORT;
    if (!u->host.p || u->host.len == 0 || u->userinfo.p || (u->port.p && u->port.len == 0))
        return -EINVAL;
    int port = nk_url_port(u, hc_url_default_port(out));
    if (port < 1)
        return -EINVAL;
    out->port = port;
    out->ipv6 = u->ip_literal;
    out->host = strndup(u->host.p, u->host.len);
    size_t plen = u->path.len ? u->path.len : 1, qlen = u->query.p ? u->query.len + 1 : 0;
    out->target = malloc(plen + qlen + 1);
    if (!out->host || !out->target) {
        hc_url_free(out);
        return -ENOMEM;
    }
    sprintf(out->target, "%.*s%s%.*s", (int)u->path.len, u->path.len ? u->path.p : "/",
            u->query.p ? "?" : "", (int)u->query.len, u->query.p ? u->query.p : "");
    return 0;
}

/* Parse text, first percent-encoding the bytes no URL may hold (a space, non-ASCII: a server's
 * Location may well contain them); with_scheme prefixes "http://" (the command line may leave
 * the scheme out). */
static int parse_lenient(const char *text, size_t len, int with_scheme, char **keep, nk_url *u)
{
    size_t size = len * 3 + 8;
    char *buf = malloc(size);
    if (!buf)
        return -ENOMEM;
    size_t off = with_scheme ? (size_t)sprintf(buf, "http://") : 0;
    int n = nk_url_escape_invalid(text, len, buf + off, size - off);
    int rc = n < 0 ? n : nk_url_parse(buf, off + (size_t)n, u);
    if (rc < 0)
        free(buf);
    else
        *keep = buf;
    return rc;
}

int hc_url_parse(const char *text, hc_url *out)
{
    nk_url u;
    char *buf;
    memset(out, 0, sizeof *out);
    int rc = parse_lenient(text, strlen(text), strstr(text, "://") == NULL, &buf, &u);
    if (rc < 0)
        return rc;
    rc = from_url(&u, out);
    free(buf);
    return rc;
}

/* Resolve a reference (a Location value) against base (RFC 3986 section 5.2). */
int hc_url_resolve(const hc_url *base, const char *ref, size_t reflen, hc_url *out)
{
    nk_url b, r, res;
    char *btext = hc_url_format(base), *bbuf = NULL, *rbuf = NULL, *target = NULL;
    memset(out, 0, sizeof *out);
    int rc = btext ? parse_lenient(btext, strlen(btext), 0, &bbuf, &b) : -ENOMEM;
    if (rc == 0)
        rc = parse_lenient(ref, reflen, 0, &rbuf, &r);
    if (rc == 0) {
        size_t size = strlen(bbuf) + strlen(rbuf) + 3;
        rc = (target = malloc(size)) ? nk_url_resolve(&b, &r, target, size, &res) : -ENOMEM;
        if (rc >= 0)
            rc = from_url(&res, out);
    }
    free(btext);
    free(bbuf);
    free(rbuf);
    free(target);
    return rc;
}

int hc_url_default_port(const hc_url *u)
{
    return u->tls ? 443 : 80;
}

int hc_url_same_origin(const hc_url *a, const hc_url *b)
{
    return a->tls == b->tls && a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

char *hc_url_format(const hc_url *u)
{
    size_t n = strlen(u->host) + strlen(u->target) + 32;
    char *s = malloc(n);
    if (!s)
        return NULL;
    const char *lb = u->ipv6 ? "[" : "", *rb = u->ipv6 ? "]" : "";
    const char *scheme = u->tls ? "https" : "http";
    if (u->port == hc_url_default_port(u))
        snprintf(s, n, "%s://%s%s%s%s", scheme, lb, u->host, rb, u->target);
    else
        snprintf(s, n, "%s://%s%s%s:%d%s", scheme, lb, u->host, rb, u->port, u->target);
    return s;
}

void hc_show_lines(const char *prefix, const char *p, size_t n)
{
    while (n > 0) {
        const char *lf = memchr(p, '\n', n);
        size_t len = lf ? (size_t)(lf - p) : n;
        size_t shown = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
        fprintf(stderr, "%s%.*s\n", prefix, (int)shown, p);
        if (!lf)
            break;
        n -= len + 1;
        p = lf + 1;
    }
}

/* ---- one exchange ---------------------------------------------------------------------------- */

enum { ST_CONNECT, ST_TLS, ST_HEAD, ST_BODY, ST_DONE };

typedef struct hc_conn {
    nk_loop *loop;
    const hc_request *req;
    const hc_events *ev;
    nk_addr addrs[HC_MAX_ADDRS];
    int naddrs;
    nk_connector conn; /* tries each address in turn */
    int fd;
    nk_io io;
    unsigned watching; /* the events the watcher asks for */
    nk_tls *tls;
    unsigned rd_want, wr_want; /* TLS: what the last read and the last write wait for */
    nk_timer timer;
    int state;
    nk_buf out, in;
    int write_err;  /* the request could not be sent in full (the server may still answer) */
    int interim;
    nk_http_response resp;
    int64_t remaining;  /* Content-Length body bytes still to come */
    nk_http_chunked chunked;
    int status;
    int err;
    char *msg;
    size_t msglen;
    hc_h2 *h2;          /* the exchange is in HTTP/2 */
} hc_conn;

static void finish(hc_conn *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void finish(hc_conn *c, int err, const char *fmt, ...)
{
    if (c->state == ST_DONE)
        return;
    c->state = ST_DONE;
    c->err = err;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg, c->msglen, fmt, ap);
        va_end(ap);
    }
    nk_timer_stop(c->loop, &c->timer);
    nk_connector_stop(&c->conn);
    hc_h2_free(c->h2);
    c->h2 = NULL;
    if (c->tls) {
        if (err == 0)
            nk_tls_shutdown(c->tls); /* close_notify: the server sees a clean end */
        nk_tls_free(c->tls);
        c->tls = NULL;
    }
    if (c->fd >= 0) {
        nk_io_stop(c->loop, &c->io);
        close(c->fd);
        c->fd = -1;
    }
}

static void arm_timer(hc_conn *c)
{
    nk_timer_start(c->loop, &c->timer, (uint64_t)c->req->timeout_ms, 0);
}

static const char *host_text(const hc_conn *c)
{
    return c->req->unix_path ? c->req->unix_path : c->req->url->host;
}

static void on_io(nk_loop *loop, nk_io *io, unsigned events);

/* Take the frames nghttp2 has for the server (SETTINGS ACKs and WINDOW_UPDATEs after reads,
 * more of the request body after writes) into the output buffer. */
static void h2_pull(hc_conn *c)
{
    if (!c->h2 || c->state == ST_DONE || c->write_err)
        return;
    int rc = hc_h2_send(c->h2, &c->out, HC_H2_OUT_CAP, c->msg, c->msglen);
    if (rc < 0)
        finish(c, rc, NULL);
}

/* Ask the watcher for what the connection waits for now. */
static void watch(hc_conn *c)
{
    h2_pull(c);
    if (c->state == ST_DONE)
        return;
    unsigned ev;
    int sending = nk_buf_len(&c->out) > 0 && c->write_err == 0;
    if (c->state == ST_TLS)
        ev = nk_tls_want(c->tls);
    else if (c->tls)
        ev = c->rd_want | (sending ? c->wr_want : 0);
    else
        ev = NK_READ | (sending ? NK_WRITE : 0);
    if (ev == c->watching)
        return;
    int rc = nk_io_start(c->loop, &c->io, ev);
    if (rc < 0)
        finish(c, rc, "cannot watch the socket: %s", nk_strerror(rc));
    else
        c->watching = ev;
}

/* Whether to speak HTTP/2: what ALPN picked over TLS, prior knowledge without it. */
static int pick_h2(const hc_conn *c)
{
    const hc_request *req = c->req;
    if (!c->tls)
        return req->h2c;
    size_t len = 0;
    const char *alpn = nk_tls_alpn(c->tls, &len);
    int h2 = req->http2 && len == 2 && memcmp(alpn, "h2", 2) == 0;
    if (req->verbose && req->http2)
        fprintf(stderr, "* ALPN: the server picked %.*s: %s\n", (int)(len ? len : 6),
                len ? alpn : "(none)", h2 ? "HTTP/2" : "HTTP/1.1");
    return h2;
}

/* The connection (and its TLS, if any) is ready: send the request. */
static void start_http(hc_conn *c)
{
    const hc_request *req = c->req;
    c->state = ST_HEAD;
    int rc;
    if (pick_h2(c)) {
        rc = hc_h2_new(req, c->ev, &c->h2, c->msg, c->msglen);
        if (rc < 0) {
            finish(c, rc, NULL);
            return;
        }
    } else {
        if (req->verbose) {
            /* the head ends in an empty line: shown as a lone "> " */
            hc_show_lines("> ", req->head, req->head_len - 2);
            fputs("> \n", stderr);
        }
        if ((req->head_len && (rc = nk_buf_append(&c->out, req->head, req->head_len)) < 0) ||
            (req->body_len && (rc = nk_buf_append(&c->out, req->body, req->body_len)) < 0)) {
            finish(c, rc, "%s", nk_strerror(rc));
            return;
        }
    }
    arm_timer(c);
    watch(c);
}

/* OpenSSL's reason for a failure of the TLS layer, else the errno's text. */
static const char *tls_reason(const hc_conn *c, int err)
{
    const char *e = c->tls ? nk_tls_error(c->tls) : "";
    return e[0] ? e : nk_strerror(err);
}

static void tls_failed(hc_conn *c, int err)
{
    const char *why = tls_reason(c, err);
    /* A server that answers a ClientHello with plain HTTP gives a record OpenSSL cannot
     * parse; say what the likely cause is. */
    const char *hint = strstr(why, "wrong version number") || strstr(why, "packet length too long")
                           ? " (is it a plain http:// server?)"
                           : "";
    finish(c, err, "TLS: %s%s", why, hint);
}

/* Drive the handshake; once done, report it and go on with the request (unless only the
 * handshake was asked for). */
static void tls_step(hc_conn *c)
{
    int rc = nk_tls_handshake(c->tls);
    if (rc == -EAGAIN) {
        watch(c);
        return;
    }
    if (rc < 0) {
        tls_failed(c, rc);
        return;
    }
    if (c->ev->on_tls)
        c->ev->on_tls(c->ev->arg, c->tls, nk_connector_addr(&c->conn));
    if (c->req->tls_only)
        finish(c, 0, NULL);
    else
        start_http(c);
}

static void connected(hc_conn *c, int fd)
{
    c->fd = fd;
    nk_io_init(&c->io, fd, on_io, c);
    const hc_url *u = c->req->url;
    if (c->req->verbose) {
        char text[NK_ADDR_STRLEN] = "";
        const nk_addr *a = nk_connector_addr(&c->conn);
        nk_addr_format_host(a, text, sizeof text);
        fprintf(stderr, "* Connected to %s (%s) port %d\n", u->host, text,
                c->req->unix_path ? u->port : nk_addr_port(a));
    }
    if (!c->req->tls) {
        start_http(c);
        return;
    }
    /* The certificate must name the host of the URL, whatever address it resolved to. */
    const char *name = c->req->server_name ? c->req->server_name : u->host;
    int rc = nk_tls_new(c->req->tls, fd, name, &c->tls);
    if (rc < 0) {
        finish(c, rc, "TLS: cannot start a connection to %s: %s", name, nk_strerror(rc));
        return;
    }
    c->state = ST_TLS;
    if (c->req->verbose)
        fprintf(stderr, "* TLS handshake, server name %s%s, ALPN offers %s\n", name,
                hc_is_ip_literal(name) ? " (an address: no SNI)" : "",
                c->req->http2 ? "h2, http/1.1" : "http/1.1");
    arm_timer(c); /* once: a server trickling its handshake does not extend it */
    tls_step(c);
}

static void connect_failed(hc_conn *c, int err)
{
    if (c->req->unix_path)
        finish(c, err, "cannot connect to %s: %s", host_text(c), nk_strerror(err));
    else
        finish(c, err, "cannot connect to %s port %d: %s", host_text(c), c->req->url->port,
               nk_strerror(err));
}

static void on_connected(nk_connector *conn, int fd_or_err)
{
    if (fd_or_err < 0)
        connect_failed(conn->data, fd_or_err);
    else
        connected(conn->data, fd_or_err);
}

static int trace_attempt(int fd, const nk_addr *a, void *data)
{
    (void)fd;
    hc_conn *c = data;
    if (c->req->verbose) {
        char text[NK_ADDR_STRLEN] = "";
        nk_addr_format(a, text, sizeof text);
        fprintf(stderr, "*   Trying %s...\n", text);
    }
    return 0;
}

/* Each address gets the whole timeout, like each wait for the server after it. */
static void start_connect(hc_conn *c)
{
    nk_connect_opts o = {.size = sizeof o, .nodelay = 1, .setup = trace_attempt, .setup_data = c,
                         .attempt_timeout_ms = c->req->timeout_ms > INT_MAX
                                                   ? INT_MAX
                                                   : (int)c->req->timeout_ms};
    int rc = nk_connector_start(&c->conn, c->addrs, (size_t)c->naddrs, SOCK_STREAM, &o);
    if (rc < 0)
        connect_failed(c, rc);
}

/* Body bytes of the final response: deliver, and say whether the body is complete. */
static void feed_body(hc_conn *c, const char *p, size_t n)
{
    if (c->resp.chunked) {
        while (c->state == ST_BODY) {
            size_t used = 0, dlen = 0;
            const char *data = NULL;
            int rc = nk_http_chunked_step(&c->chunked, p, n, &used, &data, &dlen);
            p += used;
            n -= used;
            if (rc == 1) {
                int e = c->ev->on_body(c->ev->arg, data, dlen);
                if (e < 0)
                    finish(c, e, NULL);
            } else if (rc == 2) {
                finish(c, 0, NULL);
            } else if (rc == 0) {
                return;
            } else {
                finish(c, -EBADMSG, "invalid chunked body from the server");
            }
        }
        return;
    }
    size_t take = n;
    if (c->resp.content_length >= 0 && (uint64_t)take > (uint64_t)c->remaining)
        take = (size_t)c->remaining; /* anything after the body is not ours to deliver */
    if (take > 0) {
        int e = c->ev->on_body(c->ev->arg, p, take);
        if (e < 0) {
            finish(c, e, NULL);
            return;
        }
    }
    if (c->resp.content_length >= 0) {
        c->remaining -= (int64_t)take;
        if (c->remaining == 0)
            finish(c, 0, NULL);
    }
}

static ssize_t conn_write(hc_conn *c);

/* HTTP/2: all that was read goes to nghttp2, which answers through the events. */
static void h2_input(hc_conn *c)
{
    size_t n = nk_buf_len(&c->in);
    if (n == 0)
        return;
    int rc = hc_h2_recv(c->h2, nk_buf_rptr(&c->in), n, &c->status, c->msg, c->msglen);
    if (c->state == ST_DONE)
        return;
    nk_buf_consume(&c->in, n);
    if (rc == 1) {
        /* Done: say goodbye (GOAWAY) if the socket takes it now, without waiting for it. */
        nk_buf_clear(&c->out);
        hc_h2_goodbye(c->h2, &c->out);
        if (c->write_err == 0)
            while (nk_buf_len(&c->out) > 0 && conn_write(c) > 0)
                ;
        finish(c, 0, NULL);
    } else if (rc < 0) {
        finish(c, rc, NULL);
    }
}

/* Parse heads from the input buffer; on the final one, start the body. */
static void on_input(hc_conn *c)
{
    if (c->h2) {
        h2_input(c);
        return;
    }
    while (c->state == ST_HEAD) {
        int rc = nk_http_parse_response(nk_buf_rptr(&c->in), nk_buf_len(&c->in), &c->resp, NULL);
        if (rc == -EAGAIN)
            return;
        if (rc < 0) {
            finish(c, -EBADMSG, "invalid response head from the server");
            return;
        }
        c->ev->on_head(c->ev->arg, &c->resp, nk_buf_rptr(&c->in), (size_t)rc);
        if (c->resp.status < 200) {
            /* RFC 9110 section 15.2: "A client MUST be able to parse one or more 1xx responses
             * received prior to a final response, even if the client does not expect one."
             * 101 only answers an Upgrade, which this client never asks for. */
            if (c->resp.status == 101) {
                finish(c, -EPROTO, "server switched protocols (101) unasked");
                return;
            }
            if (++c->interim > HC_MAX_INTERIM) {
                finish(c, -EPROTO, "more than %d interim responses", HC_MAX_INTERIM);
                return;
            }
            nk_buf_consume(&c->in, (size_t)rc);
            continue;
        }
        c->status = c->resp.status;
        /* RFC 9112 section 6.3 point 1: a response to HEAD never has a body; nor do 204,
         * 304 (no_body). */
        if (c->req->head_request || c->resp.no_body) {
            finish(c, 0, NULL);
            return;
        }
        nk_buf_consume(&c->in, (size_t)rc);
        c->state = ST_BODY;
        c->remaining = c->resp.content_length;
        nk_http_chunked_init(&c->chunked, UINT64_MAX);
        if (c->resp.content_length == 0) {
            finish(c, 0, NULL);
            return;
        }
    }
    if (c->state == ST_BODY && nk_buf_len(&c->in) > 0) {
        size_t n = nk_buf_len(&c->in);
        feed_body(c, nk_buf_rptr(&c->in), n);
        if (c->state != ST_DONE)
            nk_buf_consume(&c->in, n);
    }
}

static void on_eof(hc_conn *c)
{
    if (c->state == ST_DONE)
        return;
    if (c->h2) {
        hc_h2_eof(c->h2, c->msg, c->msglen);
        finish(c, -ECONNRESET, NULL);
    } else if (c->state == ST_HEAD) {
        if (c->write_err < 0)
            finish(c, c->write_err, "sending the request: %s", nk_strerror(c->write_err));
        else if (nk_buf_len(&c->in) == 0 && c->interim == 0)
            finish(c, -ECONNRESET, "the server closed the connection without answering");
        else
            finish(c, -EBADMSG, "the server closed the connection in the middle of a response "
                                "head");
    } else if (c->resp.until_close && c->tls && !nk_tls_eof_clean(c->tls)) {
        /* Over TLS only close_notify proves the body whole: a bare TCP close may be an
         * attacker cutting it short (RFC 8446 section 6.1). */
        finish(c, -EBADMSG, "the server closed the connection without TLS close_notify: the "
                            "body may be cut short");
    } else if (c->resp.until_close) {
        finish(c, 0, NULL); /* RFC 9112 section 6.3 point 8: the close ends the body */
    } else if (c->resp.chunked) {
        finish(c, -EBADMSG, "the server closed the connection in the middle of a chunked body");
    } else {
        finish(c, -EBADMSG, "the server closed the connection after %lld of %lld body bytes",
               (long long)(c->resp.content_length - c->remaining),
               (long long)c->resp.content_length);
    }
}

/* Read into the input buffer, through TLS when the connection has it. */
static ssize_t conn_read(hc_conn *c)
{
    if (!c->tls)
        return nk_buf_read_fd(&c->in, c->fd, HC_READ_CHUNK);
    size_t room = HC_IN_MAX - nk_buf_len(&c->in);
    if (room == 0)
        return -ENOBUFS;
    size_t want = room < HC_READ_CHUNK ? room : HC_READ_CHUNK;
    int rc = nk_buf_reserve(&c->in, want);
    if (rc < 0)
        return rc;
    ssize_t n = nk_tls_read(c->tls, nk_buf_wptr(&c->in), want);
    if (n > 0) {
        nk_buf_commit(&c->in, (size_t)n);
        c->rd_want = NK_READ;
    } else if (n == -EAGAIN) {
        c->rd_want = nk_tls_want(c->tls);
    }
    return n;
}

/* Send from the output buffer. A TLS write that waits is repeated with the same bytes, as
 * it must be: they stay at the front of the buffer until taken. */
static ssize_t conn_write(hc_conn *c)
{
    if (!c->tls)
        return nk_buf_write_fd(&c->out, c->fd);
    ssize_t n = nk_tls_write(c->tls, nk_buf_rptr(&c->out), nk_buf_len(&c->out));
    if (n > 0) {
        nk_buf_consume(&c->out, (size_t)n);
        c->wr_want = NK_WRITE;
    } else if (n == -EAGAIN) {
        c->wr_want = nk_tls_want(c->tls);
    }
    return n;
}

/* Whether another read may give bytes: the socket said so, or TLS holds decrypted bytes
 * that no readiness event will announce. Reads per event are capped (a signal gets its
 * turn), but not while TLS holds such bytes. */
static int may_read(const hc_conn *c, int i)
{
    if (c->state == ST_DONE)
        return 0;
    return i < 16 || (c->tls && nk_tls_pending(c->tls) > 0);
}

static void on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    hc_conn *c = io->data;
    if (c->state == ST_TLS) {
        tls_step(c);
        return;
    }
    /* Over TLS any event may unblock either direction. */
    int both = c->tls != NULL;
    h2_pull(c);
    if ((both || (events & NK_WRITE)) && nk_buf_len(&c->out) > 0 && c->write_err == 0) {
        ssize_t n = conn_write(c);
        if (n > 0)
            arm_timer(c);
        else if (n != -EAGAIN && n != -EWOULDBLOCK && n != -EINTR)
            c->write_err = (int)n; /* keep reading: an answer may explain why */
    }
    if (both || (events & (NK_READ | NK_ERROR))) {
        for (int i = 0; may_read(c, i); i++) {
            ssize_t n = conn_read(c);
            if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR)
                break;
            if (n == 0) {
                on_input(c);
                on_eof(c);
                return;
            }
            if (n < 0) {
                if (c->state == ST_BODY && c->resp.until_close && n == -ECONNRESET)
                    finish(c, (int)n, "connection reset while reading the body");
                else if (c->tls && n == -EPROTO)
                    finish(c, (int)n, "TLS: %s", tls_reason(c, (int)n));
                else
                    finish(c, (int)n, "reading the response: %s", nk_strerror((int)n));
                return;
            }
            arm_timer(c);
            on_input(c);
        }
    }
    watch(c);
}

static void on_timeout(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    hc_conn *c = t->data;
    double s = (double)c->req->timeout_ms / 1000.0;
    if (c->state == ST_TLS)
        finish(c, -ETIMEDOUT, "TLS: handshake not done after %g s", s);
    else
        finish(c, -ETIMEDOUT, "no answer from the server for %g s", s);
}

static int resolve(hc_conn *c)
{
    const hc_request *req = c->req;
    char text[600];
    if (req->unix_path) {
        snprintf(text, sizeof text, "unix:%s", req->unix_path);
        int rc = nk_addr_parse(text, 0, &c->addrs[0]);
        if (rc < 0) {
            snprintf(c->msg, c->msglen, "invalid unix socket path '%s': %s", req->unix_path,
                     nk_strerror(rc));
            return rc;
        }
        c->naddrs = 1;
        return 0;
    }
    const hc_url *u = req->url;
    if (u->ipv6)
        snprintf(text, sizeof text, "[%s]:%d", u->host, u->port);
    else
        snprintf(text, sizeof text, "%s:%d", u->host, u->port);
    int rc = nk_addr_resolve(text, SOCK_STREAM, 0, c->addrs, HC_MAX_ADDRS);
    if (rc < 0) {
        snprintf(c->msg, c->msglen, "cannot resolve '%s': %s", u->host, nk_strerror(rc));
        return rc;
    }
    c->naddrs = rc;
    return 0;
}

int hc_exchange(nk_loop *loop, const hc_request *req, const hc_events *ev, int *status, char *msg,
                size_t msglen)
{
    hc_conn c;
    memset(&c, 0, sizeof c);
    c.loop = loop;
    c.req = req;
    c.ev = ev;
    c.fd = -1;
    c.rd_want = NK_READ;
    c.wr_want = NK_WRITE;
    c.msg = msg;
    c.msglen = msglen;
    msg[0] = '\0';
    nk_io_init(&c.io, -1, on_io, &c);
    nk_timer_init(&c.timer, on_timeout, &c);
    nk_connector_init(&c.conn, loop, on_connected, &c);
    nk_buf_init(&c.out, 0);
    nk_buf_init(&c.in, HC_IN_MAX);
    int rc = resolve(&c);
    if (rc < 0)
        return rc;
    start_connect(&c);
    while (c.state != ST_DONE) {
        rc = nk_loop_run(loop, NK_RUN_ONCE);
        if (rc < 0) {
            finish(&c, rc, "event loop: %s", nk_strerror(rc));
            break;
        }
        if (nk_loop_data(loop)) { /* the command asked to stop (a signal) */
            finish(&c, -EINTR, "interrupted");
            break;
        }
    }
    nk_buf_free(&c.out);
    nk_buf_free(&c.in);
    if (c.err == 0)
        *status = c.status;
    return c.err;
}
