/* ETags, the precondition order of RFC 9110 section 13.2.2, and If-Range (13.1.5). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netkit/http.h"

#define ETAG "\"abc-10-5\""
#define MTIME ((time_t)784111777)            /* Sun, 06 Nov 1994 08:49:37 GMT */
#define D_EQ "Sun, 06 Nov 1994 08:49:37 GMT" /* == MTIME */
#define D_BEFORE "Sun, 06 Nov 1994 08:49:36 GMT"
#define D_AFTER "Sun, 06 Nov 1994 08:49:38 GMT"
#define D_BAD "yesterday"

static void test_etag(void **state)
{
    (void)state;
    char out[NK_HTTP_ETAG_MAX];
    /* nginx's "mtime-size" in hex, the mtime with its nanoseconds: no inode number, so the
     * tag says nothing about the file system and survives a restore or a second server. */
    int n = nk_http_file_etag(out, sizeof(out), 0x10, 0x5e0be100, 5);
    assert_int_equal(n, (int)strlen(out));
    assert_string_equal(out, "\"5e0be100.5-10\"");
    /* Nanoseconds matter: a rewrite within the same second changes the tag. */
    char other[NK_HTTP_ETAG_MAX];
    nk_http_file_etag(other, sizeof(other), 0x10, 0x5e0be100, 6);
    assert_string_not_equal(out, other);
    /* So does the size. */
    nk_http_file_etag(other, sizeof(other), 0x11, 0x5e0be100, 5);
    assert_string_not_equal(out, other);
    /* The worst case fits NK_HTTP_ETAG_MAX, with room for the "-gzip" suffix. */
    n = nk_http_file_etag(out, sizeof(out), UINT64_MAX, -1, 999999999);
    assert_true(n > 0 && (size_t)n + 5 < sizeof(out));
    assert_int_equal(nk_http_file_etag(out, 7, 1, 3, 4), -ENOSPC); /* 7 chars + NUL */
    /* The older call ignores the inode: two copies of a file get the same tag. */
    char a[NK_HTTP_ETAG_MAX], b[NK_HTTP_ETAG_MAX];
    nk_http_etag(a, sizeof(a), 0x1234, 0x10, 0x5e0be100, 5);
    nk_http_etag(b, sizeof(b), 0x9999, 0x10, 0x5e0be100, 5);
    assert_string_equal(a, b);
    assert_string_equal(a, "\"5e0be100.5-10\"");
}

typedef struct cond_case {
    nk_http_method m;
    const char *im, *inm, *ims, *ius; /* NULL: absent */
    int want;
    const char *why;
} cond_case;

static const cond_case cases[] = {
    {NK_HTTP_GET, NULL, NULL, NULL, NULL, 0, "no preconditions"},
    /* step 1: If-Match */
    {NK_HTTP_GET, ETAG, NULL, NULL, NULL, 0, "If-Match with the current tag"},
    {NK_HTTP_GET, "\"x\"", NULL, NULL, NULL, 412, "If-Match with another tag"},
    {NK_HTTP_GET, "*", NULL, NULL, NULL, 0, "If-Match * (the file exists)"},
    {NK_HTTP_PUT, "\"x\", " ETAG, NULL, NULL, NULL, 0, "If-Match list, second matches"},
    {NK_HTTP_GET, "W/" ETAG, NULL, NULL, NULL, 412, "If-Match uses strong comparison"},
    {NK_HTTP_GET, ETAG " junk", NULL, NULL, NULL, 412, "malformed If-Match fails"},
    {NK_HTTP_GET, ETAG ", x", NULL, NULL, NULL, 412, "a malformed element spoils a match"},
    {NK_HTTP_GET, "abc-10-5", NULL, NULL, NULL, 412, "an unquoted tag is malformed"},
    {NK_HTTP_GET, "", NULL, NULL, NULL, 412, "an empty If-Match lists no tag"},
    {NK_HTTP_GET, " ,, " ETAG " ,", NULL, NULL, NULL, 0, "empty list elements are skipped"},
    {NK_HTTP_GET, "*, " ETAG, NULL, NULL, NULL, 412, "* inside a list is malformed"},
    {NK_HTTP_GET, "\"x\"" ETAG, NULL, NULL, NULL, 412, "tags need a comma between them"},
    /* step 2: If-Unmodified-Since only without If-Match */
    {NK_HTTP_GET, NULL, NULL, NULL, D_BEFORE, 412, "modified after the IUS date"},
    {NK_HTTP_GET, NULL, NULL, NULL, D_EQ, 0, "not modified since: equal date passes"},
    {NK_HTTP_GET, NULL, NULL, NULL, D_AFTER, 0, "IUS date after mtime passes"},
    {NK_HTTP_GET, NULL, NULL, NULL, D_BAD, 0, "an invalid IUS date is ignored"},
    {NK_HTTP_GET, ETAG, NULL, NULL, D_BEFORE, 0, "IUS is ignored when If-Match is present"},
    {NK_HTTP_GET, "\"x\"", NULL, NULL, D_AFTER, 412, "If-Match fails even when IUS passes"},
    /* step 3: If-None-Match */
    {NK_HTTP_GET, NULL, ETAG, NULL, NULL, 304, "INM matches: 304 for GET"},
    {NK_HTTP_HEAD, NULL, ETAG, NULL, NULL, 304, "INM matches: 304 for HEAD"},
    {NK_HTTP_POST, NULL, ETAG, NULL, NULL, 412, "INM matches: 412 for other methods"},
    {NK_HTTP_GET, NULL, "W/" ETAG, NULL, NULL, 304, "INM uses weak comparison"},
    {NK_HTTP_GET, NULL, "*", NULL, NULL, 304, "INM * matches an existing file"},
    {NK_HTTP_DELETE, NULL, "*", NULL, NULL, 412, "INM * for an unsafe method"},
    {NK_HTTP_GET, NULL, "\"x\", \"y\"", NULL, NULL, 0, "INM lists other tags"},
    {NK_HTTP_GET, NULL, "\"x\",\t" ETAG, NULL, NULL, 304, "INM list with tab OWS"},
    {NK_HTTP_GET, NULL, ETAG " junk", NULL, NULL, 0, "a malformed INM matches nothing"},
    {NK_HTTP_GET, NULL, "w/" ETAG, NULL, NULL, 0, "the weak prefix is a capital W"},
    {NK_HTTP_GET, NULL, "\"a\"b\"", NULL, NULL, 0, "a quote inside a tag is malformed"},
    {NK_HTTP_GET, ETAG, ETAG, NULL, NULL, 304, "If-Match passes, then INM gives 304"},
    {NK_HTTP_GET, NULL, ETAG, NULL, D_BEFORE, 412, "IUS (step 2) comes before INM (step 3)"},
    /* step 4: If-Modified-Since only for GET/HEAD and without If-None-Match */
    {NK_HTTP_GET, NULL, NULL, D_EQ, NULL, 304, "IMS equal to mtime: not modified"},
    {NK_HTTP_GET, NULL, NULL, D_AFTER, NULL, 304, "IMS after mtime: not modified"},
    {NK_HTTP_GET, NULL, NULL, D_BEFORE, NULL, 0, "IMS before mtime: modified, send it"},
    {NK_HTTP_HEAD, NULL, NULL, D_EQ, NULL, 304, "IMS applies to HEAD"},
    {NK_HTTP_POST, NULL, NULL, D_EQ, NULL, 0, "IMS is ignored for POST"},
    {NK_HTTP_GET, NULL, NULL, D_BAD, NULL, 0, "an invalid IMS date is ignored"},
    {NK_HTTP_GET, NULL, NULL, "Sunday, 06-Nov-94 08:49:37 GMT", NULL, 304, "IMS in RFC 850"},
    {NK_HTTP_GET, NULL, NULL, "Sun Nov  6 08:49:37 1994", NULL, 304, "IMS in asctime form"},
    {NK_HTTP_GET, NULL, "\"x\"", D_EQ, NULL, 0, "IMS is ignored when INM is present"},
    {NK_HTTP_GET, NULL, ETAG, D_BEFORE, NULL, 304, "INM match decides, not IMS"},
    {NK_HTTP_GET, "\"x\"", NULL, D_EQ, NULL, 412, "If-Match failure beats a 304"},
};

static nk_str opt(const char *s)
{
    nk_str v = {s, s ? strlen(s) : 0};
    return v;
}

static void test_evaluate(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const cond_case *c = &cases[i];
        nk_http_cond_input in = {
            .method = c->m,
            .if_match = opt(c->im),
            .if_none_match = opt(c->inm),
            .if_modified_since = opt(c->ims),
            .if_unmodified_since = opt(c->ius),
            .etag = ETAG,
            .mtime = MTIME,
        };
        int r = nk_http_cond_evaluate(&in);
        if (r != c->want)
            fail_msg("case %zu (%s): got %d, want %d", i, c->why, r, c->want);
    }
}

static void test_if_range(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int want;
        const char *why;
    } t[] = {
        {NULL, 1, "no If-Range: honour Range"},
        {ETAG, 1, "the current strong tag"},
        {"\"other\"", 0, "another tag"},
        {"W/" ETAG, 0, "a weak tag never matches"},
        {D_EQ, 1, "the exact Last-Modified date"},
        {D_BEFORE, 0, "an earlier date"},
        {D_AFTER, 0, "a later date is not an exact match"},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 1, "an exact date in RFC 850 form"},
        {D_BAD, 0, "malformed date"},
        {ETAG ", \"x\"", 0, "a list is not an entity-tag"},
        {"\"abc-10-5", 0, "an unterminated tag"},
        {"", 0, "empty"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int r = nk_http_if_range_ok(opt(t[i].v), ETAG, MTIME);
        if (r != t[i].want)
            fail_msg("If-Range case %zu (%s): got %d", i, t[i].why, r);
    }
    /* A weak current tag cannot satisfy If-Range either. */
    assert_false(nk_http_if_range_ok(opt("W/\"a\""), "W/\"a\"", MTIME));
    assert_false(nk_http_if_range_ok(opt("\"a\""), "W/\"a\"", MTIME));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_evaluate),
        cmocka_unit_test(test_if_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
