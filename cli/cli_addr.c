/* The one address parser of the command: every ADDR operand and -l value goes through
 * cli_parse_addrs, so that the same mistake gets the same message and exit code (2) whichever
 * command it was given to.
 *
 * Forms: HOST:PORT, [IPV6]:PORT, PORT or :PORT, unix:PATH. PORT and :PORT mean the same thing
 * everywhere: every interface when listening (0.0.0.0; http serve adds [::]), this machine
 * (localhost, ::1 and 127.0.0.1 in the resolver's order) when connecting. The port is checked
 * before any resolver is asked, so "127.0.0.1:abc" says "invalid port 'abc'" rather than
 * whatever getaddrinfo thinks of an unknown service.
 */
#include "cli.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* A port as text: digits (0..65535) or a service name /etc/services knows. Returns the port or
 * prints why not and returns -1 (the caller returns CLI_USAGE). */
static int check_port(const char *cmd, const char *text, const char *port, int socktype,
                      int listening)
{
    long min = listening ? 0 : 1;
    if (all_digits(port)) {
        long v = 0;
        for (const char *p = port; *p && v <= 65535; p++)
            v = v * 10 + (*p - '0');
        if (v < min || v > 65535) {
            cli_usage(cmd, "port out of range in '%s' (%ld to 65535)", text, min);
            return -1;
        }
        return (int)v;
    }
    struct servent *se = getservbyname(port, socktype == SOCK_DGRAM ? "udp" : "tcp");
    if (!se) {
        cli_usage(cmd, "invalid port '%s' in '%s' (a number from %ld to 65535)", port, text, min);
        return -1;
    }
    return ntohs((uint16_t)se->s_port);
}

static int parse_unix(const char *cmd, const char *text, nk_addr *out)
{
    const char *path = text + 5;
    if (!*path || strcmp(path, "@") == 0)
        return cli_usage(cmd, "empty unix socket path in '%s'", text);
    if (strlen(path) > SUN_PATH_MAX)
        return cli_usage(cmd, "unix socket path too long (at most %zu bytes): '%s'",
                         SUN_PATH_MAX, text);
    int rc = nk_addr_parse(text, 0, out);
    if (rc < 0)
        return cli_usage(cmd, "invalid unix socket address '%s': %s", text, nk_strerror(rc));
    return 0;
}

int cli_parse_addrs(const char *cmd, const char *text, int socktype, unsigned flags,
                    nk_addr *out, size_t max, size_t *count)
{
    int listening = (flags & CLI_ADDR_LISTEN) != 0;
    *count = 0;
    if (!text || !*text)
        return cli_usage(cmd, "empty address");
    if (strncmp(text, "unix:", 5) == 0) {
        int rc = parse_unix(cmd, text, &out[0]);
        if (rc == 0)
            *count = 1;
        return rc;
    }
    /* ":PORT" is a bare PORT; the library's splitter knows "PORT", "*:PORT" and "HOST:PORT". */
    char host[NI_MAXHOST], port[64];
    int rc;
    if (text[0] == ':' && text[1] && !strchr(text + 1, ':')) {
        host[0] = '\0';
        rc = snprintf(port, sizeof port, "%s", text + 1) >= (int)sizeof port ? -ERANGE : 0;
    } else {
        rc = nk_addr_split(text, host, sizeof host, port, sizeof port);
    }
    if (rc == -ERANGE)
        return cli_usage(cmd, "port out of range in '%s' (%d to 65535)", text, listening ? 0 : 1);
    if (rc < 0) {
        if (!strchr(text, ':') && !all_digits(text))
            return cli_usage(cmd, "missing port in '%s' (HOST:PORT, [IPV6]:PORT, PORT, :PORT "
                                  "or unix:PATH)", text);
        return cli_usage(cmd, "invalid address '%s' (HOST:PORT, [IPV6]:PORT, PORT, :PORT or "
                              "unix:PATH)", text);
    }
    int p = check_port(cmd, text, port, socktype, listening);
    if (p < 0)
        return CLI_USAGE;
    if (!*host && text[0] != '[') {
        if (listening) {
            nk_addr_parse("0.0.0.0:0", 0, &out[0]);
            nk_addr_set_port(&out[0], p);
            *count = 1;
            if ((flags & CLI_ADDR_BOTH_FAMILIES) && max > 1) {
                nk_addr_parse("[::]:0", 0, &out[1]);
                nk_addr_set_port(&out[1], p);
                *count = 2;
            }
            return 0;
        }
        snprintf(host, sizeof host, "localhost");
    }
    /* Numeric first (no resolver for "127.0.0.1:80" or "[::1]:80"), then names. */
    char numeric[NI_MAXHOST + 16];
    int bracket = strchr(host, ':') != NULL;
    snprintf(numeric, sizeof numeric, "%s%s%s:%d", bracket ? "[" : "", host, bracket ? "]" : "",
             p);
    rc = nk_addr_parse(numeric, 0, &out[0]);
    if (rc == 0) {
        *count = 1;
        return 0;
    }
    rc = nk_addr_resolve(numeric, socktype, listening, out, max);
    if (rc > 0) {
        *count = (size_t)rc;
        return 0;
    }
    if (NK_ERR_IS_GAI(rc)) {
        int eai = rc - NK_ERR_GAI_BASE;
        if (eai == EAI_AGAIN || eai == EAI_FAIL || eai == EAI_MEMORY || eai == EAI_SYSTEM)
            return cli_fail(cmd, "cannot resolve '%s': %s", host, nk_strerror(rc));
        return cli_usage(cmd, "cannot resolve '%s': %s", host, nk_strerror(rc));
    }
    return cli_usage(cmd, "invalid address '%s': %s", text, nk_strerror(rc));
}

int cli_parse_bind_addr(const char *cmd, const char *text, int socktype, nk_addr *out)
{
    size_t n;
    return cli_parse_addrs(cmd, text, socktype, CLI_ADDR_LISTEN, out, 1, &n);
}
