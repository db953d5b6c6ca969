/* The loop's private state, shared by loop.c, timer.c and signal.c (internal). */
#ifndef NETKIT_LOOP_INTERNAL_H
#define NETKIT_LOOP_INTERNAL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <netkit/loop.h>
#include <netkit/op.h>

#include "loop/backend.h"

/* One slot of the fd table, indexed by fd. */
typedef struct {
    nk_io *io;           /* the started watcher, NULL when none */
    unsigned registered; /* interest the backend currently has */
    unsigned gen;        /* bumped on every stop: tells a fired event from a later watcher */
    unsigned char queued;  /* already in the change queue */
    unsigned char stopped; /* stopped since the last batch: the fd may have been reused */
} nk__fdent;

/* The file an fd slot's watcher was started on, as fstat saw it then (once per start from
 * inactive, never per event). It tells a number that was closed without nk_io_stop and handed
 * to another file from a second watcher on the same file (-EEXIST). Kept out of nk__fdent so
 * dispatch touches no more memory than before. */
typedef struct {
    dev_t dev;
    ino_t ino;
    int known; /* 0: the fd was not open at start time */
} nk__fdid;

typedef struct {
    int fd; /* signalfd, -1 until the first nk_signal_start */
    nk_io io;
    sigset_t watched;       /* the signalfd's mask */
    sigset_t blocked_by_us; /* watched signals that were not blocked before we started */
    nk_signal *heads[NSIG]; /* watchers per signal, newest first */
    nk_signal *cursor;      /* next watcher during delivery, moved on by nk_signal_stop */
    size_t count;           /* started nk_signal watchers */
} nk__sigstate;

typedef struct {
    int fd; /* eventfd shared by every nk_async, -1 until the first nk_async_start */
    nk_io io;
    nk_async *head, *tail; /* started watchers, in start order */
    nk_async *cursor;      /* next watcher during a wake-up, moved on by nk_async_stop */
    size_t count;          /* started nk_async watchers */
} nk__asyncstate;

typedef struct {
    nk_hook_node *head, *tail; /* started watchers, in start order */
    nk_hook_node *cursor;      /* next watcher during a pass, moved on by a stop */
} nk__hooklist;

/* Completion-based operations (op.c, op_uring.c). */
struct nk__opfd;
struct nk__uring_ops;
struct nk__files;
typedef struct {
    struct nk__opfd **fds; /* per descriptor: its queues and the emulation's watcher */
    int nfds;
    nk_op *done_head, *done_tail; /* emulated completions waiting for their callbacks */
    nk_op *done_run;              /* the part of that list being called back now */
    size_t active;                /* started operations, those being cancelled included */
    size_t pools;                 /* receive buffer pools not yet freed (op_pool.c) */
    struct nk__uring_ops *native; /* uring: created by the first native operation */
    struct nk__files *files;      /* other backends: the file thread, from the first file step */
} nk__opstate;

struct nk_loop {
    const nk_backend *be;
    void *bstate;
    void *data;
    uint64_t now;
    int stop;
    int running; /* nesting depth of nk_loop_run: nk_loop_free refuses while non-zero */

    /* fd table; ids[], changes[], fired[] and fired_gen[] have the same capacity, so queueing a
     * change (at most once per fd) never allocates and nk_io_stop cannot fail. */
    nk__fdent *fds;
    nk__fdid *ids;
    int nfds;
    int *changes;
    int nchanges;
    nk_fired *fired;
    unsigned *fired_gen;
    size_t io_active;
    size_t unref_active; /* started watchers of every kind that are unref'd */

    nk_timer **heap;
    size_t nheap, capheap;
    uint64_t timer_seq;

    nk_defer *defer_head, *defer_tail; /* for the next iteration */
    nk_defer *defer_run;               /* being run in this iteration */
    size_t defer_active;

    nk__sigstate sig;
    nk__asyncstate async;

    nk__hooklist prepares, checks;
    uint64_t hook_seq; /* start order of prepare and check watchers */

    nk__opstate ops;
};

/* Watcher flags (the private 'flags' field of every watcher). */
enum { NK__UNREF = 1u << 0 };

/* Called when a watcher becomes active or inactive: an unref'd one is counted apart, so that
 * nk_loop_active can subtract it. Branch-free, so watchers never unref'd cost one add. */
static inline void nk__unref_started(nk_loop *loop, unsigned flags)
{
    loop->unref_active += flags & NK__UNREF;
}

static inline void nk__unref_stopped(nk_loop *loop, unsigned flags)
{
    loop->unref_active -= flags & NK__UNREF;
}

/* timer.c */
int nk__timer_timeout(const nk_loop *loop); /* ms until the nearest timer, -1 if none */
int nk__timers_run(nk_loop *loop); /* returns the number of callbacks run */
void nk__timers_free(nk_loop *loop);

/* signal.c */
void nk__signals_init(nk_loop *loop);
void nk__signals_free(nk_loop *loop);

/* hook.c: run the prepare (check) watchers started before this pass */
void nk__prepares_run(nk_loop *loop);
void nk__checks_run(nk_loop *loop);

/* op.c: operations' completions, called back around the wait (see op_internal.h) */
int nk__ops_run_done(nk_loop *loop); /* returns the number of callbacks run */
void nk__ops_submit(nk_loop *loop);   /* uring: write queued requests into the SQ */
void nk__ops_reap(nk_loop *loop);     /* uring: call back what the wait reaped */
void nk__ops_free(nk_loop *loop);

/* async.c */
void nk__asyncs_init(nk_loop *loop);
void nk__asyncs_free(nk_loop *loop);

#endif
