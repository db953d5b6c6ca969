/* Header fields: the character classes of RFC 9110 section 5.6, and the fields that decide how
 * a request is framed and handled (Host, Content-Length, Transfer-Encoding, Connection,
 * Expect). parse.c finds and splits the fields; this file gives them meaning.
 *
 * Framing is where request smuggling lives (RFC 9112 section 11.2), so every rule here is at
 * least as strict as the RFC's MUSTs and chooses "refuse" wherever the RFC allows a choice:
 * a front end that is lenient in a different way than we are is the attack.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "netkit/http.h"
#include "http_internal.h"

/* RFC 9110 section 5.6.2:
 *   tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|"
 *         / "~" / DIGIT / ALPHA */
#define T1(c) [c] = 1
const unsigned char nk__http_tchar[256] = {
    T1('!'), T1('#'), T1('$'), T1('%'), T1('&'), T1('\''), T1('*'), T1('+'), T1('-'), T1('.'),
    T1('^'), T1('_'), T1('`'), T1('|'), T1('~'),
    T1('0'), T1('1'), T1('2'), T1('3'), T1('4'), T1('5'), T1('6'), T1('7'), T1('8'), T1('9'),
    T1('A'), T1('B'), T1('C'), T1('D'), T1('E'), T1('F'), T1('G'), T1('H'), T1('I'), T1('J'),
    T1('K'), T1('L'), T1('M'), T1('N'), T1('O'), T1('P'), T1('Q'), T1('R'), T1('S'), T1('T'),
    T1('U'), T1('V'), T1('W'), T1('X'), T1('Y'), T1('Z'),
    T1('a'), T1('b'), T1('c'), T1('d'), T1('e'), T1('f'), T1('g'), T1('h'), T1('i'), T1('j'),
    T1('k'), T1('l'), T1('m'), T1('n'), T1('o'), T1('p'), T1('q'), T1('r'), T1('s'), T1('t'),
    T1('u'), T1('v'), T1('w'), T1('x'), T1('y'), T1('z'),
};

/* RFC 9110 section 5.5: field-value bytes.
 *   field-content = field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ]
 *   field-vchar   = VCHAR / obs-text
 * "Field values containing CR, LF, or NUL characters are invalid and dangerous"; we refuse
 * every other CTL too (DEL included), which is what the grammar says. */
#define R16(c) [(c)] = 1, [(c) + 1] = 1, [(c) + 2] = 1, [(c) + 3] = 1, [(c) + 4] = 1,     \
    [(c) + 5] = 1, [(c) + 6] = 1, [(c) + 7] = 1, [(c) + 8] = 1, [(c) + 9] = 1, [(c) + 10] = 1, \
    [(c) + 11] = 1, [(c) + 12] = 1, [(c) + 13] = 1, [(c) + 14] = 1, [(c) + 15] = 1
const unsigned char nk__http_fchar[256] = {
    ['\t'] = 1, R16(0x20), R16(0x30), R16(0x40), R16(0x50), R16(0x60),
    [0x70] = 1, [0x71] = 1, [0x72] = 1, [0x73] = 1, [0x74] = 1, [0x75] = 1, [0x76] = 1,
    [0x77] = 1, [0x78] = 1, [0x79] = 1, [0x7a] = 1, [0x7b] = 1, [0x7c] = 1, [0x7d] = 1,
    [0x7e] = 1, /* 0x7f DEL is a CTL */
    R16(0x80), R16(0x90), R16(0xa0), R16(0xb0), R16(0xc0), R16(0xd0), R16(0xe0), R16(0xf0),
};

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }

int nk__http_ieq_n(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

int nk__http_ieq(const char *a, size_t alen, const char *b) { return nk__http_ieq_n(a, alen, b, strlen(b)); }

/* The same against a string literal, whose length the compiler knows. */
#define IEQ_LIT(a, alen, lit) nk__http_ieq_n((a), (alen), (lit), sizeof(lit) - 1)

/* field-line = field-name ":" OWS field-value OWS   (RFC 9112 section 5) */
int nk__http_field_line(const char *buf, size_t *pos, nk_http_header *h)
{
    size_t i = *pos;
    if (buf[i] == '\n' || (buf[i] == '\r' && buf[i + 1] == '\n'))
        return 0;
    size_t name = i;
    while (nk__http_tchar[(unsigned char)buf[i]])
        i++;
    /* Section 5.1: no whitespace between name and colon; an empty name, a line without a
     * colon, or a non-token byte (UTF-8) in the name is as bad. */
    if (i == name || buf[i] != ':')
        return -1;
    h->name.p = buf + name;
    h->name.len = i - name;
    i++;
    while (buf[i] == ' ' || buf[i] == '\t')
        i++;
    size_t v = i;
    while (nk__http_fchar[(unsigned char)buf[i]])
        i++;
    if (buf[i] == '\r')
        i++;
    if (buf[i] != '\n')
        return -1;
    size_t ve = buf[i - 1] == '\r' ? i - 1 : i;
    while (ve > v && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
        ve--;
    h->value.p = buf + v;
    h->value.len = ve - v;
    *pos = i + 1;
    return 1;
}

static int is_hex(int c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

const nk_http_header *nk_http_find_header(const nk_http_request *req, const char *name)
{
    const nk_http_header *f = nk_http_fields(req);
    size_t n = strlen(name); /* once, not once per field */
    for (size_t i = 0; i < req->nheaders; i++)
        if (nk__http_ieq_n(f[i].name.p, f[i].name.len, name, n))
            return &f[i];
    return NULL;
}

int nk__http_list_next(const char **pp, const char *end, nk_str *el)
{
    const char *p = *pp;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == end) {
            *pp = p;
            return 0;
        }
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *pp = p;
        el->p = s;
        el->len = (size_t)(e - s);
        return 1;
    }
}

int nk__http_te_next(const char **pp, const char *end, nk_str *coding, nk_str *rest)
{
    nk_str el;
    if (!nk__http_list_next(pp, end, &el))
        return 0;
    size_t t = 0;
    while (t < el.len && nk__http_tchar[(unsigned char)el.p[t]])
        t++;
    if (t == 0)
        return -1;
    *coding = (nk_str){el.p, t};
    *rest = (nk_str){el.p + t, el.len - t};
    return 1;
}

/* The whole element must equal token: "close" does not match "close;x" or "unclosed". */
int nk_http_list_has(nk_str value, const char *token)
{
    const char *p, *end;
    nk_str el;
    /* Checked before the arithmetic: NULL + len is undefined even when len is 0. */
    if (!value.p)
        return 0;
    p = value.p;
    end = value.p + value.len;
    while (nk__http_list_next(&p, end, &el))
        if (nk__http_ieq(el.p, el.len, token))
            return 1;
    return 0;
}

/* reg-name bytes other than pct-encoded (RFC 3986 section 3.2.2): unreserved / sub-delims */
static const unsigned char regname_char[256] = {
    T1('-'), T1('.'), T1('_'), T1('~'), T1('!'), T1('$'), T1('&'), T1('\''), T1('('), T1(')'),
    T1('*'), T1('+'), T1(','), T1(';'), T1('='),
    T1('0'), T1('1'), T1('2'), T1('3'), T1('4'), T1('5'), T1('6'), T1('7'), T1('8'), T1('9'),
    T1('A'), T1('B'), T1('C'), T1('D'), T1('E'), T1('F'), T1('G'), T1('H'), T1('I'), T1('J'),
    T1('K'), T1('L'), T1('M'), T1('N'), T1('O'), T1('P'), T1('Q'), T1('R'), T1('S'), T1('T'),
    T1('U'), T1('V'), T1('W'), T1('X'), T1('Y'), T1('Z'),
    T1('a'), T1('b'), T1('c'), T1('d'), T1('e'), T1('f'), T1('g'), T1('h'), T1('i'), T1('j'),
    T1('k'), T1('l'), T1('m'), T1('n'), T1('o'), T1('p'), T1('q'), T1('r'), T1('s'), T1('t'),
    T1('u'), T1('v'), T1('w'), T1('x'), T1('y'), T1('z'),
};

/* host [ ":" port ] with host = IP-literal / IPv4address / reg-name (RFC 3986 section 3.2.2,
 * as RFC 9110 section 7.2 and RFC 9112 section 3.2 use it). Checked for the characters and
 * shape that can appear, not for DNS validity: the goal is that nothing else (a space, a
 * slash, an "@", a second colon-less bracket) can ride in a Host that a later stage trusts.
 * need_port: authority-form for CONNECT (RFC 9112 section 3.2.3) requires ":port". */
int nk__http_authority_ok(const char *p, size_t len, int need_port)
{
    size_t i = 0;
    if (len > 0 && p[0] == '[') {
        /* IP-literal = "[" ( IPv6address / IPvFuture ) "]": hex, ':', '.', and for
         * IPvFuture "v" plus unreserved / sub-delims; keep to what real literals use. */
        for (i = 1; i < len && p[i] != ']'; i++) {
            unsigned char c = (unsigned char)p[i];
            if (!(is_hex(c) || c == ':' || c == '.' || c == 'v' || c == 'V'))
                return 0;
        }
        if (i == len || i == 1)
            return 0;
        i++;
    } else {
        for (; i < len && p[i] != ':'; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c == '%') { /* pct-encoded = "%" HEXDIG HEXDIG */
                if (i + 2 >= len || !is_hex((unsigned char)p[i + 1]) ||
                    !is_hex((unsigned char)p[i + 2]))
                    return 0;
                i += 2;
                continue;
            }
            if (!regname_char[c]) /* unreserved / sub-delims */
                return 0;
        }
        /* RFC 9110 section 4.2.1: "A sender MUST NOT generate an "http" URI with an empty
         * host identifier. A recipient that processes such a URI reference MUST reject it as
         * invalid." An empty Host (or ":80") would make the target URI exactly that. */
        if (i == 0)
            return 0;
    }
    if (i == len)
        return !need_port;
    if (p[i] != ':')
        return 0;
    /* port = *DIGIT (RFC 3986 allows it empty; CONNECT needs a real one) */
    size_t digits = 0;
    for (i++; i < len; i++, digits++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return need_port ? digits > 0 && digits <= 5 : 1;
}

/* Content-Length = 1*DIGIT (RFC 9110 section 8.6). 18 digits always fit in int64_t, so the
 * bound is checked before any multiplication can overflow. No sign, no spaces inside, no
 * list: "+5", "-1", "5 5", "0x5", "5, 5" are all 400. */
static int parse_content_length(nk_str v, int64_t *out)
{
    int64_t n = 0;
    if (v.len == 0 || v.len > 18)
        return -1;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        n = n * 10 + (v.p[i] - '0');
    }
    *out = n;
    return 0;
}

static int fail(int *status, int code)
{
    *status = code;
    return -EBADMSG;
}

/* Transfer-Encoding (RFC 9112 section 6.1), possibly spread over several fields, which is the
 * same as one comma-joined list (RFC 9110 section 5.3). Each element is
 *   transfer-coding = token *( OWS ";" OWS transfer-parameter )
 * We only implement chunked. */
static int parse_te(const nk_http_request *req, int *status)
{
    int nchunked = 0, other = 0, last_chunked = 0, any = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const nk_http_header *h = &nk_http_fields(req)[i];
        if (!IEQ_LIT(h->name.p, h->name.len, "transfer-encoding"))
            continue;
        const char *p = h->value.p, *end = h->value.p + h->value.len;
        nk_str coding, rest;
        int r;
        while ((r = nk__http_te_next(&p, end, &coding, &rest)) > 0) {
            size_t k = 0;
            while (k < rest.len && (rest.p[k] == ' ' || rest.p[k] == '\t'))
                k++;
            if (k < rest.len && rest.p[k] != ';')
                return fail(status, 400); /* "chunked x", "chunked\"": not a coding */
            any = 1;
            if (IEQ_LIT(coding.p, coding.len, "chunked")) {
                /* chunked has no parameters (RFC 9112 section 7.1) */
                if (rest.len)
                    return fail(status, 400);
                nchunked++;
                last_chunked = 1;
            } else {
                other = 1;
                last_chunked = 0;
            }
        }
        if (r < 0)
            return fail(status, 400);
    }
    if (!any)
        return fail(status, 400); /* an empty Transfer-Encoding frames nothing */
    /* RFC 9112 section 6.3 point 4: "If a Transfer-Encoding header field is present in a
     * request and the chunked transfer coding is not the final encoding, the message body
     * length cannot be determined reliably; the server MUST respond with the 400 (Bad
     * Request) status code and then close the connection." This MUST outranks the SHOULD of
     * 501 below, so "gzip" alone is 400 (nginx answers 501 there); "gzip, chunked" is 501. */
    if (!last_chunked)
        return fail(status, 400);
    /* RFC 9112 section 6.1: "A sender MUST NOT apply the chunked transfer coding more than
     * once to a message body" */
    if (nchunked > 1)
        return fail(status, 400);
    /* RFC 9112 section 6.1: "A server that receives a request message with a transfer coding
     * it does not understand SHOULD respond with 501 (Not Implemented)." */
    if (other)
        return fail(status, 501);
    return 0;
}

/* Fill host, content_length, chunked, keep_alive, expect_continue from the parsed fields.
 * Called by parse.c once the whole head is known; req->host is already set for an
 * absolute-form or authority-form (CONNECT) target. */
int nk__http_derive(nk_http_request *req, int host_in_target, int *status)
{
    const nk_http_header *host = NULL, *cl = NULL;
    int has_te = 0, conn_close = 0, conn_keep = 0;
    int http11 = req->version_minor >= 1;

    for (size_t i = 0; i < req->nheaders; i++) {
        const nk_http_header *h = &nk_http_fields(req)[i];
        const nk_str n = h->name;
        if (IEQ_LIT(n.p, n.len, "host")) {
            /* RFC 9112 section 3.2: "A server MUST respond with a 400 (Bad Request) status
             * code to any HTTP/1.1 request message that lacks a Host header field and to any
             * request message that contains more than one Host header field line or a Host
             * header field with an invalid field value." */
            if (host)
                return fail(status, 400);
            if (!nk__http_authority_ok(h->value.p, h->value.len, 0))
                return fail(status, 400);
            host = h;
        } else if (IEQ_LIT(n.p, n.len, "content-length")) {
            /* RFC 9110 section 8.6 lets a recipient accept "42, 42" or repeated identical
             * fields as one value. We refuse both: a proxy in front of us that picks a
             * different one of two values is exactly a smuggling setup. */
            if (cl)
                return fail(status, 400);
            cl = h;
            if (parse_content_length(h->value, &req->content_length) < 0)
                return fail(status, 400);
        } else if (IEQ_LIT(n.p, n.len, "transfer-encoding")) {
            has_te = 1;
        } else if (IEQ_LIT(n.p, n.len, "connection")) {
            /* RFC 9112 section 9.6 (close) and 9.3 (persistence). */
            if (nk_http_list_has(h->value, "close"))
                conn_close = 1;
            if (nk_http_list_has(h->value, "keep-alive"))
                conn_keep = 1;
        } else if (IEQ_LIT(n.p, n.len, "expect")) {
            /* RFC 9110 section 10.1.1: "A server that receives a 100-continue expectation in
             * an HTTP/1.0 request MUST ignore that expectation." ... "A server that receives
             * an Expect field value containing a member other than 100-continue MAY respond
             * with a 417 (Expectation Failed) status code". Reported here; the server
             * decides (netkit's refuses: an expectation it cannot meet is better refused
             * than silently ignored). */
            if (!http11)
                continue;
            if (!IEQ_LIT(h->value.p, h->value.len, "100-continue"))
                req->expect_unknown = 1;
            else
                req->expect_continue = 1;
        }
    }

    if (http11 && !host)
        return fail(status, 400);
    /* RFC 9112 section 3.2.2: "When an origin server receives a request with an
     * absolute-form of request-target, the origin server MUST ignore the received Host
     * header field (if any) and instead use the host information of the request-target." */
    if (!host_in_target && host)
        req->host = host->value;

    if (has_te) {
        /* RFC 9112 section 6.1: "A server or client that receives an HTTP/1.0 message
         * containing a Transfer-Encoding header field MUST treat the message as if the
         * framing is faulty" */
        if (!http11)
            return fail(status, 400);
        int rc = parse_te(req, status);
        if (rc < 0)
            return rc;
        /* RFC 9112 section 6.3 point 3: a message with both "might indicate an attempt to
         * perform request smuggling ... or response splitting and ought to be handled as an
         * error". We answer 400 and close rather than let Transfer-Encoding win. */
        if (cl)
            return fail(status, 400);
        req->chunked = 1;
    }

    /* RFC 9112 section 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with
     * "keep-alive" (the compatibility note in section C.2.2). */
    if (conn_close)
        req->keep_alive = 0;
    else
        req->keep_alive = http11 ? 1 : conn_keep;
    return 0;
}
