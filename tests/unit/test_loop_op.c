/* Operations (nk_op, netkit/op.h) on every backend: native io_uring requests on uring, a
 * watcher plus the non-blocking system call elsewhere, with the same callbacks and rules. */
#include "loop_fixture.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>

#include <netkit/op.h>

/* ---- helpers ---------------------------------------------------------------------------- */

typedef struct {
    int calls;
    ssize_t last;
    ssize_t results[256];
} op_rec;

static void rec_op_cb(nk_loop *loop, nk_op *op, ssize_t result)
{
    (void)loop;
    op_rec *r = op->data;
    if (r->calls < 256)
        r->results[r->calls] = result;
    r->calls++;
    r->last = result;
}

/* Run until *calls reaches want (bounded: 5 s of iterations). */
static void run_until(nk_loop *loop, const int *calls, int want)
{
    for (int i = 0; i < 5000 && *calls < want; i++)
        assert_false(run_once(loop));
    assert_true(*calls >= want);
}

/* Stop op; when the kernel still holds it (uring), its one -ECANCELED callback must come. */
static void stop_and_settle(nk_loop *loop, nk_op *op, op_rec *r)
{
    int before = r->calls;
    int rc = nk_op_stop(loop, op);
    if (rc == -EINPROGRESS) {
        assert_true(is_backend(loop, "uring"));
        assert_true(nk_op_active(op));
        run_until(loop, &r->calls, before + 1);
        assert_int_equal(r->last, -ECANCELED);
    } else {
        assert_int_equal(rc, 0);
    }
    assert_false(nk_op_active(op));
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_true(r->calls <= before + 1);
}

static int tcp_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 256), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* ---- echo: recv, then send back what came, on the loop; the peer uses plain calls ------- */

typedef struct {
    int fd;
    nk_op rx, tx;
    char buf[4096];
    int echoed, closed;
} echo_conn;

static void echo_sent(nk_loop *loop, nk_op *op, ssize_t result);

static void echo_received(nk_loop *loop, nk_op *op, ssize_t result)
{
    echo_conn *c = op->data;
    if (result <= 0) {
        c->closed = 1;
        return;
    }
    assert_int_equal(nk_op_send(loop, &c->tx, c->fd, c->buf, (size_t)result), 0);
}

static void echo_sent(nk_loop *loop, nk_op *op, ssize_t result)
{
    echo_conn *c = op->data;
    assert_true(result > 0);
    c->echoed++;
    assert_int_equal(nk_op_recv(loop, &c->rx, c->fd, c->buf, sizeof c->buf), 0);
}

static void echo_start(nk_loop *loop, echo_conn *c, int fd)
{
    memset(c, 0, sizeof *c);
    c->fd = fd;
    nk_op_init(&c->rx, echo_received, c);
    nk_op_init(&c->tx, echo_sent, c);
    assert_int_equal(nk_op_recv(loop, &c->rx, fd, c->buf, sizeof c->buf), 0);
}

static void ping(nk_loop *loop, echo_conn *c, int peer, const char *msg)
{
    size_t n = strlen(msg);
    int want = c->echoed + 1;
    assert_int_equal(write(peer, msg, n), (ssize_t)n);
    run_until(loop, &c->echoed, want);
    char back[64] = {0};
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(peer, back + got, sizeof back - got);
        if (r < 0 && errno == EAGAIN) {
            assert_false(run_once(loop));
            continue;
        }
        assert_true(r > 0);
        got += (size_t)r;
    }
    assert_memory_equal(back, msg, n);
}

static void test_echo_socketpair(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    echo_conn c;
    echo_start(loop, &c, sv[0]);
    ping(loop, &c, sv[1], "hello");
    ping(loop, &c, sv[1], "second message");
    /* The peer's end of stream: recv completes with 0. */
    close(sv[1]);
    run_until(loop, &c.closed, 1);
    assert_false(nk_op_active(&c.rx));
    assert_false(nk_op_active(&c.tx));
    assert_int_equal(nk_loop_active(loop), 0);
    close(sv[0]);
    assert_int_equal(nk_loop_free(loop), 0);
}

/* ---- accept ------------------------------------------------------------------------------ */

typedef struct {
    int fds[128];
    int n;
    int stop_after; /* stop the accept op from its own callback at this count (0: never) */
    int stop_rc;
} accepted;

static void on_accept(nk_loop *loop, nk_op *op, ssize_t result)
{
    accepted *a = op->data;
    if (result < 0) {
        a->stop_rc = (int)result; /* an error ends it; -ECANCELED after a stop */
        return;
    }
    assert_true(a->n < 128);
    a->fds[a->n++] = (int)result;
    assert_int_not_equal(fcntl((int)result, F_GETFL) & O_NONBLOCK, 0);
    assert_int_not_equal(fcntl((int)result, F_GETFD) & FD_CLOEXEC, 0);
    if (a->stop_after != 0 && a->n == a->stop_after)
        a->stop_rc = nk_op_stop(loop, op);
}

static void test_echo_tcp(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int port, lfd = tcp_listener(&port);
    accepted a = {0};
    nk_op acc;
    nk_op_init(&acc, on_accept, &a);
    assert_int_equal(nk_op_accept(loop, &acc, lfd), 0);
    int peer = tcp_connect(port);
    run_until(loop, &a.n, 1);
    nonblock(peer);
    echo_conn c;
    echo_start(loop, &c, a.fds[0]);
    ping(loop, &c, peer, "over tcp");
    ping(loop, &c, peer, "and again");
    assert_true(nk_op_active(&acc)); /* multishot: still accepting */
    op_rec r = {0};
    acc.data = &r;
    acc.cb = rec_op_cb;
    stop_and_settle(loop, &acc, &r);
    close(peer);
    run_until(loop, &c.closed, 1);
    close(a.fds[0]);
    close(lfd);
    assert_int_equal(nk_loop_free(loop), 0);
}

static void test_accept_100(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int port, lfd = tcp_listener(&port);
    accepted a = {0};
    nk_op acc;
    nk_op_init(&acc, on_accept, &a);
    assert_int_equal(nk_op_accept(loop, &acc, lfd), 0);
    int peers[100];
    for (int i = 0; i < 100; i++) {
        peers[i] = tcp_connect(port);
        if (i % 10 == 9)
            assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    }
    run_until(loop, &a.n, 100);
    assert_int_equal(a.n, 100);
    assert_true(nk_op_active(&acc));
    /* Each accepted socket is a distinct connection: a byte from each peer reaches it. */
    for (int i = 0; i < 100; i++) {
        put_byte(peers[i]);
        char ch;
        struct timeval tv = {.tv_sec = 5};
        setsockopt(a.fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        int fl = fcntl(a.fds[i], F_GETFL);
        fcntl(a.fds[i], F_SETFL, fl & ~O_NONBLOCK);
        assert_int_equal(read(a.fds[i], &ch, 1), 1);
    }
    op_rec r = {0};
    acc.data = &r;
    acc.cb = rec_op_cb;
    stop_and_settle(loop, &acc, &r);
    for (int i = 0; i < 100; i++) {
        close(peers[i]);
        close(a.fds[i]);
    }
    close(lfd);
    assert_int_equal(nk_loop_free(loop), 0);
}

static void test_accept_stopped_from_its_callback(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int port, lfd = tcp_listener(&port);
    accepted a = {.stop_after = 3};
    nk_op acc;
    nk_op_init(&acc, on_accept, &a);
    assert_int_equal(nk_op_accept(loop, &acc, lfd), 0);
    int peers[6];
    for (int i = 0; i < 6; i++)
        peers[i] = tcp_connect(port);
    run_until(loop, &a.n, 3);
    if (a.stop_rc == -EINPROGRESS) { /* uring: one -ECANCELED callback to come */
        for (int i = 0; i < 5000 && nk_op_active(&acc); i++)
            assert_false(run_once(loop));
        assert_int_equal(a.stop_rc, -ECANCELED);
    } else {
        assert_int_equal(a.stop_rc, 0);
    }
    assert_false(nk_op_active(&acc));
    for (int i = 0; i < 3; i++)
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(a.n, 3); /* nothing after the stop */
    /* The three left are still in the listener's queue, or were closed by the loop. */
    for (int i = 0; i < 6; i++)
        close(peers[i]);
    for (int i = 0; i < a.n; i++)
        close(a.fds[i]);
    close(lfd);
    assert_int_equal(nk_loop_free(loop), 0);
}

/* A socket that does not listen: the accept ends with -EINVAL. On uring that is also what a
 * kernel without multishot accept (before 5.19) answers, so the loop goes on with one plain
 * accept per request: the connections after it prove that path too. */
static void test_accept_not_listening(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(s >= 0);
    accepted a = {0};
    nk_op acc;
    nk_op_init(&acc, on_accept, &a);
    assert_int_equal(nk_op_accept(loop, &acc, s), 0);
    for (int i = 0; i < 50 && nk_op_active(&acc); i++)
        assert_false(run_once(loop));
    assert_false(nk_op_active(&acc));
    assert_int_equal(a.stop_rc, -EINVAL);
    assert_int_equal(a.n, 0);
    close(s);
    int port, lfd = tcp_listener(&port);
    assert_int_equal(nk_op_accept(loop, &acc, lfd), 0);
    int peers[5];
    for (int i = 0; i < 5; i++)
        peers[i] = tcp_connect(port);
    run_until(loop, &a.n, 5);
    assert_true(nk_op_active(&acc));
    op_rec r = {0};
    acc.data = &r;
    acc.cb = rec_op_cb;
    stop_and_settle(loop, &acc, &r);
    for (int i = 0; i < 5; i++) {
        close(peers[i]);
        close(a.fds[i]);
    }
    close(lfd);
    assert_int_equal(nk_loop_free(loop), 0);
}

/* ---- whole writes ------------------------------------------------------------------------ */

/* A reader on the loop that collects everything from fd until n bytes came. */
typedef struct {
    nk_op op;
    int fd;
    char *data;
    size_t n, got;
    char chunk[8192];
} collector;

static void collect_cb(nk_loop *loop, nk_op *op, ssize_t result)
{
    collector *c = op->data;
    assert_true(result > 0);
    memcpy(c->data + c->got, c->chunk, (size_t)result);
    c->got += (size_t)result;
    if (c->got < c->n)
        assert_int_equal(nk_op_recv(loop, op, c->fd, c->chunk,
                                    c->n - c->got < sizeof c->chunk ? c->n - c->got
                                                                    : sizeof c->chunk), 0);
}

static void collect_start(nk_loop *loop, collector *c, int fd, size_t n)
{
    c->fd = fd;
    c->n = n;
    c->got = 0;
    c->data = malloc(n);
    assert_non_null(c->data);
    nk_op_init(&c->op, collect_cb, c);
    assert_int_equal(nk_op_recv(loop, &c->op, fd, c->chunk, sizeof c->chunk), 0);
}

static void small_buffers(int fd)
{
    int small = 4096;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
}

static char *pattern(size_t n, unsigned seed)
{
    char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(seed + i * 7 + i / 251);
    return p;
}

static void test_partial_writes_send_whole(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    small_buffers(sv[0]);
    const size_t n = 1 << 20;
    char *out = pattern(n, 1);
    op_rec r = {0};
    nk_op tx;
    nk_op_init(&tx, rec_op_cb, &r);
    collector col;
    assert_int_equal(nk_op_send(loop, &tx, sv[0], out, n), 0);
    assert_int_equal(r.calls, 0); /* never from inside the start */
    collect_start(loop, &col, sv[1], n);
    run_until(loop, &r.calls, 1);
    assert_int_equal(r.last, (ssize_t)n);
    while (col.got < n)
        assert_false(run_once(loop));
    assert_memory_equal(col.data, out, n);
    assert_int_equal(nk_loop_active(loop), 0);
    free(col.data);
    free(out);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(nk_loop_free(loop), 0);
}

static void test_writev_whole_and_in_order(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    small_buffers(sv[0]);
    /* Three operations queued on one socket: a writev of odd pieces (one empty), a send, a
     * second writev. The bytes arrive in start order, never interleaved, and so do the
     * callbacks. */
    char *a = pattern(300000, 3), *b = pattern(5, 4), *c = pattern(200000, 5), *d = pattern(77777, 6);
    struct iovec v1[4] = {{a, 300000}, {b, 0}, {b, 5}, {c, 200000}};
    struct iovec v2[1] = {{d, 77777}};
    const size_t total = 300000 + 5 + 200000 + 77777 + 1000;
    char *e = pattern(1000, 7);
    op_rec r = {0};
    nk_op w1, s1, w2;
    nk_op_init(&w1, rec_op_cb, &r);
    nk_op_init(&s1, rec_op_cb, &r);
    nk_op_init(&w2, rec_op_cb, &r);
    assert_int_equal(nk_op_writev(loop, &w1, sv[0], v1, 4), 0);
    assert_int_equal(nk_op_send(loop, &s1, sv[0], e, 1000), 0);
    assert_int_equal(nk_op_writev(loop, &w2, sv[0], v2, 1), 0);
    assert_int_equal(nk_op_writev(loop, &w2, sv[0], v2, 1), -EBUSY);
    collector col;
    collect_start(loop, &col, sv[1], total);
    run_until(loop, &r.calls, 3);
    assert_int_equal(r.results[0], 500005);
    assert_int_equal(r.results[1], 1000);
    assert_int_equal(r.results[2], 77777);
    while (col.got < total)
        assert_false(run_once(loop));
    char *want = malloc(total);
    memcpy(want, a, 300000);
    memcpy(want + 300000, b, 5);
    memcpy(want + 300005, c, 200000);
    memcpy(want + 500005, e, 1000);
    memcpy(want + 501005, d, 77777);
    assert_memory_equal(col.data, want, total);
    free(want);
    free(col.data);
    free(a), free(b), free(c), free(d), free(e);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(nk_loop_free(loop), 0);
}

static void test_sendfile(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    char path[] = "/tmp/netkit-op-XXXXXX";
    int file = mkstemp(path);
    assert_true(file >= 0);
    unlink(path);
    const size_t n = 700000;
    char *content = pattern(n, 9);
    assert_int_equal(write(file, content, n), (ssize_t)n);
    int sv[2];
    make_pair(sv);
    small_buffers(sv[0]);
    op_rec r = {0};
    nk_op tx;
    nk_op_init(&tx, rec_op_cb, &r);
    /* From offset 1000 to past the end: the file ends first. */
    assert_int_equal(nk_op_sendfile(loop, &tx, sv[0], file, 1000, n), 0);
    /* Tried at once on every backend (sendfile is emulated everywhere): the small buffer took
     * a part, which nk_op_progress tells while the operation still runs. */
    size_t first = nk_op_progress(&tx);
    assert_true(nk_op_active(&tx));
    assert_true(first > 0 && first < n - 1000);
    collector col;
    collect_start(loop, &col, sv[1], n - 1000);
    run_until(loop, &r.calls, 1);
    assert_int_equal(r.last, (ssize_t)(n - 1000));
    assert_int_equal(nk_op_progress(&tx), n - 1000);
    while (col.got < n - 1000)
        assert_false(run_once(loop));
    assert_memory_equal(col.data, content + 1000, n - 1000);
    assert_int_equal(lseek(file, 0, SEEK_CUR), (off_t)n); /* its own position untouched */
    free(col.data);
    free(content);
    close(file);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(nk_loop_free(loop), 0);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_send_to_closed_peer(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    close(sv[1]);
    static char big[1 << 16];
    op_rec r = {0};
    nk_op tx;
    nk_op_init(&tx, rec_op_cb, &r);
    assert_int_equal(nk_op_send(loop, &tx, sv[0], big, sizeof big), 0);
    run_until(loop, &r.calls, 1);
    assert_true(r.last == -EPIPE || r.last == -ECONNRESET); /* and no SIGPIPE killed us */
    close(sv[0]);
    assert_int_equal(nk_loop_free(loop), 0);
}

static void test_recv_reset(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int port, lfd = tcp_listener(&port);
    int peer = tcp_connect(port);
    int fd;
    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) < 0)
        usleep(1000);
    char buf[16];
    op_rec r = {0};
    nk_op rx;
    nk_op_init(&rx, rec_op_cb, &r);
    assert_int_equal(nk_op_recv(loop, &rx, fd, buf, sizeof buf), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0); /* waiting in the kernel */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(peer); /* RST */
    run_until(loop, &r.calls, 1);
    assert_int_equal(r.last, -ECONNRESET);
    close(fd);
    close(lfd);
    assert_int_equal(nk_loop_free(loop), 0);
}

static void test_start_errors(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    char buf[8];
    nk_op op;
    nk_op_init(&op, rec_op_cb, &(op_rec){0});
    assert_int_equal(nk_op_recv(loop, &op, -1, buf, sizeof buf), -EBADF);
    assert_int_equal(nk_op_recv(loop, &op, sv[0], buf, 0), -EINVAL);
    assert_int_equal(nk_op_send(loop, &op, sv[0], buf, 0), -EINVAL);
    assert_int_equal(nk_op_writev(loop, &op, sv[0], NULL, 1), -EINVAL);
    assert_int_equal(nk_op_sendfile(loop, &op, sv[0], -1, 0, 1), -EBADF);
    /* A watcher of the caller's on the descriptor: refused on every backend. */
    nk_io io;
    io_rec ir = {0};
    nk_io_init(&io, sv[0], rec_cb, &ir);
    assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
    assert_int_equal(nk_op_recv(loop, &op, sv[0], buf, sizeof buf), -EEXIST);
    nk_io_stop(loop, &io);
    assert_false(nk_op_active(&op));
    assert_int_equal(nk_op_stop(loop, &op), 0); /* not started: a no-op */
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(nk_loop_free(loop), 0);
}

/* ---- stopping -------------------------------------------------------------------------- */

static void test_stop_before_completion(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    char buf[16];
    op_rec r = {0};
    nk_op rx;
    nk_op_init(&rx, rec_op_cb, &r);
    /* Stopped before any iteration: over at once on every backend. */
    assert_int_equal(nk_op_recv(loop, &rx, sv[0], buf, sizeof buf), 0);
    assert_int_equal(nk_op_stop(loop, &rx), 0);
    assert_false(nk_op_active(&rx));
    /* Stopped while waiting (in the kernel on uring). */
    assert_int_equal(nk_op_recv(loop, &rx, sv[0], buf, sizeof buf), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 0);
    if (is_backend(loop, "uring")) { /* the request is in the kernel: cancelled, called once */
        assert_int_equal(nk_op_stop(loop, &rx), -EINPROGRESS);
        assert_int_equal(nk_op_stop(loop, &rx), -EINPROGRESS);
        assert_int_equal(nk_loop_free(loop), -EBUSY);
        run_until(loop, &r.calls, 1);
        assert_int_equal(r.last, -ECANCELED);
    } else {
        assert_int_equal(nk_op_stop(loop, &rx), 0);
    }
    assert_false(nk_op_active(&rx));
    int calls = r.calls;
    /* What arrives now reaches nobody: no callback after the stop. */
    put_byte(sv[1]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, calls);
    /* The op is reusable, and the byte is still there (emulated) or was taken by the
     * cancelled request (uring: documented loss) -- either way a new recv works. */
    put_byte(sv[1]);
    assert_int_equal(nk_op_recv(loop, &rx, sv[0], buf, sizeof buf), 0);
    run_until(loop, &r.calls, calls + 1);
    assert_true(r.last >= 1);
    /* A completed operation whose callback is pending (a send finishing inside its start)
     * can be stopped too: then no callback. */
    nk_op tx;
    op_rec rt = {0};
    nk_op_init(&tx, rec_op_cb, &rt);
    assert_int_equal(nk_op_send(loop, &tx, sv[0], "x", 1), 0);
    stop_and_settle(loop, &tx, &rt);
    for (int i = 0; i < 3; i++)
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_true(rt.calls == 0 || rt.last == -ECANCELED);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(nk_loop_free(loop), 0);
}

/* Two recvs queued on one socket; the first one's callback stops the second. */
typedef struct {
    nk_op a, b;
    op_rec ra, rb;
} pair_ops;

static void stop_other_cb(nk_loop *loop, nk_op *op, ssize_t result)
{
    pair_ops *p = op->data;
    p->ra.calls++;
    p->ra.last = result;
    int rc = nk_op_stop(loop, &p->b);
    assert_true(rc == 0 || rc == -EINPROGRESS);
}

static void b_cb(nk_loop *loop, nk_op *op, ssize_t result)
{
    (void)loop;
    pair_ops *p = op->data;
    p->rb.calls++;
    p->rb.last = result;
}

static void test_stop_from_inside_a_callback(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    char b1[4], b2[4];
    pair_ops p = {0};
    nk_op_init(&p.a, stop_other_cb, &p);
    nk_op_init(&p.b, b_cb, &p);
    assert_int_equal(nk_op_recv(loop, &p.a, sv[0], b1, 1), 0);
    assert_int_equal(nk_op_recv(loop, &p.b, sv[0], b2, 1), 0);
    assert_int_equal(write(sv[1], "12", 2), 2);
    run_until(loop, &p.ra.calls, 1);
    assert_int_equal(p.ra.last, 1);
    assert_int_equal(b1[0], '1');
    for (int i = 0; i < 5 && nk_op_active(&p.b); i++)
        assert_false(run_once(loop));
    assert_false(nk_op_active(&p.b));
    /* b was queued behind a (never in the kernel): stopped at once, no callback. */
    assert_int_equal(p.rb.calls, 0);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(nk_loop_free(loop), 0);
}

static void test_free_with_ops_in_flight_is_refused(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    char buf[8];
    op_rec r = {0};
    nk_op rx;
    nk_op_init(&rx, rec_op_cb, &r);
    assert_int_equal(nk_op_recv(loop, &rx, sv[0], buf, sizeof buf), 0);
    assert_int_equal(nk_loop_free(loop), -EBUSY);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(nk_loop_free(loop), -EBUSY);
    assert_int_equal(nk_loop_active(loop), 1); /* an operation keeps the loop alive, once */
    int rc = nk_op_stop(loop, &rx);
    if (rc == -EINPROGRESS) {
        assert_int_equal(nk_loop_free(loop), -EBUSY); /* still owed its -ECANCELED */
        assert_int_equal(nk_loop_run(loop, NK_RUN_DEFAULT), 0); /* returns once it came */
        assert_int_equal(r.last, -ECANCELED);
    }
    assert_int_equal(nk_loop_active(loop), 0);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(nk_loop_free(loop), 0);
}

/* ---- many at once ---------------------------------------------------------------------- */

static void test_many_concurrent(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    enum { N = 300, ROUNDS = 3 };
    int (*sv)[2] = calloc(N, sizeof *sv);
    echo_conn *conns = calloc(N, sizeof *conns);
    assert_non_null(sv);
    assert_non_null(conns);
    for (int i = 0; i < N; i++) {
        make_pair(sv[i]);
        echo_start(loop, &conns[i], sv[i][0]);
    }
    for (int round = 1; round <= ROUNDS; round++) {
        for (int i = 0; i < N; i++)
            assert_int_equal(write(sv[i][1], &round, sizeof round), (ssize_t)sizeof round);
        int total = 0;
        for (int k = 0; k < 5000 && total < N * round; k++) {
            assert_false(run_once(loop));
            total = 0;
            for (int i = 0; i < N; i++)
                total += conns[i].echoed;
        }
        assert_int_equal(total, N * round);
        for (int i = 0; i < N; i++) {
            int back = 0;
            assert_int_equal(read(sv[i][1], &back, sizeof back), (ssize_t)sizeof back);
            assert_int_equal(back, round);
        }
    }
    for (int i = 0; i < N; i++)
        close(sv[i][1]);
    for (int k = 0; k < 5000; k++) {
        int closed = 0;
        for (int i = 0; i < N; i++)
            closed += conns[i].closed;
        if (closed == N)
            break;
        assert_false(run_once(loop));
    }
    assert_int_equal(nk_loop_active(loop), 0);
    for (int i = 0; i < N; i++)
        close(sv[i][0]);
    free(sv);
    free(conns);
    assert_int_equal(nk_loop_free(loop), 0);
}

int main(void)
{
    skip_suite_if_backend_refused();
    signal(SIGPIPE, SIG_DFL); /* a send without MSG_NOSIGNAL would end the test run */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_socketpair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_100, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_stopped_from_its_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_not_listening, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_writes_send_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writev_whole_and_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sendfile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_to_closed_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recv_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_before_completion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_from_inside_a_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_ops_in_flight_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
