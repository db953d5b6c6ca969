/* Accepting, in process, on the backend NETKIT_BACKEND names (tests/CMakeLists.txt runs this
 * suite once as is and once on uring, where the listeners accept through one-shot accept
 * operations, several in flight, src/httpd/opaccept.c): the connection cap holds however many
 * clients arrive at once and frees up as they leave, the access log names the client's real
 * address (the kernel fills it in on uring), running out of descriptors backs off and
 * recovers, and the engine can be shut down or freed while accepts are pending, leaving
 * nothing behind in the loop (nk_loop_free succeeds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netkit/httpd.h>
#include <netkit/loop.h>

#include "backend_skip.h"

#define NCLIENTS 12
#define CAP 3

typedef struct fixture {
    char root[64];
    nk_loop *loop;
    nk_httpd *srv;
    nk_httpd_config cfg;
    int drained;
    int warnings;
    char last_warning[256];
} fixture;

static void on_log(void *arg, nk_log_level level, const char *msg)
{
    fixture *f = arg;
    if (level == NK_LOG_WARN) {
        f->warnings++;
        snprintf(f->last_warning, sizeof f->last_warning, "%s", msg);
    }
}

static void on_drained(void *arg)
{
    fixture *f = arg;
    f->drained++;
    nk_httpd_free(f->srv);
    f->srv = NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->root, sizeof f->root, "/tmp/nk-accept-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    char path[128];
    snprintf(path, sizeof path, "%s/small.txt", f->root);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("hello\n", fp);
    assert_int_equal(fclose(fp), 0);
    const char *want = getenv("NETKIT_BACKEND");
    assert_int_equal(nk_loop_new(want && *want ? want : NULL, &f->loop), 0);
    nk_httpd_config_init(&f->cfg);
    f->cfg.root = f->root;
    f->cfg.defer_accept_s = 0;
    f->cfg.log = on_log;
    f->cfg.log_arg = f;
    f->cfg.on_drained = on_drained;
    f->cfg.drained_arg = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nk_httpd_free(f->srv);
    /* Nothing of the engine is left in the loop: no accept still in the kernel. */
    assert_int_equal(nk_loop_free(f->loop), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/small.txt", f->root);
    unlink(path);
    rmdir(f->root);
    free(f);
    return 0;
}

static int listener(int family, int *port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
        close(fd);
        return -1;
    }
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

/* Connect fd from source (NULL: any) to the listener on port. */
static void connect_to(int fd, int family, const char *source, int port)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        if (source) {
            assert_int_equal(inet_pton(AF_INET, source, &a->sin_addr), 1);
            assert_int_equal(bind(fd, (struct sockaddr *)a, sizeof *a), 0);
        }
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
    int rc = connect(fd, (struct sockaddr *)&ss, len);
    assert_true(rc == 0 || errno == EINPROGRESS); /* loopback: the handshake is done at once */
}

static int client(int family, const char *source, int port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    connect_to(fd, family, source, port);
    return fd;
}

static void send_get(int fd, const char *conn)
{
    char req[128];
    int n = snprintf(req, sizeof req, "GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: %s\r\n\r\n",
                     conn);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
}

/* What the client has: 1 a response began, 0 nothing yet, -1 closed or reset. */
static int client_state(int fd)
{
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
        assert_memory_equal(buf, "HTTP/1.1 200 ", 13);
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    return -1;
}

/* Turn the loop for a while (bounded, never blocking long). */
static void turn(fixture *f, int times)
{
    for (int i = 0; i < times; i++) {
        assert_int_equal(nk_loop_run(f->loop, NK_RUN_NOWAIT), 0);
        usleep(2000);
    }
}

static int served_count(const int *fds, int *served, int n)
{
    int total = 0;
    for (int i = 0; i < n; i++) {
        if (!served[i]) {
            int st = client_state(fds[i]);
            assert_int_not_equal(st, -1); /* a waiting client is never dropped */
            served[i] = st == 1;
        }
        total += served[i];
    }
    return total;
}

/* Twelve clients at once against max_conns 3: three are served, the others wait (not closed);
 * each one that leaves lets exactly one more in, until all twelve are served, and the engine
 * never has more than three open. */
static void test_cap_reached_then_freed(void **state)
{
    fixture *f = *state;
    f->cfg.max_conns = CAP;
    assert_int_equal(nk_httpd_new(f->loop, &f->cfg, &f->srv), 0);
    int port, lfd = listener(AF_INET, &port);
    assert_int_equal(nk_httpd_listen(f->srv, lfd), 0);
    int fds[NCLIENTS], served[NCLIENTS] = {0}, closed[NCLIENTS] = {0};
    for (int i = 0; i < NCLIENTS; i++) {
        fds[i] = client(AF_INET, NULL, port);
        send_get(fds[i], "keep-alive");
    }
    int want = CAP;
    nk_httpd_stats st;
    for (int round = 0; want <= NCLIENTS; round++) {
        assert_true(round < NCLIENTS);
        int got = 0;
        for (int i = 0; i < 1000 && got < want; i++) {
            turn(f, 1);
            nk_httpd_get_stats(f->srv, &st);
            assert_true(st.open <= CAP);
            got = served_count(fds, served, NCLIENTS);
        }
        assert_int_equal(got, want);
        turn(f, 20); /* nobody else gets in meanwhile */
        nk_httpd_get_stats(f->srv, &st);
        assert_true(st.open <= CAP);
        assert_int_equal(served_count(fds, served, NCLIENTS), want);
        if (want == NCLIENTS)
            break;
        for (int i = 0; i < NCLIENTS; i++) { /* one served client leaves */
            if (served[i] && !closed[i]) {
                close(fds[i]);
                closed[i] = 1;
                break;
            }
        }
        want++;
    }
    nk_httpd_get_stats(f->srv, &st);
    assert_int_equal(st.connections, NCLIENTS); /* none accepted and dropped */
    for (int i = 0; i < NCLIENTS; i++)
        if (!closed[i])
            close(fds[i]);
}

static void read_log(int fd, char *out, size_t cap)
{
    ssize_t n = pread(fd, out, cap - 1, 0);
    assert_true(n > 0);
    out[n] = '\0';
}

static void logged_peer(fixture *f, int family, const char *source, const char *want)
{
    char logpath[128];
    snprintf(logpath, sizeof logpath, "%s/access.log", f->root);
    int logfd = open(logpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(logfd >= 0);
    f->cfg.access_log_fd = logfd;
    assert_int_equal(nk_httpd_new(f->loop, &f->cfg, &f->srv), 0);
    int port, lfd = listener(family, &port);
    if (lfd < 0) {
        close(logfd);
        unlink(logpath);
        print_message("skipped: no %s loopback here\n", family == AF_INET6 ? "IPv6" : "IPv4");
        skip();
    }
    assert_int_equal(nk_httpd_listen(f->srv, lfd), 0);
    int c = client(family, source, port);
    send_get(c, "close");
    int got = 0;
    for (int i = 0; i < 1000 && got == 0; i++) {
        turn(f, 1);
        got = client_state(c);
    }
    assert_int_equal(got, 1);
    nk_httpd_free(f->srv); /* flushes the log */
    f->srv = NULL;
    char line[512];
    read_log(logfd, line, sizeof line);
    assert_int_equal(strncmp(line, want, strlen(want)), 0);
    assert_int_equal(line[strlen(want)], ' ');
    close(c);
    close(logfd);
    unlink(logpath);
}

/* 127.0.0.2, not the listener's own 127.0.0.1: the log shows where the client really is. */
static void test_logged_peer_ipv4(void **state)
{
    logged_peer(*state, AF_INET, "127.0.0.2", "127.0.0.2");
}

static void test_logged_peer_ipv6(void **state)
{
    logged_peer(*state, AF_INET6, NULL, "::1");
}

/* Out of descriptors: the engine warns, backs off, and serves the waiting client once
 * descriptors are free again. */
static void test_out_of_descriptors_backs_off(void **state)
{
    fixture *f = *state;
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 256 < old.rlim_cur ? 256 : old.rlim_cur;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    assert_int_equal(nk_httpd_new(f->loop, &f->cfg, &f->srv), 0);
    int port, lfd = listener(AF_INET, &port);
    assert_int_equal(nk_httpd_listen(f->srv, lfd), 0);
    turn(f, 3);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    int fill[256], nfill = 0;
    while (nfill < 256 && (fill[nfill] = dup(lfd)) >= 0)
        nfill++;
    assert_true(nfill < 256 && errno == EMFILE);
    /* Connected only now: on uring an accept already in the kernel would otherwise take it
     * while a descriptor was still free. */
    connect_to(c, AF_INET, NULL, port);
    send_get(c, "close");
    for (int i = 0; i < 1000 && f->warnings == 0; i++)
        turn(f, 1);
    assert_true(f->warnings > 0);
    assert_non_null(strstr(f->last_warning, "pausing new connections"));
    assert_int_equal(client_state(c), 0); /* waiting, not dropped */
    while (nfill > 0)
        close(fill[--nfill]);
    int got = 0;
    for (int i = 0; i < 1000 && got == 0; i++) { /* the back-off is 100 ms */
        turn(f, 1);
        got = client_state(c);
    }
    assert_int_equal(got, 1);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    close(c);
}

/* Shut down while the listener's accepts are pending (in the kernel on uring): the engine
 * drains, frees itself from on_drained, and the loop has nothing left. */
static void test_shutdown_with_accepts_pending(void **state)
{
    fixture *f = *state;
    assert_int_equal(nk_httpd_new(f->loop, &f->cfg, &f->srv), 0);
    int port, lfd = listener(AF_INET, &port);
    assert_int_equal(nk_httpd_listen(f->srv, lfd), 0);
    turn(f, 3);
    nk_httpd_shutdown(f->srv);
    for (int i = 0; i < 1000 && !f->drained; i++)
        turn(f, 1);
    assert_int_equal(f->drained, 1);
    turn(f, 3);
    assert_int_equal(nk_loop_active(f->loop), 0);
}

/* Freed outright with a connection open and accepts pending for the next clients. */
static void test_free_with_accepts_pending(void **state)
{
    fixture *f = *state;
    assert_int_equal(nk_httpd_new(f->loop, &f->cfg, &f->srv), 0);
    int port, lfd = listener(AF_INET, &port);
    assert_int_equal(nk_httpd_listen(f->srv, lfd), 0);
    int a = client(AF_INET, NULL, port);
    send_get(a, "keep-alive");
    int got = 0;
    for (int i = 0; i < 1000 && got == 0; i++) {
        turn(f, 1);
        got = client_state(a);
    }
    assert_int_equal(got, 1);
    nk_httpd_free(f->srv);
    f->srv = NULL;
    assert_int_equal(nk_loop_active(f->loop), 0);
    close(a);
}

int main(void)
{
    skip_suite_if_backend_refused();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cap_reached_then_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logged_peer_ipv4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logged_peer_ipv6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_descriptors_backs_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_with_accepts_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_accepts_pending, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
