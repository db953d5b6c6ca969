/* Request parser and chunked decoder tests (src/http/parse.c, header.c, chunked.c, status.c).
 *
 * Each case is fed whole, cut at every split point (first part alone, then the whole buffer
 * with prev_len), and byte by byte, always flush against a PROT_NONE guard page so that any
 * read past the end crashes. A prefix may only say "need more" or give the same error as the
 * whole; the whole must always give the same answer.
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

/* ---- guard page ---------------------------------------------------------------------------- */
#define ARENA (64 * 1024)
static char *arena;     /* ARENA readable bytes, then a PROT_NONE page */
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

/* Copy n bytes so that they end exactly at the guard page. */
static const char *guarded(const char *src, size_t n)
{
    assert_true(n <= ARENA);
    char *dst = arena + ARENA - n;
    memmove(dst, src, n);
    return dst;
}

/* ---- request table ------------------------------------------------------------------------- */
#define OK 0 /* the head is the whole of `in` (tail bytes follow it) */
#define ST(s) (-(s))

static const nk_http_limits small = {.max_request_line = 64, .max_head = 256, .max_headers = 4};

struct rcase {
    const char *in; /* the head (or what is sent instead of one) */
    size_t inlen;
    const char *tail; /* bytes after it: a body, a pipelined request */
    size_t tlen;
    int expect;       /* OK, or ST(status) */
    const char *why;
    const nk_http_limits *lim; /* NULL: the defaults */
};

/* Literals may hold NUL bytes, so their length comes from sizeof, not strlen. */
#define C(in, tail, expect, why) {in, sizeof(in) - 1, tail, sizeof(tail) - 1, expect, why, NULL}
#define CL(in, tail, expect, why, lim) {in, sizeof(in) - 1, tail, sizeof(tail) - 1, expect, why, lim}
#define H "Host: a\r\n"
static const struct rcase rcases[] = {
    /* valid */
    C("GET / HTTP/1.1\r\n" H "\r\n", "", OK, "plain GET"),
    C("HEAD /index.html HTTP/1.1\r\n" H "\r\n", "", OK, "HEAD"),
    C("GET /p/a?q=1&r=%20 HTTP/1.1\r\n" H "\r\n", "", OK, "path and query"),
    C("GET http://example.com:8080/x?y HTTP/1.1\r\nHost: other\r\n\r\n", "", OK, "absolute-form"),
    C("GET HTTP://Example.com HTTP/1.1\r\n" H "\r\n", "", OK, "absolute-form, empty path, uppercase scheme"),
    C("GET https://e.com?x HTTP/1.1\r\n" H "\r\n", "", OK, "https absolute-form, query, no path"),
    C("OPTIONS * HTTP/1.1\r\n" H "\r\n", "", OK, "asterisk-form with OPTIONS"),
    C("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "", OK, "authority-form with CONNECT"),
    C("GET /a HTTP/1.1\r\n" H "\r\n", "GET /b HTTP/1.1\r\n" H "\r\n", OK, "pipelined request left unconsumed"),
    C("GET / HTTP/1.1\nHost: a\n\n", "", OK, "bare LF line endings (RFC 9112 2.2 MAY)"),
    C("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\n", "", OK, "mixed CRLF and LF"),
    C("\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", "", OK, "leading empty lines skipped"),
    C("\n\r\nGET / HTTP/1.1\r\n" H "\r\n", "", OK, "leading bare LF empty line"),
    C("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", "", OK, "8 leading empty lines: the limit"),
    C("GET / HTTP/1.0\r\n\r\n", "", OK, "HTTP/1.0 needs no Host"),
    C("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "", OK, "HTTP/1.0 keep-alive"),
    C("GET / HTTP/1.1\r\nHost: \t a.b \t\r\nX:v\r\n\r\n", "", OK, "OWS trimmed, no OWS needed"),
    C("GET / HTTP/1.1\r\nHost:\r\n\r\n", "", ST(400), "empty Host: an http URI with no host"),
    C("GET / HTTP/1.1\r\nHost: :8080\r\n\r\n", "", ST(400), "Host with a port and no host"),
    C("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "", OK, "IPv6 literal Host"),
    C("POST /u HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\n", "hello", OK, "POST with body left unconsumed"),
    C("POST /u HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n", OK, "chunked POST"),
    C("POST /u HTTP/1.1\r\n" H "Transfer-Encoding: Chunked\r\n\r\n", "", OK, "coding names are case-insensitive"),
    C("GET / HTTP/1.1\r\n" H "Connection: Keep-Alive, CLOSE\r\n\r\n", "", OK, "Connection list"),
    C("PUT /x HTTP/1.1\r\n" H "Expect: 100-Continue\r\nContent-Length: 0\r\n\r\n", "", OK, "Expect 100-continue"),
    C("GET /caf\xc3\xa9 HTTP/1.1\r\n" H "X: caf\xc3\xa9\r\n\r\n", "", OK, "obs-text in target and value"),
    C("GET / HTTP/1.2\r\n" H "\r\n", "", OK, "higher minor version answered as 1.1"),
    C("GET / HTTP/1.1\r\n" H "X-Empty:\r\nY: \r\n\r\n", "", OK, "empty field values"),
    C("POST / HTTP/1.1\r\n" H "Content-Length: 007\r\n\r\n", "", OK, "Content-Length leading zeros"),
    C("DELETE /x HTTP/1.1\r\n" H "\r\n", "", OK, "DELETE"),
    C("PATCH /x HTTP/1.1\r\n" H "\r\n", "", OK, "PATCH"),
    C("TRACE /x HTTP/1.1\r\n" H "\r\n", "", OK, "TRACE"),
    C("GET / HTTP/1.1\r\n" H "X-!#$%&'*+-.^_`|~09az: v\"(),/:;<=>?@[\\]{}\r\n\r\n", "", OK, "every tchar in a name, delimiters in a value"),
    C("GET / HTTP/1.1\r\n" H "\r\n", "\x00\x01garbage", OK, "bytes after the head are not looked at"),
    C("GET / HTTP/1.1\r\n" H "X: a\tb  c\r\n\r\n", "", OK, "HTAB and SP inside a value"),

    /* request line */
    C("GET / HTTP/1.1\rX", "", ST(400), "bare CR in request line"),
    C("GET /\r HTTP/1.1\r\n" H "\r\n", "", ST(400), "CR inside target"),
    C("\rGET / HTTP/1.1\r\n" H "\r\n", "", ST(400), "bare CR before request line"),
    C("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", "", ST(400), "9 leading empty lines"),
    C("GET /\0 HTTP/1.1\r\n" H "\r\n", "", ST(400), "NUL in target"),
    C("GE\0T / HTTP/1.1\r\n" H "\r\n", "", ST(400), "NUL in method"),
    C("GET /\x01 HTTP/1.1\r\n" H "\r\n", "", ST(400), "control byte in target"),
    C("GET /\x7f HTTP/1.1\r\n" H "\r\n", "", ST(400), "DEL in target"),
    C("GET /a b HTTP/1.1\r\n" H "\r\n", "", ST(400), "SP inside target"),
    C("GET  / HTTP/1.1\r\n" H "\r\n", "", ST(400), "two SP after method"),
    C("GET /  HTTP/1.1\r\n" H "\r\n", "", ST(400), "two SP before version"),
    C("GET / HTTP/1.1 \r\n" H "\r\n", "", ST(400), "SP after version"),
    C("GET\t/ HTTP/1.1\r\n" H "\r\n", "", ST(400), "HTAB as separator"),
    C(" GET / HTTP/1.1\r\n" H "\r\n", "", ST(400), "empty method"),
    C("GET /\r\n\r\n", "", ST(400), "HTTP/0.9 style: no version"),
    C("GET\r\n\r\n", "", ST(400), "method only"),
    C("GET / HTTP/1.10\r\n" H "\r\n", "", ST(400), "two-digit minor version"),
    C("GET / HTTP/1\r\n" H "\r\n", "", ST(400), "version without minor"),
    C("GET / http/1.1\r\n" H "\r\n", "", ST(400), "lowercase HTTP-name"),
    C("GET / HTTP/1.x\r\n" H "\r\n", "", ST(400), "non-digit minor"),
    C("GET / HTTP/11.1\r\n" H "\r\n", "", ST(400), "two-digit major"),
    C("GET / HTTP/2.0\r\n" H "\r\n", "", ST(505), "HTTP/2.0 over HTTP/1 framing"),
    C("GET / HTTP/0.9\r\n" H "\r\n", "", ST(505), "HTTP/0.9 with a version"),
    C("GET / HTTP/3.1\r\n" H "\r\n", "", ST(505), "HTTP/3.1"),
    C("FOO / HTTP/1.1\r\n" H "\r\n", "", OK, "unknown method: reported, the server decides"),
    C("get / HTTP/1.1\r\n" H "\r\n", "", OK, "methods are case-sensitive: an unknown token"),
    C("G(T / HTTP/1.1\r\n" H "\r\n", "", ST(400), "method not a token"),
    C("GET /a#b HTTP/1.1\r\n" H "\r\n", "", ST(400), "fragment in target"),
    C("GET example.com HTTP/1.1\r\n" H "\r\n", "", ST(400), "authority-form without CONNECT"),
    C("GET * HTTP/1.1\r\n" H "\r\n", "", ST(400), "asterisk-form without OPTIONS"),
    C("CONNECT /x HTTP/1.1\r\n" H "\r\n", "", ST(400), "CONNECT with origin-form"),
    C("CONNECT example.com HTTP/1.1\r\n" H "\r\n", "", ST(400), "CONNECT without port"),
    C("GET ftp://e.com/ HTTP/1.1\r\n" H "\r\n", "", ST(400), "scheme other than http(s)"),
    C("GET http:///x HTTP/1.1\r\n" H "\r\n", "", ST(400), "absolute-form with empty host"),
    C("GET http://u@e.com/ HTTP/1.1\r\n" H "\r\n", "", ST(400), "userinfo in absolute-form"),
    CL("GET /" "0123456789012345678901234567890123456789012345678901234567890123" " HTTP/1.1\r\n" H "\r\n", "", ST(414), "request line over max_request_line", &small),
    C("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "", ST(400), "TLS ClientHello"),
    /* The scanner skips runs of ordinary bytes by table and takes "HTTP/1.1" CRLF in one
     * comparison: what ends a run deep inside it, and a version that reaches the limit, must
     * still be judged as byte by byte. */
    CL("GET /" "012345678901234567890123456789012345678901234567" " HTTP/1.1\r\n" H "\r\n", "", OK, "request line of exactly max_request_line bytes", &small),
    CL("GET /" "0123456789012345678901234567890123456789012345678" " HTTP/1.1\r\n" H "\r\n", "", ST(414), "request line one byte over, its LF the byte over", &small),
    C("GET /0123456789abcdef0123\x01" "456789 HTTP/1.1\r\n" H "\r\n", "", ST(400), "control byte deep in the target"),
    C("GET /0123456789abcdef0123#456789 HTTP/1.1\r\n" H "\r\n", "", ST(400), "fragment deep in the target"),
    C("GETGETGETGETGETGETGETGET(ET / HTTP/1.1\r\n" H "\r\n", "", ST(400), "non-token byte deep in the method"),
    C("GET / HTTP/1.1\r\n" H "X: 0123456789abcdef0123456789\x7f" "abc\r\n\r\n", "", ST(400), "DEL deep in a value"),
    C("GET / HTTP/1.1\r\n" H "X: 0123456789abcdef0123456789\rabc\r\n\r\n", "", ST(400), "bare CR deep in a value"),
    C("GET / HTTP/1.1\r\n" H "X: 0123456789abcdef0123456789\r\n abc\r\n\r\n", "", ST(400), "obs-fold after a long value"),
    C("GET / HTTP/1.1\r\n" H "X-0123456789abcdef0123456789\x00: a\r\n\r\n", "", ST(400), "NUL deep in a name"),


    /* header fields */
    C("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "", ST(400), "space before colon"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding : chunked\r\n\r\n", "", ST(400), "TE with space before colon"),
    C("GET / HTTP/1.1\r\n" H "Ho st: a\r\n\r\n", "", ST(400), "space in field name"),
    C("GET / HTTP/1.1\r\n" H ": v\r\n\r\n", "", ST(400), "empty field name"),
    C("GET / HTTP/1.1\r\n" H "NoColon\r\n\r\n", "", ST(400), "line without colon"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n chunked\r\n\r\n", "", ST(400), "obs-fold with SP"),
    C("GET / HTTP/1.1\r\n" H "X: a\r\n\tb\r\n\r\n", "", ST(400), "obs-fold with HTAB"),
    C("GET / HTTP/1.1\r\n " H "\r\n", "", ST(400), "whitespace before the first field"),
    C("GET / HTTP/1.1\r\nH\xc3\xb3st: a\r\n" H "\r\n", "", ST(400), "UTF-8 in a field name"),
    C("GET / HTTP/1.1\r\n" H "X: a\0b\r\n\r\n", "", ST(400), "NUL in a value"),
    C("GET / HTTP/1.1\r\n" H "X\0: a\r\n\r\n", "", ST(400), "NUL in a name"),
    C("GET / HTTP/1.1\r\n" H "X: a\x01\r\n\r\n", "", ST(400), "control byte in a value"),
    C("GET / HTTP/1.1\r\n" H "X: a\x7f\r\n\r\n", "", ST(400), "DEL in a value"),
    C("GET / HTTP/1.1\r\n" H "X: a\rb\r\n\r\n", "", ST(400), "bare CR inside a value"),
    C("GET / HTTP/1.1\r\n" H "X: a\r\r\n\r\n", "", ST(400), "CR CR LF"),
    C("GET / HTTP/1.1\r\n" H "X\r: a\r\n\r\n", "", ST(400), "bare CR in a name"),
    C("GET / HTTP/1.1\r\n" H "\r\r\n", "", ST(400), "bare CR on the empty line"),
    CL("GET / HTTP/1.1\r\n" H "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", "", ST(431), "too many fields (4 allowed, 5 sent)", &small),
    CL("GET / HTTP/1.1\r\n" H "X: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
     "Y: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
     "Z: 01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n",
     "", ST(431), "head over max_head", &small),

    /* Host */
    C("GET / HTTP/1.1\r\n\r\n", "", ST(400), "HTTP/1.1 without Host"),
    C("GET / HTTP/1.1\r\n" H H "\r\n", "", ST(400), "two Host fields"),
    C("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "", ST(400), "space in Host"),
    C("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "", ST(400), "slash in Host"),
    C("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", "", ST(400), "userinfo in Host"),
    C("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", "", ST(400), "unclosed IP literal"),
    C("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", "", ST(400), "bad port in Host"),
    C("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", "", ST(400), "bad pct-encoding in Host"),

    /* Content-Length and Transfer-Encoding: the smuggling vectors */
    C("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "", ST(400), "CL and TE together"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", "", ST(400), "TE and CL together"),
    C("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", "", ST(400), "duplicate Content-Length"),
    C("POST / HTTP/1.1\r\n" H "Content-Length: 5, 5\r\n\r\n", "", ST(400), "Content-Length list"),
    C("POST / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\n", "", ST(400), "Content-Length with plus sign"),
    C("POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", "", ST(400), "negative Content-Length"),
    C("POST / HTTP/1.1\r\n" H "Content-Length: 5x\r\n\r\n", "", ST(400), "Content-Length trailing garbage"),
    C("POST / HTTP/1.1\r\n" H "Content-Length: x5\r\n\r\n", "", ST(400), "Content-Length leading garbage"),
    C("POST / HTTP/1.1\r\n" H "Content-Length: 0x5\r\n\r\n", "", ST(400), "Content-Length in hex"),
    C("POST / HTTP/1.1\r\n" H "Content-Length: 5 5\r\n\r\n", "", ST(400), "Content-Length with inner space"),
    C("POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", "", ST(400), "empty Content-Length"),
    C("POST / HTTP/1.1\r\n" H "Content-Length: 1234567890123456789\r\n\r\n", "", ST(400), "19-digit Content-Length"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding: xchunked\r\n\r\n", "", ST(400), "xchunked is not chunked"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n", "", ST(400), "chunked not final"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", "", ST(400), "no chunked at all"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n", "", ST(501), "unsupported coding before chunked"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", "", ST(501), "coding list over two fields"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n", "", ST(400), "chunked twice"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "", ST(400), "chunked twice over two fields"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;x=1\r\n\r\n", "", ST(400), "chunked with a parameter"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n\r\n", "", ST(400), "empty Transfer-Encoding"),
    C("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "", ST(400), "Transfer-Encoding in HTTP/1.0"),
    C("POST / HTTP/1.1\r\n" H "Transfer-Encoding: \"chunked\"\r\n\r\n", "", ST(400), "quoted coding"),
    C("GET / HTTP/1.1\r\n" H "Expect: 200-ok\r\n\r\n", "", OK, "unknown expectation: reported"),
};
#undef H

static int parse(const char *in, size_t len, size_t prev, const nk_http_limits *lim,
                 nk_http_request *req, int *status)
{
    const char *p = guarded(in, len);
    return nk_http_parse_request(p, len, prev, lim, req, status);
}

/* The answer as one number: the head length, -EAGAIN, or -status. */
static int answer(const char *in, size_t len, size_t prev, const nk_http_limits *lim,
                  nk_http_request *req)
{
    int status = 0;
    int rc = parse(in, len, prev, lim, req, &status);
    if (rc == -EBADMSG) {
        assert_true(status >= 400 && status <= 599);
        return -status;
    }
    assert_true(rc > 0 || rc == -EAGAIN);
    return rc;
}

static void run_rcase(const struct rcase *c)
{
    static nk_http_request req;
    char buf[2048];
    size_t hlen = c->inlen, tlen = c->tlen;
    size_t len = hlen + tlen;
    assert_true(len < sizeof buf);
    memcpy(buf, c->in, hlen);
    if (tlen)
        memcpy(buf + hlen, c->tail, tlen);
    int want = c->expect == OK ? (int)hlen : c->expect;

    int whole = answer(buf, len, 0, c->lim, &req);
    if (whole != want)
        fail_msg("%s: whole input gave %d, want %d", c->why, whole, want);
    if (whole > 0)
        assert_int_equal(req.head_len, (size_t)whole);

    for (size_t k = 0; k < len; k++) {
        int a = answer(buf, k, 0, c->lim, &req);
        if (a != -EAGAIN && a != whole)
            fail_msg("%s: prefix of %zu bytes gave %d, want -EAGAIN or %d", c->why, k, a, whole);
        /* prev_len promises that those bytes held no complete head: only pass it then */
        int b = answer(buf, len, a == -EAGAIN ? k : 0, c->lim, &req);
        if (b != whole)
            fail_msg("%s: cut at %zu gave %d, want %d", c->why, k, b, whole);
    }

    /* byte by byte, as a slow client sends it */
    int got = -EAGAIN;
    size_t prev = 0, n;
    for (n = 1; n <= len && got == -EAGAIN; n++) {
        got = answer(buf, n, prev, c->lim, &req);
        prev = n;
    }
    if (got != whole)
        fail_msg("%s: byte by byte gave %d, want %d", c->why, got, whole);
}

static void test_request_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rcases / sizeof rcases[0]; i++)
        run_rcase(&rcases[i]);
    assert_true(sizeof rcases / sizeof rcases[0] >= 60);
}

/* ---- what a valid request says ------------------------------------------------------------- */
static void eqs(nk_str s, const char *want)
{
    if (!want) {
        assert_null(s.p);
        return;
    }
    assert_non_null(s.p);
    if (s.len != strlen(want) || memcmp(s.p, want, s.len) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)s.len, s.p, want);
}

static const nk_http_request *parse_ok(const char *in)
{
    static nk_http_request req;
    int st = -1;
    int rc = parse(in, strlen(in), 0, NULL, &req, &st);
    if (rc != (int)strlen(in))
        fail_msg("\"%s\": rc %d status %d", in, rc, st);
    return &req;
}

static void test_request_fields(void **state)
{
    (void)state;
    const nk_http_request *r;

    r = parse_ok("GET /p/a?q=1 HTTP/1.1\r\nHost:  example.com:80 \r\nX-A: b\r\n\r\n");
    assert_int_equal(r->method, NK_HTTP_GET);
    eqs(r->method_name, "GET");
    eqs(r->target, "/p/a?q=1");
    eqs(r->path, "/p/a");
    eqs(r->query, "q=1");
    eqs(r->host, "example.com:80");
    assert_int_equal(r->version_major, 1);
    assert_int_equal(r->version_minor, 1);
    assert_int_equal(r->nheaders, 2);
    eqs(r->headers[0].name, "Host");
    eqs(r->headers[0].value, "example.com:80");
    assert_int_equal(r->content_length, -1);
    assert_int_equal(r->chunked, 0);
    assert_int_equal(r->keep_alive, 1);
    assert_int_equal(r->expect_continue, 0);
    eqs(nk_http_find_header(r, "x-a")->value, "b");
    assert_null(nk_http_find_header(r, "x-b"));

    r = parse_ok("GET /? HTTP/1.1\r\nHost: a\r\n\r\n");
    eqs(r->path, "/");
    eqs(r->query, "");

    r = parse_ok("GET http://Example.com:8080/x?y HTTP/1.1\r\nHost: other\r\n\r\n");
    eqs(r->host, "Example.com:8080"); /* the target wins over Host (RFC 9112 3.2.2) */
    eqs(r->path, "/x");
    eqs(r->query, "y");

    r = parse_ok("GET HTTPS://e.com?q HTTP/1.1\r\nHost: other\r\n\r\n");
    eqs(r->host, "e.com");
    eqs(r->path, "/");
    eqs(r->query, "q");

    r = parse_ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(r->method, NK_HTTP_OPTIONS);
    eqs(r->path, "*");
    eqs(r->query, NULL);

    r = parse_ok("CONNECT [::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(r->method, NK_HTTP_CONNECT);
    eqs(r->host, "[::1]:443");
    assert_int_equal(r->path.len, 0);

    r = parse_ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000123\r\nConnection: close\r\n\r\n");
    assert_int_equal(r->content_length, 123);
    assert_int_equal(r->keep_alive, 0);

    r = parse_ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n");
    assert_int_equal(r->content_length, 999999999999999999LL);

    r = parse_ok("POST / HTTP/1.1\r\nhost: a\r\nTRANSFER-ENCODING: \t,chunked ,\r\n"
                 "Expect: 100-continue\r\n\r\n");
    assert_int_equal(r->chunked, 1);
    assert_int_equal(r->content_length, -1);
    assert_int_equal(r->expect_continue, 1);

    r = parse_ok("GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(r->version_minor, 0);
    assert_int_equal(r->keep_alive, 0);
    assert_null(r->host.p);

    r = parse_ok("GET / HTTP/1.0\r\nConnection: foo, Keep-Alive\r\nExpect: whatever\r\n\r\n");
    assert_int_equal(r->keep_alive, 1);
    assert_int_equal(r->expect_continue, 0); /* HTTP/1.0 expectations are ignored */

    r = parse_ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n");
    assert_int_equal(r->keep_alive, 0);

    r = parse_ok("\r\n\nGET / HTTP/1.1\nHost: a\n\n");
    eqs(r->method_name, "GET");
    eqs(r->headers[0].value, "a");
    assert_int_equal(r->head_len, strlen("\r\n\nGET / HTTP/1.1\nHost: a\n\n"));
}

/* ---- limits at their exact boundaries -------------------------------------------------------- */
static char big[40000];

/* "GET /aaa...a HTTP/1.1\r\n" of exactly n bytes, then the rest */
static size_t make_line(size_t n, const char *rest)
{
    size_t fixed = strlen("GET / HTTP/1.1\r\n");
    assert_true(n >= fixed && n + strlen(rest) < sizeof big);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', n - fixed);
    memcpy(big + 5 + n - fixed, " HTTP/1.1\r\n", 11);
    strcpy(big + n, rest);
    return n + strlen(rest);
}

static void test_limits(void **state)
{
    (void)state;
    nk_http_request req;
    nk_http_limits lim;
    int st;
    nk_http_limits_default(&lim);
    assert_int_equal(lim.max_request_line, 8192);
    assert_int_equal(lim.max_head, 16384);
    assert_int_equal(lim.max_headers, 100);

    /* request line of exactly max_request_line bytes (CRLF included): fine; one more: 414 */
    size_t n = make_line(8192, "Host: a\r\n\r\n");
    assert_int_equal(parse(big, n, 0, &lim, &req, &st), (int)n);
    n = make_line(8193, "Host: a\r\n\r\n");
    assert_int_equal(parse(big, n, 0, &lim, &req, &st), -EBADMSG);
    assert_int_equal(st, 414);
    /* ... and early: 8192 bytes without a line end are already too many */
    assert_int_equal(parse(big, 8192, 0, &lim, &req, &st), -EBADMSG);
    assert_int_equal(st, 414);
    assert_int_equal(parse(big, 8191, 0, &lim, &req, &st), -EAGAIN);

    /* a head of exactly max_head bytes: fine; one more: 431, also before it ends */
    char rest[20000];
    size_t line = 1000, fill = 16384 - line - strlen("Host: a\r\nX: \r\n\r\n");
    strcpy(rest, "Host: a\r\nX: ");
    memset(rest + strlen(rest), 'v', fill);
    strcpy(rest + strlen("Host: a\r\nX: ") + fill, "\r\n\r\n");
    n = make_line(line, rest);
    assert_int_equal(n, 16384);
    assert_int_equal(parse(big, n, 0, &lim, &req, &st), (int)n);
    /* with leading empty lines, which do not count against the head */
    memmove(big + 2, big, n + 1);
    memcpy(big, "\r\n", 2);
    assert_int_equal(parse(big, n + 2, 0, &lim, &req, &st), (int)n + 2);
    rest[12] = 'w';
    memmove(rest + 13, rest + 12, strlen(rest + 12) + 1); /* one byte more */
    n = make_line(line, rest);
    assert_int_equal(parse(big, n, 0, &lim, &req, &st), -EBADMSG);
    assert_int_equal(st, 431);
    assert_int_equal(parse(big, 16384, 0, &lim, &req, &st), -EBADMSG);
    assert_int_equal(st, 431);
    assert_int_equal(parse(big, 16383, 0, &lim, &req, &st), -EAGAIN);
    /* resuming near the end finds the same thing */
    assert_int_equal(parse(big, n, 16383, &lim, &req, &st), -EBADMSG);
    assert_int_equal(st, 431);

    /* header count: max_headers fields pass, one more is 431; never above the hard bound */
    char *p = big;
    p += sprintf(p, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < 100; i++)
        p += sprintf(p, "X%d: %d\r\n", i, i);
    p += sprintf(p, "\r\n");
    assert_int_equal(parse(big, strlen(big), 0, &lim, &req, &st), (int)strlen(big));
    assert_int_equal(req.nheaders, 100);
    sprintf(p - 2, "Y: y\r\n\r\n");
    assert_int_equal(parse(big, strlen(big), 0, &lim, &req, &st), -EBADMSG);
    assert_int_equal(st, 431);
    lim.max_headers = 100000;
    p = big + sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i <= NK_HTTP_MAX_HEADERS; i++)
        p += sprintf(p, "X%d: %d\r\n", i, i);
    sprintf(p, "\r\n");
    assert_int_equal(parse(big, strlen(big), 0, &lim, &req, &st), -EBADMSG);
    assert_int_equal(st, 431);

    /* NULL limits mean the defaults */
    assert_int_equal(nk_http_parse_request("GET / HTTP/1.0\r\n\r\n", 18, 0, NULL, &req, &st), 18);
}

/* Garbage is refused at once, without waiting for a line end or the head's end. */
static void test_early_reject(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *why;
    } cases[] = {
#define E(s, why) {s, sizeof(s) - 1, why}
        E("\x16\x03\x01", "TLS record"),
        E("GET /\0", "NUL in target"),
        E("GE\x01", "control byte in method"),
        E("GET  ", "double SP"),
        E("GET / HTTP/1.1x", "junk after version"),
        E("GET / HTTP/1.1\r\nHost: a\0", "NUL in a field"),
        E("GET / HTTP/1.1\r\nHost: a\rb", "bare CR in a field"),
        E("GET / HTTP/1.1\r\nX: a\r\n b", "obs-fold"),
        E("GET / HTTP/1.1\r\n ", "whitespace before the first field"),
        E("GET / ht", "lowercase version"),
        E("GET /#", "fragment"),
        E("\r\r", "bare CR before the request line"),
#undef E
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nk_http_request req;
        int st = 0;
        int rc = parse(cases[i].in, cases[i].len, 0, NULL, &req, &st);
        if (rc != -EBADMSG || st != 400)
            fail_msg("%s: rc %d status %d, want -EBADMSG 400", cases[i].why, rc, st);
    }
}

/* A server cannot know a request is complete from the buffer's tail; a second request in the
 * same buffer must be parseable from where the first head ends. */
static void test_pipeline(void **state)
{
    (void)state;
    const char *in = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: b\r\n"
                     "Content-Length: 2\r\n\r\nhiGET /c HTTP/1.0\r\n\r\n";
    size_t len = strlen(in), off = 0;
    const char *expect[] = {"/a", "/b", "/c"};
    nk_http_request req;
    int st;
    for (int i = 0; i < 3; i++) {
        int rc = nk_http_parse_request(in + off, len - off, 0, NULL, &req, &st);
        assert_true(rc > 0);
        eqs(req.path, expect[i]);
        off += (size_t)rc + (req.content_length > 0 ? (size_t)req.content_length : 0);
    }
    assert_int_equal(off, len);
}

/* ---- chunked bodies -------------------------------------------------------------------------- */
struct ccase {
    const char *in;
    size_t len;
    int expect;          /* 2 complete, 0 needs more, -EBADMSG, -EFBIG */
    const char *decoded; /* the body bytes decoded (before the error, if any) */
    size_t dlen;
    size_t used;         /* bytes consumed when complete (input after them is not used) */
    uint64_t max;
    const char *why;
};
#define CC(in, expect, dec, used, max, why) {in, sizeof(in) - 1, expect, dec, sizeof(dec) - 1, used, max, why}
#define BIG UINT64_MAX
static const struct ccase ccases[] = {
    CC("5\r\nhello\r\n0\r\n\r\n", 2, "hello", 15, BIG, "one chunk"),
    CC("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 2, "hello world", 26, BIG, "two chunks"),
    CC("0\r\n\r\n", 2, "", 5, BIG, "empty body"),
    CC("000\r\n\r\n", 2, "", 7, BIG, "last-chunk of several zeros"),
    CC("A\r\n0123456789\r\n0\r\n\r\n", 2, "0123456789", 20, BIG, "uppercase hex"),
    CC("a\r\n0123456789\r\n0\r\n\r\n", 2, "0123456789", 20, BIG, "lowercase hex"),
    CC("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 2, "hello", 15, BIG, "pipelined bytes left alone"),
    CC("5;name=value\r\nhello\r\n0;x\r\n\r\n", 2, "hello", 28, BIG, "extensions ignored"),
    CC("5 ; a = b ; c=\"q\\\"d\"\r\nhello\r\n0\r\n\r\n", 2, "hello", 34, BIG, "extensions with BWS and a quoted-string"),
    CC("5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\n\r\n", 2, "hello", 31, BIG, "trailer fields"),
    CC("5\r\nhello\r\n0\r\n\r\n", 2, "hello", 15, 5, "exactly at the limit"),
    CC("0000000000000010\r\n0123456789abcdef\r\n0\r\n\r\n", 2, "0123456789abcdef", 41, BIG, "16 hex digits"),
    CC("5\r\nhel", 0, "hel", 0, BIG, "truncated data"),
    CC("5\r\nhello\r\n0\r\n", 0, "hello", 0, BIG, "no final CRLF yet"),
    CC("", 0, "", 0, BIG, "nothing yet"),
    CC("x\r\n", -EBADMSG, "", 0, BIG, "bad hex"),
    CC("\r\n", -EBADMSG, "", 0, BIG, "empty size"),
    CC("-5\r\nhello\r\n0\r\n\r\n", -EBADMSG, "", 0, BIG, "negative size"),
    CC("+5\r\nhello\r\n0\r\n\r\n", -EBADMSG, "", 0, BIG, "size with plus sign"),
    CC("0x5\r\nhello\r\n0\r\n\r\n", -EBADMSG, "", 0, BIG, "0x prefix"),
    CC("00000000000000010\r\n", -EBADMSG, "", 0, BIG, "17 hex digits"),
    CC("ffffffffffffffffff\r\n", -EBADMSG, "", 0, BIG, "overflow"),
    CC("5\nhello\r\n0\r\n\r\n", -EBADMSG, "", 0, BIG, "bare LF after size"),
    CC("5\r\nhello\n0\r\n\r\n", -EBADMSG, "hello", 0, BIG, "bare LF after data"),
    CC("5\r\nhelloX\r\n0\r\n\r\n", -EBADMSG, "hello", 0, BIG, "data longer than its size"),
    CC("5\r\nhello\r\n0\r\n\n", -EBADMSG, "hello", 0, BIG, "bare LF at the end"),
    CC("5\r\nhello\r\n0\r\nX: y\n\r\n", -EBADMSG, "hello", 0, BIG, "bare LF after a trailer"),
    CC("5\rhello", -EBADMSG, "", 0, BIG, "bare CR after size"),
    CC("5 \r\nhello\r\n0\r\n\r\n", -EBADMSG, "", 0, BIG, "whitespace after size without extension"),
    CC("5;\r\nhello\r\n0\r\n\r\n", -EBADMSG, "", 0, BIG, "empty extension name"),
    CC("5;a=\r\nhello\r\n0\r\n\r\n", -EBADMSG, "", 0, BIG, "empty extension value"),
    CC("5;a=\"x\r\nhello\r\n0\r\n\r\n", -EBADMSG, "", 0, BIG, "unterminated quoted-string"),
    CC("5;a\0\r\nhello\r\n0\r\n\r\n", -EBADMSG, "", 0, BIG, "NUL in extension"),
    CC("5\r\nhello\r\n0\r\nX : y\r\n\r\n", -EBADMSG, "hello", 0, BIG, "space before colon in trailer"),
    CC("5\r\nhello\r\n0\r\n y\r\n\r\n", -EBADMSG, "hello", 0, BIG, "obs-fold in trailer"),
    CC("5\r\nhello\r\n0\r\nX: a\0\r\n\r\n", -EBADMSG, "hello", 0, BIG, "NUL in trailer value"),
    CC("5\r\nhello\r\n0\r\nnocolon\r\n\r\n", -EBADMSG, "hello", 0, BIG, "trailer without colon"),
    CC("6\r\nhello!\r\n0\r\n\r\n", -EFBIG, "", 0, 5, "over the limit: refused before any data"),
    CC("5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n", -EFBIG, "hello", 0, 5, "second chunk over the limit"),
    CC("ffffffffffffffff\r\n", -EFBIG, "", 0, BIG - 1, "largest size over a large limit"),
};

/* Decode in[0..len) fed in pieces of at most step bytes (0: cut once at cut). */
static int decode(const struct ccase *c, size_t cut, size_t step, char *out, size_t *olen,
                  size_t *used)
{
    nk_http_chunked ch;
    nk_http_chunked_init(&ch, c->max);
    size_t off = 0;
    int rc = 0;
    *olen = 0;
    while (off <= c->len) {
        size_t end = step ? (off + step < c->len ? off + step : c->len) : (off < cut ? cut : c->len);
        /* feed in[off..end) flush against the guard page, until it is used up */
        const char *p = guarded(c->in + off, end - off);
        size_t avail = end - off, consumed;
        const char *data;
        size_t dlen;
        for (;;) {
            rc = nk_http_chunked_step(&ch, p, avail, &consumed, &data, &dlen);
            assert_true(consumed <= avail);
            if (rc == 1) {
                assert_true(data >= p && data + dlen <= p + avail && dlen > 0);
                memcpy(out + *olen, data, dlen);
                *olen += dlen;
            }
            p += consumed;
            avail -= consumed;
            off += consumed;
            if (rc != 1)
                break;
        }
        if (rc != 0) {
            *used = off;
            return rc;
        }
        assert_int_equal(avail, 0);
        if (end == c->len)
            break;
    }
    *used = off;
    return rc;
}

static void check_decode(const struct ccase *c, int rc, const char *out, size_t olen,
                         size_t used, const char *how, size_t at)
{
    if (rc != c->expect)
        fail_msg("%s (%s %zu): rc %d, want %d", c->why, how, at, rc, c->expect);
    if (olen != c->dlen || memcmp(out, c->decoded, olen) != 0)
        fail_msg("%s (%s %zu): decoded \"%.*s\"", c->why, how, at, (int)olen, out);
    if (rc == 2 && used != c->used)
        fail_msg("%s (%s %zu): used %zu, want %zu", c->why, how, at, used, c->used);
}

static void test_chunked_table(void **state)
{
    (void)state;
    char out[256];
    size_t olen, used;
    for (size_t i = 0; i < sizeof ccases / sizeof ccases[0]; i++) {
        const struct ccase *c = &ccases[i];
        int rc = decode(c, c->len, 0, out, &olen, &used);
        check_decode(c, rc, out, olen, used, "whole", 0);
        for (size_t k = 0; k <= c->len; k++) {
            rc = decode(c, k, 0, out, &olen, &used);
            check_decode(c, rc, out, olen, used, "cut at", k);
        }
        rc = decode(c, 0, 1, out, &olen, &used);
        check_decode(c, rc, out, olen, used, "byte by byte", 1);
    }
}

static void test_chunked_sticky(void **state)
{
    (void)state;
    nk_http_chunked ch;
    size_t consumed, dlen;
    const char *data;
    nk_http_chunked_init(&ch, 100);
    assert_int_equal(nk_http_chunked_step(&ch, "z", 1, &consumed, &data, &dlen), -EBADMSG);
    assert_int_equal(consumed, 0);
    assert_int_equal(nk_http_chunked_step(&ch, "0\r\n\r\n", 5, &consumed, &data, &dlen), -EBADMSG);
    nk_http_chunked_init(&ch, 100);
    assert_int_equal(nk_http_chunked_step(&ch, "0\r\n\r\nX", 6, &consumed, &data, &dlen), 2);
    assert_int_equal(consumed, 5);
    assert_int_equal(nk_http_chunked_step(&ch, "X", 1, &consumed, &data, &dlen), 2);
    assert_int_equal(consumed, 0);
    assert_int_equal(ch.total, 0);

    /* a size line with 4 KiB of extensions is too long */
    static char line[5000];
    memset(line, 'a', sizeof line);
    memcpy(line, "1;", 2);
    nk_http_chunked_init(&ch, 100);
    assert_int_equal(nk_http_chunked_step(&ch, line, sizeof line, &consumed, &data, &dlen), -EBADMSG);
    assert_int_equal(consumed, 4096);

    /* so is a trailer section over 16 KiB */
    static char tr[20000];
    memset(tr, 'v', sizeof tr);
    memcpy(tr, "0\r\nX:", 5);
    nk_http_chunked_init(&ch, 100);
    assert_int_equal(nk_http_chunked_step(&ch, tr, sizeof tr, &consumed, &data, &dlen), -EBADMSG);
    assert_int_equal(consumed, 3 + 16384);
}

/* ---- names ------------------------------------------------------------------------------------ */
static void test_names(void **state)
{
    (void)state;
    static const int codes[] = {100, 101, 200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303,
                                304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408,
                                409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426, 431,
                                500, 501, 502, 503, 504, 505};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        assert_true(nk_http_reason(codes[i])[0] != '\0');
    assert_string_equal(nk_http_reason(404), "Not Found");
    assert_string_equal(nk_http_reason(413), "Content Too Large");
    assert_string_equal(nk_http_reason(505), "HTTP Version Not Supported");
    assert_string_equal(nk_http_reason(306), "");
    assert_string_equal(nk_http_reason(999), "");
    assert_string_equal(nk_http_reason(-1), "");
    assert_string_equal(nk_http_method_name(NK_HTTP_GET), "GET");
    assert_string_equal(nk_http_method_name(NK_HTTP_CONNECT), "CONNECT");
    assert_string_equal(nk_http_method_name(NK_HTTP_UNKNOWN), "");
}

static void test_list_has(void **state)
{
    (void)state;
    nk_str v = {"keep-alive, Upgrade ,,\tclose", strlen("keep-alive, Upgrade ,,\tclose")};
    assert_true(nk_http_list_has(v, "close"));
    assert_true(nk_http_list_has(v, "upgrade"));
    assert_true(nk_http_list_has(v, "KEEP-ALIVE"));
    assert_false(nk_http_list_has(v, "clos"));
    assert_false(nk_http_list_has(v, "alive"));
    nk_str w = {"unclosed", 8};
    assert_false(nk_http_list_has(w, "close"));
    nk_str e = {NULL, 0};
    assert_false(nk_http_list_has(e, "close"));
}

/* Policy is the server's: an unknown method and an unknown expectation are reported. */
static void test_reported_not_refused(void **state)
{
    (void)state;
    nk_http_request req;
    int st = 0;
    const char *a = "PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(nk_http_parse_request(a, strlen(a), 0, NULL, &req, &st), (int)strlen(a));
    assert_int_equal(req.method, NK_HTTP_UNKNOWN);
    assert_int_equal(req.method_name.len, 5);
    assert_memory_equal(req.method_name.p, "PURGE", 5);
    assert_int_equal(req.expect_unknown, 0);
    const char *b = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n";
    assert_int_equal(nk_http_parse_request(b, strlen(b), 0, NULL, &req, &st), (int)strlen(b));
    assert_int_equal(req.expect_unknown, 1);
    assert_int_equal(req.expect_continue, 0);
    const char *c = "POST / HTTP/1.0\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n";
    assert_int_equal(nk_http_parse_request(c, strlen(c), 0, NULL, &req, &st), (int)strlen(c));
    assert_int_equal(req.expect_unknown, 0); /* HTTP/1.0: expectations are ignored */
}

/* A head of "GET / HTTP/1.1", Host and then X-i fields up to nfields in all, into buf. */
static size_t many_fields(char *buf, size_t cap, size_t nfields)
{
    size_t n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (size_t i = 1; i < nfields; i++)
        n += (size_t)snprintf(buf + n, cap - n, "X-%zu: %zu\r\n", i, i);
    n += (size_t)snprintf(buf + n, cap - n, "\r\n");
    assert_true(n < cap);
    return n;
}

static void test_caller_sized_fields(void **state)
{
    (void)state;
    static char buf[8192];
    static nk_http_header fields[201];
    nk_http_request req;
    int st = -1;
    /* Exactly the capacity (200, above max_headers' default and NK_HTTP_MAX_HEADERS). */
    size_t n = many_fields(buf, sizeof buf, 200);
    assert_int_equal(nk_http_parse_request_fields(buf, n, 0, NULL, &req, fields, 200, &st), (int)n);
    assert_int_equal(req.nheaders, 200);
    assert_ptr_equal(req.fields, fields);
    assert_ptr_equal(nk_http_fields(&req), fields);
    eqs(fields[0].name, "Host");
    eqs(req.host, "h");
    eqs(nk_http_find_header(&req, "x-199")->value, "199");
    /* One more than the capacity: refused as too many fields, and nothing written past it. */
    fields[200].name.p = NULL;
    n = many_fields(buf, sizeof buf, 201);
    st = 0;
    assert_int_equal(nk_http_parse_request_fields(buf, n, 0, NULL, &req, fields, 200, &st),
                     -EBADMSG);
    assert_int_equal(st, 431);
    assert_null(fields[200].name.p);
    /* Capacity 0: only heads without fields. */
    const char *bare = "GET / HTTP/1.0\r\n\r\n";
    assert_int_equal(nk_http_parse_request_fields(bare, strlen(bare), 0, NULL, &req, NULL, 0, &st),
                     (int)strlen(bare));
    assert_int_equal(req.nheaders, 0);
    assert_null(nk_http_find_header(&req, "Host"));
    const char *one = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(nk_http_parse_request_fields(one, strlen(one), 0, NULL, &req, NULL, 0, &st),
                     -EBADMSG);
    assert_int_equal(st, 431);
    st = -1;
    assert_int_equal(nk_http_parse_request_fields(one, strlen(one), 0, NULL, &req, NULL, 3, &st),
                     -EINVAL);
    assert_int_equal(st, 0);
    /* Framing comes from the caller's array too; a head in pieces resumes as before. */
    const char *post = "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n";
    nk_http_header three[3];
    assert_int_equal(nk_http_parse_request_fields(post, 20, 0, NULL, &req, three, 3, &st),
                     -EAGAIN);
    assert_int_equal(nk_http_parse_request_fields(post, strlen(post), 20, NULL, &req, three, 3, &st),
                     (int)strlen(post));
    assert_int_equal(req.content_length, 12);
    assert_int_equal(req.nheaders, 2);
    /* The old call on the same request goes back to its own array. */
    assert_int_equal(nk_http_parse_request(one, strlen(one), 0, NULL, &req, &st), (int)strlen(one));
    assert_null(req.fields);
    eqs(req.headers[0].name, "Host");
    eqs(nk_http_find_header(&req, "host")->value, "h");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reported_not_refused),
        cmocka_unit_test(test_request_table),  cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_limits),         cmocka_unit_test(test_early_reject),
        cmocka_unit_test(test_pipeline),       cmocka_unit_test(test_chunked_table),
        cmocka_unit_test(test_chunked_sticky), cmocka_unit_test(test_names),
        cmocka_unit_test(test_list_has),       cmocka_unit_test(test_caller_sized_fields),
    };
    return cmocka_run_group_tests(tests, setup_guard, teardown_guard);
}
