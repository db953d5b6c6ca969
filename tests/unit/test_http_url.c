/* URI references (src/http/url.c): parsing into components, recomposition, resolution against
 * a base with RFC 3986 section 5.4's examples, and the repair of sloppy references. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netkit/http.h"

/* A component as the tests write it: NULL for undefined. */
static void check_str(nk_str got, const char *want, const char *what, const char *input)
{
    if (!want) {
        if (got.p)
            fail_msg("%s: %s is \"%.*s\", expected undefined", input, what, (int)got.len, got.p);
        return;
    }
    if (!got.p)
        fail_msg("%s: %s undefined, expected \"%s\"", input, what, want);
    if (got.len != strlen(want) || memcmp(got.p, want, got.len) != 0)
        fail_msg("%s: %s is \"%.*s\", expected \"%s\"", input, what, (int)got.len, got.p, want);
}

static const struct {
    const char *in;
    const char *scheme, *userinfo, *host, *port, *path, *query, *fragment;
    int ip_literal;
} parse_ok[] = {
    {"http://example.com/a/b?x=1#top", "http", NULL, "example.com", NULL, "/a/b", "x=1", "top", 0},
    {"http://u:pw@h:8080/p", "http", "u:pw", "h", "8080", "/p", NULL, NULL, 0},
    {"http://[::1]:80/", "http", NULL, "::1", "80", "/", NULL, NULL, 1},
    {"http://[v1.fe:x]/", "http", NULL, "v1.fe:x", NULL, "/", NULL, NULL, 1},
    {"http://h", "http", NULL, "h", NULL, "", NULL, NULL, 0},
    {"http://h:/", "http", NULL, "h", "", "/", NULL, NULL, 0},
    {"http://@h", "http", "", "h", NULL, "", NULL, NULL, 0},
    {"http://h/?", "http", NULL, "h", NULL, "/", "", NULL, 0},
    {"http://h/#", "http", NULL, "h", NULL, "/", NULL, "", 0},
    {"http://", "http", NULL, "", NULL, "", NULL, NULL, 0},
    {"file:///etc/hosts", "file", NULL, "", NULL, "/etc/hosts", NULL, NULL, 0},
    {"mailto:a@b.c", "mailto", NULL, NULL, NULL, "a@b.c", NULL, NULL, 0},
    {"urn:isbn:123", "urn", NULL, NULL, NULL, "isbn:123", NULL, NULL, 0},
    {"HTTP://H/%7Euser", "HTTP", NULL, "H", NULL, "/%7Euser", NULL, NULL, 0},
    {"//g/x", NULL, NULL, "g", NULL, "/x", NULL, NULL, 0},
    {"../a/b", NULL, NULL, NULL, NULL, "../a/b", NULL, NULL, 0},
    {"./a:b", NULL, NULL, NULL, NULL, "./a:b", NULL, NULL, 0},
    {"?q/?#f?/", NULL, NULL, NULL, NULL, "", "q/?", "f?/", 0},
    {"", NULL, NULL, NULL, NULL, "", NULL, NULL, 0},
    {"g;x=1/../y", NULL, NULL, NULL, NULL, "g;x=1/../y", NULL, NULL, 0},
    {"a+b-c.d:x", "a+b-c.d", NULL, NULL, NULL, "x", NULL, NULL, 0},
    {"http://1.2.3.4:65535", "http", NULL, "1.2.3.4", "65535", "", NULL, NULL, 0},
};

static void test_parse_components(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof parse_ok / sizeof parse_ok[0]; i++) {
        nk_url u;
        const char *in = parse_ok[i].in;
        int rc = nk_url_parse(in, strlen(in), &u);
        if (rc != 0)
            fail_msg("%s: parse returned %d", in, rc);
        check_str(u.scheme, parse_ok[i].scheme, "scheme", in);
        check_str(u.userinfo, parse_ok[i].userinfo, "userinfo", in);
        check_str(u.host, parse_ok[i].host, "host", in);
        check_str(u.port, parse_ok[i].port, "port", in);
        check_str(u.path, parse_ok[i].path, "path", in);
        check_str(u.query, parse_ok[i].query, "query", in);
        check_str(u.fragment, parse_ok[i].fragment, "fragment", in);
        assert_int_equal(u.ip_literal, parse_ok[i].ip_literal);

        /* What is parsed formats back to the same bytes. */
        char buf[256];
        rc = nk_url_format(&u, buf, sizeof buf);
        assert_int_equal(rc, (int)strlen(in));
        assert_string_equal(buf, in);
    }
}

static const char *const parse_bad[] = {
    "http://h/a b",       /* space */
    "http://h/%",         /* cut escape */
    "http://h/%4",        /* cut escape */
    "http://h/%zz",       /* not hex */
    "http://h/a#b#c",     /* "#" inside a fragment */
    "http://h/[x]",       /* brackets outside the host */
    "http://[::1/",       /* unclosed literal */
    "http://[::g]/",      /* not IPv6 */
    "http://[]/",         /* empty literal */
    "http://[v.x]/",      /* IPvFuture without a version */
    "http://[::1]x/",     /* junk after the literal */
    "http://h:8x/",       /* port not digits */
    "http://a@b@c/",      /* "@" in the host */
    "http://h^/",         /* not a reg-name byte */
    "a:b/c:d\x7f",        /* DEL */
    "1http://h/",         /* scheme must start with a letter: then a relative ref with ":" */
    "a:b",                /* fine as a URI... */
};

static void test_parse_refused(void **state)
{
    (void)state;
    /* The last entry is valid: a guard that the table is not refusing everything. */
    size_t n = sizeof parse_bad / sizeof parse_bad[0];
    for (size_t i = 0; i + 1 < n; i++) {
        nk_url u;
        int rc = nk_url_parse(parse_bad[i], strlen(parse_bad[i]), &u);
        if (rc != -EINVAL)
            fail_msg("\"%s\": expected -EINVAL, got %d", parse_bad[i], rc);
    }
    nk_url u;
    assert_int_equal(nk_url_parse(parse_bad[n - 1], strlen(parse_bad[n - 1]), &u), 0);
    /* A relative reference whose first segment holds ":" would read as a scheme. */
    assert_int_equal(nk_url_parse(":x", 2, &u), -EINVAL);
    assert_int_equal(nk_url_parse("-a:x", 4, &u), -EINVAL);
    /* NUL is never part of a URI; the length, not a terminator, bounds the text. */
    assert_int_equal(nk_url_parse("http://h/\0x", 11, &u), -EINVAL);
    assert_int_equal(nk_url_parse("http://[::\0\0001]/", 15, &u), -EINVAL);
    assert_int_equal(nk_url_parse("http://h/x", 8, &u), 0);
    assert_int_equal((int)u.host.len, 1);
    assert_int_equal(nk_url_parse(NULL, 0, &u), 0);
    assert_int_equal(nk_url_parse(NULL, 1, &u), -EINVAL);
}

static void test_port(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int want;
    } t[] = {
        {"http://h/", 80}, {"http://h:/", 80}, {"http://h:8080/", 8080}, {"http://h:0/", 0},
        {"http://h:00443/", 443}, {"http://h:65535/", 65535}, {"http://h:65536/", -ERANGE},
        {"http://h:99999999999999999999/", -ERANGE},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        nk_url u;
        assert_int_equal(nk_url_parse(t[i].in, strlen(t[i].in), &u), 0);
        if (nk_url_port(&u, 80) != t[i].want)
            fail_msg("%s: port %d, expected %d", t[i].in, nk_url_port(&u, 80), t[i].want);
    }
}

/* RFC 3986 section 5.4: every example, normal (5.4.1) and abnormal (5.4.2). */
static const struct {
    const char *ref, *want;
} rfc_examples[] = {
    {"g:h", "g:h"},
    {"g", "http://a/b/c/g"},
    {"./g", "http://a/b/c/g"},
    {"g/", "http://a/b/c/g/"},
    {"/g", "http://a/g"},
    {"//g", "http://g"},
    {"?y", "http://a/b/c/d;p?y"},
    {"g?y", "http://a/b/c/g?y"},
    {"#s", "http://a/b/c/d;p?q#s"},
    {"g#s", "http://a/b/c/g#s"},
    {"g?y#s", "http://a/b/c/g?y#s"},
    {";x", "http://a/b/c/;x"},
    {"g;x", "http://a/b/c/g;x"},
    {"g;x?y#s", "http://a/b/c/g;x?y#s"},
    {"", "http://a/b/c/d;p?q"},
    {".", "http://a/b/c/"},
    {"./", "http://a/b/c/"},
    {"..", "http://a/b/"},
    {"../", "http://a/b/"},
    {"../g", "http://a/b/g"},
    {"../..", "http://a/"},
    {"../../", "http://a/"},
    {"../../g", "http://a/g"},
    /* 5.4.2 */
    {"../../../g", "http://a/g"},
    {"../../../../g", "http://a/g"},
    {"/./g", "http://a/g"},
    {"/../g", "http://a/g"},
    {"g.", "http://a/b/c/g."},
    {".g", "http://a/b/c/.g"},
    {"g..", "http://a/b/c/g.."},
    {"..g", "http://a/b/c/..g"},
    {"./../g", "http://a/b/g"},
    {"./g/.", "http://a/b/c/g/"},
    {"g/./h", "http://a/b/c/g/h"},
    {"g/../h", "http://a/b/c/h"},
    {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
    {"g;x=1/../y", "http://a/b/c/y"},
    {"g?y/./x", "http://a/b/c/g?y/./x"},
    {"g?y/../x", "http://a/b/c/g?y/../x"},
    {"g#s/./x", "http://a/b/c/g#s/./x"},
    {"g#s/../x", "http://a/b/c/g#s/../x"},
    {"http:g", "http:g"},
};

static void resolve_one(const char *base_text, const char *ref_text, const char *want)
{
    nk_url base, ref, res, again;
    char buf[256], fmt[256];
    assert_int_equal(nk_url_parse(base_text, strlen(base_text), &base), 0);
    if (nk_url_parse(ref_text, strlen(ref_text), &ref) != 0)
        fail_msg("reference \"%s\" refused", ref_text);
    int n = nk_url_resolve(&base, &ref, buf, sizeof buf, &res);
    if (n < 0 || strcmp(buf, want) != 0)
        fail_msg("%s + %s: got %d \"%s\", expected \"%s\"", base_text, ref_text, n, n < 0 ? "" : buf,
                 want);
    assert_int_equal(n, (int)strlen(want));
    /* res describes buf, and formats back to it. */
    assert_int_equal(nk_url_format(&res, fmt, sizeof fmt), n);
    assert_string_equal(fmt, buf);
    assert_int_equal(nk_url_parse(buf, (size_t)n, &again), 0);
}

static void test_resolve_rfc_examples(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rfc_examples / sizeof rfc_examples[0]; i++)
        resolve_one("http://a/b/c/d;p?q", rfc_examples[i].ref, rfc_examples[i].want);
}

static void test_resolve_more(void **state)
{
    (void)state;
    static const struct {
        const char *base, *ref, *want;
    } t[] = {
        /* An authority with an empty path merges under "/" (5.2.3). */
        {"http://h", "x", "http://h/x"},
        {"http://h", "", "http://h"},
        {"http://h?q", "#f", "http://h?q#f"},
        /* The base's fragment never carries over. */
        {"http://h/a#frag", "b", "http://h/b"},
        {"http://h/a#frag", "", "http://h/a"},
        /* The reference's authority and its own userinfo and port. */
        {"http://u@h:1/a/b", "//v@k:2/c/../d", "http://v@k:2/d"},
        {"http://u@h:1/a/b", "c", "http://u@h:1/a/c"},
        {"http://[::1]:8080/a/b", "../c", "http://[::1]:8080/c"},
        /* Without an authority, a path starting with "//" keeps "/." in front of it. */
        {"a:/b/c", "..//x", "a:/.//x"},
        {"a:b/c", "d", "a:b/d"},
        {"a:b", "../../x", "a:x"},
        {"mailto:a@b", "?subject=x", "mailto:a@b?subject=x"},
        /* A query that looks like a path is left alone. */
        {"http://h/p?a/../b", "?c/./d", "http://h/p?c/./d"},
        {"http://h/a/b/", "..", "http://h/a/"},
        {"http://h/a/b/", "/..", "http://h/"},
        {"http://h/", "%2e%2e/x", "http://h/%2e%2e/x"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        resolve_one(t[i].base, t[i].ref, t[i].want);
}

static void test_resolve_limits(void **state)
{
    (void)state;
    nk_url base, ref, res;
    char buf[64];
    assert_int_equal(nk_url_parse("/rel", 4, &base), 0);
    assert_int_equal(nk_url_parse("g", 1, &ref), 0);
    /* The base must be absolute. */
    assert_int_equal(nk_url_resolve(&base, &ref, buf, sizeof buf, &res), -EINVAL);

    const char *b = "http://a/b/c/d;p?q";
    assert_int_equal(nk_url_parse(b, strlen(b), &base), 0);
    /* "http://a/b/c/g" is 14 bytes: 15 with the NUL is enough, 14 is not, at every size. */
    for (size_t size = 0; size < 15; size++) {
        memset(buf, 'X', sizeof buf);
        assert_int_equal(nk_url_resolve(&base, &ref, buf, size, &res), -ENOSPC);
        if (size > 0)
            assert_int_equal(buf[0], '\0');
        assert_int_equal(buf[size], 'X'); /* nothing written past size */
    }
    assert_int_equal(nk_url_resolve(&base, &ref, buf, 15, &res), 14);
    assert_string_equal(buf, "http://a/b/c/g");
    /* The promised bound: the two lengths plus 3. */
    const char *r = "..//.././/x?y#z";
    assert_int_equal(nk_url_parse("a:/b/c", 6, &base), 0);
    assert_int_equal(nk_url_parse(r, strlen(r), &ref), 0);
    assert_true(nk_url_resolve(&base, &ref, buf, 6 + strlen(r) + 3, &res) > 0);
}

static void test_format_refuses_ambiguous(void **state)
{
    (void)state;
    char buf[64];
    nk_url u = {0};
    u.path = (nk_str){"a:b", 3}; /* no scheme: would read back as scheme "a" */
    assert_int_equal(nk_url_format(&u, buf, sizeof buf), -EINVAL);
    u.path = (nk_str){"//x", 3}; /* no authority: would read back as one */
    assert_int_equal(nk_url_format(&u, buf, sizeof buf), -EINVAL);
    u.host = (nk_str){"h", 1};
    u.path = (nk_str){"x", 1}; /* an authority then a rootless path */
    assert_int_equal(nk_url_format(&u, buf, sizeof buf), -EINVAL);
    u.path = (nk_str){"/x", 2};
    assert_int_equal(nk_url_format(&u, buf, sizeof buf), 5);
    assert_string_equal(buf, "//h/x");
    assert_int_equal(nk_url_format(&u, buf, 5), -ENOSPC);
    assert_string_equal(buf, "");
}

static void test_escape_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } t[] = {
        {"/a b", "/a%20b"},
        {"/caf\xc3\xa9", "/caf%C3%A9"},
        {"/%41%", "/%41%25"},
        {"/%4g", "/%254g"},
        {"/<x>{|}\"^`\\", "/%3Cx%3E%7B%7C%7D%22%5E%60%5C"},
        {"http://h/ok?a=b#c", "http://h/ok?a=b#c"},
        {"\t\x7f", "%09%7F"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char buf[128];
        int n = nk_url_escape_invalid(t[i].in, strlen(t[i].in), buf, sizeof buf);
        assert_int_equal(n, (int)strlen(t[i].want));
        assert_string_equal(buf, t[i].want);
        nk_url u;
        assert_int_equal(nk_url_parse(buf, (size_t)n, &u), 0);
    }
    char small[4];
    assert_int_equal(nk_url_escape_invalid(" ", 1, small, 3), -ENOSPC);
    assert_int_equal(nk_url_escape_invalid(" ", 1, small, 4), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_components),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_port),
        cmocka_unit_test(test_resolve_rfc_examples),
        cmocka_unit_test(test_resolve_more),
        cmocka_unit_test(test_resolve_limits),
        cmocka_unit_test(test_format_refuses_ambiguous),
        cmocka_unit_test(test_escape_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
