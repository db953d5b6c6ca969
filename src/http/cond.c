/* Validators and conditional requests (RFC 9110 sections 8.8 and 13).
 *
 * The ETag is strong: it changes whenever the file's size or modification time (to the
 * nanosecond) changes. It holds no inode number, which would leak file-system details and
 * make the tag differ for the same bytes after a restore or on a second server. The Last-Modified date has one-second resolution, so it is only as
 * strong as "the file was not written twice within one second"; RFC 9110 section 8.8.2.2
 * calls such a date weak unless the server can vouch for it. Like nginx and lighttpd we still
 * let an exact date match satisfy If-Range (section 13.1.5), accepting that tiny window, since
 * clients that hold an ETag send it instead and the ETag has no such window.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "netkit/http.h"

int nk_http_file_etag(char *out, size_t outlen, uint64_t size, int64_t mtime_sec,
                      long mtime_nsec)
{
    /* Times before 1970 wrap to large unsigned values: still distinct, and only an identifier. */
    int n = snprintf(out, outlen, "\"%" PRIx64 ".%lx-%" PRIx64 "\"", (uint64_t)mtime_sec,
                     (unsigned long)mtime_nsec, size);
    if (n < 0 || (size_t)n >= outlen)
        return -ENOSPC;
    return n;
}

int nk_http_etag(char *out, size_t outlen, uint64_t ino, uint64_t size, int64_t mtime_sec,
                 long mtime_nsec)
{
    (void)ino;
    return nk_http_file_etag(out, outlen, size, mtime_sec, mtime_nsec);
}

/* An entity-tag (section 8.8.3): entity-tag = [ weak ] opaque-tag; weak = %s"W/";
 * opaque-tag = DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text. */
typedef struct etag {
    int weak;
    const char *opaque; /* between the quotes */
    size_t len;
} etag;

static int is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7F);
}

/* Parse one entity-tag at s[*i..len); advances *i past it. */
static int etag_parse(const char *s, size_t len, size_t *i, etag *t)
{
    size_t p = *i;
    t->weak = 0;
    if (len - p >= 2 && s[p] == 'W' && s[p + 1] == '/') {
        t->weak = 1;
        p += 2;
    }
    if (p >= len || s[p] != '"')
        return -EINVAL;
    size_t start = ++p;
    while (p < len && is_etagc((unsigned char)s[p]))
        p++;
    if (p >= len || s[p] != '"')
        return -EINVAL;
    t->opaque = s + start;
    t->len = p - start;
    *i = p + 1;
    return 0;
}

/* The resource's current ETag, as a NUL-terminated string. */
static int etag_current(const char *cur, etag *t)
{
    size_t i = 0, len;
    if (!cur)
        return -EINVAL;
    len = strlen(cur);
    if (etag_parse(cur, len, &i, t) < 0 || i != len)
        return -EINVAL;
    return 0;
}

/* Section 8.8.3.2: strong comparison needs both tags strong and the opaque-tags identical;
 * weak comparison only needs the opaque-tags identical. */
static int etag_match(const etag *a, const etag *b, int strong)
{
    if (strong && (a->weak || b->weak))
        return 0;
    return a->len == b->len && memcmp(a->opaque, b->opaque, a->len) == 0;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static nk_str trim(nk_str v)
{
    while (v.len > 0 && is_ows(v.p[0])) {
        v.p++;
        v.len--;
    }
    while (v.len > 0 && is_ows(v.p[v.len - 1]))
        v.len--;
    return v;
}

enum { LIST_MALFORMED = -1, LIST_NO_MATCH = 0, LIST_MATCH = 1 };

/* Evaluate "*" / #entity-tag (If-Match, If-None-Match) against the current tag. The whole
 * list is read before answering, so a malformed list never counts as matching even when an
 * early element matched. Empty list elements are accepted (section 5.6.1). "*" matches
 * because a representation always exists for the files we serve. */
static int list_match(nk_str v, const char *current, int strong)
{
    etag cur, t;
    int have_cur = etag_current(current, &cur) == 0;
    int matched = 0;
    size_t i = 0;

    v = trim(v);
    if (v.len == 1 && v.p[0] == '*')
        return LIST_MATCH;
    while (i < v.len) {
        while (i < v.len && (is_ows(v.p[i]) || v.p[i] == ','))
            i++;
        if (i == v.len)
            break;
        if (etag_parse(v.p, v.len, &i, &t) < 0)
            return LIST_MALFORMED;
        if (have_cur && etag_match(&t, &cur, strong))
            matched = 1;
        while (i < v.len && is_ows(v.p[i]))
            i++;
        if (i < v.len && v.p[i] != ',')
            return LIST_MALFORMED; /* two tags without a comma, or junk after a tag */
    }
    return matched ? LIST_MATCH : LIST_NO_MATCH;
}

/* A valid HTTP-date or -EINVAL (section 13.1.3, 13.1.4: an invalid date is ignored). */
static int field_date(nk_str v, time_t *t)
{
    v = trim(v);
    return nk_http_date_parse(v.p, v.len, t);
}

int nk_http_cond_evaluate(const nk_http_cond_input *in)
{
    int safe = in->method == NK_HTTP_GET || in->method == NK_HTTP_HEAD;
    time_t t;

    /* Section 13.2.2 step 1: "When recipient is the origin server and If-Match is present,
     * evaluate the If-Match precondition: if true, continue to step 3; if false, respond 412
     * (Precondition Failed)". If-Match uses the strong comparison (section 13.1.1), and a
     * malformed field cannot be true. */
    if (in->if_match.p) {
        if (list_match(in->if_match, in->etag, 1) != LIST_MATCH)
            return 412;
    } else if (in->if_unmodified_since.p) {
        /* Step 2: "When recipient is the origin server, If-Match is not present, and
         * If-Unmodified-Since is present, evaluate the If-Unmodified-Since precondition: if
         * true, continue to step 3; if false, respond 412". Section 13.1.4: false when the
         * last modification date is more recent than the date; ignored if not a valid date. */
        if (field_date(in->if_unmodified_since, &t) == 0 && in->mtime > t)
            return 412;
    }

    /* Step 3: "When If-None-Match is present, evaluate the If-None-Match precondition: if
     * true, continue to step 5; if false for GET/HEAD, respond 304 (Not Modified); if false
     * for other methods, respond 412". Section 13.1.2: weak comparison; the condition is
     * false when any tag matches (or "*"). A malformed field matches nothing. */
    if (in->if_none_match.p) {
        if (list_match(in->if_none_match, in->etag, 0) == LIST_MATCH)
            return safe ? 304 : 412;
        return 0;
    }

    /* Step 4: "When the method is GET or HEAD, If-None-Match is not present, and
     * If-Modified-Since is present, evaluate the If-Modified-Since precondition: if true,
     * continue to step 5; if false, respond 304". Section 13.1.3: false when the last
     * modification date is earlier than or equal to the date; ignored if not a valid date. */
    if (safe && in->if_modified_since.p) {
        if (field_date(in->if_modified_since, &t) == 0 && in->mtime <= t)
            return 304;
    }
    return 0;
}

int nk_http_if_range_ok(nk_str if_range, const char *etag_cur, time_t mtime)
{
    /* No If-Range: nothing stops the Range header. */
    if (!if_range.p)
        return 1;
    nk_str v = trim(if_range);
    /* Section 13.1.5: "A valid entity-tag can be distinguished from a valid HTTP-date by
     * examining the first three characters for a DQUOTE." */
    int is_tag = 0;
    for (size_t i = 0; i < v.len && i < 3; i++) {
        if (v.p[i] == '"')
            is_tag = 1;
    }
    if (is_tag) {
        etag t, cur;
        size_t i = 0;
        if (etag_parse(v.p, v.len, &i, &t) < 0 || i != v.len)
            return 0;
        /* "the recipient MUST use a strong comparison": a weak tag never matches. */
        return etag_current(etag_cur, &cur) == 0 && etag_match(&t, &cur, 1);
    }
    /* "if the HTTP-date validator provided exactly matches the Last-Modified field value
     * that would have been provided in response to the same request". */
    time_t t;
    return nk_http_date_parse(v.p, v.len, &t) == 0 && t == mtime;
}
