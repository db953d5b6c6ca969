/* TLS for the HTTP client: the client context from the command's options (--cacert,
 * --pin-sha256, -k), and the report of a handshake that `http get -v`, `http get --tls-info`
 * and `lookup tls` print.
 */
#include "http/client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* The application protocols this client speaks, preferred first; a server that picks none
 * is fine too (HTTP/1.1 then). */
static const char *const alpn_h1[] = {"http/1.1"};
static const char *const alpn_h2[] = {"h2", "http/1.1"};

int hc_is_ip_literal(const char *host)
{
    unsigned char ip[16];
    return inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
}

int hc_tls_pin_valid(const char *text)
{
    size_t digits = 0;
    for (const char *p = text; *p; p++) {
        if (*p == ':' && p != text && p[1] && p[1] != ':')
            continue;
        if (!isxdigit((unsigned char)*p))
            return 0;
        digits++;
    }
    return digits == 64;
}

int hc_tls_ctx_new(const hc_tls_opts *o, nk_tls_ctx **out, char *msg, size_t msglen)
{
    nk_tls_client_config cfg = {.size = sizeof cfg, .ca_file = o->ca_file, .pin_sha256 = o->pin,
                                .insecure = o->insecure};
    /* OpenSSL says "system lib" for a file it cannot open: say which and why. */
    if (o->ca_file && access(o->ca_file, R_OK) != 0) {
        int e = -errno;
        snprintf(msg, msglen, "TLS: cannot read --cacert '%s': %s", o->ca_file, nk_strerror(e));
        return e;
    }
    char err[NK_TLS_ERR_MAX] = "";
    int rc = nk_tls_client_new(&cfg, out, err, sizeof err);
    if (rc < 0) {
        snprintf(msg, msglen, "TLS: %s", err[0] ? err : nk_strerror(rc));
        return rc;
    }
    rc = o->http2 ? nk_tls_ctx_set_alpn(*out, alpn_h2, sizeof alpn_h2 / sizeof alpn_h2[0])
                  : nk_tls_ctx_set_alpn(*out, alpn_h1, sizeof alpn_h1 / sizeof alpn_h1[0]);
    if (rc < 0) {
        nk_tls_ctx_free(*out);
        *out = NULL;
        snprintf(msg, msglen, "TLS: cannot offer ALPN: %s", nk_strerror(rc));
    }
    return rc;
}

/* What the client checked, in words (the handshake passed, so the check did). */
static void verified_text(const hc_tls_opts *o, const char *host, char *buf, size_t len)
{
    if (o->pin)
        snprintf(buf, len, "pinned: the certificate's sha256 is the one given (no CA check)");
    else if (o->insecure)
        snprintf(buf, len, "NOT verified (--insecure)");
    else
        snprintf(buf, len, "ok: %s %s, chain trusted by %s",
                 hc_is_ip_literal(host) ? "address" : "name", host,
                 o->ca_file ? o->ca_file : "the system's CA store");
}

static void row(FILE *out, const char *prefix, const char *label, const char *value)
{
    fprintf(out, "%s%-11s %s\n", prefix, label, value);
}

void hc_tls_describe(FILE *out, const char *prefix, const nk_tls *t, const hc_tls_opts *o,
                     const char *host)
{
    size_t alen = 0;
    const char *alpn = nk_tls_alpn(t, &alen);
    char text[512];
    row(out, prefix, "protocol", nk_tls_version(t));
    row(out, prefix, "cipher", nk_tls_cipher(t));
    snprintf(text, sizeof text, "%.*s", (int)alen, alen ? alpn : "");
    row(out, prefix, "alpn", alen ? text : "(none: the server chose no protocol)");
    verified_text(o, host, text, sizeof text);
    row(out, prefix, "verify", text);
    char chain[16384];
    int n = nk_tls_peer_chain(t, chain, sizeof chain);
    if (n <= 0) {
        row(out, prefix, "chain", "(no certificate)");
        return;
    }
    snprintf(text, sizeof text, "%d certificate%s, the server's first:", n, n == 1 ? "" : "s");
    row(out, prefix, "chain", text);
    /* Each certificate's lines as the library gives them, indented under the row. */
    for (const char *p = chain; *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(out, "%s  %.*s\n", prefix, (int)l, p);
        p += l + (nl != NULL);
    }
}

void hc_tls_report(FILE *out, const nk_tls *t, const nk_addr *peer, const hc_tls_opts *o,
                   const char *host)
{
    char addr[NK_ADDR_STRLEN] = "?";
    if (peer)
        nk_addr_format(peer, addr, sizeof addr);
    row(out, "", "address", addr);
    row(out, "", "name", host);
    hc_tls_describe(out, "", t, o, host);
}
