/* URI references (RFC 3986): split into components, resolved against a base, put back
 * together.
 *
 *   URI-reference = URI / relative-ref                                   (section 4.1)
 *   URI           = scheme ":" hier-part [ "?" query ] [ "#" fragment ]
 *   relative-ref  = relative-part [ "?" query ] [ "#" fragment ]
 *   hier-part     = "//" authority path-abempty / path-absolute / path-rootless / path-empty
 *   authority     = [ userinfo "@" ] host [ ":" port ]
 *
 * Strict on purpose: a reference is either valid to the grammar of appendix A or refused, so
 * what nk_url_format writes back parses into the same components (the fuzzer checks it).
 * Lenient callers (a browser-like client following a sloppy Location) repair the text first
 * with nk_url_escape_invalid. Nothing is decoded or case-folded: views keep the bytes as
 * written, since percent-decoding is a per-component decision of whoever uses them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "netkit/http.h"

static int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_hex(unsigned char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

/* unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"; sub-delims = "!" / "$" / "&" / "'" /
 * "(" / ")" / "*" / "+" / "," / ";" / "="   (section 2.2, 2.3) */
static int plain(unsigned char c, const char *extra)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("-._~!$&'()*+,;=", c)) ||
           (c && strchr(extra, c));
}

/* Every byte is unreserved, a sub-delim, one of extra, or starts a "%" HEXDIG HEXDIG. */
static int valid(const char *p, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            if (i + 2 >= n)
                return 0;
            if (!is_hex((unsigned char)p[i + 1]) || !is_hex((unsigned char)p[i + 2]))
                return 0;
            i += 2;
        } else if (!plain(c, extra)) {
            return 0;
        }
    }
    return 1;
}

static nk_str view(const char *p, size_t n)
{
    nk_str s = {p, n};
    return s;
}

/* IP-literal = "[" ( IPv6address / IPvFuture ) "]"   (section 3.2.2), given without brackets. */
static int ip_literal_ok(const char *p, size_t n)
{
    if (n > 0 && (p[0] | 0x20) == 'v') {
        /* IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
        size_t i = 1;
        while (i < n && is_hex((unsigned char)p[i]))
            i++;
        if (i == 1 || i >= n || p[i] != '.' || i + 1 == n)
            return 0;
        for (i++; i < n; i++)
            if (p[i] == '%' || !plain((unsigned char)p[i], ":"))
                return 0;
        return 1;
    }
    char text[INET6_ADDRSTRLEN];
    struct in6_addr a;
    if (n == 0 || n >= sizeof text)
        return 0;
    /* inet_pton would stop at a NUL and judge only what comes before it. */
    for (size_t i = 0; i < n; i++)
        if (!is_hex((unsigned char)p[i]) && p[i] != ':' && p[i] != '.')
            return 0;
    memcpy(text, p, n);
    text[n] = '\0';
    return inet_pton(AF_INET6, text, &a) == 1;
}

/* authority = [ userinfo "@" ] host [ ":" port ], from p[0..n). */
static int parse_authority(const char *p, size_t n, nk_url *u)
{
    const char *at = memchr(p, '@', n);
    if (at) {
        u->userinfo = view(p, (size_t)(at - p));
        if (!valid(u->userinfo.p, u->userinfo.len, ":"))
            return -EINVAL;
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    size_t h; /* where the host ends */
    if (n > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (!close || !ip_literal_ok(p + 1, (size_t)(close - p - 1)))
            return -EINVAL;
        u->host = view(p + 1, (size_t)(close - p - 1));
        u->ip_literal = 1;
        h = (size_t)(close - p) + 1;
    } else {
        /* reg-name = *( unreserved / pct-encoded / sub-delims ); IPv4address is one too. The
         * port starts at the first ":", which a reg-name cannot contain. */
        const char *colon = memchr(p, ':', n);
        h = colon ? (size_t)(colon - p) : n;
        if (!valid(p, h, ""))
            return -EINVAL;
        u->host = view(p, h);
    }
    if (h < n) {
        if (p[h] != ':')
            return -EINVAL; /* "[::1]x" */
        u->port = view(p + h + 1, n - h - 1);
        for (size_t i = 0; i < u->port.len; i++)
            if (!is_digit((unsigned char)u->port.p[i]))
                return -EINVAL;
    }
    return 0;
}

int nk_url_parse(const char *s, size_t len, nk_url *u)
{
    memset(u, 0, sizeof *u);
    if (!s) {
        if (len)
            return -EINVAL;
        s = ""; /* no pointer arithmetic on NULL */
    }
    const char *end = s + len, *p = s;

    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":" (section 3.1). Without
     * it the reference is relative, and its first segment may not hold a ":" (section 4.2),
     * which is what tells the two apart. */
    size_t k = 0;
    if (len > 0 && is_alpha((unsigned char)s[0]))
        while (k < len && (is_alpha((unsigned char)s[k]) || is_digit((unsigned char)s[k]) ||
                           s[k] == '+' || s[k] == '-' || s[k] == '.'))
            k++;
    if (k > 0 && k < len && s[k] == ':') {
        u->scheme = view(s, k);
        p = s + k + 1;
    }

    /* The fragment runs from the first "#" to the end; the query from the first "?" before it. */
    const char *hash = memchr(p, '#', (size_t)(end - p));
    if (hash) {
        u->fragment = view(hash + 1, (size_t)(end - hash - 1));
        if (!valid(u->fragment.p, u->fragment.len, ":@/?"))
            return -EINVAL;
        end = hash;
    }
    const char *qm = memchr(p, '?', (size_t)(end - p));
    if (qm) {
        u->query = view(qm + 1, (size_t)(end - qm - 1));
        if (!valid(u->query.p, u->query.len, ":@/?"))
            return -EINVAL;
        end = qm;
    }

    if (end - p >= 2 && p[0] == '/' && p[1] == '/') {
        p += 2;
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *aend = slash ? slash : end;
        int rc = parse_authority(p, (size_t)(aend - p), u);
        if (rc < 0)
            return rc;
        p = aend;
    }
    u->path = view(p, (size_t)(end - p));
    if (!valid(u->path.p, u->path.len, ":@/"))
        return -EINVAL;
    if (!u->scheme.p && !u->host.p) {
        const char *seg_end = memchr(p, '/', u->path.len);
        if (memchr(p, ':', seg_end ? (size_t)(seg_end - p) : u->path.len))
            return -EINVAL; /* "a:b" would read back as a scheme */
    }
    return 0;
}

int nk_url_port(const nk_url *u, int default_port)
{
    if (!u->port.p || u->port.len == 0)
        return default_port;
    long v = 0;
    for (size_t i = 0; i < u->port.len; i++) {
        v = v * 10 + (u->port.p[i] - '0');
        if (v > 65535)
            return -ERANGE;
    }
    return (int)v;
}

/* Appends to a bounded output, counting what would have been written past its end. */
typedef struct out {
    char *buf;
    size_t size, len;
} out;

static void put(out *o, const char *p, size_t n)
{
    if (o->len < o->size && n > 0)
        memcpy(o->buf + o->len, p, n <= o->size - o->len ? n : o->size - o->len);
    o->len += n;
}

static void put_str(out *o, nk_str s) { put(o, s.p, s.len); }

static int finish(out *o)
{
    if (o->len >= o->size || o->len > INT_MAX) {
        if (o->size > 0)
            o->buf[0] = '\0';
        return -ENOSPC;
    }
    o->buf[o->len] = '\0';
    return (int)o->len;
}

/* Everything up to the path: scheme ":" [ "//" authority ]. */
static void put_head(out *o, const nk_url *u)
{
    if (u->scheme.p) {
        put_str(o, u->scheme);
        put(o, ":", 1);
    }
    if (u->host.p) {
        put(o, "//", 2);
        if (u->userinfo.p) {
            put_str(o, u->userinfo);
            put(o, "@", 1);
        }
        if (u->ip_literal)
            put(o, "[", 1);
        put_str(o, u->host);
        if (u->ip_literal)
            put(o, "]", 1);
        if (u->port.p) {
            put(o, ":", 1);
            put_str(o, u->port);
        }
    }
}

static void put_tail(out *o, const nk_url *u)
{
    if (u->query.p) {
        put(o, "?", 1);
        put_str(o, u->query);
    }
    if (u->fragment.p) {
        put(o, "#", 1);
        put_str(o, u->fragment);
    }
}

/* Section 5.3, component recomposition. Refuses components that would read back as
 * something else: a path not starting with "/" after an authority, a path starting with
 * "//" without one, a first segment with ":" without a scheme. */
int nk_url_format(const nk_url *u, char *buf, size_t size)
{
    const char *path = u->path.p ? u->path.p : "";
    size_t plen = u->path.p ? u->path.len : 0;
    if (u->host.p && plen > 0 && path[0] != '/')
        return -EINVAL;
    if (!u->host.p && plen >= 2 && path[0] == '/' && path[1] == '/')
        return -EINVAL;
    if (!u->scheme.p && !u->host.p) {
        const char *seg_end = memchr(path, '/', plen);
        if (memchr(path, ':', seg_end ? (size_t)(seg_end - path) : plen))
            return -EINVAL;
    }
    out o = {buf, size, 0};
    put_head(&o, u);
    put(&o, path, plen);
    put_tail(&o, u);
    return finish(&o);
}

/* Section 5.2.4, remove_dot_segments, in place on s[0..n): the output never outgrows the
 * input it has consumed, so it is written over the consumed part. Returns the new length. */
static size_t remove_dot_segments(char *s, size_t n)
{
    size_t i = 0, o = 0;
    while (i < n) {
        const char *in = s + i;
        size_t left = n - i;
        if (left >= 3 && memcmp(in, "../", 3) == 0) {
            i += 3; /* A */
        } else if ((left >= 2 && memcmp(in, "./", 2) == 0) ||
                   (left >= 3 && memcmp(in, "/./", 3) == 0)) {
            i += 2; /* A: "./" goes; B: "/./" becomes "/" */
        } else if (left == 2 && memcmp(in, "/.", 2) == 0) {
            i += 1; /* B: "/." at the end becomes "/" */
            s[i] = '/';
        } else if ((left >= 4 && memcmp(in, "/../", 4) == 0) ||
                   (left == 3 && memcmp(in, "/..", 3) == 0)) {
            /* C: replace with "/" and drop the output's last segment and its "/". */
            i += left >= 4 ? 3 : 2;
            s[i] = '/';
            while (o > 0 && s[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else if ((left == 1 && in[0] == '.') || (left == 2 && in[0] == '.' && in[1] == '.')) {
            i = n; /* D */
        } else {
            size_t k = i + (s[i] == '/'); /* E: the first segment, with its leading "/" */
            while (k < n && s[k] != '/')
                k++;
            memmove(s + o, s + i, k - i);
            o += k - i;
            i = k;
        }
    }
    return o;
}

/* Section 5.2.2 (the strict algorithm: a reference with a scheme is taken as it is, even
 * when it is the base's scheme) and 5.3. The target's path is built in buf after its head,
 * then its dot segments removed in place. */
int nk_url_resolve(const nk_url *base, const nk_url *ref, char *buf, size_t size, nk_url *res)
{
    if (!base->scheme.p)
        return -EINVAL; /* section 5.1: the base must be an absolute URI */
    nk_url t = {0};
    int dots = 1;
    nk_str merge_dir = {"", 0}; /* what goes before ref's path */
    nk_str path = ref->path.p ? ref->path : view("", 0);
    const nk_url *auth;
    t.scheme = ref->scheme.p ? ref->scheme : base->scheme;
    t.query = ref->query;
    if (ref->scheme.p || ref->host.p) {
        auth = ref;
    } else {
        auth = base;
        if (path.len == 0) {
            path = base->path.p ? base->path : view("", 0);
            dots = 0;
            if (!ref->query.p)
                t.query = base->query;
        } else if (path.p[0] != '/') {
            /* 5.2.3 merge: "/" after an authority with an empty path, else the base path
             * up to and including its last "/". */
            if (base->host.p && base->path.len == 0) {
                merge_dir = view("/", 1);
            } else if (base->path.p) {
                size_t d = base->path.len;
                while (d > 0 && base->path.p[d - 1] != '/')
                    d--;
                merge_dir = view(base->path.p, d);
            }
        }
    }
    if (ref->scheme.p && !ref->host.p)
        auth = NULL;
    if (auth) {
        t.userinfo = auth->userinfo;
        t.host = auth->host;
        t.port = auth->port;
        t.ip_literal = auth->ip_literal;
    }
    t.fragment = ref->fragment;

    out o = {buf, size, 0};
    put_head(&o, &t);
    size_t path_at = o.len;
    put_str(&o, merge_dir);
    put_str(&o, path);
    if (o.len >= size) /* the path before its dots are removed must fit too */
        return finish(&o);
    size_t plen = o.len - path_at;
    if (dots)
        plen = remove_dot_segments(buf + path_at, plen);
    /* Without an authority, a path now starting with "//" would read back as one ("a:/.//b"
     * resolves to "a://b"): "/." in front keeps it a path, as the WHATWG URL standard does. */
    if (!t.host.p && plen >= 2 && buf[path_at] == '/' && buf[path_at + 1] == '/') {
        if (path_at + plen + 2 >= size) {
            buf[0] = '\0';
            return -ENOSPC;
        }
        memmove(buf + path_at + 2, buf + path_at, plen);
        buf[path_at] = '/';
        buf[path_at + 1] = '.';
        plen += 2;
    }
    o.len = path_at + plen;
    put_tail(&o, &t);
    int n = finish(&o);
    if (n < 0)
        return n;
    /* The views of res point into buf, not into base or ref, which the caller may reuse. */
    if (nk_url_parse(buf, (size_t)n, res) < 0)
        return -EINVAL; /* valid inputs never get here; a guard against a bug, not a path */
    return n;
}

int nk_url_escape_invalid(const char *s, size_t len, char *buf, size_t size)
{
    static const char hexdig[] = "0123456789ABCDEF";
    out o = {buf, size, 0};
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int bad = c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}", c) ||
                  (c == '%' && (i + 2 >= len || !is_hex((unsigned char)s[i + 1]) ||
                                !is_hex((unsigned char)s[i + 2])));
        if (bad) {
            char enc[3] = {'%', hexdig[c >> 4], hexdig[c & 15]};
            put(&o, enc, 3);
        } else {
            put(&o, s + i, 1);
        }
    }
    return finish(&o);
}
