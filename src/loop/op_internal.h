/* Operations (nk_op) inside the loop: the per-descriptor queues shared by the emulation (op.c)
 * and the native io_uring requests (op_uring.c) (internal). */
#ifndef NETKIT_LOOP_OP_INTERNAL_H
#define NETKIT_LOOP_OP_INTERNAL_H

#include <netkit/op.h>

#include "loop/loop_internal.h"

enum {
    NK__OP_ACCEPT = 1, NK__OP_ACCEPT_ONCE, NK__OP_RECV, NK__OP_RECV_POOL, NK__OP_SEND,
    NK__OP_WRITEV, NK__OP_SENDFILE,
    /* file steps: no descriptor queue (op->fd is -1) */
    NK__OP_OPENAT, NK__OP_STATX, NK__OP_FSYNC, NK__OP_RENAMEAT, NK__OP_OPENAT2, NK__OP_PREAD
};

/* nk_op_pread reads at most this much per call on every backend: io_uring's length is 32 bits,
 * and the same cap on the file thread keeps the results alike (a longer read is short). */
enum { NK__OP_PREAD_MAX = 1 << 30 };

static inline int nk__op_is_file(const nk_op *op)
{
    return op->kind >= NK__OP_OPENAT;
}

/* A file step whose result is a descriptor (closed when its taker has gone). */
static inline int nk__op_opens(const nk_op *op)
{
    return op->kind == NK__OP_OPENAT || op->kind == NK__OP_OPENAT2;
}

/* The two queues of a descriptor: accept and the receives read, the rest write. One-shot
 * accepts (nk_op_accept_once) one after another in the in queue all run at once: each takes
 * its own connection, so none waits for the one before it (see op_start). */
enum { NK__OPQ_IN = 0, NK__OPQ_OUT = 1 };

/* op->state */
enum {
    NK__OP_IDLE = 0,      /* not started */
    NK__OP_QUEUED = 1,    /* in its descriptor's queue (the head is the one in progress) */
    NK__OP_DONE = 2,      /* finished, in the loop's completion list until its callback */
    NK__OP_CANCELLING = 3 /* uring: stopped while the kernel holds it; -ECANCELED to come */
};

/* op->inflight (native operations only) */
enum { NK__OP_UNSENT = 0, NK__OP_TO_SUBMIT = 1, NK__OP_IN_KERNEL = 2 };

/* One descriptor's queues, allocated on its first operation and kept until the loop is freed
 * (the loop's fd table points at the nk_io inside, so it must never move). */
typedef struct nk__opfd {
    nk_io io; /* emulation: readiness for the emulated queue heads */
    nk_op *head[2], *tail[2];
} nk__opfd;

static inline int nk__op_queue(const nk_op *op)
{
    return op->kind <= NK__OP_RECV_POOL ? NK__OPQ_IN : NK__OPQ_OUT;
}

/* op.c: the head of its queue finished with result: out of the queue, the next one started,
 * then called back (native: now; emulated: through the completion list). */
void nk__op_finish_now(nk_loop *loop, nk_op *op, ssize_t result);
/* A writev or send advanced by n bytes; returns 1 when every byte is written. */
int nk__op_advance(nk_op *op, size_t n);
static inline nk__opfd *nk__opfd_at(const nk_loop *loop, int fd)
{
    return fd < loop->ops.nfds ? loop->ops.fds[fd] : NULL;
}

/* A pooled receive waiting for a buffer (op->flags; file steps alone use flags otherwise): out
 * of the readiness watch (emulated) and out of the kernel (native) until a release. */
enum { NK__OP_PARKED = 1u };

static inline int nk__op_parked(const nk_op *op)
{
    return op->kind == NK__OP_RECV_POOL && (op->flags & NK__OP_PARKED);
}

/* op.c: op, a pooled receive at the head of its queue, was parked or unparked: its descriptor
 * watched accordingly (emulated), or, unparked, queued for submission again (native). */
void nk__op_resume(nk_loop *loop, nk_op *op);
int nk__op_start_recv_pool(nk_loop *loop, nk_op *op, int fd); /* op's pool fields are set */

/* op_pool.c: the pools' side of a pooled receive (op->out is its pool). */
void nk__pool_run(nk_loop *loop, nk_op *op);  /* emulated head readable: take, recv, finish */
void nk__pool_park(nk_op *op);                /* wait for a release */
void nk__pool_ended(nk_op *op);               /* no longer started (also unparks it) */
void nk__pool_put(nk_op_bufpool *pool, unsigned bid); /* a buffer nobody took back in */
/* A native completion with IORING_CQE_F_BUFFER: the buffer it names, now out. */
void *nk__pool_took(nk_op_bufpool *pool, unsigned bid);
int nk__pool_avail_now(const nk_op_bufpool *pool);    /* a receive could take a buffer */
unsigned nk__pool_group(const nk_op_bufpool *pool);   /* native: the buffer group id */
static inline void nk__op_ended(nk_op *op)
{
    if (op->kind == NK__OP_RECV_POOL)
        nk__pool_ended(op);
}

/* op_file.c: the file thread of the emulation. */
int nk__files_start(nk_loop *loop, nk_op *op); /* 0, or -errno when the thread cannot start */
int nk__files_stop(nk_loop *loop, nk_op *op);  /* 0, or -EINPROGRESS: its system call runs */
void nk__files_free(nk_loop *loop);            /* joins the thread (no file step started) */
/* The file step's system call, as the thread makes it: the result or -errno. */
ssize_t nk__file_step(const nk_op *op);

/* op_uring.c */
int nk__uring_ops_open(nk_loop *loop);                /* 0 or -ENOMEM */
void nk__uring_ops_queue(nk_loop *loop, nk_op *op);   /* to be submitted at the next wait */
int nk__uring_ops_stop(nk_loop *loop, nk_op *op);     /* 0, or -EINPROGRESS: cancel sent */
void nk__uring_ops_free(nk_loop *loop);
/* The ring operations are submitted on, and a buffer group id for a new pool's ring. */
struct io_uring *nk__uring_ops_ring_of(nk_loop *loop, unsigned *bgid);

#endif
