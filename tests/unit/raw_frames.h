/* Crafted frames shared by the raw-module unit tests (Ethernet + IPv4/IPv6 + TCP/UDP/ICMP). */
#ifndef TEST_RAW_FRAMES_H
#define TEST_RAW_FRAMES_H

#include <stdint.h>
#include <string.h>

static size_t put_eth(uint8_t *f, uint16_t type)
{
    memset(f, 0, 12);
    f[5] = 0x02; /* dst ...:02, src ...:01 */
    f[11] = 0x01;
    f[12] = (uint8_t)(type >> 8);
    f[13] = (uint8_t)type;
    return 14;
}

/* IPv4 header with options_len bytes of options (NOPs); frag is the flags+offset field. */
static size_t put_ip4(uint8_t *f, uint8_t proto, const uint8_t src[4], const uint8_t dst[4],
                      size_t payload, size_t options_len, uint16_t frag)
{
    size_t hl = 20 + options_len;
    size_t total = hl + payload;
    f[0] = (uint8_t)(0x40 | (hl / 4));
    f[1] = 0;
    f[2] = (uint8_t)(total >> 8);
    f[3] = (uint8_t)total;
    f[4] = 0x12;
    f[5] = 0x34;
    f[6] = (uint8_t)(frag >> 8);
    f[7] = (uint8_t)frag;
    f[8] = 64;
    f[9] = proto;
    f[10] = f[11] = 0;
    memcpy(f + 12, src, 4);
    memcpy(f + 16, dst, 4);
    memset(f + 20, 1, options_len);
    return hl;
}

static size_t put_ip6(uint8_t *f, uint8_t nxt, const uint8_t src[16], const uint8_t dst[16],
                      size_t payload)
{
    memset(f, 0, 40);
    f[0] = 0x60;
    f[4] = (uint8_t)(payload >> 8);
    f[5] = (uint8_t)payload;
    f[6] = nxt;
    f[7] = 255;
    memcpy(f + 8, src, 16);
    memcpy(f + 24, dst, 16);
    return 40;
}

static size_t put_tcp(uint8_t *f, uint16_t sp, uint16_t dp, uint32_t seq, uint32_t ack,
                      uint8_t flags)
{
    memset(f, 0, 20);
    f[0] = (uint8_t)(sp >> 8);
    f[1] = (uint8_t)sp;
    f[2] = (uint8_t)(dp >> 8);
    f[3] = (uint8_t)dp;
    for (int i = 0; i < 4; i++) {
        f[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
        f[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
    }
    f[12] = 0x50;
    f[13] = flags;
    f[14] = 0xff;
    f[15] = 0xff;
    return 20;
}

static size_t put_udp(uint8_t *f, uint16_t sp, uint16_t dp, size_t payload)
{
    size_t len = 8 + payload;
    f[0] = (uint8_t)(sp >> 8);
    f[1] = (uint8_t)sp;
    f[2] = (uint8_t)(dp >> 8);
    f[3] = (uint8_t)dp;
    f[4] = (uint8_t)(len >> 8);
    f[5] = (uint8_t)len;
    f[6] = f[7] = 0;
    return 8;
}

static const uint8_t A4[4] = {10, 0, 0, 1}, B4[4] = {10, 0, 0, 2};
static const uint8_t A6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
static const uint8_t B6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};

/* Ethernet + IPv4 + TCP + payload "hello". Returns the frame length. */
static size_t frame_tcp4(uint8_t *f, uint16_t sp, uint16_t dp, uint8_t flags)
{
    size_t n = put_eth(f, 0x0800);
    n += put_ip4(f + n, 6, A4, B4, 25, 0, 0x4000);
    n += put_tcp(f + n, sp, dp, 1000, 2000, flags);
    memcpy(f + n, "hello", 5);
    return n + 5;
}

static size_t frame_udp4(uint8_t *f, uint16_t sp, uint16_t dp, size_t options)
{
    size_t n = put_eth(f, 0x0800);
    n += put_ip4(f + n, 17, A4, B4, 8 + 3, options, 0);
    n += put_udp(f + n, sp, dp, 3);
    memcpy(f + n, "abc", 3);
    return n + 3;
}

static size_t frame_tcp6(uint8_t *f, uint16_t sp, uint16_t dp, uint8_t flags)
{
    size_t n = put_eth(f, 0x86dd);
    n += put_ip6(f + n, 6, A6, B6, 25);
    n += put_tcp(f + n, sp, dp, 1000, 2000, flags);
    memcpy(f + n, "hello", 5);
    return n + 5;
}

static size_t frame_udp6(uint8_t *f, uint16_t sp, uint16_t dp)
{
    size_t n = put_eth(f, 0x86dd);
    n += put_ip6(f + n, 17, A6, B6, 11);
    n += put_udp(f + n, sp, dp, 3);
    memcpy(f + n, "abc", 3);
    return n + 3;
}

static size_t frame_icmp4(uint8_t *f)
{
    size_t n = put_eth(f, 0x0800);
    n += put_ip4(f + n, 1, A4, B4, 12, 0, 0);
    const uint8_t icmp[12] = {8, 0, 0, 0, 0x12, 0x34, 0, 7, 'p', 'i', 'n', 'g'};
    memcpy(f + n, icmp, sizeof icmp);
    return n + sizeof icmp;
}

static size_t frame_icmp6(uint8_t *f)
{
    size_t n = put_eth(f, 0x86dd);
    n += put_ip6(f + n, 58, A6, B6, 8);
    const uint8_t icmp[8] = {129, 0, 0, 0, 0, 9, 0, 3};
    memcpy(f + n, icmp, sizeof icmp);
    return n + sizeof icmp;
}

#endif
