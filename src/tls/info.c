/* What a handshake negotiated and what the peer presented, for `-v` lines, status pages and
 * `netkit lookup tls`; and whether kernel TLS can carry what is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tls/tls_internal.h"

const char *nk_tls_version(const nk_tls *t)
{
    return SSL_get_version(t->ssl);
}

const char *nk_tls_cipher(const nk_tls *t)
{
    const char *c = SSL_get_cipher_name(t->ssl);
    return c ? c : "";
}

const char *nk_tls_alpn(const nk_tls *t, size_t *len)
{
    const unsigned char *p = NULL;
    unsigned n = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    if (len)
        *len = n;
    return p ? (const char *)p : "";
}

const char *nk_tls_server_name(const nk_tls *t)
{
    return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

int nk_tls_resumed(const nk_tls *t)
{
    return SSL_session_reused(t->ssl) == 1;
}

int nk_tls_ktls_send(const nk_tls *t)
{
#ifndef OPENSSL_NO_KTLS
    return BIO_get_ktls_send(SSL_get_wbio(t->ssl)) ? 1 : 0;
#else
    (void)t;
    return 0;
#endif
}

static int fingerprint(X509 *x, char fp_hex[NK_TLS_FP_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (X509_digest(x, EVP_sha256(), md, &len) != 1 || len != 32)
        return -EPROTO;
    nk__tls_hex(md, len, fp_hex);
    return 0;
}

int nk_tls_peer_fingerprint(const nk_tls *t, char fp_hex[NK_TLS_FP_HEX])
{
    X509 *leaf = SSL_get0_peer_certificate(t->ssl);
    if (!leaf)
        return -ENOENT;
    return fingerprint(leaf, fp_hex);
}

/* Append one certificate's lines to the memory BIO. */
static void describe(BIO *b, X509 *x, int depth)
{
    char fp[NK_TLS_FP_HEX] = "";
    BIO_printf(b, "%d subject: ", depth);
    X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    BIO_printf(b, "\n  issuer: ");
    X509_NAME_print_ex(b, X509_get_issuer_name(x), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    BIO_printf(b, "\n  valid: ");
    ASN1_TIME_print(b, X509_get0_notBefore(x));
    BIO_printf(b, " to ");
    ASN1_TIME_print(b, X509_get0_notAfter(x));
    fingerprint(x, fp);
    BIO_printf(b, "\n  sha256: %s\n", fp);
}

int nk_tls_peer_chain(const nk_tls *t, char *buf, size_t len)
{
    if (len)
        buf[0] = '\0';
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(t->ssl);
    X509 *leaf = SSL_get0_peer_certificate(t->ssl);
    if (!leaf)
        return 0;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return -ENOMEM;
    int n = 0;
    /* A server's view of a client chain leaves the leaf out; a client's includes it. */
    if (!chain || sk_X509_num(chain) == 0 || X509_cmp(sk_X509_value(chain, 0), leaf) != 0)
        describe(b, leaf, n++);
    for (int i = 0; chain && i < sk_X509_num(chain); i++)
        describe(b, sk_X509_value(chain, i), n++);
    char *data = NULL;
    long got = BIO_get_mem_data(b, &data);
    if (len && got > 0) {
        size_t copy = (size_t)got < len - 1 ? (size_t)got : len - 1;
        memcpy(buf, data, copy);
        buf[copy] = '\0';
    }
    BIO_free(b);
    return n;
}

int nk_tls_ktls_available(char *why, size_t whylen)
{
#ifdef OPENSSL_NO_KTLS
    snprintf(why, whylen, "this OpenSSL was built without kernel TLS");
    return 0;
#else
    char ulps[256] = "";
    int fd = open("/proc/sys/net/ipv4/tcp_available_ulp", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, ulps, sizeof ulps - 1);
        ulps[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    char *nl = strchr(ulps, '\n');
    if (nl)
        *nl = '\0';
    for (char *p = ulps; (p = strstr(p, "tls")) != NULL; p += 3) {
        if ((p == ulps || p[-1] == ' ') && (p[3] == '\0' || p[3] == ' ')) {
            if (why && whylen)
                why[0] = '\0';
            return 1;
        }
    }
    if (why && whylen)
        snprintf(why, whylen, "the kernel offers no tls ULP (tcp_available_ulp: %s; modprobe tls)",
                 ulps[0] ? ulps : "none");
    return 0;
#endif
}
