/* Private structures of the TLS transport, shared by its files:
 *   ctx.c        contexts: protocol profile, certificates and SNI, ALPN, client verification
 *   tickets.c    session ticket keys derived from a shared secret and the time period
 *   selfsign.c   an ECDSA P-256 certificate made in memory
 *   conn.c       a connection: handshake, read, write, writev, sendfile, shutdown, and a
 *                client's session saved and loaded for resumption
 *   info.c       what was negotiated, the peer's chain, kernel TLS availability
 */
#ifndef NK_TLS_INTERNAL_H
#define NK_TLS_INTERNAL_H

#include <netkit/tls.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

typedef struct nk__tls_cert {
    X509 *leaf;
    EVP_PKEY *key;
    STACK_OF(X509) *chain; /* intermediates, may be NULL */
} nk__tls_cert;

struct nk_tls_ctx {
    SSL_CTX *ssl;
    int is_server;
    int refs; /* atomic: the caller's and each connection's */
    nk__tls_cert *certs;
    size_t ncerts;
    unsigned char *alpn; /* wire format: length-prefixed names */
    size_t alpn_len;
    unsigned char secret[64];
    size_t secret_len;
    unsigned period_s;
    unsigned char pin[32];
    int has_pin;
};

struct nk_tls {
    SSL *ssl;
    nk_tls_ctx *ctx;
    int fd;
    unsigned want;
    /* nk_tls_sendfile without kernel TLS: a piece of the file read but not yet taken. */
    unsigned char *fbuf;
    size_t flen;
    off_t foff;
    int ffd;
    char err[NK_TLS_ERR_MAX];
    int eof_unclean; /* nk_tls_read's 0 came from a bare TCP close */
};

#define NK__TLS_RECORD 16384 /* largest TLS record payload */

/* Copy a one-line reason (OpenSSL's error queue first, else what) into err. */
void nk__tls_set_err(char *err, size_t errlen, const char *what);
int nk__tls_ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv,
                      EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc);
/* Add a certificate made in memory (takes both objects). */
int nk__tls_add_made_cert(nk_tls_ctx *ctx, X509 *leaf, EVP_PKEY *key, char *err, size_t errlen);
void nk__tls_hex(const unsigned char *in, size_t n, char *out);

#endif
