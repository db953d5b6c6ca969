/* Socket addresses: numeric parsing, splitting, formatting and comparison (no DNS here; names
 * go through resolve.c).
 *
 * The text forms are the CLI contract in addr.h. Parsing is strict on purpose: a port is
 * decimal digits only (strtol would take "+80", " 80" and "0x50"), and an IPv6 address must be
 * bracketed, because "::1:80" cannot be split into host and port without guessing.
 */
#include <netkit/addr.h>

#include "net/net_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define UNIX_PREFIX "unix:"
#define UNIX_PREFIX_LEN 5

static int all_digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int nk__port_parse(const char *s)
{
    size_t n = strlen(s);
    if (!all_digits(s, n))
        return -EINVAL;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (s[i] - '0');
        if (v > 65535)
            return -ERANGE; /* stop before v can overflow, however many digits follow */
    }
    return (int)v;
}

static int copy_part(char *dst, size_t dstlen, const char *src, size_t n)
{
    if (!dst || n >= dstlen)
        return -ENAMETOOLONG;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

int nk__addr_split(const char *text, char *host, size_t hostlen, char *port, size_t portlen,
                   int *bracketed)
{
    const char *h, *p;
    size_t hn;
    *bracketed = 0;
    if (!text || strncmp(text, UNIX_PREFIX, UNIX_PREFIX_LEN) == 0)
        return -EINVAL; /* unix: has a path, not a host and a port */
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close == text + 1 || close[1] != ':')
            return -EINVAL;
        h = text + 1;
        hn = (size_t)(close - h);
        p = close + 2;
        *bracketed = 1;
    } else {
        const char *colon = strchr(text, ':');
        if (!colon) {
            /* A bare PORT: all interfaces, as `nc -l 8080`. Only digits, so that a lone host
             * name is reported as a missing port rather than as an unknown service. */
            if (!all_digits(text, strlen(text)))
                return -EINVAL;
            h = text;
            hn = 0;
            p = text;
        } else {
            if (strchr(colon + 1, ':'))
                return -EINVAL; /* several colons: an IPv6 address without brackets */
            h = text;
            hn = (size_t)(colon - text);
            p = colon + 1;
            if (hn == 1 && h[0] == '*')
                hn = 0; /* "*:80" spells the wildcard as some tools do */
        }
    }
    size_t pn = strlen(p);
    if (pn == 0)
        return -EINVAL;
    int rc = copy_part(host, hostlen, h, hn);
    if (rc < 0)
        return rc;
    rc = copy_part(port, portlen, p, pn);
    if (rc < 0)
        return all_digits(p, pn) ? -ERANGE : rc;
    return 0;
}

int nk_addr_split(const char *text, char *host, size_t hostlen, char *port, size_t portlen)
{
    int bracketed;
    return nk__addr_split(text, host, hostlen, port, portlen, &bracketed);
}

static int parse_unix(const char *path, nk_addr *out)
{
    size_t n = strlen(path);
    size_t room = sizeof(out->u.un.sun_path);
    if (n == 0)
        return -EINVAL;
    out->u.un.sun_family = AF_UNIX;
    if (path[0] == '@') {
        /* Abstract namespace: a leading NUL, then the name; the length, not a terminator,
         * says where the name ends, so it must be exact. */
        if (n == 1)
            return -EINVAL;
        if (n > room)
            return -ENAMETOOLONG;
        out->u.un.sun_path[0] = '\0';
        memcpy(out->u.un.sun_path + 1, path + 1, n - 1);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    if (n > room - 1)
        return -ENAMETOOLONG; /* the kernel wants room for the terminating NUL */
    memcpy(out->u.un.sun_path, path, n + 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/* "fe80::1%lo" or "fe80::1%2" (host is a writable copy). */
static int parse_v6(char *host, int port, nk_addr *out)
{
    struct sockaddr_in6 *in6 = &out->u.in6;
    char *pct = strchr(host, '%');
    if (pct) {
        *pct = '\0';
        const char *scope = pct + 1;
        size_t sn = strlen(scope);
        if (sn == 0)
            return -EINVAL;
        if (all_digits(scope, sn)) {
            unsigned long long v = 0;
            for (size_t i = 0; i < sn; i++) {
                v = v * 10 + (unsigned)(scope[i] - '0');
                if (v > UINT32_MAX)
                    return -ERANGE;
            }
            in6->sin6_scope_id = (uint32_t)v;
        } else {
            unsigned idx = if_nametoindex(scope);
            if (idx == 0)
                return -ENODEV; /* no such interface */
            in6->sin6_scope_id = idx;
        }
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
        return -EINVAL;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    out->len = sizeof(*in6);
    return 0;
}

int nk_addr_parse(const char *text, int flags, nk_addr *out)
{
    if (!text || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (strncmp(text, UNIX_PREFIX, UNIX_PREFIX_LEN) == 0)
        return parse_unix(text + UNIX_PREFIX_LEN, out);

    char host[NI_MAXHOST];
    char port[8];
    int bracketed;
    int rc = nk__addr_split(text, host, sizeof(host), port, sizeof(port), &bracketed);
    if (rc == -ENAMETOOLONG)
        return -EINVAL; /* a host that long is a name, never a numeric address */
    if (rc < 0)
        return rc;
    int p = nk__port_parse(port);
    if (p < 0)
        return p;

    if (host[0] == '\0' && !bracketed) {
        if (flags & NK_ADDR_WILDCARD6) {
            out->u.in6.sin6_family = AF_INET6;
            out->u.in6.sin6_addr = in6addr_any;
            out->u.in6.sin6_port = htons((uint16_t)p);
            out->len = sizeof(out->u.in6);
        } else {
            out->u.in.sin_family = AF_INET;
            out->u.in.sin_addr.s_addr = htonl(INADDR_ANY);
            out->u.in.sin_port = htons((uint16_t)p);
            out->len = sizeof(out->u.in);
        }
        return 0;
    }
    if (bracketed)
        rc = parse_v6(host, p, out);
    else if (inet_pton(AF_INET, host, &out->u.in.sin_addr) == 1) {
        out->u.in.sin_family = AF_INET;
        out->u.in.sin_port = htons((uint16_t)p);
        out->len = sizeof(out->u.in);
        rc = 0;
    } else
        rc = -EINVAL; /* a name: nk_addr_resolve handles those */
    if (rc < 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* Where a unix address's name is and how long it is (abstract names include their leading
 * NUL; an unnamed socket has length 0). */
static size_t unix_name(const nk_addr *a, const char **name)
{
    size_t off = offsetof(struct sockaddr_un, sun_path);
    *name = a->u.un.sun_path;
    if (a->len <= off)
        return 0;
    size_t n = a->len - off;
    if (n > sizeof(a->u.un.sun_path))
        n = sizeof(a->u.un.sun_path);
    if (a->u.un.sun_path[0] == '\0')
        return n;
    return strnlen(a->u.un.sun_path, n);
}

/* snprintf's result as the API reports it: the length, or -ENOSPC when the (NUL-terminated)
 * text had to be truncated. */
static int fit(int n, size_t buflen)
{
    if (n < 0)
        return -EINVAL;
    return (size_t)n >= buflen ? -ENOSPC : n;
}

/* Host text without brackets into h (NK_ADDR_STRLEN bytes). */
static int host_text(const nk_addr *a, char *h)
{
    switch (a->u.sa.sa_family) {
    case AF_INET:
        if (!inet_ntop(AF_INET, &a->u.in.sin_addr, h, INET_ADDRSTRLEN))
            return -errno;
        return 0;
    case AF_INET6: {
        if (!inet_ntop(AF_INET6, &a->u.in6.sin6_addr, h, INET6_ADDRSTRLEN))
            return -errno;
        uint32_t scope = a->u.in6.sin6_scope_id;
        if (scope) {
            char ifname[IF_NAMESIZE];
            size_t n = strlen(h);
            if (if_indextoname(scope, ifname))
                snprintf(h + n, NK_ADDR_STRLEN - n, "%%%s", ifname);
            else
                snprintf(h + n, NK_ADDR_STRLEN - n, "%%%u", (unsigned)scope);
        }
        return 0;
    }
    case AF_UNIX: {
        const char *name;
        size_t n = unix_name(a, &name);
        if (n && name[0] == '\0') {
            /* Abstract: shown as "@name"; a NUL inside the name ends the text early. */
            h[0] = '@';
            memcpy(h + 1, name + 1, n - 1);
            h[n] = '\0';
        } else {
            memcpy(h, name, n);
            h[n] = '\0';
        }
        return 0;
    }
    default:
        return -EAFNOSUPPORT;
    }
}

int nk_addr_format(const nk_addr *addr, char *buf, size_t buflen)
{
    char h[NK_ADDR_STRLEN];
    int rc = host_text(addr, h);
    if (rc < 0) {
        if (buflen)
            buf[0] = '\0';
        return rc;
    }
    switch (addr->u.sa.sa_family) {
    case AF_INET:
        return fit(snprintf(buf, buflen, "%s:%d", h, nk_addr_port(addr)), buflen);
    case AF_INET6:
        return fit(snprintf(buf, buflen, "[%s]:%d", h, nk_addr_port(addr)), buflen);
    default:
        return fit(snprintf(buf, buflen, UNIX_PREFIX "%s", h), buflen);
    }
}

int nk_addr_format_host(const nk_addr *addr, char *buf, size_t buflen)
{
    char h[NK_ADDR_STRLEN];
    int rc = host_text(addr, h);
    if (rc < 0) {
        if (buflen)
            buf[0] = '\0';
        return rc;
    }
    return fit(snprintf(buf, buflen, "%s", h), buflen);
}

int nk_addr_family(const nk_addr *addr) { return addr->u.sa.sa_family; }

int nk_addr_port(const nk_addr *addr)
{
    switch (addr->u.sa.sa_family) {
    case AF_INET:
        return ntohs(addr->u.in.sin_port);
    case AF_INET6:
        return ntohs(addr->u.in6.sin6_port);
    default:
        return -EAFNOSUPPORT; /* a unix address has no port */
    }
}

void nk_addr_set_port(nk_addr *addr, int port)
{
    uint16_t p = htons((uint16_t)port);
    if (addr->u.sa.sa_family == AF_INET)
        addr->u.in.sin_port = p;
    else if (addr->u.sa.sa_family == AF_INET6)
        addr->u.in6.sin6_port = p;
}

int nk_addr_equal(const nk_addr *a, const nk_addr *b)
{
    if (a->u.sa.sa_family != b->u.sa.sa_family)
        return 0;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        return a->u.in.sin_addr.s_addr == b->u.in.sin_addr.s_addr &&
               a->u.in.sin_port == b->u.in.sin_port;
    case AF_INET6: /* flow info is per-packet, not part of the address */
        return memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, sizeof(struct in6_addr)) == 0 &&
               a->u.in6.sin6_port == b->u.in6.sin6_port &&
               a->u.in6.sin6_scope_id == b->u.in6.sin6_scope_id;
    case AF_UNIX: {
        const char *na, *nb;
        size_t la = unix_name(a, &na), lb = unix_name(b, &nb);
        return la == lb && memcmp(na, nb, la) == 0;
    }
    default:
        return a->len == b->len && memcmp(&a->u, &b->u, a->len) == 0;
    }
}

int nk_addr_is_wildcard(const nk_addr *addr)
{
    if (addr->u.sa.sa_family == AF_INET)
        return addr->u.in.sin_addr.s_addr == htonl(INADDR_ANY);
    if (addr->u.sa.sa_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&addr->u.in6.sin6_addr);
    return 0;
}

int nk_addr_is_loopback(const nk_addr *addr)
{
    if (addr->u.sa.sa_family == AF_INET)
        return (ntohl(addr->u.in.sin_addr.s_addr) >> 24) == 127;
    if (addr->u.sa.sa_family == AF_INET6) {
        const struct in6_addr *a6 = &addr->u.in6.sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a6))
            return 1;
        /* ::ffff:127.x.y.z reaches the IPv4 loopback through a dual-stack socket. */
        return IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127;
    }
    return 0;
}

/* ---- classification ------------------------------------------------------------------------ */

/* Special-purpose blocks (the IANA IPv4 and IPv6 special-purpose address registries, RFC 6890),
 * first match wins, so a block comes before any block that contains it. */
static const struct {
    sa_family_t family;
    uint8_t net[16]; /* network byte order */
    unsigned bits;   /* prefix length */
    int kind;        /* enum nk_addr_kind */
    const char *text;
} special[] = {
    {AF_INET, {255, 255, 255, 255}, 32, NK_ADDR_BROADCAST, "limited broadcast"},
    {AF_INET, {0, 0, 0, 0}, 32, NK_ADDR_UNSPECIFIED, "unspecified"},
    {AF_INET, {0}, 8, NK_ADDR_THIS_NETWORK, "this network (RFC 1122)"},
    {AF_INET, {127}, 8, NK_ADDR_LOOPBACK, "loopback"},
    {AF_INET, {10}, 8, NK_ADDR_PRIVATE, "private (RFC 1918)"},
    {AF_INET, {172, 16}, 12, NK_ADDR_PRIVATE, "private (RFC 1918)"},
    {AF_INET, {192, 168}, 16, NK_ADDR_PRIVATE, "private (RFC 1918)"},
    {AF_INET, {100, 64}, 10, NK_ADDR_SHARED, "shared address space (RFC 6598)"},
    {AF_INET, {169, 254}, 16, NK_ADDR_LINK_LOCAL, "link-local"},
    {AF_INET, {192, 0, 2}, 24, NK_ADDR_DOCUMENTATION, "documentation (RFC 5737)"},
    {AF_INET, {198, 51, 100}, 24, NK_ADDR_DOCUMENTATION, "documentation (RFC 5737)"},
    {AF_INET, {203, 0, 113}, 24, NK_ADDR_DOCUMENTATION, "documentation (RFC 5737)"},
    {AF_INET, {198, 18}, 15, NK_ADDR_BENCHMARKING, "benchmarking (RFC 2544)"},
    {AF_INET, {224}, 4, NK_ADDR_MULTICAST, "multicast"},
    {AF_INET, {240}, 4, NK_ADDR_RESERVED, "reserved"},
    {AF_INET6, {0}, 128, NK_ADDR_UNSPECIFIED, "unspecified"},
    {AF_INET6, {[15] = 1}, 128, NK_ADDR_LOOPBACK, "loopback"},
    {AF_INET6, {[10] = 0xff, [11] = 0xff}, 96, NK_ADDR_V4MAPPED, "IPv4-mapped"},
    {AF_INET6, {0xff}, 8, NK_ADDR_MULTICAST, "multicast"},
    {AF_INET6, {0xfe, 0x80}, 10, NK_ADDR_LINK_LOCAL, "link-local"},
    {AF_INET6, {0xfc}, 7, NK_ADDR_PRIVATE, "unique local (RFC 4193)"},
    {AF_INET6, {0x20, 0x01, 0x0d, 0xb8}, 32, NK_ADDR_DOCUMENTATION, "documentation (RFC 3849)"},
    {AF_INET6, {0x20, 0x02}, 16, NK_ADDR_6TO4, "6to4"},
};

static int prefix_match(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == net[full];
}

/* The entry of special[] for addr: its index, -1 for a global address, -EAFNOSUPPORT when
 * addr is no IP address. */
static int classify(const nk_addr *addr)
{
    const uint8_t *bytes;
    sa_family_t family = addr->u.sa.sa_family;
    if (family == AF_INET)
        bytes = (const uint8_t *)&addr->u.in.sin_addr.s_addr;
    else if (family == AF_INET6)
        bytes = addr->u.in6.sin6_addr.s6_addr;
    else
        return -EAFNOSUPPORT;
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (special[i].family == family && prefix_match(bytes, special[i].net, special[i].bits))
            return (int)i;
    return -1;
}

int nk_addr_kind(const nk_addr *addr)
{
    int i = classify(addr);
    if (i == -EAFNOSUPPORT)
        return i;
    return i < 0 ? NK_ADDR_GLOBAL : (int)special[i].kind;
}

const char *nk_addr_kind_text(const nk_addr *addr)
{
    int i = classify(addr);
    if (i == -EAFNOSUPPORT)
        return "";
    return i < 0 ? "global" : special[i].text;
}
