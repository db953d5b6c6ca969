/* HTTP/1.x response head parser, for clients (RFC 9112 sections 2, 4, 5 and 6.3).
 *
 * One pass finds the end of the head while refusing, as early as the bytes allow, what can
 * never become a valid head (a first line not starting with "HTTP/", a control byte, a bare
 * CR, an obs-fold, a head over the limit); every decision at byte i looks only at bytes <= i,
 * so a head fed in pieces gets the same answer as the whole. A second pass splits the now
 * bounded head into the status line and fields, and derives the framing.
 *
 * Nothing is copied: the response holds views into the caller's buffer.
 */
#include <errno.h>
#include <string.h>

#include "netkit/http.h"
#include "http_internal.h"

static const char http_prefix[] = "HTTP/";

/* Bytes no head may contain: CTLs other than HTAB, CR, LF, and DEL (RFC 9110 section 5.5). */
static int byte_bad(unsigned char c)
{
    return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f;
}

/* Find the end of the head: the position after the LF of the first empty line. */
static int scan(const char *buf, size_t len, size_t *end)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        /* A response starts with its status line, "HTTP/": refusing anything else at once
         * keeps a client from waiting out its timeout on a server speaking another protocol.
         * (Unlike a server, a client does not skip leading empty lines: section 2.2 only
         * asks that of request-line parsers.) */
        if (i < sizeof http_prefix - 1 && c != (unsigned char)http_prefix[i])
            return -EBADMSG;
        if (byte_bad(c))
            return -EBADMSG;
        if (i > 0) {
            unsigned char prev = (unsigned char)buf[i - 1];
            /* RFC 9112 section 2.2: "A sender MUST NOT generate a bare CR ... a recipient
             * of such a bare CR MUST consider that element to be invalid". */
            if (prev == '\r' && c != '\n')
                return -EBADMSG;
            /* RFC 9112 section 5.2: "A user agent that receives an obs-fold in a response
             * message ... MUST replace each received obs-fold with one or more SP octets prior
             * to interpreting the field value." The buffer is the caller's and read-only here,
             * so the fold cannot be replaced; the message is refused instead (folding has
             * been deprecated since RFC 7230 and no current server sends it). */
            if (prev == '\n' && (c == ' ' || c == '\t'))
                return -EBADMSG;
            /* An empty line: LF right after LF, or CR LF right after LF (bare-LF endings
             * are accepted, section 2.2: "a recipient MAY recognize a single LF"). */
            if (c == '\n' && (prev == '\n' || (prev == '\r' && i >= 2 && buf[i - 2] == '\n'))) {
                *end = i + 1;
                return 0;
            }
        }
        /* The head, through its final LF, must fit in the limit: at the last allowed offset
         * anything but that LF already proves it too long. */
        if (i + 1 >= NK_HTTP_RESPONSE_MAX_HEAD)
            return -EBADMSG;
    }
    return -EAGAIN;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* status-line = HTTP-version SP status-code SP [ reason-phrase ]   (RFC 9112 section 4)
 * HTTP-version = "HTTP/" DIGIT "." DIGIT; status-code = 3DIGIT.
 * Returns the position after the line's LF, or 0 when invalid. */
static size_t parse_status_line(const char *buf, size_t end, nk_http_response *resp)
{
    const char *lf = memchr(buf, '\n', end);
    size_t le = (size_t)(lf - buf); /* the scanner proved there is one */
    if (le > 0 && buf[le - 1] == '\r')
        le--;
    if (le < 12 || !is_digit(buf[5]) || buf[6] != '.' || !is_digit(buf[7]) || buf[8] != ' ')
        return 0;
    resp->version_major = buf[5] - '0';
    resp->version_minor = buf[7] - '0';
    /* Only HTTP/1.x has this framing; a 2.0 or 0.9 "response" here is something else. */
    if (resp->version_major != 1)
        return 0;
    if (!is_digit(buf[9]) || !is_digit(buf[10]) || !is_digit(buf[11]))
        return 0;
    resp->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    /* RFC 9110 section 15: "Values outside the range 100..599 are invalid." */
    if (resp->status < 100 || resp->status > 599)
        return 0;
    /* The SP before an empty reason-phrase is required by the grammar, but some servers omit
     * it; a client "SHOULD ignore the reason-phrase content" anyway (section 4), so a line
     * ending right after the code is accepted. */
    size_t r = 12;
    if (le > 12 && buf[12] != ' ')
        return 0; /* "HTTP/1.1 2000" */
    if (le > 12)
        r = 13;
    /* reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ): the scanner refused the rest. */
    resp->reason.p = buf + r;
    resp->reason.len = le - r;
    return (size_t)(lf - buf) + 1;
}

/* The fields, up to the empty line the scanner found. Section 5.1 forbids whitespace between
 * name and colon: a client has no business guessing which of two parsings the server meant. */
static int parse_fields(const char *buf, size_t i, size_t end, nk_http_response *resp)
{
    for (;;) {
        nk_http_header h;
        int rc = nk__http_field_line(buf, &i, &h);
        if (rc == 0)
            return 0;
        if (rc < 0 || resp->nheaders >= NK_HTTP_RESPONSE_MAX_HEADERS)
            return -EBADMSG;
        resp->headers[resp->nheaders++] = h;
        if (i >= end)
            return -EBADMSG; /* unreachable: the head ends in an empty line */
    }
}

/* Content-Length = 1*DIGIT (RFC 9110 section 8.6). Section 8.6 lets a recipient accept a list
 * of identical values ("42, 42", or the field repeated) as that one value; anything else,
 * including differing values and numbers too big to hold, is invalid framing. */
static int content_length(const nk_http_header *h, int64_t *cl)
{
    const char *p = h->value.p, *end = h->value.p + h->value.len;
    nk_str el;
    int any = 0;
    while (nk__http_list_next(&p, end, &el)) {
        if (el.len == 0 || el.len > 18) /* 18 digits always fit in int64_t */
            return -EBADMSG;
        int64_t n = 0;
        for (size_t k = 0; k < el.len; k++) {
            if (!is_digit(el.p[k]))
                return -EBADMSG;
            n = n * 10 + (el.p[k] - '0');
        }
        if (*cl >= 0 && *cl != n)
            return -EBADMSG;
        *cl = n;
        any = 1;
    }
    return any ? 0 : -EBADMSG;
}

/* Transfer-Encoding: 1 when its final coding is chunked, 0 otherwise, -EBADMSG when chunked
 * appears anywhere else or twice (RFC 9112 section 6.1: "A sender MUST NOT apply the chunked
 * transfer coding more than once to a message body"). */
static int te_chunked(const nk_http_header *h, int *last_chunked, int *nchunked)
{
    const char *p = h->value.p, *end = h->value.p + h->value.len;
    nk_str coding, rest;
    int r;
    while ((r = nk__http_te_next(&p, end, &coding, &rest)) > 0) {
        if (nk__http_ieq(coding.p, coding.len, "chunked")) {
            if (rest.len) /* chunked has no parameters */
                return -EBADMSG;
            if (++*nchunked > 1)
                return -EBADMSG;
            *last_chunked = 1;
        } else {
            *last_chunked = 0;
        }
    }
    return r < 0 ? -EBADMSG : 0;
}

/* Message body length of a response, RFC 9112 section 6.3. */
static int derive(nk_http_response *resp)
{
    int64_t cl = -1;
    int has_cl = 0, has_te = 0, last_chunked = 0, nchunked = 0, conn_close = 0, conn_keep = 0;
    for (size_t i = 0; i < resp->nheaders; i++) {
        const nk_http_header *h = &resp->headers[i];
        if (nk__http_ieq(h->name.p, h->name.len, "content-length")) {
            has_cl = 1;
            if (content_length(h, &cl) < 0 && resp->status >= 200 && resp->status != 204 &&
                resp->status != 304)
                return -EBADMSG;
        } else if (nk__http_ieq(h->name.p, h->name.len, "transfer-encoding")) {
            has_te = 1;
            if (te_chunked(h, &last_chunked, &nchunked) < 0)
                return -EBADMSG;
        } else if (nk__http_ieq(h->name.p, h->name.len, "connection")) {
            conn_close |= nk_http_list_has(h->value, "close");
            conn_keep |= nk_http_list_has(h->value, "keep-alive");
        }
    }
    resp->content_length = -1;
    resp->chunked = resp->until_close = resp->no_body = 0;
    /* Point 1: "Any response ... with a 1xx (Informational), 204 (No Content), or 304 (Not
     * Modified) status code is always terminated by the first empty line after the header
     * fields ... and thus cannot contain a message body or trailer section." */
    if (resp->status < 200 || resp->status == 204 || resp->status == 304) {
        resp->no_body = 1;
    } else if (has_te) {
        /* Point 3: "If a message is received with both a Transfer-Encoding and a
         * Content-Length header field ... Such a message might indicate an attempt to perform
         * request smuggling ... or response splitting ... and ought to be handled as an
         * error." */
        if (has_cl)
            return -EBADMSG;
        /* Point 4: "If a Transfer-Encoding header field is present in a response and the
         * chunked transfer coding is not the final encoding, the message body length is
         * determined by reading the connection until it is closed by the server." */
        if (last_chunked)
            resp->chunked = 1;
        else
            resp->until_close = 1;
    } else if (has_cl) {
        /* Point 5: an invalid Content-Length was refused above ("the recipient MUST treat it
         * as an unrecoverable error"); point 6: a valid one is the body length. */
        resp->content_length = cl;
    } else {
        /* Point 8: "Otherwise, this is a response message without a declared message body
         * length, so the message body length is determined by the number of octets received
         * prior to the server closing the connection." */
        resp->until_close = 1;
    }
    /* RFC 9112 section 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with
     * "keep-alive". A body delimited by the close can never leave a reusable connection. */
    if (resp->version_minor >= 1)
        resp->keep_alive = !conn_close;
    else
        resp->keep_alive = conn_keep && !conn_close;
    if (resp->until_close)
        resp->keep_alive = 0;
    return 0;
}

int nk_http_parse_response(const char *buf, size_t len, nk_http_response *resp, int *status)
{
    if (status)
        *status = 0;
    size_t end = 0;
    int rc = scan(buf, len, &end);
    if (rc < 0)
        return rc;
    resp->nheaders = 0;
    size_t i = parse_status_line(buf, end, resp);
    if (i == 0)
        return -EBADMSG;
    if (parse_fields(buf, i, end, resp) < 0 || derive(resp) < 0)
        return -EBADMSG;
    resp->head_len = end;
    if (status)
        *status = resp->status;
    return (int)end;
}

const nk_http_header *nk_http_response_header(const nk_http_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (nk__http_ieq(resp->headers[i].name.p, resp->headers[i].name.len, name))
            return &resp->headers[i];
    return NULL;
}
