/* Socket options by name, for tools ("SO_RCVBUF=65536", "TCP_NODELAY=on").
 *
 * One table gives each option its level, number and kind of value; the names list is built
 * from the same table so the two cannot disagree. Values are decimal integers; boolean
 * options also take on/off, yes/no, true/false. SO_LINGER's value is the linger time in
 * seconds (enabling it), or off/no/false to disable; reading it gives -1 when disabled.
 */
#include <netkit/sock.h>

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

enum opt_kind { OPT_INT, OPT_BOOL, OPT_LINGER };

struct sockopt_def {
    const char *name;
    int level;
    int optname;
    enum opt_kind kind;
};

/* X(name, level, kind): the option's constant is its name. */
#define NK_SOCKOPTS(X)                          \
    X(SO_RCVBUF, SOL_SOCKET, OPT_INT)           \
    X(SO_SNDBUF, SOL_SOCKET, OPT_INT)           \
    X(SO_KEEPALIVE, SOL_SOCKET, OPT_BOOL)       \
    X(SO_REUSEADDR, SOL_SOCKET, OPT_BOOL)       \
    X(SO_REUSEPORT, SOL_SOCKET, OPT_BOOL)       \
    X(SO_BROADCAST, SOL_SOCKET, OPT_BOOL)       \
    X(SO_LINGER, SOL_SOCKET, OPT_LINGER)        \
    X(SO_RCVLOWAT, SOL_SOCKET, OPT_INT)         \
    X(SO_SNDLOWAT, SOL_SOCKET, OPT_INT)         \
    X(SO_PRIORITY, SOL_SOCKET, OPT_INT)         \
    X(SO_MARK, SOL_SOCKET, OPT_INT)             \
    X(TCP_NODELAY, IPPROTO_TCP, OPT_BOOL)       \
    X(TCP_KEEPIDLE, IPPROTO_TCP, OPT_INT)       \
    X(TCP_KEEPINTVL, IPPROTO_TCP, OPT_INT)      \
    X(TCP_KEEPCNT, IPPROTO_TCP, OPT_INT)        \
    X(TCP_MAXSEG, IPPROTO_TCP, OPT_INT)         \
    X(TCP_QUICKACK, IPPROTO_TCP, OPT_BOOL)      \
    X(TCP_CORK, IPPROTO_TCP, OPT_BOOL)          \
    X(TCP_USER_TIMEOUT, IPPROTO_TCP, OPT_INT)   \
    X(TCP_FASTOPEN, IPPROTO_TCP, OPT_INT)       \
    X(TCP_DEFER_ACCEPT, IPPROTO_TCP, OPT_INT)   \
    X(IP_TTL, IPPROTO_IP, OPT_INT)              \
    X(IP_TOS, IPPROTO_IP, OPT_INT)              \
    X(IP_MULTICAST_TTL, IPPROTO_IP, OPT_INT)    \
    X(IP_MULTICAST_LOOP, IPPROTO_IP, OPT_BOOL)  \
    X(IPV6_UNICAST_HOPS, IPPROTO_IPV6, OPT_INT) \
    X(IPV6_V6ONLY, IPPROTO_IPV6, OPT_BOOL)

#define DEF_ENTRY(n, lvl, kind) {#n, lvl, n, kind},
#define NAME_ENTRY(n, lvl, kind) #n,

static const struct sockopt_def defs[] = {NK_SOCKOPTS(DEF_ENTRY)};
static const char *const names[] = {NK_SOCKOPTS(NAME_ENTRY) NULL};

#define NDEFS (sizeof(defs) / sizeof(defs[0]))

const char *const *nk_sockopt_names(void) { return names; }

static const struct sockopt_def *find_def(const char *name, size_t n)
{
    for (size_t i = 0; i < NDEFS; i++)
        if (strlen(defs[i].name) == n && strncasecmp(defs[i].name, name, n) == 0)
            return &defs[i];
    return NULL;
}

/* A decimal int with an optional minus sign; nothing else (no spaces, no hex). */
static int parse_int(const char *s, int *out)
{
    int neg = s[0] == '-';
    const char *p = s + neg;
    if (*p == '\0')
        return -EINVAL;
    long long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (*p - '0');
        if (v > (long long)INT_MAX + 1)
            return -EINVAL;
    }
    v = neg ? -v : v;
    if (v > INT_MAX || v < INT_MIN)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

/* on/yes/true -> 1, off/no/false -> 0, -EINVAL for anything else. */
static int parse_word(const char *s)
{
    static const char *const yes[] = {"on", "yes", "true"};
    static const char *const no[] = {"off", "no", "false"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    return -EINVAL;
}

int nk_sockopt_set(int fd, const char *name_eq_value)
{
    if (!name_eq_value)
        return -EINVAL;
    const char *eq = strchr(name_eq_value, '=');
    if (!eq)
        return -EINVAL;
    const struct sockopt_def *def = find_def(name_eq_value, (size_t)(eq - name_eq_value));
    if (!def)
        return -ENOENT;
    const char *val = eq + 1;
    int v;
    if (parse_int(val, &v) < 0) {
        if (def->kind == OPT_INT)
            return -EINVAL;
        int w = parse_word(val);
        if (w < 0)
            return -EINVAL;
        if (def->kind == OPT_LINGER && w == 1)
            return -EINVAL; /* "on" says nothing about how long to linger */
        v = def->kind == OPT_LINGER ? -1 : w;
    } else if (def->kind == OPT_LINGER && v < 0) {
        return -EINVAL;
    }
    int rc;
    if (def->kind == OPT_LINGER) {
        struct linger l = {.l_onoff = v >= 0, .l_linger = v >= 0 ? v : 0};
        rc = setsockopt(fd, def->level, def->optname, &l, sizeof(l));
    } else {
        rc = setsockopt(fd, def->level, def->optname, &v, sizeof(v));
    }
    return rc < 0 ? -errno : 0;
}

int nk_sockopt_get(int fd, const char *name, int *value)
{
    if (!name || !value)
        return -EINVAL;
    const struct sockopt_def *def = find_def(name, strlen(name));
    if (!def)
        return -ENOENT;
    if (def->kind == OPT_LINGER) {
        struct linger l;
        socklen_t len = sizeof(l);
        if (getsockopt(fd, def->level, def->optname, &l, &len) < 0)
            return -errno;
        *value = l.l_onoff ? l.l_linger : -1;
        return 0;
    }
    int v = 0;
    socklen_t len = sizeof(v);
    if (getsockopt(fd, def->level, def->optname, &v, &len) < 0)
        return -errno;
    /* A few IP options may come back as a single byte. */
    if (len == 1)
        v = *(unsigned char *)&v;
    *value = v;
    return 0;
}
