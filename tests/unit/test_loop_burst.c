/* Many more ready descriptors than one wait takes (NK__LOOP_FIRED_MAX, lowered here with
 * nk__loop_set_fired_max): none may be lost or kept waiting for ever, on every backend. */
#include "loop_fixture.h"

#include "loop/loop_internal.h"

enum { BURST_PAIRS = 3000, BURST_SELECT_PAIRS = 400 };

typedef struct {
    nk_io io;
    int peer;      /* the other end, written to once */
    int calls;     /* callbacks so far */
    int drain;     /* read the byte and stop: one call each; else stay readable */
    int *seen;     /* descriptors called back at least once */
} burst_fd;

static void burst_cb(nk_loop *loop, nk_io *io, unsigned events)
{
    burst_fd *b = io->data;
    assert_true(events & NK_READ);
    if (b->calls++ == 0)
        (*b->seen)++;
    if (b->drain) {
        char c;
        assert_int_equal(read(io->fd, &c, 1), 1);
        nk_io_stop(loop, io);
    }
}

/* 3000 pairs (select: what fits below FD_SETSIZE), each with a byte waiting; the soft
 * descriptor limit is raised for them, and the test is skipped when the hard one is too low. */
static int burst_pairs(const nk_loop *loop)
{
    if (is_backend(loop, "select"))
        return BURST_SELECT_PAIRS;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t need = 2 * BURST_PAIRS + 64;
    if (rl.rlim_cur < need) {
        if (rl.rlim_max < need)
            return 0;
        rl.rlim_cur = need;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    return BURST_PAIRS;
}

/* Every pair readable before the first wait; `max` ready descriptors per wait. With `drain`
 * each callback fires exactly once; without, every descriptor stays readable, and still every
 * one must be called back within the turns that a fair rotation needs (no starvation). */
static void run_burst(int max, int drain, unsigned events)
{
    nk_loop *loop = new_loop();
    if ((events & NK_EDGE) && (is_backend(loop, "select") || is_backend(loop, "poll"))) {
        printf("skipped: %s has no edge-triggered mode\n", nk_loop_backend(loop));
        nk_loop_free(loop);
        skip();
    }
    int npairs = burst_pairs(loop);
    if (npairs == 0) {
        printf("skipped: the hard descriptor limit is below %d\n", 2 * BURST_PAIRS + 64);
        nk_loop_free(loop);
        skip();
    }
    if (max > 0)
        nk__loop_set_fired_max(loop, max);
    else
        max = NK__LOOP_FIRED_MAX;
    burst_fd *b = calloc((size_t)npairs, sizeof *b);
    assert_non_null(b);
    int seen = 0;
    for (int i = 0; i < npairs; i++) {
        int sv[2];
        make_pair(sv);
        b[i].peer = sv[1];
        b[i].drain = drain;
        b[i].seen = &seen;
        nk_io_init(&b[i].io, sv[0], burst_cb, &b[i]);
        assert_int_equal(nk_io_start(loop, &b[i].io, events), 0);
        assert_int_equal(write(sv[1], "x", 1), 1);
    }
    /* A fair loop needs npairs / max turns; twice that and some leave room for the turns in
     * which a backend reports fewer (uring's re-armed polls complete during the wait). */
    int turns = 0, limit = 2 * (npairs / max) + 10;
    while (seen < npairs && turns < limit) {
        assert_false(run_once(loop));
        turns++;
    }
    assert_int_equal(seen, npairs);
    if (drain || (events & NK_EDGE)) {
        /* Nothing more to come: a turn that polls must call nobody back twice. */
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
        for (int i = 0; i < npairs; i++)
            assert_int_equal(b[i].calls, 1);
    }
    for (int i = 0; i < npairs; i++) {
        nk_io_stop(loop, &b[i].io);
        close(b[i].io.fd);
        close(b[i].peer);
    }
    free(b);
    assert_int_equal(nk_loop_free(loop), 0);
}

static void test_burst_drained_low_cap(void **state)
{
    (void)state;
    run_burst(7, 1, NK_READ);
}

static void test_burst_drained_default_cap(void **state)
{
    (void)state;
    run_burst(0, 1, NK_READ);
}

static void test_burst_level_no_starvation(void **state)
{
    (void)state;
    run_burst(7, 0, NK_READ);
}

static void test_burst_level_default_cap(void **state)
{
    (void)state;
    run_burst(0, 0, NK_READ);
}

/* Edge-triggered (epoll, uring): each edge is reported once, including those that did not fit
 * in the wait that saw them; the callbacks leave the byte unread. */
static void test_burst_edge_low_cap(void **state)
{
    (void)state;
    run_burst(7, 0, NK_READ | NK_EDGE);
}

int main(void)
{
    skip_suite_if_backend_refused();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_drained_low_cap),
        cmocka_unit_test(test_burst_drained_default_cap),
        cmocka_unit_test(test_burst_level_no_starvation),
        cmocka_unit_test(test_burst_level_default_cap),
        cmocka_unit_test(test_burst_edge_low_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
