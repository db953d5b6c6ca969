/* The multipart/form-data parser: whole bodies, every split point, byte by byte, and a table
 * of malformed inputs with a reason each. The result is rendered as a transcript
 * ("P name filename|D ...|E|X") so every feeding must give the same text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netkit/http.h"

#define CT "multipart/form-data; boundary=XyZ"

static nk_str S(const char *s)
{
    return (nk_str){s, strlen(s)};
}

/* Feed body in pieces cut at the given offsets (sorted, ncuts of them). Returns the transcript
 * length, or a negative parser error. Data pieces are merged so cuts do not show. */
static int run(const char *ct, const char *body, size_t len, const size_t *cuts, size_t ncuts,
               char *out, size_t outmax)
{
    nk_http_multipart m;
    if (nk_http_multipart_init(&m, S(ct)) < 0)
        return -EINVAL;
    size_t o = 0, pos = 0;
    int last = -1;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        /* copy each piece to its own allocation so over-reads are caught by ASan */
        size_t plen = end - pos;
        char *piece = malloc(plen ? plen : 1);
        memcpy(piece, body + pos, plen);
        size_t i = 0;
        while (i < plen || (plen == 0 && i == 0)) {
            size_t used;
            const char *data;
            size_t dlen;
            int ev = nk_http_multipart_step(&m, piece + i, plen - i, &used, &data, &dlen);
            if (ev < 0) {
                free(piece);
                return ev;
            }
            i += used;
            if (ev == NK_HTTP_MP_NEED)
                break;
            if (ev == NK_HTTP_MP_PART)
                o += (size_t)snprintf(out + o, outmax - o, "P %s %s%s|", m.name, m.filename,
                                      m.has_filename ? "!" : "");
            else if (ev == NK_HTTP_MP_DATA) {
                if (last != NK_HTTP_MP_DATA)
                    o += (size_t)snprintf(out + o, outmax - o, "D ");
                memcpy(out + o, data, dlen);
                o += dlen;
            } else if (ev == NK_HTTP_MP_PART_END) {
                o += (size_t)snprintf(out + o, outmax - o, "|E|");
            } else if (ev == NK_HTTP_MP_DONE) {
                if (last != NK_HTTP_MP_DONE)
                    o += (size_t)snprintf(out + o, outmax - o, "X");
                last = ev;
                break;
            }
            last = ev;
            if (plen == 0)
                break;
        }
        free(piece);
        pos = end;
    }
    out[o] = '\0';
    return (int)o;
}

static const char body1[] =
    "preamble ignored\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"field\"\r\n"
    "\r\n"
    "value\r\n"
    "--XyZ  \r\n" /* transport padding */
    "Content-Disposition: form-data; name=\"file\"; filename=\"a \\\"q\\\".bin\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "\r\n--XyNOT\r\r\n--X\r\n-\r\n--Xy\r\n"
    "--XyZ\r\n"
    "content-disposition: FORM-DATA; filename=empty.txt; name=e\r\n"
    "\r\n"
    "\r\n"
    "--XyZ--\r\n"
    "epilogue --XyZ-- ignored";

static const char want1[] =
    "P field |D value|E|"
    "P file a \"q\".bin!|D \r\n--XyNOT\r\r\n--X\r\n-\r\n--Xy|E|"
    "P e empty.txt!||E|X";

static void test_whole(void **state)
{
    char out[2048];
    int n = run(CT, body1, sizeof body1 - 1, NULL, 0, out, sizeof out);
    assert_true(n > 0);
    assert_string_equal(out, want1);
}

static void test_every_split(void **state)
{
    /* One cut at every position, then two cuts at every pair: the transcript never changes. */
    size_t len = sizeof body1 - 1;
    char out[2048];
    for (size_t a = 0; a <= len; a++) {
        size_t cuts[1] = {a};
        assert_true(run(CT, body1, len, cuts, 1, out, sizeof out) > 0);
        assert_string_equal(out, want1);
        for (size_t b = a; b <= len; b += 7) {
            size_t cuts2[2] = {a, b};
            assert_true(run(CT, body1, len, cuts2, 2, out, sizeof out) > 0);
            assert_string_equal(out, want1);
        }
    }
}

static void test_byte_by_byte(void **state)
{
    size_t len = sizeof body1 - 1;
    size_t *cuts = malloc(len * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    char out[2048];
    assert_true(run(CT, body1, len, cuts, len - 1, out, sizeof out) > 0);
    assert_string_equal(out, want1);
    free(cuts);
}

static void test_no_preamble_and_quoted_boundary(void **state)
{
    static const char b[] = "--a'b:c\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--a'b:c--";
    char out[256];
    assert_true(run("Multipart/Form-Data ; charset=x; boundary=\"a'b:c\"", b, sizeof b - 1, NULL,
                    0, out, sizeof out) > 0);
    assert_string_equal(out, "P x |D 1|E|X");
}

static void test_incomplete(void **state)
{
    /* A body cut before the closing delimiter never reports DONE. */
    static const char b[] = "--XyZ\r\nContent-Disposition: form-data; name=x\r\n\r\nabc\r\n--Xy";
    char out[256];
    assert_true(run(CT, b, sizeof b - 1, NULL, 0, out, sizeof out) > 0);
    assert_string_equal(out, "P x |D abc");
}

static void test_bad_content_types(void **state)
{
    static const struct {
        const char *ct;
        const char *why;
    } bad[] = {
        {"text/plain; boundary=x", "not multipart/form-data"},
        {"multipart/form-data", "no boundary"},
        {"multipart/form-data; boundary=", "empty boundary"},
        {"multipart/form-data; boundary=\"x \"", "boundary ends in a space"},
        {"multipart/form-data; boundary=a\\b", "backslash is not a bchar"},
        {"multipart/form-data; boundary="
         "12345678901234567890123456789012345678901234567890123456789012345678901",
         "71 characters"},
        {"multipart/form-data; boundary=\"unterminated", "open quote"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nk_http_multipart m;
        int r = nk_http_multipart_init(&m, S(bad[i].ct));
        if (r != -EINVAL)
            fail_msg("accepted: %s (%s)", bad[i].ct, bad[i].why);
    }
}

static void test_bad_bodies(void **state)
{
    static const struct {
        const char *body;
        int err;
        const char *why;
    } bad[] = {
        {"--XyZx\r\n\r\n", -EBADMSG, "junk after the delimiter"},
        {"--XyZ\nX: y\r\n\r\n", -EBADMSG, "bare LF after the delimiter"},
        {"--XyZ\r\nNoColon\r\n\r\n", -EBADMSG, "header line without a colon"},
        {"--XyZ\r\nA: b\r\n folded\r\n\r\n", -EBADMSG, "obs-fold"},
        {"--XyZ\r\nA: b\n\r\n", -EBADMSG, "bare LF in the header section"},
        {"--XyZ-x", -EBADMSG, "single dash after the delimiter"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"x\r\n\r\n", -EBADMSG, "open quote"},
    };
    char out[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = run(CT, bad[i].body, strlen(bad[i].body), NULL, 0, out, sizeof out);
        if (r != bad[i].err)
            fail_msg("%s: got %d", bad[i].why, r);
    }
    /* a header section over the limit */
    size_t len = NK_HTTP_MULTIPART_HEAD_MAX + 64;
    char *big = malloc(len + 1);
    memcpy(big, "--XyZ\r\nX: ", 10);
    memset(big + 10, 'a', len - 10);
    big[len] = '\0';
    assert_int_equal(run(CT, big, len, NULL, 0, out, sizeof out), -EMSGSIZE);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_no_preamble_and_quoted_boundary),
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_bad_content_types),
        cmocka_unit_test(test_bad_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
