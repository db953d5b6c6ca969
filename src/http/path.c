/* Request paths: percent-decoding, dot-segment removal and confinement to the root.
 *
 * This is the one function that stands between a client's request-target and open(2), so it
 * is deliberately small, pure and strict (darkhttpd's make_safe_uri is the model). Rules:
 *
 *   - The path must start with "/" (RFC 9112 section 3.2.1, origin-form = absolute-path).
 *   - Percent-decoding happens exactly once (RFC 3986 section 2.4: "implementations must not
 *     percent-encode or decode the same string more than once"), so "%252e" is the three
 *     bytes "%2e" of a file name, never ".".
 *   - Refused (-EINVAL): a '%' not followed by two hex digits (RFC 3986 section 2.1); NUL and
 *     other control bytes, raw or decoded; a decoded "/" (%2F) because an encoded slash must
 *     never turn into a separator; a backslash, raw or decoded, because some file systems and
 *     tools treat it as one; invalid UTF-8 (overlong forms such as %C0%AE, which old decoders
 *     turned into ".", surrogates, code points above U+10FFFF, truncated sequences).
 *   - "." and ".." segments are removed as in RFC 3986 section 5.2.4, except that a ".." with
 *     nothing left to remove is refused instead of being silently dropped: such a request is
 *     an attempt to leave the root and deserves a 400, not a file.
 *   - Empty segments ("//") are dropped, so "//etc//passwd" names "/etc/passwd". This is done
 *     before dot-segment removal, so "/a//.." is "/" rather than RFC 3986's "/a/".
 *   - A trailing "/" is kept, also when the last segment was "." or ".." ("/a/b/.." is "/a/",
 *     as in RFC 3986 section 5.2.4 step 2C): it tells a directory request apart.
 *
 * The segments are resolved from right to left: a ".." cancels the nearest normal segment to
 * its left, which matches the left-to-right stack of RFC 3986 and lets the result be written
 * straight into the tail of out (only what survives is ever written). So -ENAMETOOLONG means
 * that the final result does not fit, never that an intermediate one did not.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "netkit/http.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int plain_byte(unsigned char c) { return c >= 0x20 && c < 0x7f && c != '%' && c != '\\'; }

/* Decode one segment raw[0..rlen) (which holds no raw '/'), checking every rule above.
 * When dst is not NULL the decoded bytes are written there. Returns the decoded length or
 * -EINVAL. UTF-8 sequences cannot span segments (a continuation byte is never '/'), so the
 * check can be done per segment. percent = 0 checks an already decoded name: '%' is then a
 * byte like any other. */
static int seg_decode_ex(const char *raw, size_t rlen, char *dst, int percent)
{
    /* UTF-8 state (RFC 3629 section 4): how many continuation bytes are still expected and
     * the allowed range of the next one, which excludes overlong forms (E0 80..9F, F0 80..8F),
     * surrogates (ED A0..BF) and code points above U+10FFFF (F4 90..BF). */
    int need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    size_t i = 0;
    int n = 0;

    while (i < rlen) {
        /* Printable ASCII other than '%' and '\\' passes every rule below unchanged, and
         * paths are mostly made of it: copy such runs without the per-byte decisions. */
        if (need == 0) {
            while (i < rlen && plain_byte((unsigned char)raw[i])) {
                if (dst)
                    dst[n] = raw[i];
                n++;
                i++;
            }
            if (i == rlen)
                break;
        }
        unsigned char c = (unsigned char)raw[i];
        int encoded = 0;
        if (c == '%' && percent) {
            int h, l;
            if (rlen - i < 3 || (h = hexval((unsigned char)raw[i + 1])) < 0 ||
                (l = hexval((unsigned char)raw[i + 2])) < 0)
                return -EINVAL;
            c = (unsigned char)(h << 4 | l);
            encoded = 1;
            i += 3;
        } else {
            i++;
        }
        if (c < 0x20 || c == 0x7F || c == '\\')
            return -EINVAL;
        if (c == '/' && encoded)
            return -EINVAL;

        if (need > 0) {
            if (c < lo || c > hi)
                return -EINVAL;
            need--;
            lo = 0x80;
            hi = 0xBF;
        } else if (c >= 0x80) {
            if (c >= 0xC2 && c <= 0xDF) {
                need = 1;
            } else if (c == 0xE0) {
                need = 2;
                lo = 0xA0;
            } else if (c == 0xED) {
                need = 2;
                hi = 0x9F;
            } else if (c >= 0xE1 && c <= 0xEF) {
                need = 2;
            } else if (c == 0xF0) {
                need = 3;
                lo = 0x90;
            } else if (c >= 0xF1 && c <= 0xF3) {
                need = 3;
            } else if (c == 0xF4) {
                need = 3;
                hi = 0x8F;
            } else {
                /* 80..C1 as a lead byte: a stray continuation or an overlong 2-byte form;
                 * F5..FF: beyond U+10FFFF or not UTF-8 at all. */
                return -EINVAL;
            }
        }
        if (dst)
            dst[n] = (char)c;
        n++;
    }
    if (need > 0)
        return -EINVAL; /* truncated sequence at the end of the segment */
    return n;
}

static int seg_decode(const char *raw, size_t rlen, char *dst)
{
    return seg_decode_ex(raw, rlen, dst, 1);
}

enum seg_kind { SEG_EMPTY, SEG_DOT, SEG_DOTDOT, SEG_NAME };

/* Classify after decoding: "%2e%2E" is "..", as RFC 3986 section 6.2.2.2 normalises
 * percent-encoded unreserved characters. */
static enum seg_kind seg_classify(const char *raw, size_t rlen, int declen)
{
    char d[2] = {0, 0}; /* set so that the analyzer need not follow seg_decode's contract */
    if (declen == 0)
        return SEG_EMPTY;
    if (declen > 2)
        return SEG_NAME;
    seg_decode(raw, rlen, d); /* already validated; at most two bytes */
    if (d[0] != '.')
        return SEG_NAME;
    if (declen == 1)
        return SEG_DOT;
    return d[1] == '.' ? SEG_DOTDOT : SEG_NAME;
}

int nk_http_path_normalize(const char *path, size_t len, char *out, size_t outlen)
{
    if (!path || len == 0 || path[0] != '/')
        return -EINVAL;
    if (len > INT_MAX)
        return -ENAMETOOLONG;

    size_t used = 0;       /* bytes written at the tail of out */
    int overflow = 0;      /* the result does not fit; keep validating to report -EINVAL first */
    uint64_t skip = 0;     /* pending ".." segments that still have to cancel a name */
    int rightmost = 1;
    size_t end = len;

    while (end > 0) {
        size_t start = end;
        while (path[start - 1] != '/')
            start--; /* stops at the latest at index 1: path[0] is '/' */
        const char *raw = path + start;
        size_t rlen = end - start;
        int n = seg_decode(raw, rlen, NULL);
        if (n < 0)
            return n;
        enum seg_kind kind = seg_classify(raw, rlen, n);

        if (rightmost) {
            rightmost = 0;
            /* A path ending in "/", "/." or "/.." names a directory: keep the slash. */
            if (kind != SEG_NAME) {
                if (outlen < 2)
                    overflow = 1;
                else
                    out[outlen - 1 - ++used] = '/';
            }
        }
        if (kind == SEG_DOTDOT) {
            skip++;
        } else if (kind == SEG_NAME) {
            if (skip > 0) {
                skip--;
            } else if (overflow || (size_t)n + 1 + used + 1 > outlen) {
                overflow = 1;
            } else {
                /* The tail of out holds the result followed by one spare byte for the NUL. */
                char *w = out + outlen - 1 - used - (size_t)n;
                /* Each %XX shortens the segment by two: as long as it was, it had none. */
                if ((size_t)n == rlen)
                    memcpy(w, raw, rlen);
                else
                    seg_decode(raw, rlen, w);
                w[-1] = '/';
                used += (size_t)n + 1;
            }
        }
        end = start - 1; /* skip the separator */
    }
    if (skip > 0)
        return -EINVAL; /* ".." above the root */
    if (overflow)
        return -ENAMETOOLONG;
    memmove(out, out + outlen - 1 - used, used);
    out[used] = '\0';
    return (int)used;
}

int nk_http_path_has_dotfile(const char *path)
{
    if (!path)
        return 0;
    if (path[0] == '.')
        return 1;
    for (const char *p = path; *p; p++) {
        if (p[0] == '/' && p[1] == '.')
            return 1;
    }
    return 0;
}

int nk_http_name_servable(const char *name, size_t len)
{
    /* The name as a decoded segment: nk_http_path_normalize gives back exactly these bytes
     * for its percent-encoding (nk_http_url_escape) only when seg_decode accepts them. */
    if (!name || len == 0 || len > INT_MAX || memchr(name, '/', len))
        return 0;
    if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
        return 0;
    return seg_decode_ex(name, len, NULL, 0) == (int)len;
}

int nk_http_path_has_upload_tmp(const char *path)
{
    static const char prefix[] = NK_HTTP_UPLOAD_TMP_PREFIX;
    if (!path)
        return 0;
    for (const char *p = path; *p; p++) {
        if ((p == path || p[-1] == '/') && p[0] == prefix[0] &&
            strncmp(p, prefix, sizeof prefix - 1) == 0)
            return 1;
    }
    return 0;
}
