/* Event loop: the backend registry and I/O watchers (readiness, modify, stop inside callbacks,
 * descriptor reuse, fds closed without a stop, errors, hang-ups, select's FD_SETSIZE limit,
 * edge-triggered epoll and uring). */
#include "loop_fixture.h"

#include <limits.h>

/* ---- registry --------------------------------------------------------------------------- */

static void test_registry(void **state)
{
    (void)state;
    const char *const *names = nk_loop_backends();
    assert_string_equal(names[0], "epoll");
    assert_string_equal(names[1], "uring");
    assert_string_equal(names[2], "poll");
    assert_string_equal(names[3], "select");
    assert_null(names[4]);

    nk_loop *loop = NULL;
    assert_int_equal(nk_loop_new("nosuch", &loop), -EINVAL);
    assert_int_equal(nk_loop_new("", &loop), -EINVAL);
    for (int i = 0; names[i]; i++) {
        int rc = nk_loop_new(names[i], &loop);
        if (rc != 0 && uring_refused(names[i], rc))
            continue; /* the kernel's choice, tested in test_loop_inflight.c */
        assert_int_equal(rc, 0);
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

/* Closing an fd without stopping its watcher is a caller bug, but its outcome is defined: when
 * another file gets the number and a watcher is started on it, the loop stops the stale watcher
 * (it never sees the new file's events) and the new one works, on every backend. epoll would
 * otherwise have forgotten the closed file, and poll/select would hand the new file's events to
 * the old watcher. */
static void test_io_close_without_stop(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    for (int registered = 0; registered < 2; registered++) {
        int old[2], fresh[2];
        make_pair(old);
        int num = old[0];
        io_rec ra = {0}, rb = {0};
        nk_io a, b;
        nk_io_init(&a, num, rec_cb, &ra);
        assert_int_equal(nk_io_start(loop, &a, NK_READ), 0);
        if (registered) /* else the close happens while A's registration is still queued */
            assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
        close(num); /* the bug under test: no nk_io_stop(loop, &a) first */
        close(old[1]);
        reopen_on(num, fresh);

        nk_io_init(&b, num, rec_cb, &rb);
        assert_int_equal(nk_io_start(loop, &b, NK_READ), 0);
        assert_false(nk_io_active(&a)); /* stopped by the loop */
        assert_true(nk_io_active(&b));
        assert_int_equal(nk_loop_active(loop), 1);
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
        assert_int_equal(rb.calls, 0);
        put_byte(fresh[1]);
        assert_false(run_once(loop));
        assert_int_equal(rb.calls, 1);
        assert_int_equal(rb.last, NK_READ);
        assert_int_equal(ra.calls, 0);
        nk_io_stop(loop, &a); /* already stopped: harmless, and must not disturb B */
        assert_false(run_once(loop)); /* still readable: level-triggered */
        assert_int_equal(rb.calls, 2);
        assert_int_equal(ra.calls, 0);
        nk_io_stop(loop, &b);
        assert_int_equal(nk_loop_active(loop), 0);
        close(fresh[0]);
        close(fresh[1]);
    }

    /* A regular file (always ready; epoll keeps it beside its set) replaced by a socket: the
     * socket must be really watched, not reported ready because the number once was a file. */
    {
        FILE *f = tmpfile();
        assert_non_null(f);
        int num = dup(fileno(f)), fresh[2];
        assert_true(num >= 0);
        fclose(f);
        io_rec ra = {0}, rb = {0};
        nk_io a, b;
        nk_io_init(&a, num, rec_cb, &ra);
        assert_int_equal(nk_io_start(loop, &a, NK_READ), 0);
        assert_false(run_once(loop));
        assert_int_equal(ra.calls, 1);
        close(num);
        reopen_on(num, fresh);
        nk_io_init(&b, num, rec_cb, &rb);
        assert_int_equal(nk_io_start(loop, &b, NK_READ), 0);
        assert_false(nk_io_active(&a));
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
        assert_int_equal(rb.calls, 0);
        put_byte(fresh[1]);
        assert_false(run_once(loop));
        assert_int_equal(rb.calls, 1);
        assert_int_equal(rb.last, NK_READ);
        assert_int_equal(ra.calls, 1);
        nk_io_stop(loop, &b);
        close(fresh[0]);
        close(fresh[1]);
    }

    /* The same file back on the number (through a duplicate) is not a new file: the first
     * watcher keeps it, a second one is refused as for any fd that already has a watcher. */
    int sv[2];
    make_pair(sv);
    int num = sv[0], keep = dup(sv[0]);
    assert_true(keep >= 0);
    io_rec ra = {0}, rb = {0};
    nk_io a, b;
    nk_io_init(&a, num, rec_cb, &ra);
    assert_int_equal(nk_io_start(loop, &a, NK_READ), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    close(num);
    assert_int_equal(dup2(keep, num), num);
    nk_io_init(&b, num, rec_cb, &rb);
    assert_int_equal(nk_io_start(loop, &b, NK_READ), -EEXIST);
    assert_true(nk_io_active(&a));
    put_byte(sv[1]);
    assert_false(run_once(loop));
    assert_int_equal(ra.calls, 1);
    assert_int_equal(rb.calls, 0);
    nk_io_stop(loop, &a);
    close(num);
    close(keep);
    close(sv[1]);
    nk_loop_free(loop);
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
        /* The ceiling is advertised, so callers can stay below it instead of failing. */
        assert_int_equal(nk_loop_max_fd(loop), FD_SETSIZE - 1);
        assert_int_equal(nk_io_start(loop, &io, NK_READ), -ERANGE);
        assert_false(nk_io_active(&io));
        assert_int_equal(nk_loop_active(loop), 0);
    } else {
        /* Other backends have no such limit: the high descriptor just works. */
        assert_int_equal(nk_loop_max_fd(loop), INT_MAX);
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
    if (!is_backend(loop, "epoll") && !is_backend(loop, "uring")) {
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

int main(void)
{
    skip_suite_if_backend_refused();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_read_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_write_and_modify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_stop_in_own_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_stop_other_fired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_fd_reuse_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_close_without_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_hangup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_closed_fd_reports_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_regular_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_select_fd_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_edge, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
