/* The transport under a connection: a plain socket, or TLS over it. Everything the engine
 * reads or writes on a connection goes through here, so the request and response code above
 * does not know which one carries its bytes.
 *
 * With TLS, what a call could not do now is reported as -EAGAIN like a socket's, and
 * the connection's nk__tlsconn says (want_write) whether the transport waits for the socket to become writable
 * (a TLS read can need to write, a write to read). Plaintext that OpenSSL holds decrypted but
 * unread raises no readiness event: nk__xp_pending tells conn.c to come back for it.
 */
#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd/internal.h"

static ssize_t tls_result(nk__conn *c, ssize_t n)
{
    nk__conn_tlsc(c)->want_write = n == -EAGAIN && nk_tls_want(c->tls) == NK_WRITE;
    return n;
}

ssize_t nk__xp_recv(nk__conn *c, void *buf, size_t len)
{
    if (nk__conn_h2s(c))
        return nk__h2s_recv(nk__conn_h2s(c), buf, len);
    if (c->tls)
        return tls_result(c, nk_tls_read(c->tls, buf, len));
    if (c->opc)
        return nk__opc_recv(c, buf, len);
    ssize_t n;
    do
        n = recv(c->io.fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

ssize_t nk__xp_send(nk__conn *c, const void *buf, size_t len, int more)
{
    if (nk__conn_h2s(c))
        return nk__h2s_send(nk__conn_h2s(c), buf, len);
    if (c->tls)
        return tls_result(c, nk_tls_write(c->tls, buf, len));
    if (c->opc)
        return nk__opc_send(c, buf, len);
    int flags = MSG_NOSIGNAL | (more && c->is_tcp ? MSG_MORE : 0);
    ssize_t n;
    do
        n = send(c->io.fd, buf, len, flags);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

/* A stream takes the pieces one by one: what it took of them, or its error. */
static ssize_t stream_sendv(nk__conn *c, const struct iovec *iov, int iovcnt)
{
    ssize_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_len)
            continue;
        ssize_t n = nk__h2s_send(nk__conn_h2s(c), iov[i].iov_base, iov[i].iov_len);
        if (n < 0)
            return total ? total : n;
        total += n;
        if ((size_t)n < iov[i].iov_len)
            break;
    }
    return total;
}

ssize_t nk__xp_sendv(nk__conn *c, const struct iovec *iov, int iovcnt, int more)
{
    if (nk__conn_h2s(c))
        return stream_sendv(c, iov, iovcnt);
    if (c->tls)
        return tls_result(c, nk_tls_writev(c->tls, iov, iovcnt));
    if (c->opc) {
        /* The pieces (the server's head scratch, a page being built) are not kept while a
         * send runs: the caller copies them into its pending output, sent from there. */
        return -EAGAIN;
    }
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    int flags = MSG_NOSIGNAL | (more && c->is_tcp ? MSG_MORE : 0);
    ssize_t n;
    do
        n = sendmsg(c->io.fd, &msg, flags);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

ssize_t nk__xp_sendfile(nk__conn *c, int fd, off_t *off, size_t len)
{
    if (nk__conn_h2s(c))
        return nk__h2s_sendfile(nk__conn_h2s(c), fd, off, len);
    if (c->tls)
        return tls_result(c, nk_tls_sendfile(c->tls, fd, off, len));
    if (c->opc)
        return nk__opc_sendfile(c, fd, off, len);
    ssize_t n;
    do
        n = sendfile(c->io.fd, fd, off, len);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

size_t nk__xp_pending(const nk__conn *c)
{
    if (c->opc)
        return nk__opc_pending(c);
    return c->tls ? nk_tls_pending(c->tls) : 0;
}

/* Off the queue of clients waiting for a handshake slot (c is on it: hs_waiting). Clients
 * that leave while they wait go from anywhere in it, so it is linked both ways: a flood of
 * them costs no walk. */
static void wait_remove(nk__conn *c)
{
    nk_httpd *srv = c->srv;
    nk__tlsconn *t = nk__conn_tlsc(c);
    if (t->hs_prev)
        nk__conn_tlsc(t->hs_prev)->hs_next = t->hs_next;
    else
        srv->hs_wait = t->hs_next;
    if (t->hs_next)
        nk__conn_tlsc(t->hs_next)->hs_prev = t->hs_prev;
    else
        srv->hs_wait_tail = t->hs_prev;
    t->hs_next = t->hs_prev = NULL;
    t->hs_waiting = 0;
}

/* A handshake slot is free: the longest-waiting client takes it on the next loop turn. */
static void slot_freed(nk_httpd *srv)
{
    srv->handshakes--;
    nk__conn *c = srv->hs_wait;
    if (!c)
        return;
    wait_remove(c);
    nk__conn_kick(c);
}

/* c gives its handshake slot back, if it holds one. */
static void slot_release(nk__conn *c)
{
    nk__tlsconn *t = nk__conn_tlsc(c);
    if (!t->hs_slot)
        return;
    t->hs_slot = 0;
    slot_freed(c->srv);
}

/* A handshake slot for a connection whose client has sent bytes: 1 taken, 0 to wait (nothing
 * to read yet, or the cap of handshakes in flight is reached: queued), -1 to close (the peer
 * left). */
static int slot_take(nk__conn *c)
{
    nk_httpd *srv = c->srv;
    char b;
    ssize_t n;
    do
        n = recv(c->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return 0;
    if (n <= 0)
        return -1; /* closed without a word (a port probe): not a failed handshake */
    nk__tlsconn *t = nk__conn_tlsc(c);
    if (srv->handshakes >= srv->max_handshakes) {
        /* Handshakes cost CPU and memory: past the cap a client that spoke waits its turn,
         * its bytes unread, within its header timeout. */
        if (!t->hs_waiting) {
            t->hs_waiting = 1;
            t->hs_next = NULL;
            t->hs_prev = srv->hs_wait_tail;
            if (srv->hs_wait_tail)
                nk__conn_tlsc(srv->hs_wait_tail)->hs_next = c;
            else
                srv->hs_wait = c;
            srv->hs_wait_tail = c;
        }
        return 0;
    }
    srv->handshakes++;
    t->hs_slot = 1;
    return 1;
}

/* 1 when the handshake is done, 0 to wait (interest in nk__tlsconn.want_write), -1 to close.
 * A slot is held while the handshake has its client's bytes to work on or output the socket
 * did not take, not while it waits for the client: a client that sends a byte, or a whole
 * ClientHello, and then nothing would otherwise keep its slot until its header timeout, and
 * 512 such connections locked every other client out of https. */
int nk__xp_handshake(nk__conn *c)
{
    nk_httpd *srv = c->srv;
    nk__tlsconn *t = nk__conn_tlsc(c);
    if (!t->hs_slot) {
        int b = slot_take(c);
        if (b <= 0)
            return b;
    }
    if (!c->tls && (!srv->tls_ctx || nk_tls_new(srv->tls_ctx, c->io.fd, NULL, &c->tls) < 0)) {
        slot_release(c);
        NK__COUNT(srv, tls_failed, 1);
        return -1;
    }
    int r = nk_tls_handshake(c->tls);
    if (r == 0) {
        t->handshaking = 0;
        t->want_write = 0;
        slot_release(c);
        NK__COUNT(srv, tls_handshakes, 1);
        if (nk_tls_resumed(c->tls))
            NK__COUNT(srv, tls_resumed, 1);
        return 1;
    }
    if (r == -EAGAIN) {
        t->want_write = nk_tls_want(c->tls) == NK_WRITE;
        if (!t->want_write)
            slot_release(c); /* its client's turn: the slot goes to another meanwhile */
        return 0;
    }
    return -1; /* counted as failed when closed (nk__xp_close) */
}

/* The response that ends the connection is out: TLS says so first (close_notify), then TCP. */
void nk__xp_shutdown_write(nk__conn *c)
{
    if (nk__conn_h2s(c))
        return;
    if (c->tls)
        nk_tls_shutdown(c->tls);
    shutdown(c->io.fd, SHUT_WR);
}

void nk__xp_close(nk__conn *c)
{
    if (nk__conn_h2s(c)) {
        nk__h2s *s = nk__conn_h2s(c);
        nk__conn_set_h2s(c, NULL);
        nk__h2s_conn_closed(s);
        return;
    }
    nk__tlsconn *t = nk__conn_tlsc(c);
    if (t && t->hs_waiting)
        wait_remove(c);
    if (t)
        slot_release(c);
    if (c->tls) {
        /* RFC 8446 section 6.1: say the end is the end (best effort, never waits), so a
         * client can tell a response cut short by the network from a whole one. */
        if (!t->handshaking)
            nk_tls_shutdown(c->tls);
        if (t->handshaking) /* failed, cut short or timed out: it ends inside the handshake */
            NK__COUNT(c->srv, tls_failed, 1);
        nk_tls_free(c->tls);
        c->tls = NULL;
    }
    nk__opc_close(c);
    close(c->io.fd);
}
