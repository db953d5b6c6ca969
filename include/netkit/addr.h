/* Socket addresses: parsing, formatting and name look-ups.
 *
 * Text forms (the CLI contract):
 *   HOST:PORT      "127.0.0.1:8080", "localhost:80" (names need nk_addr_resolve)
 *   [V6]:PORT      "[::1]:8080", "[fe80::1%lo]:80"
 *   PORT           "8080": all interfaces (0.0.0.0; see NK_ADDR_WILDCARD6) like `nc -l 8080`
 *   unix:PATH      a Unix-domain socket path; "unix:@name" is the abstract namespace
 * Port 0 asks the kernel for a free port when binding.
 */
#ifndef NETKIT_ADDR_H
#define NETKIT_ADDR_H

#include <stddef.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <errno.h>
#include <netkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

typedef struct nk_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
        struct sockaddr_storage ss;
    } u;
    socklen_t len; /* length of the meaningful part of u */
} nk_addr;

/* Longest text nk_addr_format can produce, with the terminating NUL. */
#define NK_ADDR_STRLEN (sizeof(((struct sockaddr_un *)0)->sun_path) + 16)

enum {
    NK_ADDR_WILDCARD6 = 1 << 0, /* bare PORT means [::] (dual-stack) instead of 0.0.0.0 */
};

/* Parse a numeric address (no DNS). Errors: -EINVAL (malformed, or a name where a number was
 * needed: use nk_addr_resolve), -ERANGE (port outside 0..65535), -ENAMETOOLONG (unix path
 * longer than sun_path allows). */
int nk_addr_parse(const char *text, int flags, nk_addr *out);

/* Split "HOST:PORT", "[V6]:PORT" or "PORT" into its host (empty for a bare port) and port text,
 * without resolving. Errors as nk_addr_parse. */
int nk_addr_split(const char *text, char *host, size_t hostlen, char *port, size_t portlen);

/* Resolve text (any form above, names allowed, a service name for the port too) with
 * getaddrinfo. socktype: SOCK_STREAM or SOCK_DGRAM (0 for both). passive: for binding.
 * Fills up to max addresses in the resolver's order and returns how many (>= 1), or a
 * negative error (NK_ERR_GAI(...) for resolver failures). */
int nk_addr_resolve(const char *text, int socktype, int passive, nk_addr *out, size_t max);

/* "127.0.0.1:80", "[::1]:80", "unix:/tmp/s", "unix:@abstract". Returns the length written, or
 * -ENOSPC when buflen is too small (the text is then truncated but NUL-terminated). */
int nk_addr_format(const nk_addr *addr, char *buf, size_t buflen);
/* Host part only ("127.0.0.1", "::1", or the unix path). */
int nk_addr_format_host(const nk_addr *addr, char *buf, size_t buflen);

int nk_addr_family(const nk_addr *addr);          /* AF_INET, AF_INET6 or AF_UNIX */
int nk_addr_port(const nk_addr *addr);             /* -EAFNOSUPPORT for unix */
void nk_addr_set_port(nk_addr *addr, int port);    /* no-op for unix */
int nk_addr_equal(const nk_addr *a, const nk_addr *b); /* same family, address and port */
int nk_addr_is_wildcard(const nk_addr *addr);      /* 0.0.0.0 or :: */
int nk_addr_is_loopback(const nk_addr *addr);      /* 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 */

/* What an IP address is for, by the IANA special-purpose registries (RFC 6890). An IPv6
 * unique local address (fc00::/7, RFC 4193) counts as NK_ADDR_PRIVATE. */
enum nk_addr_kind {
    NK_ADDR_GLOBAL = 0,   /* none of the below: routable on the Internet */
    NK_ADDR_UNSPECIFIED,  /* 0.0.0.0, :: */
    NK_ADDR_THIS_NETWORK, /* 0.0.0.0/8 (RFC 1122) */
    NK_ADDR_LOOPBACK,     /* 127.0.0.0/8, ::1 */
    NK_ADDR_PRIVATE,      /* 10/8, 172.16/12, 192.168/16 (RFC 1918); fc00::/7 */
    NK_ADDR_SHARED,       /* 100.64.0.0/10, carrier-grade NAT (RFC 6598) */
    NK_ADDR_LINK_LOCAL,   /* 169.254.0.0/16, fe80::/10 */
    NK_ADDR_DOCUMENTATION, /* 192.0.2/24, 198.51.100/24, 203.0.113/24 (RFC 5737); 2001:db8::/32 */
    NK_ADDR_BENCHMARKING, /* 198.18.0.0/15 (RFC 2544) */
    NK_ADDR_MULTICAST,    /* 224.0.0.0/4, ff00::/8 */
    NK_ADDR_RESERVED,     /* 240.0.0.0/4 */
    NK_ADDR_BROADCAST,    /* 255.255.255.255 */
    NK_ADDR_V4MAPPED,     /* ::ffff:0:0/96 */
    NK_ADDR_6TO4,         /* 2002::/16 */
};
/* The kind (enum nk_addr_kind) of an IPv4 or IPv6 address; -EAFNOSUPPORT for any other
 * family. */
int nk_addr_kind(const nk_addr *addr);
/* The kind as a phrase for people, with its RFC where that helps ("private (RFC 1918)",
 * "unique local (RFC 4193)", "global"); "" for a non-IP address. */
const char *nk_addr_kind_text(const nk_addr *addr);

/* Reverse look-up with getnameinfo (NI_NAMEREQD): the host name of an address. */
int nk_addr_reverse(const nk_addr *addr, char *name, size_t namelen);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
