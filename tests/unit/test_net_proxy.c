/* The PROXY protocol parser: v1 and v2 headers, every prefix of each (a proper prefix of a
 * valid header is -EAGAIN, and a malformed one is refused no later than when complete),
 * limits, TLVs, and address ranges. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "netkit/proxy.h"

static const unsigned char SIG[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* Every proper prefix of a valid header asks for more; the whole parses to its length, also
 * with bytes after it (which are not consumed). */
static void check_every_cut(const unsigned char *h, size_t len, nk_proxy_info *out)
{
    for (size_t i = 0; i < len; i++) {
        int r = nk_proxy_parse(h, i, out);
        if (r != -EAGAIN)
            fail_msg("prefix of %zu of %zu bytes: %d, want -EAGAIN", i, len, r);
    }
    unsigned char more[2048];
    memcpy(more, h, len);
    memcpy(more + len, "GET / HTTP/1.1\r\n", 16);
    assert_int_equal(nk_proxy_parse(more, len + 16, out), (int)len);
    assert_int_equal(nk_proxy_parse(h, len, out), (int)len);
}

static void test_v1_tcp4(void **state)
{
    (void)state;
    const char *h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n";
    nk_proxy_info pi;
    check_every_cut((const unsigned char *)h, strlen(h), &pi);
    assert_int_equal(pi.version, 1);
    assert_int_equal(pi.local, 0);
    assert_int_equal(pi.family, AF_INET);
    unsigned char want[4] = {192, 0, 2, 7}, dst[4] = {198, 51, 100, 1};
    assert_memory_equal(pi.src_ip, want, 4);
    assert_memory_equal(pi.dst_ip, dst, 4);
    assert_int_equal(pi.src_port, 56324);
    assert_int_equal(pi.dst_port, 443);
}

static void test_v1_tcp6_and_unknown(void **state)
{
    (void)state;
    nk_proxy_info pi;
    const char *h = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
    check_every_cut((const unsigned char *)h, strlen(h), &pi);
    assert_int_equal(pi.family, AF_INET6);
    unsigned char want[16];
    inet_pton(AF_INET6, "2001:db8::1", want);
    assert_memory_equal(pi.src_ip, want, 16);
    assert_int_equal(pi.src_port, 65535);
    assert_int_equal(pi.dst_port, 0);

    h = "PROXY UNKNOWN\r\n";
    check_every_cut((const unsigned char *)h, strlen(h), &pi);
    assert_int_equal(pi.local, 1);
    assert_int_equal(pi.family, AF_UNSPEC);
    h = "PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n";
    check_every_cut((const unsigned char *)h, strlen(h), &pi);
    assert_int_equal(pi.local, 1);
}

static void test_v1_longest(void **state)
{
    (void)state;
    /* The specification's worst case is exactly 107 bytes. */
    const char *h = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(h), 104); /* the longest real one; pad UNKNOWN to 107 below */
    nk_proxy_info pi;
    check_every_cut((const unsigned char *)h, strlen(h), &pi);
    char buf[200];
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "PROXY UNKNOWN ", 14);
    memcpy(buf + 105, "\r\n", 2); /* 107 bytes */
    assert_int_equal(nk_proxy_parse(buf, 107, &pi), 107);
    memcpy(buf + 105, "a\r\n", 3); /* 108 */
    assert_int_equal(nk_proxy_parse(buf, 108, &pi), -EINVAL);
    assert_int_equal(nk_proxy_parse(buf, 107, &pi), -EINVAL); /* CR at the 107th byte */
    memset(buf + 14, 'a', 150);
    assert_int_equal(nk_proxy_parse(buf, 150, &pi), -EINVAL); /* no CRLF in 107 bytes */
    assert_int_equal(nk_proxy_parse(buf, 106, &pi), -EAGAIN);
}

static void test_v1_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\n",    /* LF alone */
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\rX",   /* CR without LF */
        "PROXY TCP4  192.0.2.7 198.51.100.1 56324 443\r\n", /* two spaces */
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",      /* a field missing */
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443 1\r\n", /* one too many */
        "PROXY TCP4 192.0.2.7 198.51.100.1 056324 443\r\n", /* leading zero */
        "PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",  /* port past 65535 */
        "PROXY TCP4 192.0.2.256 198.51.100.1 1 443\r\n",    /* not an address */
        "PROXY TCP4 ::1 ::1 1 2\r\n",                       /* family mismatch */
        "PROXY TCP6 192.0.2.7 198.51.100.1 1 2\r\n",
        "PROXY TCP5 192.0.2.7 198.51.100.1 1 2\r\n",        /* no such protocol */
        "PROXY UNKNOWNX\r\n",
        "PROXY tcp4 192.0.2.7 198.51.100.1 1 2\r\n",        /* case matters */
        "PROXY\r\n",
        "proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        "GET / HTTP/1.1\r\n\r\n",                            /* plain HTTP */
        "\x16\x03\x01\x02\x00",                              /* a TLS ClientHello */
        "PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n",               /* trailing space */
        "PROXY TCP4 1.2.3.4 1.2.3.4 1 -2\r\n",
    };
    nk_proxy_info pi;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        size_t len = strlen(bad[k]);
        int r = nk_proxy_parse(bad[k], len, &pi);
        if (r != -EINVAL)
            fail_msg("case %zu: %d, want -EINVAL", k, r);
        /* No prefix of it parses as a whole header either. */
        for (size_t i = 0; i < len; i++)
            if (nk_proxy_parse(bad[k], i, &pi) > 0)
                fail_msg("case %zu parsed at %zu", k, i);
    }
    /* Refused at the first byte that cannot belong to a header. */
    assert_int_equal(nk_proxy_parse("G", 1, &pi), -EINVAL);
    assert_int_equal(nk_proxy_parse("\x16", 1, &pi), -EINVAL);
    assert_int_equal(nk_proxy_parse("PROXY X", 7, &pi), -EINVAL);
    assert_int_equal(nk_proxy_parse("PROXY TCP4 1.2.3.4\x01", 19, &pi), -EINVAL);
}

static size_t v2(unsigned char *b, unsigned char vc, unsigned char fp, const void *body,
                 size_t blen)
{
    memcpy(b, SIG, 12);
    b[12] = vc;
    b[13] = fp;
    b[14] = (unsigned char)(blen >> 8);
    b[15] = (unsigned char)blen;
    memcpy(b + 16, body, blen);
    return 16 + blen;
}

static void test_v2_inet(void **state)
{
    (void)state;
    unsigned char b[2048], body[64] = {203, 0, 113, 9, 10, 0, 0, 1, 0xdc, 0x04, 0x01, 0xbb};
    nk_proxy_info pi;
    size_t n = v2(b, 0x21, 0x11, body, 12);
    check_every_cut(b, n, &pi);
    assert_int_equal(pi.version, 2);
    assert_int_equal(pi.local, 0);
    assert_int_equal(pi.family, AF_INET);
    assert_memory_equal(pi.src_ip, body, 4);
    assert_int_equal(pi.src_port, 0xdc04);
    assert_int_equal(pi.dst_port, 443);

    /* With TLVs after the addresses: skipped, each must fit. */
    memcpy(body + 12, "\x03\x00\x04\x01\x02\x03\x04" "\x04\x00\x00", 10); /* CRC32C, NOOP */
    n = v2(b, 0x21, 0x11, body, 22);
    check_every_cut(b, n, &pi);
    memcpy(body + 12, "\x03\x00\x05\x01\x02\x03\x04" "\x04\x00\x00", 10); /* overruns */
    n = v2(b, 0x21, 0x11, body, 22);
    assert_int_equal(nk_proxy_parse(b, n, &pi), -EINVAL);
    n = v2(b, 0x21, 0x11, body, 14); /* 2 bytes: no room for a TLV's head */
    assert_int_equal(nk_proxy_parse(b, n, &pi), -EINVAL);
}

static void test_v2_inet6_local_unspec(void **state)
{
    (void)state;
    unsigned char b[2048], body[64] = {0};
    nk_proxy_info pi;
    inet_pton(AF_INET6, "2001:db8::42", body);
    inet_pton(AF_INET6, "2001:db8::1", body + 16);
    body[32] = 0x12;
    body[33] = 0x34;
    body[35] = 80;
    size_t n = v2(b, 0x21, 0x21, body, 36);
    check_every_cut(b, n, &pi);
    assert_int_equal(pi.family, AF_INET6);
    assert_memory_equal(pi.src_ip, body, 16);
    assert_int_equal(pi.src_port, 0x1234);

    /* LOCAL, as a balancer's health check sends it: no addresses, or ignored ones. */
    n = v2(b, 0x20, 0x00, body, 0);
    check_every_cut(b, n, &pi);
    assert_int_equal(pi.local, 1);
    n = v2(b, 0x20, 0x11, body, 12);
    check_every_cut(b, n, &pi);
    assert_int_equal(pi.local, 1);
    /* PROXY with an unspecified family, and with unix addresses: the socket's stand. */
    n = v2(b, 0x21, 0x00, body, 0);
    check_every_cut(b, n, &pi);
    assert_int_equal(pi.local, 1);
    unsigned char ux[216] = {0};
    n = v2(b, 0x21, 0x31, ux, sizeof ux);
    check_every_cut(b, n, &pi);
    assert_int_equal(pi.local, 1);
}

static void test_v2_malformed(void **state)
{
    (void)state;
    unsigned char b[2048], body[1100] = {0};
    nk_proxy_info pi;
    struct {
        unsigned char vc, fp;
        size_t len;
        int want;
    } bad[] = {
        {0x11, 0x11, 12, -EINVAL}, /* version 1 in a v2 header */
        {0x31, 0x11, 12, -EINVAL}, /* version 3 */
        {0x22, 0x11, 12, -EINVAL}, /* command 2 */
        {0x21, 0x41, 12, -EINVAL}, /* family 4 */
        {0x21, 0x13, 12, -EINVAL}, /* transport 3 */
        {0x21, 0x12, 12, -EINVAL}, /* a datagram */
        {0x21, 0x10, 12, -EINVAL}, /* unspecified transport with addresses */
        {0x21, 0x11, 11, -EINVAL}, /* too short for IPv4 addresses */
        {0x21, 0x21, 35, -EINVAL}, /* too short for IPv6 ones */
        {0x21, 0x31, 215, -EINVAL},
        {0x21, 0x11, NK_PROXY_V2_MAX - 15, -EMSGSIZE},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        size_t n = v2(b, bad[k].vc, bad[k].fp, body, bad[k].len);
        int r = nk_proxy_parse(b, n, &pi);
        if (r != bad[k].want)
            fail_msg("case %zu: %d, want %d", k, r, bad[k].want);
        /* Refused as soon as the 16 fixed bytes are in, without waiting for the rest. */
        r = nk_proxy_parse(b, 16, &pi);
        if (r != bad[k].want)
            fail_msg("case %zu at 16 bytes: %d, want %d", k, r, bad[k].want);
    }
    /* The longest accepted header. */
    size_t n = v2(b, 0x20, 0x00, body, NK_PROXY_V2_MAX - 16);
    assert_int_equal(nk_proxy_parse(b, n, &pi), NK_PROXY_V2_MAX);
    /* A wrong signature byte anywhere. */
    n = v2(b, 0x21, 0x11, body, 12);
    for (size_t i = 0; i < 12; i++) {
        b[i] ^= 0x20;
        assert_int_equal(nk_proxy_parse(b, n, &pi), -EINVAL);
        assert_int_equal(nk_proxy_parse(b, i + 1, &pi), -EINVAL);
        b[i] ^= 0x20;
    }
}

static void test_cidr(void **state)
{
    (void)state;
    nk_proxy_cidr r;
    unsigned char a[16];
    assert_int_equal(nk_proxy_cidr_parse("127.0.0.0/8", &r), 0);
    inet_pton(AF_INET, "127.9.8.7", a);
    assert_int_equal(nk_proxy_cidr_match(&r, AF_INET, a), 1);
    inet_pton(AF_INET, "128.0.0.1", a);
    assert_int_equal(nk_proxy_cidr_match(&r, AF_INET, a), 0);
    inet_pton(AF_INET6, "::ffff:127.0.0.1", a);
    assert_int_equal(nk_proxy_cidr_match(&r, AF_INET6, a), 1);
    inet_pton(AF_INET6, "::1", a);
    assert_int_equal(nk_proxy_cidr_match(&r, AF_INET6, a), 0);

    assert_int_equal(nk_proxy_cidr_parse("10.1.2.3/12", &r), 0); /* host bits dropped */
    inet_pton(AF_INET, "10.15.255.255", a);
    assert_int_equal(nk_proxy_cidr_match(&r, AF_INET, a), 1);
    inet_pton(AF_INET, "10.16.0.0", a);
    assert_int_equal(nk_proxy_cidr_match(&r, AF_INET, a), 0);

    assert_int_equal(nk_proxy_cidr_parse("::1", &r), 0);
    assert_int_equal(r.bits, 128);
    inet_pton(AF_INET6, "::1", a);
    assert_int_equal(nk_proxy_cidr_match(&r, AF_INET6, a), 1);
    assert_int_equal(nk_proxy_cidr_parse("0.0.0.0/0", &r), 0);
    inet_pton(AF_INET, "203.0.113.1", a);
    assert_int_equal(nk_proxy_cidr_match(&r, AF_INET, a), 1);
    assert_int_equal(nk_proxy_cidr_parse("2001:db8::/33", &r), 0);
    inet_pton(AF_INET6, "2001:db8:7fff::1", a);
    assert_int_equal(nk_proxy_cidr_match(&r, AF_INET6, a), 1);
    inet_pton(AF_INET6, "2001:db8:8000::1", a);
    assert_int_equal(nk_proxy_cidr_match(&r, AF_INET6, a), 0);

    static const char *bad[] = {"", "/8", "1.2.3.4/33", "::/129", "1.2.3.4/", "1.2.3.4/08",
                                "1.2.3/8", "host/8", "1.2.3.4/8x", "1.2.3.4/-1"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        if (nk_proxy_cidr_parse(bad[k], &r) != -EINVAL)
            fail_msg("\"%s\" accepted", bad[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),       cmocka_unit_test(test_v1_tcp6_and_unknown),
        cmocka_unit_test(test_v1_longest),    cmocka_unit_test(test_v1_malformed),
        cmocka_unit_test(test_v2_inet),       cmocka_unit_test(test_v2_inet6_local_unspec),
        cmocka_unit_test(test_v2_malformed),  cmocka_unit_test(test_cidr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
