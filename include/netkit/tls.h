/* TLS as a transport (OpenSSL 3): a context (certificates, SNI, ALPN, session tickets, peer
 * verification) and a connection that reads and writes like a non-blocking socket.
 *
 * A context is made for one side. A server context holds one or more certificates: the first
 * added is the default, and a ClientHello whose server name (SNI) matches a name of another
 * certificate (its subjectAltName DNS names, or its common name when it has none; "*.example"
 * matches one label) gets that one. A client context verifies the server against the system's
 * CA store (or ca_file) and the host name given to nk_tls_new, or only against a SHA-256
 * fingerprint of the certificate (pin), or not at all (insecure).
 *
 * Both sides: TLS 1.2 and 1.3 only, forward-secret ECDHE key exchange with AES-GCM or
 * ChaCha20-Poly1305 (no RSA key exchange, no CBC), no compression, no renegotiation, no
 * 0-RTT. OpenSSL's per-connection buffers are released while a connection is idle
 * (SSL_MODE_RELEASE_BUFFERS), so an idle TLS connection costs little more than a plain one.
 *
 * Contexts are reference-counted: each connection holds its context, so a server may replace
 * its context (a certificate reload) while old connections finish on the old one.
 *
 * Connections are non-blocking: every call that would block returns -EAGAIN, and
 * nk_tls_want says whether to wait for NK_READ or NK_WRITE (during a handshake, a write may
 * have to wait for the socket to be readable and the other way round). nk_tls_read may return
 * fewer bytes than the record held: nk_tls_pending then says how many are buffered inside,
 * which no readiness event will announce. A write that returned -EAGAIN must be repeated with
 * the same bytes (at least as many), as with OpenSSL.
 *
 * Errors are negative errno values: -EPROTO for a TLS failure (nk_tls_error has OpenSSL's
 * reason), -ECONNRESET, -ENOMEM, -EINVAL. Threading: a context may be shared by threads once
 * configured; a connection belongs to one thread. The library never prints.
 */
#ifndef NETKIT_TLS_H
#define NETKIT_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <errno.h>
#include <netkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

typedef struct nk_tls_ctx nk_tls_ctx;
typedef struct nk_tls nk_tls;

#define NK_TLS_FP_HEX 65 /* a SHA-256 fingerprint as 64 hex digits and a NUL */
#define NK_TLS_ERR_MAX 256

/* A server context with no certificate yet. err (errlen bytes, may be NULL) gets a one-line
 * reason on failure. */
int nk_tls_server_new(nk_tls_ctx **out, char *err, size_t errlen);

/* Add a certificate chain (PEM, leaf first) and its private key (PEM). -ENOENT/-EACCES for
 * unreadable files, -EPROTO for a bad certificate or key, or a key that does not match. */
int nk_tls_ctx_add_cert(nk_tls_ctx *ctx, const char *cert_file, const char *key_file, char *err,
                        size_t errlen);

/* Make an ECDSA P-256 certificate in memory (self-signed, valid from an hour ago for 30 days)
 * naming each of names (host names, or IPv4/IPv6 literals, which go in as IP addresses), and
 * add it. fp_hex (may be NULL) receives its SHA-256 fingerprint: what a client pins. */
int nk_tls_ctx_add_self_signed(nk_tls_ctx *ctx, const char *const *names, size_t nnames,
                               char fp_hex[NK_TLS_FP_HEX], char *err, size_t errlen);

/* Application protocols offered (client) or accepted (server, in its order of preference),
 * e.g. {"h2", "http/1.1"}. A server whose client offers none of them goes on without ALPN;
 * one whose client offers only others fails the handshake (no_application_protocol). */
int nk_tls_ctx_set_alpn(nk_tls_ctx *ctx, const char *const *protos, size_t nprotos);

/* Session tickets (server): keys derived from secret (at least 32 bytes) and the current
 * period of period_s seconds (0: 3600), so every process given the same secret issues and
 * accepts the same tickets without talking to the others, the key changes each period, and
 * the previous period's key is still accepted. Without a secret, a random one per context.
 * The secret is copied, kept in memory only, and wiped when the context is freed. */
int nk_tls_ctx_set_ticket_secret(nk_tls_ctx *ctx, const void *secret, size_t len,
                                 unsigned period_s);

/* Client verification. Extensible (docs/library.md, "Config structs"): size is the caller's
 * sizeof(nk_tls_client_config), set by nk_tls_client_config_init or in the initializer
 * ({.size = sizeof cfg, ...}); fields are only ever added at the end. */
typedef struct nk_tls_client_config {
    size_t size;                /* required: sizeof(nk_tls_client_config) of the caller */
    const char *ca_file;        /* PEM bundle instead of the system store; NULL: the system's */
    const char *pin_sha256;     /* accept exactly the leaf certificate with this SHA-256
                                 * fingerprint (hex, colons allowed), without CA checks */
    int insecure;               /* no verification at all */
} nk_tls_client_config;

/* Zero cfg (system CAs, full verification) and set its size. */
static inline void nk_tls_client_config_init(nk_tls_client_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
}

/* A client context; cfg may be NULL (system CAs, full verification). -EINVAL for cfg->size
 * 0, -E2BIG for a newer caller's struct that sets a field this library does not know. */
int nk_tls_client_new(const nk_tls_client_config *cfg, nk_tls_ctx **out, char *err,
                      size_t errlen);

/* Take one more reference (returns ctx); each is dropped with nk_tls_ctx_free. */
nk_tls_ctx *nk_tls_ctx_ref(nk_tls_ctx *ctx);

/* Drop the caller's reference (connections keep theirs). NULL is a no-op. */
void nk_tls_ctx_free(nk_tls_ctx *ctx);

/* Number of certificates of a server context. */
size_t nk_tls_ctx_ncerts(const nk_tls_ctx *ctx);

/* A TLS connection over the connected non-blocking socket fd (not owned: the caller closes
 * it after nk_tls_free). Client: server_name is sent as SNI (unless it is an IP literal) and
 * is the name the certificate must carry; may be NULL only with insecure or a pin. */
int nk_tls_new(nk_tls_ctx *ctx, int fd, const char *server_name, nk_tls **out);

/* Client session resumption, for a later connection to the same server (same server_name):
 * nk_tls_session_save writes this connection's session (DER) into buf and returns its length,
 * or the length needed when len is too small (nothing written then), or 0 when there is no
 * resumable session yet: a TLS 1.3 server sends its tickets after the handshake, so they are
 * taken in by the first nk_tls_read that follows. The bytes hold the keys that resume the
 * session: keep them like a password. nk_tls_session_load offers a saved session on a new
 * client connection before its handshake; a server that no longer accepts it makes a full
 * handshake (nk_tls_resumed says which). -EINVAL on a server connection, after the handshake
 * started (load), or for bytes that are no session. */
ssize_t nk_tls_session_save(const nk_tls *t, void *buf, size_t len);
int nk_tls_session_load(nk_tls *t, const void *buf, size_t len);

/* Drive the handshake: 0 when done, -EAGAIN (see nk_tls_want), or an error. */
int nk_tls_handshake(nk_tls *t);

/* What the last -EAGAIN waits for: NK_READ or NK_WRITE (netkit/loop.h). */
unsigned nk_tls_want(const nk_tls *t);

/* Decrypted bytes: > 0, 0 at the peer's close_notify or EOF, -EAGAIN, or an error. */
ssize_t nk_tls_read(nk_tls *t, void *buf, size_t len);

/* After nk_tls_read returned 0: 1 when the peer ended with close_notify, 0 when the TCP
 * connection just ended. A body delimited by the end of the connection is complete only in
 * the first case (an attacker on the path can cut a connection, not forge close_notify). */
int nk_tls_eof_clean(const nk_tls *t);

/* Plaintext bytes buffered inside, ready for nk_tls_read without the socket. */
size_t nk_tls_pending(const nk_tls *t);

/* Encrypt and send: the bytes taken (> 0, possibly fewer than len), -EAGAIN, or an error. */
ssize_t nk_tls_write(nk_tls *t, const void *buf, size_t len);

/* As nk_tls_write for a gather list: small pieces are joined so that they leave in one
 * record instead of one record each. */
ssize_t nk_tls_writev(nk_tls *t, const struct iovec *iov, int iovcnt);

/* Send len bytes of file fd from *off (advanced by what was sent): through the kernel without
 * a copy when kernel TLS is on for this connection, otherwise read into a buffer the
 * connection keeps while a piece is in flight. As nk_tls_write; 0 at the file's end. */
ssize_t nk_tls_sendfile(nk_tls *t, int fd, off_t *off, size_t len);

/* Send close_notify (best effort, never blocks). */
void nk_tls_shutdown(nk_tls *t);

/* Free the connection (not its fd). NULL is a no-op. */
void nk_tls_free(nk_tls *t);

/* After the handshake: protocol ("TLSv1.3"), cipher suite, ALPN protocol ("" when none; len
 * in *len), the SNI name the client sent (server side; NULL when none), whether the session
 * was resumed, whether the kernel encrypts what is sent (kernel TLS). */
const char *nk_tls_version(const nk_tls *t);
const char *nk_tls_cipher(const nk_tls *t);
const char *nk_tls_alpn(const nk_tls *t, size_t *len);
const char *nk_tls_server_name(const nk_tls *t);
int nk_tls_resumed(const nk_tls *t);
int nk_tls_ktls_send(const nk_tls *t);

/* The last failure of t, one line ("certificate verify failed: self-signed certificate",
 * ...), or "" when none. */
const char *nk_tls_error(const nk_tls *t);

/* The peer's certificate chain as text, one certificate per line group (subject, issuer,
 * validity, SHA-256 fingerprint), into buf (NUL-terminated, truncated to len). Returns the
 * number of certificates, 0 when the peer sent none. */
int nk_tls_peer_chain(const nk_tls *t, char *buf, size_t len);

/* SHA-256 fingerprint of the peer's leaf certificate, hex. -ENOENT when there is none. */
int nk_tls_peer_fingerprint(const nk_tls *t, char fp_hex[NK_TLS_FP_HEX]);

/* Whether this OpenSSL and this kernel can do kernel TLS for sending: 1, or 0 with a reason
 * in why ("the kernel has no tls ULP (modprobe tls)", ...). */
int nk_tls_ktls_available(char *why, size_t whylen);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
