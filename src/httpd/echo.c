/* --echo: every request is answered with what the server received, for debugging clients and
 * proxies. The head is taken from the raw bytes kept at the front of the connection's buffer,
 * so field order, case, duplicates and spacing are shown as they were sent. The body is
 * collected through a body sink, bounded by max_body (Content-Length over it is refused with
 * 413 before anything is read; a chunked body over it fails the decoder with 413).
 *
 * text/plain (default):
 *   peer 127.0.0.1:41234
 *   request-line GET /x HTTP/1.1
 *   header Host: localhost          (each field line exactly as sent)
 *   body 5 bytes text               (or "binary": a hex dump follows instead of the text)
 *   <empty line, then the body>
 * JSON (Accept: application/json): {"peer", "request_line", "method", "target", "version",
 *   "headers": [[name, value], ...], "body_length", "body" (text) or "body_hex" (binary)}.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static nk__sink_step echo_data(nk__conn *c, const char *p, size_t n, nk__status *status)
{
    nk_buf *b = c->x->sink_state;
    return nk_buf_append(b, p, n) < 0 ? nk__sink_refuse(status, 413) : NK__SINK_MORE;
}

static void echo_abort(nk__conn *c)
{
    nk_buf *b = c->x->sink_state;
    nk_buf_free(b);
    free(b);
    c->x->sink_state = NULL;
}

/* Text is valid UTF-8 without control characters other than tab, CR and LF. */
static int is_text(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char ch = p[i];
        if (ch < 0x80) {
            if ((ch < 0x20 && ch != '\t' && ch != '\r' && ch != '\n') || ch == 0x7f)
                return 0;
            i++;
            continue;
        }
        size_t len = ch >= 0xf0 && ch <= 0xf4 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc2 && ch < 0xe0 ? 2 : 0;
        if (!len || ch > 0xf4 || i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

static void hex_dump(nk_buf *out, const unsigned char *p, size_t n)
{
    for (size_t off = 0; off < n; off += 16) {
        nk_buf_printf(out, "%08zx ", off);
        for (size_t i = 0; i < 16; i++) {
            if (off + i < n)
                nk_buf_printf(out, " %02x", p[off + i]);
            else
                nk_buf_append(out, "   ", 3);
        }
        nk_buf_append(out, "  |", 3);
        for (size_t i = 0; i < 16 && off + i < n; i++) {
            char ch = (p[off + i] >= 0x20 && p[off + i] < 0x7f) ? (char)p[off + i] : '.';
            nk_buf_append(out, &ch, 1);
        }
        nk_buf_append(out, "|\n", 2);
    }
}

static void json_str(nk_buf *out, const char *p, size_t n)
{
    nk_buf_append(out, "\"", 1);
    nk_http_json_escape(p, n, out);
    nk_buf_append(out, "\"", 1);
}

static int wants_json(const nk_http_request *req)
{
    return nk_http_accepts_explicitly(req, "Accept", "application/json") > 0;
}

static nk__outcome echo_end(nk__conn *c, const nk_http_request *req)
{
    nk_httpd *srv = c->srv;
    nk_buf *body = c->x->sink_state;
    c->x->sink_state = NULL;
    const unsigned char *bp = (const unsigned char *)nk_buf_rptr(body);
    size_t blen = nk_buf_len(body);
    int text = is_text(bp, blen);
    int json = wants_json(req);

    char peer[INET6_ADDRSTRLEN + 16] = "unix";
    if (c->peer_family == AF_INET || c->peer_family == AF_INET6) {
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(c->peer_family, c->peer_ip, ip, sizeof ip);
        snprintf(peer, sizeof peer, c->peer_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
                 (unsigned)c->peer_port);
    }
    /* The raw head: from the request line (empty lines before it were skipped) to the blank
     * line. Each field line is cut at its CRLF; the parser has already refused bare CR/LF. */
    const char *start = req->method_name.p;
    const char *end = nk_buf_rptr(&c->x->in) + c->x->head_len;
    nk_buf received; /* over HTTP/2: the fields as they came, not the engine's request */
    nk_buf_init(&received, 0);
    if (nk__conn_h2s(c) && nk__h2s_received_head(nk__conn_h2s(c), start, (size_t)(end - start), 0, &received) == 0 &&
        nk_buf_append(&received, "\r\n", 2) == 0) {
        start = nk_buf_rptr(&received);
        end = start + nk_buf_len(&received);
    }
    const char *eol = memchr(start, '\n', (size_t)(end - start));
    size_t rl_len = (size_t)(eol - start) - (eol > start && eol[-1] == '\r');

    nk_buf *out = &srv->body;
    nk_buf_clear(out);
    if (json) {
        nk_buf_append_str(out, "{\"peer\":");
        json_str(out, peer, strlen(peer));
        nk_buf_append_str(out, ",\"request_line\":");
        json_str(out, start, rl_len);
        nk_buf_append_str(out, ",\"method\":");
        json_str(out, req->method_name.p, req->method_name.len);
        nk_buf_append_str(out, ",\"target\":");
        json_str(out, req->target.p, req->target.len);
        if (nk__conn_h2s(c))
            nk_buf_append_str(out, ",\"version\":\"HTTP/2\",\"headers\":[");
        else
            nk_buf_printf(out, ",\"version\":\"HTTP/%d.%d\",\"headers\":[", req->version_major,
                          req->version_minor);
    } else {
        nk_buf_printf(out, "peer %s\nrequest-line ", peer);
        nk_buf_append(out, start, rl_len);
        nk_buf_append(out, "\n", 1);
    }
    int first = 1;
    for (const char *p = eol + 1; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        size_t len = (size_t)(nl - p) - (nl > p && nl[-1] == '\r');
        if (len == 0)
            break; /* the blank line ending the head */
        if (json) {
            size_t skip = len && *p == ':'; /* a pseudo-header's name (HTTP/2) */
            const char *colon = memchr(p + skip, ':', len - skip);
            size_t nlen = colon ? (size_t)(colon - p) : len;
            const char *v = colon ? colon + 1 : p + len, *vend = p + len;
            while (v < vend && (*v == ' ' || *v == '\t'))
                v++;
            while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
                vend--;
            nk_buf_append_str(out, first ? "[" : ",[");
            json_str(out, p, nlen);
            nk_buf_append(out, ",", 1);
            json_str(out, v, (size_t)(vend - v));
            nk_buf_append(out, "]", 1);
        } else {
            nk_buf_append_str(out, "header ");
            nk_buf_append(out, p, len);
            nk_buf_append(out, "\n", 1);
        }
        first = 0;
        p = nl + 1;
    }
    if (json) {
        nk_buf_printf(out, "],\"body_length\":%zu,", blen);
        if (text) {
            nk_buf_append_str(out, "\"body\":");
            json_str(out, (const char *)bp, blen);
        } else {
            static const char hexd[] = "0123456789abcdef";
            nk_buf_append_str(out, "\"body_hex\":\"");
            for (size_t i = 0; i < blen; i++) {
                char h2[2] = {hexd[bp[i] >> 4], hexd[bp[i] & 15]};
                nk_buf_append(out, h2, 2);
            }
            nk_buf_append(out, "\"", 1);
        }
        nk_buf_append_str(out, "}\n");
    } else {
        nk_buf_printf(out, "body %zu bytes %s\n\n", blen, text ? "text" : "binary");
        if (text)
            nk_buf_append(out, bp, blen);
        else
            hex_dump(out, bp, blen);
    }
    nk_buf_free(body);
    free(body);
    nk_buf_free(&received);

    return nk__respond_live(c, req, 200, json ? "application/json" : "text/plain; charset=utf-8");
}

static const nk__sink echo_sink = {echo_data, echo_end, echo_abort};

nk__status nk__echo_begin(nk__conn *c, const nk_http_request *req)
{
    nk_buf *b = malloc(sizeof *b);
    if (!b)
        return 500;
    /* max_body bounds a chunked body too; the buffer's own maximum is a second guard */
    nk_buf_init(b, c->srv->cfg.max_body ? (size_t)c->srv->cfg.max_body : 1);
    c->x->sink_state = b;
    c->x->sink = &echo_sink;
    (void)req;
    return NK__NO_STATUS;
}
