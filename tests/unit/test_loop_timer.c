/* Event loop: timers (order, FIFO ties, cancel, restart, repeat, stop inside callbacks, many
 * timers) and nk_loop_stop. */
#include "loop_fixture.h"

/* ---- timers ----------------------------------------------------------------------------- */

static void test_timer_order_and_fifo(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    order_log log = {.n = 0};
    tagged_timer t[8];
    const uint64_t timeouts[8] = {30, 10, 20, 5, 5, 5, 5, 0};
    for (int i = 0; i < 8; i++) {
        t[i].id = i;
        t[i].log = &log;
        nk_timer_init(&t[i].t, log_timer_cb, &t[i]);
        assert_false(nk_timer_active(&t[i].t));
        assert_int_equal(nk_timer_start(loop, &t[i].t, timeouts[i], 0), 0);
        assert_true(nk_timer_active(&t[i].t));
    }
    assert_int_equal(nk_loop_active(loop), 8);
    uint64_t start = nk_loop_now(loop);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_true(nk_loop_now(loop) >= start + 30);
    const int want[8] = {7, 3, 4, 5, 6, 1, 2, 0};
    assert_int_equal(log.n, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(log.order[i], want[i]);
    for (int i = 0; i < 8; i++)
        assert_false(nk_timer_active(&t[i].t));
    nk_loop_free(loop);
}

static void test_timer_cancel_and_restart(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    order_log log = {.n = 0};
    tagged_timer a = {.id = 1, .log = &log}, b = {.id = 2, .log = &log}, c = {.id = 3, .log = &log};
    nk_timer_init(&a.t, log_timer_cb, &a);
    nk_timer_init(&b.t, log_timer_cb, &b);
    nk_timer_init(&c.t, log_timer_cb, &c);
    assert_int_equal(nk_timer_start(loop, &a.t, 5, 0), 0);
    assert_int_equal(nk_timer_start(loop, &b.t, 10, 0), 0);
    assert_int_equal(nk_timer_start(loop, &c.t, 5000, 0), 0);
    nk_timer_stop(loop, &a.t);
    nk_timer_stop(loop, &a.t);
    assert_false(nk_timer_active(&a.t));
    /* Restart: the long timer becomes a short one, and fires once. */
    assert_int_equal(nk_timer_start(loop, &c.t, 15, 0), 0);
    assert_int_equal(nk_loop_active(loop), 2);
    uint64_t start = nk_loop_now(loop);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_true(nk_loop_now(loop) - start < 2000);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.order[0], 2);
    assert_int_equal(log.order[1], 3);
    nk_loop_free(loop);
}

typedef struct {
    nk_timer t;
    int calls;
    int stop_at;
    uint64_t when[8];
} repeat_ctx;

static void repeat_cb(nk_loop *loop, nk_timer *t)
{
    repeat_ctx *c = t->data;
    if (c->calls < 8)
        c->when[c->calls] = nk_loop_now(loop);
    if (++c->calls == c->stop_at)
        nk_timer_stop(loop, t);
}

static void test_timer_repeat(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    repeat_ctx c = {.calls = 0, .stop_at = 4};
    nk_timer_init(&c.t, repeat_cb, &c);
    uint64_t start = nk_loop_now(loop);
    assert_int_equal(nk_timer_start(loop, &c.t, 10, 10), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(c.calls, 4);
    assert_false(nk_timer_active(&c.t));
    /* Never early: the n-th call is at least n periods after the start. */
    for (int i = 0; i < 4; i++)
        assert_true(c.when[i] >= start + 10 * (uint64_t)(i + 1));
    nk_loop_free(loop);
}

static void stop_loop_cb(nk_loop *loop, nk_timer *t)
{
    int *calls = t->data;
    if (++*calls == 3)
        nk_loop_stop(loop);
}

static void test_loop_stop(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int calls = 0;
    nk_timer t;
    nk_timer_init(&t, stop_loop_cb, &calls);
    assert_int_equal(nk_timer_start(loop, &t, 1, 1), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(calls, 3);
    assert_true(nk_timer_active(&t)); /* stopped the loop, not the timer */
    /* The stop was consumed: the loop runs again. */
    calls = 0;
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(calls, 3);
    nk_timer_stop(loop, &t);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    nk_loop_free(loop);
}

static void rearm_zero_cb(nk_loop *loop, nk_timer *t)
{
    int *calls = t->data;
    ++*calls;
    assert_int_equal(nk_timer_start(loop, t, 0, 0), 0);
}

static void test_timer_zero_rearm_no_spin(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int calls = 0;
    nk_timer t;
    nk_timer_init(&t, rearm_zero_cb, &calls);
    assert_int_equal(nk_timer_start(loop, &t, 0, 0), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    /* Once per expiry pass (the loop runs two passes per iteration: before and after the wait). */
    assert_true(calls >= 1 && calls <= 2);
    int before = calls;
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_true(calls > before && calls <= before + 2);
    nk_timer_stop(loop, &t);
    nk_loop_free(loop);
}

typedef struct {
    nk_timer *victim;
    int calls;
} killer_ctx;

static void kill_timer_cb(nk_loop *loop, nk_timer *t)
{
    killer_ctx *k = t->data;
    k->calls++;
    nk_timer_stop(loop, k->victim);
    free(k->victim);
    k->victim = NULL;
    nk_timer_stop(loop, t); /* one-shot: already inactive, must be harmless */
}

static void free_self_cb(nk_loop *loop, nk_timer *t)
{
    int *calls = t->data;
    ++*calls;
    nk_timer_stop(loop, t);
    free(t);
}

static void test_timer_stop_in_callbacks(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    /* Same deadline: the first stops and frees the second, which is due in the same pass. */
    int victim_calls = 0;
    killer_ctx k = {.calls = 0};
    nk_timer killer;
    nk_timer_init(&killer, kill_timer_cb, &k);
    k.victim = malloc(sizeof *k.victim);
    assert_non_null(k.victim);
    nk_timer_init(k.victim, count_timer_cb, &victim_calls);
    assert_int_equal(nk_timer_start(loop, &killer, 5, 0), 0);
    assert_int_equal(nk_timer_start(loop, k.victim, 5, 0), 0);
    /* A repeating timer that frees itself on its first call. */
    int self_calls = 0;
    nk_timer *self = malloc(sizeof *self);
    assert_non_null(self);
    nk_timer_init(self, free_self_cb, &self_calls);
    assert_int_equal(nk_timer_start(loop, self, 1, 1), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(k.calls, 1);
    assert_int_equal(victim_calls, 0);
    assert_int_equal(self_calls, 1);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_loop_free(loop);
}

typedef struct {
    uint64_t last_timeout;
    size_t last_index;
    size_t fired;
    int bad;
} many_ctx;

typedef struct {
    nk_timer t;
    uint64_t timeout;
    size_t index;
    many_ctx *ctx;
} many_timer;

static void many_cb(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    many_timer *m = t->data;
    many_ctx *c = m->ctx;
    /* Sorted by deadline; equal deadlines in start order. */
    if (c->fired > 0 && (m->timeout < c->last_timeout ||
                         (m->timeout == c->last_timeout && m->index < c->last_index)))
        c->bad++;
    c->last_timeout = m->timeout;
    c->last_index = m->index;
    c->fired++;
}

static void test_timer_many(void **state)
{
    (void)state;
    enum { N = 10000 };
    nk_loop *loop = new_loop();
    many_timer *ts = calloc(N, sizeof *ts);
    assert_non_null(ts);
    many_ctx c = {0};
    srand(12345);
    for (size_t i = 0; i < N; i++) {
        ts[i].timeout = (uint64_t)(rand() % 60);
        ts[i].index = i;
        ts[i].ctx = &c;
        nk_timer_init(&ts[i].t, many_cb, &ts[i]);
        assert_int_equal(nk_timer_start(loop, &ts[i].t, ts[i].timeout, 0), 0);
    }
    /* Cancel every seventh, from the middle of the heap as well as its ends. */
    size_t cancelled = 0;
    for (size_t i = 0; i < N; i += 7) {
        nk_timer_stop(loop, &ts[i].t);
        cancelled++;
    }
    assert_int_equal(nk_loop_active(loop), N - cancelled);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(c.fired, N - cancelled);
    assert_int_equal(c.bad, 0);
    nk_loop_free(loop);
    free(ts);
}

int main(void)
{
    skip_suite_if_backend_refused();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timer_order_and_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_cancel_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_repeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_zero_rearm_no_spin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_stop_in_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_many, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
