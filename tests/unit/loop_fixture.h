/* Shared by the event-loop test files (tests/unit/test_loop_*.c). CMake runs each of those
 * binaries once per backend with NETKIT_BACKEND set; every test creates its loop with the
 * default choice, so the same suites prove the same semantics on each backend. */
#ifndef NETKIT_TEST_LOOP_FIXTURE_H
#define NETKIT_TEST_LOOP_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netkit/loop.h>

#include "backend_skip.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static inline nk_loop *new_loop(void)
{
    nk_loop *loop = NULL;
    assert_int_equal(nk_loop_new(NULL, &loop), 0);
    assert_non_null(loop);
    const char *want = getenv("NETKIT_BACKEND");
    if (want != NULL && want[0] != '\0')
        assert_string_equal(nk_loop_backend(loop), want);
    return loop;
}

static inline int is_backend(const nk_loop *loop, const char *name)
{
    return strcmp(nk_loop_backend(loop), name) == 0;
}

static inline void guard_cb(nk_loop *loop, nk_timer *t)
{
    *(int *)t->data = 1;
    nk_loop_stop(loop);
}

/* One NK_RUN_ONCE iteration that cannot hang: a guard timer ends it after 2 s. Returns whether
 * the guard fired (so a test can assert that the event itself arrived). */
static inline int run_once(nk_loop *loop)
{
    int fired = 0;
    nk_timer guard;
    nk_timer_init(&guard, guard_cb, &fired);
    assert_int_equal(nk_timer_start(loop, &guard, 2000, 0), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    nk_timer_stop(loop, &guard);
    return fired;
}

static inline void nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static inline void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    nonblock(sv[0]);
    nonblock(sv[1]);
}

/* A fresh socket pair with sv[0] on number num (closed before): the kernel hands out the lowest
 * free number, which may be either end, or another; dup2 makes it certain. */
static inline void reopen_on(int num, int sv[2])
{
    make_pair(sv);
    if (sv[1] == num) { /* the two ends are alike: let the end on num be sv[0] */
        sv[1] = sv[0];
        sv[0] = num;
    }
    if (sv[0] != num) {
        assert_int_equal(dup2(sv[0], num), num);
        close(sv[0]);
        sv[0] = num;
    }
}

static inline void put_byte(int fd)
{
    assert_int_equal(write(fd, "x", 1), 1);
}

typedef struct {
    int calls;
    unsigned last;
    unsigned all;
} io_rec;

static inline void rec_cb(nk_loop *loop, nk_io *io, unsigned events)
{
    io_rec *r = io->data;
    r->calls++;
    r->last = events;
    r->all |= events;
}

/* Timers that record their firing order, or count their calls. */
typedef struct {
    int order[64];
    int n;
} order_log;

typedef struct {
    nk_timer t;
    int id;
    order_log *log;
} tagged_timer;

static inline void log_timer_cb(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    tagged_timer *tt = t->data;
    if (tt->log->n < 64)
        tt->log->order[tt->log->n++] = tt->id;
}

static inline void count_timer_cb(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    ++*(int *)t->data;
}

static inline int setup(void **state)
{
    (void)state;
    alarm(30); /* every test is bounded in time, even if the loop under test hangs */
    return 0;
}

static inline int teardown(void **state)
{
    (void)state;
    alarm(0);
    return 0;
}


#endif
