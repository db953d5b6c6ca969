/* Waking a loop from another thread: nk_async, through one eventfd per loop.
 *
 * Each watcher has one atomic word, 'state': STARTED, PENDING, and above them the number of
 * nk_async_send calls in progress (BUSY each). A send counts itself in, and only if the watcher
 * is started and not yet pending does it set PENDING and write the eventfd; so N sends before
 * the loop looks cost one write and one callback. The loop, woken by the eventfd, drains it and
 * then clears PENDING of each started watcher with one atomic and-not, calling those that had
 * it. A send that comes after that clear sets PENDING again and writes again, after the drain,
 * so no wake-up is lost; at worst a send between the drain and the clear costs one wake-up that
 * finds nothing pending.
 *
 * Stopping clears STARTED and PENDING, then waits until no send is in progress: a send reads
 * a->loop (for the eventfd) only after seeing STARTED in the same atomic step that counted it
 * in, so once the count is zero no sender can still be using the loop, and the loop may be
 * freed. All of it is one word, so there is no ordering between two variables to get wrong.
 *
 * Only atomics and write(2): nk_async_send is async-signal-safe. The atomics are the GCC/Clang
 * __atomic builtins on a plain unsigned, so the public struct needs no <stdatomic.h> (the
 * headers must compile as C99 and C++).
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop/loop_internal.h"

enum {
    ASYNC_STARTED = 1u << 0,
    ASYNC_PENDING = 1u << 1,
    ASYNC_BUSY = 1u << 2, /* one send in progress; the count occupies the bits from here up */
    ASYNC_SPINS = 64      /* busy-waits in nk_async_stop before yielding the CPU */
};

void nk__asyncs_init(nk_loop *loop)
{
    nk__asyncstate *st = &loop->async;
    st->fd = -1;
    st->head = st->tail = st->cursor = NULL;
    st->count = 0;
    nk_io_init(&st->io, -1, NULL, NULL);
}

void nk__asyncs_free(nk_loop *loop)
{
    /* Watchers still started are forgotten untouched, as for every other kind. */
    if (loop->async.fd >= 0)
        close(loop->async.fd);
    loop->async.fd = -1;
}

static void async_readable(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    uint64_t count;
    /* One read resets an eventfd to zero; EAGAIN (a wake-up already drained) is harmless. */
    if (read(io->fd, &count, sizeof count) < 0 && errno != EAGAIN)
        return;
    nk__asyncstate *st = &loop->async;
    /* The cursor lets a callback stop (and free) any watcher, itself included. */
    nk_async *a = st->head;
    while (a != NULL) {
        st->cursor = a->next;
        unsigned old = __atomic_fetch_and(&a->state, ~(unsigned)ASYNC_PENDING, __ATOMIC_SEQ_CST);
        if (old & ASYNC_PENDING)
            a->cb(loop, a);
        a = st->cursor;
    }
    st->cursor = NULL;
}

void nk_async_init(nk_async *a, nk_async_cb cb, void *data)
{
    a->data = data;
    a->cb = cb;
    a->loop = NULL;
    a->prev = a->next = NULL;
    a->state = 0;
    a->flags = 0;
}

/* The first start on a loop creates the eventfd; its watcher runs while any nk_async is
 * started and is unref'd, so only the nk_async watchers themselves keep the loop alive. */
static int async_fd_watch(nk_loop *loop)
{
    nk__asyncstate *st = &loop->async;
    if (st->fd < 0) {
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0)
            return -errno;
        st->fd = fd;
        nk_io_init(&st->io, fd, async_readable, NULL);
        st->io.flags = NK__UNREF;
    }
    if (nk_io_active(&st->io))
        return 0;
    return nk_io_start(loop, &st->io, NK_READ);
}

int nk_async_start(nk_loop *loop, nk_async *a)
{
    if (a->loop == loop)
        return 0;
    if (a->loop != NULL)
        return -EBUSY;
    int rc = async_fd_watch(loop);
    if (rc < 0)
        return rc;
    nk__asyncstate *st = &loop->async;
    a->next = NULL;
    a->prev = st->tail;
    if (st->tail)
        st->tail->next = a;
    else
        st->head = a;
    st->tail = a;
    st->count++;
    nk__unref_started(loop, a->flags);
    /* A send that raced with the last stop may have left PENDING behind (see nk_async_send):
     * clear it, or the next sends would believe a wake-up is on its way. No send sets it while
     * STARTED is clear, so the two steps need no loop. a->loop is written before STARTED is
     * published: a sender that sees STARTED sees it. */
    a->loop = loop;
    __atomic_fetch_and(&a->state, ~(unsigned)ASYNC_PENDING, __ATOMIC_SEQ_CST);
    __atomic_fetch_or(&a->state, ASYNC_STARTED, __ATOMIC_SEQ_CST);
    return 0;
}

void nk_async_stop(nk_loop *loop, nk_async *a)
{
    if (a->loop != loop || loop == NULL)
        return;
    __atomic_fetch_and(&a->state, ~(unsigned)(ASYNC_STARTED | ASYNC_PENDING), __ATOMIC_SEQ_CST);
    /* Sends that saw STARTED may still be about to write the eventfd: let them finish. They
     * cannot block (a non-blocking write), so this waits a few instructions and a syscall. */
    for (unsigned spins = 0; __atomic_load_n(&a->state, __ATOMIC_ACQUIRE) >= ASYNC_BUSY; spins++)
        if (spins >= ASYNC_SPINS)
            sched_yield();
    nk__asyncstate *st = &loop->async;
    if (st->cursor == a)
        st->cursor = a->next;
    if (a->prev)
        a->prev->next = a->next;
    else
        st->head = a->next;
    if (a->next)
        a->next->prev = a->prev;
    else
        st->tail = a->prev;
    a->prev = a->next = NULL;
    a->loop = NULL;
    st->count--;
    nk__unref_stopped(loop, a->flags);
    if (st->count == 0)
        nk_io_stop(loop, &st->io);
}

void nk_async_send(nk_async *a)
{
    unsigned old = __atomic_fetch_add(&a->state, ASYNC_BUSY, __ATOMIC_SEQ_CST);
    if ((old & (ASYNC_STARTED | ASYNC_PENDING)) == ASYNC_STARTED) {
        /* A stop may have come in between (it waits for us before returning, so a->loop is
         * still good); then the PENDING set here is stale, and the next start clears it. */
        old = __atomic_fetch_or(&a->state, ASYNC_PENDING, __ATOMIC_SEQ_CST);
        if ((old & (ASYNC_STARTED | ASYNC_PENDING)) == ASYNC_STARTED) {
            int saved = errno; /* a signal handler must leave errno as it found it */
            uint64_t one = 1;
            /* Cannot fail in practice (the counter is drained on every wake-up), and a send
             * has nobody to report to. */
            ssize_t written = write(a->loop->async.fd, &one, sizeof one);
            (void)written;
            errno = saved;
        }
    }
    __atomic_fetch_sub(&a->state, ASYNC_BUSY, __ATOMIC_RELEASE);
}
