/* Event loop: prepare and check watchers around the wait. Every callback appends a letter to
 * one log, and each test compares the log of an iteration with the documented order: timers,
 * defers, prepare, I/O (io, async), check, timers expired during the wait. */
#include "loop_fixture.h"

typedef struct {
    char s[128];
    size_t n;
} seq_log;

static void seq_put(seq_log *log, char c)
{
    if (log->n + 1 < sizeof log->s) {
        log->s[log->n++] = c;
        log->s[log->n] = '\0';
    }
}

static void seq_clear(seq_log *log)
{
    log->n = 0;
    log->s[0] = '\0';
}

/* Each watcher kind gets a letter; the watcher's data points at one of these. */
typedef struct {
    seq_log *log;
    char letter;
    void (*also)(nk_loop *loop, void *arg); /* an extra action, once */
    void *arg;
} tag;

static void tag_hit(nk_loop *loop, tag *t)
{
    seq_put(t->log, t->letter);
    if (t->also) {
        void (*also)(nk_loop *, void *) = t->also;
        t->also = NULL;
        also(loop, t->arg);
    }
}

static void prepare_cb(nk_loop *loop, nk_prepare *p) { tag_hit(loop, p->data); }
static void check_cb(nk_loop *loop, nk_check *c) { tag_hit(loop, c->data); }
static void defer_tag_cb(nk_loop *loop, nk_defer *d) { tag_hit(loop, d->data); }
static void timer_tag_cb(nk_loop *loop, nk_timer *t) { tag_hit(loop, t->data); }
static void async_tag_cb(nk_loop *loop, nk_async *a) { tag_hit(loop, a->data); }

static void io_tag_cb(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    tag_hit(loop, io->data);
}

/* Extra actions for a tag. A timer meant to expire during a wait is started by a prepare
 * callback: its iteration's first timer pass is over by then, whereas one started before
 * nk_loop_run is measured from the loop's cached now and, on a slow or loaded machine
 * (valgrind), may be due before the iteration begins, where it rightly runs first. */
static void start_timer_10ms(nk_loop *loop, void *arg)
{
    assert_int_equal(nk_timer_start(loop, arg, 10, 0), 0);
}

static void start_timer_20ms(nk_loop *loop, void *arg)
{
    assert_int_equal(nk_timer_start(loop, arg, 20, 0), 0);
}

static void stop_timer(nk_loop *loop, void *arg) { nk_timer_stop(loop, arg); }

static void test_hooks_order(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    seq_log log = {.n = 0};
    tag tp = {&log, 'P', NULL, NULL}, tc = {&log, 'C', NULL, NULL}, td = {&log, 'D', NULL, NULL},
        tw = {&log, 'W', NULL, NULL}, tt = {&log, 'T', NULL, NULL}, ta = {&log, 'A', NULL, NULL};
    int sv[2];
    make_pair(sv);
    nk_prepare p;
    nk_check c;
    nk_defer d;
    nk_io io;
    nk_timer t;
    nk_async a;
    nk_prepare_init(&p, prepare_cb, &tp);
    nk_check_init(&c, check_cb, &tc);
    nk_defer_init(&d, defer_tag_cb, &td);
    nk_io_init(&io, sv[0], io_tag_cb, &tw);
    nk_timer_init(&t, timer_tag_cb, &tt);
    nk_async_init(&a, async_tag_cb, &ta);
    nk_prepare_start(loop, &p);
    nk_check_start(loop, &c);
    assert_true(nk_prepare_active(&p));
    assert_true(nk_check_active(&c));
    nk_defer_start(loop, &d);
    assert_int_equal(nk_io_start(loop, &io, NK_WRITE), 0);

    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    assert_string_equal(log.s, "DPWC"); /* defers, prepare, I/O, check */
    seq_clear(&log);
    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    assert_string_equal(log.s, "PWC");
    nk_io_stop(loop, &io);

    /* A timer that expires during the wait runs after check. */
    seq_clear(&log);
    tp.also = start_timer_10ms;
    tp.arg = &t;
    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    assert_string_equal(log.s, "PCT");

    /* One already due when the iteration begins runs first; ONCE then only polls. */
    seq_clear(&log);
    assert_int_equal(nk_timer_start(loop, &t, 0, 0), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    assert_string_equal(log.s, "TPC");

    /* Async callbacks are I/O callbacks: between prepare and check. */
    seq_clear(&log);
    assert_int_equal(nk_async_start(loop, &a), 0);
    nk_async_send(&a);
    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    assert_string_equal(log.s, "PAC");
    nk_async_stop(loop, &a);

    /* NOWAIT is an iteration too: both run, once. */
    seq_clear(&log);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_string_equal(log.s, "PC");

    nk_prepare_stop(loop, &p);
    nk_check_stop(loop, &c);
    nk_prepare_stop(loop, &p);
    assert_false(nk_prepare_active(&p));
    assert_false(nk_check_active(&c));
    seq_clear(&log);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_string_equal(log.s, "");
    nk_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
}

/* Hooks never keep the loop alive. */
static void test_hooks_not_active(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    seq_log log = {.n = 0};
    tag tp = {&log, 'P', NULL, NULL}, tc = {&log, 'C', NULL, NULL}, tt = {&log, 'T', NULL, NULL};
    nk_prepare p;
    nk_check c;
    nk_prepare_init(&p, prepare_cb, &tp);
    nk_check_init(&c, check_cb, &tc);
    nk_prepare_start(loop, &p);
    nk_prepare_start(loop, &p); /* already started: no second call per pass */
    nk_check_start(loop, &c);
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0); /* at once, nothing called */
    assert_string_equal(log.s, "");

    /* With a 20 ms timer: one iteration or more, each with a prepare and a check. A far timer
     * keeps the loop alive until prepare has started the 20 ms one (see start_timer_10ms for
     * why there), and that one's callback stops it: after it only the hooks are left. */
    nk_timer t, far;
    nk_timer_init(&t, timer_tag_cb, &tt);
    nk_timer_init(&far, count_timer_cb, &(int){0});
    assert_int_equal(nk_timer_start(loop, &far, 60000, 0), 0);
    tp.also = start_timer_20ms;
    tp.arg = &t;
    tt.also = stop_timer;
    tt.arg = &far;
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_false(nk_timer_active(&far));
    assert_true(log.n >= 3);
    assert_int_equal(log.s[log.n - 1], 'T');
    for (size_t i = 0; i + 1 < log.n; i++)
        assert_int_equal(log.s[i], i % 2 == 0 ? 'P' : 'C');
    nk_prepare_stop(loop, &p);
    nk_check_stop(loop, &c);
    nk_loop_free(loop);
}

/* What a prepare callback does counts for the wait that follows it. */
static void start_defer(nk_loop *loop, void *arg) { nk_defer_start(loop, arg); }
static void stop_loop(nk_loop *loop, void *arg)
{
    (void)arg;
    nk_loop_stop(loop);
}

static void test_prepare_shapes_the_wait(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    seq_log log = {.n = 0};
    tag tp = {&log, 'P', NULL, NULL}, tc = {&log, 'C', NULL, NULL}, td = {&log, 'D', NULL, NULL};
    nk_prepare p;
    nk_check c;
    nk_defer d;
    nk_prepare_init(&p, prepare_cb, &tp);
    nk_check_init(&c, check_cb, &tc);
    nk_defer_init(&d, defer_tag_cb, &td);
    nk_prepare_start(loop, &p);
    nk_check_start(loop, &c);
    nk_timer far;
    int far_calls = 0;
    nk_timer_init(&far, count_timer_cb, &far_calls);
    assert_int_equal(nk_timer_start(loop, &far, 5000, 0), 0);

    /* A defer started by prepare: the wait does not block; the defer runs next iteration. */
    tp.also = start_defer;
    tp.arg = &d;
    nk_loop_update_time(loop);
    uint64_t t0 = nk_loop_now(loop);
    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    assert_true(nk_loop_now(loop) - t0 < 1000);
    assert_string_equal(log.s, "PC");
    seq_clear(&log);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_string_equal(log.s, "DPC");

    /* nk_loop_stop from prepare: DEFAULT returns after this iteration, without blocking. */
    seq_clear(&log);
    tp.also = stop_loop;
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_true(nk_loop_now(loop) - t0 < 1000);
    assert_string_equal(log.s, "PC");
    assert_int_equal(far_calls, 0);

    nk_timer_stop(loop, &far);
    nk_prepare_stop(loop, &p);
    nk_check_stop(loop, &c);
    nk_loop_free(loop);
}

/* Start and stop from callbacks: a stopped one is not called later in the same pass, one
 * started during its own kind's pass waits for the next iteration, and a check started by an
 * I/O callback runs in the same iteration (its pass has not begun). */
typedef struct {
    nk_prepare p1, p2, p3;
    nk_check c1, c2;
    tag t1, t2, t3, tc1, tc2, tw;
} hooks_ctx;

static void p1_cb(nk_loop *loop, nk_prepare *p)
{
    hooks_ctx *h = p->data;
    seq_put(h->t1.log, '1');
    nk_prepare_stop(loop, &h->p2);
    nk_prepare_start(loop, &h->p3);
    nk_prepare_stop(loop, p);
}

static void p2_cb(nk_loop *loop, nk_prepare *p)
{
    (void)loop;
    hooks_ctx *h = p->data;
    seq_put(h->t2.log, '2');
}

static void p3_cb(nk_loop *loop, nk_prepare *p)
{
    (void)loop;
    hooks_ctx *h = p->data;
    seq_put(h->t3.log, '3');
}

static void c1_cb(nk_loop *loop, nk_check *c)
{
    hooks_ctx *h = c->data;
    seq_put(h->tc1.log, 'c');
    nk_check_stop(loop, c); /* its own: called once */
}

static void c2_cb(nk_loop *loop, nk_check *c)
{
    (void)loop;
    hooks_ctx *h = c->data;
    seq_put(h->tc2.log, 'k');
}

static void io_starts_check(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    hooks_ctx *h = io->data;
    seq_put(h->tw.log, 'W');
    nk_check_start(loop, &h->c2);
    nk_io_stop(loop, io);
}

static void test_hooks_start_stop_in_callbacks(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    seq_log log = {.n = 0};
    hooks_ctx h;
    memset(&h, 0, sizeof h);
    h.t1.log = h.t2.log = h.t3.log = h.tc1.log = h.tc2.log = h.tw.log = &log;
    nk_prepare_init(&h.p1, p1_cb, &h);
    nk_prepare_init(&h.p2, p2_cb, &h);
    nk_prepare_init(&h.p3, p3_cb, &h);
    nk_check_init(&h.c1, c1_cb, &h);
    nk_check_init(&h.c2, c2_cb, &h);
    int sv[2];
    make_pair(sv);
    nk_io io;
    nk_io_init(&io, sv[0], io_starts_check, &h);
    assert_int_equal(nk_io_start(loop, &io, NK_WRITE), 0);
    nk_prepare_start(loop, &h.p1);
    nk_prepare_start(loop, &h.p2);
    nk_check_start(loop, &h.c1);

    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_string_equal(log.s, "1Wck"); /* not 2 (stopped), not 3 (started in the pass) */
    assert_false(nk_prepare_active(&h.p1));
    assert_false(nk_check_active(&h.c1));
    seq_clear(&log);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_string_equal(log.s, "3k");

    nk_prepare_stop(loop, &h.p3);
    nk_check_stop(loop, &h.c2);
    nk_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    skip_suite_if_backend_refused();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hooks_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hooks_not_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_shapes_the_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hooks_start_stop_in_callbacks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
