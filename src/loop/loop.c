/* The loop core: fd table, batched interest changes, dispatch, run modes, deferred callbacks
 * (prepare and check hooks around the wait live in hook.c).
 *
 * Interest changes made by nk_io_start/nk_io_stop only touch the fd table and queue the fd;
 * the queue is applied in one batch right before the backend waits, so a watcher started,
 * stopped and started again inside one callback costs at most one system call.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "loop/loop_internal.h"

/* Its identity fields live in what would be padding (see nk__fdent). */
_Static_assert(sizeof(nk__fdent) <= sizeof(nk_io *) + 16, "nk__fdent stays 24 bytes on LP64");

enum { NK_IO_RW = NK_READ | NK_WRITE, NK_IO_MIN_TABLE = 64 };

static int fds_grow(nk_loop *loop, int fd);

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int nk_loop_new(const char *backend, nk_loop **out)
{
    nk_loop *loop = calloc(1, sizeof *loop);
    if (loop == NULL)
        return -ENOMEM;
    nk__signals_init(loop);
    nk__asyncs_init(loop);
    int rc = nk__backend_open(backend, &loop->be, &loop->bstate);
    if (rc < 0) {
        free(loop);
        return rc;
    }
    /* The tables always exist, so fired[] is never NULL when handed to a backend. */
    loop->fired = malloc(NK__LOOP_FIRED_MAX * sizeof *loop->fired);
    loop->fired_gen = malloc(NK__LOOP_FIRED_MAX * sizeof *loop->fired_gen);
    loop->fired_max = NK__LOOP_FIRED_MAX;
    rc = loop->fired && loop->fired_gen ? fds_grow(loop, 0) : -ENOMEM;
    if (rc < 0) {
        nk_loop_free(loop);
        return rc;
    }
    loop->now = monotonic_ms();
    *out = loop;
    return 0;
}

int nk_loop_free(nk_loop *loop)
{
    if (loop == NULL)
        return 0;
    /* nk_loop_run is still on the stack and would touch the freed tables when the callback
     * returns: refuse, the caller stops the loop and frees it after nk_loop_run returns. */
    if (loop->running > 0)
        return -EBUSY;
    /* A started operation's buffers may still be in the kernel's hands (uring), and its
     * callback still owed: refused on every backend, so that the rule is one. */
    if (loop->ops.active > 0 || loop->ops.pools > 0)
        return -EBUSY;
    /* Watchers are the caller's and may already be gone: only the loop's own memory, the
     * signalfd and the signal mask are touched here. */
    nk__signals_free(loop);
    nk__asyncs_free(loop);
    nk__timers_free(loop);
    nk__ops_free(loop);
    loop->be->destroy(loop->bstate);
    free(loop->fds);
    free(loop->ids);
    free(loop->changes);
    free(loop->fired);
    free(loop->fired_gen);
    free(loop);
    return 0;
}

void nk_loop_stop(nk_loop *loop)
{
    loop->stop = 1;
}

uint64_t nk_loop_now(const nk_loop *loop)
{
    return loop->now;
}

void nk_loop_update_time(nk_loop *loop)
{
    loop->now = monotonic_ms();
}

const char *nk_loop_backend(const nk_loop *loop)
{
    return loop->be->name;
}

int nk_loop_max_fd(const nk_loop *loop)
{
    return loop->be->fd_limit > 0 ? loop->be->fd_limit - 1 : INT_MAX;
}

size_t nk_loop_active(const nk_loop *loop)
{
    /* The loop's own watchers (the signalfd's, the eventfd's) are unref'd: plumbing never keeps
     * a loop alive. */
    return loop->io_active + loop->nheap + loop->sig.count + loop->defer_active +
           loop->async.count + loop->ops.active - loop->unref_active;
}

void nk_loop_set_data(nk_loop *loop, void *data)
{
    loop->data = data;
}

void *nk_loop_data(const nk_loop *loop)
{
    return loop->data;
}

/* ---- I/O watchers ---------------------------------------------------------------------- */

void nk__loop_set_fired_max(nk_loop *loop, int max)
{
    loop->fired_max = max < 1 ? 1 : max > NK__LOOP_FIRED_MAX ? NK__LOOP_FIRED_MAX : max;
}

/* The slots of a grown table come from calloc, not realloc and memset: a large table is
 * mapped zero pages, and only the slots of descriptors actually used become resident (a table
 * doubled at 8193 descriptors would otherwise cost 24 bytes for each of the 8191 not used). */
static int fdents_grow(nk_loop *loop, size_t ncap)
{
    nk__fdent *nf = calloc(ncap, sizeof *nf);
    if (nf == NULL)
        return -ENOMEM;
    if (loop->nfds > 0)
        memcpy(nf, loop->fds, (size_t)loop->nfds * sizeof *nf);
    free(loop->fds);
    loop->fds = nf;
    return 0;
}

static int fds_grow(nk_loop *loop, int fd)
{
    if (fd < loop->nfds)
        return 0;
    size_t ncap = loop->nfds ? (size_t)loop->nfds : NK_IO_MIN_TABLE;
    while (ncap <= (size_t)fd)
        ncap *= 2;
    if (ncap > INT_MAX)
        return -ENOMEM;
    /* Grow all three together; whichever allocation succeeds is kept, so a failure leaves every
     * array at least at the old capacity and the loop consistent. */
    if (fdents_grow(loop, ncap) < 0)
        return -ENOMEM;
    nk__fdid *ni = realloc(loop->ids, ncap * sizeof *ni);
    if (ni == NULL)
        return -ENOMEM;
    loop->ids = ni;
    int *nc = realloc(loop->changes, ncap * sizeof *nc);
    if (nc == NULL)
        return -ENOMEM;
    loop->changes = nc;
    loop->nfds = (int)ncap;
    return 0;
}

static void queue_change(nk_loop *loop, int fd)
{
    nk__fdent *e = &loop->fds[fd];
    if (!e->queued) {
        e->queued = 1;
        loop->changes[loop->nchanges++] = fd;
    }
}

/* One fstat per watcher start from inactive (never per modify or per event): the identity
 * fd_reused compares against. Device and inode name the file, not the open description, so
 * a duplicate of the same file put back on the number counts as the same. */
static void fd_remember(nk_loop *loop, int fd)
{
    struct stat st;
    nk__fdent *e = &loop->fds[fd];
    e->known = fstat(fd, &st) == 0;
    e->dev = e->known ? nk__dev32(st.st_dev) : 0;
    loop->ids[fd] = e->known ? st.st_ino : 0;
}

/* Only asked when a start meets another started watcher on fd (a caller bug either way). */
static int fd_reused(const nk_loop *loop, int fd)
{
    struct stat st;
    const nk__fdent *e = &loop->fds[fd];
    if (fstat(fd, &st) != 0)
        return 0; /* nothing open there now: no new file to hand the number to */
    return !e->known || e->dev != nk__dev32(st.st_dev) || loop->ids[fd] != st.st_ino;
}

void nk_io_init(nk_io *io, int fd, nk_io_cb cb, void *data)
{
    io->fd = fd;
    io->data = data;
    io->cb = cb;
    io->events = 0;
    io->flags = 0;
}

int nk_io_start(nk_loop *loop, nk_io *io, unsigned events)
{
    if ((events & NK_IO_RW) == 0) {
        if (events & ~(unsigned)NK_EDGE)
            return -EINVAL;
        nk_io_stop(loop, io);
        return 0;
    }
    if (events & ~(unsigned)(NK_IO_RW | NK_EDGE))
        return -EINVAL;
    if (io->fd < 0)
        return -EBADF;
    if ((events & NK_EDGE) && !(loop->be->flags & NK_BACKEND_EDGE))
        return -ENOTSUP;
    if (loop->be->fd_limit > 0 && io->fd >= loop->be->fd_limit)
        return -ERANGE;
    int rc = fds_grow(loop, io->fd);
    if (rc < 0)
        return rc;
    nk__fdent *e = &loop->fds[io->fd];
    if (e->io != NULL && e->io != io) {
        if (!fd_reused(loop, io->fd))
            return -EEXIST;
        /* Its fd was closed without nk_io_stop and the number now names another file: the old
         * watcher can never see its own file again, so the loop stops it here. No callback:
         * its owner already closed the fd, and an error handler that ran now would clean up
         * twice or close(io->fd), which is the new file's descriptor. */
        nk_io_stop(loop, e->io);
    }
    if (e->io == NULL) {
        fd_remember(loop, io->fd);
        e->io = io;
        loop->io_active++;
        nk__unref_started(loop, io->flags);
    }
    io->events = events;
    queue_change(loop, io->fd);
    return 0;
}

void nk_io_stop(nk_loop *loop, nk_io *io)
{
    if (io->events == 0)
        return;
    io->events = 0;
    if (io->fd < 0 || io->fd >= loop->nfds || loop->fds[io->fd].io != io)
        return;
    nk__fdent *e = &loop->fds[io->fd];
    e->io = NULL;
    e->gen++;
    e->stopped = 1;
    loop->io_active--;
    nk__unref_stopped(loop, io->flags);
    queue_change(loop, io->fd);
}

/* Apply the queued interest changes. An fd whose update failed is reported to its watcher as
 * NK_ERROR in fired[0..n) and queued again, so the error is level-triggered like any other.
 * Failures beyond fired_max are queued again unreported, ahead of the reported ones, so the
 * next batch retries and reports them first. */
static int apply_changes(nk_loop *loop)
{
    int nerr = 0, nlater = 0, n = loop->nchanges;
    for (int i = 0; i < n; i++) {
        int fd = loop->changes[i];
        nk__fdent *e = &loop->fds[fd];
        unsigned want = e->io ? e->io->events : 0;
        int refresh = e->stopped && want != 0;
        e->queued = 0;
        e->stopped = 0;
        if (want == e->registered && !refresh)
            continue;
        int rc = loop->be->update(loop->bstate, fd, e->registered, want);
        if (rc < 0) {
            e->registered = 0;
            if (want != 0 && nerr < loop->fired_max) {
                loop->fired[nerr].fd = fd;
                loop->fired[nerr].events = NK_ERROR | (want & NK_IO_RW);
                nerr++;
            } else if (want != 0) {
                e->queued = 1;
                loop->changes[nlater++] = fd; /* nlater <= i: only read entries are rewritten */
            }
        } else {
            e->registered = want;
        }
    }
    loop->nchanges = nlater;
    for (int i = 0; i < nerr; i++)
        queue_change(loop, loop->fired[i].fd);
    return nerr;
}

static void dispatch(nk_loop *loop, int n)
{
    for (int i = 0; i < n; i++)
        loop->fired_gen[i] = loop->fds[loop->fired[i].fd].gen;
    for (int i = 0; i < n; i++) {
        int fd = loop->fired[i].fd;
        nk__fdent *e = &loop->fds[fd];
        nk_io *io = e->io;
        /* An earlier callback may have stopped this watcher (and freed it), or stopped it and
         * started another on the same fd number: the generation tells them apart. */
        if (io == NULL || e->gen != loop->fired_gen[i])
            continue;
        unsigned ev = loop->fired[i].events & ((io->events & NK_IO_RW) | NK_ERROR);
        if (ev != 0)
            io->cb(loop, io, ev);
    }
    /* Operations: uring's completions, then those the emulation finished in the callbacks
     * above (one pointer test each when there are none). */
    if (loop->ops.native != NULL)
        nk__ops_reap(loop);
    if (loop->ops.done_head != NULL)
        nk__ops_run_done(loop);
}

/* ---- Deferred callbacks ---------------------------------------------------------------- */

void nk_defer_init(nk_defer *d, nk_defer_cb cb, void *data)
{
    d->data = data;
    d->cb = cb;
    d->next = NULL;
    d->active = 0;
    d->flags = 0;
}

void nk_defer_start(nk_loop *loop, nk_defer *d)
{
    if (d->active)
        return;
    d->active = 1;
    d->next = NULL;
    if (loop->defer_tail)
        loop->defer_tail->next = d;
    else
        loop->defer_head = d;
    loop->defer_tail = d;
    loop->defer_active++;
    nk__unref_started(loop, d->flags);
}

void nk_defer_stop(nk_loop *loop, nk_defer *d)
{
    if (!d->active)
        return;
    d->active = 0;
    loop->defer_active--;
    nk__unref_stopped(loop, d->flags);
    /* It is either waiting for the next iteration or in the batch being run now. */
    nk_defer *prev = NULL;
    for (nk_defer *p = loop->defer_head; p; prev = p, p = p->next) {
        if (p == d) {
            if (prev)
                prev->next = d->next;
            else
                loop->defer_head = d->next;
            if (loop->defer_tail == d)
                loop->defer_tail = prev;
            d->next = NULL;
            return;
        }
    }
    for (nk_defer **pp = &loop->defer_run; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            d->next = NULL;
            return;
        }
    }
}

static int defers_run(nk_loop *loop)
{
    int ran = 0;
    /* Take the whole list: defers started by these callbacks wait for the next iteration. */
    loop->defer_run = loop->defer_head;
    loop->defer_head = loop->defer_tail = NULL;
    nk_defer *d;
    while ((d = loop->defer_run) != NULL) {
        loop->defer_run = d->next;
        d->next = NULL;
        d->active = 0;
        loop->defer_active--;
        nk__unref_stopped(loop, d->flags);
        d->cb(loop, d);
        ran++;
    }
    return ran;
}

/* ---- Running --------------------------------------------------------------------------- */

int nk_loop_run(nk_loop *loop, int mode)
{
    if (mode != NK_RUN_DEFAULT && mode != NK_RUN_ONCE && mode != NK_RUN_NOWAIT)
        return -EINVAL;
    int rc = 0;
    loop->running++;
    loop->now = monotonic_ms();
    for (;;) {
        int ran = nk__timers_run(loop);
        ran += defers_run(loop);
        if (loop->ops.done_head != NULL) /* finished inside a start call */
            ran += nk__ops_run_done(loop);
        int alive = nk_loop_active(loop) != 0;
        if (mode == NK_RUN_DEFAULT && (!alive || loop->stop))
            break;
        /* Before the timeout is computed: what prepare callbacks start, stop or ask for counts
         * for this wait. One pointer test when there are none. */
        if (loop->prepares.head != NULL) {
            nk__prepares_run(loop);
            alive = nk_loop_active(loop) != 0;
        }
        /* ONCE promises at least one event when any is possible; callbacks that already ran at
         * the start of this iteration count, so it only polls then. */
        int timeout = -1;
        if (mode == NK_RUN_NOWAIT || !alive || loop->stop || loop->defer_head != NULL ||
            loop->ops.done_head != NULL || (mode == NK_RUN_ONCE && ran > 0))
            timeout = 0;
        else
            timeout = nk__timer_timeout(loop);
        int nerr = apply_changes(loop);
        if (nerr > 0)
            timeout = 0;
        if (loop->ops.native != NULL)
            nk__ops_submit(loop);
        /* With fired[] full of update errors the wait is left for the next turn, which comes
         * at once: a backend given no room could take an edge it cannot hand over. */
        int n = nerr < loop->fired_max
                    ? loop->be->wait(loop->bstate, timeout, loop->fired + nerr,
                                     loop->fired_max - nerr)
                    : 0;
        if (n < 0 && n != -EINTR) {
            rc = n;
            break;
        }
        loop->now = monotonic_ms();
        dispatch(loop, nerr + (n > 0 ? n : 0));
        if (loop->checks.head != NULL)
            nk__checks_run(loop);
        nk__timers_run(loop);
        if (mode != NK_RUN_DEFAULT || loop->stop)
            break;
    }
    loop->stop = 0;
    loop->running--;
    return rc;
}
