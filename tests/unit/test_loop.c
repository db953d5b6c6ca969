/* Event loop tests. CMake runs this binary once per backend with NETKIT_BACKEND set; every test
 * creates its loop with the default choice, so the same suite proves the same semantics on each. */
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

/* ---- helpers ---------------------------------------------------------------------------- */

static nk_loop *new_loop(void)
{
    nk_loop *loop = NULL;
    assert_int_equal(nk_loop_new(NULL, &loop), 0);
    assert_non_null(loop);
    const char *want = getenv("NETKIT_BACKEND");
    if (want != NULL && want[0] != '\0')
        assert_string_equal(nk_loop_backend(loop), want);
    return loop;
}

static int is_backend(const nk_loop *loop, const char *name)
{
    return strcmp(nk_loop_backend(loop), name) == 0;
}

static void guard_cb(nk_loop *loop, nk_timer *t)
{
    *(int *)t->data = 1;
    nk_loop_stop(loop);
}

/* One NK_RUN_ONCE iteration that cannot hang: a guard timer ends it after 2 s. Returns whether
 * the guard fired (so a test can assert that the event itself arrived). */
static int run_once(nk_loop *loop)
{
    int fired = 0;
    nk_timer guard;
    nk_timer_init(&guard, guard_cb, &fired);
    assert_int_equal(nk_timer_start(loop, &guard, 2000, 0), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    nk_timer_stop(loop, &guard);
    return fired;
}

static void nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    nonblock(sv[0]);
    nonblock(sv[1]);
}

static void put_byte(int fd)
{
    assert_int_equal(write(fd, "x", 1), 1);
}

typedef struct {
    int calls;
    unsigned last;
    unsigned all;
} io_rec;

static void rec_cb(nk_loop *loop, nk_io *io, unsigned events)
{
    io_rec *r = io->data;
    r->calls++;
    r->last = events;
    r->all |= events;
}

static int setup(void **state)
{
    (void)state;
    alarm(30); /* every test is bounded in time, even if the loop under test hangs */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    alarm(0);
    return 0;
}

/* ---- registry --------------------------------------------------------------------------- */

static void test_registry(void **state)
{
    (void)state;
    const char *const *names = nk_loop_backends();
    assert_string_equal(names[0], "epoll");
    assert_string_equal(names[1], "poll");
    assert_string_equal(names[2], "select");
    assert_null(names[3]);

    nk_loop *loop = NULL;
    assert_int_equal(nk_loop_new("nosuch", &loop), -EINVAL);
    assert_int_equal(nk_loop_new("", &loop), -EINVAL);
    for (int i = 0; names[i]; i++) {
        assert_int_equal(nk_loop_new(names[i], &loop), 0);
        assert_string_equal(nk_loop_backend(loop), names[i]);
        nk_loop_free(loop);
    }

    /* The environment decides when no name is given; a bad value is an error, not a fallback. */
    const char *env = getenv("NETKIT_BACKEND");
    char *saved = env ? strdup(env) : NULL;
    assert_int_equal(setenv("NETKIT_BACKEND", "bogus", 1), 0);
    assert_int_equal(nk_loop_new(NULL, &loop), -EINVAL);
    assert_int_equal(setenv("NETKIT_BACKEND", "poll", 1), 0);
    assert_int_equal(nk_loop_new(NULL, &loop), 0);
    assert_string_equal(nk_loop_backend(loop), "poll");
    nk_loop_free(loop);
    /* An explicit name beats the environment. */
    assert_int_equal(nk_loop_new("select", &loop), 0);
    assert_string_equal(nk_loop_backend(loop), "select");
    nk_loop_free(loop);
    assert_int_equal(unsetenv("NETKIT_BACKEND"), 0);
    assert_int_equal(nk_loop_new(NULL, &loop), 0);
    assert_string_equal(nk_loop_backend(loop), "epoll");
    nk_loop_free(loop);
    if (saved) {
        setenv("NETKIT_BACKEND", saved, 1);
        free(saved);
    }

    loop = new_loop();
    int x = 0;
    assert_null(nk_loop_data(loop));
    nk_loop_set_data(loop, &x);
    assert_ptr_equal(nk_loop_data(loop), &x);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_loop_free(loop);
}

/* ---- I/O -------------------------------------------------------------------------------- */

static void test_io_read_level(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int p[2];
    assert_int_equal(pipe(p), 0);
    nonblock(p[0]);
    io_rec r = {0};
    nk_io io;
    nk_io_init(&io, p[0], rec_cb, &r);
    assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
    assert_true(nk_io_active(&io));
    assert_int_equal(nk_loop_active(loop), 1);

    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 0);

    put_byte(p[1]);
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last, NK_READ);

    /* Not consumed: level-triggered means it is reported again, on every backend. */
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 2);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 3);

    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 3);

    nk_io_stop(loop, &io);
    assert_false(nk_io_active(&io));
    assert_int_equal(nk_loop_active(loop), 0);
    put_byte(p[1]);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 3);
    nk_loop_free(loop);
    close(p[0]);
    close(p[1]);
}

static void test_io_write_and_modify(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    io_rec r = {0};
    nk_io io;
    nk_io_init(&io, sv[0], rec_cb, &r);
    assert_int_equal(nk_io_start(loop, &io, NK_WRITE), 0);
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last, NK_WRITE);

    /* Modify to read interest: nothing to read, so nothing is reported. */
    assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
    assert_int_equal(nk_loop_active(loop), 1);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 1);

    put_byte(sv[1]);
    assert_int_equal(nk_io_start(loop, &io, NK_READ | NK_WRITE), 0);
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.last, NK_READ | NK_WRITE);

    /* Events 0 is a stop. */
    assert_int_equal(nk_io_start(loop, &io, 0), 0);
    assert_false(nk_io_active(&io));
    assert_int_equal(nk_loop_active(loop), 0);

    /* Start, stop, start before the loop runs: only the final interest counts. */
    assert_int_equal(nk_io_start(loop, &io, NK_WRITE), 0);
    nk_io_stop(loop, &io);
    assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 3);
    assert_int_equal(r.last, NK_READ);
    nk_io_stop(loop, &io);
    nk_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
}

static void test_io_errors(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    io_rec r1 = {0}, r2 = {0};
    nk_io a, b, bad;
    nk_io_init(&a, sv[0], rec_cb, &r1);
    nk_io_init(&b, sv[0], rec_cb, &r2);
    assert_int_equal(nk_io_start(loop, &a, NK_READ), 0);
    assert_int_equal(nk_io_start(loop, &b, NK_READ), -EEXIST);
    assert_false(nk_io_active(&b));
    assert_int_equal(nk_loop_active(loop), 1);
    nk_io_stop(loop, &a);
    assert_int_equal(nk_io_start(loop, &b, NK_WRITE), 0);

    nk_io_init(&bad, -1, rec_cb, NULL);
    assert_int_equal(nk_io_start(loop, &bad, NK_READ), -EBADF);
    nk_io_init(&bad, sv[1], rec_cb, NULL);
    assert_int_equal(nk_io_start(loop, &bad, NK_READ | 0x100u), -EINVAL);
    assert_false(nk_io_active(&bad));
    nk_io_stop(loop, &bad); /* stopping an inactive watcher is a no-op */

    assert_false(run_once(loop));
    assert_int_equal(r1.calls, 0);
    assert_int_equal(r2.calls, 1);
    nk_io_stop(loop, &b);
    nk_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
}

static void stop_self_cb(nk_loop *loop, nk_io *io, unsigned events)
{
    rec_cb(loop, io, events);
    nk_io_stop(loop, io);
    nk_io_stop(loop, io); /* twice: still harmless */
}

static void test_io_stop_in_own_callback(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    put_byte(sv[1]);
    io_rec r = {0};
    nk_io io;
    nk_io_init(&io, sv[0], stop_self_cb, &r);
    assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
    /* Default mode returns once nothing is active: the only watcher stopped itself. */
    assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
}

typedef struct kill_shared {
    int calls;
    struct kill_peer *ran;
    nk_io fresh; /* started on the freed watcher's fd number, on a file with nothing to read */
    io_rec fresh_rec;
    int fresh_writer;
} kill_shared;

typedef struct kill_peer {
    nk_io io;
    int peer_fd;
    struct kill_peer *other;
    kill_shared *sh;
} kill_peer;

static void kill_other_cb(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    kill_peer *me = io->data;
    kill_shared *sh = me->sh;
    sh->calls++;
    sh->ran = me;
    kill_peer *o = me->other;
    if (o != NULL) {
        /* Its event has already been collected in this iteration; it must not be delivered. */
        int num = o->io.fd;
        nk_io_stop(loop, &o->io);
        close(num);
        close(o->peer_fd);
        free(o); /* ASan turns a late dispatch into a use-after-free report */
        me->other = NULL;
        /* A different watcher on the same fd number must not inherit the stale event either. */
        int p[2];
        assert_int_equal(pipe(p), 0);
        if (p[0] != num) {
            assert_int_equal(dup2(p[0], num), num);
            close(p[0]);
        }
        sh->fresh_writer = p[1];
        nk_io_init(&sh->fresh, num, rec_cb, &sh->fresh_rec);
        assert_int_equal(nk_io_start(loop, &sh->fresh, NK_READ), 0);
    }
    nk_io_stop(loop, io);
}

static void test_io_stop_other_fired(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    kill_shared sh;
    memset(&sh, 0, sizeof sh);
    int sa[2], sb[2];
    make_pair(sa);
    make_pair(sb);
    kill_peer *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    a->other = b;
    b->other = a;
    a->sh = b->sh = &sh;
    a->peer_fd = sa[1];
    b->peer_fd = sb[1];
    nk_io_init(&a->io, sa[0], kill_other_cb, a);
    nk_io_init(&b->io, sb[0], kill_other_cb, b);
    assert_int_equal(nk_io_start(loop, &a->io, NK_READ), 0);
    assert_int_equal(nk_io_start(loop, &b->io, NK_READ), 0);
    /* Both readable before the single wait, so both land in the same fired array. */
    put_byte(sa[1]);
    put_byte(sb[1]);
    assert_false(run_once(loop));
    assert_int_equal(sh.calls, 1);
    assert_int_equal(sh.fresh_rec.calls, 0);
    assert_int_equal(nk_loop_active(loop), 1); /* the fresh watcher */
    /* The fresh watcher works once its own file has data. */
    put_byte(sh.fresh_writer);
    assert_false(run_once(loop));
    assert_int_equal(sh.fresh_rec.calls, 1);
    assert_int_equal(sh.calls, 1);
    nk_io_stop(loop, &sh.fresh);
    nk_loop_free(loop);
    assert_non_null(sh.ran);
    close(sh.ran->io.fd);
    close(sh.ran->peer_fd);
    free(sh.ran);
    close(sh.fresh.fd);
    close(sh.fresh_writer);
}

typedef struct {
    nk_io old, fresh;
    io_rec old_rec, fresh_rec;
    int old_peer;
    int new_writer;
} reuse_ctx;

static void reuse_cb(nk_loop *loop, nk_io *io, unsigned events)
{
    reuse_ctx *c = io->data;
    c->old_rec.calls++;
    (void)events;
    int num = io->fd;
    nk_io_stop(loop, io);
    close(num);
    close(c->old_peer);
    int p[2];
    assert_int_equal(pipe(p), 0);
    /* Force the new descriptor onto the very number just closed (pipe may already pick it). */
    if (p[0] != num) {
        assert_int_equal(dup2(p[0], num), num);
        close(p[0]);
    }
    nonblock(num);
    c->new_writer = p[1];
    nk_io_init(&c->fresh, num, rec_cb, &c->fresh_rec);
    assert_int_equal(nk_io_start(loop, &c->fresh, NK_READ), 0);
}

static void test_io_fd_reuse_in_callback(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    reuse_ctx c;
    memset(&c, 0, sizeof c);
    int sv[2];
    make_pair(sv);
    c.old_peer = sv[1];
    nk_io_init(&c.old, sv[0], reuse_cb, &c);
    assert_int_equal(nk_io_start(loop, &c.old, NK_READ), 0);
    put_byte(sv[1]);
    assert_false(run_once(loop));
    assert_int_equal(c.old_rec.calls, 1);
    assert_int_equal(c.fresh_rec.calls, 0);

    /* Same fd number, same interest, new file: nothing to read yet. */
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(c.fresh_rec.calls, 0);
    /* The new file must really be watched (epoll forgot the old one when it was closed). */
    put_byte(c.new_writer);
    assert_false(run_once(loop));
    assert_int_equal(c.fresh_rec.calls, 1);
    assert_int_equal(c.fresh_rec.last, NK_READ);
    assert_int_equal(c.old_rec.calls, 1);
    nk_io_stop(loop, &c.fresh);
    nk_loop_free(loop);
    close(c.fresh.fd);
    close(c.new_writer);
}

static void test_io_hangup(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    io_rec r = {0};
    nk_io io;
    nk_io_init(&io, sv[0], rec_cb, &r);
    assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
    close(sv[1]);
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 1);
    assert_true(r.last & NK_READ);
    if (!is_backend(loop, "select"))
        assert_true(r.last & NK_ERROR);
    char c;
    assert_int_equal(read(sv[0], &c, 1), 0); /* end of file */
    nk_io_stop(loop, &io);
    close(sv[0]);

    /* Write side of a pipe whose reader is gone: an error, reported with the write interest. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    io_rec w = {0};
    nk_io wio;
    nk_io_init(&wio, p[1], rec_cb, &w);
    assert_int_equal(nk_io_start(loop, &wio, NK_WRITE), 0);
    assert_false(run_once(loop));
    assert_int_equal(w.calls, 1);
    assert_true(w.last & NK_WRITE);
    assert_false(w.last & NK_READ);
    if (!is_backend(loop, "select"))
        assert_true(w.last & NK_ERROR);
    errno = 0;
    assert_int_equal(write(p[1], "x", 1), -1);
    assert_int_equal(errno, EPIPE);
    nk_io_stop(loop, &wio);
    close(p[1]);
    nk_loop_free(loop);
}

static void test_io_closed_fd_reports_error(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    close(p[1]);
    io_rec r = {0};
    nk_io io;
    nk_io_init(&io, p[0], rec_cb, &r);
    /* Accepted (the change is batched), then reported as an error instead of failing the loop. */
    assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 1);
    assert_true(r.last & NK_ERROR);
    assert_true(r.last & NK_READ);
    nk_io_stop(loop, &io);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 1);
    nk_loop_free(loop);
}

static void test_io_regular_file(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    FILE *f = tmpfile();
    assert_non_null(f);
    io_rec r = {0};
    nk_io io;
    nk_io_init(&io, fileno(f), rec_cb, &r);
    /* Regular files are always ready (epoll refuses them with EPERM; the loop must cope). */
    assert_int_equal(nk_io_start(loop, &io, NK_READ | NK_WRITE), 0);
    assert_false(run_once(loop));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last, NK_READ | NK_WRITE);
    assert_int_equal(nk_io_start(loop, &io, NK_WRITE), 0);
    assert_false(run_once(loop));
    assert_int_equal(r.last, NK_WRITE);
    nk_io_stop(loop, &io);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 2);
    nk_loop_free(loop);
    fclose(f);
}

static void test_io_select_fd_limit(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    const int high = 1100;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur <= (rlim_t)high) {
        if (rl.rlim_max <= (rlim_t)high) {
            nk_loop_free(loop);
            skip();
        }
        rl.rlim_cur = high + 1;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    assert_true(high >= FD_SETSIZE);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(dup2(p[0], high), high);
    io_rec r = {0};
    nk_io io;
    nk_io_init(&io, high, rec_cb, &r);
    if (is_backend(loop, "select")) {
        assert_int_equal(nk_io_start(loop, &io, NK_READ), -ERANGE);
        assert_false(nk_io_active(&io));
        assert_int_equal(nk_loop_active(loop), 0);
    } else {
        /* Other backends have no such limit: the high descriptor just works. */
        assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
        put_byte(p[1]);
        assert_false(run_once(loop));
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.last, NK_READ);
        nk_io_stop(loop, &io);
    }
    nk_loop_free(loop);
    close(high);
    close(p[0]);
    close(p[1]);
}

static void test_io_edge(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    io_rec r = {0};
    nk_io io;
    nk_io_init(&io, sv[0], rec_cb, &r);
    if (!is_backend(loop, "epoll")) {
        assert_int_equal(nk_io_start(loop, &io, NK_READ | NK_EDGE), -ENOTSUP);
        assert_false(nk_io_active(&io));
        assert_int_equal(nk_loop_active(loop), 0);
    } else {
        assert_int_equal(nk_io_start(loop, &io, NK_READ | NK_EDGE), 0);
        put_byte(sv[1]);
        assert_false(run_once(loop));
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.last, NK_READ);
        /* Not consumed, but no new edge: not reported again. */
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
        assert_int_equal(r.calls, 1);
        put_byte(sv[1]);
        assert_false(run_once(loop));
        assert_int_equal(r.calls, 2);
        nk_io_stop(loop, &io);
    }
    nk_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
}

/* ---- timers ----------------------------------------------------------------------------- */

typedef struct {
    int order[64];
    int n;
} order_log;

typedef struct {
    nk_timer t;
    int id;
    order_log *log;
} tagged_timer;

static void log_timer_cb(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    tagged_timer *tt = t->data;
    if (tt->log->n < 64)
        tt->log->order[tt->log->n++] = tt->id;
}

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

static void count_timer_cb(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    ++*(int *)t->data;
}

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

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_read_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_write_and_modify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_stop_in_own_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_stop_other_fired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_fd_reuse_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_hangup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_closed_fd_reports_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_regular_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_select_fd_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_order_and_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_cancel_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_repeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_zero_rearm_no_spin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_stop_in_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_stop_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_child_and_hup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_active, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
