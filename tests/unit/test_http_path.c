/* nk_http_path_normalize and nk_http_path_has_dotfile: a table of inputs with the expected
 * result and the reason for each, most of them traversal attempts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netkit/http.h"

#define BAD(e) NULL, (e)

typedef struct path_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    const char *want; /* NULL: an error is expected */
    int err;
    const char *why;
} path_case;

static const path_case cases[] = {
    /* plain paths */
    {"/", 0, "/", 0, "the root"},
    {"/index.html", 0, "/index.html", 0, "a plain file"},
    {"/a/b/c.txt", 0, "/a/b/c.txt", 0, "nested, unchanged"},
    {"/dir/", 0, "/dir/", 0, "a trailing slash is kept"},
    {"/a%20b", 0, "/a b", 0, "percent-decoding of a space"},
    {"/%41%62", 0, "/Ab", 0, "hex digits in either case decode"},
    {"/%e2%82%ac", 0, "/\xe2\x82\xac", 0, "valid three-byte UTF-8 (euro sign)"},
    {"/\xc3\xa9t\xc3\xa9", 0, "/\xc3\xa9t\xc3\xa9", 0, "raw valid UTF-8 passes"},
    {"/%f0%9f%98%80", 0, "/\xf0\x9f\x98\x80", 0, "valid four-byte UTF-8 (emoji)"},
    {"/a+b;c=d", 0, "/a+b;c=d", 0, "sub-delims are ordinary bytes"},
    {"/%3F%23", 0, "/?#", 0, "encoded ? and # are file name bytes"},
    {"/...", 0, "/...", 0, "three dots is a name, not a dot segment"},
    {"/..a", 0, "/..a", 0, "..a is a name"},
    {"/a..", 0, "/a..", 0, "a.. is a name"},
    {"/.well-known/x", 0, "/.well-known/x", 0, "dot names are kept (has_dotfile decides)"},
    /* dot segments and empty segments (RFC 3986 section 5.2.4) */
    {"/./", 0, "/", 0, "a single dot at the root"},
    {"/.", 0, "/", 0, "a trailing dot at the root"},
    {"/a/./b", 0, "/a/b", 0, "a dot segment in the middle"},
    {"/a/b/..", 0, "/a/", 0, "a trailing .. keeps the slash"},
    {"/a/b/.", 0, "/a/b/", 0, "a trailing . keeps the slash"},
    {"/a/b/../c", 0, "/a/c", 0, ".. removes the previous segment"},
    {"/a/b/../../c", 0, "/c", 0, "two .. remove two segments"},
    {"/a/..", 0, "/", 0, "back to the root exactly"},
    {"//etc//passwd", 0, "/etc/passwd", 0, "empty segments collapse"},
    {"/a//b///", 0, "/a/b/", 0, "runs of slashes collapse, trailing kept"},
    {"/a/%2e/b", 0, "/a/b", 0, "an encoded dot is a dot segment"},
    {"/a/%2e%2E/b", 0, "/b", 0, "an encoded .. inside the root resolves"},
    {"/a/.%2e", 0, "/", 0, "a half-encoded .. resolves"},
    {"/%252e%252e/", 0, "/%2e%2e/", 0, "decoded once: %252e%252e is a literal name"},
    {"/%25", 0, "/%", 0, "an encoded percent sign"},
    /* traversal attempts */
    {"/..", 0, BAD(-EINVAL), ".. at the root"},
    {"/../etc/passwd", 0, BAD(-EINVAL), "classic traversal"},
    {"/../", 0, BAD(-EINVAL), ".. with a trailing slash"},
    {"/%2e%2e/etc/passwd", 0, BAD(-EINVAL), "encoded .. climbing"},
    {"/%2E%2E/etc/passwd", 0, BAD(-EINVAL), "upper-case encoded .."},
    {"/.%2e/etc", 0, BAD(-EINVAL), "half-encoded .."},
    {"/%2e./etc", 0, BAD(-EINVAL), "other half-encoded .."},
    {"/%2E%2E%2Fetc", 0, BAD(-EINVAL), "encoded slash after encoded .."},
    {"/..%2fetc", 0, BAD(-EINVAL), "encoded slash must not become a separator"},
    {"/a%2Fb", 0, BAD(-EINVAL), "encoded slash in a name"},
    {"/..%5cetc", 0, BAD(-EINVAL), "encoded backslash"},
    {"/..\\etc", 0, BAD(-EINVAL), "raw backslash"},
    {"/a\\b", 0, BAD(-EINVAL), "raw backslash in a name"},
    {"/%c0%ae%c0%ae/", 0, BAD(-EINVAL), "overlong UTF-8 dots"},
    {"/%c0%af", 0, BAD(-EINVAL), "overlong UTF-8 slash"},
    {"/%e0%80%ae", 0, BAD(-EINVAL), "three-byte overlong dot"},
    {"/%f0%80%80%ae", 0, BAD(-EINVAL), "four-byte overlong dot"},
    {"/a/../../b", 0, BAD(-EINVAL), "climbs above the root in the middle"},
    {"/a/b/../../../etc", 0, BAD(-EINVAL), "one .. too many"},
    {"/../a/..", 0, BAD(-EINVAL), "climbs first, even if later balanced"},
    {"/./../x", 0, BAD(-EINVAL), "a dot does not protect a .."},
    {"//../x", 0, BAD(-EINVAL), "an empty segment does not absorb a .."},
    {"/a%00b", 0, BAD(-EINVAL), "encoded NUL"},
    {"/a\0b", 4, BAD(-EINVAL), "raw NUL inside the given length"},
    {"/a%0ab", 0, BAD(-EINVAL), "encoded newline (header injection)"},
    {"/a\rb", 0, BAD(-EINVAL), "raw control byte"},
    {"/a%7f", 0, BAD(-EINVAL), "DEL"},
    {"/%", 0, BAD(-EINVAL), "a lone percent"},
    {"/%4", 0, BAD(-EINVAL), "one hex digit"},
    {"/%g0", 0, BAD(-EINVAL), "not a hex digit"},
    {"/%0g", 0, BAD(-EINVAL), "second digit not hex"},
    {"/%e2%82", 0, BAD(-EINVAL), "truncated UTF-8"},
    {"/%e2%82/x", 0, BAD(-EINVAL), "truncated UTF-8 before a slash"},
    {"/%ed%a0%80", 0, BAD(-EINVAL), "a UTF-16 surrogate"},
    {"/%f4%90%80%80", 0, BAD(-EINVAL), "above U+10FFFF"},
    {"/%ff", 0, BAD(-EINVAL), "never valid in UTF-8"},
    {"/%80", 0, BAD(-EINVAL), "a stray continuation byte"},
    {"/\xc3", 0, BAD(-EINVAL), "raw truncated UTF-8"},
    {"etc/passwd", 0, BAD(-EINVAL), "no leading slash"},
    {"", 0, BAD(-EINVAL), "empty"},
    {"%2fetc", 0, BAD(-EINVAL), "an encoded leading slash is not a leading slash"},
};

static void test_table(void **state)
{
    (void)state;
    size_t traversal = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const path_case *c = &cases[i];
        char out[256];
        size_t len = c->len ? c->len : strlen(c->in);
        memset(out, 'X', sizeof(out));
        int r = nk_http_path_normalize(c->in, len, out, sizeof(out));
        if (c->want) {
            if (r != (int)strlen(c->want) || strcmp(out, c->want) != 0)
                fail_msg("case %zu (%s): got %d '%s', want '%s'", i, c->why, r,
                         r >= 0 ? out : "", c->want);
        } else {
            traversal++;
            if (r != c->err)
                fail_msg("case %zu (%s): got %d, want %d", i, c->why, r, c->err);
        }
    }
    assert_true(sizeof(cases) / sizeof(cases[0]) >= 40);
    assert_true(traversal >= 25);
}

/* Every successful output is a fixed point. */
static void test_idempotent(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const path_case *c = &cases[i];
        char a[256], b[256];
        if (!c->want)
            continue;
        size_t len = c->len ? c->len : strlen(c->in);
        int r = nk_http_path_normalize(c->in, len, a, sizeof(a));
        assert_true(r >= 0);
        /* "%" decodes to itself, so it would be re-decoded: a different question. */
        if (strchr(a, '%'))
            continue;
        int r2 = nk_http_path_normalize(a, (size_t)r, b, sizeof(b));
        assert_int_equal(r2, r);
        assert_string_equal(a, b);
    }
}

static void test_too_long(void **state)
{
    (void)state;
    char out[8];
    /* "/abcdef" is 7 bytes + NUL: fits exactly. */
    assert_int_equal(nk_http_path_normalize("/abcdef", 7, out, 8), 7);
    assert_string_equal(out, "/abcdef");
    assert_int_equal(nk_http_path_normalize("/abcdefg", 8, out, 8), -ENAMETOOLONG);
    /* The intermediate path is longer than out, the result is not: it must fit. */
    const char *p = "/a-very-long-name/../b";
    assert_int_equal(nk_http_path_normalize(p, strlen(p), out, 8), 2);
    assert_string_equal(out, "/b");
    /* Decoding shrinks: "%41" is one byte. */
    assert_int_equal(nk_http_path_normalize("/%41%41%41", 10, out, 5), 4);
    assert_string_equal(out, "/AAA");
    assert_int_equal(nk_http_path_normalize("/", 1, out, 1), -ENAMETOOLONG);
    assert_int_equal(nk_http_path_normalize("/", 1, out, 0), -ENAMETOOLONG);
    assert_int_equal(nk_http_path_normalize("/", 1, out, 2), 1);
    /* An invalid path is reported as invalid even when it would not fit either. */
    assert_int_equal(nk_http_path_normalize("/abcdefghij/%00", 15, out, 4), -EINVAL);
    assert_int_equal(nk_http_path_normalize("/abcdefghij/../..", 17, out, 4), -EINVAL);
}

static void test_dotfile(void **state)
{
    (void)state;
    static const struct {
        const char *p;
        int want;
        const char *why;
    } t[] = {
        {"/", 0, "root"},
        {"/a/b.txt", 0, "a dot inside a name"},
        {"/.git/config", 1, "a dot directory"},
        {"/a/.htaccess", 1, "a dotfile"},
        {"/a/.b/", 1, "a dot directory with a trailing slash"},
        {"/a./b", 0, "a name ending in a dot"},
        {".x", 1, "a relative dotfile"},
        {"/.well-known/acme", 1, "well-known is a dot directory too"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (nk_http_path_has_dotfile(t[i].p) != t[i].want)
            fail_msg("dotfile case %zu (%s)", i, t[i].why);
    }
}

/* Which directory entry names a request can name, and the upload temporary prefix. */
static void test_name_servable(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int ok;
    } c[] = {
        {"a.txt", 1}, {"caf\xc3\xa9", 1}, {"100%.txt", 1}, {"%2e", 1}, {"a b", 1},
        {".hidden", 1}, {"...", 1}, {"<b>&\"'", 1},
        {"", 0}, {".", 0}, {"..", 0}, {"line\nfeed", 0}, {"tab\t", 0}, {"del\x7f", 0},
        {"back\\slash", 0}, {"bad\xff", 0}, {"\xc0\xae", 0}, {"trunc\xc3", 0},
        {"a/b", 0},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        if (nk_http_name_servable(c[i].name, strlen(c[i].name)) != c[i].ok)
            fail_msg("name case %zu ('%s'): want %d", i, c[i].name, c[i].ok);
    }
    assert_false(nk_http_name_servable(NULL, 1));
    assert_false(nk_http_name_servable("a\0b", 3)); /* a NUL inside the length */
    assert_true(nk_http_path_has_upload_tmp("/.netkit-upload-x"));
    assert_true(nk_http_path_has_upload_tmp(".netkit-upload-x"));
    assert_true(nk_http_path_has_upload_tmp("/a/.netkit-upload-x/b"));
    assert_false(nk_http_path_has_upload_tmp("/a/x.netkit-upload-x"));
    assert_false(nk_http_path_has_upload_tmp("/.netkit-uploadx"));
    assert_false(nk_http_path_has_upload_tmp(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_servable),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_dotfile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
