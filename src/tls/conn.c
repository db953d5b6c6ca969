/* A TLS connection over a non-blocking socket: OpenSSL's SSL object with its results turned
 * into the library's conventions (a count, 0 at the end, -EAGAIN with what to wait for, or a
 * negative errno with a one-line reason kept in the connection).
 *
 * OpenSSL keeps its error queue per thread, and a failed call of one connection leaves entries
 * that a later call of another would read as its own: every call starts with an empty queue.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <netkit/loop.h>

#include "tls/tls_internal.h"

static void keep_reason(nk_tls *t, int ssl_err)
{
    unsigned long e = ERR_peek_last_error();
    long verify = SSL_get_verify_result(t->ssl);
    /* Without verification (insecure) OpenSSL still records what it found, without failing:
     * that is no reason for a later failure. */
    if (verify != X509_V_OK && !SSL_is_server(t->ssl) &&
        SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE) {
        snprintf(t->err, sizeof t->err, "certificate verify failed: %s",
                 X509_verify_cert_error_string(verify));
    } else if (e) {
        const char *reason = ERR_reason_error_string(e);
        snprintf(t->err, sizeof t->err, "%s", reason ? reason : "TLS error");
    } else if (ssl_err == SSL_ERROR_SYSCALL) {
        snprintf(t->err, sizeof t->err, "%s", errno ? strerror(errno) : "connection closed");
    } else {
        snprintf(t->err, sizeof t->err, "TLS error %d", ssl_err);
    }
    ERR_clear_error();
}

/* The result of a failed SSL call as the library's: -EAGAIN, 0 (the end), or an error. */
static int failed(nk_tls *t, int ret)
{
    int saved = errno;
    int e = SSL_get_error(t->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        t->want = NK_READ;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        t->want = NK_WRITE;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            ERR_clear_error();
            if (saved == EAGAIN || saved == EINTR) {
                t->want = NK_READ;
                return -EAGAIN;
            }
            if (saved == 0) {
                t->eof_unclean = 1; /* EOF without close_notify */
                return 0;
            }
            snprintf(t->err, sizeof t->err, "%s", strerror(saved));
            return -saved;
        }
        keep_reason(t, e);
        return -EPROTO;
    default:
        if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            t->eof_unclean = 1; /* the TCP connection ended without close_notify */
            return 0;
        }
        keep_reason(t, e);
        return -EPROTO;
    }
}

int nk_tls_new(nk_tls_ctx *ctx, int fd, const char *server_name, nk_tls **out)
{
    if (!ctx || fd < 0 || !out)
        return -EINVAL;
    if (server_name && !*server_name)
        server_name = NULL; /* an empty name checks nothing: it must not pass for one */
    if (!ctx->is_server && !server_name && SSL_CTX_get_verify_mode(ctx->ssl) != SSL_VERIFY_NONE &&
        !ctx->has_pin)
        return -EINVAL; /* nothing to check the certificate against */
    nk_tls *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->fd = fd;
    t->ffd = -1;
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ssl);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return -ENOMEM;
    }
    if (ctx->is_server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (server_name) {
            unsigned char ip[16];
            int literal = inet_pton(AF_INET, server_name, ip) == 1 ||
                          inet_pton(AF_INET6, server_name, ip) == 1;
            int ok = 1;
            if (!literal)
                ok = SSL_set_tlsext_host_name(t->ssl, server_name) == 1;
            if (ok && !ctx->has_pin && SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE) {
                X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
                ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name) == 1
                             : SSL_set1_host(t->ssl, server_name) == 1;
            }
            if (!ok) {
                SSL_free(t->ssl);
                free(t);
                ERR_clear_error();
                return -EINVAL;
            }
        }
    }
    nk_tls_ctx_ref(ctx);
    t->ctx = ctx;
    t->want = NK_READ;
    *out = t;
    return 0;
}

ssize_t nk_tls_session_save(const nk_tls *t, void *buf, size_t len)
{
    if (!t || SSL_is_server(t->ssl) || (len && !buf))
        return -EINVAL;
    SSL_SESSION *sess = SSL_get1_session(t->ssl);
    if (!sess || !SSL_SESSION_is_resumable(sess)) {
        SSL_SESSION_free(sess);
        return 0; /* no handshake yet, or a TLS 1.3 ticket still to come */
    }
    ssize_t need = i2d_SSL_SESSION(sess, NULL);
    if (need > 0 && (size_t)need <= len) {
        unsigned char *p = buf;
        need = i2d_SSL_SESSION(sess, &p);
    }
    SSL_SESSION_free(sess);
    ERR_clear_error();
    return need > 0 ? need : -ENOMEM;
}

int nk_tls_session_load(nk_tls *t, const void *buf, size_t len)
{
    if (!t || !buf || len == 0 || len > LONG_MAX || SSL_is_server(t->ssl) ||
        !SSL_in_before(t->ssl))
        return -EINVAL;
    const unsigned char *p = buf;
    SSL_SESSION *sess = d2i_SSL_SESSION(NULL, &p, (long)len);
    int ok = sess && SSL_set_session(t->ssl, sess) == 1;
    SSL_SESSION_free(sess); /* the connection holds its own reference */
    ERR_clear_error();
    return ok ? 0 : -EINVAL;
}

int nk_tls_handshake(nk_tls *t)
{
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return 0;
    r = failed(t, r);
    if (r == 0) {
        snprintf(t->err, sizeof t->err, "connection closed during the handshake");
        return -ECONNRESET;
    }
    return r;
}

unsigned nk_tls_want(const nk_tls *t)
{
    return t->want;
}

ssize_t nk_tls_read(nk_tls *t, void *buf, size_t len)
{
    if (len == 0)
        return 0;
    ERR_clear_error();
    size_t got = 0;
    int r = SSL_read_ex(t->ssl, buf, len, &got);
    if (r == 1)
        return (ssize_t)got;
    return failed(t, r);
}

size_t nk_tls_pending(const nk_tls *t)
{
    int n = SSL_pending(t->ssl);
    return n > 0 ? (size_t)n : 0;
}

ssize_t nk_tls_write(nk_tls *t, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    ERR_clear_error();
    size_t put = 0;
    int r = SSL_write_ex(t->ssl, buf, len, &put);
    if (r == 1)
        return (ssize_t)put;
    r = failed(t, r);
    return r == 0 ? -EPIPE : r;
}

ssize_t nk_tls_writev(nk_tls *t, const struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0 && iov[0].iov_len == 0) {
        iov++;
        iovcnt--;
    }
    if (iovcnt <= 0)
        return 0;
    /* One piece, or a first piece big enough to fill records by itself: no copy. */
    if (iovcnt == 1 || iov[0].iov_len >= NK__TLS_RECORD / 4)
        return nk_tls_write(t, iov[0].iov_base, iov[0].iov_len);
    /* Several small pieces (a head and a small body): one record rather than one each. */
    unsigned char joined[NK__TLS_RECORD];
    size_t used = 0;
    for (int i = 0; i < iovcnt && used < sizeof joined; i++) {
        size_t n = iov[i].iov_len;
        if (n > sizeof joined - used)
            n = sizeof joined - used;
        memcpy(joined + used, iov[i].iov_base, n);
        used += n;
    }
    return nk_tls_write(t, joined, used);
}

/* Without kernel TLS: the file goes through a buffer, which keeps a piece OpenSSL refused
 * (-EAGAIN) until it is taken, since a write must be repeated with the same bytes. */
static ssize_t sendfile_copy(nk_tls *t, int fd, off_t *off, size_t len)
{
    if (t->flen && (t->ffd != fd || t->foff != *off))
        t->flen = 0; /* a different piece: the caller moved on */
    if (t->flen == 0) {
        if (!t->fbuf) {
            t->fbuf = malloc(NK__TLS_RECORD);
            if (!t->fbuf)
                return -ENOMEM;
        }
        size_t want = len < NK__TLS_RECORD ? len : NK__TLS_RECORD;
        ssize_t n;
        do
            n = pread(fd, t->fbuf, want, *off);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        t->flen = (size_t)n;
        t->ffd = fd;
        t->foff = *off;
    }
    ssize_t put = nk_tls_write(t, t->fbuf, t->flen);
    if (put < 0)
        return put;
    *off += put;
    t->flen -= (size_t)put;
    if (t->flen) {
        memmove(t->fbuf, t->fbuf + put, t->flen);
        t->foff = *off;
    } else if ((size_t)put >= len) {
        /* The caller's last piece is out: the buffer goes back, as OpenSSL's own do, so an
         * idle connection holds none; while a file is being sent it is reused. */
        free(t->fbuf);
        t->fbuf = NULL;
    }
    return put;
}

ssize_t nk_tls_sendfile(nk_tls *t, int fd, off_t *off, size_t len)
{
    if (len == 0)
        return 0;
#ifndef OPENSSL_NO_KTLS
    if (BIO_get_ktls_send(SSL_get_wbio(t->ssl))) {
        ERR_clear_error();
        ossl_ssize_t n = SSL_sendfile(t->ssl, fd, *off, len, 0);
        if (n > 0) {
            *off += n;
            return n;
        }
        int r = failed(t, (int)n);
        return r == 0 ? -EPIPE : r;
    }
#endif
    return sendfile_copy(t, fd, off, len);
}

void nk_tls_shutdown(nk_tls *t)
{
    if (!t || !SSL_is_init_finished(t->ssl) || (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

void nk_tls_free(nk_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t->fbuf);
    nk_tls_ctx_free(t->ctx);
    free(t);
}

int nk_tls_eof_clean(const nk_tls *t)
{
    return !t->eof_unclean;
}

const char *nk_tls_error(const nk_tls *t)
{
    return t->err;
}
