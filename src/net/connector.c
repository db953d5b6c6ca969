/* The connector: try each resolved address in turn, with the socket options set before
 * connect() (buffer sizes shape the window offered in the handshake, a local address must be
 * bound before it), a limit per attempt and one overall.
 *
 * Two drivers share one "open and start an attempt" step: nk_connect_addrs waits with poll,
 * nk_connector waits on the loop. The error reported is the last attempt's, because with
 * several addresses it is the one a person can act on (the others were tried first).
 */
#include <netkit/sock.h>
#include "core/extstruct.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EINTR_RETRIES 100

/* The caller's options (NULL: none) checked and copied over zeroes (every default). */
static int take_opts(nk_connect_opts *dst, const nk_connect_opts *opts)
{
    memset(dst, 0, sizeof *dst);
    dst->size = sizeof *dst;
    return opts ? nk__ext_copy(dst, sizeof *dst, opts) : 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_int(int fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof(v)) < 0 ? -errno : 0;
}

static int is_ip(const nk_addr *a)
{
    return a->u.sa.sa_family == AF_INET || a->u.sa.sa_family == AF_INET6;
}

static int apply_opts(int fd, const nk_addr *a, int socktype, const nk_connect_opts *o)
{
    int rc = 0;
    if (o->rcvbuf > 0)
        rc = set_int(fd, SOL_SOCKET, SO_RCVBUF, o->rcvbuf);
    if (rc == 0 && o->sndbuf > 0)
        rc = set_int(fd, SOL_SOCKET, SO_SNDBUF, o->sndbuf);
    if (rc == 0 && o->nodelay && is_ip(a) && socktype == SOCK_STREAM)
        rc = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (rc == 0 && o->keepalive)
        rc = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    if (rc == 0 && o->setup)
        rc = o->setup(fd, a, o->setup_data);
    return rc;
}

/* Open a socket for a and start connecting. Returns the fd (*pending = 1 while the handshake
 * runs) or a negative error; *fatal = 1 when the error is the caller's configuration (setup
 * refused, bad local address) rather than this address's, so that trying others is pointless. */
static int attempt_start(const nk_addr *a, int socktype, const nk_connect_opts *o, int *pending,
                         int *fatal)
{
    *pending = 0;
    *fatal = 0;
    int fd = socket(a->u.sa.sa_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = apply_opts(fd, a, socktype, o);
    if (rc < 0) {
        close(fd);
        *fatal = 1;
        return rc;
    }
    /* A bind failure belongs to this address (an IPv4 local address cannot serve an IPv6
     * peer): the next address may still work. */
    if (o->local && bind(fd, &o->local->u.sa, o->local->len) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (connect(fd, &a->u.sa, a->len) < 0) {
        /* EINTR on a non-blocking connect: the attempt goes on in the background. */
        if (errno != EINPROGRESS && errno != EINTR) {
            rc = -errno;
            close(fd);
            return rc;
        }
        *pending = 1;
    }
    return fd;
}

/* Wait for a pending connect until deadline (-1: none). The fd or an error (fd closed). */
static int attempt_wait(int fd, long long deadline)
{
    for (int i = 0; i < EINTR_RETRIES; i++) {
        int wait = -1;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            wait = left > 0 ? (int)left : 0;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int rc = poll(&pfd, 1, wait);
        if (rc < 0 && errno == EINTR)
            continue;
        int err = rc < 0 ? -errno : rc == 0 ? -ETIMEDOUT : nk_sock_error(fd);
        if (err < 0) {
            close(fd);
            return err;
        }
        return fd;
    }
    close(fd);
    return -EINTR;
}

static long long earliest(long long a, long long b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

int nk_connect_addrs(const nk_addr *addrs, size_t n, int socktype, const nk_connect_opts *opts)
{
    if (!addrs || n == 0)
        return -EINVAL;
    nk_connect_opts taken;
    int rc = take_opts(&taken, opts);
    if (rc < 0)
        return rc;
    const nk_connect_opts *o = &taken;
    long long start = now_ms();
    long long overall = o->timeout_ms > 0 ? start + o->timeout_ms : -1;
    int err = -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (overall >= 0 && now_ms() >= overall)
            return -ETIMEDOUT;
        int pending, fatal;
        int fd = attempt_start(&addrs[i], socktype, o, &pending, &fatal);
        if (fd >= 0 && !pending)
            return fd;
        if (fd < 0) {
            if (fatal)
                return fd;
            err = fd;
            continue;
        }
        long long mine = o->attempt_timeout_ms > 0 ? now_ms() + o->attempt_timeout_ms : -1;
        fd = attempt_wait(fd, earliest(mine, overall));
        if (fd >= 0)
            return fd;
        err = fd;
    }
    return err;
}

int nk_connect(const char *text, int socktype, const nk_connect_opts *opts)
{
    nk_addr addrs[NK_CONNECTOR_MAX_ADDRS];
    int n = nk_addr_resolve(text, socktype, 0, addrs, NK_CONNECTOR_MAX_ADDRS);
    if (n < 0)
        return n;
    return nk_connect_addrs(addrs, (size_t)n, socktype, opts);
}

/* ---- on a loop ------------------------------------------------------------------------------ */

static int try_from(nk_connector *c);

static void drop_attempt(nk_connector *c)
{
    nk_timer_stop(c->loop, &c->attempt);
    if (c->fd >= 0) {
        nk_io_stop(c->loop, &c->io);
        close(c->fd);
        c->fd = -1;
    }
}

static void finish(nk_connector *c, int fd_or_err)
{
    c->running = 0;
    nk_timer_stop(c->loop, &c->attempt);
    nk_timer_stop(c->loop, &c->overall);
    if (fd_or_err >= 0) {
        nk_io_stop(c->loop, &c->io);
        c->fd = -1; /* the callee's now */
    } else {
        drop_attempt(c);
    }
    c->cb(c, fd_or_err);
}

/* The current attempt failed with err: report it, then go on or end. */
static void attempt_failed(nk_connector *c, int err)
{
    drop_attempt(c);
    c->last_err = err;
    if (c->on_attempt)
        c->on_attempt(c, &c->addrs[c->next - 1], err);
    if (!c->running)
        return; /* stopped by on_attempt */
    int rc = try_from(c);
    if (rc < 0 && c->running)
        finish(c, rc);
}

static void on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    nk_connector *c = io->data;
    int err = nk_sock_error(c->fd);
    if (err < 0)
        attempt_failed(c, err);
    else
        finish(c, c->fd);
}

static void on_attempt_timeout(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    attempt_failed(t->data, -ETIMEDOUT);
}

static void on_overall_timeout(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    finish(t->data, -ETIMEDOUT);
}

/* Start the next address that can be started. 0 when one is in flight, else the error to
 * end with. An immediate success is also waited for as writability, so that the result
 * always arrives from the loop, never from inside nk_connector_start. */
static int try_from(nk_connector *c)
{
    while (c->next < c->naddrs) {
        const nk_addr *a = &c->addrs[c->next++];
        int pending, fatal;
        int fd = attempt_start(a, c->socktype, &c->opts, &pending, &fatal);
        if (fd < 0) {
            if (fatal)
                return fd;
            c->last_err = fd;
            if (c->on_attempt)
                c->on_attempt(c, a, fd);
            if (!c->running)
                return -ECANCELED; /* stopped by on_attempt */
            continue;
        }
        c->fd = fd;
        nk_io_init(&c->io, fd, on_io, c);
        int rc = nk_io_start(c->loop, &c->io, NK_WRITE);
        if (rc < 0) {
            close(fd);
            c->fd = -1;
            return rc;
        }
        if (c->opts.attempt_timeout_ms > 0)
            nk_timer_start(c->loop, &c->attempt, (uint64_t)c->opts.attempt_timeout_ms, 0);
        return 0;
    }
    return c->last_err;
}

void nk_connector_init(nk_connector *c, nk_loop *loop, nk_connector_cb cb, void *data)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->cb = cb;
    c->data = data;
    c->fd = -1;
    nk_io_init(&c->io, -1, on_io, c);
    nk_timer_init(&c->attempt, on_attempt_timeout, c);
    nk_timer_init(&c->overall, on_overall_timeout, c);
}

int nk_connector_start(nk_connector *c, const nk_addr *addrs, size_t n, int socktype,
                       const nk_connect_opts *opts)
{
    if (!addrs || n == 0)
        return -EINVAL;
    nk_connect_opts taken;
    int rc = take_opts(&taken, opts);
    if (rc < 0)
        return rc;
    nk_connector_stop(c);
    c->opts = taken;
    if (c->opts.local) { /* the caller's address need not outlive the call */
        c->local = *c->opts.local;
        c->opts.local = &c->local;
    }
    if (n > NK_CONNECTOR_MAX_ADDRS)
        n = NK_CONNECTOR_MAX_ADDRS;
    memcpy(c->addrs, addrs, n * sizeof(*addrs));
    c->naddrs = n;
    c->next = 0;
    c->socktype = socktype;
    c->last_err = -EINVAL;
    c->running = 1;
    rc = try_from(c);
    if (rc < 0) {
        c->running = 0;
        drop_attempt(c);
        return rc;
    }
    if (c->opts.timeout_ms > 0)
        nk_timer_start(c->loop, &c->overall, (uint64_t)c->opts.timeout_ms, 0);
    return 0;
}

void nk_connector_stop(nk_connector *c)
{
    c->running = 0;
    drop_attempt(c);
    nk_timer_stop(c->loop, &c->overall);
}

const nk_addr *nk_connector_addr(const nk_connector *c)
{
    return c->next > 0 ? &c->addrs[c->next - 1] : NULL;
}
