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

/* One slot of the fd table, indexed by fd. 24 bytes: the identity fields fill what was the
 * padding after the two flags, so they cost no memory per descriptor. */
typedef struct {
    nk_io *io;           /* the started watcher, NULL when none */
    unsigned registered; /* interest the backend currently has */
    unsigned gen;        /* bumped on every stop: tells a fired event from a later watcher */
    unsigned char queued;  /* already in the change queue */
    unsigned char stopped; /* stopped since the last batch: the fd may have been reused */
    /* The file the watcher was started on, with its inode in the loop's ids[] (see fd_remember
     * in loop.c): 0 when the fd was not open at start time. */
    unsigned char known;
    uint32_t dev; /* its device, folded to 32 bits (exact for Linux's st_dev: nk__dev32) */
} nk__fdent;

/* Linux's stat reports st_dev in the kernel's own 32-bit encoding (a 12-bit major, a 20-bit
 * minor; glibc's makedev of those numbers stays below 2^32), so the fold below is exact there;
 * elsewhere two devices would have to agree in the folded bits and share the inode number too
 * for a reused fd to pass for the same file. */
static inline uint32_t nk__dev32(dev_t dev)
{
    uint64_t d = (uint64_t)dev;
    return (uint32_t)(d ^ (d >> 32));
}

/* ids[fd]: the inode of the file an fd slot's watcher was started on, as fstat saw it then
 * (once per start from inactive, never per event); its device and whether it was known are in
 * the slot. Together they tell a number that was closed without nk_io_stop and handed to
 * another file from a second watcher on the same file (-EEXIST). The inode is kept out of
 * nk__fdent, which has no room left for it, and is read only on that rare path. */
typedef ino_t nk__fdid;

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

    /* fd table; ids[] and changes[] have the same capacity, so queueing a change (at most once
     * per fd) never allocates and nk_io_stop cannot fail. */
    nk__fdent *fds;
    nk__fdid *ids;
    int nfds;
    int *changes;
    int nchanges;
    /* One wait's ready descriptors: NK__LOOP_FIRED_MAX entries, allocated once; a wait takes at
     * most fired_max of them (nk__loop_set_fired_max). */
    nk_fired *fired;
    unsigned *fired_gen;
    int fired_max;
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

/* At most this many ready descriptors per wait (libuv takes 1024, nginx 512): the per-wait
 * arrays, the loop's and the backend's, stay this size instead of growing with the fd table
 * (they cost 24 bytes per descriptor that way). More ready descriptors than this are not lost:
 * level-triggered ones are still ready at the next wait, and every backend leaves what it did
 * not report where the next wait finds it first (epoll's and uring's kernel queues; poll and
 * select go on scanning where they stopped). */
#ifndef NK__LOOP_FIRED_MAX
#define NK__LOOP_FIRED_MAX 1024
#endif

/* Lower the number of ready descriptors a wait takes, from NK__LOOP_FIRED_MAX down to 1 (the
 * tests use it to put many more ready descriptors than that in front of one wait). */
void nk__loop_set_fired_max(nk_loop *loop, int max);

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
