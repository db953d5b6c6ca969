/* Unit tests for message framing: every input is decoded whole, cut at every point and fed
 * byte by byte, and all of them must give the same messages and the same final status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netkit/frame.h>

/* What decoding one input produced: the messages joined with their lengths, and how it ended. */
struct result {
    nk_buf msgs;   /* each message as a 4-byte host-order length then its bytes */
    size_t count;
    int status;    /* 0, or the error feed/next reported */
    size_t pending;
};

static void result_init(struct result *r)
{
    nk_buf_init(&r->msgs, 0);
    r->count = 0;
    r->status = 0;
    r->pending = 0;
}

/* Take every message available now; returns 0 or the (sticky) error. */
static int drain(nk_frame_decoder *d, struct result *r)
{
    for (int guard = 0; guard < 1000000; guard++) {
        const char *m;
        size_t n;
        int rc = nk_frame_next(d, &m, &n);
        if (rc <= 0)
            return rc;
        uint32_t len = (uint32_t)n;
        assert_int_equal(nk_buf_append(&r->msgs, &len, 4), 0);
        assert_int_equal(nk_buf_append(&r->msgs, m, n), 0);
        r->count++;
    }
    fail_msg("decoder never ran dry");
    return -1;
}

/* Feed data in pieces whose sizes come from cuts (ascending offsets), draining after each. */
static void decode_cuts(nk_frame_kind kind, size_t max, const char *data, size_t len,
                        const size_t *cuts, size_t ncuts, struct result *r)
{
    nk_frame_decoder d;
    nk_frame_decoder_init(&d, kind, max);
    result_init(r);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts && r->status == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        int rc = nk_frame_feed(&d, data + at, end - at);
        int drc = drain(&d, r);
        if (rc < 0) {
            /* A failed feed still hands out the messages complete before the failure, then the
             * same error again: errors are sticky. */
            assert_int_equal(drc, rc);
            assert_int_equal(nk_frame_feed(&d, "x", 1), rc);
            r->status = rc;
        } else if (drc < 0) {
            assert_int_equal(nk_frame_next(&d, &(const char *){NULL}, &(size_t){0}), drc);
            r->status = drc;
        }
        at = end;
    }
    r->pending = nk_frame_pending(&d);
    nk_frame_decoder_free(&d);
}

static void assert_same(const struct result *a, const struct result *b, const char *how)
{
    if (a->status != b->status || a->count != b->count ||
        nk_buf_len(&a->msgs) != nk_buf_len(&b->msgs) ||
        (nk_buf_len(&a->msgs) &&
         memcmp(nk_buf_rptr(&a->msgs), nk_buf_rptr(&b->msgs), nk_buf_len(&a->msgs)) != 0))
        fail_msg("%s differs: status %d/%d, count %zu/%zu", how, a->status, b->status,
                 a->count, b->count);
    if (a->status == 0)
        assert_int_equal(a->pending, b->pending);
}

/* Decode whole, at every single cut point and byte by byte; all must agree. Returns the
 * whole-input result in *whole (caller frees). */
static void decode_all_ways(nk_frame_kind kind, size_t max, const char *data, size_t len,
                            struct result *whole)
{
    decode_cuts(kind, max, data, len, NULL, 0, whole);
    for (size_t cut = 1; cut < len; cut++) {
        struct result r;
        decode_cuts(kind, max, data, len, &cut, 1, &r);
        char how[64];
        snprintf(how, sizeof(how), "cut at %zu", cut);
        assert_same(whole, &r, how);
        nk_buf_free(&r.msgs);
    }
    if (len > 1) {
        size_t *cuts = malloc(len * sizeof(*cuts));
        assert_non_null(cuts);
        for (size_t i = 0; i < len - 1; i++)
            cuts[i] = i + 1;
        struct result r;
        decode_cuts(kind, max, data, len, cuts, len - 1, &r);
        assert_same(whole, &r, "byte by byte");
        nk_buf_free(&r.msgs);
        free(cuts);
    }
}

struct decode_case {
    const char *why;
    nk_frame_kind kind;
    size_t max;
    const char *in;
    size_t inlen;
    const char *out; /* expected messages, each ended by '|' (no '|' inside messages) */
    int status;
    size_t pending;  /* checked when status is 0 */
};

#define S(s) s, sizeof(s) - 1

static const struct decode_case decode_cases[] = {
    {"two lines", NK_FRAME_LINE, 100, S("ab\ncd\n"), "ab|cd|", 0, 0},
    {"CRLF: the CR is dropped", NK_FRAME_LINE, 100, S("ab\r\ncd\r\n"), "ab|cd|", 0, 0},
    {"a CR not before LF stays", NK_FRAME_LINE, 100, S("a\rb\n"), "a\rb|", 0, 0},
    {"only one CR is dropped", NK_FRAME_LINE, 100, S("a\r\r\n"), "a\r|", 0, 0},
    {"empty lines are messages", NK_FRAME_LINE, 100, S("\n\r\n\n"), "|||", 0, 0},
    {"an unfinished line stays pending", NK_FRAME_LINE, 100, S("ab\ncd"), "ab|", 0, 2},
    {"a line of exactly max", NK_FRAME_LINE, 3, S("abc\n"), "abc|", 0, 0},
    {"max plus the CR that will be stripped", NK_FRAME_LINE, 3, S("abc\r\n"), "abc|", 0, 0},
    {"pending max plus CR is not yet over", NK_FRAME_LINE, 3, S("abc\r"), "", 0, 4},
    {"a line over max", NK_FRAME_LINE, 3, S("abcd\n"), "", -EMSGSIZE, 0},
    {"over max with no newline yet", NK_FRAME_LINE, 3, S("abcd"), "", -EMSGSIZE, 0},
    {"messages before the long line survive", NK_FRAME_LINE, 3, S("ab\nc\nabcdef\nx\n"),
     "ab|c|", -EMSGSIZE, 0},
    {"long unfinished tail after good lines", NK_FRAME_LINE, 3, S("ab\nabcdef"), "ab|",
     -EMSGSIZE, 0},
    {"max 0 means no limit", NK_FRAME_LINE, 0, S("abcdefghijklmnop\n"), "abcdefghijklmnop|", 0,
     0},
    {"len32 messages", NK_FRAME_LEN32, 100, S("\0\0\0\2hi\0\0\0\3abc"), "hi|abc|", 0, 0},
    {"len32 zero-length message", NK_FRAME_LEN32, 100, S("\0\0\0\0\0\0\0\1x"), "|x|", 0, 0},
    {"len32 payload may hold newlines and NULs", NK_FRAME_LEN32, 100, S("\0\0\0\3\n\0\r"),
     "\n\0\r|", 0, 0},
    {"len32 partial header pending", NK_FRAME_LEN32, 100, S("\0\0\0\1x\0\0"), "x|", 0, 2},
    {"len32 partial payload pending", NK_FRAME_LEN32, 100, S("\0\0\0\5abc"), "", 0, 7},
    {"len32 exactly max", NK_FRAME_LEN32, 3, S("\0\0\0\3abc"), "abc|", 0, 0},
    {"len32 header over max", NK_FRAME_LEN32, 3, S("\0\0\0\4abcd"), "", -EMSGSIZE, 0},
    {"len32 huge header, no payload needed to fail", NK_FRAME_LEN32, 1000, S("\xff\xff\xff\xff"),
     "", -EMSGSIZE, 0},
    {"len32 good message before a bad header", NK_FRAME_LEN32, 3, S("\0\0\0\2hi\1\0\0\0zz"),
     "hi|", -EMSGSIZE, 0},
};

static void expected_msgs(const char *out, struct result *r)
{
    result_init(r);
    /* Messages end at '|', not at NUL, so one may contain a NUL (but not start with one). */
    const char *p = out;
    for (int guard = 0; guard < 100 && *p; guard++) {
        const char *bar = p;
        while (*bar != '|')
            bar++;
        uint32_t len = (uint32_t)(bar - p);
        assert_int_equal(nk_buf_append(&r->msgs, &len, 4), 0);
        assert_int_equal(nk_buf_append(&r->msgs, p, len), 0);
        r->count++;
        p = bar + 1;
    }
}

static void test_decode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        const struct decode_case *c = &decode_cases[i];
        print_message("decode: %s\n", c->why);
        struct result got, want;
        decode_all_ways(c->kind, c->max, c->in, c->inlen, &got);
        expected_msgs(c->out, &want);
        want.status = c->status;
        want.pending = c->pending;
        assert_same(&want, &got, c->why);
        nk_buf_free(&got.msgs);
        nk_buf_free(&want.msgs);
    }
}

struct encode_case {
    const char *why;
    nk_frame_kind kind;
    const char *msg;
    size_t len;
    size_t max;
    int rc;
    const char *out;
    size_t outlen;
};

static const struct encode_case encode_cases[] = {
    {"line gets a newline", NK_FRAME_LINE, S("hello"), 0, 0, S("hello\n")},
    {"empty line", NK_FRAME_LINE, S(""), 0, 0, S("\n")},
    {"a newline inside a line is refused", NK_FRAME_LINE, S("a\nb"), 0, -EINVAL, S("")},
    {"line over max", NK_FRAME_LINE, S("abcd"), 3, -EMSGSIZE, S("")},
    {"line of exactly max", NK_FRAME_LINE, S("abc"), 3, 0, S("abc\n")},
    {"len32 big-endian header", NK_FRAME_LEN32, S("hi"), 0, 0, S("\0\0\0\2hi")},
    {"len32 empty message", NK_FRAME_LEN32, S(""), 0, 0, S("\0\0\0\0")},
    {"len32 over max", NK_FRAME_LEN32, S("abcd"), 3, -EMSGSIZE, S("")},
    {"len32 carries newlines", NK_FRAME_LEN32, S("a\nb"), 0, 0, S("\0\0\0\3a\nb")},
};

static void test_encode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(encode_cases) / sizeof(encode_cases[0]); i++) {
        const struct encode_case *c = &encode_cases[i];
        print_message("encode: %s\n", c->why);
        nk_buf b;
        nk_buf_init(&b, 0);
        assert_int_equal(nk_buf_append_str(&b, ">"), 0); /* appends, never overwrites */
        assert_int_equal(nk_frame_encode(c->kind, c->msg, c->len, c->max, &b), c->rc);
        assert_int_equal(nk_buf_len(&b), 1 + c->outlen);
        assert_memory_equal(nk_buf_rptr(&b) + 1, c->out, c->outlen);
        nk_buf_free(&b);
    }
    nk_buf b;
    nk_buf_init(&b, 4);
    /* A frame that does not fit the buffer leaves nothing half-written. */
    assert_int_equal(nk_frame_encode(NK_FRAME_LEN32, "x", 1, 0, &b), -ENOBUFS);
    assert_int_equal(nk_buf_len(&b), 0);
    assert_int_equal(nk_frame_encode(NK_FRAME_LINE, "abcd", 4, 0, &b), -ENOBUFS);
    assert_int_equal(nk_buf_len(&b), 0);
    assert_int_equal(nk_frame_encode((nk_frame_kind)7, "x", 1, 0, &b), -EINVAL);
    nk_buf_free(&b);
}

static void test_kind_parse(void **state)
{
    (void)state;
    assert_int_equal(nk_frame_kind_parse("line"), NK_FRAME_LINE);
    assert_int_equal(nk_frame_kind_parse("len32"), NK_FRAME_LEN32);
    assert_int_equal(nk_frame_kind_parse("LEN32"), NK_FRAME_LEN32); /* case does not matter */
    assert_int_equal(nk_frame_kind_parse("len16"), -EINVAL);
    assert_int_equal(nk_frame_kind_parse(""), -EINVAL);
    assert_int_equal(nk_frame_kind_parse(NULL), -EINVAL);
}

/* xorshift64*: a small PRNG whose sequence depends only on the seed, so a failure replays. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void round_trip(nk_frame_kind kind, uint64_t seed)
{
    uint64_t s = seed ? seed : 1;
    enum { NMSG = 300, MAXLEN = 700 };
    nk_buf wire, want;
    nk_buf_init(&wire, 0);
    nk_buf_init(&want, 0);
    size_t count = 0;
    char msg[MAXLEN];
    for (int i = 0; i < NMSG; i++) {
        size_t n = rnd(&s) % 4 == 0 ? 0 : rnd(&s) % MAXLEN;
        for (size_t j = 0; j < n; j++) {
            msg[j] = (char)rnd(&s);
            /* A line cannot carry "\n", and a final "\r" would be taken for CRLF. */
            if (kind == NK_FRAME_LINE && (msg[j] == '\n' || (j == n - 1 && msg[j] == '\r')))
                msg[j] = 'x';
        }
        assert_int_equal(nk_frame_encode(kind, msg, n, MAXLEN, &wire), 0);
        uint32_t len = (uint32_t)n;
        assert_int_equal(nk_buf_append(&want, &len, 4), 0);
        assert_int_equal(nk_buf_append(&want, msg, n), 0);
        count++;
    }
    struct result expect;
    result_init(&expect);
    assert_int_equal(nk_buf_append(&expect.msgs, nk_buf_rptr(&want), nk_buf_len(&want)), 0);
    expect.count = count;

    const char *data = nk_buf_rptr(&wire);
    size_t len = nk_buf_len(&wire);
    for (int round = 0; round < 20; round++) {
        /* Random cut points; round 0 is byte by byte. */
        size_t *cuts = malloc(len * sizeof(*cuts));
        assert_non_null(cuts);
        size_t ncuts = 0;
        for (size_t at = 0; at + 1 < len;) {
            at += round == 0 ? 1 : 1 + rnd(&s) % (round * 100);
            if (at >= len)
                break;
            cuts[ncuts++] = at;
        }
        struct result got;
        decode_cuts(kind, MAXLEN, data, len, cuts, ncuts, &got);
        free(cuts);
        if (got.status != 0 || got.count != count ||
            nk_buf_len(&got.msgs) != nk_buf_len(&expect.msgs) ||
            memcmp(nk_buf_rptr(&got.msgs), nk_buf_rptr(&expect.msgs), nk_buf_len(&got.msgs)))
            fail_msg("round trip failed: kind %d seed %llu round %d (set NK_SEED to replay)",
                     kind, (unsigned long long)seed, round);
        assert_int_equal(got.pending, 0);
        nk_buf_free(&got.msgs);
    }
    nk_buf_free(&expect.msgs);
    nk_buf_free(&wire);
    nk_buf_free(&want);
}

static uint64_t test_seed(void)
{
    const char *env = getenv("NK_SEED");
    if (env)
        return strtoull(env, NULL, 10);
    return (uint64_t)time(NULL);
}

static void test_round_trip(void **state)
{
    (void)state;
    uint64_t seed = test_seed();
    print_message("round trip seed %llu\n", (unsigned long long)seed);
    round_trip(NK_FRAME_LINE, seed);
    round_trip(NK_FRAME_LEN32, seed);
}

static void test_line_scans_once(void **state)
{
    (void)state;
    nk_frame_decoder d;
    nk_frame_decoder_init(&d, NK_FRAME_LINE, 1 << 20);
    const char *m;
    size_t n;
    /* A long line arriving a byte at a time: everything seen stays marked as searched, so no
     * byte is searched twice (O(n) rather than O(n^2)). */
    for (size_t i = 1; i <= 5000; i++) {
        assert_int_equal(nk_frame_feed(&d, "a", 1), 0);
        assert_int_equal(nk_frame_next(&d, &m, &n), 0);
        assert_int_equal(d.scanned, i);
    }
    assert_int_equal(nk_frame_feed(&d, "\nb", 2), 0);
    assert_int_equal(nk_frame_next(&d, &m, &n), 1);
    assert_int_equal(n, 5000);
    assert_int_equal(nk_frame_next(&d, &m, &n), 0);
    assert_int_equal(nk_frame_pending(&d), 1);
    nk_frame_decoder_free(&d);
}

static void test_memory_bounded(void **state)
{
    (void)state;
    /* An over-long line is refused without being buffered. */
    nk_frame_decoder d;
    nk_frame_decoder_init(&d, NK_FRAME_LINE, 100);
    char junk[10000];
    memset(junk, 'j', sizeof(junk));
    assert_int_equal(nk_frame_feed(&d, junk, sizeof(junk)), -EMSGSIZE);
    assert_true(d.in.cap <= 100);
    nk_frame_decoder_free(&d);

    /* An oversized len32 header fails before its payload is stored. */
    nk_frame_decoder_init(&d, NK_FRAME_LEN32, 100);
    char hdr[4] = {0, 0, 0x27, 0x10}; /* 10000 */
    assert_int_equal(nk_frame_feed(&d, hdr, 4), -EMSGSIZE);
    assert_int_equal(nk_frame_feed(&d, junk, sizeof(junk)), -EMSGSIZE);
    assert_int_equal(nk_frame_pending(&d), 0);
    nk_frame_decoder_free(&d);

    /* A long stream of small messages in odd-sized pieces: consumed bytes are reclaimed, so
     * the buffer stays small however much passes through. */
    for (int k = NK_FRAME_LINE; k <= NK_FRAME_LEN32; k++) {
        nk_buf wire;
        nk_buf_init(&wire, 0);
        for (int i = 0; i < 20000; i++)
            assert_int_equal(nk_frame_encode((nk_frame_kind)k, "0123456789", 10, 0, &wire), 0);
        nk_frame_decoder_init(&d, (nk_frame_kind)k, 100);
        size_t msgs = 0, maxcap = 0;
        for (size_t at = 0; at < nk_buf_len(&wire); at += 7) {
            size_t n = nk_buf_len(&wire) - at < 7 ? nk_buf_len(&wire) - at : 7;
            assert_int_equal(nk_frame_feed(&d, nk_buf_rptr(&wire) + at, n), 0);
            const char *m;
            size_t mlen;
            while (nk_frame_next(&d, &m, &mlen) == 1) {
                assert_int_equal(mlen, 10);
                assert_memory_equal(m, "0123456789", 10);
                msgs++;
            }
            if (d.in.cap > maxcap)
                maxcap = d.in.cap;
        }
        assert_int_equal(msgs, 20000);
        assert_true(maxcap <= 128);
        nk_frame_decoder_free(&d);
        nk_buf_free(&wire);
    }
}

static void test_sticky(void **state)
{
    (void)state;
    nk_frame_decoder d;
    nk_frame_decoder_init(&d, NK_FRAME_LINE, 4);
    const char *m;
    size_t n;
    assert_int_equal(nk_frame_feed(&d, "toolong", 7), -EMSGSIZE);
    /* Good input afterwards does not revive the decoder. */
    assert_int_equal(nk_frame_feed(&d, "\nok\n", 4), -EMSGSIZE);
    assert_int_equal(nk_frame_next(&d, &m, &n), -EMSGSIZE);
    assert_int_equal(nk_frame_next(&d, &m, &n), -EMSGSIZE);
    nk_frame_decoder_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_parse),
        cmocka_unit_test(test_encode_table),
        cmocka_unit_test(test_decode_table),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_line_scans_once),
        cmocka_unit_test(test_memory_bounded),
        cmocka_unit_test(test_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
