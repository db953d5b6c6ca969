/* Signals as loop events, through one signalfd per loop.
 *
 * A watched signal is blocked for the calling thread (so its normal disposition never runs) and
 * added to the signalfd's mask; the signalfd is an ordinary nk_io in the loop's fd table, which
 * keeps signals in the same dispatch as everything else. When the last watcher of a signal
 * stops, instances still pending are consumed (they arrived while the loop owned the signal,
 * and unblocking would otherwise run the default action, often termination) and the signal is
 * unblocked again unless it was blocked before we started.
 *
 * Limits: the mask is per thread, so other threads of the process should block the signal too,
 * and one signal should be watched by one loop per thread at a time. Children inherit the
 * blocked mask: nk_loop_child_sigmask gives the mask to start them with.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "loop/loop_internal.h"

enum { NK_SIG_BATCH = 16, NK_SIG_ROUNDS = 8, NK_SIG_DRAIN = 64 };

void nk__signals_init(nk_loop *loop)
{
    nk__sigstate *st = &loop->sig;
    st->fd = -1;
    sigemptyset(&st->watched);
    sigemptyset(&st->blocked_by_us);
    memset(st->heads, 0, sizeof st->heads);
    st->cursor = NULL;
    st->count = 0;
    nk_io_init(&st->io, -1, NULL, NULL);
    st->io.flags = NK__UNREF;
}

/* Give the signal back: consume what is pending for it, then unblock it if we blocked it. */
static void signal_release(nk__sigstate *st, int signum)
{
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signum);
    struct timespec zero = {0, 0};
    for (int i = 0; i < NK_SIG_DRAIN && sigtimedwait(&one, NULL, &zero) == signum; i++)
        ;
    if (sigismember(&st->blocked_by_us, signum)) {
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        sigdelset(&st->blocked_by_us, signum);
    }
}

static void signal_deliver(nk_loop *loop, int signum)
{
    nk__sigstate *st = &loop->sig;
    if (signum <= 0 || signum >= NSIG)
        return;
    /* The cursor lets a callback stop (and free) any watcher of this signal, itself included;
     * watchers started during delivery are prepended, so they wait for the next one. */
    nk_signal *w = st->heads[signum];
    while (w != NULL) {
        st->cursor = w->next;
        w->cb(loop, w, signum);
        w = st->cursor;
    }
    st->cursor = NULL;
}

static void signal_readable(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    struct signalfd_siginfo si[NK_SIG_BATCH];
    /* Bounded so a signal storm cannot starve the rest of the loop; the fd stays readable. */
    for (int round = 0; round < NK_SIG_ROUNDS; round++) {
        ssize_t n = read(io->fd, si, sizeof si);
        if (n <= 0)
            return;
        size_t count = (size_t)n / sizeof si[0];
        for (size_t i = 0; i < count; i++)
            signal_deliver(loop, (int)si[i].ssi_signo);
        if (count < NK_SIG_BATCH)
            return;
    }
}

void nk_signal_init(nk_signal *s, nk_signal_cb cb, void *data)
{
    s->data = data;
    s->cb = cb;
    s->signum = 0;
    s->flags = 0;
    s->next = NULL;
}

/* First watcher of signum: block it, add it to the signalfd, make sure the fd is watched. */
static int signal_claim(nk_loop *loop, int signum)
{
    nk__sigstate *st = &loop->sig;
    if (st->fd < 0) {
        sigset_t none;
        sigemptyset(&none);
        int fd = signalfd(-1, &none, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0)
            return -errno;
        st->fd = fd;
        nk_io_init(&st->io, fd, signal_readable, NULL);
        st->io.flags = NK__UNREF; /* plumbing: only nk_signal watchers keep the loop alive */
    }
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, signum);
    int rc = pthread_sigmask(SIG_BLOCK, &one, &old);
    if (rc != 0)
        return -rc;
    if (!sigismember(&old, signum))
        sigaddset(&st->blocked_by_us, signum);
    sigaddset(&st->watched, signum);
    if (signalfd(st->fd, &st->watched, 0) < 0) {
        rc = -errno;
        goto undo;
    }
    if (!nk_io_active(&st->io)) {
        rc = nk_io_start(loop, &st->io, NK_READ);
        if (rc < 0)
            goto undo;
    }
    return 0;
undo:
    sigdelset(&st->watched, signum);
    signalfd(st->fd, &st->watched, 0);
    signal_release(st, signum);
    return rc;
}

int nk_signal_start(nk_loop *loop, nk_signal *s, int signum)
{
    if (signum <= 0 || signum >= NSIG || signum == SIGKILL || signum == SIGSTOP)
        return -EINVAL;
    if (s->signum == signum)
        return 0;
    if (s->signum != 0)
        nk_signal_stop(loop, s);
    nk__sigstate *st = &loop->sig;
    if (st->heads[signum] == NULL) {
        int rc = signal_claim(loop, signum);
        if (rc < 0)
            return rc;
    }
    s->signum = signum;
    s->next = st->heads[signum];
    st->heads[signum] = s;
    st->count++;
    nk__unref_started(loop, s->flags);
    return 0;
}

void nk_signal_stop(nk_loop *loop, nk_signal *s)
{
    nk__sigstate *st = &loop->sig;
    int signum = s->signum;
    if (signum <= 0 || signum >= NSIG)
        return;
    for (nk_signal **pp = &st->heads[signum]; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    if (st->cursor == s)
        st->cursor = s->next;
    s->signum = 0;
    s->next = NULL;
    st->count--;
    nk__unref_stopped(loop, s->flags);
    if (st->heads[signum] != NULL)
        return;
    sigdelset(&st->watched, signum);
    signalfd(st->fd, &st->watched, 0);
    signal_release(st, signum);
    if (st->count == 0)
        nk_io_stop(loop, &st->io);
}

/* A value rather than an action in the child (an nk_loop_fork_child that changed the mask and
 * closed the signalfd after fork): it is computed in the parent, so the child of a threaded
 * program needs only sigprocmask, which is async-signal-safe, before exec; the same mask serves
 * posix_spawn (POSIX_SPAWN_SETSIGMASK) and vfork, where no code of ours may run in the child;
 * and the signalfd needs nothing, it is close-on-exec. */
int nk_loop_child_sigmask(const nk_loop *loop, sigset_t *out)
{
    int rc = pthread_sigmask(SIG_BLOCK, NULL, out);
    if (rc != 0)
        return -rc;
    for (int signum = 1; signum < NSIG; signum++)
        if (sigismember(&loop->sig.blocked_by_us, signum) == 1)
            sigdelset(out, signum);
    return 0;
}

void nk__signals_free(nk_loop *loop)
{
    nk__sigstate *st = &loop->sig;
    if (st->fd < 0)
        return;
    /* Watchers may be gone already: only the loop's own record of signals is consulted. */
    for (int signum = 1; signum < NSIG; signum++)
        if (sigismember(&st->watched, signum) == 1)
            signal_release(st, signum);
    close(st->fd);
    st->fd = -1;
}
