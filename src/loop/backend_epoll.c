/* epoll(7) backend.
 *
 * Quirks worked around:
 * - Registrations belong to the open file, not the fd number: closing an fd drops it silently,
 *   so a reused fd number gets ENOENT on MOD (retried as ADD), and a registration that survived
 *   gets EEXIST on ADD (retried as MOD). DEL of an fd already closed (EBADF/ENOENT) is fine.
 * - Regular files and directories refuse epoll with EPERM although poll and select report them
 *   always ready. They are kept in a side list and reported ready on every wait, as poll would;
 *   a change to such an fd asks epoll again, as the number may name a socket by now.
 * - EPOLLERR and EPOLLHUP arrive whether asked for or not; they become NK_ERROR plus the
 *   requested READ/WRITE bits, which travel in the event's data next to the fd.
 * - Level-triggered by default; NK_EDGE adds EPOLLET.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop/backend.h"

typedef struct {
    int fd;
    unsigned events;
} nk_epoll_file;

typedef struct {
    int epfd;
    struct epoll_event *evs;
    int nevs;
    nk_epoll_file *files; /* fds epoll refused with EPERM: always ready */
    int nfiles, capfiles;
    int nextfile; /* where the next wait starts reporting them, when not all fit in one */
} nk_epoll_state;

static int ep_init(void **state)
{
    nk_epoll_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        int err = -errno;
        free(s);
        return err;
    }
    *state = s;
    return 0;
}

static void ep_destroy(void *state)
{
    nk_epoll_state *s = state;
    close(s->epfd);
    free(s->evs);
    free(s->files);
    free(s);
}

static int ep_find_file(const nk_epoll_state *s, int fd)
{
    for (int i = 0; i < s->nfiles; i++)
        if (s->files[i].fd == fd)
            return i;
    return -1;
}

static int ep_add_file(nk_epoll_state *s, int fd, unsigned events)
{
    if (s->nfiles == s->capfiles) {
        int ncap = s->capfiles ? s->capfiles * 2 : 8;
        nk_epoll_file *nf = realloc(s->files, (size_t)ncap * sizeof *nf);
        if (nf == NULL)
            return -ENOMEM;
        s->files = nf;
        s->capfiles = ncap;
    }
    s->files[s->nfiles].fd = fd;
    s->files[s->nfiles].events = events;
    s->nfiles++;
    return 0;
}

/* The contract says a failed update leaves the fd unregistered: drop whatever may remain. */
static int ep_fail(nk_epoll_state *s, int fd)
{
    int err = -errno;
    struct epoll_event dummy = {0};
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, &dummy);
    return err;
}

static int ep_update(void *state, int fd, unsigned old_events, unsigned new_events)
{
    nk_epoll_state *s = state;
    int fi = s->nfiles ? ep_find_file(s, fd) : -1;
    if (fi >= 0) {
        /* The number may have been closed and given to a socket since (the core then starts a
         * new watcher on it): only a file that epoll still refuses stays always ready. One
         * epoll_ctl per change of a regular file's interest, which is rare. */
        s->files[fi] = s->files[--s->nfiles];
        if (new_events == 0)
            return 0;
        old_events = 0;
    }
    if (new_events == 0) {
        struct epoll_event dummy = {0}; /* kernels before 2.6.9 wanted non-NULL */
        if (epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, &dummy) < 0 && errno != EBADF && errno != ENOENT)
            return -errno;
        return 0;
    }
    unsigned rw = new_events & (NK_READ | NK_WRITE);
    struct epoll_event ev = {0};
    ev.events = ((rw & NK_READ) ? EPOLLIN : 0) | ((rw & NK_WRITE) ? EPOLLOUT : 0) |
                ((new_events & NK_EDGE) ? EPOLLET : 0);
    ev.data.u64 = (uint64_t)(uint32_t)fd | ((uint64_t)rw << 32);
    int op = old_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(s->epfd, op, fd, &ev) == 0)
        return 0;
    if (op == EPOLL_CTL_ADD && errno == EEXIST)
        op = EPOLL_CTL_MOD;
    else if (op == EPOLL_CTL_MOD && errno == ENOENT)
        op = EPOLL_CTL_ADD;
    else if (errno == EPERM)
        return ep_add_file(s, fd, new_events);
    else
        return ep_fail(s, fd);
    if (epoll_ctl(s->epfd, op, fd, &ev) == 0)
        return 0;
    if (errno == EPERM)
        return ep_add_file(s, fd, new_events);
    return ep_fail(s, fd);
}

static int ep_wait(void *state, int timeout_ms, nk_fired *fired, int max_fired)
{
    nk_epoll_state *s = state;
    int room = max_fired - s->nfiles;
    if (room < 1)
        room = 1;
    if (room > s->nevs) {
        struct epoll_event *ne = realloc(s->evs, (size_t)room * sizeof *ne);
        if (ne == NULL)
            return -ENOMEM;
        s->evs = ne;
        s->nevs = room;
    }
    /* Always-ready files must not wait behind a blocking epoll_wait. */
    if (s->nfiles > 0)
        timeout_ms = 0;
    int rc = epoll_wait(s->epfd, s->evs, room, timeout_ms);
    if (rc < 0)
        return -errno;
    /* room <= max_fired (the core always gives at least 1): every event epoll handed over fits,
     * which matters for EPOLLET, whose edges epoll does not keep once reported. What did not fit
     * in evs stays in epoll's ready list, reported first next time. */
    int n = 0;
    for (int i = 0; i < rc; i++) {
        uint32_t e = s->evs[i].events;
        unsigned rw = (unsigned)(s->evs[i].data.u64 >> 32);
        unsigned out = ((e & EPOLLIN) ? NK_READ : 0) | ((e & EPOLLOUT) ? NK_WRITE : 0);
        if (e & (EPOLLERR | EPOLLHUP))
            out |= NK_ERROR | rw;
        fired[n].fd = (int)(uint32_t)s->evs[i].data.u64;
        fired[n].events = out;
        n++;
    }
    /* More always-ready files than room: the next wait goes on where this one stopped. */
    int k = 0, at = s->nextfile < s->nfiles ? s->nextfile : 0;
    for (; k < s->nfiles && n < max_fired; k++, at = at + 1 < s->nfiles ? at + 1 : 0) {
        fired[n].fd = s->files[at].fd;
        fired[n].events = s->files[at].events & (NK_READ | NK_WRITE);
        n++;
    }
    s->nextfile = k < s->nfiles ? at : 0;
    return n;
}

const nk_backend nk__backend_epoll = {
    .name = "epoll",
    .flags = NK_BACKEND_EDGE,
    .fd_limit = 0,
    .init = ep_init,
    .destroy = ep_destroy,
    .update = ep_update,
    .wait = ep_wait,
};
