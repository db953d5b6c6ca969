/* nk_stream_listen: every connection accepted becomes a stream with the listener's config; the
 * listener's end leaves the streams it made open. The test plays the clients with plain
 * blocking sockets on loopback, and drives the loop one iteration at a time under a guard
 * timer, so a broken listener fails instead of hanging. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <netkit/sock.h>
#include <netkit/stream.h>

typedef struct env {
    nk_loop *loop;
    nk_stream_group group;
    nk_stream_config cfg;
    int reads; /* on_read calls */
    nk_timer guard;
    int timed_out;
} env;

static void on_read(nk_stream *s, const char *data, size_t len, void *arg)
{
    env *e = arg;
    e->reads++;
    assert_int_equal(nk_stream_write(s, data, len), 0); /* echo */
}

static void on_event(nk_stream *s, int event, int err, void *arg)
{
    (void)event, (void)err, (void)arg;
    nk_stream_close(s);
}

static void on_guard(nk_loop *loop, nk_timer *t)
{
    env *e = t->data;
    e->timed_out = 1;
    nk_loop_stop(loop);
}

static void setup(env *e)
{
    memset(e, 0, sizeof *e);
    assert_int_equal(nk_loop_new(NULL, &e->loop), 0);
    nk_stream_config_init(&e->cfg);
    e->cfg.on_read = on_read;
    e->cfg.on_event = on_event;
    e->cfg.arg = e;
    e->cfg.group = &e->group;
    nk_timer_init(&e->guard, on_guard, e);
    nk_timer_start(e->loop, &e->guard, 10000, 0);
}

static void teardown(env *e)
{
    nk_stream_group_close(&e->group);
    nk_timer_stop(e->loop, &e->guard);
    assert_int_equal(nk_loop_free(e->loop), 0);
}

/* Run the loop until want streams are open and reads on_read calls were made. */
static void run_until(env *e, size_t want, int reads)
{
    while (!e->timed_out && (e->group.count != want || e->reads < reads))
        nk_loop_run(e->loop, NK_RUN_ONCE);
    assert_false(e->timed_out);
}

static int client(const nk_addr *addr)
{
    int fd = nk_sock_connect_wait(addr, SOCK_STREAM, 0, 5000);
    assert_true(fd >= 0);
    assert_int_equal(nk_sock_set_nonblock(fd, 0), 0);
    struct timeval tv = {.tv_sec = 5};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    return fd;
}

static void expect_echo(env *e, int fd, const char *text, int reads)
{
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    run_until(e, e->group.count, reads);
    char got[64] = "";
    size_t have = 0;
    while (have < len && !e->timed_out) {
        nk_loop_run(e->loop, NK_RUN_NOWAIT); /* let the stream flush */
        ssize_t n = recv(fd, got + have, sizeof got - 1 - have, MSG_DONTWAIT);
        if (n > 0)
            have += (size_t)n;
    }
    assert_string_equal(got, text);
}

static void test_connections_become_streams(void **state)
{
    (void)state;
    env e;
    setup(&e);
    nk_addr addr;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &addr), 0);
    nk_stream_listener *l = NULL;
    assert_int_equal(nk_stream_listen(e.loop, &addr, &e.cfg, &l), 0);
    assert_int_equal(nk_stream_listener_addr(l, &addr), 0);
    assert_true(nk_addr_port(&addr) > 0);
    int a = client(&addr), b = client(&addr);
    run_until(&e, 2, 0);
    expect_echo(&e, a, "first", 1);
    expect_echo(&e, b, "second", 2);
    /* The listener's end: no new connection, the streams it made go on. */
    nk_stream_listener_free(l);
    expect_echo(&e, a, "still", 3);
    assert_int_equal(e.group.count, 2);
    assert_true(nk_sock_connect_wait(&addr, SOCK_STREAM, 0, 5000) == -ECONNREFUSED);
    /* A client that leaves: its stream closes (on_event). */
    close(b);
    run_until(&e, 1, 3);
    close(a);
    teardown(&e);
}

static void test_refusals(void **state)
{
    (void)state;
    env e;
    setup(&e);
    nk_addr addr;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &addr), 0);
    nk_stream_listener *l = (nk_stream_listener *)&e;
    assert_int_equal(nk_stream_listen(e.loop, &addr, &e.cfg, NULL), -EINVAL);
    assert_int_equal(nk_stream_listen(NULL, &addr, &e.cfg, &l), -EINVAL);
    assert_null(l);
    e.cfg.on_read = NULL; /* refused at once, not at each connection */
    assert_int_equal(nk_stream_listen(e.loop, &addr, &e.cfg, &l), -EINVAL);
    e.cfg.on_read = on_read;
    e.cfg.size = 0;
    assert_int_equal(nk_stream_listen(e.loop, &addr, &e.cfg, &l), -EINVAL);
    e.cfg.size = sizeof e.cfg;
    /* A port already taken. */
    assert_int_equal(nk_stream_listen(e.loop, &addr, &e.cfg, &l), 0);
    nk_addr taken;
    assert_int_equal(nk_stream_listener_addr(l, &taken), 0);
    nk_stream_listener *again = NULL;
    assert_int_equal(nk_stream_listen(e.loop, &taken, &e.cfg, &again), -EADDRINUSE);
    assert_null(again);
    nk_stream_listener_free(l);
    nk_stream_listener_free(NULL);
    assert_int_equal(nk_loop_active(e.loop), 1); /* the guard only */
    teardown(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connections_become_streams),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
