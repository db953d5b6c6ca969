/* HTTP/1.1 request head parser (RFC 9112 sections 2 to 5).
 *
 * Two passes over a head, both in byte order:
 *
 *  1. A scanner that finds where the head ends and refuses, as early as the bytes allow,
 *     what can never become a valid head: a bad request line (a state machine over its
 *     grammar), a byte that no head may contain, a bare CR, an obs-fold, a request line or
 *     head over its limit. Every decision it takes at byte i depends only on bytes <= i, so
 *     a head fed in pieces gets the same answer as the whole head, and the search for the
 *     end resumes at prev_len instead of rescanning (only the request line, bounded by
 *     max_request_line, is walked again on each call).
 *  2. Once the end is known, the head is bounded by max_head, so it is split into fields and
 *     checked in one go: method, version, target form, field syntax, then framing fields
 *     (header.c).
 *
 * Nothing is copied: the request holds views into the caller's buffer.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "netkit/http.h"
#include "http_internal.h"

/* RFC 9112 section 2.2: "a server that is expecting to receive and parse a request-line
 * SHOULD ignore at least one empty line (CRLF) received prior to the request-line". A few
 * are tolerated (some clients send a stray CRLF after a POST body); more is not a client
 * being sloppy but someone feeding us an endless stream of nothing. */
#define MAX_LEADING_EMPTY_LINES 8

void nk_http_limits_default(nk_http_limits *lim)
{
    lim->max_request_line = 8192; /* what nginx and lighttpd accept by default */
    lim->max_head = 16384;
    lim->max_headers = 100;
}

static int fail(int *status, int code)
{
    *status = code;
    return -EBADMSG;
}

/* States of the request-line scanner, named after positions in
 *   request-line = method SP request-target SP HTTP-version CRLF   (RFC 9112 section 3) */
enum rl_state {
    RL_METHOD,       /* in the method token */
    RL_TARGET_START, /* after the first SP */
    RL_TARGET,       /* in the request-target */
    RL_VERSION,      /* after the second SP: "HTTP/" DIGIT "." DIGIT */
    RL_CR,           /* after CR: only LF may follow */
};

struct rl {
    size_t method_end, target_start, target_end, version_start;
    size_t lf; /* position of the LF ending the request line */
};

/* HTTP-version = HTTP-name "/" DIGIT "." DIGIT, HTTP-name = %s"HTTP" (case-sensitive,
 * RFC 9112 section 2.3). Checks byte k of the version against that shape. */
static int version_byte_ok(size_t k, unsigned char c)
{
    static const char shape[] = "HTTP/0.0";
    if (k >= sizeof shape - 1)
        return 0;
    if (shape[k] == '0')
        return c >= '0' && c <= '9';
    return c == (unsigned char)shape[k];
}

/* Request-target bytes that need no decision of the scanner: visible ASCII other than '#', and
 * obs bytes >= 0x80 (see RL_TARGET below). */
static const unsigned char target_plain[256] = {
#define P4(c) [(c)] = 1, [(c) + 1] = 1, [(c) + 2] = 1, [(c) + 3] = 1
#define P16(c) P4(c), P4((c) + 4), P4((c) + 8), P4((c) + 12)
    ['!'] = 1, ['"'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1,
    ['*'] = 1, ['+'] = 1, [','] = 1, ['-'] = 1, ['.'] = 1, ['/'] = 1,
    P16(0x30), P16(0x40), P16(0x50), P16(0x60), P4(0x70), P4(0x74), P4(0x78), [0x7c] = 1,
    [0x7d] = 1, [0x7e] = 1,
    P16(0x80), P16(0x90), P16(0xa0), P16(0xb0), P16(0xc0), P16(0xd0), P16(0xe0), P16(0xf0),
#undef P16
#undef P4
};

/* Scan the request line starting at start. Returns 0 with *rl filled, -EAGAIN, or -EBADMSG.
 * The bytes of the method and of the target that change nothing (a tchar in the method, a
 * plain byte in the target) are skipped by a table lookup each, while they lie before the
 * offset where the limits start to refuse anything but LF (plain_end); every other byte goes
 * through the state machine, so the result is the same as a byte-by-byte walk. */
static int scan_request_line(const char *buf, size_t len, size_t start, const nk_http_limits *lim,
                             struct rl *rl, int *status)
{
    enum rl_state st = RL_METHOD;
    size_t bound = lim->max_request_line < lim->max_head ? lim->max_request_line : lim->max_head;
    size_t plain_end = bound == 0 ? start : start + bound - 1;
    if (plain_end > len)
        plain_end = len;
    size_t i = start;
    while (i < len) {
        if (st == RL_METHOD) {
            while (i < plain_end && nk__http_tchar[(unsigned char)buf[i]])
                i++;
        } else if (st == RL_TARGET) {
            while (i < plain_end && target_plain[(unsigned char)buf[i]])
                i++;
        }
        if (i == len)
            break;
        /* The usual "HTTP/1.1\r\n" in one comparison when all of it is here and within the
         * limits (its LF is allowed at any offset); anything else goes byte by byte. */
        if (st == RL_VERSION && i == rl->version_start && len - i >= 10 && i + 9 <= plain_end &&
            memcmp(buf + i, "HTTP/1.1\r\n", 10) == 0) {
            rl->lf = i + 9;
            return 0;
        }
        unsigned char c = (unsigned char)buf[i];
        /* Limits first: the LF must be within max_request_line bytes of the start, so at
         * the last allowed offset any other byte already proves the line too long. */
        if (i - start + 1 >= lim->max_request_line && c != '\n')
            return fail(status, 414);
        if (i - start + 1 >= lim->max_head && c != '\n')
            return fail(status, 431);
        switch (st) {
        case RL_METHOD:
            if (nk__http_tchar[c])
                break;
            /* method = token; RFC 9112 section 3: exactly one SP between the parts
             * ("... SHOULD respond with 400 (Bad Request) ..." on an invalid request-line;
             * we do not take the MAY of parsing on whitespace-split words). */
            if (c != ' ' || i == start)
                return fail(status, 400);
            rl->method_end = i;
            st = RL_TARGET_START;
            break;
        case RL_TARGET_START:
        case RL_TARGET:
            /* The request-target's URI grammar uses visible ASCII; obs bytes >= 0x80 are let
             * through for the path module to judge (it decodes and refuses what it must).
             * CTLs, NUL, DEL and a second SP end the request here. */
            if ((c > 0x20 && c < 0x7f) || c >= 0x80) {
                /* RFC 9112 section 3.2: request-target has no fragment; a '#' means the
                 * client sent something that is not a URI reference we could serve. */
                if (c == '#')
                    return fail(status, 400);
                if (st == RL_TARGET_START) {
                    rl->target_start = i;
                    st = RL_TARGET;
                }
                break;
            }
            /* Missing target ("GET  /") or no version at all ("GET /\r\n", HTTP/0.9). */
            if (c != ' ' || st == RL_TARGET_START)
                return fail(status, 400);
            rl->target_end = i;
            rl->version_start = i + 1;
            st = RL_VERSION;
            break;
        case RL_VERSION:
            if (i - rl->version_start == 8 && (c == '\r' || c == '\n')) {
                if (c == '\n') {
                    rl->lf = i;
                    return 0;
                }
                st = RL_CR;
                break;
            }
            /* "HTTP/1.10", "HTTP/1", "http/1.1", "HTTP/1.1 " all fail here. */
            if (!version_byte_ok(i - rl->version_start, c))
                return fail(status, 400);
            break;
        case RL_CR:
            /* RFC 9112 section 2.2: "A sender MUST NOT generate a bare CR ... a recipient of
             * such a bare CR MUST consider that element to be invalid" */
            if (c != '\n')
                return fail(status, 400);
            rl->lf = i;
            return 0;
        }
        i++;
    }
    return -EAGAIN;
}

/* Bytes that no head may contain anywhere: CTLs other than HTAB, CR and LF, and DEL
 * (RFC 9110 section 5.5: field values; RFC 9112 section 5: field names are tokens). */
static int head_byte_bad(unsigned char c)
{
    return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f;
}

/* Look for the end of the head in the fields after the request line, from position from on
 * (from > the request line's LF); bytes between that LF and from were already checked by an
 * earlier call, and every check at byte i looks only at bytes i - 2 to i. Returns the head end
 * (the position after the LF of the empty line), -EAGAIN, or -EBADMSG. */
static size_t scan_fields(const char *buf, size_t len, size_t start, size_t from,
                          const nk_http_limits *lim, int *rc, int *status)
{
    /* Below plain_end the head limit cannot refuse a byte. A byte that is neither a CTL nor
     * DEL, following another such byte, passes every check below (they only look for a CR,
     * an LF, a CTL, or what follows a CR or an LF), so runs of them are skipped by table. */
    size_t plain_end = lim->max_head == 0 ? start : start + lim->max_head - 1;
    if (plain_end > len)
        plain_end = len;
    size_t i = from;
    while (i < len) {
        unsigned char c = (unsigned char)buf[i];
        unsigned char prev = (unsigned char)buf[i - 1]; /* at worst the request line's LF */
        if (head_byte_bad(c) || (prev == '\r' && c != '\n')) {
            *rc = fail(status, 400); /* NUL, CTL, or a bare CR (RFC 9112 section 2.2) */
            return 0;
        }
        if (prev == '\n' && (c == ' ' || c == '\t')) {
            /* RFC 9112 section 5.2: "A server that receives an obs-fold in a request
             * message ... MUST either reject the message by sending a 400 (Bad Request) ...
             * or replace each received obs-fold with one or more SP octets". We reject:
             * unfolding is how "Transfer-Encoding:\r\n chunked" slips past a proxy. */
            *rc = fail(status, 400);
            return 0;
        }
        /* An LF ends an empty line if the line started right after the previous LF
         * (bare-LF line endings, RFC 9112 section 2.2 lets a recipient accept them) or after
         * the previous LF and a CR. */
        /* (a CR at i - 1 is not the request line's LF, so i - 2 is still in the head) */
        if (c == '\n' && (prev == '\n' || (prev == '\r' && buf[i - 2] == '\n'))) {
            *rc = 0;
            return i + 1;
        }
        /* The head, through its final LF, must fit in max_head bytes: at the last allowed
         * offset anything but that LF already proves it too long. */
        if (i - start + 1 >= lim->max_head) {
            *rc = fail(status, 431);
            return 0;
        }
        i++;
        if (nk__http_fchar[c])
            while (i < plain_end && nk__http_fchar[(unsigned char)buf[i]])
                i++;
    }
    *rc = -EAGAIN;
    return 0;
}

static const struct {
    const char *name;
    size_t len;
    nk_http_method m;
} methods[] = {
    {"GET", 3, NK_HTTP_GET},         {"HEAD", 4, NK_HTTP_HEAD},   {"POST", 4, NK_HTTP_POST},
    {"PUT", 3, NK_HTTP_PUT},         {"DELETE", 6, NK_HTTP_DELETE},
    {"OPTIONS", 7, NK_HTTP_OPTIONS}, {"TRACE", 5, NK_HTTP_TRACE}, {"PATCH", 5, NK_HTTP_PATCH},
    {"CONNECT", 7, NK_HTTP_CONNECT},
};

/* Method names are case-sensitive (RFC 9110 section 9.1). */
static nk_http_method lookup_method(const char *p, size_t len)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (methods[i].len == len && memcmp(methods[i].name, p, len) == 0)
            return methods[i].m;
    return NK_HTTP_UNKNOWN;
}

/* path and query of "path[?query]" */
static void split_query(nk_http_request *req, const char *p, size_t len)
{
    const char *q = memchr(p, '?', len);
    req->path.p = p;
    req->path.len = q ? (size_t)(q - p) : len;
    req->query.p = q ? q + 1 : NULL;
    req->query.len = q ? len - (size_t)(q - p) - 1 : 0;
}

static int has_prefix_ci(const char *p, size_t len, const char *pre)
{
    size_t n = strlen(pre);
    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != (unsigned char)pre[i])
            return 0;
    }
    return 1;
}

/* Classify the request-target (RFC 9112 section 3.2) and set path, query, and for the
 * absolute and authority forms host. Returns 1 when the target named the host (absolute-form,
 * authority-form: the Host field is then not used for req->host), 0 otherwise, -EBADMSG. */
static int parse_target(nk_http_request *req, int *status)
{
    const char *t = req->target.p;
    size_t n = req->target.len;

    /* authority-form "is only used for CONNECT requests" (section 3.2.3), and CONNECT
     * "uses the authority-form" only: "host:port", port required. The path is empty. */
    if (req->method == NK_HTTP_CONNECT) {
        if (!nk__http_authority_ok(t, n, 1))
            return fail(status, 400);
        req->host = req->target;
        req->path.p = t;
        req->path.len = 0;
        return 1;
    }
    /* asterisk-form "is only used for a server-wide OPTIONS request" (section 3.2.4) */
    if (n == 1 && t[0] == '*') {
        if (req->method != NK_HTTP_OPTIONS)
            return fail(status, 400);
        req->path = req->target;
        return 0;
    }
    /* origin-form = absolute-path [ "?" query ] (section 3.2.1) */
    if (t[0] == '/') {
        split_query(req, t, n);
        return 0;
    }
    /* absolute-form = absolute-URI (section 3.2.2); "A server MUST accept the absolute-form
     * in requests". Only http and https name something we could be the origin of. */
    size_t skip;
    if (has_prefix_ci(t, n, "http://"))
        skip = 7;
    else if (has_prefix_ci(t, n, "https://"))
        skip = 8;
    else
        return fail(status, 400);
    const char *a = t + skip;
    size_t alen = 0;
    while (skip + alen < n && a[alen] != '/' && a[alen] != '?')
        alen++;
    /* RFC 9110 section 4.2.1: "A sender MUST NOT generate an "http" URI with an empty host
     * identifier. A recipient that processes such a URI reference MUST reject it as
     * invalid." Userinfo ('@') is refused by the authority check, as section 4.2.4 asks a
     * recipient to "treat its presence as an error". */
    if (alen == 0 || !nk__http_authority_ok(a, alen, 0))
        return fail(status, 400);
    req->host.p = a;
    req->host.len = alen;
    const char *rest = a + alen;
    size_t rlen = n - skip - alen;
    if (rlen == 0 || rest[0] == '?') {
        /* An empty path means "/" (RFC 9110 section 4.2.3); the view points at a static
         * "/" because there is no such byte in the buffer. The query stays in the buffer. */
        req->path.p = "/";
        req->path.len = 1;
        req->query.p = rlen ? rest + 1 : NULL;
        req->query.len = rlen ? rlen - 1 : 0;
    } else {
        split_query(req, rest, rlen);
    }
    return 1;
}

/* Split the fields between the request line and the empty line. The scanner already
 * refused bad bytes, bare CRs and obs-folds; this checks each line's shape:
 *   field-line = field-name ":" OWS field-value OWS   (RFC 9112 section 5) */
static int parse_fields(const char *buf, size_t from, size_t end, nk_http_header *fields,
                        size_t max, nk_http_request *req, int *status)
{
    size_t i = from;
    for (;;) {
        nk_http_header h;
        int rc = nk__http_field_line(buf, &i, &h);
        if (rc == 0)
            return 0; /* the empty line: the scanner guaranteed it ends the head */
        /* RFC 9112 section 5.1: "No whitespace is allowed between the field name and colon.
         * ... A server MUST reject, with a response status code of 400 (Bad Request), any
         * received request message that contains whitespace between a header field name and
         * colon." Also an empty name, a line without a colon, or a non-token byte (UTF-8)
         * in the name. */
        if (rc < 0)
            return fail(status, 400);
        if (req->nheaders >= max)
            return fail(status, 431);
        fields[req->nheaders++] = h;
        if (i >= end)
            return fail(status, 400); /* unreachable: the head ends in an empty line */
    }
}

/* Without the caller's array: the fields go into req->headers, at most lim->max_headers (and
 * NK_HTTP_MAX_HEADERS); with it, into fields, at most cap (fields NULL only with cap 0). */
static int parse_request(const char *buf, size_t len, size_t prev_len, const nk_http_limits *lim,
                         nk_http_request *req, int callers, nk_http_header *fields, size_t cap,
                         int *status)
{
    nk_http_limits def;
    int rc, dummy;
    if (!status)
        status = &dummy;
    *status = 0;
    if (lim)
        def = *lim;
    else
        nk_http_limits_default(&def);
    /* The head length is returned as an int. */
    if (def.max_head > INT_MAX)
        def.max_head = INT_MAX;
    lim = &def;
    if (prev_len > len)
        prev_len = len;

    /* Skip empty lines before the request line (RFC 9112 section 2.2). */
    size_t start = 0;
    for (int lines = 0;; lines++) {
        if (start == len)
            return -EAGAIN;
        if (buf[start] == '\r') {
            if (start + 1 == len)
                return -EAGAIN;
            if (buf[start + 1] != '\n')
                return fail(status, 400);
        } else if (buf[start] != '\n') {
            break;
        }
        if (lines == MAX_LEADING_EMPTY_LINES)
            return fail(status, 400);
        start += buf[start] == '\r' ? 2 : 1;
    }

    struct rl rl = {0};
    rc = scan_request_line(buf, len, start, lim, &rl, status);
    if (rc < 0)
        return rc;
    size_t from = rl.lf + 1 > prev_len ? rl.lf + 1 : prev_len;
    size_t end = scan_fields(buf, len, start, from, lim, &rc, status);
    if (rc < 0)
        return rc;

    /* The whole head is here; give it meaning. */
    req->method_name.p = buf + start;
    req->method_name.len = rl.method_end - start;
    req->method = lookup_method(req->method_name.p, req->method_name.len);
    req->target.p = buf + rl.target_start;
    req->target.len = rl.target_end - rl.target_start;
    req->path.p = NULL;
    req->path.len = 0;
    req->query.p = NULL;
    req->query.len = 0;
    req->version_major = buf[rl.version_start + 5] - '0';
    req->version_minor = buf[rl.version_start + 7] - '0';
    req->nheaders = 0;
    req->fields = callers ? fields : NULL;
    req->host.p = NULL;
    req->host.len = 0;
    req->content_length = -1;
    req->chunked = 0;
    req->keep_alive = 0;
    req->expect_continue = 0;
    req->expect_unknown = 0;
    req->head_len = 0;

    /* RFC 9110 section 15.6.6: 505 "the server does not support, or refuses to support, the
     * major version of HTTP that was used in the request message". A minor version above 1
     * is answered as HTTP/1.1 (RFC 9110 section 2.5). */
    if (req->version_major != 1)
        return fail(status, 505);
    /* An unknown method (NK_HTTP_UNKNOWN, token in method_name) is well-formed: whether it
     * is implemented (RFC 9110 section 9.1: else 501) is for the server, whose handlers may
     * take any method. */
    int host_in_target = parse_target(req, status);
    if (host_in_target < 0)
        return host_in_target;
    if (!callers) {
        fields = req->headers;
        cap = lim->max_headers < NK_HTTP_MAX_HEADERS ? lim->max_headers : NK_HTTP_MAX_HEADERS;
    }
    rc = parse_fields(buf, rl.lf + 1, end, fields, cap, req, status);
    if (rc < 0)
        return rc;
    rc = nk__http_derive(req, host_in_target, status);
    if (rc < 0)
        return rc;
    req->head_len = end;
    return (int)end;
}

int nk_http_parse_request(const char *buf, size_t len, size_t prev_len, const nk_http_limits *lim,
                          nk_http_request *req, int *status)
{
    return parse_request(buf, len, prev_len, lim, req, 0, NULL, 0, status);
}

int nk_http_parse_request_fields(const char *buf, size_t len, size_t prev_len,
                                 const nk_http_limits *lim, nk_http_request *req,
                                 nk_http_header *fields, size_t cap, int *status)
{
    if (!fields && cap) {
        if (status)
            *status = 0;
        return -EINVAL;
    }
    return parse_request(buf, len, prev_len, lim, req, 1, fields, cap, status);
}
