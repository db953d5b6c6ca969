/* Operations (nk_op): the public calls, the per-descriptor queues, and the emulation over
 * readiness used by every backend but uring (and by uring for sendfile).
 *
 * Each descriptor that operations touch gets a record with two FIFO queues (in: accept, recv;
 * out: send, writev, sendfile) and an nk_io of its own. Only the head of a queue is in progress:
 * a native head is a request in the kernel (op_uring.c), an emulated head makes the record's
 * nk_io watch for READ (in) or WRITE (out). When the descriptor is ready the head's system call
 * is made, non-blocking; a finished operation leaves its queue, the next one becomes the head,
 * and the finished one goes to the loop's completion list, called back right after the I/O
 * callbacks of the same iteration (or, for one that finished inside a start call, at the start
 * of the next iteration: a callback never runs inside the call that started its operation).
 * Going through that list keeps the start order of one queue's callbacks even when a send
 * finishes at once inside nk_op_send while an older one's callback is still pending.
 *
 * The out queue is tried at once when an operation joins it empty (the socket is usually
 * writable): an echo's reply then costs its send(2) alone, no readiness round. Accepted
 * connections are called back directly from the watcher, up to 64 per wake-up so that a flood
 * of connections cannot starve the other descriptors; one-shot accepts (nk_op_accept_once)
 * take one connection each, in queue order, and are called back through the completion list.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/op_internal.h"

enum { OP_ACCEPT_BURST = 64, OP_OUT_BURST = 16, OP_SENDFILE_MAX = 1 << 30 };

void nk_op_init(nk_op *op, nk_op_cb cb, void *data)
{
    memset(op, 0, sizeof *op);
    op->cb = cb;
    op->data = data;
    op->fd = -1;
    op->file_fd = -1;
}

/* ---- the completion list --------------------------------------------------------------- */

static void done_push(nk_loop *loop, nk_op *op, ssize_t result)
{
    op->state = NK__OP_DONE;
    op->result = result;
    op->link = NULL;
    if (loop->ops.done_tail)
        loop->ops.done_tail->link = op;
    else
        loop->ops.done_head = op;
    loop->ops.done_tail = op;
}

static int done_remove(nk_loop *loop, nk_op *op)
{
    nk__opstate *st = &loop->ops;
    nk_op *prev = NULL;
    for (nk_op *p = st->done_head; p; prev = p, p = p->link) {
        if (p == op) {
            if (prev)
                prev->link = op->link;
            else
                st->done_head = op->link;
            if (st->done_tail == op)
                st->done_tail = prev;
            return 1;
        }
    }
    for (nk_op **pp = &st->done_run; *pp; pp = &(*pp)->link) {
        if (*pp == op) {
            *pp = op->link;
            return 1;
        }
    }
    return 0;
}

int nk__ops_run_done(nk_loop *loop)
{
    nk__opstate *st = &loop->ops;
    int ran = 0;
    /* Only what is listed now: completions that these callbacks cause wait for the next run,
     * so a callback that restarts an operation finishing at once cannot hold the loop here. */
    st->done_run = st->done_head;
    st->done_head = st->done_tail = NULL;
    nk_op *op;
    while ((op = st->done_run) != NULL) {
        st->done_run = op->link;
        op->link = NULL;
        op->state = NK__OP_IDLE;
        st->active--;
        nk__op_ended(op);
        op->cb(loop, op, op->result);
        ran++;
    }
    return ran;
}

/* ---- descriptor records ---------------------------------------------------------------- */

static void opfd_ready(nk_loop *loop, nk_io *io, unsigned events);

static int opfd_get(nk_loop *loop, int fd, nk__opfd **out)
{
    nk__opstate *st = &loop->ops;
    if (fd >= st->nfds) {
        size_t ncap = st->nfds ? (size_t)st->nfds : 64;
        while (ncap <= (size_t)fd)
            ncap *= 2;
        if (ncap > INT_MAX)
            return -ENOMEM;
        nk__opfd **nf = realloc(st->fds, ncap * sizeof(nk__opfd *));
        if (nf == NULL)
            return -ENOMEM;
        memset(nf + st->nfds, 0, (ncap - (size_t)st->nfds) * sizeof(nk__opfd *));
        st->fds = nf;
        st->nfds = (int)ncap;
    }
    if (st->fds[fd] == NULL) {
        nk__opfd *e = calloc(1, sizeof *e);
        if (e == NULL)
            return -ENOMEM;
        nk_io_init(&e->io, fd, opfd_ready, e);
        nk_io_unref(loop, &e->io); /* the operations count in nk_loop_active, not their plumbing */
        st->fds[fd] = e;
    }
    *out = st->fds[fd];
    return 0;
}

/* Watch for what the emulated heads need. */
static int opfd_watch(nk_loop *loop, nk__opfd *e)
{
    const nk_op *in = e->head[NK__OPQ_IN], *out = e->head[NK__OPQ_OUT];
    /* A parked receive waits for a buffer, not for bytes (they are there already). */
    unsigned want = (in && !in->native && !nk__op_parked(in) ? NK_READ : 0) |
                    (out && !out->native ? NK_WRITE : 0);
    if (want == e->io.events)
        return 0;
    return nk_io_start(loop, &e->io, want); /* 0: stop */
}

/* The queue's head changed: start it (native: a request at the next wait), watch again. */
static void opfd_kick(nk_loop *loop, nk__opfd *e, int q)
{
    nk_op *h = e->head[q];
    if (h != NULL && h->native && h->inflight == NK__OP_UNSENT && !nk__op_parked(h))
        nk__uring_ops_queue(loop, h);
    int rc = opfd_watch(loop, e);
    if (rc < 0 && h != NULL && !h->native)
        nk__op_finish_now(loop, h, rc); /* the watcher cannot start: the head fails with it */
}

static void queue_push(nk__opfd *e, nk_op *op)
{
    int q = nk__op_queue(op);
    op->next = NULL;
    if (e->tail[q])
        e->tail[q]->next = op;
    else
        e->head[q] = op;
    e->tail[q] = op;
}

/* Take op out of its queue; returns whether it was the head. */
static int queue_remove(nk__opfd *e, nk_op *op)
{
    int q = nk__op_queue(op);
    nk_op *prev = NULL;
    for (nk_op *p = e->head[q]; p; prev = p, p = p->next) {
        if (p != op)
            continue;
        if (prev)
            prev->next = op->next;
        else
            e->head[q] = op->next;
        if (e->tail[q] == op)
            e->tail[q] = prev;
        op->next = NULL;
        return prev == NULL;
    }
    return 0;
}

void nk__op_finish_now(nk_loop *loop, nk_op *op, ssize_t result)
{
    nk__opfd *e = nk__op_is_file(op) ? NULL : nk__opfd_at(loop, op->fd);
    if (e != NULL && queue_remove(e, op))
        opfd_kick(loop, e, nk__op_queue(op));
    if (op->native) {
        op->state = NK__OP_IDLE;
        loop->ops.active--;
        nk__op_ended(op);
        op->cb(loop, op, result);
    } else {
        done_push(loop, op, result);
    }
}

/* ---- the emulated system calls ---------------------------------------------------------- */

int nk__op_advance(nk_op *op, size_t n)
{
    op->done += n;
    if (op->kind == NK__OP_WRITEV) {
        /* offset: how far into iov[iovidx] the next write starts */
        while (op->iovidx < op->iovcnt) {
            size_t rest = op->iov[op->iovidx].iov_len - (size_t)op->offset;
            if (n < rest) {
                op->offset += (int64_t)n;
                break;
            }
            n -= rest;
            op->iovidx++;
            op->offset = 0;
        }
    }
    return op->done >= op->len;
}

/* One non-blocking write of what is left of an out operation: 1 when it is finished (result
 * in *result), 0 when the socket is full. */
static int out_step(nk_op *op, ssize_t *result)
{
    for (;;) {
        ssize_t n;
        size_t asked = op->len - op->done; /* at most: a writev element may ask for less */
        if (op->kind == NK__OP_SEND) {
            n = send(op->fd, (char *)op->buf + op->done, op->len - op->done,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
        } else if (op->kind == NK__OP_WRITEV) {
            const struct iovec *v = op->iov + op->iovidx;
            if (op->offset > 0) { /* the rest of an element a short write cut */
                n = send(op->fd, (char *)v->iov_base + op->offset,
                         v->iov_len - (size_t)op->offset, MSG_NOSIGNAL | MSG_DONTWAIT);
            } else {
                struct msghdr m;
                memset(&m, 0, sizeof m);
                m.msg_iov = (struct iovec *)v;
                m.msg_iovlen = (size_t)(op->iovcnt - op->iovidx);
                n = sendmsg(op->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
            }
        } else {
            off_t off = (off_t)(op->offset + (int64_t)op->done);
            size_t want = op->len - op->done;
            asked = want > OP_SENDFILE_MAX ? OP_SENDFILE_MAX : want;
            n = sendfile(op->fd, op->file_fd, &off, asked);
            if (n == 0) { /* the file ended first */
                *result = (ssize_t)op->done;
                return 1;
            }
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            *result = -errno;
            return 1;
        }
        if (nk__op_advance(op, (size_t)n)) {
            *result = (ssize_t)op->done;
            return 1;
        }
        /* A stream socket takes less than it was offered only when its buffer is full: wait for
         * it to drain rather than be told so by one more call (-EAGAIN). */
        if (op->kind != NK__OP_WRITEV && (size_t)n < asked)
            return 0;
    }
}

static void run_out(nk_loop *loop, nk__opfd *e)
{
    for (int i = 0; i < OP_OUT_BURST; i++) {
        nk_op *h = e->head[NK__OPQ_OUT];
        ssize_t result;
        if (h == NULL || h->native || !out_step(h, &result))
            return;
        nk__op_finish_now(loop, h, result);
    }
}

/* One-shot accepts at the head of the in queue: one connection each, while connections wait
 * (bounded per wake-up like the multishot accept). An error ends the head alone: the listener
 * stays readable, so the next one meets the error again at the next turn, if it persists. */
static void run_accept_once(nk_loop *loop, nk__opfd *e)
{
    for (int i = 0; i < OP_ACCEPT_BURST; i++) {
        nk_op *h = e->head[NK__OPQ_IN];
        if (h == NULL || h->native || h->kind != NK__OP_ACCEPT_ONCE)
            return;
        socklen_t *peerlen = h->out;
        if (peerlen != NULL)
            *peerlen = sizeof(struct sockaddr_storage);
        int fd = accept4(h->fd, h->buf, peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue; /* that connection is gone; the next may be there */
        nk__op_finish_now(loop, h, fd < 0 ? -errno : fd);
        if (fd < 0)
            return;
    }
}

static void run_in(nk_loop *loop, nk__opfd *e)
{
    nk_op *h = e->head[NK__OPQ_IN];
    if (h == NULL || h->native)
        return;
    if (h->kind == NK__OP_RECV_POOL) {
        if (!nk__op_parked(h))
            nk__pool_run(loop, h);
        return;
    }
    if (h->kind == NK__OP_RECV) {
        ssize_t n;
        do
            n = recv(h->fd, h->buf, h->len, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        nk__op_finish_now(loop, h, n < 0 ? -errno : n);
        return;
    }
    if (h->kind == NK__OP_ACCEPT_ONCE) {
        run_accept_once(loop, e);
        return;
    }
    for (int i = 0; i < OP_ACCEPT_BURST; i++) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED)
                continue; /* that connection is gone; the next may be there */
            nk__op_finish_now(loop, h, -errno);
            return;
        }
        h->cb(loop, h, fd);
        /* The callback may have stopped it (and restarted it, or another, on this listener). */
        if (e->head[NK__OPQ_IN] != h || h->state != NK__OP_QUEUED)
            return;
    }
}

static void opfd_ready(nk_loop *loop, nk_io *io, unsigned events)
{
    nk__opfd *e = io->data;
    if (events & (NK_READ | NK_ERROR))
        run_in(loop, e);
    if (events & (NK_WRITE | NK_ERROR))
        run_out(loop, e);
}

/* ---- starting and stopping -------------------------------------------------------------- */

static int op_start(nk_loop *loop, nk_op *op, int kind, int fd)
{
    if (op->state != NK__OP_IDLE)
        return -EBUSY;
    if (fd < 0)
        return -EBADF;
    if (loop->be->fd_limit > 0 && fd >= loop->be->fd_limit)
        return -ERANGE;
    nk__opfd *e;
    int rc = opfd_get(loop, fd, &e);
    if (rc < 0)
        return rc;
    /* A watcher of the caller's on this descriptor would collide with the emulation's: refuse
     * on every backend, so that a program behaves the same on each. */
    if (fd < loop->nfds && loop->fds[fd].io != NULL && loop->fds[fd].io != &e->io)
        return -EEXIST;
    int native = loop->be == &nk__backend_uring && kind != NK__OP_SENDFILE;
    if (native && (rc = nk__uring_ops_open(loop)) < 0)
        return rc;
    op->kind = (unsigned char)kind;
    op->fd = fd;
    op->native = (unsigned char)native;
    op->inflight = NK__OP_UNSENT;
    op->done = 0;
    op->result = 0;
    op->link = NULL;
    int q = nk__op_queue(op);
    /* Behind one-shot accepts that run already, a native one-shot accept runs at once too. */
    const nk_op *before = e->tail[q];
    int alongside = native && kind == NK__OP_ACCEPT_ONCE && before != NULL &&
                    before->kind == NK__OP_ACCEPT_ONCE && before->inflight != NK__OP_UNSENT;
    queue_push(e, op);
    op->state = NK__OP_QUEUED;
    loop->ops.active++;
    if (alongside) {
        nk__uring_ops_queue(loop, op);
        return 0;
    }
    if (e->head[q] != op)
        return 0; /* started when those before it have finished */
    if (q == NK__OPQ_OUT && !native) {
        ssize_t result;
        if (out_step(op, &result)) { /* finished at once: called back from the loop */
            queue_remove(e, op);
            done_push(loop, op, result);
            return 0;
        }
    }
    if (native) {
        nk__uring_ops_queue(loop, op);
        return 0;
    }
    rc = opfd_watch(loop, e);
    if (rc < 0) {
        queue_remove(e, op);
        op->state = NK__OP_IDLE;
        loop->ops.active--;
    }
    return rc;
}

int nk_op_accept(nk_loop *loop, nk_op *op, int listen_fd)
{
    return op_start(loop, op, NK__OP_ACCEPT, listen_fd);
}

int nk_op_accept_once(nk_loop *loop, nk_op *op, int listen_fd, struct sockaddr_storage *peer,
                      socklen_t *peerlen)
{
    if ((peer == NULL) != (peerlen == NULL))
        return -EINVAL;
    if (op->state == NK__OP_IDLE) {
        op->buf = peer;
        op->out = peerlen;
        if (peerlen != NULL)
            *peerlen = sizeof *peer;
    }
    return op_start(loop, op, NK__OP_ACCEPT_ONCE, listen_fd);
}

int nk_op_recv(nk_loop *loop, nk_op *op, int fd, void *buf, size_t len)
{
    if (len == 0 || buf == NULL)
        return -EINVAL;
    if (op->state == NK__OP_IDLE) {
        op->buf = buf;
        op->len = len;
    }
    return op_start(loop, op, NK__OP_RECV, fd);
}

int nk_op_send(nk_loop *loop, nk_op *op, int fd, const void *buf, size_t len)
{
    if (len == 0 || buf == NULL)
        return -EINVAL;
    if (op->state == NK__OP_IDLE) {
        op->buf = (void *)buf; /* only ever read from */
        op->len = len;
    }
    return op_start(loop, op, NK__OP_SEND, fd);
}

int nk_op_writev(nk_loop *loop, nk_op *op, int fd, const struct iovec *iov, int iovcnt)
{
    if (iov == NULL || iovcnt < 1 || iovcnt > IOV_MAX)
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > SSIZE_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    if (total == 0)
        return -EINVAL;
    if (op->state == NK__OP_IDLE) {
        op->iov = iov;
        op->iovcnt = iovcnt;
        op->iovidx = 0;
        op->offset = 0;
        op->len = total;
        /* Empty elements up front would make a zero-length first write. */
        while (op->iov[op->iovidx].iov_len == 0)
            op->iovidx++;
    }
    return op_start(loop, op, NK__OP_WRITEV, fd);
}

int nk_op_sendfile(nk_loop *loop, nk_op *op, int fd, int file_fd, int64_t offset, size_t count)
{
    if (count == 0 || offset < 0)
        return -EINVAL;
    if (file_fd < 0)
        return -EBADF;
    if (op->state == NK__OP_IDLE) {
        op->file_fd = file_fd;
        op->offset = offset;
        op->len = count;
    }
    return op_start(loop, op, NK__OP_SENDFILE, fd);
}

int nk_op_stop(nk_loop *loop, nk_op *op)
{
    switch (op->state) {
    case NK__OP_IDLE:
        return 0;
    case NK__OP_CANCELLING:
        return -EINPROGRESS;
    case NK__OP_DONE:
        done_remove(loop, op);
        if ((nk__op_opens(op) || op->kind == NK__OP_ACCEPT_ONCE) && op->result >= 0)
            close((int)op->result); /* opened or accepted, but its taker is gone */
        if (op->kind == NK__OP_RECV_POOL && op->result > 0)
            (void)nk_op_bufpool_release(op->out, op->buf); /* received, but nobody takes it */
        break;
    default: {
        if (nk__op_is_file(op)) {
            int rc = op->native ? nk__uring_ops_stop(loop, op) : nk__files_stop(loop, op);
            if (rc == -EINPROGRESS) {
                op->state = NK__OP_CANCELLING;
                return rc;
            }
            break;
        }
        if (op->native && op->inflight != NK__OP_UNSENT) {
            int rc = nk__uring_ops_stop(loop, op);
            if (rc == -EINPROGRESS) {
                /* Out of the queue now: the next operation need not wait for the kernel. */
                nk__opfd *e = nk__opfd_at(loop, op->fd);
                if (queue_remove(e, op))
                    opfd_kick(loop, e, nk__op_queue(op));
                op->state = NK__OP_CANCELLING;
                return rc;
            }
        }
        nk__opfd *e = nk__opfd_at(loop, op->fd);
        if (queue_remove(e, op))
            opfd_kick(loop, e, nk__op_queue(op));
        break;
    }
    }
    op->state = NK__OP_IDLE;
    loop->ops.active--;
    nk__op_ended(op);
    return 0;
}

void nk__op_resume(nk_loop *loop, nk_op *op)
{
    if (op->native) {
        if (!nk__op_parked(op) && op->inflight == NK__OP_UNSENT)
            nk__uring_ops_queue(loop, op);
        return;
    }
    int rc = opfd_watch(loop, nk__opfd_at(loop, op->fd));
    if (rc < 0)
        nk__op_finish_now(loop, op, rc);
}

int nk__op_start_recv_pool(nk_loop *loop, nk_op *op, int fd)
{
    return op_start(loop, op, NK__OP_RECV_POOL, fd);
}

void nk__ops_free(nk_loop *loop)
{
    nk__opstate *st = &loop->ops;
    nk__files_free(loop);
    nk__uring_ops_free(loop);
    for (int i = 0; i < st->nfds; i++)
        free(st->fds[i]);
    free(st->fds);
    st->fds = NULL;
    st->nfds = 0;
}
