/* Unit tests for the file-transfer messages (src/frame/xfer.c): round trips, and a table of
 * malformed messages, each with the reason it must be refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <netkit/xfer.h>

static nk_xfer_header sample(const char *name)
{
    nk_xfer_header h;
    memset(&h, 0, sizeof h);
    h.flags = NK_XFER_F_RESUME;
    h.size = 0x0102030405060708ull;
    h.mode = 0644;
    for (int i = 0; i < NK_XFER_HASH_LEN; i++)
        h.sha256[i] = (uint8_t)(i * 7 + 1);
    h.name_len = strlen(name);
    memcpy(h.name, name, h.name_len + 1);
    return h;
}

static void test_header_roundtrip(void **state)
{
    (void)state;
    unsigned char buf[512];
    nk_xfer_header h = sample("report-2024.tar.gz");
    int n = nk_xfer_header_encode(&h, buf, sizeof buf);
    assert_int_equal(n, NK_XFER_HEADER_FIXED + (int)h.name_len);
    assert_int_equal(buf[0], 'H');
    assert_int_equal(buf[4], 0x01); /* size is big-endian */
    assert_int_equal(buf[11], 0x08);
    assert_int_equal(nk_xfer_msg_type(buf, (size_t)n), NK_XFER_MSG_HEADER);
    nk_xfer_header d;
    assert_int_equal(nk_xfer_header_decode(buf, (size_t)n, &d), 0);
    assert_int_equal(d.flags, h.flags);
    assert_true(d.size == h.size);
    assert_int_equal(d.mode, h.mode);
    assert_memory_equal(d.sha256, h.sha256, NK_XFER_HASH_LEN);
    assert_string_equal(d.name, h.name);
    unsigned char again[512];
    assert_int_equal(nk_xfer_header_encode(&d, again, sizeof again), n);
    assert_memory_equal(again, buf, (size_t)n);
    /* Too small a buffer, by one byte. */
    assert_int_equal(nk_xfer_header_encode(&h, buf, (size_t)n - 1), -ENOSPC);
    /* The longest name fits. */
    char longname[NK_XFER_NAME_MAX + 1];
    memset(longname, 'a', NK_XFER_NAME_MAX);
    longname[NK_XFER_NAME_MAX] = '\0';
    h = sample(longname);
    n = nk_xfer_header_encode(&h, buf, sizeof buf);
    assert_int_equal(n, NK_XFER_HEADER_FIXED + NK_XFER_NAME_MAX);
    assert_int_equal(nk_xfer_header_decode(buf, (size_t)n, &d), 0);
}

static void test_names(void **state)
{
    (void)state;
    static const struct { const char *name; int ok; const char *why; } cases[] = {
        {"a", 1, "one letter"},
        {"file.txt", 1, "an extension"},
        {"a.b.c", 1, "single dots inside"},
        {"name with spaces", 1, "spaces are fine"},
        {"caf\xc3\xa9", 1, "UTF-8"},
        {"", 0, "empty"},
        {".", 0, "the directory itself"},
        {"..", 0, "the parent"},
        {"../x", 0, "climbs out"},
        {"a/b", 0, "a path"},
        {"/etc/passwd", 0, "absolute"},
        {"a\\b", 0, "a Windows separator"},
        {".hidden", 0, "leading dot"},
        {"a..b", 0, "a dot-dot inside"},
        {"x..", 0, "a trailing dot-dot"},
        {"tab\there", 0, "a control character"},
        {"new\nline", 0, "a newline"},
        {"del\x7f", 0, "DEL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = nk_xfer_name_valid(cases[i].name, strlen(cases[i].name));
        if (got != cases[i].ok)
            fail_msg("name '%s' (%s): got %d", cases[i].name, cases[i].why, got);
    }
    assert_int_equal(nk_xfer_name_valid("a\0b", 3), 0); /* NUL inside */
    char longname[NK_XFER_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname);
    assert_int_equal(nk_xfer_name_valid(longname, NK_XFER_NAME_MAX), 1);
    assert_int_equal(nk_xfer_name_valid(longname, NK_XFER_NAME_MAX + 1), 0);
    assert_int_equal(nk_xfer_name_valid(NULL, 0), 0);
}

/* Each case: start from a valid header and break one thing. */
static void test_header_malformed(void **state)
{
    (void)state;
    unsigned char good[512];
    nk_xfer_header h = sample("ok.bin");
    int n = nk_xfer_header_encode(&h, good, sizeof good);
    assert_true(n > 0);
    nk_xfer_header d;
    unsigned char b[512];
    struct { size_t off; int val; const char *why; } pokes[] = {
        {0, 'G', "wrong type"},
        {1, 0, "version 0"},
        {1, 2, "version 2"},
        {2, 0x02, "PREFIX without RESUME"},
        {2, 0x04, "unknown flag"},
        {2, 0x80, "unknown high flag"},
        {3, 1, "reserved byte set"},
        {4, 0x80, "size above 2^63-1"},
        {12, 0x01, "mode above 07777"},
        {14, 0x10, "mode 010000"},
        {48, 0x01, "name length longer than the message"},
        {49, 0x07, "name length one longer"},
        {49, 0x05, "name length one shorter (trailing byte)"},
        {50, '.', "name with a leading dot"},
        {51, '/', "name with a slash"},
        {51, '\\', "name with a backslash"},
        {51, 0, "name with a NUL"},
        {51, '\n', "name with a newline"},
    };
    for (size_t i = 0; i < sizeof pokes / sizeof pokes[0]; i++) {
        memcpy(b, good, (size_t)n);
        b[pokes[i].off] = (unsigned char)pokes[i].val;
        if (nk_xfer_header_decode(b, (size_t)n, &d) != -EBADMSG)
            fail_msg("accepted a header with %s", pokes[i].why);
    }
    /* Every truncation, and one extra byte. */
    for (size_t len = 0; len < (size_t)n; len++)
        assert_int_equal(nk_xfer_header_decode(good, len, &d), -EBADMSG);
    memcpy(b, good, (size_t)n);
    b[n] = 'x';
    assert_int_equal(nk_xfer_header_decode(b, (size_t)n + 1, &d), -EBADMSG);
    /* Names with "..": */
    static const char *bad_names[] = {"..", "../x", "a..b", "x/..", ""};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        memcpy(b, good, NK_XFER_HEADER_FIXED);
        size_t nl = strlen(bad_names[i]);
        b[48] = 0;
        b[49] = (unsigned char)nl;
        memcpy(b + NK_XFER_HEADER_FIXED, bad_names[i], nl);
        if (nk_xfer_header_decode(b, NK_XFER_HEADER_FIXED + nl, &d) != -EBADMSG)
            fail_msg("accepted the name '%s'", bad_names[i]);
    }
    /* The encoder refuses what the decoder refuses. */
    nk_xfer_header e = sample("../etc");
    assert_int_equal(nk_xfer_header_encode(&e, b, sizeof b), -EINVAL);
    e = sample("ok");
    e.mode = 010000;
    assert_int_equal(nk_xfer_header_encode(&e, b, sizeof b), -EINVAL);
    e = sample("ok");
    e.flags = 0x40;
    assert_int_equal(nk_xfer_header_encode(&e, b, sizeof b), -EINVAL);
    e = sample("ok");
    e.size = (uint64_t)INT64_MAX + 1;
    assert_int_equal(nk_xfer_header_encode(&e, b, sizeof b), -EINVAL);
    assert_int_equal(nk_xfer_header_decode(NULL, 60, &d), -EBADMSG);
}

static void test_go(void **state)
{
    (void)state;
    unsigned char b[16];
    uint64_t off = 0;
    assert_int_equal(nk_xfer_go_encode(123456789, b, sizeof b), 9);
    assert_int_equal(nk_xfer_msg_type(b, 9), NK_XFER_MSG_GO);
    assert_int_equal(nk_xfer_go_decode(b, 9, &off), 0);
    assert_true(off == 123456789);
    assert_int_equal(nk_xfer_go_decode(b, 8, &off), -EBADMSG);  /* short */
    assert_int_equal(nk_xfer_go_decode(b, 10, &off), -EBADMSG); /* long */
    b[1] = 0x80;
    assert_int_equal(nk_xfer_go_decode(b, 9, &off), -EBADMSG);  /* offset past 2^63-1 */
    b[1] = 0;
    b[0] = 'V';
    assert_int_equal(nk_xfer_go_decode(b, 9, &off), -EBADMSG);  /* wrong type */
    assert_int_equal(nk_xfer_go_encode(0, b, 8), -ENOSPC);
    assert_int_equal(nk_xfer_go_encode((uint64_t)INT64_MAX + 1, b, sizeof b), -EINVAL);
}

static void test_go_prefix_and_restart(void **state)
{
    (void)state;
    unsigned char b[64];
    uint8_t prefix[NK_XFER_HASH_LEN], got[NK_XFER_HASH_LEN];
    for (int i = 0; i < NK_XFER_HASH_LEN; i++)
        prefix[i] = (uint8_t)(0xA0 + i);
    uint64_t off = 0;
    assert_int_equal(nk_xfer_go_prefix_encode(77, prefix, b, sizeof b), NK_XFER_GO_PREFIX_LEN);
    assert_int_equal(nk_xfer_msg_type(b, NK_XFER_GO_PREFIX_LEN), NK_XFER_MSG_GO);
    assert_int_equal(nk_xfer_go_prefix_decode(b, NK_XFER_GO_PREFIX_LEN, &off, got), 0);
    assert_true(off == 77);
    assert_memory_equal(got, prefix, NK_XFER_HASH_LEN);
    /* each form only through its own decoder */
    assert_int_equal(nk_xfer_go_decode(b, NK_XFER_GO_PREFIX_LEN, &off), -EBADMSG);
    assert_int_equal(nk_xfer_go_prefix_decode(b, NK_XFER_GO_LEN, &off, got), -EBADMSG);
    assert_int_equal(nk_xfer_go_prefix_decode(b, NK_XFER_GO_PREFIX_LEN - 1, &off, got), -EBADMSG);
    assert_int_equal(nk_xfer_go_prefix_encode(77, prefix, b, NK_XFER_GO_PREFIX_LEN - 1), -ENOSPC);
    b[1] = 0x80; /* offset past 2^63-1 */
    assert_int_equal(nk_xfer_go_prefix_decode(b, NK_XFER_GO_PREFIX_LEN, &off, got), -EBADMSG);
    assert_int_equal(nk_xfer_restart_encode(b, sizeof b), 1);
    assert_int_equal(nk_xfer_msg_type(b, 1), NK_XFER_MSG_RESTART);
    assert_int_equal(nk_xfer_restart_decode(b, 1), 0);
    assert_int_equal(nk_xfer_restart_decode("RX", 2), -EBADMSG);
    assert_int_equal(nk_xfer_restart_decode("G", 1), -EBADMSG);
    /* PREFIX qualifies RESUME: alone it is refused by the encoder too */
    nk_xfer_header h = sample("a.bin");
    h.flags = NK_XFER_F_PREFIX;
    assert_int_equal(nk_xfer_header_encode(&h, b, sizeof b), -EINVAL);
    h.flags = NK_XFER_F_RESUME | NK_XFER_F_PREFIX;
    assert_true(nk_xfer_header_encode(&h, b, sizeof b) > 0);
}

static void test_verdict(void **state)
{
    (void)state;
    unsigned char b[256];
    char reason[NK_XFER_REASON_MAX + 1];
    int code = -1;
    int n = nk_xfer_verdict_encode(NK_XFER_E_EXISTS, "x.txt exists", b, sizeof b);
    assert_int_equal(n, 2 + 12);
    assert_int_equal(nk_xfer_verdict_decode(b, (size_t)n, &code, reason, sizeof reason), 0);
    assert_int_equal(code, NK_XFER_E_EXISTS);
    assert_string_equal(reason, "x.txt exists");
    n = nk_xfer_verdict_encode(NK_XFER_OK, "", b, sizeof b);
    assert_int_equal(n, 2);
    assert_int_equal(nk_xfer_verdict_decode(b, 2, &code, reason, sizeof reason), 0);
    assert_int_equal(code, NK_XFER_OK);
    assert_string_equal(reason, "");
    /* Malformed verdicts. */
    assert_int_equal(nk_xfer_verdict_decode(b, 1, &code, reason, sizeof reason), -EBADMSG);
    b[1] = NK_XFER_E_MAX + 1;
    assert_int_equal(nk_xfer_verdict_decode(b, 2, &code, reason, sizeof reason), -EBADMSG);
    memcpy(b, "V\x01" "bad\x1b[2J", 10);
    assert_int_equal(nk_xfer_verdict_decode(b, 10, &code, reason, sizeof reason), -EBADMSG);
    memset(b, 'r', sizeof b);
    b[0] = 'V';
    b[1] = 1;
    assert_int_equal(nk_xfer_verdict_decode(b, 2 + NK_XFER_REASON_MAX, &code, reason,
                                            sizeof reason), 0);
    assert_int_equal(nk_xfer_verdict_decode(b, 3 + NK_XFER_REASON_MAX, &code, reason,
                                            sizeof reason), -EBADMSG);
    /* Encoder limits. */
    assert_int_equal(nk_xfer_verdict_encode(99, "x", b, sizeof b), -EINVAL);
    assert_int_equal(nk_xfer_verdict_encode(1, "tab\there", b, sizeof b), -EINVAL);
    assert_int_equal(nk_xfer_verdict_encode(1, "abc", b, 4), -ENOSPC);
}

static void test_types(void **state)
{
    (void)state;
    assert_int_equal(nk_xfer_msg_type("", 0), -EBADMSG);
    assert_int_equal(nk_xfer_msg_type("Dxyz", 4), NK_XFER_MSG_DATA);
    assert_int_equal(nk_xfer_msg_type("Z", 1), -EBADMSG);
    assert_string_equal(nk_xfer_code_name(NK_XFER_E_HASH), "checksum mismatch");
    assert_string_equal(nk_xfer_code_name(1000), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip), cmocka_unit_test(test_names),
        cmocka_unit_test(test_header_malformed), cmocka_unit_test(test_go),
        cmocka_unit_test(test_verdict),          cmocka_unit_test(test_types),
        cmocka_unit_test(test_go_prefix_and_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
