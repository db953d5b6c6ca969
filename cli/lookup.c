/* netkit lookup: names, addresses, services, interfaces, this host's name, and what a TLS
 * server presents.
 *
 * Each verb prints "label  value" lines with the labels padded to one column (services print a
 * small table), so that the output reads well and is easy to pick apart with awk.
 */
#include "cli.h"
#include "http/client.h"
#include "opt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <netpacket/packet.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Interface flags from <linux/if.h>, which cannot be included next to <net/if.h>. */
#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif
#ifndef IFF_DORMANT
#define IFF_DORMANT 0x20000
#endif
#ifndef IFF_ECHO
#define IFF_ECHO 0x40000
#endif

#define LABEL_WIDTH 11

static void row(const char *label, const char *value)
{
    printf("%-*s %s\n", LABEL_WIDTH, label, value);
}

/* The option callback of a verb whose table is empty: getopt never returns a key for it. */
static int on_lookup_no_opt(void *ctx, int key, const char *value)
{
    (void)ctx;
    (void)key;
    (void)value;
    return CLI_USAGE;
}

/* Copy a sockaddr from the resolver into an nk_addr. */
static void addr_from(nk_addr *out, const struct sockaddr *sa, socklen_t len)
{
    memset(out, 0, sizeof *out);
    if (len > sizeof out->u)
        len = sizeof out->u;
    memcpy(&out->u, sa, len);
    out->len = len;
}

static int resolver_error(int rc)
{
    return rc == EAI_SYSTEM ? -errno : NK_ERR_GAI(rc);
}

/* ---- host ------------------------------------------------------------------------------------ */

static const cli_opt host_opts[] = {
    {"ipv4", '4', NULL, "IPv4 addresses only"},
    {"ipv6", '6', NULL, "IPv6 addresses only"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand host_operands[] = {
    {"NAME", "the name to resolve (or an address, which resolves to itself)"},
    {NULL, NULL},
};

static void host_notes(FILE *out)
{
    fputs("Exits 1 when the name does not resolve.\n", out);
}

static const cli_spec host_spec = {
    .cmd = "lookup host",
    .synopsis = "[-4|-6] NAME",
    .about = "Resolve NAME with getaddrinfo and print every address it resolves to, IPv4 and\n"
             "IPv6, each once, in the resolver's order:\n"
             "  name       NAME as given\n"
             "  canonical  the canonical name (AI_CANONNAME), when the resolver gives one\n"
             "  ipv4       one line per IPv4 address\n"
             "  ipv6       one line per IPv6 address\n",
    .operands = host_operands,
    .opts = host_opts,
    .notes = host_notes,
};
CLI_SPEC_REGISTER(host_spec);

static int on_lookup_host_opt(void *ctx, int key, const char *value)
{
    (void)value;
    int *family = ctx;
    *family = key == '4' ? AF_INET : AF_INET6;
    return 0;
}

/* The lines of lookup host for the resolver's answer res. */
static void lookup_host_print(const char *name, const struct addrinfo *res)
{
    row("name", name);
    if (res->ai_canonname && *res->ai_canonname)
        row("canonical", res->ai_canonname);
    /* Print each address once, keeping the resolver's order. */
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        int seen = 0;
        for (const struct addrinfo *p = res; p != ai && !seen; p = p->ai_next)
            seen = p->ai_addrlen == ai->ai_addrlen &&
                   memcmp(p->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0;
        if (seen)
            continue;
        nk_addr a;
        char text[NK_ADDR_STRLEN];
        addr_from(&a, ai->ai_addr, ai->ai_addrlen);
        if (nk_addr_format_host(&a, text, sizeof text) < 0)
            continue;
        row(ai->ai_family == AF_INET ? "ipv4" : "ipv6", text);
    }
}

static int lookup_host(int argc, char **argv)
{
    const char *cmd = argv[0];
    int family = AF_UNSPEC, first;
    int rc = cli_opt_parse(&host_spec, argc, argv, on_lookup_host_opt, &family, &first);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    optind = first;
    const char *name;
    if (cli_one_operand(cmd, argc, argv, "NAME", &name) != 0)
        return CLI_USAGE;
    if (!*name)
        return cli_usage(cmd, "empty NAME");

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM; /* one entry per address, not one per socket type */
    hints.ai_flags = AI_CANONNAME;
    rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0)
        return cli_fail(cmd, "%s: %s", name, nk_strerror(resolver_error(rc)));
    lookup_host_print(name, res);
    freeaddrinfo(res);
    return CLI_OK;
}

/* ---- addr ------------------------------------------------------------------------------------ */

static const cli_opt addr_opts[] = {
    {"numeric", 'n', NULL, "no reverse look-up (no name line)"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand addr_operands[] = {
    {"ADDRESS", "an IPv4 address (192.168.1.2, or as 8 hex digits with a letter or a 0x "
                "prefix: c0a80102, 0x7f000001, or as a 32-bit integer: 3232235778) or an IPv6 "
                "address (::1, [fe80::1%eth0])"},
    {NULL, NULL},
};

static const cli_spec addr_spec = {
    .cmd = "lookup addr",
    .synopsis = "[-n] ADDRESS",
    .about = "Show an address in its several forms.\n"
             "\n"
             "IPv4 lines:  address (dotted), family, hex (network byte order), integer (the\n"
             "             4 bytes read as one big-endian number), binary, kind, arpa (the PTR\n"
             "             name), name\n"
             "IPv6 lines:  address, family, full (all 32 digits), compressed (RFC 5952), kind,\n"
             "             ipv4 (for IPv4-mapped addresses), arpa, name\n"
             "The name line appears only when a reverse look-up finds one.\n",
    .operands = addr_operands,
    .opts = addr_opts,
};
CLI_SPEC_REGISTER(addr_spec);

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* IPv4 as hex ("c0a80102", "0xc0a80102") or as an integer ("3232235778"). An all-digit text is
 * the integer; hex needs a letter or the 0x prefix. Returns 0 and the address in host order. */
static int parse_ipv4_number(const char *s, uint32_t *out)
{
    size_t n = strlen(s);
    int prefixed = n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    int all_digits = n > 0 && strspn(s, "0123456789") == n;
    if (all_digits && !prefixed) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) {
            v = v * 10 + (uint64_t)(s[i] - '0');
            if (v > UINT32_MAX)
                return -ERANGE;
        }
        *out = (uint32_t)v;
        return 0;
    }
    const char *h = prefixed ? s + 2 : s;
    size_t hn = strlen(h);
    if (hn == 0 || hn > 8 || (!prefixed && hn != 8))
        return -EINVAL;
    uint32_t v = 0;
    for (size_t i = 0; i < hn; i++) {
        int d = hexval((unsigned char)h[i]);
        if (d < 0)
            return -EINVAL;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

static void print_reverse_name(const nk_addr *a)
{
    char name[NI_MAXHOST];
    if (nk_addr_reverse(a, name, sizeof name) >= 0)
        row("name", name);
}

static void show_ipv4(uint32_t host_order, int numeric)
{
    nk_addr a;
    memset(&a, 0, sizeof a);
    a.u.in.sin_family = AF_INET;
    a.u.in.sin_addr.s_addr = htonl(host_order);
    a.len = sizeof a.u.in;
    const uint8_t *b = (const uint8_t *)&a.u.in.sin_addr.s_addr;

    char text[64];
    snprintf(text, sizeof text, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    row("address", text);
    row("family", "ipv4");
    snprintf(text, sizeof text, "%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
    row("hex", text);
    snprintf(text, sizeof text, "%" PRIu32, host_order);
    row("integer", text);
    char *p = text;
    for (int i = 0; i < 4; i++) {
        for (int bit = 7; bit >= 0; bit--)
            *p++ = (char)('0' + ((b[i] >> bit) & 1));
        *p++ = i < 3 ? '.' : '\0';
    }
    row("binary", text);
    row("kind", nk_addr_kind_text(&a));
    snprintf(text, sizeof text, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
    row("arpa", text);
    if (!numeric)
        print_reverse_name(&a);
}

static void show_ipv6(const nk_addr *a, int numeric)
{
    const uint8_t *b = a->u.in6.sin6_addr.s6_addr;
    char text[NK_ADDR_STRLEN];
    if (nk_addr_format_host(a, text, sizeof text) < 0)
        inet_ntop(AF_INET6, b, text, sizeof text);
    row("address", text);
    row("family", "ipv6");
    char full[40];
    char *p = full;
    for (int i = 0; i < 16; i += 2) {
        snprintf(p, 6, "%02x%02x%s", b[i], b[i + 1], i < 14 ? ":" : "");
        p += i < 14 ? 5 : 4;
    }
    row("full", full);
    char compressed[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, b, compressed, sizeof compressed);
    row("compressed", compressed);
    row("kind", nk_addr_kind_text(a));
    if (IN6_IS_ADDR_V4MAPPED(&a->u.in6.sin6_addr)) {
        char v4[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, b + 12, v4, sizeof v4);
        row("ipv4", v4);
    }
    /* Nibbles from the last to the first (RFC 3596 section 2.5). */
    char arpa[16 * 4 + 16];
    p = arpa;
    for (int i = 15; i >= 0; i--) {
        static const char hex[] = "0123456789abcdef";
        *p++ = hex[b[i] & 0xf];
        *p++ = '.';
        *p++ = hex[b[i] >> 4];
        *p++ = '.';
    }
    memcpy(p, "ip6.arpa", sizeof "ip6.arpa"); /* 64 nibble bytes + 9 fit in arpa */
    row("arpa", arpa);
    if (!numeric)
        print_reverse_name(a);
}

static int on_lookup_addr_opt(void *ctx, int key, const char *value)
{
    (void)key; /* 'n', the only option */
    (void)value;
    *(int *)ctx = 1;
    return 0;
}

/* An IPv6 ADDRESS, bracketed or not, maybe with a %zone: the library parses "[V6]:0". */
static int lookup_addr_ipv6(const char *cmd, const char *text, int numeric)
{
    char buf[NK_ADDR_STRLEN + 8];
    size_t n = strlen(text);
    int bracketed = n >= 2 && text[0] == '[' && text[n - 1] == ']';
    int len = bracketed ? snprintf(buf, sizeof buf, "%s:0", text)
                        : snprintf(buf, sizeof buf, "[%s]:0", text);
    nk_addr a;
    if (len > 0 && (size_t)len < sizeof buf && nk_addr_parse(buf, 0, &a) == 0 &&
        nk_addr_family(&a) == AF_INET6) {
        show_ipv6(&a, numeric);
        return CLI_OK;
    }
    return cli_usage(cmd, "'%s' is not an IPv6 address", text);
}

static int lookup_addr(int argc, char **argv)
{
    const char *cmd = argv[0];
    int numeric = 0, first;
    int rc = cli_opt_parse(&addr_spec, argc, argv, on_lookup_addr_opt, &numeric, &first);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    optind = first;
    const char *text;
    if (cli_one_operand(cmd, argc, argv, "ADDRESS", &text) != 0)
        return CLI_USAGE;

    struct in_addr in4;
    if (inet_pton(AF_INET, text, &in4) == 1) {
        show_ipv4(ntohl(in4.s_addr), numeric);
        return CLI_OK;
    }
    if (strchr(text, ':'))
        return lookup_addr_ipv6(cmd, text, numeric);
    uint32_t v;
    rc = parse_ipv4_number(text, &v);
    if (rc == -ERANGE)
        return cli_usage(cmd, "'%s' is out of range for an IPv4 address (at most 4294967295)",
                         text);
    if (rc < 0)
        return cli_usage(cmd, "'%s' is not an address (dotted IPv4, IPv6, 8 hex digits or an "
                              "integer)",
                         text);
    show_ipv4(v, numeric);
    return CLI_OK;
}

/* ---- service --------------------------------------------------------------------------------- */

static const cli_operand service_operands[] = {
    {"NAME|PORT[/PROTO]", "a service name (http) or a port (80), for PROTO (tcp, udp...) or "
                          "else for tcp and udp"},
    {NULL, NULL},
};

static void service_notes(FILE *out)
{
    fputs("Exits 1 when nothing matches.\n", out);
}

static const cli_spec service_spec = {
    .cmd = "lookup service",
    .synopsis = "NAME|PORT[/PROTO]",
    .about = "Look a service up in the services database (/etc/services): a service's port, or\n"
             "a port's service. Prints a table, one line per match:\n"
             "  SERVICE  PORT/PROTO  ALIASES\n",
    .operands = service_operands,
    .notes = service_notes,
};
CLI_SPEC_REGISTER(service_spec);

/* What NAME|PORT[/PROTO] asks for: a name (or NULL and a port) and the protocols to try. */
typedef struct service_query {
    char what[256];        /* the operand; name points into it */
    const char *name;      /* NULL: look the port up */
    long port;
    const char *protos[3]; /* NULL-terminated */
    int proto_given;
} service_query;

static int lookup_service_query(const char *cmd, const char *arg, service_query *q)
{
    if (snprintf(q->what, sizeof q->what, "%s", arg) >= (int)sizeof q->what)
        return cli_usage(cmd, "service name too long");
    q->protos[0] = "tcp";
    q->protos[1] = "udp";
    q->protos[2] = NULL;
    char *slash = strchr(q->what, '/');
    q->proto_given = slash != NULL;
    if (slash) {
        *slash = '\0';
        if (!slash[1])
            return cli_usage(cmd, "missing protocol after '/' in '%s'", arg);
        q->protos[0] = slash + 1;
        q->protos[1] = NULL;
    }
    if (!q->what[0])
        return cli_usage(cmd, "missing NAME or PORT in '%s'", arg);
    q->name = q->what;
    q->port = -1;
    if (strspn(q->what, "0123456789") == strlen(q->what)) {
        if (cli_parse_long(q->what, 0, 65535, &q->port) < 0)
            return cli_usage(cmd, "port out of range in '%s' (0 to 65535)", arg);
        q->name = NULL;
    }
    return 0;
}

/* One line of the table (after its heading). */
static void lookup_service_row(const struct servent *se)
{
    char portproto[32];
    snprintf(portproto, sizeof portproto, "%d/%s", ntohs((uint16_t)se->s_port), se->s_proto);
    if (se->s_aliases && se->s_aliases[0]) {
        printf("%-16s %-11s", se->s_name, portproto);
        for (char **alias = se->s_aliases; *alias; alias++)
            printf(" %s", *alias);
        putchar('\n');
    } else {
        printf("%-16s %s\n", se->s_name, portproto);
    }
}

/* getserv*_r with a buffer grown on ERANGE. Returns 1 and fills *se (pointing into *buf) when
 * found, 0 when not, negative on error. */
static int serv_lookup(const char *name, int port, const char *proto, struct servent *se,
                       char **buf)
{
    size_t size = 1024;
    for (;;) {
        char *p = realloc(*buf, size);
        if (!p)
            return -ENOMEM;
        *buf = p;
        struct servent *result = NULL;
        int rc = name ? getservbyname_r(name, proto, se, p, size, &result)
                      : getservbyport_r(htons((uint16_t)port), proto, se, p, size, &result);
        if (rc == ERANGE && size < 1024 * 1024) {
            size *= 2;
            continue;
        }
        if (rc != 0 && rc != ENOENT)
            return -rc;
        return result != NULL;
    }
}

static int lookup_service(int argc, char **argv)
{
    const char *cmd = argv[0];
    int first;
    int rc = cli_opt_parse(&service_spec, argc, argv, on_lookup_no_opt, NULL, &first);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    optind = first;
    const char *arg;
    if (cli_one_operand(cmd, argc, argv, "NAME or PORT", &arg) != 0)
        return CLI_USAGE;
    service_query q = {0};
    if ((rc = lookup_service_query(cmd, arg, &q)))
        return rc;

    char *buf = NULL;
    int found = 0;
    for (int i = 0; q.protos[i]; i++) {
        struct servent se;
        rc = serv_lookup(q.name, (int)q.port, q.protos[i], &se, &buf);
        if (rc < 0) {
            free(buf);
            return cli_fail(cmd, "%s: %s", arg, nk_strerror(rc));
        }
        if (rc == 0)
            continue;
        if (!found)
            printf("%-16s %-11s %s\n", "SERVICE", "PORT/PROTO", "ALIASES");
        found = 1;
        lookup_service_row(&se);
    }
    free(buf);
    if (!found)
        return cli_fail(cmd, "%s: no such service%s", arg, q.proto_given ? "" : " for tcp or udp");
    return CLI_OK;
}

/* ---- ifaces ---------------------------------------------------------------------------------- */

static const cli_operand ifaces_operands[] = {
    {"NAME", "only this interface (lo, eth0...)"},
    {NULL, NULL},
};

static void ifaces_notes(FILE *out)
{
    fputs("Exits 1 when NAME is not an interface.\n", out);
}

static const cli_spec ifaces_spec = {
    .cmd = "lookup ifaces",
    .synopsis = "[NAME]",
    .about = "List the network interfaces (getifaddrs) with their addresses and flags, or only\n"
             "NAME. For each interface:\n"
             "  NAME  index N  flags UP,BROADCAST,LOOPBACK,RUNNING,MULTICAST,...\n"
             "      mac     the hardware address (from the AF_PACKET entry)\n"
             "      inet    ADDRESS/PREFIX  netmask MASK  [broadcast ADDR | peer ADDR]\n"
             "      inet6   ADDRESS/PREFIX  netmask MASK\n",
    .operands = ifaces_operands,
    .notes = ifaces_notes,
};
CLI_SPEC_REGISTER(ifaces_spec);

static void format_flags(unsigned flags, char *out, size_t outlen)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {IFF_UP, "UP"},
        {IFF_BROADCAST, "BROADCAST"},
        {IFF_DEBUG, "DEBUG"},
        {IFF_LOOPBACK, "LOOPBACK"},
        {IFF_POINTOPOINT, "POINTOPOINT"},
        {IFF_NOTRAILERS, "NOTRAILERS"},
        {IFF_RUNNING, "RUNNING"},
        {IFF_NOARP, "NOARP"},
        {IFF_PROMISC, "PROMISC"},
        {IFF_ALLMULTI, "ALLMULTI"},
        {IFF_MASTER, "MASTER"},
        {IFF_SLAVE, "SLAVE"},
        {IFF_MULTICAST, "MULTICAST"},
        {IFF_PORTSEL, "PORTSEL"},
        {IFF_AUTOMEDIA, "AUTOMEDIA"},
        {IFF_DYNAMIC, "DYNAMIC"},
        {IFF_LOWER_UP, "LOWER_UP"},
        {IFF_DORMANT, "DORMANT"},
        {IFF_ECHO, "ECHO"},
    };
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(flags & names[i].bit))
            continue;
        int n = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", names[i].name);
        if (n < 0 || (size_t)n >= outlen - used)
            break;
        used += (size_t)n;
    }
    if (!used)
        snprintf(out, outlen, "(none)");
}

static void format_mac(const struct sockaddr_ll *ll, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < ll->sll_halen && i < 8 && used + 4 <= outlen; i++)
        used += (size_t)snprintf(out + used, outlen - used, "%s%02x", i ? ":" : "",
                                 ll->sll_addr[i]);
}

/* Prefix length of a netmask, or -1 when its one bits are not contiguous. */
static int mask_prefix(const uint8_t *m, size_t n)
{
    int bits = 0;
    size_t i = 0;
    for (; i < n && m[i] == 0xff; i++)
        bits += 8;
    if (i < n) {
        uint8_t b = m[i];
        while (b & 0x80) {
            bits++;
            b = (uint8_t)(b << 1);
        }
        if (b)
            return -1;
        for (i++; i < n; i++)
            if (m[i])
                return -1;
    }
    return bits;
}

static void host_of(const struct sockaddr *sa, char *out, size_t outlen)
{
    nk_addr a;
    socklen_t len = sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                             : sizeof(struct sockaddr_in6);
    addr_from(&a, sa, len);
    if (nk_addr_format_host(&a, out, outlen) < 0)
        snprintf(out, outlen, "?");
}

static void print_ifaddr(const struct ifaddrs *ifa)
{
    int fam = ifa->ifa_addr->sa_family;
    char addr[NK_ADDR_STRLEN], mask[NK_ADDR_STRLEN] = "", other[NK_ADDR_STRLEN] = "";
    char line[3 * NK_ADDR_STRLEN + 64];
    if (fam == AF_PACKET) {
        format_mac((const struct sockaddr_ll *)(const void *)ifa->ifa_addr, addr, sizeof addr);
        printf("    %-7s %s\n", "mac", addr[0] ? addr : "(none)");
        return;
    }
    if (fam != AF_INET && fam != AF_INET6)
        return;
    host_of(ifa->ifa_addr, addr, sizeof addr);
    int prefix = -1;
    if (ifa->ifa_netmask && ifa->ifa_netmask->sa_family == fam) {
        host_of(ifa->ifa_netmask, mask, sizeof mask);
        if (fam == AF_INET)
            prefix = mask_prefix((const uint8_t *)&((const struct sockaddr_in *)(const void *)
                                                        ifa->ifa_netmask)->sin_addr, 4);
        else
            prefix = mask_prefix(((const struct sockaddr_in6 *)(const void *)ifa->ifa_netmask)
                                     ->sin6_addr.s6_addr, 16);
    }
    const char *other_label = NULL;
    if (ifa->ifa_ifu.ifu_broadaddr && ifa->ifa_ifu.ifu_broadaddr->sa_family == fam) {
        if (ifa->ifa_flags & IFF_BROADCAST)
            other_label = "broadcast";
        else if (ifa->ifa_flags & IFF_POINTOPOINT)
            other_label = "peer";
        if (other_label)
            host_of(ifa->ifa_ifu.ifu_broadaddr, other, sizeof other);
    }
    char withprefix[NK_ADDR_STRLEN + 16];
    if (prefix >= 0)
        snprintf(withprefix, sizeof withprefix, "%s/%d", addr, prefix);
    else
        snprintf(withprefix, sizeof withprefix, "%s", addr);
    int n = snprintf(line, sizeof line, "    %-7s %-30s", fam == AF_INET ? "inet" : "inet6",
                     withprefix);
    if (mask[0] && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " netmask %-16s", mask);
    if (other_label && n > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, " %s %s", other_label, other);
    /* Drop the padding at the end of the line. */
    size_t end = strlen(line);
    while (end > 0 && line[end - 1] == ' ')
        line[--end] = '\0';
    puts(line);
}

static int lookup_ifaces(int argc, char **argv)
{
    const char *cmd = argv[0];
    int op; /* the first operand */
    int rc = cli_opt_parse(&ifaces_spec, argc, argv, on_lookup_no_opt, NULL, &op);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    if (op + 1 < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[op + 1]);
    const char *only = op < argc ? argv[op] : NULL;

    struct ifaddrs *list;
    if (getifaddrs(&list) < 0)
        return cli_fail(cmd, "getifaddrs: %s", nk_strerror(-errno));
    int shown = 0;
    /* Interfaces in the order they first appear; each one's entries grouped under it,
     * the hardware address first. */
    for (const struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
        if (!ifa->ifa_name || (only && strcmp(ifa->ifa_name, only) != 0))
            continue;
        int first = 1;
        for (const struct ifaddrs *p = list; p != ifa && first; p = p->ifa_next)
            first = !p->ifa_name || strcmp(p->ifa_name, ifa->ifa_name) != 0;
        if (!first)
            continue;
        char flags[256];
        format_flags(ifa->ifa_flags, flags, sizeof flags);
        if (shown)
            putchar('\n');
        shown++;
        printf("%s  index %u  flags %s\n", ifa->ifa_name, if_nametoindex(ifa->ifa_name), flags);
        for (int pass = 0; pass < 2; pass++)
            for (const struct ifaddrs *p = ifa; p; p = p->ifa_next) {
                if (!p->ifa_addr || strcmp(p->ifa_name, ifa->ifa_name) != 0)
                    continue;
                if ((p->ifa_addr->sa_family == AF_PACKET) == (pass == 0))
                    print_ifaddr(p);
            }
    }
    freeifaddrs(list);
    if (only && !shown)
        return cli_fail(cmd, "%s: no such interface", only);
    return CLI_OK;
}

/* ---- hostname -------------------------------------------------------------------------------- */

static const cli_spec hostname_spec = {
    .cmd = "lookup hostname",
    .synopsis = "[-h]",
    .about = "Print this host's name (gethostname) and, when the resolver knows it, the fully\n"
             "qualified name (getaddrinfo AI_CANONNAME) and its domain:\n"
             "  hostname  NAME\n"
             "  fqdn      NAME.DOMAIN\n"
             "  domain    DOMAIN\n",
};
CLI_SPEC_REGISTER(hostname_spec);

static int lookup_hostname(int argc, char **argv)
{
    const char *cmd = argv[0];
    int first;
    int rc = cli_opt_parse(&hostname_spec, argc, argv, on_lookup_no_opt, NULL, &first);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    if (first < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[first]);

    char host[HOST_NAME_MAX + 1];
    if (gethostname(host, sizeof host) < 0)
        return cli_fail(cmd, "gethostname: %s", nk_strerror(-errno));
    host[sizeof host - 1] = '\0';
    row("hostname", host);

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_CANONNAME;
    if (getaddrinfo(host, NULL, &hints, &res) == 0) {
        if (res->ai_canonname && *res->ai_canonname) {
            row("fqdn", res->ai_canonname);
            const char *dot = strchr(res->ai_canonname, '.');
            if (dot && dot[1])
                row("domain", dot + 1);
        }
        freeaddrinfo(res);
    }
    return CLI_OK;
}

/* ---- tls ------------------------------------------------------------------------------------- */

#define TLS_DEFAULT_TIMEOUT_MS 10000

enum { TLS_OPT_SERVERNAME = CLI_OPT_LONG, TLS_OPT_CACERT, TLS_OPT_PIN };

static const cli_opt tls_opts[] = {
    {"servername", TLS_OPT_SERVERNAME, "NAME",
     "the name to send as SNI and to check the certificate against (default: HOST)"},
    {"cacert", TLS_OPT_CACERT, "FILE",
     "check against the CA certificates of FILE (PEM) instead of the system's store"},
    {"pin-sha256", TLS_OPT_PIN, "HEX",
     "accept only the certificate with this SHA-256 fingerprint (64 hex digits, colons "
     "allowed), without CA or name checks"},
    {"insecure", 'k', NULL, "do not check the certificate (show it all the same)"},
    {"timeout", 'w', "SEC", "for the connection and for the whole handshake (default 10)"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand tls_operands[] = {
    {"HOST[:PORT]", "port 443 unless given; [V6]:PORT or an https:// URL too"},
    {NULL, NULL},
};

static void tls_notes(FILE *out)
{
    fputs("--cacert, --pin-sha256 and -k are alternatives. A certificate that fails the\n"
          "check exits 1 with the reason (-k shows it anyway).\n",
          out);
}

static const cli_spec tls_spec = {
    .cmd = "lookup tls",
    .synopsis = "HOST[:PORT] [options]",
    .about = "Do a TLS handshake with HOST, send nothing else, and print what was negotiated,\n"
             "how the certificate was checked, and the certificate chain the server sent (what\n"
             "openssl s_client shows, without the noise):\n"
             "  address   IP:PORT\n"
             "  name      the name checked (and sent as SNI unless an address)\n"
             "  protocol  TLSv1.3\n"
             "  cipher    TLS_AES_256_GCM_SHA384\n"
             "  alpn      the protocol the server chose of http/1.1 (the one offered)\n"
             "  verify    how the certificate was accepted\n"
             "  chain     N certificates: subject, issuer, validity, sha256 of each\n",
    .operands = tls_operands,
    .opts = tls_opts,
    .notes = tls_notes,
};
CLI_SPEC_REGISTER(tls_spec);

static void tls_on_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)sig;
    (void)signum;
    nk_loop_set_data(loop, loop); /* hc_exchange stops at its next turn */
}

typedef struct tls_lookup {
    const hc_tls_opts *opts;
    const char *name;
} tls_lookup;

static void tls_on_done(void *arg, const nk_tls *t, const nk_addr *peer)
{
    const tls_lookup *l = arg;
    hc_tls_report(stdout, t, peer, l->opts, l->name);
}

/* HOST, HOST:PORT, [V6]:PORT or an https:// URL, as a URL. */
static int tls_target(const char *text, hc_url *u)
{
    int rc;
    if (strstr(text, "://")) {
        rc = hc_url_parse(text, u);
        if (rc == 0 && !u->tls) {
            hc_url_free(u);
            rc = -EPROTONOSUPPORT;
        }
        return rc;
    }
    size_t n = strlen(text) + 16;
    char *url = malloc(n);
    if (!url)
        return -ENOMEM;
    snprintf(url, n, "https://%s/", text);
    rc = strpbrk(text, "/?#@") ? -EINVAL : hc_url_parse(url, u);
    free(url);
    return rc;
}

static int tls_handshake_only(const char *cmd, const hc_url *u, const hc_tls_opts *opts,
                              const char *name, long timeout_ms)
{
    char msg[512];
    nk_tls_ctx *ctx = NULL;
    if (hc_tls_ctx_new(opts, &ctx, msg, sizeof msg) < 0)
        return cli_fail(cmd, "%s", msg);
    nk_loop *loop = NULL;
    cli_stop_signals stop = {0};
    signal(SIGPIPE, SIG_IGN);
    int code, rc = nk_loop_new(NULL, &loop);
    if (rc < 0) {
        code = cli_fail(cmd, "cannot create the event loop: %s", nk_strerror(rc));
    } else if ((rc = cli_stop_signals_start(loop, &stop, tls_on_signal, NULL)) < 0) {
        code = cli_fail(cmd, "cannot watch signals: %s", nk_strerror(rc));
    } else {
        tls_lookup l = {opts, name};
        hc_events ev = {.arg = &l, .on_tls = tls_on_done};
        hc_request req = {.url = u, .timeout_ms = timeout_ms, .tls = ctx, .tls_only = 1,
                          .server_name = name};
        int status;
        rc = hc_exchange(loop, &req, &ev, &status, msg, sizeof msg);
        if (rc >= 0)
            code = CLI_OK;
        else if (strstr(msg, "certificate verify failed"))
            code = cli_fail(cmd, "%s (-k shows the certificate without checking it)", msg);
        else
            code = cli_fail(cmd, "%s", msg[0] ? msg : nk_strerror(rc));
    }
    if (loop) {
        cli_stop_signals_stop(loop, &stop);
        nk_loop_free(loop);
    }
    nk_tls_ctx_free(ctx);
    if (code == CLI_OK && fflush(stdout) != 0)
        code = cli_fail(cmd, "writing the output: %s", strerror(errno));
    return code;
}

/* What lookup tls's command line asked for. */
typedef struct tls_args {
    const char *cmd;
    const char *name; /* --servername, or NULL */
    hc_tls_opts o;
    long timeout_ms;
} tls_args;

static int on_lookup_tls_opt(void *ctx, int key, const char *value)
{
    tls_args *a = ctx;
    switch (key) {
    case TLS_OPT_SERVERNAME:
        if (!*value)
            return cli_usage(a->cmd, "empty --servername");
        a->name = value;
        return 0;
    case TLS_OPT_CACERT:
        a->o.ca_file = value;
        return 0;
    case TLS_OPT_PIN:
        if (!hc_tls_pin_valid(value))
            return cli_usage(a->cmd, "invalid --pin-sha256 '%s' (64 hex digits, colons allowed)",
                             value);
        a->o.pin = value;
        return 0;
    case 'k':
        a->o.insecure = 1;
        return 0;
    case 'w':
        if (cli_parse_seconds(value, &a->timeout_ms) < 0 || a->timeout_ms <= 0)
            return cli_usage(a->cmd, "invalid timeout '%s' (seconds, more than 0)", value);
        return 0;
    default:
        return CLI_USAGE;
    }
}

static int lookup_tls(int argc, char **argv)
{
    tls_args a = {.cmd = argv[0], .timeout_ms = TLS_DEFAULT_TIMEOUT_MS};
    const char *cmd = a.cmd;
    int first;
    int rc = cli_opt_parse(&tls_spec, argc, argv, on_lookup_tls_opt, &a, &first);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    if (!!a.o.ca_file + !!a.o.pin + a.o.insecure > 1)
        return cli_usage(cmd, "--cacert, --pin-sha256 and -k are alternatives: give one");
    if (first >= argc)
        return cli_usage(cmd, "missing HOST[:PORT]");
    if (first + 1 < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[first + 1]);
    hc_url u;
    rc = tls_target(argv[first], &u);
    if (rc == -ENOMEM)
        return cli_fail(cmd, "%s", nk_strerror(rc));
    if (rc < 0)
        return cli_usage(cmd, "invalid address '%s' (HOST[:PORT], [V6]:PORT or https://URL)",
                         argv[first]);
    int code = tls_handshake_only(cmd, &u, &a.o, a.name ? a.name : u.host, a.timeout_ms);
    hc_url_free(&u);
    return code;
}

static const cli_cmd lookup_commands[] = {
    {"host", "addresses of a name: NAME", lookup_host},
    {"addr", "forms and name of an address: IP, hex or integer", lookup_addr},
    {"service", "services database: NAME|PORT[/PROTO]", lookup_service},
    {"ifaces", "interfaces, flags, addresses, masks, MACs: [NAME]", lookup_ifaces},
    {"hostname", "this host's name and FQDN", lookup_hostname},
    {"tls", "a TLS server's protocol, cipher, certificates: HOST[:PORT]", lookup_tls},
    {NULL, NULL, NULL},
};

int cmd_lookup(int argc, char **argv)
{
    return cli_dispatch("lookup", lookup_commands, argc, argv);
}
