/* Worker processes (netkit/workers.h): start with readiness and shared memory, a crashed worker
 * restarted, a give-up after too many restarts, a graceful stop that reaps every worker, a stop
 * that ends with SIGKILL, reuseport listeners and CPU helpers. Every test bounds its loop with a
 * guard timer; the workers are children of the test and die with it (PR_SET_PDEATHSIG). */
#include <netkit/loop.h>
#include <netkit/sock.h>
#include <netkit/workers.h>

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define GUARD_MS 20000
#define MAX_EXITS 64

/* One slot of shared memory per worker: how often it started, and a mark it leaves. */
typedef struct slot {
    volatile uint32_t starts;
    volatile uint32_t mark;
} slot;

typedef struct fixture {
    nk_loop *loop;
    nk_workers *w;
    nk_timer guard, poll;
    int timed_out, stopped, gave_up;
    int nexits, restarting;
    unsigned exit_index[MAX_EXITS];
    int exit_status[MAX_EXITS];
    pid_t exit_pid[MAX_EXITS];
    int (*until)(struct fixture *f); /* polled: the condition that ends the wait */
} fixture;

static slot *slots(const fixture *f)
{
    return nk_workers_shared(f->w);
}

static void on_guard(nk_loop *loop, nk_timer *t)
{
    fixture *f = t->data;
    f->timed_out = 1;
    nk_loop_stop(loop);
}

static void on_poll(nk_loop *loop, nk_timer *t)
{
    fixture *f = t->data;
    if (f->until && f->until(f)) {
        f->until = NULL;
        nk_loop_stop(loop);
    }
}

static void on_exit_cb(nk_workers *w, unsigned index, pid_t pid, int status, int restarting,
                       void *arg)
{
    fixture *f = arg;
    (void)w;
    if (f->nexits < MAX_EXITS) {
        f->exit_index[f->nexits] = index;
        f->exit_status[f->nexits] = status;
        f->exit_pid[f->nexits] = pid;
        f->nexits++;
    }
    f->restarting += restarting;
}

static void on_give_up_cb(nk_workers *w, void *arg)
{
    (void)w;
    ((fixture *)arg)->gave_up++;
}

static void on_stopped_cb(nk_workers *w, void *arg)
{
    fixture *f = arg;
    (void)w;
    f->stopped++;
    nk_loop_stop(f->loop);
}

/* ---- what the workers run ------------------------------------------------------------------ */

static void wait_for_signals(void)
{
    for (int i = 0; i < 2000; i++) /* bounded: 200 s, far beyond every test's guard */
        usleep(100000);
}

/* Marks its slot, says it is ready, waits to be stopped (SIGTERM's default action). */
static int run_serving(nk_workers *w, unsigned index, void *arg)
{
    (void)arg;
    slot *s = (slot *)nk_workers_shared(w) + index;
    s->starts++;
    /* A worker takes a while to get ready: nk_workers_start must wait for its word, not
     * only for the fork (with correct code this delay cannot fail the test, only slow it). */
    usleep(20000);
    s->mark = 100 + index;
    nk_workers_ready(w);
    wait_for_signals();
    return 0;
}

/* Worker 0's first life ends in a crash (SIGKILL); its next life serves. */
static int run_crash_once(nk_workers *w, unsigned index, void *arg)
{
    slot *s = (slot *)nk_workers_shared(w) + index;
    if (index == 0 && s->starts == 0) {
        s->starts++;
        kill(getpid(), SIGKILL);
    }
    return run_serving(w, index, arg);
}

static int run_failing(nk_workers *w, unsigned index, void *arg)
{
    (void)arg;
    ((slot *)nk_workers_shared(w) + index)->starts++;
    return 3;
}

static int run_stubborn(nk_workers *w, unsigned index, void *arg)
{
    signal(SIGTERM, SIG_IGN);
    return run_serving(w, index, arg);
}

/* ---- harness ------------------------------------------------------------------------------- */

static void setup_group(fixture *f, unsigned n, int (*run)(nk_workers *, unsigned, void *),
                        unsigned ready_ms)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(nk_loop_new(NULL, &f->loop), 0);
    nk_workers_config cfg = {
        .size = sizeof cfg, .nworkers = n, .run = run, .arg = f, .shared_size = sizeof(slot),
        .restart_delay_ms = 10, .ready_timeout_ms = ready_ms, .on_exit = on_exit_cb,
        .on_give_up = on_give_up_cb, .on_stopped = on_stopped_cb,
    };
    assert_int_equal(nk_workers_new(f->loop, &cfg, &f->w), 0);
    nk_timer_init(&f->guard, on_guard, f);
    nk_timer_init(&f->poll, on_poll, f);
    assert_int_equal(nk_timer_start(f->loop, &f->guard, GUARD_MS, 0), 0);
}

static void run_until(fixture *f, int (*until)(fixture *f))
{
    f->until = until;
    assert_int_equal(nk_timer_start(f->loop, &f->poll, 5, 5), 0);
    assert_int_equal(nk_loop_run(f->loop, NK_RUN_DEFAULT), 0);
    nk_timer_stop(f->loop, &f->poll);
    assert_false(f->timed_out);
}

static void stop_and_reap(fixture *f, int sig, unsigned timeout_ms)
{
    nk_workers_stop(f->w, sig, timeout_ms);
    if (!f->stopped)
        assert_int_equal(nk_loop_run(f->loop, NK_RUN_DEFAULT), 0);
    assert_false(f->timed_out);
    assert_int_equal(f->stopped, 1);
    assert_int_equal(nk_workers_alive(f->w), 0);
    /* Every worker was reaped by the group: none is left for this process to wait for. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void teardown_group(fixture *f)
{
    nk_timer_stop(f->loop, &f->guard);
    nk_workers_free(f->w);
    nk_loop_free(f->loop);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_start_ready_shared_and_stop(void **state)
{
    (void)state;
    fixture f;
    setup_group(&f, 3, run_serving, 10000);
    assert_int_equal(nk_workers_index(f.w), -1);
    assert_int_equal(nk_workers_start(f.w), 0);
    /* Readiness: every worker marked its slot before nk_workers_start returned. */
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(slots(&f)[i].mark, 100 + i);
        assert_int_equal(slots(&f)[i].starts, 1);
    }
    assert_int_equal(nk_workers_alive(f.w), 3);
    assert_false(nk_workers_stopping(f.w));
    stop_and_reap(&f, SIGTERM, 10000);
    assert_true(nk_workers_stopping(f.w));
    assert_int_equal(f.nexits, 3);
    assert_int_equal(f.restarting, 0);
    for (int i = 0; i < 3; i++) {
        assert_true(WIFSIGNALED(f.exit_status[i]));
        assert_int_equal(WTERMSIG(f.exit_status[i]), SIGTERM);
    }
    teardown_group(&f);
}

static int restarted_zero(fixture *f)
{
    return slots(f)[0].starts >= 2 && slots(f)[0].mark == 100;
}

static void test_crashed_worker_is_restarted(void **state)
{
    (void)state;
    fixture f;
    setup_group(&f, 2, run_crash_once, 0);
    assert_int_equal(nk_workers_start(f.w), 0);
    run_until(&f, restarted_zero);
    assert_int_equal(f.nexits, 1);
    assert_int_equal(f.exit_index[0], 0);
    assert_true(WIFSIGNALED(f.exit_status[0]));
    assert_int_equal(WTERMSIG(f.exit_status[0]), SIGKILL);
    assert_int_equal(f.restarting, 1);
    assert_int_equal(nk_workers_alive(f.w), 2);
    stop_and_reap(&f, SIGTERM, 10000);
    assert_int_equal(f.nexits, 3);
    /* The restarted worker is a new process, not the one that died. */
    assert_int_not_equal(f.exit_pid[1], f.exit_pid[0]);
    assert_int_not_equal(f.exit_pid[2], f.exit_pid[0]);
    teardown_group(&f);
}

static void test_gives_up_after_too_many_restarts(void **state)
{
    (void)state;
    fixture f;
    setup_group(&f, 1, run_failing, 0);
    nk_workers_free(f.w);
    nk_workers_config cfg = {
        .size = sizeof cfg, .nworkers = 1, .run = run_failing, .arg = &f,
        .shared_size = sizeof(slot),
        .restart_delay_ms = 1, .restart_limit = 3, .restart_window_ms = 60000,
        .on_exit = on_exit_cb, .on_give_up = on_give_up_cb, .on_stopped = on_stopped_cb,
    };
    assert_int_equal(nk_workers_new(f.loop, &cfg, &f.w), 0);
    assert_int_equal(nk_workers_start(f.w), 0);
    assert_int_equal(nk_loop_run(f.loop, NK_RUN_DEFAULT), 0);
    assert_false(f.timed_out);
    assert_int_equal(f.gave_up, 1);
    assert_int_equal(f.stopped, 1);
    assert_true(nk_workers_stopping(f.w));
    /* The first start and exactly restart_limit restarts. */
    assert_int_equal(slots(&f)[0].starts, 4);
    assert_int_equal(f.nexits, 4);
    for (int i = 0; i < 4; i++) {
        assert_true(WIFEXITED(f.exit_status[i]));
        assert_int_equal(WEXITSTATUS(f.exit_status[i]), 3);
    }
    teardown_group(&f);
}

static void test_stop_bound_kills_the_stubborn(void **state)
{
    (void)state;
    fixture f;
    setup_group(&f, 2, run_stubborn, 10000);
    assert_int_equal(nk_workers_start(f.w), 0);
    assert_int_equal(nk_workers_alive(f.w), 2);
    stop_and_reap(&f, SIGTERM, 100);
    assert_int_equal(f.nexits, 2);
    for (int i = 0; i < 2; i++) {
        assert_true(WIFSIGNALED(f.exit_status[i]));
        assert_int_equal(WTERMSIG(f.exit_status[i]), SIGKILL);
    }
    teardown_group(&f);
}

static void test_stop_with_none_alive(void **state)
{
    (void)state;
    fixture f;
    setup_group(&f, 2, run_serving, 0);
    nk_workers_stop(f.w, SIGTERM, 1000); /* never started: stopped at once */
    assert_int_equal(f.stopped, 1);
    teardown_group(&f);
}

static void test_bad_config(void **state)
{
    (void)state;
    nk_loop *loop;
    nk_workers *w = NULL;
    assert_int_equal(nk_loop_new(NULL, &loop), 0);
    nk_workers_config cfg = {.size = sizeof cfg, .nworkers = 0, .run = run_serving};
    assert_int_equal(nk_workers_new(loop, &cfg, &w), -EINVAL);
    cfg.nworkers = 1;
    cfg.run = NULL;
    assert_int_equal(nk_workers_new(loop, &cfg, &w), -EINVAL);
    assert_null(w);
    /* The size (docs/library.md, "Config structs"): 0 is a struct never initialised; a newer
     * caller's field this library does not know, set, is refused. */
    cfg.run = run_serving;
    cfg.size = 0;
    assert_int_equal(nk_workers_new(loop, &cfg, &w), -EINVAL);
    struct {
        nk_workers_config known;
        uint64_t later;
    } newer;
    nk_workers_config_init(&newer.known);
    newer.known.nworkers = 1;
    newer.known.run = run_serving;
    newer.known.size = sizeof newer;
    newer.later = 1;
    assert_int_equal(nk_workers_new(loop, &newer.known, &w), -E2BIG);
    assert_null(w);
    nk_workers_free(NULL);
    nk_loop_free(loop);
}

static void test_listen_one_port_per_group(void **state)
{
    (void)state;
    nk_addr a;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &a), 0);
    int fds[3];
    assert_int_equal(nk_workers_listen(&a, 0, 3, fds), 0);
    nk_addr first;
    assert_int_equal(nk_sock_local(fds[0], &first), 0);
    assert_int_not_equal(nk_addr_port(&first), 0);
    for (int i = 0; i < 3; i++) {
        nk_addr b;
        int on = 0;
        socklen_t len = sizeof on;
        assert_int_equal(nk_sock_local(fds[i], &b), 0);
        assert_int_equal(nk_addr_port(&b), nk_addr_port(&first));
        assert_int_equal(getsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &on, &len), 0);
        assert_int_equal(on, 1);
    }
    /* Steered by CPU: the program is accepted for the group (worker w on CPU cpus[w]). */
    int cpus[3] = {0, 0, 0};
    assert_int_equal(nk_reuseport_steer(fds[0], cpus, 3), 0);
    nk_reuseport_unsteer(fds[0]);
    assert_int_equal(nk_reuseport_steer(fds[0], cpus, 5000), -E2BIG);
    /* The port is taken by the group: a socket without SO_REUSEPORT cannot join. */
    nk_addr same = first;
    int lone;
    assert_int_not_equal(nk_workers_listen(&same, 0, 1, &lone), 0);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    nk_addr un;
    assert_int_equal(nk_addr_parse("unix:/tmp/nk-test-workers.sock", 0, &un), 0);
    assert_int_equal(nk_workers_listen(&un, 0, 2, fds), -EINVAL);
}

static void test_takes_spreads_every_socket(void **state)
{
    (void)state;
    /* As many sockets as workers: socket p is worker p's. */
    for (unsigned p = 0; p < 4; p++)
        for (unsigned w = 0; w < 4; w++)
            assert_int_equal(nk_workers_takes(p, 4, w, 4), p == w);
    /* One shared socket (a unix socket): every worker accepts on it. */
    for (unsigned w = 0; w < 4; w++)
        assert_true(nk_workers_takes(0, 1, w, 4));
    /* Two sockets for three workers: each worker one socket, each socket a worker. */
    const int want[2][3] = {{1, 0, 1}, {0, 1, 0}};
    for (unsigned p = 0; p < 2; p++)
        for (unsigned w = 0; w < 3; w++)
            assert_int_equal(nk_workers_takes(p, 2, w, 3), want[p][w]);
    assert_false(nk_workers_takes(0, 0, 0, 1));
}

static void test_cpu_list_and_pin(void **state)
{
    (void)state;
    int cpus[1024];
    int n = nk_cpu_list(cpus, 1024);
    assert_true(n >= 1);
    for (int i = 1; i < n; i++)
        assert_true(cpus[i] > cpus[i - 1]);
    assert_int_equal(nk_cpu_pin(-1), -EINVAL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* pinned in a child, so the test itself keeps its CPUs */
        int one[2];
        _exit(nk_cpu_pin(cpus[n - 1]) == 0 && nk_cpu_list(one, 2) == 1 && one[0] == cpus[n - 1]
                  ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_ready_shared_and_stop),
        cmocka_unit_test(test_crashed_worker_is_restarted),
        cmocka_unit_test(test_gives_up_after_too_many_restarts),
        cmocka_unit_test(test_stop_bound_kills_the_stubborn),
        cmocka_unit_test(test_stop_with_none_alive),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_listen_one_port_per_group),
        cmocka_unit_test(test_takes_spreads_every_socket),
        cmocka_unit_test(test_cpu_list_and_pin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
