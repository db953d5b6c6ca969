/* Content negotiation (src/http/accept.c): q-values by Accept, Accept-Encoding and
 * Accept-Language, on requests parsed from real heads. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netkit/http.h"

/* fields: header lines, each ending in CRLF, between the request line and the empty line.
 * The request's views point into the head, which therefore outlives the call. */
static void parse(const char *fields, nk_http_request *req)
{
    static char head[2048];
    int n = snprintf(head, sizeof head, "GET / HTTP/1.1\r\nHost: h\r\n%s\r\n", fields);
    assert_true(n > 0 && (size_t)n < sizeof head);
    int status;
    if (nk_http_parse_request(head, (size_t)n, 0, NULL, req, &status) != n)
        fail_msg("head refused (%d): %s", status, fields);
}

static int ask(const char *fields, const char *field, const char *value, int explicit_only)
{
    nk_http_request req;
    parse(fields, &req);
    return explicit_only ? nk_http_accepts_explicitly(&req, field, value)
                         : nk_http_accepts(&req, field, value);
}

static const struct {
    const char *fields, *field, *value;
    int want;
} accepts[] = {
    /* No field: anything goes. */
    {"", "Accept", "text/html", 1000},
    {"", "Accept-Encoding", "gzip", 1000},
    /* q=0 refuses, whatever else the field says. */
    {"Accept: text/html;q=0\r\n", "Accept", "text/html", 0},
    {"Accept: text/html;q=0, */*\r\n", "Accept", "text/html", 0},
    {"Accept: text/html; q=0.0\r\n", "Accept", "text/html", 0},
    {"Accept: text/html;q=0.000\r\n", "Accept", "text/html", 0},
    /* The most specific range decides, in any order. */
    {"Accept: */*;q=0.1, text/*;q=0.5, text/html\r\n", "Accept", "text/html", 1000},
    {"Accept: */*;q=0.1, text/*;q=0.5, text/html\r\n", "Accept", "text/plain", 500},
    {"Accept: */*;q=0.1, text/*;q=0.5, text/html\r\n", "Accept", "image/png", 100},
    {"Accept: text/html, text/*;q=0\r\n", "Accept", "text/css", 0},
    {"Accept: TEXT/HTML\r\n", "Accept", "text/html", 1000},
    {"Accept: text/html;level=1, text/html;q=0.7\r\n", "Accept", "text/html", 700},
    {"Accept: text/html;level=1, text/html;q=0.7\r\n", "Accept", "text/html;level=1", 1000},
    {"Accept: text/html;level=1;q=0.2, text/html;q=0.7\r\n", "Accept", "text/html; level=1", 200},
    /* A listed type that is not the one asked about. */
    {"Accept: application/json\r\n", "Accept", "text/html", 0},
    {"Accept: application/json-seq\r\n", "Accept", "application/json", 0},
    {"Accept: text/htmlx\r\n", "Accept", "text/html", 0},
    /* Every line of the field counts. */
    {"Accept: image/png\r\nAccept: text/html;q=0.3\r\n", "Accept", "text/html", 300},
    /* Browsers. */
    {"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n", "Accept",
     "application/json", 800},
    {"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n", "Accept",
     "application/xml", 900},
    /* qvalue grammar: three decimals at most, 1 only as 1.000; a bad one voids the element. */
    {"Accept: text/html;q=0.123\r\n", "Accept", "text/html", 123},
    {"Accept: text/html;q=0.5\r\n", "Accept", "text/html", 500},
    {"Accept: text/html;q=1.000\r\n", "Accept", "text/html", 1000},
    {"Accept: text/html;q=1.5, */*;q=0.2\r\n", "Accept", "text/html", 200},
    {"Accept: text/html;q=0.1234, */*;q=0.2\r\n", "Accept", "text/html", 200},
    {"Accept: text/html;q=, */*;q=0.2\r\n", "Accept", "text/html", 200},
    {"Accept: text/html;Q=0.4\r\n", "Accept", "text/html", 400},
    /* Not ranges: "*" alone, "*" "/" subtype, no subtype. */
    {"Accept: *\r\n", "Accept", "text/html", 0},
    {"Accept: */html\r\n", "Accept", "text/html", 0},
    {"Accept: text/\r\n", "Accept", "text/html", 0},
    /* Accept-Encoding, section 12.5.3. */
    {"Accept-Encoding: gzip, deflate, br\r\n", "Accept-Encoding", "gzip", 1000},
    {"Accept-Encoding: gzip;q=0\r\n", "Accept-Encoding", "gzip", 0},
    {"Accept-Encoding: gzip;q=0, *\r\n", "Accept-Encoding", "gzip", 0},
    {"Accept-Encoding: *;q=0.5\r\n", "Accept-Encoding", "gzip", 500},
    {"Accept-Encoding: br\r\n", "Accept-Encoding", "gzip", 0},
    {"Accept-Encoding: x-gzip\r\n", "Accept-Encoding", "gzip", 1000},
    {"Accept-Encoding: GZIP;q=0.9\r\n", "Accept-Encoding", "gzip", 900},
    {"Accept-Encoding: br\r\n", "Accept-Encoding", "identity", 1000},
    {"Accept-Encoding:\r\n", "Accept-Encoding", "identity", 1000},
    {"Accept-Encoding:\r\n", "Accept-Encoding", "gzip", 0},
    {"Accept-Encoding: identity;q=0\r\n", "Accept-Encoding", "identity", 0},
    {"Accept-Encoding: *;q=0\r\n", "Accept-Encoding", "identity", 0},
    {"Accept-Encoding: *;q=0, identity\r\n", "Accept-Encoding", "identity", 1000},
    /* Accept-Language: prefixes on "-" boundaries. */
    {"Accept-Language: en;q=0.8, de\r\n", "Accept-Language", "en-US", 800},
    {"Accept-Language: en-US, en;q=0.5\r\n", "Accept-Language", "en-US", 1000},
    {"Accept-Language: en\r\n", "Accept-Language", "eng", 0},
    {"Accept-Language: fr, *;q=0.1\r\n", "Accept-Language", "de", 100},
    /* Others: tokens and "*". */
    {"Accept-Charset: utf-8, *;q=0.2\r\n", "Accept-Charset", "UTF-8", 1000},
    {"Accept-Charset: utf-8, *;q=0.2\r\n", "Accept-Charset", "latin1", 200},
};

static void test_accepts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof accepts / sizeof accepts[0]; i++) {
        int q = ask(accepts[i].fields, accepts[i].field, accepts[i].value, 0);
        if (q != accepts[i].want)
            fail_msg("row %zu: %s%s %s: got %d, expected %d", i, accepts[i].fields,
                     accepts[i].field, accepts[i].value, q, accepts[i].want);
    }
}

static const struct {
    const char *fields, *field, *value;
    int want;
} explicitly[] = {
    {"", "Accept", "text/html", -ENOENT},
    {"Accept: */*\r\n", "Accept", "text/html", -ENOENT},
    {"Accept: text/*\r\n", "Accept", "text/html", -ENOENT},
    {"Accept: text/html\r\n", "Accept", "text/html", 1000},
    {"Accept: text/html;q=0\r\n", "Accept", "text/html", 0},
    {"Accept: image/png, text/html;q=0.9\r\n", "Accept", "text/html", 900},
    {"Accept: application/json\r\n", "Accept", "application/json", 1000},
    {"Accept: application/jsonx\r\n", "Accept", "application/json", -ENOENT},
    {"Accept-Encoding: *\r\n", "Accept-Encoding", "gzip", -ENOENT},
    {"Accept-Encoding: gzip;q=0.3\r\n", "Accept-Encoding", "gzip", 300},
    {"Accept-Language: en\r\n", "Accept-Language", "en-US", -ENOENT},
    {"Accept-Language: en-us\r\n", "Accept-Language", "en-US", 1000},
};

static void test_accepts_explicitly(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof explicitly / sizeof explicitly[0]; i++) {
        int q = ask(explicitly[i].fields, explicitly[i].field, explicitly[i].value, 1);
        if (q != explicitly[i].want)
            fail_msg("row %zu: %s%s %s: got %d, expected %d", i, explicitly[i].fields,
                     explicitly[i].field, explicitly[i].value, q, explicitly[i].want);
    }
}

static void test_bad_value(void **state)
{
    (void)state;
    nk_http_request req;
    parse("Accept: */*\r\n", &req);
    assert_int_equal(nk_http_accepts(&req, "Accept", "html"), -EINVAL);
    assert_int_equal(nk_http_accepts(&req, "Accept", ""), -EINVAL);
    assert_int_equal(nk_http_accepts(&req, "Accept", "text/html;q=0.5"), -EINVAL);
    assert_int_equal(nk_http_accepts(&req, "Accept-Encoding", "a b"), -EINVAL);
    assert_int_equal(nk_http_accepts_explicitly(&req, "Accept", "text"), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_accepts_explicitly),
        cmocka_unit_test(test_bad_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
