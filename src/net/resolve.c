/* Name look-ups: getaddrinfo for "host:port" with names, getnameinfo for reverse look-ups.
 *
 * Numeric text never reaches the resolver: nk_addr_parse answers it, so that "8080" means the
 * same (all interfaces) here as everywhere else, and no nsswitch module is consulted for an
 * address that is already an address. Resolver errors become NK_ERR_GAI(...) codes, except
 * EAI_SYSTEM, whose real cause is in errno.
 */
#include <netkit/addr.h>
#include <netkit/err.h>

#include "net/net_internal.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>

static int map_gai_error(int rc, int saved_errno)
{
    if (rc == EAI_SYSTEM)
        return saved_errno ? -saved_errno : -EIO;
    if (rc == EAI_MEMORY)
        return -ENOMEM;
    return NK_ERR_GAI(rc);
}

static int already_have(const nk_addr *out, size_t n, const nk_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (nk_addr_equal(&out[i], a))
            return 1;
    return 0;
}

int nk_addr_resolve(const char *text, int socktype, int passive, nk_addr *out, size_t max)
{
    if (!text || !out || max == 0)
        return -EINVAL;
    /* Numeric forms (and unix:) are answered without the resolver. A bracketed host must be a
     * numeric IPv6 address, so whatever parse says about it is final. */
    int rc = nk_addr_parse(text, 0, &out[0]);
    if (rc == 0)
        return 1;
    if (rc != -EINVAL || text[0] == '[' || strncmp(text, "unix:", 5) == 0)
        return rc;

    char host[NI_MAXHOST];
    char port[NI_MAXSERV];
    int bracketed;
    rc = nk__addr_split(text, host, sizeof(host), port, sizeof(port), &bracketed);
    if (rc < 0)
        return rc;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    int p = nk__port_parse(port);
    if (p == -ERANGE)
        return p; /* getaddrinfo would wrap 99999 around instead of refusing it */
    if (p >= 0)
        hints.ai_flags |= AI_NUMERICSERV;

    struct addrinfo *res = NULL;
    errno = 0;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0)
        return map_gai_error(rc, errno);
    size_t n = 0;
    /* The list holds one entry per socket type when socktype is 0; keep each address once. */
    for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(out[n].u))
            continue;
        nk_addr a;
        memset(&a, 0, sizeof(a));
        memcpy(&a.u, ai->ai_addr, ai->ai_addrlen);
        a.len = ai->ai_addrlen;
        if (!already_have(out, n, &a))
            out[n++] = a;
    }
    freeaddrinfo(res);
    return n ? (int)n : NK_ERR_GAI(EAI_NONAME);
}

int nk_addr_reverse(const nk_addr *addr, char *name, size_t namelen)
{
    int fam = nk_addr_family(addr);
    if (fam != AF_INET && fam != AF_INET6)
        return -EAFNOSUPPORT;
    if (!name || namelen == 0)
        return -ENOSPC;
    errno = 0;
    int rc = getnameinfo(&addr->u.sa, addr->len, name, (socklen_t)namelen, NULL, 0, NI_NAMEREQD);
    if (rc == EAI_OVERFLOW)
        return -ENOSPC;
    if (rc != 0)
        return map_gai_error(rc, errno);
    return 0;
}
