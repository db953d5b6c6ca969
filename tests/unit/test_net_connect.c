/* Unit tests for the connector and the acceptor (src/net/connector.c, acceptor.c). All
 * traffic stays on loopback; every port comes from the kernel (port 0).
 *
 * A connect that never completes is made with a listener whose accept queue is full: Linux
 * then drops the SYN, so the client waits as it would for a silent host. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <netkit/addr.h>
#include <netkit/err.h>
#include <netkit/loop.h>
#include <netkit/sock.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A listener on 127.0.0.1, its address in *out. */
static int listener(nk_addr *out, int backlog)
{
    nk_addr any;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &any), 0);
    int fd = nk_sock_listen(&any, SOCK_STREAM, 0, backlog);
    assert_true(fd >= 0);
    assert_int_equal(nk_sock_local(fd, out), 0);
    return fd;
}

/* A port nothing listens on, held (bound, not listening) so that no one else takes it. */
static int refusing(nk_addr *out)
{
    nk_addr any;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &any), 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, &any.u.sa, any.len), 0);
    assert_int_equal(nk_sock_local(fd, out), 0);
    return fd;
}

/* A listener that answers no SYN: backlog 1, filled by clients nobody accepts. */
#define SILENT_FILL 4
typedef struct silent {
    int lfd;
    int fill[SILENT_FILL];
    nk_addr addr;
} silent;

static void silent_open(silent *s)
{
    s->lfd = listener(&s->addr, 1);
    for (int i = 0; i < SILENT_FILL; i++) {
        int pending;
        s->fill[i] = nk_sock_connect(&s->addr, SOCK_STREAM, 0, &pending);
        assert_true(s->fill[i] >= 0);
    }
    usleep(50 * 1000); /* let the handshakes that can complete do so */
}

static void silent_close(silent *s)
{
    for (int i = 0; i < SILENT_FILL; i++)
        close(s->fill[i]);
    close(s->lfd);
}

/* ---- blocking connect ------------------------------------------------------------------- */

typedef struct setup_seen {
    int calls;
    int was_connected; /* getpeername worked inside setup: the option came too late */
    int rc;            /* what setup returns */
} setup_seen;

static int record_setup(int fd, const nk_addr *addr, void *data)
{
    (void)addr;
    setup_seen *s = data;
    s->calls++;
    nk_addr peer;
    if (nk_sock_peer(fd, &peer) == 0)
        s->was_connected = 1;
    return s->rc;
}

static void test_connect_sets_options_before_connect(void **state)
{
    (void)state;
    nk_addr addr, local;
    int lfd = listener(&addr, 0);
    assert_int_equal(nk_addr_parse("127.0.0.2:0", 0, &local), 0);
    setup_seen seen = {0};
    nk_connect_opts o = {.size = sizeof o, .rcvbuf = 65536, .nodelay = 1, .keepalive = 1,
                         .local = &local, .setup = record_setup, .setup_data = &seen,
                         .timeout_ms = 2000};
    int fd = nk_connect_addrs(&addr, 1, SOCK_STREAM, &o);
    assert_true(fd >= 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.was_connected, 0);
    int v = 0;
    socklen_t len = sizeof v;
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    assert_true(v != 0);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len), 0);
    assert_true(v != 0);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len), 0);
    assert_true(v >= 65536);
    nk_addr mine;
    assert_int_equal(nk_sock_local(fd, &mine), 0);
    char text[NK_ADDR_STRLEN];
    nk_addr_format_host(&mine, text, sizeof text);
    assert_string_equal(text, "127.0.0.2");
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    close(fd);
    close(lfd);
}

/* The options' size (docs/library.md, "Config structs"): what lies past an older caller's
 * size is not read; size 0 and a newer caller's unknown field set are refused. */
static void test_connect_opts_size(void **state)
{
    (void)state;
    nk_addr addr;
    int lfd = listener(&addr, 0);
    setup_seen seen = {0};
    nk_connect_opts o = {.size = offsetof(nk_connect_opts, setup), .setup = record_setup,
                         .setup_data = &seen, .timeout_ms = 2000};
    int fd = nk_connect_addrs(&addr, 1, SOCK_STREAM, &o);
    assert_true(fd >= 0);
    assert_int_equal(seen.calls, 0); /* an older caller has no setup field */
    close(fd);
    nk_connect_opts_init(&o);
    o.setup = record_setup;
    o.setup_data = &seen;
    fd = nk_connect_addrs(&addr, 1, SOCK_STREAM, &o);
    assert_true(fd >= 0);
    assert_int_equal(seen.calls, 1);
    close(fd);
    o.size = 0;
    assert_int_equal(nk_connect_addrs(&addr, 1, SOCK_STREAM, &o), -EINVAL);
    struct {
        nk_connect_opts known;
        uint64_t later;
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.known.size = sizeof newer;
    newer.later = 1;
    assert_int_equal(nk_connect_addrs(&addr, 1, SOCK_STREAM, &newer.known), -E2BIG);
    nk_loop *loop;
    assert_int_equal(nk_loop_new(NULL, &loop), 0);
    nk_connector c;
    nk_connector_init(&c, loop, NULL, NULL);
    assert_int_equal(nk_connector_start(&c, &addr, 1, SOCK_STREAM, &newer.known), -E2BIG);
    assert_int_equal(nk_connector_start(&c, &addr, 1, SOCK_STREAM, &o), -EINVAL);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_loop_free(loop);
    newer.later = 0;
    fd = nk_connect_addrs(&addr, 1, SOCK_STREAM, &newer.known);
    assert_true(fd >= 0);
    close(fd);
    close(lfd);
}

static void test_connect_tries_each_address(void **state)
{
    (void)state;
    nk_addr addrs[3];
    int r1 = refusing(&addrs[0]);
    int r2 = refusing(&addrs[1]);
    int lfd = listener(&addrs[2], 0);
    setup_seen seen = {0};
    nk_connect_opts o = {.size = sizeof o, .setup = record_setup, .setup_data = &seen};
    int fd = nk_connect_addrs(addrs, 3, SOCK_STREAM, &o);
    assert_true(fd >= 0);
    assert_int_equal(seen.calls, 3);
    nk_addr peer;
    assert_int_equal(nk_sock_peer(fd, &peer), 0);
    assert_true(nk_addr_equal(&peer, &addrs[2]));
    close(fd);
    /* all refused: the last attempt's error */
    assert_int_equal(nk_connect_addrs(addrs, 2, SOCK_STREAM, NULL), -ECONNREFUSED);
    assert_int_equal(nk_connect_addrs(addrs, 0, SOCK_STREAM, NULL), -EINVAL);
    close(r1);
    close(r2);
    close(lfd);
}

static void test_connect_setup_refusal_ends_all(void **state)
{
    (void)state;
    nk_addr addrs[2];
    int l1 = listener(&addrs[0], 0);
    int l2 = listener(&addrs[1], 0);
    setup_seen seen = {.rc = -ENOPROTOOPT};
    nk_connect_opts o = {.size = sizeof o, .setup = record_setup, .setup_data = &seen};
    assert_int_equal(nk_connect_addrs(addrs, 2, SOCK_STREAM, &o), -ENOPROTOOPT);
    assert_int_equal(seen.calls, 1);
    close(l1);
    close(l2);
}

static void test_connect_attempt_timeout_then_next(void **state)
{
    (void)state;
    silent s;
    silent_open(&s);
    nk_addr addrs[2];
    addrs[0] = s.addr;
    int lfd = listener(&addrs[1], 0);
    nk_connect_opts o = {.size = sizeof o, .attempt_timeout_ms = 150};
    long long t0 = now_ms();
    int fd = nk_connect_addrs(addrs, 2, SOCK_STREAM, &o);
    long long took = now_ms() - t0;
    assert_true(fd >= 0);
    assert_true(took >= 140 && took < 1500);
    close(fd);
    /* only the silent one: the attempt limit gives -ETIMEDOUT */
    assert_int_equal(nk_connect_addrs(addrs, 1, SOCK_STREAM, &o), -ETIMEDOUT);
    close(lfd);
    silent_close(&s);
}

static void test_connect_overall_timeout(void **state)
{
    (void)state;
    silent s;
    silent_open(&s);
    nk_addr addrs[3] = {s.addr, s.addr, s.addr};
    nk_connect_opts o = {.size = sizeof o, .attempt_timeout_ms = 1000, .timeout_ms = 200};
    long long t0 = now_ms();
    assert_int_equal(nk_connect_addrs(addrs, 3, SOCK_STREAM, &o), -ETIMEDOUT);
    long long took = now_ms() - t0;
    assert_true(took >= 190 && took < 900);
    silent_close(&s);
}

static void test_connect_text(void **state)
{
    (void)state;
    nk_addr addr;
    int lfd = listener(&addr, 0);
    char text[NK_ADDR_STRLEN];
    nk_addr_format(&addr, text, sizeof text);
    int fd = nk_connect(text, SOCK_STREAM, NULL);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(nk_connect("127.0.0.1:99999", SOCK_STREAM, NULL), -ERANGE);
    close(lfd);
}

typedef struct listen_seen {
    int calls, was_bound, rc;
} listen_seen;

static int record_listen_setup(int fd, const nk_addr *addr, void *data)
{
    (void)addr;
    listen_seen *s = data;
    s->calls++;
    nk_addr mine;
    if (nk_sock_local(fd, &mine) == 0 && nk_addr_port(&mine) != 0)
        s->was_bound = 1;
    int v = 32768;
    return setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) < 0 ? -errno : s->rc;
}

static void test_listen_setup_before_bind(void **state)
{
    (void)state;
    nk_addr any;
    assert_int_equal(nk_addr_parse("127.0.0.1:0", 0, &any), 0);
    listen_seen seen = {0};
    int lfd = nk_sock_listen_setup(&any, SOCK_STREAM, 0, 0, record_listen_setup, &seen);
    assert_true(lfd >= 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.was_bound, 0);
    int v = 0;
    socklen_t len = sizeof v;
    assert_int_equal(getsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &v, &len), 0);
    assert_true(v >= 32768 && v < 4 * 32768);
    close(lfd);
    seen.rc = -ENOPROTOOPT;
    assert_int_equal(nk_sock_listen_setup(&any, SOCK_STREAM, 0, 0, record_listen_setup, &seen),
                     -ENOPROTOOPT);
}

/* ---- connector on a loop ------------------------------------------------------------------ */

typedef struct conn_result {
    int done, fd_or_err, attempts_failed;
    int last_attempt_err;
} conn_result;

static void on_connected(nk_connector *c, int fd_or_err)
{
    conn_result *r = c->data;
    r->done++;
    r->fd_or_err = fd_or_err;
    nk_loop_stop(c->loop);
}

static void on_attempt(nk_connector *c, const nk_addr *addr, int err)
{
    (void)addr;
    conn_result *r = c->data;
    r->attempts_failed++;
    r->last_attempt_err = err;
}

static nk_loop *new_loop(void)
{
    nk_loop *loop = NULL;
    assert_int_equal(nk_loop_new(NULL, &loop), 0);
    return loop;
}

static void run_until(nk_loop *loop, const int *done, int ms)
{
    long long end = now_ms() + ms;
    while (!*done && now_ms() < end)
        assert_true(nk_loop_run(loop, NK_RUN_ONCE) >= 0);
}

static void test_connector_tries_each_on_loop(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    nk_addr addrs[3];
    int r1 = refusing(&addrs[0]);
    silent s;
    silent_open(&s);
    addrs[1] = s.addr;
    int lfd = listener(&addrs[2], 0);
    conn_result r = {0};
    nk_connector c;
    nk_connector_init(&c, loop, on_connected, &r);
    c.on_attempt = on_attempt;
    nk_connect_opts o = {.size = sizeof o, .attempt_timeout_ms = 100, .timeout_ms = 3000,
                         .nodelay = 1};
    assert_int_equal(nk_connector_start(&c, addrs, 3, SOCK_STREAM, &o), 0);
    assert_int_equal(r.done, 0); /* never from inside start */
    run_until(loop, &r.done, 3000);
    assert_int_equal(r.done, 1);
    assert_true(r.fd_or_err >= 0);
    assert_int_equal(r.attempts_failed, 2);
    assert_int_equal(r.last_attempt_err, -ETIMEDOUT);
    assert_true(nk_addr_equal(nk_connector_addr(&c), &addrs[2]));
    close(r.fd_or_err);
    close(r1);
    close(lfd);
    silent_close(&s);
    nk_loop_free(loop);
}

static void test_connector_last_error_and_overall(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    nk_addr addrs[2];
    int r1 = refusing(&addrs[0]);
    silent s;
    silent_open(&s);
    addrs[1] = s.addr;
    conn_result r = {0};
    nk_connector c;
    nk_connector_init(&c, loop, on_connected, &r);
    /* refused, then silent until the overall limit */
    nk_connect_opts o = {.size = sizeof o, .timeout_ms = 200};
    long long t0 = now_ms();
    assert_int_equal(nk_connector_start(&c, addrs, 2, SOCK_STREAM, &o), 0);
    run_until(loop, &r.done, 3000);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.fd_or_err, -ETIMEDOUT);
    assert_true(now_ms() - t0 < 1500);
    /* refused only: the refusal comes back from the loop */
    memset(&r, 0, sizeof r);
    assert_int_equal(nk_connector_start(&c, addrs, 1, SOCK_STREAM, NULL), 0);
    run_until(loop, &r.done, 3000);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.fd_or_err, -ECONNREFUSED);
    /* stop: no callback, nothing left on the loop */
    memset(&r, 0, sizeof r);
    assert_int_equal(nk_connector_start(&c, &addrs[1], 1, SOCK_STREAM, NULL), 0);
    nk_connector_stop(&c);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.done, 0);
    close(r1);
    silent_close(&s);
    nk_loop_free(loop);
}

static void stop_on_attempt(nk_connector *c, const nk_addr *addr, int err)
{
    on_attempt(c, addr, err);
    nk_connector_stop(c);
}

/* Stopping from on_attempt: no further address, no result callback. */
static void test_connector_stop_from_attempt(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    nk_addr addrs[2];
    int r1 = refusing(&addrs[0]);
    int lfd = listener(&addrs[1], 0);
    conn_result r = {0};
    nk_connector c;
    nk_connector_init(&c, loop, on_connected, &r);
    c.on_attempt = stop_on_attempt;
    int rc = nk_connector_start(&c, addrs, 2, SOCK_STREAM, NULL);
    assert_true(rc == 0 || rc == -ECANCELED);
    long long end = now_ms() + 300;
    while (now_ms() < end)
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.attempts_failed, 1);
    assert_int_equal(r.done, 0);
    /* the listener got no connection */
    assert_int_equal(nk_sock_accept(lfd, NULL), -EAGAIN);
    close(r1);
    close(lfd);
    nk_loop_free(loop);
}

/* ---- acceptor ------------------------------------------------------------------------------ */

typedef struct accept_seen {
    int accepted;
    int errors, last_err, last_paused;
    int stop_after;
} accept_seen;

static void on_accepted(nk_acceptor *a, int fd, const nk_addr *peer)
{
    accept_seen *s = a->data;
    assert_int_equal(nk_addr_family(peer), AF_INET);
    close(fd);
    if (++s->accepted == s->stop_after)
        nk_acceptor_stop(a);
}

static void on_accept_error(nk_acceptor *a, int err, int paused)
{
    (void)a;
    accept_seen *s = a->data;
    s->errors++;
    s->last_err = err;
    s->last_paused = paused;
}

static void test_acceptor_batches(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    nk_addr addr;
    int lfd = listener(&addr, 0);
    int clients[5];
    for (int i = 0; i < 5; i++) {
        clients[i] = nk_connect_addrs(&addr, 1, SOCK_STREAM, NULL);
        assert_true(clients[i] >= 0);
    }
    accept_seen s = {0};
    nk_acceptor a;
    nk_acceptor_init(&a, loop, lfd, on_accepted, &s);
    a.per_event = 2;
    assert_int_equal(nk_acceptor_start(&a), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(s.accepted, 2); /* one event, one batch */
    for (int i = 0; i < 3 && s.accepted < 5; i++)
        nk_loop_run(loop, NK_RUN_NOWAIT);
    assert_int_equal(s.accepted, 5);
    nk_acceptor_stop(&a);
    for (int i = 0; i < 5; i++)
        close(clients[i]);
    close(lfd);
    nk_loop_free(loop);
}

/* With no descriptor left, accept fails with EMFILE while the client stays queued: the
 * acceptor must pause (a few times in 350 ms, not thousands), say so once, and take the
 * client when descriptors are back. */
static void on_tick(nk_loop *loop, nk_timer *t)
{
    (void)loop, (void)t;
}

/* Lower the soft descriptor limit to 256 and take every number left under it. */
static int exhaust_descriptors(struct rlimit *old, int fill[256])
{
    assert_int_equal(getrlimit(RLIMIT_NOFILE, old), 0);
    struct rlimit low = *old;
    low.rlim_cur = 256;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int nfill = 0;
    while (nfill < 256) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        fill[nfill++] = fd;
    }
    assert_int_equal(errno, EMFILE);
    return nfill;
}

static void restore_descriptors(const struct rlimit *old, const int *fill, int nfill)
{
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, old), 0);
}

/* Whether a connection whose accept failed with EMFILE is still queued afterwards, as Linux
 * keeps it. valgrind emulates the descriptor limit instead: it closes the descriptor the kernel
 * handed out and reports EMFILE, so the connection is gone and a back-off has nothing left to
 * retry. */
static int emfile_keeps_the_connection(void)
{
    nk_addr addr;
    int lfd = listener(&addr, 0);
    int client = nk_connect_addrs(&addr, 1, SOCK_STREAM, NULL);
    assert_true(client >= 0);
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1); /* queued */
    struct rlimit old;
    int fill[256];
    int nfill = exhaust_descriptors(&old, fill);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    int err = errno;
    restore_descriptors(&old, fill, nfill);
    assert_int_equal(fd, -1);
    assert_int_equal(err, EMFILE);
    p.revents = 0;
    int kept = poll(&p, 1, 0) == 1;
    if (kept) {
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(fd >= 0);
        close(fd);
    }
    close(client);
    close(lfd);
    return kept;
}

static void test_acceptor_backs_off_on_emfile(void **state)
{
    (void)state;
    if (!emfile_keeps_the_connection()) {
        print_message("skipped: a connection refused with EMFILE is dropped here, not kept "
                      "queued (valgrind emulates the descriptor limit), so there is no "
                      "back-off to observe\n");
        skip();
    }
    nk_loop *loop = new_loop();
    /* Every NK_RUN_ONCE below returns within 20 ms, whatever the acceptor does: a wrong
     * outcome (the connection accepted at once) fails the asserts instead of waiting
     * forever. */
    nk_timer tick;
    nk_timer_init(&tick, on_tick, NULL);
    nk_timer_start(loop, &tick, 20, 20);
    nk_addr addr;
    int lfd = listener(&addr, 0);
    int client = nk_connect_addrs(&addr, 1, SOCK_STREAM, NULL);
    assert_true(client >= 0);
    accept_seen s = {0};
    nk_acceptor a;
    nk_acceptor_init(&a, loop, lfd, on_accepted, &s);
    a.on_error = on_accept_error;
    a.pause_ms = 50;
    assert_int_equal(nk_acceptor_start(&a), 0);

    struct rlimit old;
    int fill[256];
    int nfill = exhaust_descriptors(&old, fill);

    /* Until the third pause, bounded in time and turns: an acceptor that spins instead of
     * pausing runs into the bound on turns. */
    unsigned long iterations = 0;
    long long end = now_ms() + 5000;
    while (a.pauses < 3 && now_ms() < end && iterations < 100000) {
        nk_loop_run(loop, NK_RUN_ONCE);
        iterations++;
    }
    restore_descriptors(&old, fill, nfill);

    assert_int_equal(s.accepted, 0);
    assert_int_equal(s.errors, 1); /* said once */
    assert_int_equal(s.last_err, -EMFILE);
    assert_int_equal(s.last_paused, 1);
    if (a.pauses < 3)
        fail_msg("%lu pause(s) in %lu turns", a.pauses, iterations);
    assert_true(iterations < 1000); /* paused, not spinning: each turn waits for a timer */

    end = now_ms() + 2000;
    while (s.accepted == 0 && now_ms() < end)
        nk_loop_run(loop, NK_RUN_ONCE);
    assert_int_equal(s.accepted, 1);
    nk_acceptor_stop(&a);
    nk_timer_stop(loop, &tick);
    close(client);
    close(lfd);
    nk_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_sets_options_before_connect),
        cmocka_unit_test(test_connect_tries_each_address),
        cmocka_unit_test(test_connect_setup_refusal_ends_all),
        cmocka_unit_test(test_connect_attempt_timeout_then_next),
        cmocka_unit_test(test_connect_overall_timeout),
        cmocka_unit_test(test_connect_text),
        cmocka_unit_test(test_listen_setup_before_bind),
        cmocka_unit_test(test_connector_tries_each_on_loop),
        cmocka_unit_test(test_connector_last_error_and_overall),
        cmocka_unit_test(test_connector_stop_from_attempt),
        cmocka_unit_test(test_connect_opts_size),
        cmocka_unit_test(test_acceptor_batches),
        cmocka_unit_test(test_acceptor_backs_off_on_emfile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
