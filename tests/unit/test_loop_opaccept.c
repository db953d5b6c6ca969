/* One-shot accepts with the peer's address (nk_op_accept_once) on every backend: several in
 * flight on one listener, the address right for IPv4 and IPv6, connections beyond those in
 * flight left in the kernel's backlog, stopping while pending, and error results. */
#include "loop_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>

#include <netkit/op.h>

enum { MAXK = 8, MAXC = 32 };

/* K one-shot accepts on one listener, each with its own address buffer. */
typedef struct {
    int lfd;
    int rearm;                    /* restart an op from its callback while this many are left */
    nk_op ops[MAXK];
    struct sockaddr_storage peer[MAXK];
    socklen_t peerlen[MAXK];
    int fds[MAXC];
    struct sockaddr_storage addrs[MAXC];
    socklen_t lens[MAXC];
    int n, errors, cancelled;
    ssize_t last_error;
} acceptor;

static void on_accepted(nk_loop *loop, nk_op *op, ssize_t result)
{
    acceptor *a = op->data;
    int k = (int)(op - a->ops);
    assert_false(nk_op_active(op)); /* one-shot: over when called back */
    if (result == -ECANCELED) {
        a->cancelled++;
        return;
    }
    if (result < 0) {
        a->errors++;
        a->last_error = result;
        return;
    }
    assert_true(a->n < MAXC);
    assert_int_not_equal(fcntl((int)result, F_GETFL) & O_NONBLOCK, 0);
    assert_int_not_equal(fcntl((int)result, F_GETFD) & FD_CLOEXEC, 0);
    a->fds[a->n] = (int)result;
    a->addrs[a->n] = a->peer[k];
    a->lens[a->n] = a->peerlen[k];
    a->n++;
    if (a->rearm > 0) {
        a->rearm--;
        assert_int_equal(nk_op_accept_once(loop, op, a->lfd, &a->peer[k], &a->peerlen[k]), 0);
    }
}

static void acceptor_start(nk_loop *loop, acceptor *a, int lfd, int k, int rearm)
{
    memset(a, 0, sizeof *a);
    a->lfd = lfd;
    a->rearm = rearm;
    for (int i = 0; i < k; i++) {
        nk_op_init(&a->ops[i], on_accepted, a);
        assert_int_equal(nk_op_accept_once(loop, &a->ops[i], lfd, &a->peer[i], &a->peerlen[i]), 0);
        assert_true(nk_op_active(&a->ops[i]));
    }
}

static void run_until(nk_loop *loop, const int *count, int want)
{
    for (int i = 0; i < 5000 && *count < want; i++)
        assert_false(run_once(loop));
    assert_true(*count >= want);
}

/* Stop every op still started; wait for the -ECANCELED of those the kernel held (uring). */
static void acceptor_stop(nk_loop *loop, acceptor *a)
{
    int pending = 0;
    for (int i = 0; i < MAXK; i++) {
        int rc = nk_op_stop(loop, &a->ops[i]);
        if (rc == -EINPROGRESS) {
            assert_true(is_backend(loop, "uring"));
            pending++;
        } else {
            assert_int_equal(rc, 0);
        }
    }
    int want = a->cancelled + pending;
    run_until(loop, &a->cancelled, want);
    for (int i = 0; i < MAXK; i++)
        assert_false(nk_op_active(&a->ops[i]));
    assert_int_equal(nk_loop_active(loop), 0);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static int listener(int family, int *port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
        sa->sin_family = AF_INET;
        sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *sa;
    } else {
        struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&ss;
        sa->sin6_family = AF_INET6;
        sa->sin6_addr = in6addr_loopback;
        len = sizeof *sa;
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

/* A client of 127.0.0.1 or ::1; *local gets its own port, what the server must see. */
static int client(int family, int port, int *local)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
        sa->sin_family = AF_INET;
        sa->sin_port = htons((uint16_t)port);
        sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *sa;
    } else {
        struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&ss;
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons((uint16_t)port);
        sa->sin6_addr = in6addr_loopback;
        len = sizeof *sa;
    }
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
    len = sizeof ss;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    *local = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                     : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

/* The accepted address names the loopback host and one of the clients' ports, each once. */
static void check_peers(const acceptor *a, int family, const int *ports, int n)
{
    int seen[MAXC] = {0};
    assert_int_equal(a->n, n);
    for (int i = 0; i < a->n; i++) {
        const struct sockaddr_storage *ss = &a->addrs[i];
        assert_int_equal(ss->ss_family, family);
        int port;
        if (family == AF_INET) {
            const struct sockaddr_in *sa = (const struct sockaddr_in *)ss;
            assert_int_equal(a->lens[i], sizeof *sa);
            assert_int_equal(ntohl(sa->sin_addr.s_addr), INADDR_LOOPBACK);
            port = ntohs(sa->sin_port);
        } else {
            const struct sockaddr_in6 *sa = (const struct sockaddr_in6 *)ss;
            assert_int_equal(a->lens[i], sizeof *sa);
            assert_memory_equal(&sa->sin6_addr, &in6addr_loopback, sizeof sa->sin6_addr);
            port = ntohs(sa->sin6_port);
        }
        int j = 0;
        while (j < n && ports[j] != port)
            j++;
        assert_true(j < n);
        assert_false(seen[j]);
        seen[j] = 1;
    }
}

static void peers_on(int family)
{
    nk_loop *loop = new_loop();
    int port, lfd = listener(family, &port);
    if (lfd < 0) {
        nk_loop_free(loop);
        print_message("no %s loopback here (socket or bind refused)\n",
                      family == AF_INET6 ? "IPv6" : "IPv4");
        skip();
    }
    /* Four in flight, each restarted from its callback: twelve clients in all. */
    acceptor *a = malloc(sizeof *a);
    assert_non_null(a);
    acceptor_start(loop, a, lfd, 4, 8);
    int cfd[12], ports[12];
    for (int i = 0; i < 12; i++) {
        cfd[i] = client(family, port, &ports[i]);
        if (i % 3 == 2)
            assert_false(run_once(loop));
    }
    run_until(loop, &a->n, 12);
    check_peers(a, family, ports, 12);
    assert_int_equal(a->errors, 0);
    acceptor_stop(loop, a); /* none left started: every stop is a no-op */
    assert_int_equal(a->cancelled, 0);
    for (int i = 0; i < 12; i++) {
        close(cfd[i]);
        close(a->fds[i]);
    }
    free(a);
    close(lfd);
    assert_int_equal(nk_loop_free(loop), 0);
}

static void test_peer_ipv4(void **state)
{
    (void)state;
    peers_on(AF_INET);
}

static void test_peer_ipv6(void **state)
{
    (void)state;
    peers_on(AF_INET6);
}

/* No address wanted: both NULL. */
static void test_without_address(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int port, lfd = listener(AF_INET, &port), local;
    acceptor *a = calloc(1, sizeof *a);
    assert_non_null(a);
    nk_op_init(&a->ops[0], on_accepted, a);
    assert_int_equal(nk_op_accept_once(loop, &a->ops[0], lfd, NULL, NULL), 0);
    int c = client(AF_INET, port, &local);
    run_until(loop, &a->n, 1);
    assert_int_equal(a->lens[0], 0); /* the record's buffer, untouched */
    close(c);
    close(a->fds[0]);
    free(a);
    close(lfd);
    assert_int_equal(nk_loop_free(loop), 0);
}

/* Three in flight and five clients: three are taken, two stay in the backlog (a plain accept
 * finds them there), as a server at its connection cap needs. */
static void test_beyond_in_flight_stay_in_backlog(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int port, lfd = listener(AF_INET, &port);
    acceptor *a = malloc(sizeof *a);
    assert_non_null(a);
    acceptor_start(loop, a, lfd, 3, 0);
    int cfd[5], ports[5];
    for (int i = 0; i < 5; i++)
        cfd[i] = client(AF_INET, port, &ports[i]);
    run_until(loop, &a->n, 3);
    for (int i = 0; i < 5; i++)
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(a->n, 3);
    int left = 0;
    for (int i = 0; i < 5; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            break;
        left++;
        close(fd);
    }
    assert_int_equal(left, 2);
    for (int i = 0; i < 5; i++)
        close(cfd[i]);
    for (int i = 0; i < 3; i++)
        close(a->fds[i]);
    free(a);
    close(lfd);
    assert_int_equal(nk_loop_free(loop), 0);
}

/* Stopped while waiting (in the kernel on uring): no callback but -ECANCELED, and a client
 * that arrives meanwhile is either left in the backlog or accepted and closed by the loop,
 * never handed over and never leaked (the process has the same descriptors as before). */
static void test_stop_while_pending(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int port, lfd = listener(AF_INET, &port), local;
    int before = count_fds();
    acceptor *a = malloc(sizeof *a);
    assert_non_null(a);
    acceptor_start(loop, a, lfd, 4, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    /* A client arrives while they wait: the kernel may complete one before the stop reaches
     * it, which is the race the stop must handle. */
    int c = client(AF_INET, port, &local);
    acceptor_stop(loop, a);
    assert_int_equal(a->n, 0);
    assert_int_equal(a->errors, 0);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
        close(fd); /* left in the backlog */
    } else {
        /* Accepted by the kernel, then closed by the loop: the client sees the end. */
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
        char ch;
        struct timeval tv = {.tv_sec = 5};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t r = read(c, &ch, 1);
        assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
    }
    close(c);
    assert_int_equal(count_fds(), before);
    /* Restartable after the stop. */
    acceptor_start(loop, a, lfd, 2, 0);
    c = client(AF_INET, port, &local);
    run_until(loop, &a->n, 1);
    assert_int_equal(ntohs(((struct sockaddr_in *)&a->addrs[0])->sin_port), local);
    acceptor_stop(loop, a);
    close(a->fds[0]);
    close(c);
    free(a);
    close(lfd);
    assert_int_equal(nk_loop_free(loop), 0);
}

/* Stopped from its own callback: a finished one-shot is not started, so the stop is 0. */
static void on_accepted_stop(nk_loop *loop, nk_op *op, ssize_t result)
{
    int *got = op->data;
    assert_true(result >= 0);
    close((int)result);
    assert_int_equal(nk_op_stop(loop, op), 0);
    (*got)++;
}

static void test_stop_from_own_callback(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int port, lfd = listener(AF_INET, &port), local;
    int got = 0;
    nk_op op;
    nk_op_init(&op, on_accepted_stop, &got);
    assert_int_equal(nk_op_accept_once(loop, &op, lfd, NULL, NULL), 0);
    int c = client(AF_INET, port, &local);
    run_until(loop, &got, 1);
    assert_false(nk_op_active(&op));
    assert_int_equal(nk_loop_active(loop), 0);
    close(c);
    close(lfd);
    assert_int_equal(nk_loop_free(loop), 0);
}

static void test_start_errors(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int port, lfd = listener(AF_INET, &port);
    struct sockaddr_storage ss;
    socklen_t len;
    nk_op op;
    nk_op_init(&op, on_accepted, NULL);
    assert_int_equal(nk_op_accept_once(loop, &op, lfd, &ss, NULL), -EINVAL);
    assert_int_equal(nk_op_accept_once(loop, &op, lfd, NULL, &len), -EINVAL);
    assert_int_equal(nk_op_accept_once(loop, &op, -1, &ss, &len), -EBADF);
    assert_false(nk_op_active(&op));
    acceptor *a = calloc(1, sizeof *a);
    assert_non_null(a);
    nk_op_init(&a->ops[0], on_accepted, a);
    assert_int_equal(nk_op_accept_once(loop, &a->ops[0], lfd, &ss, &len), 0);
    assert_int_equal(nk_op_accept_once(loop, &a->ops[0], lfd, &ss, &len), -EBUSY);
    acceptor_stop(loop, a);
    free(a);
    close(lfd);
    assert_int_equal(nk_loop_free(loop), 0);
}

/* A socket that does not listen: the result is -EINVAL, on every backend. */
static void test_not_listening(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    acceptor *a = malloc(sizeof *a);
    assert_non_null(a);
    acceptor_start(loop, a, s, 1, 0);
    run_until(loop, &a->errors, 1);
    assert_int_equal(a->last_error, -EINVAL);
    assert_int_equal(a->n, 0);
    assert_int_equal(nk_loop_active(loop), 0);
    free(a);
    close(s);
    assert_int_equal(nk_loop_free(loop), 0);
}

/* Out of descriptors: -EMFILE, the client stays queued, and once a descriptor is free again
 * a restarted accept takes it. */
static void test_out_of_descriptors(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    int port, lfd = listener(AF_INET, &port), local;
    acceptor *a = malloc(sizeof *a);
    assert_non_null(a);
    int c = client(AF_INET, port, &local);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 256 < old.rlim_cur ? 256 : old.rlim_cur;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fill[256], nfill = 0;
    while (nfill < 256 && (fill[nfill] = dup(lfd)) >= 0)
        nfill++;
    assert_true(nfill < 256 && errno == EMFILE);
    acceptor_start(loop, a, lfd, 1, 0);
    run_until(loop, &a->errors, 1);
    assert_int_equal(a->last_error, -EMFILE);
    assert_false(nk_op_active(&a->ops[0]));
    close(fill[--nfill]);
    assert_int_equal(nk_op_accept_once(loop, &a->ops[0], lfd, &a->peer[0], &a->peerlen[0]), 0);
    run_until(loop, &a->n, 1);
    assert_int_equal(ntohs(((struct sockaddr_in *)&a->addrs[0])->sin_port), local);
    while (nfill > 0)
        close(fill[--nfill]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    close(a->fds[0]);
    close(c);
    free(a);
    close(lfd);
    assert_int_equal(nk_loop_free(loop), 0);
}

int main(void)
{
    skip_suite_if_backend_refused();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_peer_ipv4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_ipv6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_beyond_in_flight_stay_in_backlog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_from_own_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_listening, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_descriptors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
