/* TLS for `netkit http serve`: which listeners speak it, the server context built from the
 * certificate options, the names a self-signed certificate carries, and the reload on SIGHUP.
 */
#include "cli.h"
#include "http/serve.h"

#include <dirent.h>
#include <errno.h>
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
