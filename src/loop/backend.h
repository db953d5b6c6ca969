/* The backend interface of the event loop (internal).
 *
 * A backend only translates interest masks into its OS mechanism and fills the loop's "fired"
 * array; it never calls user callbacks and never sees a watcher. The loop core owns the fd
 * table, batches interest changes and calls update() once per changed fd right before wait(),
 * so a backend may assume it is told about every change exactly once, in order.
 */
#ifndef NETKIT_LOOP_BACKEND_H
#define NETKIT_LOOP_BACKEND_H

#include <netkit/loop.h>

/* One ready descriptor, filled by wait(). events: NK_READ / NK_WRITE / NK_ERROR. */
typedef struct nk_fired {
    int fd;
    unsigned events;
} nk_fired;

enum {
    NK_BACKEND_EDGE = 1u << 0, /* accepts NK_EDGE in update() */
    /* Opened only when asked for by name (argument or $NETKIT_BACKEND): never the default, so
     * a program never lands on it without someone having chosen it. */
    NK_BACKEND_NAMED = 1u << 1
};

typedef struct nk_backend {
    const char *name;
    unsigned flags;
    /* Descriptors at or above this are refused by nk_io_start with -ERANGE; 0: no limit.
     * Checked by the core at start time, so a bad fd never reaches the batch. */
    int fd_limit;
    int (*init)(void **state);
    void (*destroy)(void *state);
    /* Change fd's interest from old_events to new_events (each NK_READ|NK_WRITE|NK_EDGE, 0 =
     * not registered). old == new asks the backend to refresh a registration whose fd may have
     * been closed and reused. On failure the fd must be left unregistered. */
    int (*update)(void *state, int fd, unsigned old_events, unsigned new_events);
    /* Wait up to timeout_ms (-1: forever, 0: poll) and store at most max_fired entries, one per
     * fd. Returns the count, or a negative errno (-EINTR is not an error for the caller). Errors
     * and hang-ups carry NK_ERROR plus the fd's requested READ/WRITE bits. */
    int (*wait)(void *state, int timeout_ms, nk_fired *fired, int max_fired);
} nk_backend;

extern const nk_backend nk__backend_epoll;
extern const nk_backend nk__backend_poll;
extern const nk_backend nk__backend_select;
extern const nk_backend nk__backend_uring;

/* Pick and initialise a backend: by name, else $NETKIT_BACKEND, else the first that starts and
 * is not NK_BACKEND_NAMED. */
int nk__backend_open(const char *name, const nk_backend **be, void **state);

#endif
