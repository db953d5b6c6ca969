/* poll(2) backend.
 *
 * Quirks worked around:
 * - poll takes a dense array, so an fd-to-slot map gives O(1) add, modify and remove; removal
 *   swaps the last entry into the hole (order does not matter to poll).
 * - POLLHUP, POLLERR and POLLNVAL are reported even when not asked for, and a hung-up fd may
 *   show POLLHUP without POLLIN: all three become NK_ERROR plus the fd's requested READ/WRITE
 *   bits, so a callback that only watches one direction still hears about it.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "loop/backend.h"

typedef struct {
    struct pollfd *pfds;
    int n, cap;
    int *slot; /* indexed by fd: index in pfds, or -1 */
    int nslot;
    int next; /* index in pfds where the next wait starts reporting (see poll_wait) */
} nk_poll_state;

static int poll_init(void **state)
{
    nk_poll_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    *state = s;
    return 0;
}

static void poll_destroy(void *state)
{
    nk_poll_state *s = state;
    free(s->pfds);
    free(s->slot);
    free(s);
}

static int poll_grow(nk_poll_state *s, int fd)
{
    if (fd >= s->nslot) {
        int ncap = s->nslot ? s->nslot : 64;
        while (ncap <= fd)
            ncap *= 2;
        int *ns = realloc(s->slot, (size_t)ncap * sizeof *ns);
        if (ns == NULL)
            return -ENOMEM;
        for (int i = s->nslot; i < ncap; i++)
            ns[i] = -1;
        s->slot = ns;
        s->nslot = ncap;
    }
    if (s->n == s->cap) {
        int ncap = s->cap ? s->cap * 2 : 64;
        struct pollfd *np = realloc(s->pfds, (size_t)ncap * sizeof *np);
        if (np == NULL)
            return -ENOMEM;
        s->pfds = np;
        s->cap = ncap;
    }
    return 0;
}

static int poll_update(void *state, int fd, unsigned old_events, unsigned new_events)
{
    nk_poll_state *s = state;
    (void)old_events;
    /* The map, not old_events, says whether fd is present: it cannot go stale. */
    int at = fd < s->nslot ? s->slot[fd] : -1;
    if (new_events == 0) {
        if (at >= 0) {
            s->n--;
            if (at != s->n) {
                s->pfds[at] = s->pfds[s->n];
                s->slot[s->pfds[at].fd] = at;
            }
            s->slot[fd] = -1;
        }
        return 0;
    }
    if (at < 0) {
        int rc = poll_grow(s, fd);
        if (rc < 0)
            return rc;
        at = s->n++;
        s->slot[fd] = at;
        s->pfds[at].fd = fd;
    }
    s->pfds[at].events = (short)(((new_events & NK_READ) ? POLLIN : 0) |
                                 ((new_events & NK_WRITE) ? POLLOUT : 0));
    s->pfds[at].revents = 0;
    return 0;
}

static int poll_wait(void *state, int timeout_ms, nk_fired *fired, int max_fired)
{
    nk_poll_state *s = state;
    int rc = poll(s->pfds, (nfds_t)s->n, timeout_ms);
    if (rc < 0)
        return -errno;
    /* More ready fds than max_fired: the next wait starts where this one stopped, so the
     * first ones in pfds cannot keep the others waiting for ever. */
    int n = 0, k = 0, i = s->next < s->n ? s->next : 0;
    for (; k < s->n && rc > 0 && n < max_fired; k++, i = i + 1 < s->n ? i + 1 : 0) {
        short re = s->pfds[i].revents;
        if (re == 0)
            continue;
        rc--;
        unsigned ev = 0;
        if (re & POLLIN)
            ev |= NK_READ;
        if (re & POLLOUT)
            ev |= NK_WRITE;
        if (re & (POLLHUP | POLLERR | POLLNVAL)) {
            short want = s->pfds[i].events;
            ev |= NK_ERROR | ((want & POLLIN) ? NK_READ : 0) | ((want & POLLOUT) ? NK_WRITE : 0);
        }
        fired[n].fd = s->pfds[i].fd;
        fired[n].events = ev;
        n++;
    }
    s->next = rc > 0 ? i : 0; /* ready fds left unreported: start with them */
    return n;
}

const nk_backend nk__backend_poll = {
    .name = "poll",
    .flags = 0,
    .fd_limit = 0,
    .init = poll_init,
    .destroy = poll_destroy,
    .update = poll_update,
    .wait = poll_wait,
};
