/* Unit tests for nk_raw_decode: crafted frames of every kind, each cut at every length (a
 * copy in a buffer of exactly that size, so ASan catches any read past the end). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <netkit/raw.h>

#include "raw_frames.h"

static void decode_exact(const uint8_t *f, size_t len, nk_raw_packet *pkt)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, f, len);
    assert_int_equal(nk_raw_decode(copy, len, pkt), 0);
    if (pkt->layers & NK_RAW_PAYLOAD)
        assert_true(pkt->payload >= copy && pkt->payload + pkt->payload_len <= copy + len);
    free(copy);
    /* The exact-size copy catches over-reads; decode the caller's frame again so the views
     * in pkt stay valid after the copy is gone. */
    assert_int_equal(nk_raw_decode(f, len, pkt), 0);
}

static void test_tcp4(void **state)
{
    (void)state;
    uint8_t f[128];
    size_t n = frame_tcp4(f, 40000, 80, NK_TCP_SYN | NK_TCP_ACK);
    nk_raw_packet p;
    decode_exact(f, n, &p);
    assert_null(p.problem);
    assert_int_equal(p.layers, NK_RAW_LINK | NK_RAW_NETWORK | NK_RAW_TRANSPORT | NK_RAW_PAYLOAD);
    assert_int_equal(p.eth.type, 0x0800);
    assert_int_equal(p.eth.src[5], 1);
    assert_int_equal(p.eth.dst[5], 2);
    assert_int_equal(p.net, NK_RAW_NET_IPV4);
    assert_int_equal(p.ip.ttl, 64);
    assert_int_equal(p.ip.total_len, 45);
    assert_true(p.ip.df);
    assert_false(p.ip.fragment);
    assert_memory_equal(p.ip.src, A4, 4);
    assert_int_equal(p.transport, NK_RAW_TP_TCP);
    assert_int_equal(p.tcp.sport, 40000);
    assert_int_equal(p.tcp.dport, 80);
    assert_int_equal(p.tcp.seq, 1000);
    assert_int_equal(p.tcp.ack, 2000);
    assert_int_equal(p.tcp.flags, NK_TCP_SYN | NK_TCP_ACK);
    assert_int_equal(p.payload_len, 5);
    assert_memory_equal(p.payload, "hello", 5);
    char fl[16];
    assert_string_equal(nk_raw_tcp_flags(p.tcp.flags, fl, sizeof fl), "S.");
    assert_string_equal(nk_raw_tcp_flags(NK_TCP_FIN | NK_TCP_ACK, fl, sizeof fl), "F.");
    assert_string_equal(nk_raw_tcp_flags(NK_TCP_PSH | NK_TCP_ACK, fl, sizeof fl), "P.");
    assert_string_equal(nk_raw_tcp_flags(NK_TCP_RST, fl, sizeof fl), "R");
    assert_string_equal(nk_raw_tcp_flags(0, fl, sizeof fl), "none");
}

static void test_padding_trimmed(void **state)
{
    (void)state;
    /* A 60-byte minimum Ethernet frame carries padding past the IP length: not payload. */
    uint8_t f[128] = {0};
    size_t n = frame_udp4(f, 53, 5353, 0);
    nk_raw_packet p;
    decode_exact(f, 60, &p);
    assert_true(n < 60);
    assert_null(p.problem);
    assert_int_equal(p.payload_len, 3);
    assert_memory_equal(p.payload, "abc", 3);
}

static void test_udp4_options(void **state)
{
    (void)state;
    uint8_t f[128];
    size_t n = frame_udp4(f, 53, 5353, 8);
    nk_raw_packet p;
    decode_exact(f, n, &p);
    assert_null(p.problem);
    assert_int_equal(p.ip.hdr_len, 28);
    assert_int_equal(p.udp.sport, 53);
    assert_int_equal(p.udp.dport, 5353);
    assert_int_equal(p.udp.len, 11);
    assert_memory_equal(p.payload, "abc", 3);
}

static void test_ipv6(void **state)
{
    (void)state;
    uint8_t f[128];
    nk_raw_packet p;
    size_t n = frame_tcp6(f, 1, 2, NK_TCP_FIN | NK_TCP_ACK);
    decode_exact(f, n, &p);
    assert_null(p.problem);
    assert_int_equal(p.net, NK_RAW_NET_IPV6);
    assert_int_equal(p.ip.ttl, 255);
    assert_memory_equal(p.ip.dst, B6, 16);
    assert_int_equal(p.tcp.flags, NK_TCP_FIN | NK_TCP_ACK);
    n = frame_udp6(f, 7, 9);
    decode_exact(f, n, &p);
    assert_null(p.problem);
    assert_int_equal(p.udp.dport, 9);
    n = frame_icmp6(f);
    decode_exact(f, n, &p);
    assert_null(p.problem);
    assert_int_equal(p.transport, NK_RAW_TP_ICMP6);
    assert_string_equal(nk_raw_icmp_type_name(1, p.icmp.type), "echo-reply");
    assert_int_equal(p.icmp.id, 9);
    assert_int_equal(p.icmp.seq, 3);
}

static void test_ipv6_fragment_header(void **state)
{
    (void)state;
    uint8_t f[128];
    size_t n = put_eth(f, 0x86dd);
    n += put_ip6(f + n, 44, A6, B6, 8 + 11);
    /* Fragment header (RFC 8200 section 4.5): next 17, offset 0, M=1, id 0x01020304. */
    const uint8_t frag[8] = {17, 0, 0x00, 0x01, 1, 2, 3, 4};
    memcpy(f + n, frag, 8);
    n += 8;
    n += put_udp(f + n, 5, 6, 3);
    memcpy(f + n, "abc", 3);
    n += 3;
    nk_raw_packet p;
    decode_exact(f, n, &p);
    assert_null(p.problem);
    assert_true(p.ip.fragment);
    assert_true(p.ip.mf);
    assert_int_equal(p.ip.id, 0x01020304);
    assert_int_equal(p.ip.proto, 17);
    assert_int_equal(p.udp.sport, 5);
    /* A later fragment: no transport header is decoded. */
    f[14 + 40 + 2] = 0x00;
    f[14 + 40 + 3] = 0x08;
    decode_exact(f, n, &p);
    assert_int_equal(p.ip.frag_off, 8);
    assert_int_equal(p.transport, NK_RAW_TP_NONE);
}

static void test_ipv4_later_fragment(void **state)
{
    (void)state;
    uint8_t f[128];
    size_t n = frame_udp4(f, 53, 5353, 0);
    f[14 + 6] = 0x00;
    f[14 + 7] = 0x03; /* offset 3 * 8 bytes */
    nk_raw_packet p;
    decode_exact(f, n, &p);
    assert_true(p.ip.fragment);
    assert_int_equal(p.ip.frag_off, 24);
    assert_int_equal(p.transport, NK_RAW_TP_NONE);
}

static void test_icmp4(void **state)
{
    (void)state;
    uint8_t f[128];
    size_t n = frame_icmp4(f);
    nk_raw_packet p;
    decode_exact(f, n, &p);
    assert_null(p.problem);
    assert_int_equal(p.transport, NK_RAW_TP_ICMP);
    assert_true(p.icmp.echo);
    assert_int_equal(p.icmp.id, 0x1234);
    assert_int_equal(p.icmp.seq, 7);
    assert_string_equal(nk_raw_icmp_type_name(0, 8), "echo-request");
    assert_string_equal(nk_raw_icmp_code_name(0, 3, 3), "port-unreachable");
    assert_null(nk_raw_icmp_code_name(0, 8, 0));
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t f[128];
    nk_raw_packet p;
    size_t n = frame_tcp4(f, 1, 2, 0);
    f[14] = 0x44; /* IHL 4: below the minimum */
    decode_exact(f, n, &p);
    assert_string_equal(p.problem, "bad ipv4 header length");
    n = frame_tcp4(f, 1, 2, 0);
    f[14] = 0x65; /* version 6 in an IPv4 ethertype */
    decode_exact(f, n, &p);
    assert_string_equal(p.problem, "bad ipv4 version");
    n = frame_tcp4(f, 1, 2, 0);
    f[14 + 20 + 12] = 0x40; /* TCP data offset 4 */
    decode_exact(f, n, &p);
    assert_string_equal(p.problem, "bad tcp header length");
    n = frame_tcp4(f, 1, 2, 0);
    f[14 + 20 + 12] = 0xf0; /* 60-byte TCP header in a 25-byte segment */
    decode_exact(f, n, &p);
    assert_string_equal(p.problem, "bad tcp header length");
}

typedef size_t (*builder)(uint8_t *);
static size_t b_tcp4(uint8_t *f) { return frame_tcp4(f, 1, 2, NK_TCP_SYN); }
static size_t b_udp4(uint8_t *f) { return frame_udp4(f, 1, 2, 4); }
static size_t b_tcp6(uint8_t *f) { return frame_tcp6(f, 1, 2, NK_TCP_SYN); }
static size_t b_udp6(uint8_t *f) { return frame_udp6(f, 1, 2); }

/* Cut every frame at every length: never a crash, and a short frame always says so. */
static void test_truncated_everywhere(void **state)
{
    (void)state;
    builder all[] = {b_tcp4, b_udp4, b_tcp6, b_udp6, frame_icmp4, frame_icmp6};
    for (size_t b = 0; b < sizeof all / sizeof *all; b++) {
        uint8_t f[128];
        size_t n = all[b](f);
        for (size_t cut = 0; cut < n; cut++) {
            nk_raw_packet p;
            decode_exact(f, cut, &p);
            assert_non_null(p.problem);
            assert_non_null(strstr(p.problem, "truncated"));
            if (cut < 14)
                assert_string_equal(p.problem, "truncated ethernet header");
        }
    }
    uint8_t f[128];
    nk_raw_packet p;
    size_t n = frame_tcp4(f, 1, 2, 0);
    decode_exact(f, 14 + 10, &p);
    assert_string_equal(p.problem, "truncated ipv4 header");
    decode_exact(f, 14 + 20 + 10, &p);
    assert_string_equal(p.problem, "truncated tcp header");
    decode_exact(f, n - 2, &p);
    assert_int_equal(p.layers & NK_RAW_TRANSPORT, NK_RAW_TRANSPORT);
    assert_int_equal(p.payload_len, 3);
    assert_int_equal(p.payload_wire, 5);
    n = frame_udp6(f, 1, 2);
    decode_exact(f, 14 + 39, &p);
    assert_string_equal(p.problem, "truncated ipv6 header");
}

static void test_vlan_and_other(void **state)
{
    (void)state;
    uint8_t f[128];
    size_t n = frame_udp4(f + 4, 1, 2, 0);
    memset(f, 0, 12);
    f[12] = 0x81;
    f[13] = 0x00;
    f[14] = 0x00;
    f[15] = 0x2a; /* VLAN 42 */
    f[16] = 0x08;
    f[17] = 0x00;
    memmove(f + 18, f + 4 + 14, n - 14);
    nk_raw_packet p;
    decode_exact(f, n + 4, &p);
    assert_null(p.problem);
    assert_int_equal(p.eth.nvlan, 1);
    assert_int_equal(p.eth.vlan[0], 42);
    assert_int_equal(p.udp.dport, 2);
    put_eth(f, 0x88cc);
    decode_exact(f, 20, &p);
    assert_null(p.problem);
    assert_int_equal(p.net, NK_RAW_NET_NONE);
    assert_int_equal(p.payload_len, 6);
    assert_int_equal(nk_raw_decode(NULL, 0, &p), 0);
    assert_string_equal(p.problem, "truncated ethernet header");
    assert_int_equal(nk_raw_decode(f, 10, NULL), -EINVAL);
}

static void test_arp(void **state)
{
    (void)state;
    uint8_t f[128];
    size_t n = put_eth(f, 0x0806);
    /* Ethernet/IPv4 ARP request (RFC 826): who has 10.0.0.2? tell 10.0.0.1 */
    const uint8_t arp[28] = {0, 1, 8, 0, 6, 4, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01,
                             10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2};
    memcpy(f + n, arp, sizeof arp);
    n += sizeof arp;
    nk_raw_packet p;
    decode_exact(f, n, &p);
    assert_null(p.problem);
    assert_int_equal(p.net, NK_RAW_NET_ARP);
    assert_true(p.layers & NK_RAW_NETWORK);
    assert_int_equal(p.arp.op, 1);
    assert_true(p.arp.ether_ipv4);
    assert_int_equal(p.arp.sha[5], 0x01);
    assert_int_equal(p.arp.spa[3], 1);
    assert_int_equal(p.arp.tpa[3], 2);
    assert_string_equal(nk_raw_ethertype_name(0x0806), "ARP");
    /* every cut of the ARP body is reported, never read past */
    for (size_t cut = 14; cut < n; cut++) {
        decode_exact(f, cut, &p);
        assert_string_equal(p.problem, "truncated arp header");
    }
    /* a non-Ethernet/IPv4 ARP keeps its fixed fields only */
    f[14 + 1] = 6; /* htype 6 (IEEE 802) */
    decode_exact(f, n, &p);
    assert_null(p.problem);
    assert_int_equal(p.arp.htype, 6);
    assert_false(p.arp.ether_ipv4);
}

static void test_ipv6_bad_extension_headers(void **state)
{
    (void)state;
    uint8_t f[128];
    size_t n = put_eth(f, 0x86dd);
    /* hop-by-hop options header (next 17) claiming 3*8+8 = 32 bytes in a 16-byte payload */
    n += put_ip6(f + n, 0, A6, B6, 16);
    const uint8_t hbh[16] = {17, 3, 1, 4, 0, 0, 0, 0, 1, 6, 0, 0, 0, 0, 0, 0};
    memcpy(f + n, hbh, sizeof hbh);
    n += sizeof hbh;
    nk_raw_packet p;
    decode_exact(f, n, &p);
    assert_string_equal(p.problem, "bad ipv6 extension header length");
    assert_int_equal(p.net, NK_RAW_NET_IPV6);
    assert_int_equal(p.transport, NK_RAW_TP_NONE);
    assert_int_equal(p.ip.hdr_len, 40);
    /* cut inside the extension header's fixed part */
    decode_exact(f, 14 + 40 + 1, &p);
    assert_string_equal(p.problem, "truncated ipv6 extension header");
    /* the datagram is long enough for the claimed 32 bytes, but the capture stops at 16 */
    f[14 + 4] = 0;
    f[14 + 5] = 40; /* payload length 40 */
    decode_exact(f, n, &p);
    assert_string_equal(p.problem, "truncated ipv6 extension header");
    /* version 4 in an IPv6 ethertype */
    f[14] = 0x40;
    decode_exact(f, n, &p);
    assert_string_equal(p.problem, "bad ipv6 version");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp4),
        cmocka_unit_test(test_padding_trimmed),
        cmocka_unit_test(test_udp4_options),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_ipv6_fragment_header),
        cmocka_unit_test(test_ipv4_later_fragment),
        cmocka_unit_test(test_icmp4),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_vlan_and_other),
        cmocka_unit_test(test_arp),
        cmocka_unit_test(test_ipv6_bad_extension_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
