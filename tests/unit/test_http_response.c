/* Response head parser tests (src/http/response.c).
 *
 * Each case is fed whole (with bytes after it, which must not matter), then every proper
 * prefix of it, always flush against a PROT_NONE guard page so that any read past the end
 * crashes. A prefix may only say "need more" or give the whole's error.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "netkit/http.h"

#define ARENA (192 * 1024)
static char *arena; /* ARENA readable bytes, then a PROT_NONE page */
static size_t pagesize;

static int setup_guard(void **state)
{
    (void)state;
    pagesize = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, ARENA + pagesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED)
        return -1;
    if (mprotect(m + ARENA, pagesize, PROT_NONE) != 0)
        return -1;
    arena = m;
    return 0;
}

static int teardown_guard(void **state)
{
    (void)state;
    munmap(arena, ARENA + pagesize);
    return 0;
}

static const char *guarded(const char *src, size_t n)
{
    assert_true(n <= ARENA);
    char *dst = arena + ARENA - n;
    memmove(dst, src, n);
    return dst;
}

/* Framing expectations: B_LEN with the length, or one of the others. */
enum { BAD = 0, B_NONE, B_LEN, B_CHUNKED, B_CLOSE };

struct rcase {
    const char *in;
    size_t inlen;
    int frame;       /* BAD: -EBADMSG expected */
    int status;
    int64_t length;  /* for B_LEN */
    int keep_alive;
    const char *why;
};

#define C(in, frame, status, length, ka, why) {in, sizeof(in) - 1, frame, status, length, ka, why}
static const struct rcase cases[] = {
    /* valid */
    C("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", B_LEN, 200, 5, 1, "plain 200"),
    C("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", B_LEN, 404, 0, 1, "404 with empty body"),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", B_CHUNKED, 200, -1, 1, "chunked"),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", B_CHUNKED, 200, -1, 1, "gzip then chunked"),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", B_CLOSE, 200, -1, 0, "TE not ending in chunked: until close (6.3 point 4)"),
    C("HTTP/1.1 200 OK\r\n\r\n", B_CLOSE, 200, -1, 0, "no framing: until close (6.3 point 8)"),
    C("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", B_LEN, 200, 3, 0, "HTTP/1.0 closes by default"),
    C("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n", B_LEN, 200, 3, 1, "HTTP/1.0 keep-alive"),
    C("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 3\r\n\r\n", B_LEN, 200, 3, 0, "Connection: close"),
    C("HTTP/1.1 204 No Content\r\n\r\n", B_NONE, 204, -1, 1, "204 has no body"),
    C("HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n", B_NONE, 304, -1, 1, "304 with Content-Length has no body"),
    C("HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n", B_NONE, 304, -1, 1, "304: Content-Length not framing"),
    C("HTTP/1.1 100 Continue\r\n\r\n", B_NONE, 100, -1, 1, "100 Continue"),
    C("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n", B_NONE, 103, -1, 1, "103 with a field"),
    C("HTTP/1.1 200 OK\nContent-Length: 2\n\n", B_LEN, 200, 2, 1, "bare LF endings (RFC 9112 2.2 MAY)"),
    C("HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\n", B_LEN, 200, 2, 1, "mixed endings"),
    C("HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n", B_LEN, 200, 2, 1, "no SP, no reason"),
    C("HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\n", B_LEN, 200, 2, 1, "empty reason"),
    C("HTTP/1.1 599 Whatever you like\r\nContent-Length: 2\r\n\r\n", B_LEN, 599, 2, 1, "599, reason with spaces"),
    C("HTTP/1.1 200 \xc3\xa7" "a va\r\nContent-Length: 2\r\n\r\n", B_LEN, 200, 2, 1, "obs-text reason"),
    C("HTTP/1.1 200 OK\r\nContent-Length: 42, 42\r\n\r\n", B_LEN, 200, 42, 1, "identical CL list (RFC 9110 8.6)"),
    C("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n", B_LEN, 200, 7, 1, "repeated identical CL"),
    C("HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n", B_LEN, 200, 7, 1, "CL leading zeros"),
    C("HTTP/1.1 200 OK\r\nX:\r\nY: \t v \t\r\nContent-Length: 1\r\n\r\n", B_LEN, 200, 1, 1, "empty value, OWS trimmed"),
    C("HTTP/1.2 200 OK\r\nContent-Length: 1\r\n\r\n", B_LEN, 200, 1, 1, "HTTP/1.2"),

    /* invalid */
    C("SSH-2.0-OpenSSH_9.2\r\n", BAD, 0, 0, 0, "not HTTP"),
    C("http/1.1 200 OK\r\n\r\n", BAD, 0, 0, 0, "lowercase HTTP-name"),
    C("\r\nHTTP/1.1 200 OK\r\n\r\n", BAD, 0, 0, 0, "leading empty line"),
    C("HTTP/2 200\r\n\r\n", BAD, 0, 0, 0, "HTTP/2"),
    C("HTTP/2.0 200 OK\r\n\r\n", BAD, 0, 0, 0, "major version 2"),
    C("HTTP/0.9 200 OK\r\n\r\n", BAD, 0, 0, 0, "major version 0"),
    C("HTTP/1.1 20 OK\r\n\r\n", BAD, 0, 0, 0, "two-digit status"),
    C("HTTP/1.1 2000 OK\r\n\r\n", BAD, 0, 0, 0, "four-digit status"),
    C("HTTP/1.1 099 Low\r\n\r\n", BAD, 0, 0, 0, "status below 100"),
    C("HTTP/1.1 600 High\r\n\r\n", BAD, 0, 0, 0, "status above 599"),
    C("HTTP/1.1  200 OK\r\n\r\n", BAD, 0, 0, 0, "two SP"),
    C("HTTP/1.1 2x0 OK\r\n\r\n", BAD, 0, 0, 0, "non-digit status"),
    C("HTTP/1.1 200 O\rK\r\n\r\n", BAD, 0, 0, 0, "bare CR in reason"),
    C("HTTP/1.1 200 O\0K\r\n\r\n", BAD, 0, 0, 0, "NUL in reason"),
    C("HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n", BAD, 0, 0, 0, "control byte in a value"),
    C("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", BAD, 0, 0, 0, "obs-fold"),
    C("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", BAD, 0, 0, 0, "space before colon"),
    C("HTTP/1.1 200 OK\r\n: a\r\n\r\n", BAD, 0, 0, 0, "empty name"),
    C("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", BAD, 0, 0, 0, "line without colon"),
    C("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", BAD, 0, 0, 0, "conflicting CL"),
    C("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", BAD, 0, 0, 0, "conflicting CL list"),
    C("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", BAD, 0, 0, 0, "negative CL"),
    C("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n", BAD, 0, 0, 0, "CL garbage"),
    C("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", BAD, 0, 0, 0, "empty CL"),
    C("HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n", BAD, 0, 0, 0, "19-digit CL"),
    C("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", BAD, 0, 0, 0, "CL and TE (6.3 point 3)"),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", BAD, 0, 0, 0, "chunked twice"),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", BAD, 0, 0, 0, "chunked with a parameter"),
    C("HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\"x\"\r\n\r\n", BAD, 0, 0, 0, "TE not a token"),
};

static const char tail[] = "BODY\x00\x01" "after";

static void check_whole(const struct rcase *c)
{
    char buf[4096];
    assert_true(c->inlen + sizeof tail <= sizeof buf);
    memcpy(buf, c->in, c->inlen);
    memcpy(buf + c->inlen, tail, sizeof tail - 1);
    size_t n = c->inlen + sizeof tail - 1;
    const char *g = guarded(buf, n);
    nk_http_response resp;
    int status = -1;
    int rc = nk_http_parse_response(g, n, &resp, &status);
    if (c->frame == BAD) {
        if (rc != -EBADMSG)
            fail_msg("%s: got %d, want -EBADMSG", c->why, rc);
        assert_int_equal(status, 0);
        return;
    }
    if (rc != (int)c->inlen)
        fail_msg("%s: got %d, want %zu", c->why, rc, c->inlen);
    assert_int_equal(status, c->status);
    assert_int_equal(resp.status, c->status);
    assert_int_equal(resp.head_len, c->inlen);
    assert_int_equal(resp.keep_alive, c->keep_alive);
    assert_int_equal(resp.no_body, c->frame == B_NONE);
    assert_int_equal(resp.chunked, c->frame == B_CHUNKED);
    assert_int_equal(resp.until_close, c->frame == B_CLOSE);
    if (c->frame == B_LEN)
        assert_int_equal(resp.content_length, c->length);
    else
        assert_int_equal(resp.content_length, -1);
}

static void check_prefixes(const struct rcase *c)
{
    for (size_t k = 0; k < c->inlen; k++) {
        const char *g = guarded(c->in, k);
        nk_http_response resp;
        int rc = nk_http_parse_response(g, k, &resp, NULL);
        int ok = rc == -EAGAIN || (c->frame == BAD && rc == -EBADMSG);
        if (!ok)
            fail_msg("%s: prefix of %zu bytes gave %d", c->why, k, rc);
    }
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_whole(&cases[i]);
        check_prefixes(&cases[i]);
    }
}

/* Early refusal: a non-HTTP answer is refused from its first wrong byte, not after a timeout. */
static void test_early_reject(void **state)
{
    (void)state;
    nk_http_response resp;
    assert_int_equal(nk_http_parse_response(guarded("S", 1), 1, &resp, NULL), -EBADMSG);
    assert_int_equal(nk_http_parse_response(guarded("HTTX", 4), 4, &resp, NULL), -EBADMSG);
    assert_int_equal(nk_http_parse_response(guarded("HTTP", 4), 4, &resp, NULL), -EAGAIN);
    assert_int_equal(nk_http_parse_response(guarded("", 0), 0, &resp, NULL), -EAGAIN);
    assert_int_equal(nk_http_parse_response(guarded("HTTP/1.1 200 OK\r\nX: \x02", 21), 21, &resp,
                                            NULL),
                     -EBADMSG);
}

/* The fields and the reason are views into the buffer. */
static void test_fields(void **state)
{
    (void)state;
    static const char in[] = "HTTP/1.1 301 Moved Permanently\r\nLocation:  /new \r\n"
                             "content-length: 0\r\nX-A: 1\r\n\r\n";
    const char *g = guarded(in, sizeof in - 1);
    nk_http_response resp;
    assert_int_equal(nk_http_parse_response(g, sizeof in - 1, &resp, NULL), (int)sizeof in - 1);
    assert_int_equal(resp.version_major, 1);
    assert_int_equal(resp.version_minor, 1);
    assert_int_equal(resp.reason.len, strlen("Moved Permanently"));
    assert_memory_equal(resp.reason.p, "Moved Permanently", resp.reason.len);
    assert_int_equal(resp.nheaders, 3);
    const nk_http_header *h = nk_http_response_header(&resp, "LOCATION");
    assert_non_null(h);
    assert_int_equal(h->value.len, 4);
    assert_memory_equal(h->value.p, "/new", 4);
    assert_true(h->value.p >= g && h->value.p < g + sizeof in);
    assert_null(nk_http_response_header(&resp, "Locatio"));
    assert_int_equal(resp.content_length, 0);
}

/* Limits: 100 fields pass, 101 do not; a head of exactly 64 KiB passes, one byte more not. */
/* Requests and responses share one field-line splitter: the same lines give the same names
 * and values, and the same lines are refused by both. */
static void test_fields_as_requests(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "A: b\r\n",          "A:b\r\n",           "A:   b  \t\r\n",     "A:\r\n",
        "A: \t \r\n",        "A: b c\r\n",        "A: b\n",              "X-Y_z~1: v\xe9\r\n",
        "A : b\r\n",         ": b\r\n",           "A\r\n",               "A\t: b\r\n",
        "\xc3\xa9: b\r\n",   "A: b\r\nB:c\r\n",   "A: \"q, r\"\r\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char req_head[256], resp_head[256];
        int rn = snprintf(req_head, sizeof req_head, "GET / HTTP/1.1\r\nHost: h\r\n%s\r\n", lines[i]);
        int sn = snprintf(resp_head, sizeof resp_head, "HTTP/1.1 200 OK\r\nHost: h\r\n%s\r\n", lines[i]);
        nk_http_request req;
        nk_http_response resp;
        int status;
        int rrc = nk_http_parse_request(req_head, (size_t)rn, 0, NULL, &req, &status);
        int src = nk_http_parse_response(resp_head, (size_t)sn, &resp, &status);
        if ((rrc > 0) != (src > 0))
            fail_msg("line %zu: request %d, response %d", i, rrc, src);
        if (rrc <= 0)
            continue;
        assert_int_equal(req.nheaders, resp.nheaders);
        for (size_t k = 0; k < req.nheaders; k++) {
            assert_int_equal(req.headers[k].name.len, resp.headers[k].name.len);
            assert_memory_equal(req.headers[k].name.p, resp.headers[k].name.p, req.headers[k].name.len);
            assert_int_equal(req.headers[k].value.len, resp.headers[k].value.len);
            if (req.headers[k].value.len)
                assert_memory_equal(req.headers[k].value.p, resp.headers[k].value.p,
                                    req.headers[k].value.len);
        }
    }
}

static void test_limits(void **state)
{
    (void)state;
    static char buf[NK_HTTP_RESPONSE_MAX_HEAD + 64];
    nk_http_response *resp = malloc(sizeof *resp);
    assert_non_null(resp);
    for (int nf = 100; nf <= 101; nf++) {
        size_t n = (size_t)snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n");
        for (int i = 0; i < nf; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "X-%d: %d\r\n", i, i);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
        int rc = nk_http_parse_response(guarded(buf, n), n, resp, NULL);
        if (nf == 100)
            assert_int_equal(rc, (int)n);
        else
            assert_int_equal(rc, -EBADMSG);
    }
    for (size_t size = NK_HTTP_RESPONSE_MAX_HEAD; size <= NK_HTTP_RESPONSE_MAX_HEAD + 1; size++) {
        static const char start[] = "HTTP/1.1 200 OK\r\nX: ";
        size_t n = sizeof start - 1;
        memcpy(buf, start, n);
        memset(buf + n, 'a', size - n - 4);
        memcpy(buf + size - 4, "\r\n\r\n", 4);
        int rc = nk_http_parse_response(guarded(buf, size), size, resp, NULL);
        if (size == NK_HTTP_RESPONSE_MAX_HEAD)
            assert_int_equal(rc, (int)size);
        else
            assert_int_equal(rc, -EBADMSG);
        /* The same head without its end, under the limit: still waiting for more. */
        rc = nk_http_parse_response(guarded(buf, size - 4), size - 4, resp, NULL);
        assert_int_equal(rc, -EAGAIN);
    }
    memset(buf, 'a', NK_HTTP_RESPONSE_MAX_HEAD);
    memcpy(buf, "HTTP/1.1 200 OK\r\nX: ", 20);
    assert_int_equal(nk_http_parse_response(guarded(buf, NK_HTTP_RESPONSE_MAX_HEAD),
                                            NK_HTTP_RESPONSE_MAX_HEAD, resp, NULL),
                     -EBADMSG);
    free(resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_early_reject),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_fields_as_requests),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, setup_guard, teardown_guard);
}
