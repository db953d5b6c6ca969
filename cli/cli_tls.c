/* TLS for the socket tools: the shared options, contexts, the bounded handshake, -v lines and
 * a socket that reads and writes with or without TLS (see cli_tls.h). */
#include "cli.h"
#include "cli_tls.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- options -------------------------------------------------------------------------------- */

int cli_tls_option(cli_tls_opts *o, int c, const char *arg)
{
    switch (c) {
    case CLI_TLS_OPT_TLS: o->on = 1; break;
    case CLI_TLS_OPT_CERT: o->cert = arg; break;
    case CLI_TLS_OPT_KEY: o->key = arg; break;
    case CLI_TLS_OPT_SELF_SIGNED: o->self_signed = 1; break;
    case CLI_TLS_OPT_CACERT: o->cacert = arg; break;
    case CLI_TLS_OPT_PIN: o->pin = arg; break;
    case CLI_TLS_OPT_INSECURE: o->insecure = 1; break;
    case CLI_TLS_OPT_SERVERNAME: o->servername = arg; break;
    default: return 0;
    }
    return 1;
}

int cli_tls_check(const char *cmd, const cli_tls_opts *o, int server)
{
    const char *client_opt = o->cacert ? "--cacert" : o->pin ? "--pin-sha256"
                             : o->insecure ? "--insecure" : o->servername ? "--servername" : NULL;
    const char *server_opt = o->cert ? "--tls-cert" : o->key ? "--tls-key"
                             : o->self_signed ? "--tls-self-signed" : NULL;
    if (server && client_opt)
        return cli_usage(cmd, "%s is for the connecting side", client_opt);
    if (!server && server_opt)
        return cli_usage(cmd, "%s is for the listening side", server_opt);
    const char *any = server ? server_opt : client_opt;
    if (any && !o->on)
        return cli_usage(cmd, "%s needs --tls", any);
    if (!o->on)
        return 0;
    if (server) {
        if (o->self_signed && (o->cert || o->key))
            return cli_usage(cmd, "--tls-self-signed or --tls-cert/--tls-key, not both");
        if (!o->self_signed && !(o->cert && o->key))
            return cli_usage(cmd, "--tls needs --tls-cert FILE and --tls-key FILE, or "
                                  "--tls-self-signed");
        return 0;
    }
    if (o->insecure && (o->pin || o->cacert))
        return cli_usage(cmd, "--insecure checks nothing: not with %s",
                         o->pin ? "--pin-sha256" : "--cacert");
    if (o->pin && o->cacert)
        return cli_usage(cmd, "--pin-sha256 accepts exactly one certificate: not with --cacert");
    return 0;
}

/* ---- contexts ------------------------------------------------------------------------------- */

typedef struct name_list {
    const char *names[64];
    size_t n;
    char store[4096];
    size_t used;
} name_list;

static void add_name(name_list *l, const char *name)
{
    size_t len = strlen(name) + 1;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return;
    if (l->n == sizeof l->names / sizeof l->names[0] || l->used + len > sizeof l->store)
        return;
    memcpy(l->store + l->used, name, len);
    l->names[l->n++] = l->store + l->used;
    l->used += len;
}

/* The addresses of the interfaces that are up, of the families wildcard listeners cover
 * (wildcard[0]: IPv4, wildcard[1]: IPv6). */
static void add_interfaces(name_list *l, const int wildcard[2])
{
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) < 0)
        return;
    for (struct ifaddrs *ifa = ifs; ifa; ifa = ifa->ifa_next) {
        if (!ifa->ifa_addr || !(ifa->ifa_flags & IFF_UP))
            continue;
        int family = ifa->ifa_addr->sa_family;
        if (!((family == AF_INET && wildcard[0]) || (family == AF_INET6 && wildcard[1])))
            continue;
        nk_addr a;
        memset(&a, 0, sizeof a);
        a.len = family == AF_INET ? sizeof a.u.in : sizeof a.u.in6;
        memcpy(&a.u.ss, ifa->ifa_addr, a.len);
        char text[NK_ADDR_STRLEN];
        if (nk_addr_format_host(&a, text, sizeof text) >= 0 && !strchr(text, '%'))
            add_name(l, text);
    }
    freeifaddrs(ifs);
}

int cli_tls_add_self_signed(nk_tls_ctx *ctx, const nk_addr *addrs, int naddrs,
                            char fp[NK_TLS_FP_HEX], char *err, size_t errlen)
{
    name_list l;
    memset(&l, 0, sizeof l);
    add_name(&l, "localhost");
    add_name(&l, "127.0.0.1");
    add_name(&l, "::1");
    char host[256];
    if (gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = '\0';
        if (host[0])
            add_name(&l, host);
    }
    int wildcard[2] = {0, 0};
    for (int i = 0; i < naddrs; i++) {
        int family = nk_addr_family(&addrs[i]);
        if (family != AF_INET && family != AF_INET6)
            continue;
        if (nk_addr_is_wildcard(&addrs[i])) {
            wildcard[family == AF_INET6] = 1;
            continue;
        }
        char text[NK_ADDR_STRLEN];
        if (nk_addr_format_host(&addrs[i], text, sizeof text) >= 0)
            add_name(&l, text);
    }
    if (wildcard[0] || wildcard[1])
        add_interfaces(&l, wildcard);
    return nk_tls_ctx_add_self_signed(ctx, l.names, l.n, fp, err, errlen);
}

static int self_signed(const char *cmd, nk_tls_ctx *ctx, const nk_addr *bound)
{
    char fp[NK_TLS_FP_HEX], err[NK_TLS_ERR_MAX] = "";
    int rc = cli_tls_add_self_signed(ctx, bound, bound ? 1 : 0, fp, err, sizeof err);
    if (rc < 0)
        return cli_fail(cmd, "TLS: cannot make a certificate: %s", err[0] ? err : nk_strerror(rc));
    fprintf(stderr, "TLS certificate: self-signed, sha256 %s\n", fp);
    return 0;
}

int cli_tls_server_ctx(const char *cmd, const cli_tls_opts *o, const nk_addr *bound,
                       nk_tls_ctx **out)
{
    char err[NK_TLS_ERR_MAX] = "";
    nk_tls_ctx *ctx;
    int rc = nk_tls_server_new(&ctx, err, sizeof err);
    if (rc < 0)
        return cli_fail(cmd, "TLS: %s", err[0] ? err : nk_strerror(rc));
    if (o->self_signed) {
        int code = self_signed(cmd, ctx, bound);
        if (code) {
            nk_tls_ctx_free(ctx);
            return code;
        }
    } else if ((rc = nk_tls_ctx_add_cert(ctx, o->cert, o->key, err, sizeof err)) < 0) {
        nk_tls_ctx_free(ctx);
        return cli_fail(cmd, "TLS: %s", err[0] ? err : nk_strerror(rc));
    }
    *out = ctx;
    return 0;
}

int cli_tls_client_ctx(const char *cmd, const cli_tls_opts *o, nk_tls_ctx **out)
{
    nk_tls_client_config cfg = {.size = sizeof cfg, .ca_file = o->cacert, .pin_sha256 = o->pin,
                                .insecure = o->insecure};
    char err[NK_TLS_ERR_MAX] = "";
    int rc = nk_tls_client_new(&cfg, out, err, sizeof err);
    if (rc == -EINVAL && o->pin) /* the pin's form is a usage error */
        return cli_usage(cmd, "--pin-sha256 '%s': %s", o->pin, err[0] ? err : nk_strerror(rc));
    if (rc < 0)
        return cli_fail(cmd, "TLS: %s", err[0] ? err : nk_strerror(rc));
    return 0;
}

const char *cli_tls_server_name(const cli_tls_opts *o, const char *addr_text, char *buf,
                                size_t len)
{
    if (o->servername)
        return o->servername;
    if (!addr_text || strncmp(addr_text, "unix:", 5) == 0 || len == 0)
        return NULL;
    char port[64];
    /* ":PORT" and "PORT" connect to this machine (cli_addr.c), so that is the name. */
    if (addr_text[0] == ':' || nk_addr_split(addr_text, buf, len, port, sizeof port) < 0 ||
        !buf[0]) {
        snprintf(buf, len, "localhost");
        return buf;
    }
    char *zone = strchr(buf, '%'); /* fe80::1%eth0: a certificate holds the address only */
    if (zone)
        *zone = '\0';
    return buf;
}

/* ---- the bounded handshake ------------------------------------------------------------------ */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_tls_handshake(nk_tls_ctx *ctx, int fd, const char *server_name, long timeout_ms,
                      nk_tls **out, char *why, size_t whylen)
{
    nk_tls *t;
    int rc = nk_tls_new(ctx, fd, server_name, &t);
    if (rc < 0) {
        snprintf(why, whylen, "%s", nk_strerror(rc));
        return rc;
    }
    long deadline = now_ms() + timeout_ms;
    while ((rc = nk_tls_handshake(t)) == -EAGAIN) {
        long left = deadline - now_ms();
        if (left <= 0) {
            rc = -ETIMEDOUT;
            snprintf(why, whylen, "handshake timed out after %ld ms", timeout_ms);
            break;
        }
        struct pollfd p = {.fd = fd, .events = nk_tls_want(t) == NK_WRITE ? POLLOUT : POLLIN};
        if (poll(&p, 1, left > 1000000 ? 1000000 : (int)left) < 0 && errno != EINTR) {
            rc = -errno;
            snprintf(why, whylen, "poll: %s", nk_strerror(rc));
            break;
        }
    }
    if (rc == 0) {
        *out = t;
        return 0;
    }
    if (rc != -ETIMEDOUT && why[0] == '\0')
        snprintf(why, whylen, "%s", nk_tls_error(t)[0] ? nk_tls_error(t) : nk_strerror(rc));
    nk_tls_free(t);
    return rc;
}

int cli_tls_closed_early(int rc, const char *why)
{
    /* The library says -ECONNRESET both for a reset and for an end of file; only its reason
     * tells them apart. */
    return rc == -ECONNRESET && strstr(why, "closed during the handshake") != NULL;
}

int cli_tls_connect(const char *cmd, const cli_tls_opts *o, const char *text,
                    const nk_addr *addr, long timeout_ms, int *fd, nk_tls **t)
{
    nk_tls_ctx *ctx = NULL;
    int code = o->on ? cli_tls_client_ctx(cmd, o, &ctx) : 0; /* a bad --cacert: said at once */
    if (code)
        return code;
    *t = NULL;
    *fd = nk_sock_connect_wait(addr, SOCK_STREAM, 0, (int)timeout_ms);
    if (*fd < 0) {
        code = cli_fail(cmd, "cannot connect to %s: %s", text, nk_strerror(*fd));
    } else if (ctx) {
        char name[256], why[NK_TLS_ERR_MAX + 64] = "";
        if (cli_tls_handshake(ctx, *fd, cli_tls_server_name(o, text, name, sizeof name),
                              timeout_ms, t, why, sizeof why) < 0) {
            code = cli_fail(cmd, "TLS: %s", why);
            close(*fd);
        }
    }
    nk_tls_ctx_free(ctx);
    return code;
}

void cli_tls_print_info(const nk_tls *t)
{
    fprintf(stderr, "TLS: %s, %s\n", nk_tls_version(t), nk_tls_cipher(t));
    char chain[4096], fp[NK_TLS_FP_HEX];
    if (nk_tls_peer_chain(t, chain, sizeof chain) <= 0 || nk_tls_peer_fingerprint(t, fp) < 0) {
        fprintf(stderr, "TLS peer: no certificate\n");
        return;
    }
    /* The first line is "0 subject: ..." for the leaf; the peer wrote it: shown escaped. */
    const char *subject = strstr(chain, "subject: ");
    subject = subject ? subject + 9 : "?";
    size_t len = strcspn(subject, "\n");
    fputs("TLS peer: ", stderr);
    cli_fput_escaped(stderr, subject, len, 0);
    fprintf(stderr, ", sha256 %s\n", fp);
}

/* ---- a socket with or without TLS ---------------------------------------------------------- */

void cli_conn_init(cli_conn *c, int fd, nk_tls *tls)
{
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->tls = tls;
    c->rd_wait = NK_READ;
    c->wr_wait = NK_WRITE;
}

int cli_conn_accept_tls(cli_conn *c, nk_tls_ctx *ctx)
{
    int rc = nk_tls_new(ctx, c->fd, NULL, &c->tls);
    if (rc < 0) {
        c->tls = NULL;
        return rc;
    }
    c->handshaking = 1;
    return 0;
}

int cli_conn_handshake(cli_conn *c)
{
    if (!c->handshaking)
        return 0;
    int rc = nk_tls_handshake(c->tls);
    if (rc == -EAGAIN) {
        /* Either wish waits for the same thing until the handshake is done. */
        c->rd_wait = c->wr_wait = nk_tls_want(c->tls);
        return rc;
    }
    c->rd_wait = NK_READ;
    c->wr_wait = NK_WRITE;
    if (rc == 0)
        c->handshaking = 0;
    return rc;
}

ssize_t cli_conn_read(cli_conn *c, void *buf, size_t len)
{
    if (!c->tls) {
        ssize_t n;
        do
            n = read(c->fd, buf, len);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : n;
    }
    ssize_t n = nk_tls_read(c->tls, buf, len);
    if (n == -EAGAIN) {
        c->rd_wait = nk_tls_want(c->tls);
        return n;
    }
    c->rd_wait = NK_READ;
    /* A smaller buffer may leave part of a record inside, which no readiness announces: take
     * what fits of it now. */
    size_t got = n > 0 ? (size_t)n : 0;
    while (n > 0 && got < len && nk_tls_pending(c->tls) > 0) {
        ssize_t more = nk_tls_read(c->tls, (char *)buf + got, len - got);
        if (more <= 0)
            break;
        got += (size_t)more;
    }
    return n > 0 ? (ssize_t)got : n;
}

ssize_t cli_conn_send(cli_conn *c, nk_buf *b)
{
    if (nk_buf_len(b) == 0)
        return 0;
    if (!c->tls) {
        ssize_t n;
        do
            n = nk_buf_write_fd(b, c->fd);
        while (n == -EINTR);
        return n == -EWOULDBLOCK ? -EAGAIN : n == 0 ? -EAGAIN : n;
    }
    /* A write refused with -EAGAIN is repeated from the same front of b, with at least as
     * many bytes: what OpenSSL asks for. */
    ssize_t n = nk_tls_write(c->tls, nk_buf_rptr(b), nk_buf_len(b));
    if (n == -EAGAIN) {
        c->wr_wait = nk_tls_want(c->tls);
        return n;
    }
    c->wr_wait = NK_WRITE;
    if (n > 0)
        nk_buf_consume(b, (size_t)n);
    return n;
}

unsigned cli_conn_interest(const cli_conn *c, int reading, int writing)
{
    if (c->handshaking)
        return c->rd_wait;
    return (reading ? c->rd_wait : 0) | (writing ? c->wr_wait : 0);
}

int cli_conn_can_read(const cli_conn *c, unsigned events)
{
    return (events & (c->rd_wait | NK_ERROR)) != 0;
}

int cli_conn_can_write(const cli_conn *c, unsigned events)
{
    return (events & (c->wr_wait | NK_ERROR)) != 0;
}

const char *cli_conn_why(const cli_conn *c, int err)
{
    if (c->tls && nk_tls_error(c->tls)[0])
        return nk_tls_error(c->tls);
    return nk_strerror(err);
}

void cli_conn_close(cli_conn *c)
{
    if (c->tls) {
        nk_tls_shutdown(c->tls);
        nk_tls_free(c->tls);
        c->tls = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}
