/* Range requests (RFC 9110 section 14).
 *
 *   Range        = ranges-specifier
 *   ranges-specifier = range-unit "=" range-set            (section 14.1.1)
 *   range-set    = 1#range-spec
 *   range-spec   = int-range / suffix-range / other-range
 *   int-range    = first-pos "-" [ last-pos ]
 *   suffix-range = "-" suffix-length
 *
 * Outcomes: the number of ranges to send (sorted, merged), 0 to ignore the header and send
 * the whole representation with 200 ("A server MAY ignore the Range header field", section
 * 14.2), or -ERANGE for 416 when every range is unsatisfiable.
 *
 * Rules, each with its reason:
 *   - The unit is matched case-insensitively (section 14.1: "Range units are compared in a
 *     case-insensitive manner"); a unit other than bytes is ignored.
 *   - Optional whitespace is allowed around the list elements and empty elements are skipped
 *     (section 5.6.1), but not inside an element or around "=".
 *   - A number has at most 19 digits, so it always fits in uint64_t without overflow checks
 *     at each step; longer numbers make the header malformed (ignored).
 *   - "first-pos > last-pos" makes the whole header invalid (section 14.1.1: "the range is
 *     invalid if the last-pos value is present and less than the first-pos"), so it is
 *     ignored (0), whatever else it holds.
 *   - Section 14.1.1: a range is satisfiable when first-pos < size, or for a suffix-range
 *     when the suffix-length is non-zero and the representation is not empty. Unsatisfiable
 *     ranges are dropped; a last-pos at or past the end is clamped to size - 1 and a suffix
 *     longer than the representation selects all of it.
 *   - Section 14.2: "A server that supports range requests MAY ignore or reject a Range
 *     header field that contains a range-set with many small ranges or a range-set with
 *     overlapping ranges". We merge overlapping and adjacent ranges as they are read, into a
 *     sorted array that never holds more than max entries: a request that would need more
 *     than max disjoint ranges at any point is ignored (0). This is slightly stricter than
 *     "more than max after merging all of them" (a later range could still swallow earlier
 *     ones), and keeps the work bounded by max per element with no allocation.
 *   - Like nginx, when the requested ranges add up to more than twice the representation
 *     (counted before merging, after clamping), the request is ignored (0) and the file is
 *     sent once, in full: a client asking for the same bytes over and over is not served
 *     a multiple of the file (the "Apache killer" overlapping-ranges attack).
 */
#include <errno.h>
#include <string.h>

#include "netkit/http.h"

#define RANGE_MAX_DIGITS 19   /* 10^19 - 1 < 2^64 */
#define RANGE_OVERLAP_FACTOR 2 /* requested bytes may add up to at most this times the size */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* "bytes=", the unit compared case-insensitively in ASCII (not by the locale's rules). */
static int unit_is_bytes(const char *s)
{
    static const char unit[] = "bytes=";
    for (size_t i = 0; i < 6; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + ('a' - 'A')) : s[i];
        if (c != unit[i])
            return 0;
    }
    return 1;
}

/* 1*DIGIT at s[*i..len), at most RANGE_MAX_DIGITS. Returns 1 with a number, 0 when there
 * is no digit, -1 when there are too many. */
static int number(const char *s, size_t len, size_t *i, uint64_t *v)
{
    size_t p = *i;
    uint64_t n = 0;
    while (p < len && s[p] >= '0' && s[p] <= '9') {
        if (p - *i == RANGE_MAX_DIGITS)
            return -1;
        n = n * 10 + (uint64_t)(s[p] - '0');
        p++;
    }
    if (p == *i)
        return 0;
    *i = p;
    *v = n;
    return 1;
}

/* Insert [a, b] into the sorted, disjoint, non-adjacent set out[0..*n), merging what it
 * touches. Returns -1 when the set would need more than max entries. */
static int insert(nk_http_range *out, size_t *n, size_t max, uint64_t a, uint64_t b)
{
    size_t i = 0, j;
    /* Ranges ending before a - 1 stay in front (every last < size, so last + 1 cannot wrap). */
    while (i < *n && out[i].last + 1 < a)
        i++;
    /* Ranges starting at or before b + 1 touch [a, b]: absorb them (b < size, no overflow). */
    for (j = i; j < *n && out[j].first <= b + 1; j++) {
        if (out[j].first < a)
            a = out[j].first;
        if (out[j].last > b)
            b = out[j].last;
    }
    if (j == i) {
        if (*n >= max)
            return -1;
        memmove(out + i + 1, out + i, (*n - i) * sizeof(*out));
        (*n)++;
    } else {
        memmove(out + i + 1, out + j, (*n - j) * sizeof(*out));
        *n -= j - i - 1;
    }
    out[i].first = a;
    out[i].last = b;
    return 0;
}

int nk_http_range_parse(nk_str value, uint64_t size, nk_http_range *out, size_t max)
{
    const char *s = value.p;
    size_t len = value.len, i = 0, n = 0;
    size_t elements = 0;
    uint64_t requested = 0;
    uint64_t budget = size > UINT64_MAX / RANGE_OVERLAP_FACTOR ? UINT64_MAX
                                                               : size * RANGE_OVERLAP_FACTOR;

    if (!s)
        return 0;
    if (len < 6 || !unit_is_bytes(s))
        return 0;
    i = 6;

    while (i < len) {
        uint64_t first = 0, last = 0;
        int have_first, have_last;

        while (i < len && (is_ows(s[i]) || s[i] == ','))
            i++;
        if (i == len)
            break;
        have_first = number(s, len, &i, &first);
        if (have_first < 0 || i >= len || s[i] != '-')
            return 0;
        i++;
        have_last = number(s, len, &i, &last);
        if (have_last < 0 || (!have_first && !have_last))
            return 0;
        while (i < len && is_ows(s[i]))
            i++;
        if (i < len && s[i] != ',')
            return 0; /* junk after an element, or spaces inside it */
        elements++;

        if (have_first && have_last && first > last)
            return 0;
        if (have_first) {
            if (first >= size)
                continue; /* unsatisfiable */
            if (!have_last || last >= size)
                last = size - 1;
        } else {
            /* suffix-range: the last `last` bytes */
            if (last == 0 || size == 0)
                continue; /* unsatisfiable */
            first = last >= size ? 0 : size - last;
            last = size - 1;
        }
        uint64_t bytes = last - first + 1;
        requested = bytes > UINT64_MAX - requested ? UINT64_MAX : requested + bytes;
        if (requested > budget)
            return 0;
        if (insert(out, &n, max, first, last) < 0)
            return 0;
    }
    if (elements == 0)
        return 0; /* "bytes=" or only commas: 1#range-spec needs one element */
    if (n == 0)
        return -ERANGE;
    return (int)n;
}
