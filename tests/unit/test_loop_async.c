/* Event loop: nk_async, waking a loop from another thread (and from a signal handler). Sends
 * coalesce, every send is followed by a callback, watchers sharing the loop's eventfd are told
 * apart, and a send to a stopped watcher does nothing, even after its loop is freed. */
#include "loop_fixture.h"

#include <netkit/op.h>

#include <time.h>

typedef struct {
    int calls;
    nk_async *also_stop; /* stopped (with itself) from the callback */
} async_rec;

static void async_rec_cb(nk_loop *loop, nk_async *a)
{
    async_rec *r = a->data;
    r->calls++;
    if (r->also_stop != NULL) {
        nk_async_stop(loop, r->also_stop);
        nk_async_stop(loop, a);
    }
}

static void fail_async_cb(nk_loop *loop, nk_async *a)
{
    (void)loop;
    (void)a;
    fail_msg("an async watcher that was not sent to was called");
}

static void fail_guard_cb(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    (void)t;
    fail_msg("timed out waiting for an async callback");
}

/* A guard that ends a hung test without keeping the loop alive by itself. */
static void guard_start(nk_loop *loop, nk_timer *guard, uint64_t ms)
{
    nk_timer_init(guard, fail_guard_cb, NULL);
    assert_int_equal(nk_timer_start(loop, guard, ms, 0), 0);
    nk_timer_unref(loop, guard);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* From the loop's own thread: three sends before the loop runs make one call. */
static void test_async_coalesce(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    async_rec r = {0};
    nk_async a;
    nk_async_init(&a, async_rec_cb, &r);
    nk_async_send(&a); /* not started: not remembered */
    assert_false(nk_async_active(&a));
    assert_int_equal(nk_async_start(loop, &a), 0);
    assert_int_equal(nk_async_start(loop, &a), 0); /* already started here: no-op */
    assert_true(nk_async_active(&a));
    assert_int_equal(nk_loop_active(loop), 1); /* the watcher, not the eventfd's plumbing */
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 0);

    nk_async_send(&a);
    nk_async_send(&a);
    nk_async_send(&a);
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 1);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 1); /* the eventfd was drained: no second call */
    nk_async_send(&a);
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 2);

    /* Another loop cannot take it while it is started here. */
    nk_loop *other = new_loop();
    assert_int_equal(nk_async_start(other, &a), -EBUSY);
    nk_async_stop(other, &a); /* not its watcher: ignored */
    assert_true(nk_async_active(&a));
    nk_async_stop(loop, &a);
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_async_start(other, &a), 0);
    nk_async_send(&a);
    assert_false(run_once(other));
    assert_int_equal(r.calls, 3);
    nk_async_stop(other, &a);
    nk_loop_free(other);
    nk_loop_free(loop);
}

/* A thread sends N times, pausing now and then so that the sends span many iterations. Each
 * call looks at the number of the send the thread was making; it stops its watcher when it
 * sees the last one, which only a call after the last send can (the thread pauses 20 ms right
 * before it, so no earlier call is still running then). */
enum { NSENDS = 5000 };

typedef struct {
    nk_async a, other;
    unsigned seq; /* atomic: the number of the send about to be made */
    int calls;
    unsigned max_seen;
} async_thread_ctx;

static void *sender_main(void *arg)
{
    async_thread_ctx *c = arg;
    for (unsigned i = 1; i <= NSENDS; i++) {
        if (i == NSENDS)
            sleep_us(20000);
        else if (i % 250 == 0)
            sleep_us(200);
        __atomic_store_n(&c->seq, i, __ATOMIC_SEQ_CST);
        nk_async_send(&c->a);
    }
    return NULL;
}

static void thread_cb(nk_loop *loop, nk_async *a)
{
    async_thread_ctx *c = a->data;
    c->calls++;
    unsigned seen = __atomic_load_n(&c->seq, __ATOMIC_SEQ_CST);
    if (seen > c->max_seen)
        c->max_seen = seen;
    if (seen == NSENDS)
        nk_async_stop(loop, a);
}

static void test_async_from_thread(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    async_thread_ctx c = {.calls = 0};
    nk_async_init(&c.a, thread_cb, &c);
    nk_async_init(&c.other, fail_async_cb, NULL); /* shares the eventfd, never sent to */
    assert_int_equal(nk_async_start(loop, &c.other), 0);
    nk_async_unref(loop, &c.other);
    assert_int_equal(nk_async_start(loop, &c.a), 0);
    nk_timer guard;
    guard_start(loop, &guard, 10000);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sender_main, &c), 0);
    /* Returns when the callback has stopped the only referenced watcher. */
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(pthread_join(th, NULL), 0);

    assert_int_equal(c.max_seen, NSENDS);
    assert_true(c.calls >= 1);
    assert_true(c.calls <= NSENDS);
    assert_false(nk_async_active(&c.a));
    nk_async_send(&c.a); /* stopped: nothing */
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    nk_async_stop(loop, &c.other);
    nk_timer_stop(loop, &guard);
    nk_loop_free(loop);
}

/* Two pending watchers, the first called stops both: the other is not called. */
static void test_async_stop_in_callback(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    async_rec r1 = {0}, r2 = {0};
    nk_async a1, a2;
    nk_async_init(&a1, async_rec_cb, &r1);
    nk_async_init(&a2, async_rec_cb, &r2);
    r1.also_stop = &a2;
    r2.also_stop = &a1;
    assert_int_equal(nk_async_start(loop, &a1), 0);
    assert_int_equal(nk_async_start(loop, &a2), 0);
    nk_async_send(&a1);
    nk_async_send(&a2);
    nk_timer guard;
    guard_start(loop, &guard, 5000);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0); /* nothing left active */
    assert_int_equal(r1.calls + r2.calls, 1);
    assert_int_equal(nk_loop_active(loop), 0);

    /* Sends to stopped watchers: nothing, now or after a restart. */
    nk_async_send(&a1);
    nk_async_send(&a2);
    r1.also_stop = r2.also_stop = NULL;
    assert_int_equal(nk_async_start(loop, &a1), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r1.calls + r2.calls, 1);
    nk_async_send(&a1);
    assert_false(run_once(loop));
    assert_int_equal(r1.calls + r2.calls, 2);
    nk_async_stop(loop, &a1);
    nk_async_stop(loop, &a1);
    nk_timer_stop(loop, &guard);
    nk_loop_free(loop);
}

/* Stopped, then its loop freed: a send must not touch the loop (ASan sees it if it does). */
static void test_async_send_after_free(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    nk_async a, never;
    nk_async_init(&a, fail_async_cb, NULL);
    nk_async_init(&never, fail_async_cb, NULL);
    assert_int_equal(nk_async_start(loop, &a), 0);
    nk_async_stop(loop, &a);
    assert_int_equal(nk_loop_free(loop), 0);
    nk_async_send(&a);
    nk_async_send(&never);
    assert_false(nk_async_active(&a));
}

/* A started watcher keeps the loop alive unless unref'd. */
static void test_async_unref(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    async_rec r = {0};
    nk_async a;
    nk_async_init(&a, async_rec_cb, &r);
    nk_async_unref(loop, &a);
    assert_int_equal(nk_async_start(loop, &a), 0);
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0); /* at once */
    nk_async_ref(loop, &a);
    assert_int_equal(nk_loop_active(loop), 1);
    nk_async_stop(loop, &a);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_loop_free(loop);
}

/* From a signal handler: the handler only sends; the callback runs on the loop. */
static void send_handler(int signum, siginfo_t *si, void *uctx)
{
    (void)signum;
    (void)uctx;
    nk_async_send(si->si_value.sival_ptr);
}

static void test_async_from_signal_handler(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    async_rec r = {0};
    nk_async a;
    nk_async_init(&a, async_rec_cb, &r);
    assert_int_equal(nk_async_start(loop, &a), 0);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = send_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR2, &sa, &old), 0);
    errno = 12345;
    assert_int_equal(sigqueue(getpid(), SIGUSR2, (union sigval){.sival_ptr = &a}), 0);
    assert_int_equal(errno, 12345); /* delivered by now, and the handler kept errno */
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 1);
    assert_int_equal(sigaction(SIGUSR2, &old, NULL), 0);
    nk_async_stop(loop, &a);
    nk_loop_free(loop);
}

/* Stop and restart while two threads keep sending: a stop must wait for the sends in flight,
 * and a restart must not inherit a stale pending flag. Bounded in count and time. */
enum { NRESTARTS = 300, STORM_MAX = 20000000, STORM_MS = 5000 };

typedef struct {
    nk_async a;
    int restarts;
    int done;    /* atomic: the senders stop when set */
    int senders; /* atomic: senders still sending */
    unsigned last_sent; /* atomic: set by main once senders stopped, with one final send */
    int final_seen;
} storm_ctx;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *storm_main(void *arg)
{
    storm_ctx *c = arg;
    uint64_t end = mono_ms() + STORM_MS;
    for (int i = 0; i < STORM_MAX && !__atomic_load_n(&c->done, __ATOMIC_SEQ_CST); i++) {
        nk_async_send(&c->a);
        if (i % 1024 == 0 && mono_ms() > end)
            break;
    }
    __atomic_fetch_sub(&c->senders, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void storm_cb(nk_loop *loop, nk_async *a)
{
    storm_ctx *c = a->data;
    if (__atomic_load_n(&c->last_sent, __ATOMIC_SEQ_CST)) {
        c->final_seen = 1;
        nk_async_stop(loop, a);
        return;
    }
    nk_async_stop(loop, a);
    if (++c->restarts < NRESTARTS)
        assert_int_equal(nk_async_start(loop, a), 0);
    else
        __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
}

static void test_async_stop_while_sending(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    storm_ctx c = {.restarts = 0};
    nk_async_init(&c.a, storm_cb, &c);
    assert_int_equal(nk_async_start(loop, &c.a), 0);
    nk_timer guard;
    guard_start(loop, &guard, 20000);
    pthread_t th[2];
    c.senders = 2;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, storm_main, &c), 0);
    /* Each call restarts the watcher until NRESTARTS. The senders are bounded in time, so
     * each iteration is too (a 50 ms tick), in case they give up first on a slow machine. */
    nk_timer tick;
    nk_timer_init(&tick, count_timer_cb, &(int){0});
    while (c.restarts < NRESTARTS && __atomic_load_n(&c.senders, __ATOMIC_SEQ_CST) > 0) {
        assert_int_equal(nk_timer_start(loop, &tick, 50, 0), 0);
        assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    }
    nk_timer_stop(loop, &tick);
    __atomic_store_n(&c.done, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    /* With every sender gone, one more start and send still makes exactly one call. */
    if (!nk_async_active(&c.a))
        assert_int_equal(nk_async_start(loop, &c.a), 0);
    __atomic_store_n(&c.last_sent, 1, __ATOMIC_SEQ_CST);
    nk_async_send(&c.a);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(c.final_seen, 1);
    nk_timer_stop(loop, &guard);
    nk_loop_free(loop);
}

/* A loop moves between threads, one at a time (netkit/loop.h, "Threading"): made and first run
 * here, run in another thread, then here again; a watcher and a receive operation started in
 * one thread are served in the next. On uring this is what IORING_SETUP_SINGLE_ISSUER and
 * DEFER_TASKRUN would break (the ring's first issuer would be its only one, and the other
 * thread's io_uring_enter would fail with -EEXIST): docs/loop.md, "io_uring backend". */
typedef struct {
    nk_loop *loop;
    int a[2], b[2];   /* a: the watcher's pair, b: the operation's */
    nk_io io;
    nk_op op;
    int io_calls;
    ssize_t op_result; /* 0 until the receive's callback */
    char buf[8];
    int rc;            /* the other thread's first failure, 0 if none */
} move_ctx;

static void move_io_cb(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    move_ctx *c = io->data;
    char byte;
    if (read(io->fd, &byte, 1) == 1)
        c->io_calls++;
}

static void move_op_cb(nk_loop *loop, nk_op *op, ssize_t result)
{
    (void)loop;
    move_ctx *c = op->data;
    c->op_result = result == 0 ? -EPIPE : result; /* 0 bytes would read as "not yet" */
}

/* One NK_RUN_ONCE with a guard: 0, or -ETIMEDOUT, or nk_loop_run's error. */
static int move_run_once(nk_loop *loop)
{
    int fired = 0;
    nk_timer guard;
    nk_timer_init(&guard, guard_cb, &fired);
    int rc = nk_timer_start(loop, &guard, 2000, 0);
    if (rc == 0)
        rc = nk_loop_run(loop, NK_RUN_ONCE);
    nk_timer_stop(loop, &guard);
    return rc < 0 ? rc : fired ? -ETIMEDOUT : 0;
}

/* A byte to the watcher and one to the receive (started here), both served by this thread's
 * runs: 0, or the first failure. No cmocka assertions: it also runs off the main thread. */
static int move_step(move_ctx *c, int want_calls)
{
    c->op_result = 0;
    int rc = nk_op_recv(c->loop, &c->op, c->b[0], c->buf, sizeof c->buf);
    if (rc < 0)
        return rc;
    if (write(c->a[1], "x", 1) != 1 || write(c->b[1], "y", 1) != 1)
        return -errno;
    for (int spins = 0; spins < 10 && (c->io_calls < want_calls || c->op_result == 0); spins++)
        if ((rc = move_run_once(c->loop)) < 0)
            return rc;
    if (c->io_calls != want_calls)
        return -EPROTO;
    return c->op_result == 1 && c->buf[0] == 'y' ? 0 : -EBADMSG;
}

static void *move_main(void *arg)
{
    move_ctx *c = arg;
    c->rc = move_step(c, 2);
    return NULL;
}

static void test_loop_moves_between_threads(void **state)
{
    (void)state;
    move_ctx c = {.loop = new_loop()};
    make_pair(c.a);
    make_pair(c.b);
    nk_io_init(&c.io, c.a[0], move_io_cb, &c);
    nk_op_init(&c.op, move_op_cb, &c);
    assert_int_equal(nk_io_start(c.loop, &c.io, NK_READ), 0);
    assert_int_equal(move_step(&c, 1), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, move_main, &c), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(c.rc, 0);
    assert_int_equal(move_step(&c, 3), 0);
    nk_io_stop(c.loop, &c.io);
    assert_int_equal(nk_loop_run(c.loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(nk_loop_active(c.loop), 0);
    nk_loop_free(c.loop);
    for (int i = 0; i < 2; i++) {
        close(c.a[i]);
        close(c.b[i]);
    }
}

int main(void)
{
    skip_suite_if_backend_refused();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_async_coalesce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_from_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_stop_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_send_after_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_unref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_from_signal_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_stop_while_sending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_moves_between_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
