/* Event loop: references. An unref'd watcher fires like any other while the loop runs, but
 * does not keep nk_loop_run(NK_RUN_DEFAULT) going and is not counted by nk_loop_active. */
#include "loop_fixture.h"

static uint64_t elapsed_since(nk_loop *loop, uint64_t t0)
{
    nk_loop_update_time(loop);
    return nk_loop_now(loop) - t0;
}

/* Only an unref'd timer: run returns at once, the timer neither fires nor stops. */
static void test_unref_timer_alone(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int calls = 0;
    nk_timer before, after;
    nk_timer_init(&before, count_timer_cb, &calls);
    nk_timer_init(&after, count_timer_cb, &calls);
    nk_timer_unref(loop, &before); /* before start: the flag waits for it */
    assert_int_equal(nk_timer_start(loop, &before, 1000, 0), 0);
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_timer_start(loop, &after, 1000, 1000), 0);
    assert_int_equal(nk_loop_active(loop), 1);
    nk_timer_unref(loop, &after); /* while started */
    nk_timer_unref(loop, &after); /* a flag, not a counter */
    assert_int_equal(nk_loop_active(loop), 0);

    nk_loop_update_time(loop);
    uint64_t t0 = nk_loop_now(loop);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_true(elapsed_since(loop, t0) < 500);
    assert_int_equal(calls, 0);
    assert_true(nk_timer_active(&before));
    assert_true(nk_timer_active(&after));

    /* Restarting keeps the mark; ref takes it away once, whatever the number of unrefs. */
    assert_int_equal(nk_timer_start(loop, &before, 2000, 0), 0);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_timer_ref(loop, &after);
    assert_int_equal(nk_loop_active(loop), 1);
    nk_timer_ref(loop, &after);
    assert_int_equal(nk_loop_active(loop), 1);
    nk_timer_stop(loop, &after);
    nk_timer_stop(loop, &before);
    assert_int_equal(nk_loop_active(loop), 0);
    /* Stopped while unref'd, started again: still not counted; init clears the mark. */
    assert_int_equal(nk_timer_start(loop, &before, 2000, 0), 0);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_timer_stop(loop, &before);
    nk_timer_init(&before, count_timer_cb, &calls);
    assert_int_equal(nk_timer_start(loop, &before, 2000, 0), 0);
    assert_int_equal(nk_loop_active(loop), 1);
    nk_timer_stop(loop, &before);
    nk_loop_free(loop);
}

/* One ref'd one-shot and one unref'd repeating timer: the run lasts until the ref'd one has
 * fired, and the unref'd one is served meanwhile. */
static void test_ref_and_unref_timers(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int ticks = 0, once = 0;
    nk_timer tick, shot;
    nk_timer_init(&tick, count_timer_cb, &ticks);
    nk_timer_init(&shot, count_timer_cb, &once);
    nk_loop_update_time(loop); /* both timers count from t0 */
    uint64_t t0 = nk_loop_now(loop);
    assert_int_equal(nk_timer_start(loop, &tick, 5, 5), 0);
    nk_timer_unref(loop, &tick);
    assert_int_equal(nk_timer_start(loop, &shot, 60, 0), 0);
    assert_int_equal(nk_loop_active(loop), 1);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    uint64_t took = elapsed_since(loop, t0);
    assert_int_equal(once, 1);
    assert_true(took >= 60);
    assert_true(took < 2000);
    assert_true(ticks >= 2); /* fired while the loop was alive for the other one */
    assert_true(nk_timer_active(&tick));
    nk_timer_stop(loop, &tick);
    nk_loop_free(loop);
}

/* A ref taken from a callback keeps the loop going from then on. */
typedef struct {
    nk_timer tick, shot;
    int ticks, shots;
} ref_later;

static void ref_later_tick(nk_loop *loop, nk_timer *t)
{
    ref_later *r = t->data;
    if (++r->ticks == 5)
        nk_timer_stop(loop, t);
}

static void ref_later_shot(nk_loop *loop, nk_timer *t)
{
    ref_later *r = t->data;
    r->shots++;
    nk_timer_ref(loop, &r->tick);
}

static void test_ref_from_callback(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    ref_later r = {.ticks = 0};
    nk_timer_init(&r.tick, ref_later_tick, &r);
    nk_timer_init(&r.shot, ref_later_shot, &r);
    nk_timer_unref(loop, &r.tick);
    assert_int_equal(nk_timer_start(loop, &r.tick, 20, 20), 0);
    assert_int_equal(nk_timer_start(loop, &r.shot, 1, 0), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(r.shots, 1);
    assert_int_equal(r.ticks, 5); /* ran until it stopped itself */
    assert_false(nk_timer_active(&r.tick));
    assert_int_equal(nk_loop_active(loop), 0);
    nk_loop_free(loop);
}

static void count_defer_cb(nk_loop *loop, nk_defer *d)
{
    (void)loop;
    ++*(int *)d->data;
}

static void quiet_signal_cb(nk_loop *loop, nk_signal *s, int signum)
{
    (void)loop;
    (void)s;
    (void)signum;
}

/* io, signal and defer watchers: counted only while ref'd; an unref'd io still gets events. */
static void test_unref_io_signal_defer(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    io_rec r = {0};
    nk_io io;
    nk_io_init(&io, sv[0], rec_cb, &r);
    assert_int_equal(nk_io_start(loop, &io, NK_WRITE), 0);
    nk_io_unref(loop, &io);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_io_ref(loop, &io);
    assert_int_equal(nk_loop_active(loop), 1);
    nk_io_unref(loop, &io);

    nk_signal s;
    nk_signal_init(&s, quiet_signal_cb, NULL);
    nk_signal_unref(loop, &s);
    assert_int_equal(nk_signal_start(loop, &s, SIGUSR1), 0);
    assert_int_equal(nk_loop_active(loop), 0); /* neither it nor the signalfd's watcher */
    nk_signal_ref(loop, &s);
    assert_int_equal(nk_loop_active(loop), 1);
    nk_signal_unref(loop, &s);

    int deferred = 0;
    nk_defer d;
    nk_defer_init(&d, count_defer_cb, &deferred);
    nk_defer_unref(loop, &d);
    nk_defer_ref(loop, &d);
    nk_defer_unref(loop, &d);
    assert_int_equal(nk_loop_active(loop), 0);

    /* Everything unref'd: run returns at once, without waiting for anything. */
    nk_loop_update_time(loop);
    uint64_t t0 = nk_loop_now(loop);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_true(elapsed_since(loop, t0) < 500);
    assert_int_equal(r.calls, 0);

    /* A ref'd 30 ms timer keeps it alive; the unref'd io is served meanwhile. */
    int calls = 0;
    nk_timer t;
    nk_timer_init(&t, count_timer_cb, &calls);
    assert_int_equal(nk_timer_start(loop, &t, 30, 0), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(calls, 1);
    assert_true(r.calls >= 1);
    assert_true(r.all & NK_WRITE);
    assert_true(nk_io_active(&io));

    nk_signal_stop(loop, &s);
    nk_io_stop(loop, &io);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
}

/* An unref'd defer already queued still runs in the iteration that takes it, but a loop with
 * nothing else does not iterate again for it. */
static void test_unref_defer_runs_once(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int n = 0;
    nk_defer d;
    nk_defer_init(&d, count_defer_cb, &n);
    nk_defer_unref(loop, &d);
    nk_defer_start(loop, &d);
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(n, 1);
    assert_int_equal(nk_loop_active(loop), 0);
    /* Stopped while queued: the count goes back to where it was. */
    nk_defer_start(loop, &d);
    nk_defer_stop(loop, &d);
    nk_defer_ref(loop, &d);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_defer_start(loop, &d);
    assert_int_equal(nk_loop_active(loop), 1);
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(n, 2);
    nk_loop_free(loop);
}

int main(void)
{
    skip_suite_if_backend_refused();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unref_timer_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ref_and_unref_timers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ref_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unref_io_signal_defer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unref_defer_runs_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
