/* Native operations on the uring backend: io_uring requests on the backend's own ring.
 *
 * A queue head to run is listed (link) and written into the submission queue right before the
 * wait (nk__ops_submit), so the wait's one io_uring_enter submits readiness changes and
 * operations together. Each request in the kernel holds a slot, an index into the slots[]
 * table that maps back to its nk_op; its user_data is NK__URING_OP_FD | slot << 32, which the
 * backend recognises and hands to this file's sink. The sink only copies completions (the
 * backend must not call user code); the loop calls them back after the readiness callbacks
 * (nk__ops_reap). A slot is freed by the request's last completion (no IORING_CQE_F_MORE), so
 * it cannot be reused while the kernel may still post for it.
 *
 * Stop: a request not yet written is simply unlisted. One in the kernel gets an
 * IORING_OP_ASYNC_CANCEL (its own completion carries the backend's cancel tag and is dropped)
 * and its nk_op waits in state CANCELLING: what the kernel still completes is dropped (an
 * accepted descriptor is closed), and its last completion calls it back once with -ECANCELED.
 *
 * Requests: accept is multishot (one completion per connection; re-armed if the kernel ends it
 * without an error); a one-shot accept is IORING_OP_ACCEPT with the caller's address buffer
 * (resubmitted after -EINTR or -ECONNABORTED, as the emulation skips those); recv is IORING_OP_RECV; send and writev are IORING_OP_SEND / SENDMSG with
 * MSG_WAITALL (the kernel itself retries a partial send on a stream socket) and MSG_NOSIGNAL; a
 * short completion anyway is resubmitted for the rest. The same recv or send, completed with
 * -EINTR or -EAGAIN, is resubmitted. A pooled receive is an IORING_OP_RECV with
 * IOSQE_BUFFER_SELECT in its pool's buffer group (op_pool.c): -ENOBUFS parks it until a buffer
 * is released, and a buffer its completion names goes back to the pool when nobody takes it
 * (a result of 0 or an error, or a receive being cancelled).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/op_internal.h"
#include "loop/uring_ops.h"

_Static_assert(sizeof(struct msghdr) <= sizeof(((nk_op *)0)->msg), "nk_op.msg holds a msghdr");

/* The backend's cancel tag (backend_uring.c): completions carrying it are dropped there. */
#define OP_CANCEL_TAG UINT64_C(0xfffffffe)

typedef struct {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
} op_cqe;

struct nk__uring_ops {
    struct io_uring *ring;
    nk_op **slots; /* by slot: the operation whose request holds it, NULL when free */
    uint32_t *free_slots;
    uint32_t nslots, nfree;
    nk_op *submit_head, *submit_tail; /* queue heads to write into the SQ at the next wait */
    nk_op *cancel_head;               /* stopped ones whose cancel is still to be written */
    op_cqe *cqes;                     /* completions copied by the sink during the wait */
    size_t ncqe, capcqe, cqe_next;
    int accept_once; /* multishot accept refused (before Linux 5.19): one accept per request */
    unsigned next_bgid; /* the buffer group of the next pool (16 bits; wraps after 65536) */
};

static void ops_sink(void *arg, const struct io_uring_cqe *cqe)
{
    struct nk__uring_ops *u = arg;
    if (u->ncqe == u->capcqe) {
        /* Sized to the completion queue, so one wait never grows it; only a nested
         * nk_loop_run from an operation's callback can. */
        size_t ncap = u->capcqe * 2;
        op_cqe *n = realloc(u->cqes, ncap * sizeof *n);
        if (n == NULL)
            return; /* lost: its operation would never be called back (see docs/loop.md) */
        u->cqes = n;
        u->capcqe = ncap;
    }
    u->cqes[u->ncqe++] = (op_cqe){cqe->user_data, cqe->res, cqe->flags};
}

int nk__uring_ops_open(nk_loop *loop)
{
    if (loop->ops.native != NULL)
        return 0;
    struct nk__uring_ops *u = calloc(1, sizeof *u);
    if (u == NULL)
        return -ENOMEM;
    u->ring = nk__uring_ops_ring(loop->bstate, NULL, NULL);
    u->capcqe = u->ring->cq.ring_entries;
    u->cqes = malloc(u->capcqe * sizeof *u->cqes);
    if (u->cqes == NULL) {
        free(u);
        return -ENOMEM;
    }
    nk__uring_ops_ring(loop->bstate, ops_sink, u);
    loop->ops.native = u;
    return 0;
}

void nk__uring_ops_free(nk_loop *loop)
{
    struct nk__uring_ops *u = loop->ops.native;
    if (u == NULL)
        return;
    nk__uring_ops_ring(loop->bstate, NULL, NULL);
    free(u->slots);
    free(u->free_slots);
    free(u->cqes);
    free(u);
    loop->ops.native = NULL;
}

struct io_uring *nk__uring_ops_ring_of(nk_loop *loop, unsigned *bgid)
{
    struct nk__uring_ops *u = loop->ops.native;
    *bgid = u->next_bgid++ & 0xffffu;
    return u->ring;
}

void nk__uring_ops_queue(nk_loop *loop, nk_op *op)
{
    struct nk__uring_ops *u = loop->ops.native;
    op->inflight = NK__OP_TO_SUBMIT;
    op->link = NULL;
    if (u->submit_tail)
        u->submit_tail->link = op;
    else
        u->submit_head = op;
    u->submit_tail = op;
}

int nk__uring_ops_stop(nk_loop *loop, nk_op *op)
{
    struct nk__uring_ops *u = loop->ops.native;
    if (op->inflight == NK__OP_TO_SUBMIT) {
        nk_op *prev = NULL;
        for (nk_op *p = u->submit_head; p; prev = p, p = p->link) {
            if (p != op)
                continue;
            if (prev)
                prev->link = op->link;
            else
                u->submit_head = op->link;
            if (u->submit_tail == op)
                u->submit_tail = prev;
            break;
        }
        op->inflight = NK__OP_UNSENT;
        return 0;
    }
    op->link = u->cancel_head;
    u->cancel_head = op;
    return -EINPROGRESS;
}

static uint64_t op_user_data(uint32_t slot)
{
    return (uint64_t)NK__URING_OP_FD | ((uint64_t)slot << 32);
}

static int slot_take(struct nk__uring_ops *u, nk_op *op)
{
    if (u->nfree == 0) {
        uint32_t ncap = u->nslots ? u->nslots * 2 : 64;
        nk_op **ns = realloc(u->slots, ncap * sizeof(nk_op *));
        if (ns == NULL)
            return -ENOMEM;
        u->slots = ns;
        uint32_t *nf = realloc(u->free_slots, ncap * sizeof *nf);
        if (nf == NULL)
            return -ENOMEM;
        u->free_slots = nf;
        for (uint32_t i = ncap; i > u->nslots; i--)
            u->free_slots[u->nfree++] = i - 1;
        memset(u->slots + u->nslots, 0, (ncap - u->nslots) * sizeof(nk_op *));
        u->nslots = ncap;
    }
    op->slot = u->free_slots[--u->nfree];
    u->slots[op->slot] = op;
    return 0;
}

static void slot_free(struct nk__uring_ops *u, nk_op *op)
{
    u->slots[op->slot] = NULL;
    u->free_slots[u->nfree++] = op->slot;
    op->inflight = NK__OP_UNSENT;
}

static struct io_uring_sqe *op_sqe(struct nk__uring_ops *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(u->ring);
    if (sqe == NULL && io_uring_submit(u->ring) >= 0)
        sqe = io_uring_get_sqe(u->ring);
    return sqe;
}

static void op_prep(const struct nk__uring_ops *u, nk_op *op, struct io_uring_sqe *sqe)
{
    const int wflags = MSG_NOSIGNAL | MSG_WAITALL;
    switch (op->kind) {
    case NK__OP_ACCEPT:
        if (u->accept_once)
            io_uring_prep_accept(sqe, op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        else
            io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case NK__OP_ACCEPT_ONCE:
        if (op->out != NULL)
            *(socklen_t *)op->out = sizeof(struct sockaddr_storage);
        io_uring_prep_accept(sqe, op->fd, op->buf, op->out, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case NK__OP_RECV:
        io_uring_prep_recv(sqe, op->fd, op->buf, op->len, 0);
        break;
    case NK__OP_RECV_POOL:
        io_uring_prep_recv(sqe, op->fd, NULL, op->len, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = (uint16_t)nk__pool_group(op->out);
        break;
    case NK__OP_SEND:
        io_uring_prep_send(sqe, op->fd, (char *)op->buf + op->done, op->len - op->done, wflags);
        break;
    case NK__OP_OPENAT:
        io_uring_prep_openat(sqe, op->at_fd, op->path, (int)op->flags | O_CLOEXEC,
                             (mode_t)op->mode);
        break;
    case NK__OP_OPENAT2: /* the how copied into msg by nk_op_openat2, O_CLOEXEC added */
        io_uring_prep_openat2(sqe, op->at_fd, op->path, (struct open_how *)(void *)op->msg);
        break;
    case NK__OP_STATX:
        io_uring_prep_statx(sqe, op->at_fd, op->path, (int)op->flags, op->mode, op->out);
        break;
    case NK__OP_FSYNC:
        io_uring_prep_fsync(sqe, op->at_fd,
                            (op->flags & NK_OP_FSYNC_DATA) ? IORING_FSYNC_DATASYNC : 0);
        break;
    case NK__OP_RENAMEAT:
        io_uring_prep_renameat(sqe, op->at_fd, op->path, op->at_fd2, op->path2, op->flags);
        break;
    case NK__OP_PREAD: /* an explicit offset: the file position is neither used nor moved */
        io_uring_prep_read(sqe, op->at_fd, op->buf,
                           (unsigned)(op->len < NK__OP_PREAD_MAX ? op->len : NK__OP_PREAD_MAX),
                           (uint64_t)op->offset);
        break;
    default: { /* writev */
        const struct iovec *v = op->iov + op->iovidx;
        if (op->offset > 0) { /* the rest of an element a short completion cut */
            io_uring_prep_send(sqe, op->fd, (char *)v->iov_base + op->offset,
                               v->iov_len - (size_t)op->offset, wflags);
            break;
        }
        struct msghdr *m = (struct msghdr *)(void *)op->msg;
        memset(m, 0, sizeof *m);
        m->msg_iov = (struct iovec *)v;
        m->msg_iovlen = (size_t)(op->iovcnt - op->iovidx);
        io_uring_prep_sendmsg(sqe, op->fd, m, (unsigned)wflags);
        break;
    }
    }
}

void nk__ops_submit(nk_loop *loop)
{
    struct nk__uring_ops *u = loop->ops.native;
    if (u == NULL)
        return;
    while (u->cancel_head != NULL) {
        nk_op *op = u->cancel_head;
        struct io_uring_sqe *sqe = op_sqe(u);
        if (sqe == NULL)
            return; /* the kernel takes nothing now: the rest at the next wait */
        u->cancel_head = op->link;
        op->link = NULL;
        io_uring_prep_cancel64(sqe, op_user_data(op->slot), 0);
        io_uring_sqe_set_data64(sqe, OP_CANCEL_TAG);
    }
    while (u->submit_head != NULL) {
        nk_op *op = u->submit_head;
        struct io_uring_sqe *sqe = op_sqe(u);
        if (sqe == NULL)
            return;
        u->submit_head = op->link;
        if (u->submit_head == NULL)
            u->submit_tail = NULL;
        op->link = NULL;
        if (slot_take(u, op) < 0) {
            /* The SQE stays unused: a no-op request whose completion nobody claims. */
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, OP_CANCEL_TAG);
            op->inflight = NK__OP_UNSENT;
            nk__op_finish_now(loop, op, -ENOMEM);
            continue;
        }
        op_prep(u, op, sqe);
        io_uring_sqe_set_data64(sqe, op_user_data(op->slot));
        op->inflight = NK__OP_IN_KERNEL;
    }
}

/* A pooled receive's completion: its buffer handed over with bytes, else back to the pool. */
static void pool_complete(nk_loop *loop, nk_op *op, const op_cqe *c)
{
    nk_op_bufpool *pool = op->out;
    int has_buf = (c->flags & IORING_CQE_F_BUFFER) != 0;
    unsigned bid = c->flags >> IORING_CQE_BUFFER_SHIFT;
    if (c->res > 0 && has_buf) {
        op->buf = nk__pool_took(pool, bid);
        nk__op_finish_now(loop, op, c->res);
        return;
    }
    if (has_buf)
        nk__pool_put(pool, bid);
    if (c->res == -EINTR || c->res == -EAGAIN) {
        nk__uring_ops_queue(loop, op);
    } else if (c->res == -ENOBUFS) {
        /* Every buffer is out: wait for a release (one may have come since the kernel said so,
         * but then its waiter list was empty: go again at once). */
        if (nk__pool_avail_now(pool))
            nk__uring_ops_queue(loop, op);
        else
            nk__pool_park(op);
    } else {
        nk__op_finish_now(loop, op, c->res > 0 ? -EIO : c->res);
    }
}

/* One completion of a request not stopped. */
static void op_complete(nk_loop *loop, struct nk__uring_ops *u, nk_op *op, const op_cqe *c)
{
    int more = (c->flags & IORING_CQE_F_MORE) != 0;
    if (!more)
        slot_free(u, op);
    if (op->kind == NK__OP_ACCEPT) {
        if (c->res == -EINVAL && !more && !u->accept_once) {
            /* A kernel without multishot accept, or a socket that is not listening: try a
             * plain accept, which a second -EINVAL ends (each one is then re-armed below). */
            u->accept_once = 1;
            nk__uring_ops_queue(loop, op);
            return;
        }
        if (c->res < 0) {
            if (!more)
                nk__op_finish_now(loop, op, c->res);
            return;
        }
        op->cb(loop, op, c->res);
        /* Ended by the kernel without an error (a full completion queue, or a plain accept):
         * arm it again, unless the callback stopped it. */
        if (!more && op->state == NK__OP_QUEUED && op->inflight == NK__OP_UNSENT)
            nk__uring_ops_queue(loop, op);
        return;
    }
    if (op->kind == NK__OP_ACCEPT_ONCE) {
        if (c->res == -EINTR || c->res == -ECONNABORTED)
            nk__uring_ops_queue(loop, op);
        else
            nk__op_finish_now(loop, op, c->res);
        return;
    }
    if (nk__op_is_file(op)) { /* one request, one result */
        if (op->kind == NK__OP_PREAD && c->res == -EINTR) {
            /* A signal cut the read before any byte (the emulation retries pread the same). */
            nk__uring_ops_queue(loop, op);
            return;
        }
        nk__op_finish_now(loop, op, c->res);
        return;
    }
    if (op->kind == NK__OP_RECV_POOL) {
        pool_complete(loop, op, c);
        return;
    }
    if (c->res == -EINTR || c->res == -EAGAIN) {
        nk__uring_ops_queue(loop, op);
        return;
    }
    if (op->kind == NK__OP_RECV || c->res < 0) {
        nk__op_finish_now(loop, op, c->res);
        return;
    }
    if (c->res == 0) { /* a send that moved nothing would loop forever */
        nk__op_finish_now(loop, op, -EPIPE);
        return;
    }
    if (nk__op_advance(op, (size_t)c->res))
        nk__op_finish_now(loop, op, (ssize_t)op->done);
    else
        nk__uring_ops_queue(loop, op);
}

void nk__ops_reap(nk_loop *loop)
{
    struct nk__uring_ops *u = loop->ops.native;
    if (u == NULL)
        return;
    /* cqe_next is shared with a nested nk_loop_run, which then carries on from there. */
    while (u->cqe_next < u->ncqe) {
        op_cqe c = u->cqes[u->cqe_next++];
        nk_op *op = u->slots[(uint32_t)(c.user_data >> 32)];
        if (op == NULL)
            continue;
        if (op->state != NK__OP_CANCELLING) {
            op_complete(loop, u, op, &c);
            continue;
        }
        if ((op->kind == NK__OP_ACCEPT || op->kind == NK__OP_ACCEPT_ONCE || nk__op_opens(op)) &&
            c.res >= 0)
            close(c.res); /* accepted or opened after the stop: nobody will take it */
        if (op->kind == NK__OP_RECV_POOL && (c.flags & IORING_CQE_F_BUFFER))
            nk__pool_put(op->out, c.flags >> IORING_CQE_BUFFER_SHIFT); /* bytes dropped */
        if (c.flags & IORING_CQE_F_MORE)
            continue;
        /* Its cancel may not be written yet (stopped in this batch): that slot is free now. */
        for (nk_op **pp = &u->cancel_head; *pp; pp = &(*pp)->link) {
            if (*pp == op) {
                *pp = op->link;
                break;
            }
        }
        op->link = NULL;
        slot_free(u, op);
        op->state = NK__OP_IDLE;
        loop->ops.active--;
        nk__op_ended(op);
        op->cb(loop, op, -ECANCELED);
    }
    u->cqe_next = u->ncqe = 0;
}
