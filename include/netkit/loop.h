/* The netkit event loop.
 *
 * One nk_loop per thread (or per worker process). It multiplexes I/O readiness over a backend
 * chosen at run time ("epoll", "uring", "poll", "select"), plus monotonic timers, signals delivered as
 * ordinary loop events, deferred callbacks, wake-ups from other threads (nk_async) and hooks
 * around the wait (nk_prepare, nk_check). Completion-based I/O on the same loop (accept, recv,
 * send handed over whole, called back with the result): netkit/op.h.
 *
 * Watchers (nk_io, nk_timer, nk_signal, nk_defer, nk_async, nk_prepare, nk_check) are embedded
 * in the caller's structures: the loop never allocates per watcher and never owns them. Fields
 * marked "private" belong to the loop. Stopping any watcher from inside any callback, including
 * its own, is safe on every backend; once stopped, a watcher's callback is not called again
 * until it is restarted, and its memory may be freed right away.
 *
 * Readiness is level-triggered on every backend (an fd that stays readable is reported again on
 * the next iteration). epoll and uring additionally offer edge-triggered mode with NK_EDGE.
 *
 * Threading: a loop and its watchers are used from one thread at a time, with one exception:
 * nk_async_send, which any thread (and a signal handler) may call to wake the loop. Every other
 * function here, nk_loop_stop included, belongs to the loop's thread; to stop a loop from
 * another thread, send an nk_async whose callback calls nk_loop_stop.
 */
#ifndef NETKIT_LOOP_H
#define NETKIT_LOOP_H

#include <signal.h> /* sigset_t (POSIX) */
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <sys/select.h> /* sigset_t, also under strict ISO C modes */
#include <netkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

typedef struct nk_loop nk_loop;
typedef struct nk_io nk_io;
typedef struct nk_timer nk_timer;
typedef struct nk_signal nk_signal;
typedef struct nk_defer nk_defer;
typedef struct nk_async nk_async;
typedef struct nk_prepare nk_prepare;
typedef struct nk_check nk_check;

/* I/O interest and event bits. */
enum {
    NK_READ = 1u << 0,
    NK_WRITE = 1u << 1,
    NK_EDGE = 1u << 2, /* interest flag: edge-triggered (epoll, uring; else -ENOTSUP) */
    NK_ERROR = 1u << 3 /* event bit only: error or hang-up; reported with READ/WRITE interest */
};

typedef void (*nk_io_cb)(nk_loop *loop, nk_io *io, unsigned events);
typedef void (*nk_timer_cb)(nk_loop *loop, nk_timer *timer);
typedef void (*nk_signal_cb)(nk_loop *loop, nk_signal *sig, int signum);
typedef void (*nk_defer_cb)(nk_loop *loop, nk_defer *defer);
typedef void (*nk_async_cb)(nk_loop *loop, nk_async *async);
typedef void (*nk_prepare_cb)(nk_loop *loop, nk_prepare *prepare);
typedef void (*nk_check_cb)(nk_loop *loop, nk_check *check);

struct nk_io {
    int fd;          /* read-only after nk_io_init */
    void *data;      /* the caller's */
    nk_io_cb cb;     /* private */
    unsigned events; /* private: requested interest, 0 when stopped */
    unsigned flags;  /* private: unref'd */
};

struct nk_timer {
    void *data;      /* the caller's */
    nk_timer_cb cb;  /* private */
    uint64_t due;    /* private: absolute monotonic ms */
    uint64_t repeat; /* private: 0 for one-shot */
    size_t slot;     /* private: index in the heap, SIZE_MAX when inactive */
    uint64_t seq;    /* private: start order, breaks ties so equal deadlines fire FIFO */
    unsigned flags;  /* private: unref'd */
};

struct nk_signal {
    void *data;         /* the caller's */
    nk_signal_cb cb;    /* private */
    int signum;         /* private: 0 when inactive */
    unsigned flags;     /* private: unref'd */
    nk_signal *next;    /* private */
};

struct nk_defer {
    void *data;      /* the caller's */
    nk_defer_cb cb;  /* private */
    nk_defer *next;  /* private */
    int active;      /* private */
    unsigned flags;  /* private: unref'd */
};

struct nk_async {
    void *data;      /* the caller's */
    nk_async_cb cb;  /* private */
    nk_loop *loop;   /* private: the loop it is started on, NULL when stopped */
    nk_async *prev;  /* private: the loop's list of started watchers */
    nk_async *next;  /* private */
    unsigned state;  /* private, atomic: started, pending, sends in progress */
    unsigned flags;  /* private: unref'd */
};

/* Private: the place of a prepare or check watcher in its loop's list. */
typedef struct nk_hook_node {
    struct nk_hook_node *prev, *next;
    uint64_t seq; /* start order, 0 when stopped */
} nk_hook_node;

struct nk_prepare {
    void *data;        /* the caller's */
    nk_prepare_cb cb;  /* private */
    nk_hook_node node; /* private */
};

struct nk_check {
    void *data;        /* the caller's */
    nk_check_cb cb;    /* private */
    nk_hook_node node; /* private */
};

/* Run modes for nk_loop_run. */
enum {
    NK_RUN_DEFAULT = 0, /* until nk_loop_stop() or nothing is active */
    NK_RUN_ONCE = 1,    /* one iteration, waiting for at least one event if any is active */
    NK_RUN_NOWAIT = 2   /* one iteration without blocking */
};

/* Create a loop. backend: "epoll", "uring", "poll", "select", or NULL for $NETKIT_BACKEND when
 * set, else the best available (never "uring", which runs only when named). Unknown name:
 * -EINVAL. A named backend that cannot start is an error, never a silent fallback (uring on a
 * kernel that refuses io_uring: -ENOSYS or -EPERM). */
int nk_loop_new(const char *backend, nk_loop **out);

/* Free a loop. Watchers still active are simply forgotten; the caller owns their memory and fds.
 * Returns 0 (also for NULL), or -EBUSY without touching anything when called while the loop is
 * running, i.e. from inside one of its callbacks: call nk_loop_stop() there and free the loop
 * after nk_loop_run() has returned. Also -EBUSY while an operation (netkit/op.h) is started: its
 * buffers may still be in the kernel's hands. */
int nk_loop_free(nk_loop *loop);

/* Run the loop. Returns 0 when stopped or idle, a negative error if the backend's wait failed.
 * "Active" means: a started nk_io, timer, signal, defer or async that has not been unref'd (see
 * nk_io_unref below), or a started operation (netkit/op.h). */
int nk_loop_run(nk_loop *loop, int mode);

/* Make nk_loop_run return after the current iteration. Safe from any callback. */
void nk_loop_stop(nk_loop *loop);

/* Monotonic milliseconds, cached at the start of each iteration. */
uint64_t nk_loop_now(const nk_loop *loop);
/* Refresh the cached time (for callbacks that run for long). */
void nk_loop_update_time(nk_loop *loop);

/* Name of the backend this loop runs on ("epoll", ...). */
const char *nk_loop_backend(const nk_loop *loop);
/* The highest descriptor this loop's backend can watch: FD_SETSIZE - 1 for select, INT_MAX
 * for backends without such a ceiling. nk_io_start refuses a higher fd with -ERANGE, so a
 * server that accepts connections should stop accepting before the kernel would hand it a
 * descriptor above this (descriptors are allocated lowest first), rather than accept and
 * drop. */
int nk_loop_max_fd(const nk_loop *loop);
/* NULL-terminated list of compiled-in backend names, best first. */
const char *const *nk_loop_backends(void);

/* Number of active watchers that keep nk_loop_run going (started and not unref'd), plus the
 * started operations (netkit/op.h). */
size_t nk_loop_active(const nk_loop *loop);

/* An opaque pointer for the caller. */
void nk_loop_set_data(nk_loop *loop, void *data);
void *nk_loop_data(const nk_loop *loop);

/* ---- I/O watchers ------------------------------------------------------------------------
 * One watcher per fd per loop. nk_io_start with events 0 is the same as nk_io_stop.
 * nk_io_start on an active watcher changes its interest (modify).
 * Errors: -EEXIST (another watcher has this fd), -EBADF (fd < 0), -ERANGE (select: fd >=
 * FD_SETSIZE), -ENOTSUP (NK_EDGE on a backend without it), -ENOMEM. Interest changes are
 * applied in one batch right before the next wait.
 *
 * Stop a watcher before closing its fd. If you don't, the kernel may hand the number to the next
 * file opened, and what the forgotten watcher sees until then depends on the backend (epoll:
 * nothing, the kernel dropped the closed file; poll and select: NK_ERROR while the number is
 * free, then the events of whatever file gets it). What is defined, on every backend: when
 * nk_io_start is called for a watcher on that number and the number now names another file
 * (compared by device and inode, recorded when the old watcher was started), the old watcher is
 * stopped by the loop, without a callback (nk_io_active turns false, so, as for any started
 * watcher, its memory must still be valid until then), and the new watcher gets exactly the new
 * file's events. The same file put back on the number
 * (dup2 of a duplicate) is still the old watcher's: -EEXIST. Known limit (epoll): if the old
 * file is still open elsewhere (a duplicate, a forked child), epoll keeps its registration and
 * may report that file's readiness on the number; stopping before closing avoids all of this. */
void nk_io_init(nk_io *io, int fd, nk_io_cb cb, void *data);
int nk_io_start(nk_loop *loop, nk_io *io, unsigned events);
void nk_io_stop(nk_loop *loop, nk_io *io);
static inline int nk_io_active(const nk_io *io) { return io->events != 0; }

/* ---- Timers --------------------------------------------------------------------------------
 * Fire after timeout_ms (measured from the loop's cached now), then every repeat_ms if non-zero.
 * Starting an active timer restarts it. Timers with the same deadline fire in start order. */
void nk_timer_init(nk_timer *t, nk_timer_cb cb, void *data);
int nk_timer_start(nk_loop *loop, nk_timer *t, uint64_t timeout_ms, uint64_t repeat_ms);
void nk_timer_stop(nk_loop *loop, nk_timer *t);
static inline int nk_timer_active(const nk_timer *t) { return t->slot != SIZE_MAX; }

/* ---- Signals ------------------------------------------------------------------------------
 * The signal is blocked for the calling thread and delivered as a loop event (never inside a
 * signal handler). Several watchers may watch one signal; each is called once per delivery.
 * When the last watcher of a signal stops, it is unblocked again.
 *
 * Children inherit the blocked mask across fork and exec: a program started while the loop
 * watches SIGTERM or SIGINT would start with them blocked and ignore them. Start children with
 * the mask from nk_loop_child_sigmask. */
void nk_signal_init(nk_signal *s, nk_signal_cb cb, void *data);
int nk_signal_start(nk_loop *loop, nk_signal *s, int signum);
void nk_signal_stop(nk_loop *loop, nk_signal *s);

/* The signal mask a child process should start with: the calling thread's mask minus the
 * signals this loop blocked for its watchers (a signal that was already blocked before the loop
 * watched it stays blocked). Call it in the parent before fork, then in the child
 * sigprocmask(SIG_SETMASK, out, NULL) before exec (async-signal-safe); or hand it to
 * posix_spawnattr_setsigmask with POSIX_SPAWN_SETSIGMASK. The loop's signalfd is close-on-exec.
 * Returns 0 or a negative errno. */
int nk_loop_child_sigmask(const nk_loop *loop, sigset_t *out);

/* ---- Deferred callbacks -------------------------------------------------------------------
 * Called once on the next loop iteration (before waiting for I/O, which then does not block).
 * A defer started from inside a deferred callback runs on the iteration after. */
void nk_defer_init(nk_defer *d, nk_defer_cb cb, void *data);
void nk_defer_start(nk_loop *loop, nk_defer *d);
void nk_defer_stop(nk_loop *loop, nk_defer *d);

/* ---- Waking a loop from another thread ------------------------------------------------------
 * nk_async_send(a) asks the loop a is started on to call a's callback, from the loop's thread.
 * Sends that arrive before the loop gets to the callback coalesce into one call (N sends: at
 * least one call, at most N), and every send is followed by at least one call that begins
 * after it, so a callback that looks at shared state (a queue under a mutex, an atomic) after
 * being called sees everything written before the send. The callback runs among the I/O
 * callbacks of an iteration: all started nk_async watchers of a loop share one eventfd, each
 * with its own pending flag, so a wake-up calls exactly the watchers that were sent to (in no
 * promised order). A started nk_async keeps nk_loop_run(NK_RUN_DEFAULT) going, like any
 * watcher; unref it when it should not.
 *
 * Which thread may call what:
 * - nk_async_send: any thread, at any time, and from a signal handler (it is async-signal-safe:
 *   atomic operations and one write(2), errno preserved). On a watcher that is not started
 *   (initialised but never started, or stopped) it does nothing; a send made before
 *   nk_async_start is not remembered. The watcher's memory must stay valid while any thread
 *   may send, and nk_async_init must have returned before (e.g. initialise it before creating
 *   the thread).
 * - nk_async_init, nk_async_start, nk_async_stop, nk_async_ref, nk_async_unref and
 *   nk_async_active: the loop's thread only, like every other call of this header. Stopping is
 *   safe from any callback, including a's own.
 * - nk_async_stop: once it returns, no send is still using the loop (it waits for sends in
 *   progress on other threads, which take a few instructions and one write), so the loop may
 *   then be freed while other threads keep calling nk_async_send on the stopped watcher.
 *   Stop every nk_async before nk_loop_free if any thread may still send: nk_loop_free forgets
 *   started watchers without touching them, and a send to a forgotten one would use the freed
 *   loop.
 *
 * nk_async_start: -EBUSY if a is started on another loop (a no-op on the same loop), or the
 * error of creating the eventfd (first start on a loop) or watching it (-ENOMEM, -ERANGE). */
void nk_async_init(nk_async *a, nk_async_cb cb, void *data);
int nk_async_start(nk_loop *loop, nk_async *a);
void nk_async_stop(nk_loop *loop, nk_async *a);
void nk_async_send(nk_async *a);
static inline int nk_async_active(const nk_async *a) { return a->loop != NULL; }

/* ---- Hooks around the wait: prepare and check -------------------------------------------------
 * One iteration of nk_loop_run, in order:
 *   1. expired timers, then the defers queued before this iteration;
 *   2. (NK_RUN_DEFAULT) return if nothing is active or nk_loop_stop was called;
 *   3. nk_prepare callbacks, right before the loop waits for I/O; the wait's timeout is
 *      computed after them, so a prepare callback that starts a defer or a due timer, or calls
 *      nk_loop_stop, keeps the wait from blocking;
 *   4. the wait, then the I/O callbacks (nk_io, and nk_signal and nk_async, which arrive as
 *      I/O);
 *   5. nk_check callbacks, right after those I/O callbacks (as in libuv: prepare before the
 *      poll, check after the I/O callbacks);
 *   6. timers that expired during the wait.
 * Every iteration that reaches step 3 runs each started prepare once and each started check
 * once, even when the wait did not block. Prepare and check watchers run in start order, may be
 * started and stopped from any callback (a stopped one is not called again, even later in the
 * same pass); one started during its own kind's pass waits for the next iteration. They never
 * keep the loop alive (nk_loop_active does not count them): they observe iterations, they do
 * not make any, and a loop with nothing else to wait for would block forever. Starting a
 * started watcher does nothing. */
void nk_prepare_init(nk_prepare *p, nk_prepare_cb cb, void *data);
void nk_prepare_start(nk_loop *loop, nk_prepare *p);
void nk_prepare_stop(nk_loop *loop, nk_prepare *p);
static inline int nk_prepare_active(const nk_prepare *p) { return p->node.seq != 0; }

/* Check watchers: as prepare watchers, called right after the I/O callbacks (step 5). */
void nk_check_init(nk_check *c, nk_check_cb cb, void *data);
void nk_check_start(nk_loop *loop, nk_check *c);
void nk_check_stop(nk_loop *loop, nk_check *c);
static inline int nk_check_active(const nk_check *c) { return c->node.seq != 0; }

/* ---- References ----------------------------------------------------------------------------
 * A started watcher keeps nk_loop_run(NK_RUN_DEFAULT) going until it stops. An unref'd one does
 * not: it still fires while the loop runs for other reasons, but it is not counted by
 * nk_loop_active, so the loop returns when only unref'd watchers are left (a periodic
 * statistics timer, a listener that should not by itself keep a program alive). The mark is a
 * flag on the watcher, not a counter and not tied to one start: it may be set or cleared
 * whether the watcher is started or not, survives stop and restart, and only *_init clears it.
 * Safe from any callback. */
void nk_io_ref(nk_loop *loop, nk_io *io);
void nk_io_unref(nk_loop *loop, nk_io *io);
void nk_timer_ref(nk_loop *loop, nk_timer *t);
void nk_timer_unref(nk_loop *loop, nk_timer *t);
void nk_signal_ref(nk_loop *loop, nk_signal *s);
void nk_signal_unref(nk_loop *loop, nk_signal *s);
void nk_defer_ref(nk_loop *loop, nk_defer *d);
void nk_defer_unref(nk_loop *loop, nk_defer *d);
void nk_async_ref(nk_loop *loop, nk_async *a);
void nk_async_unref(nk_loop *loop, nk_async *a);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
