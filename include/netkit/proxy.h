/* The PROXY protocol (HAProxy's, versions 1 and 2): the header a load balancer writes at the
 * start of a connection to say whom it carries. Pure and socket-free: the caller reads the
 * bytes and hands over what it has so far; nothing is kept between calls, so the same
 * growing prefix can be given again as more arrives.
 *
 *   v1 (text): "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN...\r\n", at most
 *              107 bytes with the CRLF; single spaces, addresses in their usual text form,
 *              ports decimal 0-65535 without leading zeros.
 *   v2 (binary): the 12-byte signature, version 2 and a command (LOCAL or PROXY), the
 *              address family and transport, a 16-bit length, the addresses, then TLVs
 *              (skipped, but each must fit). */
#ifndef NETKIT_PROXY_H
#define NETKIT_PROXY_H

#include <stddef.h>

#include <netkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif

NK_API_BEGIN

#define NK_PROXY_V1_MAX 107   /* the longest v1 line, CRLF included */
/* The longest v2 header accepted, signature included: addresses and TLVs (a balancer's
 * usual ones are well under this). A longer header is refused rather than buffered. */
#define NK_PROXY_V2_MAX 1024
#define NK_PROXY_MAX NK_PROXY_V2_MAX /* enough bytes to hold any accepted header */

typedef struct nk_proxy_info {
    int version;               /* 1 or 2 */
    /* 1 when the header names no client: v2 LOCAL (the balancer's own health checks), v2
     * PROXY with an unspecified or unix family, v1 UNKNOWN. The connection's own addresses
     * then stand. */
    int local;
    int family;                /* AF_INET or AF_INET6 when !local, else AF_UNSPEC */
    unsigned char src_ip[16];  /* 4 or 16 bytes, network order */
    unsigned char dst_ip[16];
    unsigned src_port, dst_port;
} nk_proxy_info;

/* Parse the header at the start of p[0..n). Returns its length (> 0) with *out filled, or
 * -EAGAIN when p is a proper prefix of a header that may still be valid (read more and call
 * again with all of it), -EINVAL when the bytes cannot begin a valid header (another
 * protocol, a malformed or unsupported header), -EMSGSIZE for a v2 header longer than
 * NK_PROXY_V2_MAX. Bytes after the header are not looked at. */
int nk_proxy_parse(const void *p, size_t n, nk_proxy_info *out);

/* An address range: "10.0.0.0/8", "::1/128", or a bare address (all its bits). */
typedef struct nk_proxy_cidr {
    int family;                /* AF_INET or AF_INET6 */
    unsigned char ip[16];      /* bits past the prefix are zero */
    unsigned bits;
} nk_proxy_cidr;

/* 0, or -EINVAL for a malformed range (bits past the prefix set are allowed and ignored). */
int nk_proxy_cidr_parse(const char *s, nk_proxy_cidr *out);
/* 1 when the address (family AF_INET with 4 bytes or AF_INET6 with 16) is in the range; an
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is compared as the IPv4 address it carries. */
int nk_proxy_cidr_match(const nk_proxy_cidr *r, int family, const unsigned char *ip);

NK_API_END

#ifdef __cplusplus
}
#endif

#endif
