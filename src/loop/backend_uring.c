/* io_uring(7) backend: readiness through poll requests (the completion-based operations of
 * op_uring.c share its ring and its one io_uring_enter per iteration).
 *
 * Quirks worked around:
 * - A multishot poll (IORING_POLL_ADD_MULTI) posts one completion per wake-up of the file, not
 *   one per wait while the file stays ready: a callback that reads only part of what is there
 *   would never hear about the rest. Level-triggered watchers therefore use one-shot polls,
 *   re-armed at the next wait for every fd that was delivered and still has interest; a file
 *   still ready completes its new poll during that same submission, so the wait returns at once
 *   with it, as epoll would. The cost is one poll request (an SQE, an arm in the kernel) per
 *   delivered fd per iteration, all inside the one io_uring_enter. NK_EDGE watchers keep one
 *   multishot poll, which is exactly an edge per wake-up (re-armed only when the kernel ends it).
 * - Interest changes and re-arms are only written into the submission queue; the wait submits
 *   them and waits in one io_uring_enter (io_uring_submit_and_wait_timeout). Only a batch larger
 *   than the queue costs an extra enter.
 * - A poll request keeps its file, not the fd number: completions of a request that was replaced
 *   (interest changed, fd closed and the number reused) may still arrive. Each request carries
 *   fd + a per-fd generation in its user_data, bumped on every change, and completions of an
 *   older generation are dropped; the replaced request is cancelled by that user_data.
 * - Regular files and directories have no poll support; the kernel completes a poll on them at
 *   once as readable and writable, so with one-shot re-arms they are reported ready on every
 *   wait, as epoll's side list and poll do.
 * - A closed or bad fd completes its poll with -EBADF: NK_ERROR plus the requested bits, again
 *   at every wait while interest remains (level-triggered, like poll's POLLNVAL). POLLERR and
 *   POLLHUP arrive whether asked for or not and map the same way.
 * - The kernel may refuse io_uring (not built in: -ENOSYS; kernel.io_uring_disabled or a seccomp
 *   filter: -EPERM or -ENOSYS); init returns that error, and the registry never picks this
 *   backend unless it is asked for by name.
 *
 * Set-up flags: COOP_TASKRUN | TASKRUN_FLAG where the kernel has them (5.19), else none (see
 * uring_init). Not IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (6.1), for three reasons:
 * - They bind the ring to one thread: any other thread's io_uring_enter fails with -EEXIST.
 *   A loop may move between threads, one at a time (netkit/loop.h); IORING_SETUP_R_DISABLED,
 *   enabled at the first wait, would only cover a loop made in one thread and run in another,
 *   not one run in a second thread after the first (test_loop_moves_between_threads in
 *   tests/unit/test_loop_async.c fails with them).
 * - Under DEFER_TASKRUN one enter runs at most 20 of the completions the kernel holds (Linux
 *   6.18) and leaves the rest flagged with IORING_SQ_TASKRUN: more ready descriptors than that
 *   are reported over several waits, the first ones again at each, unless the wait enters again
 *   for the rest (test_many_fds in tests/unit/test_loop_inflight.c catches it).
 * - Measured, they gained nothing: server CPU per request or message within noise of these
 *   flags (1 KiB keep-alive, Connection: close, echo at 1 and 64 connections); io_uring_enter
 *   per message the same at 1 connection, 1.6-2.6 times as many for `echo serve` at 64
 *   (bench/RESULTS.md, "SINGLE_ISSUER | DEFER_TASKRUN, tried").
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loop/backend.h"
#include "loop/uring_ops.h"

enum {
    URING_SQ_ENTRIES = 256,  /* a larger batch of changes is submitted in parts */
    URING_CQ_ENTRIES = 4096, /* one-shot polls: at most one completion per watched fd */
    URING_RW = NK_READ | NK_WRITE
};

/* The user_data of cancel requests: its fd part (0xfffffffe) is never a table index, so their
 * completions are dropped with the stale ones. */
#define URING_CANCEL_TAG UINT64_C(0xfffffffe)

typedef struct {
    unsigned want;  /* NK_READ | NK_WRITE | NK_EDGE the kernel should watch, 0: none */
    uint32_t gen;   /* bumped on every change: completions of older requests are stale */
    uint8_t armed;  /* a poll of this generation is in the kernel or its completion unread */
    uint8_t queued; /* in the arm list */
    int slot;       /* index in this wait's fired[], valid when stamp matches */
    unsigned stamp;
} nk_uring_fd;

typedef struct {
    struct io_uring ring;
    nk_uring_fd *fds;
    int nfds;
    int *arm;             /* fds to arm at the next wait, each once (queued) */
    int narm;
    uint64_t *cancel;     /* user_data of polls to cancel at the next wait */
    int ncancel;
    unsigned stamp;       /* bumped per wait, for the fired[] slots */
    unsigned sqe_flags;   /* for cancels: skip their completion when the kernel can */
    int taskrun_flag;     /* the kernel says in the SQ flags when completions wait in it */
    nk__uring_sink op_sink; /* completions of operations (op_uring.c), NULL until the first */
    void *op_sink_arg;
} nk_uring_state;

static uint64_t uring_data(int fd, uint32_t gen)
{
    return (uint64_t)(uint32_t)fd | ((uint64_t)gen << 32);
}

static int uring_init(void **state)
{
    nk_uring_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    /* COOP_TASKRUN (Linux 5.19): a completion does not interrupt the thread while it runs
     * callbacks; the loop enters the kernel once per iteration anyway, and a thread asleep in
     * the wait is still woken. TASKRUN_FLAG (same kernel) makes the kernel raise
     * IORING_SQ_TASKRUN while such deferred completions wait, which lets a wait that must not
     * block skip io_uring_enter when there is nothing to submit and nothing waiting (see
     * uring_poll_only). Older kernels refuse the flags: set up without them. */
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    p.cq_entries = URING_CQ_ENTRIES;
    int rc = io_uring_queue_init_params(URING_SQ_ENTRIES, &s->ring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = URING_CQ_ENTRIES;
        rc = io_uring_queue_init_params(URING_SQ_ENTRIES, &s->ring, &p);
    }
    if (rc < 0) {
        free(s);
        return rc;
    }
    /* Waiting with a timeout in the same enter as the submission needs IORING_FEAT_EXT_ARG
     * (Linux 5.11); without it liburing would add a timeout request per wait. */
    if (!(p.features & IORING_FEAT_EXT_ARG)) {
        io_uring_queue_exit(&s->ring);
        free(s);
        return -ENOSYS;
    }
    if (p.features & IORING_FEAT_CQE_SKIP)
        s->sqe_flags = IOSQE_CQE_SKIP_SUCCESS;
    s->taskrun_flag = (p.flags & IORING_SETUP_TASKRUN_FLAG) != 0;
    *state = s;
    return 0;
}

static void uring_destroy(void *state)
{
    nk_uring_state *s = state;
    io_uring_queue_exit(&s->ring); /* cancels every poll and drops its file */
    free(s->fds);
    free(s->arm);
    free(s->cancel);
    free(s);
}

static int uring_grow(nk_uring_state *s, int fd)
{
    if (fd < s->nfds)
        return 0;
    int ncap = s->nfds ? s->nfds : 64;
    while (ncap <= fd)
        ncap *= 2;
    /* arm[] and cancel[] have the table's capacity: an fd is queued at most once, and has at
     * most one cancel pending (a cancel clears armed, and no fd is armed again before every
     * pending cancel is submitted), so neither list can overflow. */
    int *na = realloc(s->arm, (size_t)ncap * sizeof *na);
    if (na == NULL)
        return -ENOMEM;
    s->arm = na;
    uint64_t *nc = realloc(s->cancel, (size_t)ncap * sizeof *nc);
    if (nc == NULL)
        return -ENOMEM;
    s->cancel = nc;
    nk_uring_fd *nf = realloc(s->fds, (size_t)ncap * sizeof *nf);
    if (nf == NULL)
        return -ENOMEM;
    memset(nf + s->nfds, 0, (size_t)(ncap - s->nfds) * sizeof *nf);
    s->fds = nf;
    s->nfds = ncap;
    return 0;
}

static void uring_queue_arm(nk_uring_state *s, int fd)
{
    nk_uring_fd *e = &s->fds[fd];
    if (!e->queued) {
        e->queued = 1;
        s->arm[s->narm++] = fd;
    }
}

static int uring_update(void *state, int fd, unsigned old_events, unsigned new_events)
{
    nk_uring_state *s = state;
    (void)old_events; /* the table, not old_events, knows what the kernel has */
    int rc = uring_grow(s, fd);
    if (rc < 0)
        return rc; /* never registered: fd is past the table */
    nk_uring_fd *e = &s->fds[fd];
    if (e->armed) {
        s->cancel[s->ncancel++] = uring_data(fd, e->gen);
        e->armed = 0;
    }
    /* Also for old == new (a refresh): the new poll resolves the number again. */
    e->gen++;
    e->want = new_events;
    if (new_events != 0)
        uring_queue_arm(s, fd);
    return 0;
}

/* A free SQE, submitting what is queued when the ring is full (one extra enter per
 * URING_SQ_ENTRIES changes). NULL only when the kernel takes nothing. */
static struct io_uring_sqe *uring_sqe(nk_uring_state *s)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    if (sqe == NULL && io_uring_submit(&s->ring) >= 0)
        sqe = io_uring_get_sqe(&s->ring);
    return sqe;
}

/* Write the cancels and arms into the submission queue. What does not fit stays queued. */
static int uring_prepare(nk_uring_state *s)
{
    int done = 0;
    for (; done < s->ncancel; done++) {
        struct io_uring_sqe *sqe = uring_sqe(s);
        if (sqe == NULL)
            break;
        io_uring_prep_poll_remove(sqe, s->cancel[done]);
        io_uring_sqe_set_data64(sqe, URING_CANCEL_TAG);
        sqe->flags |= s->sqe_flags;
    }
    if (done < s->ncancel) /* else the list may still be NULL (no fd seen yet) */
        memmove(s->cancel, s->cancel + done, (size_t)(s->ncancel - done) * sizeof *s->cancel);
    s->ncancel -= done;
    if (s->ncancel > 0)
        return -EBUSY;
    for (done = 0; done < s->narm; done++) {
        int fd = s->arm[done];
        nk_uring_fd *e = &s->fds[fd];
        if (e->want == 0 || e->armed) {
            e->queued = 0;
            continue;
        }
        struct io_uring_sqe *sqe = uring_sqe(s);
        if (sqe == NULL)
            break;
        e->queued = 0;
        unsigned mask = ((e->want & NK_READ) ? POLLIN : 0) | ((e->want & NK_WRITE) ? POLLOUT : 0);
        if (e->want & NK_EDGE)
            io_uring_prep_poll_multishot(sqe, fd, mask);
        else
            io_uring_prep_poll_add(sqe, fd, mask);
        io_uring_sqe_set_data64(sqe, uring_data(fd, e->gen));
        e->armed = 1;
    }
    if (done < s->narm)
        memmove(s->arm, s->arm + done, (size_t)(s->narm - done) * sizeof *s->arm);
    s->narm -= done;
    return s->narm > 0 ? -EBUSY : 0;
}

/* Turn one completion into fired[] bits for its fd (merged when the fd already has a slot). */
static int uring_reap(nk_uring_state *s, const struct io_uring_cqe *cqe, nk_fired *fired, int n)
{
    uint32_t fd = (uint32_t)cqe->user_data;
    if (fd == NK__URING_OP_FD) {
        if (s->op_sink != NULL)
            s->op_sink(s->op_sink_arg, cqe);
        return n;
    }
    if (fd >= (uint32_t)s->nfds)
        return n; /* a cancel's completion */
    nk_uring_fd *e = &s->fds[fd];
    if (e->gen != (uint32_t)(cqe->user_data >> 32))
        return n; /* a request replaced since: its file may not be the fd's any more */
    if (!(cqe->flags & IORING_CQE_F_MORE))
        e->armed = 0;
    /* Level-triggered: ask again at the next wait, after the callbacks ran. Edge-triggered: only
     * when the kernel ended the multishot poll. */
    if (!e->armed && e->want != 0)
        uring_queue_arm(s, (int)fd);
    unsigned rw = e->want & URING_RW, out;
    if (cqe->res == -ECANCELED)
        return n; /* ended by the kernel, not by the file: the re-arm will tell */
    if (cqe->res < 0) {
        out = NK_ERROR | rw;
    } else {
        unsigned m = (unsigned)cqe->res;
        out = ((m & POLLIN) ? NK_READ : 0) | ((m & POLLOUT) ? NK_WRITE : 0);
        if (m & (POLLERR | POLLHUP | POLLNVAL))
            out |= NK_ERROR | rw;
    }
    if (out == 0)
        return n;
    if (e->stamp == s->stamp) {
        fired[e->slot].events |= out;
        return n;
    }
    /* uring_wait stops reading completions once fired[] is full, so there is room. */
    e->stamp = s->stamp;
    e->slot = n;
    fired[n].fd = (int)fd;
    fired[n].events = out;
    return n + 1;
}

/* A wait that must not block (the core has callbacks to run: an emulated operation finished
 * inside its start call, a timer due, a deferred call) with nothing to submit: io_uring_enter
 * would only return -ETIME after running the kernel's deferred completions. When the kernel
 * says none are waiting (no IORING_SQ_TASKRUN, no overflowed completions), the completion
 * queue in shared memory already holds everything there is: read it without a system call.
 * Under a 10 MiB load on the 256 KiB sendfile steps this was every other io_uring_enter. */
static int uring_poll_only(const nk_uring_state *s, int timeout_ms)
{
    if (timeout_ms != 0 || !s->taskrun_flag || io_uring_sq_ready(&s->ring) != 0)
        return 0;
    unsigned flags = __atomic_load_n(s->ring.sq.kflags, __ATOMIC_ACQUIRE);
    return !(flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW));
}

static int uring_wait(void *state, int timeout_ms, nk_fired *fired, int max_fired)
{
    nk_uring_state *s = state;
    int rc = uring_prepare(s);
    if (rc == -EBUSY)
        timeout_ms = 0; /* the rest goes in at the next wait, which must come soon */
    if (!uring_poll_only(s, timeout_ms)) {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        struct io_uring_cqe *first = NULL;
        rc = io_uring_submit_and_wait_timeout(&s->ring, &first, 1, timeout_ms < 0 ? NULL : &ts,
                                              NULL);
        /* -ETIME: the timeout passed with no completion (every wait with timeout 0 that finds
         * nothing: normal); -EAGAIN/-EBUSY: the kernel took nothing this time (completion
         * queue full), completions may still be there; -EINTR goes back to the core. */
        if (rc < 0 && rc != -ETIME && rc != -EAGAIN && rc != -EBUSY)
            return rc;
    }
    s->stamp++;
    int n = 0;
    unsigned head, seen = 0;
    struct io_uring_cqe *cqe;
    /* Completions beyond max_fired readinesses stay in the queue, first in line at the next wait
     * (which then does not block): a multishot poll's completion read and dropped here would be
     * an edge lost for good. */
    io_uring_for_each_cqe(&s->ring, head, cqe) {
        if (n == max_fired)
            break;
        n = uring_reap(s, cqe, fired, n);
        seen++;
    }
    io_uring_cq_advance(&s->ring, seen);
    return n;
}

struct io_uring *nk__uring_ops_ring(void *state, nk__uring_sink sink, void *arg)
{
    nk_uring_state *s = state;
    s->op_sink = sink;
    s->op_sink_arg = arg;
    return &s->ring;
}

const nk_backend nk__backend_uring = {
    .name = "uring",
    .flags = NK_BACKEND_EDGE | NK_BACKEND_NAMED,
    .fd_limit = 0,
    .init = uring_init,
    .destroy = uring_destroy,
    .update = uring_update,
    .wait = uring_wait,
};
