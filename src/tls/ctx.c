/* TLS contexts: the protocol profile both sides share, a server's certificates chosen by SNI,
 * ALPN, and a client's verification (CA store, host name, or a pinned fingerprint).
 *
 * The profile is the "intermediate" one of current deployment guides, narrowed to forward
 * secrecy: TLS 1.2 with ECDHE and AEAD ciphers only, TLS 1.3 with its defaults; no
 * compression, no renegotiation, no 0-RTT (OpenSSL sends no early data unless asked).
 * SSL_MODE_RELEASE_BUFFERS gives OpenSSL's 16 KiB read and write buffers back while a
 * connection has nothing in flight, which is most of a keep-alive connection's life.
 */
#include "core/extstruct.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/tls_internal.h"

#define TLS12_CIPHERS                                                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                 \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                 \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"

void nk__tls_set_err(char *err, size_t errlen, const char *what)
{
    if (!err || errlen == 0)
        return;
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (reason && what)
        snprintf(err, errlen, "%s: %s", what, reason);
    else
        snprintf(err, errlen, "%s", reason ? reason : what ? what : "TLS error");
    ERR_clear_error();
}

void nk__tls_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

nk_tls_ctx *nk_tls_ctx_ref(nk_tls_ctx *ctx)
{
    if (ctx)
        __atomic_fetch_add(&ctx->refs, 1, __ATOMIC_RELAXED);
    return ctx;
}

static int profile(SSL_CTX *ssl)
{
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    /* An EOF without close_notify is told apart from one with it (nk_tls_eof_clean). */
    SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* Kernel TLS where the kernel has it; elsewhere OpenSSL would try (and fail) to set it
     * up on every connection. */
    if (nk_tls_ktls_available(NULL, 0))
        SSL_CTX_set_options(ssl, SSL_OP_ENABLE_KTLS);
    SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_cipher_list(ssl, TLS12_CIPHERS) != 1)
        return -1;
    if (SSL_CTX_set1_groups_list(ssl, TLS_GROUPS) != 1)
        return -1;
    return 0;
}

static nk_tls_ctx *ctx_alloc(const SSL_METHOD *method, int is_server, char *err, size_t errlen)
{
    nk_tls_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        nk__tls_set_err(err, errlen, "out of memory");
        return NULL;
    }
    ctx->ssl = SSL_CTX_new(method);
    if (!ctx->ssl || profile(ctx->ssl) < 0) {
        nk__tls_set_err(err, errlen, "cannot set up OpenSSL");
        SSL_CTX_free(ctx->ssl);
        free(ctx);
        return NULL;
    }
    ctx->is_server = is_server;
    ctx->refs = 1;
    SSL_CTX_set_app_data(ctx->ssl, ctx);
    return ctx;
}

/* SNI: the first certificate whose names cover the requested one (OpenSSL's own host
 * matching, wildcards included), else the default, which the context already holds. */
static int on_servername(SSL *s, int *alert, void *arg)
{
    (void)alert;
    const nk_tls_ctx *ctx = arg;
    const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    if (!name || ctx->ncerts < 2)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 1; i < ctx->ncerts; i++) {
        const nk__tls_cert *c = &ctx->certs[i];
        if (X509_check_host(c->leaf, name, 0, 0, NULL) == 1) {
            /* The connection holds the default certificate; one of another key type would
             * stay beside this one, and OpenSSL could pick it by signature algorithm. */
            SSL_certs_clear(s);
            if (SSL_use_cert_and_key(s, c->leaf, c->key, c->chain, 1) != 1)
                return SSL_TLSEXT_ERR_ALERT_FATAL;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

static int on_alpn(SSL *s, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
    (void)s;
    const nk_tls_ctx *ctx = arg;
    unsigned char *chosen;
    if (!ctx->alpn)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_select_next_proto(&chosen, outlen, ctx->alpn, (unsigned)ctx->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* RFC 7301 section 3.2: no_application_protocol */
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

int nk_tls_server_new(nk_tls_ctx **out, char *err, size_t errlen)
{
    if (!out)
        return -EINVAL;
    nk_tls_ctx *ctx = ctx_alloc(TLS_server_method(), 1, err, errlen);
    if (!ctx)
        return -ENOMEM;
    SSL_CTX *ssl = ctx->ssl;
    /* Resumption by tickets only (they work across processes); no server-side cache. */
    SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ssl, 1);
    SSL_CTX_set_session_id_context(ssl, (const unsigned char *)"netkit", 6);
    SSL_CTX_set_tlsext_servername_callback(ssl, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ssl, ctx);
    SSL_CTX_set_alpn_select_cb(ssl, on_alpn, ctx);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ssl, nk__tls_ticket_cb);
    int r = nk_tls_ctx_set_ticket_secret(ctx, NULL, 0, 0);
    if (r < 0) {
        nk__tls_set_err(err, errlen, "no random bytes for ticket keys");
        nk_tls_ctx_free(ctx);
        return r;
    }
    *out = ctx;
    return 0;
}

static int read_key(const char *path, EVP_PKEY **key, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(err ? err : (char[1]){0}, err ? errlen : 1, "%s: %s", path, strerror(e));
        return -e;
    }
    *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!*key) {
        char what[300];
        snprintf(what, sizeof what, "%s: no usable private key", path);
        nk__tls_set_err(err, errlen, what);
        return -EPROTO;
    }
    return 0;
}

static int read_chain(const char *path, nk__tls_cert *c, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(err ? err : (char[1]){0}, err ? errlen : 1, "%s: %s", path, strerror(e));
        return -e;
    }
    c->leaf = PEM_read_X509(f, NULL, NULL, NULL);
    if (c->leaf) {
        X509 *x;
        while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
            if (!c->chain)
                c->chain = sk_X509_new_null();
            if (!c->chain || !sk_X509_push(c->chain, x)) {
                X509_free(x);
                break;
            }
        }
        ERR_clear_error(); /* the end of the file reads as "no start line" */
    }
    fclose(f);
    if (!c->leaf) {
        char what[300];
        snprintf(what, sizeof what, "%s: no PEM certificate", path);
        nk__tls_set_err(err, errlen, what);
        return -EPROTO;
    }
    return 0;
}

static void cert_clear(nk__tls_cert *c)
{
    X509_free(c->leaf);
    EVP_PKEY_free(c->key);
    sk_X509_pop_free(c->chain, X509_free);
    memset(c, 0, sizeof *c);
}

/* Takes c's objects (cleared on failure too). */
static int add_cert(nk_tls_ctx *ctx, nk__tls_cert *c, char *err, size_t errlen)
{
    if (X509_check_private_key(c->leaf, c->key) != 1) {
        nk__tls_set_err(err, errlen, "the private key does not match the certificate");
        cert_clear(c);
        return -EPROTO;
    }
    nk__tls_cert *grown = realloc(ctx->certs, (ctx->ncerts + 1) * sizeof *grown);
    if (!grown) {
        cert_clear(c);
        return -ENOMEM;
    }
    ctx->certs = grown;
    if (ctx->ncerts == 0 && SSL_CTX_use_cert_and_key(ctx->ssl, c->leaf, c->key, c->chain, 1) != 1) {
        nk__tls_set_err(err, errlen, "certificate refused");
        cert_clear(c);
        return -EPROTO;
    }
    ctx->certs[ctx->ncerts++] = *c;
    return 0;
}

int nk_tls_ctx_add_cert(nk_tls_ctx *ctx, const char *cert_file, const char *key_file, char *err,
                        size_t errlen)
{
    if (!ctx || !ctx->is_server || !cert_file || !key_file)
        return -EINVAL;
    nk__tls_cert c = {0};
    int r = read_chain(cert_file, &c, err, errlen);
    if (r == 0)
        r = read_key(key_file, &c.key, err, errlen);
    if (r < 0) {
        cert_clear(&c);
        return r;
    }
    return add_cert(ctx, &c, err, errlen);
}

int nk__tls_add_made_cert(nk_tls_ctx *ctx, X509 *leaf, EVP_PKEY *key, char *err, size_t errlen)
{
    nk__tls_cert c = {.leaf = leaf, .key = key};
    return add_cert(ctx, &c, err, errlen);
}

size_t nk_tls_ctx_ncerts(const nk_tls_ctx *ctx)
{
    return ctx ? ctx->ncerts : 0;
}

int nk_tls_ctx_set_alpn(nk_tls_ctx *ctx, const char *const *protos, size_t nprotos)
{
    if (!ctx || (nprotos && !protos))
        return -EINVAL;
    size_t len = 0;
    for (size_t i = 0; i < nprotos; i++) {
        size_t n = strlen(protos[i]);
        if (n == 0 || n > 255)
            return -EINVAL;
        len += 1 + n;
    }
    unsigned char *wire = NULL;
    if (len) {
        wire = malloc(len);
        if (!wire)
            return -ENOMEM;
        unsigned char *p = wire;
        for (size_t i = 0; i < nprotos; i++) {
            size_t n = strlen(protos[i]);
            *p++ = (unsigned char)n;
            memcpy(p, protos[i], n);
            p += n;
        }
    }
    if (!ctx->is_server && SSL_CTX_set_alpn_protos(ctx->ssl, wire, (unsigned)len) != 0) {
        free(wire);
        return -ENOMEM;
    }
    free(ctx->alpn);
    ctx->alpn = wire;
    ctx->alpn_len = len;
    return 0;
}

/* ---- client verification -------------------------------------------------------------- */

static int parse_pin(const char *hex, unsigned char out[32])
{
    size_t n = 0;
    for (const char *p = hex; *p; p++) {
        if (*p == ':')
            continue;
        int v;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else
            return -EINVAL;
        if (n >= 64)
            return -EINVAL;
        if (n % 2 == 0)
            out[n / 2] = (unsigned char)(v << 4);
        else
            out[n / 2] |= (unsigned char)v;
        n++;
    }
    return n == 64 ? 0 : -EINVAL;
}

/* With a pin, the chain is not checked against CAs: the leaf must be exactly the pinned one. */
static int verify_pin(X509_STORE_CTX *store, void *arg)
{
    const nk_tls_ctx *ctx = arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!leaf || X509_digest(leaf, EVP_sha256(), md, &len) != 1 || len != 32 ||
        CRYPTO_memcmp(md, ctx->pin, 32) != 0) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    return 1;
}

int nk_tls_client_new(const nk_tls_client_config *cfg, nk_tls_ctx **out, char *err,
                      size_t errlen)
{
    if (!out)
        return -EINVAL;
    nk_tls_client_config taken = {0}; /* zero: every default */
    taken.size = sizeof taken;
    if (cfg) {
        int rc = nk__ext_copy(&taken, sizeof taken, cfg);
        if (rc < 0)
            return rc;
    }
    cfg = &taken;
    nk_tls_ctx *ctx = ctx_alloc(TLS_client_method(), 0, err, errlen);
    if (!ctx)
        return -ENOMEM;
    SSL_CTX *ssl = ctx->ssl;
    if (cfg->pin_sha256) {
        if (parse_pin(cfg->pin_sha256, ctx->pin) < 0) {
            nk__tls_set_err(err, errlen, "a SHA-256 pin is 64 hex digits (colons allowed)");
            nk_tls_ctx_free(ctx);
            return -EINVAL;
        }
        ctx->has_pin = 1;
        SSL_CTX_set_cert_verify_callback(ssl, verify_pin, ctx);
        SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    } else if (cfg->insecure) {
        SSL_CTX_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    } else {
        int ok = cfg->ca_file ? SSL_CTX_load_verify_locations(ssl, cfg->ca_file, NULL)
                              : SSL_CTX_set_default_verify_paths(ssl);
        if (ok != 1) {
            char what[300];
            snprintf(what, sizeof what, "cannot load CA certificates%s%s",
                     cfg->ca_file ? " from " : "", cfg->ca_file ? cfg->ca_file : "");
            nk__tls_set_err(err, errlen, what);
            nk_tls_ctx_free(ctx);
            return -EPROTO;
        }
        SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    }
    *out = ctx;
    return 0;
}

void nk_tls_ctx_free(nk_tls_ctx *ctx)
{
    if (!ctx || __atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    SSL_CTX_free(ctx->ssl);
    for (size_t i = 0; i < ctx->ncerts; i++)
        cert_clear(&ctx->certs[i]);
    free(ctx->certs);
    free(ctx->alpn);
    OPENSSL_cleanse(ctx->secret, sizeof ctx->secret);
    free(ctx);
}
