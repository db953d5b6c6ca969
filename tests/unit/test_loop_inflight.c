/* Event loop: readiness the kernel has already reported when the loop changes its mind, on every
 * backend. Written against uring's hazards (a poll completion that is already in the completion
 * queue belongs to the request it was posted for, not to whatever the fd number names by the
 * next wait; changes and re-arms are batched into the submission queue), but the semantics are
 * the loop's: fd closed and reused with a completion in flight, interest changed with one in
 * flight, more fds than one submission batch, regular files beside sockets, and a kernel that
 * refuses io_uring. */
#include "loop_fixture.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

/* Drain what is readable on a non-blocking fd. */
static void drain(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

/* A watcher's fd is made readable after its registration reached the kernel, then stopped,
 * closed and the number given to a socket with nothing to read: the completion posted for the
 * old file must not reach the new watcher. */
static void test_reuse_with_completion_in_flight(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    for (int round = 0; round < 3; round++) {
        int old[2], fresh[2];
        make_pair(old);
        int num = old[0];
        io_rec ra = {0}, rb = {0};
        nk_io a, b;
        nk_io_init(&a, num, rec_cb, &ra);
        assert_int_equal(nk_io_start(loop, &a, NK_READ), 0);
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0); /* registered, nothing ready */
        assert_int_equal(ra.calls, 0);
        put_byte(old[1]); /* uring: the poll completes now, before the next wait reads it */
        nk_io_stop(loop, &a);
        close(num);
        close(old[1]);
        reopen_on(num, fresh);
        nk_io_init(&b, num, rec_cb, &rb);
        assert_int_equal(nk_io_start(loop, &b, NK_READ), 0);
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
        assert_int_equal(ra.calls, 0);
        assert_int_equal(rb.calls, 0); /* the new socket has nothing to read */
        put_byte(fresh[1]);
        assert_false(run_once(loop));
        assert_int_equal(rb.calls, 1);
        assert_int_equal(rb.last, NK_READ);
        nk_io_stop(loop, &b);
        close(fresh[0]);
        close(fresh[1]);
    }
    assert_int_equal(nk_loop_active(loop), 0);
    nk_loop_free(loop);
}

/* Fill fd's send buffer so that it is not writable. */
static void fill(int fd)
{
    char buf[4096];
    memset(buf, 'f', sizeof buf);
    while (write(fd, buf, sizeof buf) > 0) {
    }
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Interest moves READ -> WRITE -> READ while a read completion is in flight, on a socket that
 * is not writable: nothing while only WRITE is asked for, then READ on every iteration while the
 * byte stays (the replacement poll is level-triggered, not the stale completion replayed once). */
static void test_interest_change_with_completion_in_flight(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    fill(sv[0]);
    io_rec r = {0};
    nk_io io;
    nk_io_init(&io, sv[0], rec_cb, &r);
    assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 0);
    put_byte(sv[1]);
    assert_int_equal(nk_io_start(loop, &io, NK_WRITE), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 0);
    assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
    for (int i = 1; i <= 3; i++) {
        assert_false(run_once(loop));
        assert_int_equal(r.calls, i);
        assert_int_equal(r.last, NK_READ);
    }
    /* Both directions; then drain the reader so the socket turns writable: WRITE alone. */
    assert_int_equal(nk_io_start(loop, &io, NK_READ | NK_WRITE), 0);
    assert_false(run_once(loop));
    assert_int_equal(r.last, NK_READ);
    drain(sv[0]);
    drain(sv[1]);
    assert_false(run_once(loop));
    assert_int_equal(r.last, NK_WRITE);
    nk_io_stop(loop, &io);
    int before = r.calls;
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, before);
    nk_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
}

/* Edge-triggered where the backend has it: a switch to level-triggered while the edge's
 * completion was delivered and not consumed reports the byte again, on every iteration. */
static void test_edge_to_level(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    io_rec r = {0};
    nk_io io;
    nk_io_init(&io, sv[0], rec_cb, &r);
    if (nk_io_start(loop, &io, NK_READ | NK_EDGE) == -ENOTSUP) {
        nk_loop_free(loop);
        close(sv[0]);
        close(sv[1]);
        skip(); /* select and poll have no edge-triggered mode */
    }
    put_byte(sv[1]);
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 1);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 1); /* no new edge */
    assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
    assert_false(run_once(loop));
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 3);
    nk_io_stop(loop, &io);
    nk_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
}

enum { MANY = 300 }; /* more than uring's submission queue (256): changes go in several parts */

typedef struct {
    int sv[2];
    nk_io io;
    io_rec r;
} many_pair;

/* Every third of MANY sockets gets a byte: exactly those are reported, once per iteration, and
 * after half of them are drained exactly the other half. */
static void test_many_fds(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t need = 2 * MANY + 64;
    if (rl.rlim_cur < need) {
        if (rl.rlim_max < need)
            skip(); /* the hard descriptor limit is below what the test holds */
        rl.rlim_cur = need;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    nk_loop *loop = new_loop();
    if (nk_loop_max_fd(loop) < (int)need) {
        nk_loop_free(loop);
        skip(); /* select: past FD_SETSIZE */
    }
    many_pair *p = calloc(MANY, sizeof *p);
    assert_non_null(p);
    for (int i = 0; i < MANY; i++) {
        make_pair(p[i].sv);
        nk_io_init(&p[i].io, p[i].sv[0], rec_cb, &p[i].r);
        assert_int_equal(nk_io_start(loop, &p[i].io, NK_READ), 0);
    }
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    for (int i = 0; i < MANY; i += 3)
        put_byte(p[i].sv[1]);
    for (int round = 1; round <= 2; round++) {
        /* Completions may come over more than one wait; each ready fd at most once per wait. */
        for (int spins = 0; spins < 20; spins++) {
            int missing = 0;
            for (int i = 0; i < MANY; i += 3)
                missing += p[i].r.calls < round;
            if (missing == 0)
                break;
            assert_false(run_once(loop));
        }
        for (int i = 0; i < MANY; i++) {
            assert_int_equal(p[i].r.calls, i % 3 == 0 ? round : 0);
            if (i % 3 == 0)
                assert_int_equal(p[i].r.last, NK_READ);
        }
    }
    for (int i = 0; i < MANY; i += 6)
        drain(p[i].sv[0]);
    assert_false(run_once(loop));
    for (int i = 0; i < MANY; i += 3)
        assert_int_equal(p[i].r.calls, i % 6 == 0 ? 2 : 3);
    for (int i = 0; i < MANY; i++) {
        nk_io_stop(loop, &p[i].io);
        close(p[i].sv[0]);
        close(p[i].sv[1]);
    }
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_loop_free(loop);
    free(p);
}

/* A regular file is always ready; beside it a socket with nothing to read stays quiet, and the
 * wait never blocks while the file is watched (run_once would report its 2 s guard). */
static void test_regular_file_beside_socket(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    FILE *f = tmpfile();
    assert_non_null(f);
    int sv[2];
    make_pair(sv);
    io_rec rf = {0}, rs = {0};
    nk_io iof, ios;
    nk_io_init(&iof, fileno(f), rec_cb, &rf);
    nk_io_init(&ios, sv[0], rec_cb, &rs);
    assert_int_equal(nk_io_start(loop, &iof, NK_READ), 0);
    assert_int_equal(nk_io_start(loop, &ios, NK_READ), 0);
    for (int i = 1; i <= 3; i++) {
        assert_false(run_once(loop));
        assert_int_equal(rf.calls, i);
        assert_int_equal(rf.last, NK_READ);
    }
    assert_int_equal(rs.calls, 0);
    put_byte(sv[1]);
    assert_false(run_once(loop));
    assert_int_equal(rs.calls, 1);
    nk_io_stop(loop, &iof);
    nk_io_stop(loop, &ios);
    nk_loop_free(loop);
    fclose(f);
    close(sv[0]);
    close(sv[1]);
}

/* In a child: make io_uring_setup fail with errno err for this process (a seccomp filter, as a
 * container runtime would install), then check that uring reports it and nothing falls back to
 * it or away from it. Exit status: 0 when every check held. */
static int refused_child(int err)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return 10;
    nk_loop *loop = NULL;
    if (nk_loop_new("uring", &loop) != -err)
        return 11;
    /* The default never lands on uring, refused or not. */
    if (unsetenv("NETKIT_BACKEND") != 0 || nk_loop_new(NULL, &loop) != 0)
        return 12;
    int is_epoll = strcmp(nk_loop_backend(loop), "epoll") == 0;
    nk_loop_free(loop);
    if (!is_epoll)
        return 13;
    /* Asked for through the environment: the error, not another backend. */
    if (setenv("NETKIT_BACKEND", "uring", 1) != 0 || nk_loop_new(NULL, &loop) != -err)
        return 14;
    return 0;
}

static void test_kernel_refuses_uring(void **state)
{
    (void)state;
    const int errs[] = {ENOSYS, EPERM};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            _exit(refused_child(errs[i]));
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
}

int main(void)
{
    skip_suite_if_backend_refused();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reuse_with_completion_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interest_change_with_completion_in_flight, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_edge_to_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_regular_file_beside_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kernel_refuses_uring, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
