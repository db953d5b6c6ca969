/* The engine's life cycle, as an embedding program lives it: listen on a socket it made, serve,
 * nk_httpd_shutdown, and free the engine from on_drained. Run under ASan (make asan), these
 * tests catch any engine frame still on the stack when on_drained frees the engine, and any
 * descriptor nk_httpd_listen should have refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netkit/httpd.h>
#include <netkit/loop.h>

#include "backend_skip.h"

#define BIG_FILE_BYTES (8 * 1024 * 1024) /* far more than socket buffers hold */

typedef struct fixture {
    char root[64];
    nk_loop *loop;
    nk_httpd *srv;
    nk_httpd_config cfg;
    int drained;        /* on_drained calls */
    int in_shutdown;    /* set while nk_httpd_shutdown runs */
    int drained_inside; /* on_drained was called from inside nk_httpd_shutdown */
    int logs, log_errors;
    char last_log[256];
    nk_timer guard;
    int guard_fired;
} fixture;

static void write_file(const char *dir, const char *name, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < len; i++)
        fputc('a' + (int)(i % 26), f);
    assert_int_equal(fclose(f), 0);
}

static void remove_tree(const char *dir)
{
    const char *names[] = {"small.txt", "big.bin"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* on_drained ends the engine's life, as the documented life cycle says it may. */
static void drained_free(void *arg)
{
    fixture *f = arg;
    f->drained++;
    if (f->in_shutdown)
        f->drained_inside = 1;
    nk_httpd_free(f->srv);
    f->srv = NULL;
    nk_loop_stop(f->loop);
}

static void count_log(void *arg, nk_log_level level, const char *msg)
{
    fixture *f = arg;
    f->logs++;
    if (level == NK_LOG_ERROR)
        f->log_errors++;
    snprintf(f->last_log, sizeof f->last_log, "%s", msg);
}

static void on_guard(nk_loop *loop, nk_timer *t)
{
    fixture *f = t->data;
    f->guard_fired = 1;
    nk_loop_stop(loop);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->root, sizeof f->root, "/tmp/nk-life-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    write_file(f->root, "small.txt", 100);
    write_file(f->root, "big.bin", BIG_FILE_BYTES);
    assert_int_equal(nk_loop_new(NULL, &f->loop), 0);
    nk_httpd_config_init(&f->cfg);
    f->cfg.root = f->root;
    f->cfg.defer_accept_s = 0;
    f->cfg.on_drained = drained_free;
    f->cfg.drained_arg = f;
    f->cfg.log = count_log;
    f->cfg.log_arg = f;
    nk_timer_init(&f->guard, on_guard, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nk_timer_stop(f->loop, &f->guard);
    nk_httpd_free(f->srv);
    assert_int_equal(nk_loop_free(f->loop), 0);
    remove_tree(f->root);
    free(f);
    return 0;
}

/* Small socket buffers, so a big response stays in flight while the client does not read. */
static void small_buffers(fixture *f)
{
    f->cfg.sndbuf = 4096;
    f->cfg.unsent_max = 4096;
}

static void new_engine(fixture *f)
{
    assert_int_equal(nk_httpd_new(f->loop, &f->cfg, &f->srv), 0);
}

/* A listening TCP socket on 127.0.0.1 with a kernel-chosen port, blocking or not. */
static int tcp_listener(int nonblocking, struct sockaddr_in *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof *bound;
    assert_int_equal(getsockname(fd, (struct sockaddr *)bound, &len), 0);
    return fd;
}

/* The engine listens on a fresh socket; returns a client connected to it. A small receive
 * buffer keeps a big response in flight while the client does not read (a normal one: a tiny
 * window over loopback's large segments makes the transfer crawl on window probes). */
static int serve_and_connect_rcvbuf(fixture *f, int rcvbuf)
{
    struct sockaddr_in a;
    int lfd = tcp_listener(1, &a);
    assert_int_equal(nk_httpd_listen(f->srv, lfd), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    if (rcvbuf > 0)
        assert_int_equal(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    return c;
}

static int serve_and_connect(fixture *f)
{
    return serve_and_connect_rcvbuf(f, 0);
}

static void send_all(int fd, const char *s)
{
    size_t len = strlen(s);
    assert_int_equal(send(fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

static int readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1;
}

/* Turn the loop without blocking until the client has bytes to read (at most about 5 s).
 * Blocking turns would wait for the server's socket to drain, which only this client's
 * reading does. */
static void run_until_readable(fixture *f, int client)
{
    int i = 0;
    for (; i < 500; i++) {
        nk_loop_run(f->loop, NK_RUN_NOWAIT);
        if (readable(client, 10))
            break;
    }
    assert_true(i < 500);
}

/* Read and discard what the client has received so far. */
static size_t drain_client(int fd)
{
    char buf[65536];
    size_t total = 0;
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        total += (size_t)n;
    return total;
}

static void shutdown_engine(fixture *f)
{
    f->in_shutdown = 1;
    nk_httpd_shutdown(f->srv);
    f->in_shutdown = 0;
}

/* Turn the loop until on_drained ran (at most about 5 s), the client reading everything and
 * ending its side after the response when read_client is set. */
static void run_until_drained(fixture *f, int client, int read_client)
{
    nk_timer_start(f->loop, &f->guard, 5000, 0);
    for (int i = 0; i < 100000 && !f->drained && !f->guard_fired; i++) {
        if (read_client) {
            drain_client(client);
            /* The engine waits for the client's end after the last response ("lingering
             * close"): give it once the response has ended. */
            char byte;
            if (recv(client, &byte, 1, MSG_DONTWAIT | MSG_PEEK) == 0)
                shutdown(client, SHUT_WR);
        }
        nk_loop_run(f->loop, NK_RUN_NOWAIT);
        if (!f->drained)
            readable(client, 1);
    }
    nk_timer_stop(f->loop, &f->guard);
    assert_false(f->guard_fired);
}

/* An idle keep-alive connection is closed inside nk_httpd_shutdown: the last one gone must not
 * call on_drained from there, since freeing the engine would pull it from under shutdown. */
static void test_free_in_drained_idle_keepalive(void **state)
{
    fixture *f = *state;
    new_engine(f);
    int c = serve_and_connect(f);
    send_all(c, "GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    run_until_readable(f, c);
    assert_true(drain_client(c) > 100);
    shutdown_engine(f);
    assert_int_equal(f->drained_inside, 0);
    run_until_drained(f, c, 0);
    assert_int_equal(f->drained, 1);
    assert_null(f->srv);
    close(c);
}

/* No connection at all: on_drained still comes from the loop, not from nk_httpd_shutdown. */
static void test_free_in_drained_no_connection(void **state)
{
    fixture *f = *state;
    new_engine(f);
    struct sockaddr_in a;
    assert_int_equal(nk_httpd_listen(f->srv, tcp_listener(1, &a)), 0);
    shutdown_engine(f);
    assert_int_equal(f->drained_inside, 0);
    run_until_drained(f, -1, 0);
    assert_int_equal(f->drained, 1);
}

/* A response the client does not read outlives the drain timeout: the drain timer drops it,
 * and on_drained (freeing the engine) must not run under the timer's engine frames. */
static void test_free_in_drained_drain_timer(void **state)
{
    fixture *f = *state;
    f->cfg.drain_timeout_ms = 50;
    small_buffers(f);
    new_engine(f);
    int c = serve_and_connect_rcvbuf(f, 4096);
    send_all(c, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    run_until_readable(f, c);
    /* A few more turns so the server fills the socket buffers and waits to write. */
    for (int i = 0; i < 5; i++)
        nk_loop_run(f->loop, NK_RUN_NOWAIT);
    shutdown_engine(f);
    assert_int_equal(f->drained, 0); /* busy: waits for the response or the timeout */
    run_until_drained(f, c, 0);
    assert_int_equal(f->drained, 1);
    close(c);
}

/* A response in flight at shutdown finishes, and its connection closing from inside the
 * engine's write path is what leaves the engine drained. */
static void test_free_in_drained_after_last_response(void **state)
{
    fixture *f = *state;
    new_engine(f);
    int c = serve_and_connect(f);
    send_all(c, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    run_until_readable(f, c);
    shutdown_engine(f);
    assert_int_equal(f->drained, 0);
    run_until_drained(f, c, 1);
    assert_int_equal(f->drained, 1);
    close(c);
}

/* ---- nk_httpd_listen refuses what it cannot accept on ----------------------------------- */

static void test_listen_refuses_negative(void **state)
{
    fixture *f = *state;
    new_engine(f);
    assert_int_equal(nk_httpd_listen(f->srv, -1), -EBADF);
    assert_int_equal(nk_httpd_listen(f->srv, -98), -EBADF); /* an error code passed on */
}

static void test_listen_refuses_closed_fd(void **state)
{
    fixture *f = *state;
    new_engine(f);
    int fd = dup(0);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(nk_httpd_listen(f->srv, fd), -EBADF);
}

static void test_listen_refuses_regular_file(void **state)
{
    fixture *f = *state;
    new_engine(f);
    char path[128];
    snprintf(path, sizeof path, "%s/small.txt", f->root);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(nk_httpd_listen(f->srv, fd), -ENOTSOCK);
    close(fd);
}

static void test_listen_refuses_pipe(void **state)
{
    fixture *f = *state;
    new_engine(f);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(nk_httpd_listen(f->srv, p[0]), -ENOTSOCK);
    close(p[0]);
    close(p[1]);
}

static void test_listen_refuses_udp(void **state)
{
    fixture *f = *state;
    new_engine(f);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(nk_httpd_listen(f->srv, fd), -EINVAL);
    close(fd);
}

static void test_listen_refuses_unlistened_stream(void **state)
{
    fixture *f = *state;
    new_engine(f);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(nk_httpd_listen(f->srv, fd), -EINVAL);
    close(fd);
}

static void test_listen_refuses_same_fd_twice(void **state)
{
    fixture *f = *state;
    new_engine(f);
    struct sockaddr_in a;
    int fd = tcp_listener(1, &a);
    assert_int_equal(nk_httpd_listen(f->srv, fd), 0);
    assert_int_equal(nk_httpd_listen(f->srv, fd), -EEXIST);
    /* Still one working listener. */
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    send_all(c, "GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    run_until_readable(f, c);
    close(c);
}

/* Another watcher of the same loop has the descriptor: nk_io_start's error comes back. */
static void test_listen_propagates_watch_error(void **state)
{
    fixture *f = *state;
    new_engine(f);
    struct sockaddr_in a;
    int fd = tcp_listener(1, &a);
    nk_io other;
    nk_io_init(&other, fd, NULL, NULL);
    assert_int_equal(nk_io_start(f->loop, &other, NK_READ), 0);
    assert_int_equal(nk_httpd_listen(f->srv, fd), -EEXIST);
    nk_io_stop(f->loop, &other);
    assert_int_equal(nk_httpd_listen(f->srv, fd), 0);
}

/* A blocking listener would block the whole loop in accept when a client goes away between
 * readiness and accept: the engine makes it non-blocking itself. */
static void test_listen_makes_nonblocking(void **state)
{
    fixture *f = *state;
    new_engine(f);
    struct sockaddr_in a;
    int fd = tcp_listener(0, &a);
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    assert_int_equal(nk_httpd_listen(f->srv, fd), 0);
    assert_int_not_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
}

/* A listener whose accept fails for good (here: shut down under the engine, so it stays
 * readable and accept says EINVAL) is reported once and no longer watched, instead of a
 * silent busy loop. */
static void test_persistent_accept_error(void **state)
{
    fixture *f = *state;
    new_engine(f);
    struct sockaddr_in a;
    int fd = tcp_listener(1, &a);
    assert_int_equal(nk_httpd_listen(f->srv, fd), 0);
    assert_int_equal(shutdown(fd, SHUT_RDWR), 0);
    nk_timer_start(f->loop, &f->guard, 200, 0);
    int turns = 0;
    while (!f->guard_fired && turns < 100000) {
        nk_loop_run(f->loop, NK_RUN_ONCE);
        turns++;
    }
    /* Blocked in the wait after the error: a handful of turns, not one per readiness event. */
    assert_true(turns < 10);
    assert_int_equal(f->logs, 1);
    assert_int_equal(f->log_errors, 1);
    assert_non_null(strstr(f->last_log, "accept"));
}

int main(int argc, char **argv)
{
    skip_suite_if_backend_refused();
    if (argc > 1)
        cmocka_set_test_filter(argv[1]); /* e.g. "test_listen_*" */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_free_in_drained_idle_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_drained_no_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_drained_drain_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_drained_after_last_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_refuses_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_refuses_closed_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_refuses_regular_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_refuses_pipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_refuses_udp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_refuses_unlistened_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_refuses_same_fd_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_propagates_watch_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_makes_nonblocking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistent_accept_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
