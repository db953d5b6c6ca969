/* TLS for `netkit http serve`: which listeners speak it, the server context built from the
 * certificate options, the names a self-signed certificate carries, and the reload on SIGHUP.
 */
#include "cli.h"
#include "http_serve.h"

#include <dirent.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "https://ADDR" or "http://ADDR": strip the scheme, remember which. No scheme: http.
 * "proxy+" before either: connections begin with a PROXY protocol header. */
int http_tls_split_schemes(http_serve_opts *o)
{
    for (int i = 0; i < o->nlisten; i++) {
        const char *t = o->listen[i];
        if (strncmp(t, "proxy+", 6) == 0 && strstr(t, "://")) {
            t += 6;
            o->listen[i] = t;
            o->listen_proxy[i] = 1;
            if (strncmp(t, "https://", 8) != 0 && strncmp(t, "http://", 7) != 0)
                return cli_usage(o->cmd, "unknown scheme in 'proxy+%s' (proxy+http:// or "
                                         "proxy+https://)", t);
        }
        if (strncmp(t, "https://", 8) == 0) {
            o->listen[i] = t + 8;
            o->listen_tls[i] = 1;
        } else if (strncmp(t, "http://", 7) == 0) {
            o->listen[i] = t + 7;
        } else if (strstr(t, "://")) {
            return cli_usage(o->cmd, "unknown scheme in '%s' (http:// or https://)", t);
        }
        size_t n = strlen(o->listen[i]);
        if (n && o->listen[i][n - 1] == '/') /* a URL pasted with its slash */
            ((char *)o->listen[i])[n - 1] = '\0';
    }
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Check that the TLS options make sense together. */
int http_tls_check(http_serve_opts *o)
{
    int any_tls = 0, any_clear = 0;
    for (int i = 0; i < o->nlisten; i++) {
        if (o->listen_tls[i])
            any_tls = 1;
        else
            any_clear = 1;
    }
    for (int i = 0; i < o->ninherited; i++) {
        if (o->inherited[i].tls)
            any_tls = 1;
        else
            any_clear = 1;
    }
    int have_certs = o->ncerts > 0 || o->tls_self_signed;
    /* A directory brings its own keys (NAME.crt with NAME.key); each file needs its key,
     * paired in order with the certificate files. */
    int files = 0;
    for (int i = 0; i < o->ncerts; i++)
        files += !is_dir(o->tls_cert[i]);
    if (files != o->nkeys)
        return cli_usage(o->cmd, "each --tls-cert FILE needs its --tls-key (%d certificate file%s, "
                                 "%d key%s; a directory needs none)",
                         files, files == 1 ? "" : "s", o->nkeys, o->nkeys == 1 ? "" : "s");
    if (any_tls && !have_certs)
        return cli_usage(o->cmd, "an https:// listener needs --tls-cert and --tls-key, or "
                                 "--tls-self-signed");
    if (have_certs && !any_tls)
        return cli_usage(o->cmd, "TLS options given but no https:// listener (-l https://ADDR)");
    if (o->redirect_https && !(any_tls && any_clear))
        return cli_usage(o->cmd, "--redirect-https needs an http:// and an https:// listener");
    if (o->hsts && !any_tls)
        return cli_usage(o->cmd, "--hsts needs an https:// listener");
    return 0;
}

static int load_dir(nk_tls_ctx *ctx, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -errno;
    }
    /* Sorted, so which certificate is the default (the first) does not depend on the
     * directory's order. */
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".crt") == 0 && e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && names[j] && names[j - 1] && strcmp(names[j - 1], names[j]) > 0;
             j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    int r = 0, added = 0;
    for (int i = 0; i < n; i++) {
        if (!names[i]) {
            r = -ENOMEM;
            continue;
        }
        char crt[4096], key[4096];
        size_t len = strlen(names[i]);
        snprintf(crt, sizeof crt, "%s/%s", dir, names[i]);
        snprintf(key, sizeof key, "%s/%.*s.key", dir, (int)(len - 4), names[i]);
        if (r == 0) {
            r = nk_tls_ctx_add_cert(ctx, crt, key, err, errlen);
            added += r == 0;
        }
        free(names[i]);
    }
    if (r == 0 && added == 0) {
        snprintf(err, errlen, "%s: no NAME.crt with its NAME.key", dir);
        r = -ENOENT;
    }
    return r;
}

/* A server context from the certificate files (a directory holds NAME.crt/NAME.key pairs). */
int http_tls_context(const http_serve_opts *o, nk_tls_ctx **out, char *err, size_t errlen)
{
    nk_tls_ctx *ctx;
    int r = nk_tls_server_new(&ctx, err, errlen);
    if (r < 0)
        return r;
    /* RFC 9113 section 3.2: h2 is chosen by ALPN; http/1.1 for clients without it. */
    static const char *const alpn[] = {"h2", "http/1.1"};
    r = o->no_http2 ? nk_tls_ctx_set_alpn(ctx, alpn + 1, 1) : nk_tls_ctx_set_alpn(ctx, alpn, 2);
    if (r == 0)
        r = nk_tls_ctx_set_ticket_secret(ctx, o->tls_secret, sizeof o->tls_secret, 0);
    for (int i = 0, key = 0; r == 0 && i < o->ncerts; i++) {
        if (is_dir(o->tls_cert[i]))
            r = load_dir(ctx, o->tls_cert[i], err, errlen);
        else
            r = nk_tls_ctx_add_cert(ctx, o->tls_cert[i], o->tls_key[key++], err, errlen);
    }
    if (r < 0) {
        if (!err[0])
            snprintf(err, errlen, "%s", nk_strerror(r));
        nk_tls_ctx_free(ctx);
        return r;
    }
    *out = ctx;
    return 0;
}

static int add_name(const char **names, int *n, int max, char *store, size_t *used, size_t cap,
                    const char *name)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(names[i], name) == 0)
            return 0;
    size_t len = strlen(name) + 1;
    if (*n >= max || *used + len > cap)
        return -1;
    memcpy(store + *used, name, len);
    names[(*n)++] = store + *used;
    *used += len;
    return 0;
}

/* The names of a self-signed certificate: localhost, the loopback addresses, this machine's
 * name, and each listener's address, or for one on all interfaces the interfaces' addresses
 * (what "reachable at" prints), so that a client pinning or trusting the certificate can use
 * any URL the server announced. */
int http_tls_self_signed(const http_serve_opts *o, nk_tls_ctx *ctx, const nk_addr *addrs,
                         int naddrs, char fp[NK_TLS_FP_HEX], char *err, size_t errlen)
{
    const char *names[64] = {0};
    char store[4096];
    size_t used = 0;
    int n = 0;
    add_name(names, &n, 64, store, &used, sizeof store, "localhost");
    add_name(names, &n, 64, store, &used, sizeof store, "127.0.0.1");
    add_name(names, &n, 64, store, &used, sizeof store, "::1");
    char host[256];
    if (gethostname(host, sizeof host) == 0 && host[0]) {
        host[sizeof host - 1] = '\0';
        add_name(names, &n, 64, store, &used, sizeof store, host);
    }
    int wildcard[2] = {0, 0};
    for (int i = 0; i < naddrs; i++) {
        int family = nk_addr_family(&addrs[i]);
        if (family == AF_UNIX)
            continue;
        if (nk_addr_is_wildcard(&addrs[i])) {
            wildcard[family == AF_INET6] = 1;
            continue;
        }
        char text[NK_ADDR_STRLEN];
        if (nk_addr_format_host(&addrs[i], text, sizeof text) >= 0)
            add_name(names, &n, 64, store, &used, sizeof store, text);
    }
    struct ifaddrs *ifs;
    if ((wildcard[0] || wildcard[1]) && getifaddrs(&ifs) == 0) {
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
                add_name(names, &n, 64, store, &used, sizeof store, text);
        }
        freeifaddrs(ifs);
    }
    (void)o;
    return nk_tls_ctx_add_self_signed(ctx, names, (size_t)n, fp, err, errlen);
}
