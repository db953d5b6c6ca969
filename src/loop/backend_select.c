/* select(2) backend.
 *
 * Quirks worked around:
 * - FD_SET on a descriptor >= FD_SETSIZE writes past the fd_set: such fds are refused up front
 *   (fd_limit, so nk_io_start returns -ERANGE) and again here as a second line of defence.
 * - select modifies its sets in place, so the registered sets are kept apart and copied.
 * - select has no error or hang-up bits: an error shows as readable/writable, and the callback
 *   learns the details from read/write.
 * - One closed descriptor in a set makes the whole call fail with EBADF; the culprits are then
 *   found with fcntl and reported as NK_ERROR instead of failing the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/select.h>

#include "loop/backend.h"

typedef struct {
    fd_set rd, wr;
    int maxfd; /* highest registered fd, -1 when none */
    int next;  /* fd where the next wait starts reporting (see select_scan_start) */
} nk_select_state;

static int select_init(void **state)
{
    nk_select_state *s = malloc(sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    FD_ZERO(&s->rd);
    FD_ZERO(&s->wr);
    s->maxfd = -1;
    s->next = 0;
    *state = s;
    return 0;
}

static void select_destroy(void *state)
{
    free(state);
}

static int select_update(void *state, int fd, unsigned old_events, unsigned new_events)
{
    nk_select_state *s = state;
    (void)old_events;
    if (fd < 0 || fd >= FD_SETSIZE)
        return -ERANGE;
    if (new_events & NK_READ)
        FD_SET(fd, &s->rd);
    else
        FD_CLR(fd, &s->rd);
    if (new_events & NK_WRITE)
        FD_SET(fd, &s->wr);
    else
        FD_CLR(fd, &s->wr);
    if (new_events != 0 && fd > s->maxfd)
        s->maxfd = fd;
    /* Only the top needs a rescan; it keeps select's scan length tight after churn. */
    while (s->maxfd >= 0 && !FD_ISSET(s->maxfd, &s->rd) && !FD_ISSET(s->maxfd, &s->wr))
        s->maxfd--;
    return 0;
}

/* More ready fds than max_fired: a wait reports from s->next on, wrapping at maxfd, and the
 * next one starts where it stopped, so low fds cannot keep high ones waiting for ever. */
static int select_scan_start(const nk_select_state *s)
{
    return s->next <= s->maxfd ? s->next : 0;
}

static int select_scan_step(const nk_select_state *s, int fd)
{
    return fd < s->maxfd ? fd + 1 : 0;
}

static int select_badfds(nk_select_state *s, nk_fired *fired, int max_fired)
{
    int n = 0, k = 0, fd = select_scan_start(s);
    for (; k <= s->maxfd && n < max_fired; k++, fd = select_scan_step(s, fd)) {
        unsigned want = (FD_ISSET(fd, &s->rd) ? NK_READ : 0) | (FD_ISSET(fd, &s->wr) ? NK_WRITE : 0);
        if (want != 0 && fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            fired[n].fd = fd;
            fired[n].events = want | NK_ERROR;
            n++;
        }
    }
    s->next = k <= s->maxfd ? fd : 0;
    return n;
}

static int select_wait(void *state, int timeout_ms, nk_fired *fired, int max_fired)
{
    nk_select_state *s = state;
    fd_set rd = s->rd, wr = s->wr;
    struct timeval tv, *tvp = NULL;
    if (timeout_ms >= 0) {
        tv.tv_sec = timeout_ms / 1000;
        tv.tv_usec = (timeout_ms % 1000) * 1000;
        tvp = &tv;
    }
    int rc = select(s->maxfd + 1, &rd, &wr, NULL, tvp);
    if (rc < 0) {
        if (errno == EBADF)
            return select_badfds(s, fired, max_fired);
        return -errno;
    }
    int n = 0, k = 0, fd = select_scan_start(s);
    for (; k <= s->maxfd && rc > 0 && n < max_fired; k++, fd = select_scan_step(s, fd)) {
        unsigned ev = 0;
        if (FD_ISSET(fd, &rd)) {
            ev |= NK_READ;
            rc--;
        }
        if (FD_ISSET(fd, &wr)) {
            ev |= NK_WRITE;
            rc--;
        }
        if (ev != 0) {
            fired[n].fd = fd;
            fired[n].events = ev;
            n++;
        }
    }
    s->next = rc > 0 ? fd : 0; /* ready fds left unreported: start with them */
    return n;
}

const nk_backend nk__backend_select = {
    .name = "select",
    .flags = 0,
    .fd_limit = FD_SETSIZE,
    .init = select_init,
    .destroy = select_destroy,
    .update = select_update,
    .wait = select_wait,
};
