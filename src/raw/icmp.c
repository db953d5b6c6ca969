/* ICMP echo messages for `netkit ping`: build a request, recognise a reply or an error that
 * quotes one of our requests, and the Internet checksum. */
#include <netkit/raw.h>

#include <errno.h>
#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* RFC 1071 section 4.1: the 16-bit one's complement of the one's complement sum, an odd
 * trailing byte padded with zero. */
uint16_t nk_icmp_checksum(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t sum = 0;
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (i < len)
        sum += (uint32_t)p[i] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

ssize_t nk_icmp_echo_build(uint8_t *buf, size_t cap, int v6, uint16_t id, uint16_t seq,
                           size_t payload_len)
{
    if (!buf || payload_len > 65507 || cap < 8 + payload_len)
        return -ENOSPC;
    /* RFC 792: type 8 code 0; RFC 4443 section 4.1: type 128 code 0. */
    buf[0] = v6 ? NK_ICMP6_ECHO : NK_ICMP_ECHO;
    buf[1] = 0;
    buf[2] = buf[3] = 0;
    buf[4] = (uint8_t)(id >> 8);
    buf[5] = (uint8_t)id;
    buf[6] = (uint8_t)(seq >> 8);
    buf[7] = (uint8_t)seq;
    /* The same recognisable pattern as iputils ping: bytes counting up from 0x08 would do as
     * well; what matters is that a reply can be compared with what was sent. */
    for (size_t i = 0; i < payload_len; i++)
        buf[8 + i] = (uint8_t)(i + 8);
    if (!v6) {
        uint16_t sum = nk_icmp_checksum(buf, 8 + payload_len);
        buf[2] = (uint8_t)(sum >> 8);
        buf[3] = (uint8_t)sum;
    }
    return (int)(8 + payload_len);
}

int nk_icmp_ipv4_hdr_len(const uint8_t *buf, size_t len)
{
    if (!buf || len < 20 || buf[0] >> 4 != 4)
        return -EINVAL;
    size_t hl = (size_t)(buf[0] & 0x0f) * 4;
    if (hl < 20 || hl > len)
        return -EINVAL;
    return (int)hl;
}

/* The request quoted by an error message: RFC 792 quotes the IP header and the first 8 bytes
 * of the datagram; RFC 4443 section 2.4 (c) quotes as much of the invoking packet as fits. */
static int quoted_echo(const uint8_t *q, size_t qlen, int v6, nk_icmp_msg *out)
{
    size_t hl;
    if (v6) {
        if (qlen < 40 || q[0] >> 4 != 6 || q[6] != 58)
            return 0;
        hl = 40;
    } else {
        int n = nk_icmp_ipv4_hdr_len(q, qlen);
        if (n < 0 || q[9] != 1)
            return 0;
        hl = (size_t)n;
    }
    if (qlen < hl + 8 || q[hl] != (v6 ? NK_ICMP6_ECHO : NK_ICMP_ECHO))
        return 0;
    out->id = rd16(q + hl + 4);
    out->seq = rd16(q + hl + 6);
    return 1;
}

int nk_icmp_parse(const uint8_t *buf, size_t len, int v6, nk_icmp_msg *out)
{
    if (!buf || !out || len < 8)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->type = buf[0];
    out->code = buf[1];
    if (out->type == (v6 ? NK_ICMP6_ECHO_REPLY : NK_ICMP_ECHO_REPLY)) {
        out->reply = 1;
        out->id = rd16(buf + 4);
        out->seq = rd16(buf + 6);
        out->data_len = len - 8;
        return 0;
    }
    int is_err = v6 ? (out->type >= 1 && out->type <= 4)
                    : (out->type == 3 || out->type == 4 || out->type == 5 || out->type == 11 ||
                       out->type == 12);
    if (is_err)
        out->error = quoted_echo(buf + 8, len - 8, v6, out);
    return 0;
}
