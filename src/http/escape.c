/* Escaping for the three places a file name ends up in a generated page: HTML text and
 * attribute values, JSON strings, and URL path segments.
 *
 * Each function appends to an nk_buf and copies runs of harmless bytes in one append, so the
 * common case (a plain name) is a single copy. They return 0 or the buffer's error.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "netkit/buf.h"
#include "netkit/http.h"

static const char hexdig[] = "0123456789ABCDEF";

/* Copy s[0..len) to out, each byte s[i] for which rep gives a replacement (its length, at
 * most 8 bytes, written in buf; 0 keeps the byte) replaced, the runs between them appended
 * whole. rep sees the whole input: a "%" may be kept or not by what follows it. */
typedef size_t escape_rep(const char *s, size_t len, size_t i, char buf[8]);

static int escape(const char *s, size_t len, struct nk_buf *out, escape_rep *rep)
{
    if (len == 0)
        return 0; /* s may be NULL then: no pointer arithmetic on it */
    size_t run = 0;
    int r;
    for (size_t i = 0; i < len; i++) {
        char buf[8];
        size_t n = rep(s, len, i, buf);
        if (n == 0)
            continue;
        if ((r = nk_buf_append(out, s + run, i - run)) < 0 || (r = nk_buf_append(out, buf, n)) < 0)
            return r;
        run = i + 1;
    }
    return nk_buf_append(out, s + run, len - run);
}

/* "%XX", the byte's percent-encoding (RFC 3986 section 2.1), in buf. */
static size_t percent(unsigned char c, char buf[8])
{
    buf[0] = '%';
    buf[1] = hexdig[c >> 4];
    buf[2] = hexdig[c & 15];
    return 3;
}

/* HTML: the five characters that can end a text node or a quoted attribute value ("&<>"
 * and both quotes), so the result is safe in either context. */
static size_t html_rep(const char *s, size_t len, size_t i, char buf[8])
{
    (void)len;
    const char *rep;
    switch (s[i]) {
    case '&': rep = "&amp;"; break;
    case '<': rep = "&lt;"; break;
    case '>': rep = "&gt;"; break;
    case '"': rep = "&quot;"; break;
    case '\'': rep = "&#39;"; break;
    default: return 0;
    }
    size_t n = strlen(rep);
    memcpy(buf, rep, n);
    return n;
}

int nk_http_html_escape(const char *s, size_t len, struct nk_buf *out)
{
    return escape(s, len, out, html_rep);
}

/* Length of the valid UTF-8 sequence at s[0..len) (RFC 3629 section 4), or 0 when the bytes
 * there are not one (overlong, surrogate, above U+10FFFF, truncated, stray continuation). */
size_t nk_utf8_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i] < lo || s[i] > hi)
            return 0;
        lo = 0x80;
        hi = 0xBF;
    }
    return n;
}

/* JSON string body (RFC 8259 section 7): quote, backslash and control characters escaped
 * (the short forms where JSON has them, else \u00XX; DEL too, harmlessly, so the output is
 * plain printable text). JSON text must be Unicode (section 8.1), and a file name need not
 * be UTF-8: each byte that does not start a valid sequence is replaced by U+FFFD, the usual
 * "replacement character" choice, so the output is always valid JSON and valid UTF-8. */
int nk_http_json_escape(const char *s, size_t len, struct nk_buf *out)
{
    if (len == 0)
        return 0; /* s may be NULL then: no pointer arithmetic on it */
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    int r;
    while (i < len) {
        unsigned char c = u[i];
        char tmp[8];
        const char *rep = NULL;
        size_t rlen = 0, adv = 1;

        if (c >= 0x80) {
            size_t n = nk_utf8_len(u + i, len - i);
            if (n > 0) {
                i += n;
                continue;
            }
            rep = "\xEF\xBF\xBD";
            rlen = 3;
        } else if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            rep = tmp;
            rlen = 2;
        } else if (c < 0x20 || c == 0x7F) {
            const char *shortf = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t"
                               : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            if (shortf) {
                rep = shortf;
                rlen = 2;
            } else {
                tmp[0] = '\\';
                tmp[1] = 'u';
                tmp[2] = '0';
                tmp[3] = '0';
                tmp[4] = hexdig[c >> 4];
                tmp[5] = hexdig[c & 15];
                rep = tmp;
                rlen = 6;
            }
        } else {
            i++;
            continue;
        }
        if ((r = nk_buf_append(out, s + run, i - run)) < 0 ||
            (r = nk_buf_append(out, rep, rlen)) < 0)
            return r;
        i += adv;
        run = i;
    }
    return nk_buf_append(out, s + run, len - run);
}

/* A query (RFC 3986 section 3.4: pchar / "/" / "?"): characters allowed there are kept as they
 * are, "%" only as the start of a valid escape, and everything else is percent-encoded, so a
 * query copied into a header can never carry a control character, a space or a fragment. */
static size_t query_rep(const char *s, size_t len, size_t i, char buf[8])
{
    static const char allowed[] = "-._~!$&'()*+,;=:@/?";
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        (c && strchr(allowed, c)))
        return 0;
    if (c == '%' && i + 2 < len && isxdigit((unsigned char)s[i + 1]) &&
        isxdigit((unsigned char)s[i + 2]))
        return 0;
    return percent(c, buf);
}

int nk_http_query_escape(const char *s, size_t len, struct nk_buf *out)
{
    return escape(s, len, out, query_rep);
}

/* One path segment (RFC 3986 section 2.3): everything but the unreserved characters
 * ALPHA / DIGIT / "-" / "." / "_" / "~" is percent-encoded, "/" included, so a name can
 * never add a segment, and ":" too, so a relative link "a:b" is never read as a scheme. */
static size_t segment_rep(const char *s, size_t len, size_t i, char buf[8])
{
    (void)len;
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~')
        return 0;
    return percent(c, buf);
}

int nk_http_url_escape(const char *s, size_t len, struct nk_buf *out)
{
    return escape(s, len, out, segment_rep);
}
