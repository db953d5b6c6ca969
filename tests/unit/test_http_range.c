/* Range parsing (RFC 9110 section 14): a table of headers, file sizes and expected ranges,
 * edge cases after nginx-tests' range.t. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netkit/http.h"

#define MAXR 8

typedef struct range_case {
    const char *v;
    uint64_t size;
    int want;        /* return value */
    uint64_t r[4][2]; /* expected ranges when want > 0 */
    const char *why;
} range_case;

static const range_case cases[] = {
    {"bytes=0-0", 10, 1, {{0, 0}}, "the first byte"},
    {"bytes=-1", 10, 1, {{9, 9}}, "the last byte"},
    {"bytes=5-", 10, 1, {{5, 9}}, "open-ended from 5"},
    {"bytes=0-", 10, 1, {{0, 9}}, "the whole file as a range"},
    {"bytes=0-", 0, -ERANGE, {{0}}, "an empty file has no satisfiable range"},
    {"bytes=-5", 0, -ERANGE, {{0}}, "a suffix of an empty file"},
    {"bytes=x", 0, 0, {{0}}, "malformed stays malformed on an empty file"},
    {"bytes=2-4", 10, 1, {{2, 4}}, "a middle range"},
    {"bytes=2-100", 10, 1, {{2, 9}}, "last-pos past the end is clamped"},
    {"bytes=-100", 10, 1, {{0, 9}}, "a suffix longer than the file is all of it"},
    {"bytes=-10", 10, 1, {{0, 9}}, "a suffix exactly the file"},
    {"bytes=9-9", 10, 1, {{9, 9}}, "the last byte by position"},
    {"bytes=10-", 10, -ERANGE, {{0}}, "first-pos at the size"},
    {"bytes=10-20", 10, -ERANGE, {{0}}, "entirely past the end"},
    {"bytes=-0", 10, -ERANGE, {{0}}, "a zero-length suffix is unsatisfiable"},
    {"bytes=20-30,2-3", 10, 1, {{2, 3}}, "unsatisfiable ones dropped, the rest kept"},
    {"bytes=-0,20-", 10, -ERANGE, {{0}}, "all unsatisfiable"},
    {"bytes= 0-1 , 3-4", 10, 2, {{0, 1}, {3, 4}}, "OWS around elements"},
    {"bytes=0-1,\t3-4\t", 10, 2, {{0, 1}, {3, 4}}, "tabs are OWS too"},
    {"bytes=,0-1,,3-4,", 10, 2, {{0, 1}, {3, 4}}, "empty list elements are skipped"},
    {"BYTES=0-1", 10, 1, {{0, 1}}, "the unit is case-insensitive"},
    {"Bytes=0-1", 10, 1, {{0, 1}}, "mixed-case unit"},
    {"bytes=1-0", 10, 0, {{0}}, "first > last: invalid, ignore"},
    {"bytes=0-1,5-2", 10, 0, {{0}}, "one invalid range spoils the header"},
    {"bytes=20-30,5-2", 10, 0, {{0}}, "invalid beats unsatisfiable"},
    {"bytes=abc", 10, 0, {{0}}, "not a number"},
    {"bytes=0-1x", 10, 0, {{0}}, "junk after a range"},
    {"bytes=0 -1", 10, 0, {{0}}, "no spaces inside a range"},
    {"bytes=0- 1", 10, 0, {{0}}, "no spaces after the dash"},
    {"bytes=--1", 10, 0, {{0}}, "a double dash"},
    {"bytes=-", 10, 0, {{0}}, "a dash alone"},
    {"bytes=1", 10, 0, {{0}}, "no dash"},
    {"bytes=+1-2", 10, 0, {{0}}, "a sign"},
    {"bytes=0x1-2", 10, 0, {{0}}, "hex"},
    {"bytes=", 10, 0, {{0}}, "no range at all"},
    {"bytes=,,", 10, 0, {{0}}, "only empty elements"},
    {"bytes =0-1", 10, 0, {{0}}, "no space before ="},
    {"bytes= ", 10, 0, {{0}}, "only whitespace"},
    {"items=0-1", 10, 0, {{0}}, "another unit is ignored"},
    {"bytes:0-1", 10, 0, {{0}}, "the separator is ="},
    {"", 10, 0, {{0}}, "empty value"},
    {"bytes=9999999999999999999-", 10, -ERANGE, {{0}}, "19 digits: a number, past the end"},
    {"bytes=0-9999999999999999999", 10, 1, {{0, 9}}, "19-digit last-pos is clamped"},
    {"bytes=18446744073709551616-", 10, 0, {{0}}, "20 digits: would overflow, ignored"},
    {"bytes=0-99999999999999999999", 10, 0, {{0}}, "20-digit last-pos ignored"},
    {"bytes=-99999999999999999999", 10, 0, {{0}}, "20-digit suffix ignored"},
    {"bytes=00000000000000000001-", 10, 0, {{0}}, "leading zeros count toward the bound"},
    {"bytes=0001-0002", 10, 1, {{1, 2}}, "leading zeros are fine within the bound"},
    {"bytes=5-6,0-1", 10, 2, {{0, 1}, {5, 6}}, "unsorted ranges are sorted"},
    {"bytes=0-3,2-5", 10, 1, {{0, 5}}, "overlapping ranges merge"},
    {"bytes=0-1,2-3", 10, 1, {{0, 3}}, "adjacent ranges merge"},
    {"bytes=4-5,0-1,2-3", 10, 1, {{0, 5}}, "a gap filled later merges all"},
    {"bytes=0-1,3-4,6-7,2-2", 10, 2, {{0, 4}, {6, 7}}, "a middle range joins two"},
    {"bytes=0-0,2-2,4-4,0-9", 10, 1, {{0, 9}}, "a covering range swallows the rest"},
    {"bytes=-3,0-1", 10, 2, {{0, 1}, {7, 9}}, "suffix and prefix"},
    {"bytes=-3,6-", 10, 1, {{6, 9}}, "suffix overlapping an open range"},
    {"bytes=0-4,5-", 10, 1, {{0, 9}}, "adjacent up to the end"},
    {"bytes=0-,0-", 10, 1, {{0, 9}}, "twice the file is the limit: allowed"},
    {"bytes=0-,0-,0-", 10, 0, {{0}}, "three times the file: ignored (overlap abuse)"},
    {"bytes=0-0,0-0,0-0,0-0", 1, 0, {{0}}, "many tiny overlapping ranges on a small file"},
    {"bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14", 100, 8, {{0, 0}, {2, 2}, {4, 4}, {6, 6}},
     "exactly max disjoint ranges"},
    {"bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16", 100, 0, {{0}},
     "more than max disjoint ranges: ignored"},
    {"bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,1-1", 100, 7, {{0, 2}, {4, 4}, {6, 6}, {8, 8}},
     "a ninth range that merges stays within max"},
    {"bytes=0-18446744073709551614", UINT64_MAX, 0, {{0}},
     "20 digits are refused even when they would fit"},
    {"bytes=9999999999999999998-", UINT64_MAX, 1, {{9999999999999999998ULL, UINT64_MAX - 1}},
     "a huge file: the end is size - 1 without overflow"},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const range_case *c = &cases[i];
        nk_http_range out[MAXR];
        memset(out, 0xAB, sizeof(out));
        nk_str v = {c->v, strlen(c->v)};
        int r = nk_http_range_parse(v, c->size, out, MAXR);
        if (r != c->want)
            fail_msg("case %zu (%s): got %d, want %d", i, c->why, r, c->want);
        for (int k = 0; k < r && k < 4; k++) {
            if (out[k].first != c->r[k][0] || out[k].last != c->r[k][1])
                fail_msg("case %zu (%s): range %d is %llu-%llu, want %llu-%llu", i, c->why, k,
                         (unsigned long long)out[k].first, (unsigned long long)out[k].last,
                         (unsigned long long)c->r[k][0], (unsigned long long)c->r[k][1]);
        }
    }
}

static void test_null_and_max(void **state)
{
    (void)state;
    nk_http_range out[2];
    nk_str none = {NULL, 0};
    assert_int_equal(nk_http_range_parse(none, 10, out, 2), 0);
    nk_str v = {"bytes=0-0", 9};
    assert_int_equal(nk_http_range_parse(v, 10, out, 0), 0); /* max 0: nothing fits */
    /* The value is a view: bytes after len are not read. */
    nk_str cut = {"bytes=0-19", 9};
    assert_int_equal(nk_http_range_parse(cut, 100, out, 2), 1);
    assert_true(out[0].first == 0 && out[0].last == 1);
}

/* Large random-ish inputs keep the invariants: sorted, disjoint, not adjacent, in bounds. */
static void test_invariants(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int iter = 0; iter < 3000; iter++) {
        char buf[512];
        size_t len = (size_t)snprintf(buf, sizeof(buf), "bytes=");
        uint64_t size = 1 + (x % 1000);
        int n = 1 + (int)(x % 12);
        for (int k = 0; k < n; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint64_t a = x % 1100, b = a + (x >> 20) % 50;
            if (x & 0x100)
                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s-%llu", k ? "," : "",
                                        (unsigned long long)(b - a));
            else
                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%llu-%llu", k ? "," : "",
                                        (unsigned long long)a, (unsigned long long)b);
        }
        nk_http_range out[MAXR];
        nk_str v = {buf, len};
        int r = nk_http_range_parse(v, size, out, MAXR);
        assert_true(r >= -ERANGE && r <= MAXR);
        for (int k = 0; k < r; k++) {
            assert_true(out[k].first <= out[k].last);
            assert_true(out[k].last < size);
            if (k > 0)
                assert_true(out[k - 1].last + 1 < out[k].first);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_null_and_max),
        cmocka_unit_test(test_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
