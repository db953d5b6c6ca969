/* Event loop: signals (and the mask children inherit), deferred callbacks, run modes, stops
 * across watchers, and freeing a loop with watchers still active or from inside a callback. */
#include "loop_fixture.h"

/* ---- signals ---------------------------------------------------------------------------- */

typedef struct {
    int calls;
    int signum;
    nk_signal *also_stop;
} sig_rec;

static void sig_cb(nk_loop *loop, nk_signal *s, int signum)
{
    sig_rec *r = s->data;
    r->calls++;
    r->signum = signum;
    if (r->also_stop != NULL) {
        nk_signal_stop(loop, r->also_stop);
        nk_signal_stop(loop, s);
    }
}

static int is_blocked(int signum)
{
    sigset_t cur;
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    return sigismember(&cur, signum);
}

/* Run single iterations until cond or 2 s: signal delivery is asynchronous by nature. */
static void run_until(nk_loop *loop, const int *counter, int want)
{
    for (int i = 0; i < 200 && *counter < want; i++) {
        nk_timer tick;
        nk_timer_init(&tick, count_timer_cb, &(int){0});
        assert_int_equal(nk_timer_start(loop, &tick, 10, 0), 0);
        assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
        nk_timer_stop(loop, &tick);
    }
}

static void test_signal_basic(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    assert_false(is_blocked(SIGUSR1));
    sig_rec r1 = {0}, r2 = {0};
    nk_signal s1, s2;
    nk_signal_init(&s1, sig_cb, &r1);
    nk_signal_init(&s2, sig_cb, &r2);
    assert_int_equal(nk_signal_start(loop, &s1, SIGKILL), -EINVAL);
    assert_int_equal(nk_signal_start(loop, &s1, 0), -EINVAL);
    assert_int_equal(nk_signal_start(loop, &s1, SIGUSR1), 0);
    /* The signalfd's internal watcher does not count; the nk_signal does. */
    assert_int_equal(nk_loop_active(loop), 1);
    assert_true(is_blocked(SIGUSR1));
    assert_int_equal(nk_signal_start(loop, &s2, SIGUSR1), 0);
    assert_int_equal(nk_loop_active(loop), 2);

    assert_int_equal(raise(SIGUSR1), 0); /* would kill the process if not blocked */
    run_until(loop, &r1.calls, 1);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r1.signum, SIGUSR1);

    assert_int_equal(kill(getpid(), SIGUSR1), 0);
    run_until(loop, &r1.calls, 2);
    assert_int_equal(r1.calls, 2);
    assert_int_equal(r2.calls, 2);

    nk_signal_stop(loop, &s2);
    assert_true(is_blocked(SIGUSR1));
    nk_signal_stop(loop, &s1);
    nk_signal_stop(loop, &s1);
    assert_false(is_blocked(SIGUSR1)); /* unblocked with its last watcher */
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    nk_loop_free(loop);
}

static void test_signal_stop_in_callback(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    sig_rec r1 = {0}, r2 = {0};
    nk_signal s1, s2;
    nk_signal_init(&s1, sig_cb, &r1);
    nk_signal_init(&s2, sig_cb, &r2);
    assert_int_equal(nk_signal_start(loop, &s1, SIGTERM), 0);
    assert_int_equal(nk_signal_start(loop, &s2, SIGTERM), 0);
    /* Whichever runs first stops both: the other must not be called. */
    r1.also_stop = &s2;
    r2.also_stop = &s1;
    assert_int_equal(kill(getpid(), SIGTERM), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0); /* returns: nothing active */
    assert_int_equal(r1.calls + r2.calls, 1);
    assert_false(is_blocked(SIGTERM));
    nk_loop_free(loop);
}

static void test_signal_child_and_hup(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    sig_rec chld = {0}, hup = {0};
    nk_signal sc, sh;
    nk_signal_init(&sc, sig_cb, &chld);
    nk_signal_init(&sh, sig_cb, &hup);
    assert_int_equal(nk_signal_start(loop, &sc, SIGCHLD), 0);
    assert_int_equal(nk_signal_start(loop, &sh, SIGHUP), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    run_until(loop, &chld.calls, 1);
    assert_int_equal(chld.calls, 1);
    assert_int_equal(chld.signum, SIGCHLD);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(hup.calls, 0);
    assert_int_equal(raise(SIGHUP), 0);
    run_until(loop, &hup.calls, 1);
    assert_int_equal(hup.calls, 1);
    assert_int_equal(hup.signum, SIGHUP);
    nk_signal_stop(loop, &sc);
    nk_signal_stop(loop, &sh);
    nk_loop_free(loop);
}

/* A child started with fork+exec inherits the blocked mask, so a signal the loop blocked for its
 * signalfd would stay blocked (and a child shell would ignore SIGTERM or Ctrl-C). The loop
 * tells which mask a child should get: the caller's, minus what the loop itself blocked. */
static void test_signal_child_mask(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    sigset_t two, saved;
    sigemptyset(&two);
    sigaddset(&two, SIGUSR2);
    /* Blocked by the program before the loop watched it: the child keeps it blocked. */
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &two, &saved), 0);
    sig_rec r1 = {0}, r2 = {0};
    nk_signal s1, s2;
    nk_signal_init(&s1, sig_cb, &r1);
    nk_signal_init(&s2, sig_cb, &r2);
    assert_int_equal(nk_signal_start(loop, &s1, SIGUSR1), 0);
    assert_int_equal(nk_signal_start(loop, &s2, SIGUSR2), 0);
    assert_true(is_blocked(SIGUSR1));
    sigset_t child;
    assert_int_equal(nk_loop_child_sigmask(loop, &child), 0);

    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. */
        sigset_t cur;
        if (sigprocmask(SIG_SETMASK, &child, NULL) != 0 || sigprocmask(SIG_BLOCK, NULL, &cur) != 0)
            _exit(10);
        if (sigismember(&cur, SIGUSR1))
            _exit(11);
        if (!sigismember(&cur, SIGUSR2))
            _exit(12);
        if (dup2(out[1], STDOUT_FILENO) < 0)
            _exit(13);
        /* grep itself, not through a shell: dash empties its mask at startup and would hide
         * an inherited block. */
        execl("/bin/grep", "grep", "^SigBlk:", "/proc/self/status", (char *)NULL);
        _exit(14);
    }
    close(out[1]);
    char buf[256];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(out[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(out[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* What the exec'd program really runs with: SigBlk is a hex mask, bit (signum - 1). */
    unsigned long long blk = 0;
    assert_int_equal(sscanf(buf, "SigBlk: %llx", &blk), 1);
    assert_false(blk & (1ull << (SIGUSR1 - 1)));
    assert_true(blk & (1ull << (SIGUSR2 - 1)));

    nk_signal_stop(loop, &s1);
    nk_signal_stop(loop, &s2);
    nk_loop_free(loop);
    assert_false(is_blocked(SIGUSR1));
    assert_true(is_blocked(SIGUSR2)); /* still the program's own block */
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &saved, NULL), 0);
}

/* ---- deferred callbacks ----------------------------------------------------------------- */

typedef struct {
    nk_defer d;
    int id;
    order_log *log;
    nk_defer *start_next; /* started from inside the callback */
    nk_defer *stop_other;
} tagged_defer;

static void defer_cb(nk_loop *loop, nk_defer *d)
{
    tagged_defer *td = d->data;
    if (td->log->n < 64)
        td->log->order[td->log->n++] = td->id;
    if (td->start_next)
        nk_defer_start(loop, td->start_next);
    if (td->stop_other)
        nk_defer_stop(loop, td->stop_other);
}

static void test_defer(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    order_log log = {.n = 0};
    tagged_defer d[5];
    memset(d, 0, sizeof d);
    for (int i = 0; i < 5; i++) {
        d[i].id = i;
        d[i].log = &log;
        nk_defer_init(&d[i].d, defer_cb, &d[i]);
    }
    d[0].start_next = &d[4].d; /* runs on the iteration after */
    d[1].stop_other = &d[2].d; /* stops one already queued for this iteration */
    nk_defer_start(loop, &d[0].d);
    nk_defer_start(loop, &d[1].d);
    nk_defer_start(loop, &d[2].d);
    nk_defer_start(loop, &d[3].d);
    nk_defer_start(loop, &d[3].d); /* already pending: no second call */
    assert_int_equal(nk_loop_active(loop), 4);

    /* A timer far away must not make the wait block while defers are pending. */
    nk_timer far;
    int far_calls = 0;
    nk_timer_init(&far, count_timer_cb, &far_calls);
    assert_int_equal(nk_timer_start(loop, &far, 10000, 0), 0);
    uint64_t t0 = nk_loop_now(loop);
    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    assert_true(nk_loop_now(loop) - t0 < 1000);
    assert_int_equal(log.n, 3);
    assert_int_equal(log.order[0], 0);
    assert_int_equal(log.order[1], 1);
    assert_int_equal(log.order[2], 3);
    assert_int_equal(nk_loop_active(loop), 2); /* d[4] and the timer */

    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    assert_true(nk_loop_now(loop) - t0 < 1000);
    assert_int_equal(log.n, 4);
    assert_int_equal(log.order[3], 4);
    nk_timer_stop(loop, &far);

    /* Stopped before it runs: never called. */
    nk_defer_start(loop, &d[2].d);
    nk_defer_start(loop, &d[3].d);
    nk_defer_stop(loop, &d[2].d);
    nk_defer_stop(loop, &d[2].d);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(log.n, 5);
    assert_int_equal(log.order[4], 3);
    assert_int_equal(far_calls, 0);
    nk_loop_free(loop);
}

/* ---- run modes, cross-watcher stops, freeing with watchers ------------------------------ */

static void test_run_modes(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    /* Nothing active: returns at once. */
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(nk_loop_run(loop, 42), -EINVAL);

    /* NOWAIT with a watcher that never becomes ready does not block. */
    int sv[2];
    make_pair(sv);
    io_rec r = {0};
    nk_io io;
    nk_io_init(&io, sv[0], rec_cb, &r);
    assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
    nk_loop_update_time(loop);
    uint64_t t0 = nk_loop_now(loop);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 0);

    /* ONCE waits for the one event there is: a 20 ms timer. */
    int calls = 0;
    nk_timer t;
    nk_timer_init(&t, count_timer_cb, &calls);
    assert_int_equal(nk_timer_start(loop, &t, 20, 0), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    assert_int_equal(calls, 1);
    assert_true(nk_loop_now(loop) >= t0 + 20);
    assert_true(nk_loop_now(loop) < t0 + 2000);
    assert_int_equal(nk_loop_active(loop), 1);
    nk_io_stop(loop, &io);
    nk_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
}

typedef struct {
    nk_timer *timer;
    nk_defer *defer;
    nk_signal *sig;
    nk_io *other_io;
    int calls;
} cross_ctx;

static void cross_io_cb(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    cross_ctx *c = io->data;
    c->calls++;
    nk_timer_stop(loop, c->timer);
    nk_defer_stop(loop, c->defer);
    nk_signal_stop(loop, c->sig);
    nk_io_stop(loop, c->other_io);
    nk_io_stop(loop, io);
}

static void fail_timer_cb(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    (void)t;
    fail_msg("stopped timer ran");
}

static void fail_defer_cb(nk_loop *loop, nk_defer *d)
{
    (void)loop;
    (void)d;
    fail_msg("stopped defer ran");
}

static void fail_signal_cb(nk_loop *loop, nk_signal *s, int signum)
{
    (void)loop;
    (void)s;
    (void)signum;
    fail_msg("stopped signal watcher ran");
}

static void test_cross_stop(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    nk_timer t;
    nk_defer d;
    nk_signal s;
    nk_io io, other;
    cross_ctx c = {.timer = &t, .defer = &d, .sig = &s, .other_io = &other};
    nk_timer_init(&t, fail_timer_cb, NULL);
    nk_defer_init(&d, fail_defer_cb, NULL);
    nk_signal_init(&s, fail_signal_cb, NULL);
    nk_io_init(&io, sv[0], cross_io_cb, &c);
    nk_io_init(&other, sv[1], cross_io_cb, &c);
    assert_int_equal(nk_signal_start(loop, &s, SIGUSR2), 0);
    assert_int_equal(nk_io_start(loop, &io, NK_WRITE), 0);
    assert_int_equal(nk_io_start(loop, &other, NK_WRITE), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0); /* let the io fire first */
    assert_int_equal(c.calls, 1);
    assert_int_equal(nk_loop_active(loop), 0);
    /* Armed after the fact: everything here would fire on the next iteration if still started. */
    assert_int_equal(nk_timer_start(loop, &t, 0, 0), 0);
    nk_defer_start(loop, &d);
    assert_int_equal(nk_io_start(loop, &io, NK_WRITE), 0);
    assert_int_equal(nk_io_start(loop, &other, NK_WRITE), 0);
    assert_int_equal(nk_signal_start(loop, &s, SIGUSR2), 0);
    assert_int_equal(raise(SIGUSR2), 0);
    nk_loop_free(loop); /* freed with everything started: nothing may crash or leak */
    close(sv[0]);
    close(sv[1]);
}

static void test_free_with_active(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    nk_io io;
    nk_timer t;
    nk_defer d;
    nk_signal s;
    nk_io_init(&io, sv[0], rec_cb, NULL);
    nk_timer_init(&t, fail_timer_cb, NULL);
    nk_defer_init(&d, fail_defer_cb, NULL);
    nk_signal_init(&s, fail_signal_cb, NULL);
    assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
    assert_int_equal(nk_timer_start(loop, &t, 1000, 0), 0);
    nk_defer_start(loop, &d);
    assert_int_equal(nk_signal_start(loop, &s, SIGUSR1), 0);
    assert_int_equal(nk_loop_active(loop), 4);
    nk_loop_free(loop);
    assert_false(is_blocked(SIGUSR1)); /* the mask is restored */
    close(sv[0]);
    close(sv[1]);
}

/* Freeing the loop from inside one of its callbacks would pull the loop out from under
 * nk_loop_run: it is refused with -EBUSY, and the loop keeps working. */
typedef struct {
    int calls;
    int rc;
} free_rec;

static void free_in_timer_cb(nk_loop *loop, nk_timer *t)
{
    free_rec *r = t->data;
    r->calls++;
    r->rc = nk_loop_free(loop);
}

static void free_in_io_cb(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    free_rec *r = io->data;
    r->calls++;
    r->rc = nk_loop_free(loop);
    nk_io_stop(loop, io);
}

static void free_in_defer_cb(nk_loop *loop, nk_defer *d)
{
    free_rec *r = d->data;
    r->calls++;
    r->rc = nk_loop_free(loop);
}

static void test_free_inside_callback(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    free_rec rt = {0, 1}, ri = {0, 1}, rd = {0, 1};
    nk_timer t;
    nk_io io;
    nk_defer d;
    nk_timer_init(&t, free_in_timer_cb, &rt);
    nk_io_init(&io, sv[0], free_in_io_cb, &ri);
    nk_defer_init(&d, free_in_defer_cb, &rd);
    assert_int_equal(nk_timer_start(loop, &t, 0, 0), 0);
    assert_int_equal(nk_io_start(loop, &io, NK_WRITE), 0);
    nk_defer_start(loop, &d);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(rt.calls, 1);
    assert_int_equal(ri.calls, 1);
    assert_int_equal(rd.calls, 1);
    assert_int_equal(rt.rc, -EBUSY);
    assert_int_equal(ri.rc, -EBUSY);
    assert_int_equal(rd.rc, -EBUSY);
    /* Still a working loop, and free once it has returned. */
    assert_int_equal(nk_timer_start(loop, &t, 0, 0), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(rt.calls, 2);
    assert_int_equal(rt.rc, -EBUSY);
    assert_int_equal(nk_loop_free(loop), 0);
    assert_int_equal(nk_loop_free(NULL), 0);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    skip_suite_if_backend_refused();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signal_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_stop_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_child_and_hup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_child_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_inside_callback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
