/* The stdin/stdout <-> stream socket pump (see stream/pump.h for the contract).
 *
 * Every callback does its I/O, then calls pump_step(), which decides what to watch next and
 * whether the connection has ended; the end callback is the very last thing pump_step does, so
 * the caller may detach, attach the next connection or stop the loop from it.
 *
 * stdin is left in blocking mode and read once per readiness report (level-triggered, so one
 * read cannot block): changing its flags would also change them for the shell that shares the
 * terminal. stdout gets O_NONBLOCK unless it is a terminal, because a blocking write of a big
 * buffer into a nearly full pipe would stall the whole loop; its flags are restored at the end.
 *
 * Over TLS the socket calls become nk_tls calls, and each direction remembers what readiness
 * its last -EAGAIN asked for (rd_wait, wr_wait: a TLS read may wait for the socket to be
 * writable and a write for it to be readable). A record holds up to 16 KiB: when stdout's
 * buffer fills in the middle of one, the rest stays inside OpenSSL where no readiness event
 * will announce it, so the tls_more defer comes back for it once stdout has room.
 */
#include "stream/pump.h"
#include "cli.h"
#include "hexdump.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SP_CHUNK (64 * 1024)

static void pump_step(stream_pump *p);

/* ---- stdin -> to_sock --------------------------------------------------------------------- */

/* Append one stdin line (without its "\n", and without a "\r" before it) as a message. */
static int frame_line(stream_pump *p, const char *msg, size_t len)
{
    if (len > 0 && msg[len - 1] == '\r')
        len--;
    if (p->opts.frame == NK_FRAME_LINE && p->opts.crlf) {
        int rc = nk_buf_append(&p->to_sock, msg, len);
        return rc < 0 ? rc : nk_buf_append(&p->to_sock, "\r\n", 2);
    }
    return nk_frame_encode((nk_frame_kind)p->opts.frame, msg, len, SP_FRAME_MAX, &p->to_sock);
}

/* Turn whole lines buffered from stdin into messages; at EOF the rest is the last one. */
static int frame_stdin(stream_pump *p)
{
    for (;;) {
        char *start = nk_buf_rptr(&p->lines);
        size_t avail = nk_buf_len(&p->lines);
        /* An empty buffer may have no storage at all (NULL): memchr must not see it. */
        char *nl = avail ? memchr(start, '\n', avail) : NULL;
        if (!nl)
            break;
        int rc = frame_line(p, start, (size_t)(nl - start));
        if (rc < 0)
            return rc;
        nk_buf_consume(&p->lines, (size_t)(nl - start) + 1);
    }
    if (p->in_eof && nk_buf_len(&p->lines) > 0) {
        int rc = frame_line(p, nk_buf_rptr(&p->lines), nk_buf_len(&p->lines));
        nk_buf_clear(&p->lines);
        if (rc < 0)
            return rc;
    }
    if (nk_buf_len(&p->lines) > SP_FRAME_MAX)
        return -EMSGSIZE;
    return 0;
}

static int take_stdin(stream_pump *p, const char *data, size_t n)
{
    if (p->opts.frame) {
        int rc = nk_buf_append(&p->lines, data, n);
        return rc < 0 ? rc : frame_stdin(p);
    }
    if (!p->opts.crlf)
        return nk_buf_append(&p->to_sock, data, n);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n' && !(i > 0 ? data[i - 1] == '\r' : p->prev_cr)) {
            int rc = nk_buf_append(&p->to_sock, data + start, i - start);
            if (rc < 0 || (rc = nk_buf_append(&p->to_sock, "\r\n", 2)) < 0)
                return rc;
            start = i + 1;
        }
    }
    if (n > 0)
        p->prev_cr = data[n - 1] == '\r';
    return nk_buf_append(&p->to_sock, data + start, n - start);
}

static void on_stdin(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    stream_pump *p = io->data;
    ssize_t n = read(io->fd, p->chunk, SP_CHUNK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        pump_step(p);
        return;
    }
    int rc = 0;
    if (n < 0) {
        rc = -errno;
    } else if (n == 0) {
        p->in_eof = 1;
        if (p->opts.frame)
            rc = frame_stdin(p);
    } else {
        rc = take_stdin(p, p->chunk, (size_t)n);
    }
    if (rc < 0) {
        p->in_eof = 1;
        p->in_err = rc;
    }
    pump_step(p);
}

/* ---- socket -> to_out ---------------------------------------------------------------------- */

/* One received message as one line of output, in the --frame-output form. */
static int put_message(stream_pump *p, const char *msg, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)msg;
    int rc = 0;
    if (p->opts.frame_output == SP_FRAME_OUT_RAW) {
        rc = nk_buf_append(&p->to_out, msg, len);
    } else if (p->opts.frame_output == SP_FRAME_OUT_HEX) {
        for (size_t i = 0; i < len && rc == 0; i++) {
            char two[2] = {hex[u[i] >> 4], hex[u[i] & 15]};
            rc = nk_buf_append(&p->to_out, two, 2);
        }
    } else {
        size_t run = 0, i = 0; /* msg[run..i) goes out as it is */
        while (i < len && rc == 0) {
            size_t n = nk_utf8_len(u + i, len - i);
            int plain = (n == 1 && u[i] >= 0x20 && u[i] != 0x7F && u[i] != '\\') ||
                        (n > 1 && !(n == 2 && u[i] == 0xC2 && u[i + 1] <= 0x9F));
            if (plain) {
                i += n;
                continue;
            }
            char esc[5] = {'\\', 'x', hex[u[i] >> 4], hex[u[i] & 15], '\0'};
            if (u[i] == '\\' || u[i] == '\n' || u[i] == '\r' || u[i] == '\t') {
                esc[1] = u[i] == '\\' ? '\\' : u[i] == '\n' ? 'n' : u[i] == '\r' ? 'r' : 't';
                esc[2] = '\0';
            }
            if ((rc = nk_buf_append(&p->to_out, msg + run, i - run)) == 0)
                rc = nk_buf_append(&p->to_out, esc, strlen(esc));
            run = ++i; /* one byte escaped (a C1 control's two bytes: one escape each) */
        }
        if (rc == 0)
            rc = nk_buf_append(&p->to_out, msg + run, len - run);
    }
    return rc < 0 ? rc : nk_buf_append(&p->to_out, "\n", 1);
}

static int take_peer(stream_pump *p, const char *data, size_t n)
{
    if (!p->opts.frame)
        return nk_buf_append(&p->to_out, data, n);
    int rc = nk_frame_feed(&p->dec, data, n);
    const char *msg;
    size_t len;
    while (rc >= 0 && (rc = nk_frame_next(&p->dec, &msg, &len)) == 1) {
        if ((rc = put_message(p, msg, len)) < 0)
            break;
    }
    return rc < 0 ? rc : 0;
}

static void sock_failed(stream_pump *p, int err)
{
    p->sock_dead = 1;
    p->sock_err = err;
}

/* send or nk_tls_write: > 0, -EAGAIN (wr_wait says for what) or an error. */
static ssize_t sock_send(stream_pump *p, const void *data, size_t len)
{
    if (p->tls) {
        ssize_t n = nk_tls_write(p->tls, data, len);
        p->wr_wait = n == -EAGAIN ? nk_tls_want(p->tls) : NK_WRITE;
        return n;
    }
    ssize_t n;
    do
        n = send(p->sock_fd, data, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n >= 0 ? n : errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* recv or nk_tls_read: > 0, 0 at the peer's end, -EAGAIN (rd_wait says for what) or an
 * error. */
static ssize_t sock_recv(stream_pump *p, void *buf, size_t len)
{
    if (p->tls) {
        ssize_t n = nk_tls_read(p->tls, buf, len);
        p->rd_wait = n == -EAGAIN ? nk_tls_want(p->tls) : NK_READ;
        return n;
    }
    ssize_t n;
    do
        n = recv(p->sock_fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n >= 0 ? n : errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

static void sock_write(stream_pump *p)
{
    while (nk_buf_len(&p->to_sock) > 0) {
        /* After -EAGAIN the same front of to_sock goes again, with at least as many bytes:
         * what a TLS write needs. */
        ssize_t n = sock_send(p, nk_buf_rptr(&p->to_sock), nk_buf_len(&p->to_sock));
        if (n == -EAGAIN)
            return;
        if (n < 0) {
            /* After the peer's FIN a reset or EPIPE only says it closed both ways: done. */
            if (p->peer_eof && (n == -EPIPE || n == -ECONNRESET)) {
                p->fin_sent = 1;
                nk_buf_clear(&p->to_sock);
            } else {
                sock_failed(p, (int)n);
            }
            return;
        }
        if (p->opts.hexdump)
            hexdump(stderr, '>', p->bytes_out, nk_buf_rptr(&p->to_sock), (size_t)n);
        p->bytes_out += (uint64_t)n;
        nk_buf_consume(&p->to_sock, (size_t)n);
        if (p->opts.idle_ms > 0)
            nk_timer_start(p->loop, &p->idle, (uint64_t)p->opts.idle_ms, 0);
    }
}

/* One read per readiness report (level-triggered); over TLS also the rest of a record that
 * is already inside, while stdout has room for it. */
static void sock_read(stream_pump *p)
{
    do {
        ssize_t n = sock_recv(p, p->chunk, SP_CHUNK);
        if (n > 0) {
            if (p->opts.hexdump)
                hexdump(stderr, '<', p->bytes_in, p->chunk, (size_t)n);
            p->bytes_in += (uint64_t)n;
            if (p->opts.idle_ms > 0)
                nk_timer_start(p->loop, &p->idle, (uint64_t)p->opts.idle_ms, 0);
            int rc = take_peer(p, p->chunk, (size_t)n);
            if (rc < 0) {
                p->sock_dead = 1;
                p->sock_err = rc;
                p->ended = SP_END_FRAME + 1;
            }
        } else if (n == 0) {
            p->peer_eof = 1;
            /* Anyone on the path can cut a connection, not forge close_notify: the data is
             * all there, but that it is all is the peer's word only with close_notify. */
            if (p->tls && !nk_tls_eof_clean(p->tls))
                fprintf(stderr, "netkit: %s: warning: the peer ended without TLS close_notify "
                                "(what arrived may be cut short)\n",
                        p->opts.cmd ? p->opts.cmd : "stream");
            if (p->opts.frame == NK_FRAME_LINE && nk_frame_pending(&p->dec) > 0) {
                /* As nc prints every byte: the last line is a line even without its "\n". */
                fprintf(stderr, "netkit: %s: warning: the peer's last line had no newline\n",
                        p->opts.cmd ? p->opts.cmd : "stream");
                take_peer(p, "\n", 1);
            } else if (p->opts.frame && nk_frame_pending(&p->dec) > 0) {
                fprintf(stderr, "netkit: %s: warning: the peer closed inside a message (%zu "
                                "bytes dropped)\n",
                        p->opts.cmd ? p->opts.cmd : "stream", nk_frame_pending(&p->dec));
            }
        } else if (n != -EAGAIN) {
            sock_failed(p, (int)n);
        }
    } while (p->tls && !p->peer_eof && !p->sock_dead && nk_tls_pending(p->tls) > 0 &&
             nk_buf_len(&p->to_out) < SP_HIGH_WATER);
}

static void on_sock(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    stream_pump *p = io->data;
    if ((events & (p->rd_wait | NK_ERROR)) && !p->peer_eof && !p->sock_dead)
        sock_read(p);
    if ((events & (p->wr_wait | NK_ERROR)) && !p->sock_dead)
        sock_write(p);
    pump_step(p);
}

static void on_tls_more(nk_loop *loop, nk_defer *d)
{
    stream_pump *p = d->data;
    if (p->sock_fd >= 0 && p->cb)
        on_sock(loop, &p->sock_io, p->rd_wait);
}

/* ---- stdout ------------------------------------------------------------------------------- */

static void on_stdout(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    stream_pump *p = io->data;
    while (nk_buf_len(&p->to_out) > 0) {
        ssize_t n = nk_buf_write_fd(&p->to_out, io->fd);
        if (n == -EINTR)
            continue;
        if (n == -EAGAIN || n == -EWOULDBLOCK || n == 0)
            break;
        if (n < 0) { /* nothing more can be delivered: drop it rather than retry forever */
            p->ended = SP_END_STDOUT + 1;
            p->sock_err = (int)n;
            nk_buf_clear(&p->to_out);
            break;
        }
    }
    pump_step(p);
}

static void on_idle(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    stream_pump *p = t->data;
    p->ended = SP_END_TIMEOUT + 1;
    pump_step(p);
}

/* ---- sequencing ------------------------------------------------------------------------------ */

static void watch(stream_pump *p, nk_io *io, unsigned *cur, unsigned want)
{
    if (want == *cur)
        return;
    if (want == 0) {
        nk_io_stop(p->loop, io);
    } else if (nk_io_start(p->loop, io, want) < 0) {
        /* Cannot happen for fds the backend took before; say so rather than hang. */
        p->ended = SP_END_SOCK + 1;
        p->sock_err = -EBADF;
        return;
    }
    *cur = want;
}

static void finish(stream_pump *p, int how, int err)
{
    /* A graceful end over TLS says so (close_notify) even when our input is not over (the
     * peer's end ended it: listen -k, a terminal), as a plain one ends with a FIN; a failed
     * one does not, so that the peer cannot take a cut connection for a complete one. */
    if (how == SP_END_DONE && p->tls && !p->fin_sent)
        nk_tls_shutdown(p->tls);
    nk_timer_stop(p->loop, &p->idle);
    nk_defer_stop(p->loop, &p->tls_more);
    watch(p, &p->in_io, &p->in_ev, 0);
    watch(p, &p->sock_io, &p->sock_ev, 0);
    p->ended = 0;
    sp_end_cb cb = p->cb;
    p->cb = NULL;
    if (cb)
        cb(p, how, err);
}

/* A TLS close_notify must not be cut by a full socket buffer (nk_tls_shutdown never waits,
 * and the FIN right after it would cut it): it waits until the socket reports room, which
 * for TCP and Unix stream sockets is far more than an alert's few bytes. */
static int sock_has_room(stream_pump *p)
{
    struct pollfd pfd = {.fd = p->sock_fd, .events = POLLOUT};
    return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLOUT | POLLERR | POLLHUP));
}

/* Everything stdin gave was sent: pass its end on (close_on_eof closes instead). */
static void send_fin(stream_pump *p)
{
    if (p->tls) {
        p->fin_wait = !sock_has_room(p);
        if (p->fin_wait)
            return;
        nk_tls_shutdown(p->tls);
    }
    if (!p->opts.close_on_eof && shutdown(p->sock_fd, SHUT_WR) < 0 && errno != ENOTCONN)
        sock_failed(p, -errno);
    p->fin_sent = 1;
}

static void pump_step(stream_pump *p)
{
    if (p->sock_fd < 0 || !p->cb) { /* between connections: only stdout may still drain */
        watch(p, &p->out_io, &p->out_ev, nk_buf_len(&p->to_out) > 0 ? NK_WRITE : 0);
        p->ended = 0;
        return;
    }
    if (p->ended) { /* timeout, stdout failure, broken framing: at once */
        finish(p, p->ended - 1, p->sock_err);
        return;
    }
    if (p->in_err && nk_buf_len(&p->to_sock) == 0) {
        finish(p, SP_END_STDIN, p->in_err);
        return;
    }
    size_t out_len = nk_buf_len(&p->to_out);
    if (!p->sock_dead && p->in_eof && !p->fin_sent && nk_buf_len(&p->to_sock) == 0 &&
        nk_buf_len(&p->lines) == 0)
        send_fin(p);
    if (out_len == 0) {
        if (p->sock_dead) {
            finish(p, SP_END_SOCK, p->sock_err);
            return;
        }
        if ((p->peer_eof && (p->fin_sent || p->opts.end_on_peer_eof)) ||
            (p->opts.close_on_eof && p->fin_sent)) {
            finish(p, SP_END_DONE, 0);
            return;
        }
    }
    unsigned sock = 0;
    int reading = !p->sock_dead && !p->peer_eof && out_len < SP_HIGH_WATER;
    if (!p->sock_dead) {
        if (reading)
            sock |= p->rd_wait;
        if (nk_buf_len(&p->to_sock) > 0)
            sock |= p->wr_wait;
        if (p->fin_wait)
            sock |= NK_WRITE;
    }
    watch(p, &p->sock_io, &p->sock_ev, sock);
    if (reading && p->tls && nk_tls_pending(p->tls) > 0)
        nk_defer_start(p->loop, &p->tls_more);
    watch(p, &p->in_io, &p->in_ev,
          !p->in_eof && !p->sock_dead && nk_buf_len(&p->to_sock) < SP_HIGH_WATER ? NK_READ : 0);
    watch(p, &p->out_io, &p->out_ev, out_len > 0 ? NK_WRITE : 0);
    if (p->ended)
        finish(p, p->ended - 1, p->sock_err);
}

int sp_init(stream_pump *p, nk_loop *loop, const sp_opts *opts)
{
    memset(p, 0, sizeof *p);
    p->loop = loop;
    p->opts = *opts;
    p->sock_fd = -1;
    p->out_flags = -1;
    p->chunk = malloc(SP_CHUNK);
    if (!p->chunk)
        return -ENOMEM;
    nk_buf_init(&p->to_sock, 0);
    nk_buf_init(&p->to_out, 0);
    nk_buf_init(&p->lines, 0);
    nk_io_init(&p->in_io, STDIN_FILENO, on_stdin, p);
    nk_io_init(&p->out_io, STDOUT_FILENO, on_stdout, p);
    nk_timer_init(&p->idle, on_idle, p);
    nk_defer_init(&p->tls_more, on_tls_more, p);
    if (!isatty(STDOUT_FILENO)) {
        int fl = fcntl(STDOUT_FILENO, F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK) && fcntl(STDOUT_FILENO, F_SETFL, fl | O_NONBLOCK) == 0)
            p->out_flags = fl;
    }
    return 0;
}

int sp_attach(stream_pump *p, int fd, sp_end_cb cb)
{
    return sp_attach_tls(p, fd, NULL, cb);
}

int sp_attach_tls(stream_pump *p, int fd, nk_tls *tls, sp_end_cb cb)
{
    p->sock_fd = fd;
    p->tls = tls;
    p->rd_wait = NK_READ;
    p->wr_wait = NK_WRITE;
    p->cb = cb;
    p->bytes_in = p->bytes_out = 0;
    p->peer_eof = p->fin_sent = p->fin_wait = p->sock_dead = p->sock_err = p->ended = 0;
    p->sock_ev = 0;
    nk_io_init(&p->sock_io, fd, on_sock, p);
    if (p->opts.frame)
        nk_frame_decoder_init(&p->dec, (nk_frame_kind)p->opts.frame, SP_FRAME_MAX);
    if (p->opts.idle_ms > 0)
        nk_timer_start(p->loop, &p->idle, (uint64_t)p->opts.idle_ms, 0);
    /* The first step runs from the loop, so that cb is never called from inside attach. */
    unsigned want = NK_READ | NK_WRITE;
    int rc = nk_io_start(p->loop, &p->sock_io, want);
    if (rc < 0) {
        p->cb = NULL;
        p->sock_fd = -1;
        p->tls = NULL; /* still the caller's */
        nk_timer_stop(p->loop, &p->idle);
        if (p->opts.frame)
            nk_frame_decoder_free(&p->dec);
        return rc;
    }
    p->sock_ev = want;
    return 0;
}

void sp_detach(stream_pump *p)
{
    if (p->sock_fd < 0)
        return;
    nk_timer_stop(p->loop, &p->idle);
    nk_defer_stop(p->loop, &p->tls_more);
    watch(p, &p->sock_io, &p->sock_ev, 0);
    watch(p, &p->in_io, &p->in_ev, 0);
    nk_tls_free(p->tls);
    p->tls = NULL;
    close(p->sock_fd);
    p->sock_fd = -1;
    p->cb = NULL;
    if (p->opts.frame)
        nk_frame_decoder_free(&p->dec);
}

void sp_free(stream_pump *p)
{
    sp_detach(p);
    if (p->loop) {
        nk_io_stop(p->loop, &p->in_io);
        nk_io_stop(p->loop, &p->out_io);
    }
    if (p->out_flags >= 0)
        fcntl(STDOUT_FILENO, F_SETFL, p->out_flags);
    nk_buf_free(&p->to_sock);
    nk_buf_free(&p->to_out);
    nk_buf_free(&p->lines);
    free(p->chunk);
    p->chunk = NULL;
}

const char *sp_tls_error(const stream_pump *p)
{
    return p->tls && nk_tls_error(p->tls)[0] ? nk_tls_error(p->tls) : NULL;
}
