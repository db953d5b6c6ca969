/* libFuzzer target for nk_http_parse_request (src/http/parse.c, header.c).
 *
 * Checks, for any input: the whole buffer, every prefix fed in order with prev_len (byte by
 * byte, as a slow client sends it), and the head alone all give the same answer; a prefix
 * only ever says "need more" or the same error; every view points into the buffer; each
 * buffer is an exact-size allocation so ASan catches any read past its end.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
 *   fuzz/fuzz_http_parse.c src/http/parse.c src/http/header.c src/http/chunked.c src/http/status.c
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netkit/http.h"

static int answer(const uint8_t *data, size_t n, size_t prev, const nk_http_limits *lim,
                  nk_http_request *req)
{
    char *buf = malloc(n ? n : 1);
    if (!buf)
        abort();
    memcpy(buf, data, n);
    int status = -1;
    int rc = nk_http_parse_request(buf, n, prev, lim, req, &status);
    if (rc == -EBADMSG) {
        if (status != 400 && status != 414 && status != 417 && status != 431 && status != 501 &&
            status != 505)
            abort();
        rc = -status;
    } else if (rc == -EAGAIN) {
        if (status != 0)
            abort();
    } else if (rc <= 0 || (size_t)rc > n || req->head_len != (size_t)rc) {
        abort();
    } else {
        /* every view lies inside the head (the one exception: the "/" of an empty path) */
#define IN(s) ((s).p == NULL ? (s).len == 0 : ((s).p >= buf && (s).p + (s).len <= buf + rc))
        if (!IN(req->method_name) || !IN(req->target) || !IN(req->query) || !IN(req->host))
            abort();
        if (!IN(req->path) && !(req->path.len == 1 && req->path.p[0] == '/'))
            abort();
        if (req->nheaders > lim->max_headers || req->nheaders > NK_HTTP_MAX_HEADERS)
            abort();
        for (size_t i = 0; i < req->nheaders; i++)
            if (!IN(req->headers[i].name) || !IN(req->headers[i].value) ||
                req->headers[i].name.len == 0)
                abort();
#undef IN
        /* An unknown method is reported (the server decides), but only a non-empty token. */
        if (req->method_name.len == 0 || req->version_major != 1)
            abort();
        for (size_t i = 0; i < req->method_name.len; i++) {
            unsigned char ch = (unsigned char)req->method_name.p[i];
            if (ch <= 0x20 || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch))
                abort();
        }
        if (req->chunked && req->content_length != -1)
            abort();
    }
    free(buf);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static nk_http_request req;
    nk_http_limits lim;
    /* small limits make the 414/431 paths reachable with short inputs */
    nk_http_limits_default(&lim);
    if (size > 0 && (data[0] & 1)) {
        lim.max_request_line = 64;
        lim.max_head = 256;
        lim.max_headers = 8;
    }

    int whole = answer(data, size, 0, &lim, &req);

    int got = -EAGAIN;
    size_t prev = 0;
    for (size_t n = 1; n <= size && got == -EAGAIN; n++) {
        got = answer(data, n, prev, &lim, &req);
        prev = n;
    }
    if (size > 0 && got != whole)
        abort();

    /* a cut in the middle, first part alone, then the whole with prev_len */
    if (size > 1) {
        size_t k = data[size - 1] % size;
        int a = answer(data, k, 0, &lim, &req);
        if (a != -EAGAIN && a != whole)
            abort();
        if (answer(data, size, a == -EAGAIN ? k : 0, &lim, &req) != whole)
            abort();
    }

    /* the head does not depend on what follows it */
    if (whole > 0 && answer(data, (size_t)whole, 0, &lim, &req) != whole)
        abort();

    /* a field array of max_headers entries from the caller: the same answer, the same fields */
    static nk_http_request mine;
    nk_http_header *fields = malloc(lim.max_headers * sizeof *fields); /* ASan: exact size */
    char *buf = malloc(size ? size : 1);
    if (!fields || !buf)
        abort();
    memcpy(buf, data, size);
    int status = -1;
    int rc = nk_http_parse_request_fields(buf, size, 0, &lim, &mine, fields, lim.max_headers,
                                          &status);
    if (rc == -EBADMSG)
        rc = -status;
    if (rc != whole || (rc > 0 && mine.fields != fields))
        abort();
    if (rc > 0) {
        answer(data, size, 0, &lim, &req); /* req's views dangle now: lengths only */
        if (mine.nheaders != req.nheaders || mine.content_length != req.content_length ||
            mine.chunked != req.chunked || mine.keep_alive != req.keep_alive)
            abort();
        for (size_t i = 0; i < mine.nheaders; i++)
            if (fields[i].name.len != req.headers[i].name.len ||
                fields[i].value.len != req.headers[i].value.len ||
                fields[i].name.p < buf || fields[i].name.p + fields[i].name.len > buf + rc)
                abort();
    }
    free(fields);
    free(buf);
    return 0;
}
