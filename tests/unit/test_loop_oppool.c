/* Receive buffer pools (nk_op_bufpool, nk_op_recv_pool; netkit/op.h) on every backend: a
 * provided-buffer ring on uring, a stack of free buffers taken on readiness elsewhere. */
#include "loop_fixture.h"

#include <netkit/op.h>

enum { NSOCK = 8, BUFSZ = 64 };

static int pool_setup(void **state)
{
    setup(state);
    *state = new_loop();
    return 0;
}

/* Every test leaves nothing started and no pool: the loop frees. */
static int pool_teardown(void **state)
{
    nk_loop *loop = *state;
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_loop_free(loop), 0);
    return teardown(state);
}

/* One pooled receiver: what its callbacks saw. Unless hold is set, the callback copies the
 * bytes and releases the buffer at once, as a server would. */
typedef struct {
    nk_op_bufpool *pool;
    int fd;
    nk_op op;
    int calls;
    ssize_t last;
    char got[256];
    size_t ngot;
    void *held; /* hold: the buffer kept, released by the test */
    int hold;
    int restart;
} receiver;

static void on_pooled(nk_loop *loop, nk_op *op, ssize_t result)
{
    receiver *r = op->data;
    r->calls++;
    r->last = result;
    if (result <= 0)
        return;
    void *buf = nk_op_pool_buf(op);
    assert_non_null(buf);
    assert_true((size_t)result <= BUFSZ);
    if (r->ngot + (size_t)result <= sizeof r->got) {
        memcpy(r->got + r->ngot, buf, (size_t)result);
        r->ngot += (size_t)result;
    }
    if (r->hold)
        r->held = buf;
    else
        assert_int_equal(nk_op_bufpool_release(r->pool, buf), 0);
    if (r->restart)
        assert_int_equal(nk_op_recv_pool(loop, op, r->fd, r->pool), 0);
}

static void receiver_start(nk_loop *loop, receiver *r, nk_op_bufpool *pool, int fd)
{
    memset(r, 0, sizeof *r);
    r->pool = pool;
    r->fd = fd;
    nk_op_init(&r->op, on_pooled, r);
    assert_int_equal(nk_op_recv_pool(loop, &r->op, fd, pool), 0);
    assert_true(nk_op_active(&r->op));
}

static void run_until_calls(nk_loop *loop, const int *calls, int want)
{
    for (int i = 0; i < 5000 && *calls < want; i++)
        assert_false(run_once(loop));
    assert_true(*calls >= want);
}

/* A few turns that wait for nothing (a receive parked for a buffer must stay parked). */
static void spin(nk_loop *loop)
{
    for (int i = 0; i < 5; i++)
        assert_true(nk_loop_run(loop, NK_RUN_NOWAIT) >= 0);
}

/* Stop r's receive; on uring the kernel may hold it: its -ECANCELED callback must come. */
static void stop_settled(nk_loop *loop, receiver *r)
{
    int before = r->calls;
    int rc = nk_op_stop(loop, &r->op);
    if (rc == -EINPROGRESS) {
        assert_true(is_backend(loop, "uring"));
        run_until_calls(loop, &r->calls, before + 1);
        assert_int_equal(r->last, -ECANCELED);
    } else {
        assert_int_equal(rc, 0);
    }
    assert_false(nk_op_active(&r->op));
}

static void test_many_sockets_share_a_pool(void **state)
{
    nk_loop *loop = *state;
    nk_op_bufpool *pool = NULL;
    assert_int_equal(nk_op_bufpool_new(loop, 2, BUFSZ, &pool), 0);
    assert_int_equal(nk_op_bufpool_avail(pool), 2);
    int sv[NSOCK][2];
    receiver rs[NSOCK];
    for (int i = 0; i < NSOCK; i++) {
        make_pair(sv[i]);
        receiver_start(loop, &rs[i], pool, sv[i][0]);
        rs[i].restart = 1;
    }
    /* Three rounds: 24 receives through two buffers, each one's bytes to its own socket. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < NSOCK; i++) {
            char msg[16];
            int n = snprintf(msg, sizeof msg, "s%d.r%d;", i, round);
            assert_int_equal(write(sv[i][1], msg, (size_t)n), n);
        }
        for (int i = 0; i < NSOCK; i++)
            run_until_calls(loop, &rs[i].calls, round + 1);
    }
    for (int i = 0; i < NSOCK; i++) {
        char want[64];
        int n = snprintf(want, sizeof want, "s%d.r0;s%d.r1;s%d.r2;", i, i, i);
        assert_int_equal(rs[i].ngot, (size_t)n);
        assert_memory_equal(rs[i].got, want, (size_t)n);
        assert_true(rs[i].last > 0);
    }
    assert_int_equal(nk_op_bufpool_avail(pool), 2);
    /* Started receives hold no buffer, but the pool cannot go while they are started. */
    assert_int_equal(nk_op_bufpool_free(pool), -EBUSY);
    for (int i = 0; i < NSOCK; i++) {
        rs[i].restart = 0;
        stop_settled(loop, &rs[i]);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    assert_int_equal(nk_op_bufpool_avail(pool), 2);
    assert_int_equal(nk_loop_free(loop), -EBUSY); /* a pool of the loop remains */
    assert_int_equal(nk_op_bufpool_free(pool), 0);
}

static void test_exhausted_pool_waits_for_a_release(void **state)
{
    nk_loop *loop = *state;
    nk_op_bufpool *pool = NULL;
    assert_int_equal(nk_op_bufpool_new(loop, 1, BUFSZ, &pool), 0);
    int a[2], b[2];
    make_pair(a);
    make_pair(b);
    receiver ra, rb;
    receiver_start(loop, &ra, pool, a[0]);
    receiver_start(loop, &rb, pool, b[0]);
    ra.hold = rb.hold = 1;
    assert_int_equal(write(a[1], "first", 5), 5);
    run_until_calls(loop, &ra.calls, 1);
    assert_int_equal(ra.last, 5);
    assert_int_equal(nk_op_bufpool_avail(pool), 0);
    /* The pool is empty: b's bytes stay in its socket, no callback, no error. */
    assert_int_equal(write(b[1], "second", 6), 6);
    for (int i = 0; i < 3; i++) {
        nk_timer t;
        int fired = 0;
        nk_timer_init(&t, guard_cb, &fired);
        assert_int_equal(nk_timer_start(loop, &t, 20, 0), 0);
        assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
        assert_true(fired);
    }
    assert_int_equal(rb.calls, 0);
    assert_true(nk_op_active(&rb.op));
    assert_true(nk_loop_active(loop) > 0);
    /* A release lets it go on, with its bytes whole, in the buffer just given back. */
    void *first = ra.held;
    assert_int_equal(nk_op_bufpool_release(pool, first), 0);
    assert_int_equal(nk_op_bufpool_release(pool, first), -EINVAL); /* not out any more */
    run_until_calls(loop, &rb.calls, 1);
    assert_int_equal(rb.last, 6);
    assert_memory_equal(rb.got, "second", 6);
    assert_ptr_equal(rb.held, first);
    assert_int_equal(nk_op_bufpool_free(pool), -EBUSY); /* rb's buffer is out */
    assert_int_equal(nk_op_bufpool_release(pool, rb.held), 0);
    assert_int_equal(nk_op_bufpool_avail(pool), 1);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    assert_int_equal(nk_op_bufpool_free(pool), 0);
}

static void test_stop_while_waiting_for_a_buffer(void **state)
{
    nk_loop *loop = *state;
    nk_op_bufpool *pool = NULL;
    assert_int_equal(nk_op_bufpool_new(loop, 1, BUFSZ, &pool), 0);
    int a[2], b[2];
    make_pair(a);
    make_pair(b);
    receiver ra, rb;
    receiver_start(loop, &ra, pool, a[0]);
    receiver_start(loop, &rb, pool, b[0]);
    ra.hold = 1;
    assert_int_equal(write(a[1], "x", 1), 1);
    run_until_calls(loop, &ra.calls, 1);
    assert_int_equal(write(b[1], "y", 1), 1);
    spin(loop);
    assert_int_equal(rb.calls, 0);
    /* Parked (out of the kernel on uring): over at once. */
    stop_settled(loop, &rb);
    assert_int_equal(nk_op_bufpool_release(pool, ra.held), 0);
    spin(loop);
    assert_int_equal(rb.calls, 0); /* stopped: the release does not wake it */
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_op_bufpool_avail(pool), 1);
    /* Its bytes are still in the socket: a new receive gets them. */
    receiver_start(loop, &rb, pool, b[0]);
    run_until_calls(loop, &rb.calls, 1);
    assert_int_equal(rb.last, 1);
    assert_memory_equal(rb.got, "y", 1);
    assert_int_equal(nk_op_bufpool_avail(pool), 1);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    assert_int_equal(nk_op_bufpool_free(pool), 0);
}

static void test_stop_pending_returns_every_buffer(void **state)
{
    nk_loop *loop = *state;
    nk_op_bufpool *pool = NULL;
    assert_int_equal(nk_op_bufpool_new(loop, 4, BUFSZ, &pool), 0);
    int sv[NSOCK][2];
    receiver rs[NSOCK];
    for (int i = 0; i < NSOCK; i++) {
        make_pair(sv[i]);
        receiver_start(loop, &rs[i], pool, sv[i][0]);
    }
    spin(loop); /* on uring: the receives are in the kernel now */
    /* Half of them get bytes right before the stop: whether or not the kernel has put them in
     * a buffer by then, the buffers come back. */
    for (int i = 0; i < NSOCK; i += 2)
        assert_int_equal(write(sv[i][1], "late", 4), 4);
    for (int i = 0; i < NSOCK; i++)
        stop_settled(loop, &rs[i]);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(nk_op_bufpool_avail(pool), 4);
    for (int i = 0; i < NSOCK; i++) {
        assert_true(rs[i].calls <= 1);
        /* Called back before its stop (while the loop ran for another's -ECANCELED), or
         * cancelled, or stopped before anything came. */
        assert_true(rs[i].calls == 0 || rs[i].last == -ECANCELED || rs[i].last == 4);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    assert_int_equal(nk_op_bufpool_free(pool), 0);
}

static void test_end_and_errors_carry_no_buffer(void **state)
{
    nk_loop *loop = *state;
    nk_op_bufpool *pool = NULL;
    assert_int_equal(nk_op_bufpool_new(loop, 2, BUFSZ, &pool), 0);
    int a[2];
    make_pair(a);
    receiver ra;
    receiver_start(loop, &ra, pool, a[0]);
    close(a[1]);
    run_until_calls(loop, &ra.calls, 1);
    assert_int_equal(ra.last, 0);
    assert_int_equal(nk_op_bufpool_avail(pool), 2);
    close(a[0]);
    /* Start errors: nothing started, nothing taken. */
    nk_op op;
    nk_op_init(&op, on_pooled, &ra);
    assert_int_equal(nk_op_recv_pool(loop, &op, -1, pool), -EBADF);
    assert_int_equal(nk_op_recv_pool(loop, &op, 0, NULL), -EINVAL);
    assert_false(nk_op_active(&op));
    char other[BUFSZ];
    assert_int_equal(nk_op_bufpool_release(pool, other), -EINVAL);
    assert_int_equal(nk_op_bufpool_release(pool, NULL), -EINVAL);
    nk_op_bufpool *bad = NULL;
    assert_int_equal(nk_op_bufpool_new(loop, 0, BUFSZ, &bad), -EINVAL);
    assert_int_equal(nk_op_bufpool_new(loop, 32769, BUFSZ, &bad), -EINVAL);
    assert_int_equal(nk_op_bufpool_new(loop, 1, 0, &bad), -EINVAL);
    assert_null(bad);
    assert_int_equal(nk_op_bufpool_free(pool), 0);
    assert_int_equal(nk_op_bufpool_free(NULL), 0);
}

/* Pools that are not a power of two in count, and several pools on one loop (on uring: a
 * buffer group each). */
static void test_two_pools_odd_counts(void **state)
{
    nk_loop *loop = *state;
    nk_op_bufpool *small = NULL, *big = NULL;
    assert_int_equal(nk_op_bufpool_new(loop, 5, BUFSZ, &small), 0);
    assert_int_equal(nk_op_bufpool_new(loop, 7, 2 * BUFSZ, &big), 0);
    int sv[NSOCK][2];
    receiver rs[NSOCK];
    for (int i = 0; i < NSOCK; i++) {
        make_pair(sv[i]);
        receiver_start(loop, &rs[i], i % 2 ? big : small, sv[i][0]);
        rs[i].hold = 1;
        assert_int_equal(write(sv[i][1], "abc", 3), 3);
    }
    for (int i = 0; i < NSOCK; i++)
        run_until_calls(loop, &rs[i].calls, 1);
    assert_int_equal(nk_op_bufpool_avail(small), 5 - NSOCK / 2);
    assert_int_equal(nk_op_bufpool_avail(big), 7 - NSOCK / 2);
    /* Every buffer out is distinct, inside its own pool. */
    for (int i = 0; i < NSOCK; i++)
        for (int j = i + 1; j < NSOCK; j++)
            assert_ptr_not_equal(rs[i].held, rs[j].held);
    for (int i = 0; i < NSOCK; i++) {
        assert_int_equal(nk_op_bufpool_release(i % 2 ? small : big, rs[i].held), -EINVAL);
        assert_int_equal(nk_op_bufpool_release(i % 2 ? big : small, rs[i].held), 0);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    assert_int_equal(nk_op_bufpool_free(small), 0);
    assert_int_equal(nk_op_bufpool_free(big), 0);
}

int main(void)
{
    skip_suite_if_backend_refused();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_sockets_share_a_pool, pool_setup, pool_teardown),
        cmocka_unit_test_setup_teardown(test_exhausted_pool_waits_for_a_release, pool_setup, pool_teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_waiting_for_a_buffer, pool_setup, pool_teardown),
        cmocka_unit_test_setup_teardown(test_stop_pending_returns_every_buffer, pool_setup, pool_teardown),
        cmocka_unit_test_setup_teardown(test_end_and_errors_carry_no_buffer, pool_setup, pool_teardown),
        cmocka_unit_test_setup_teardown(test_two_pools_odd_counts, pool_setup, pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
