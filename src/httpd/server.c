/* The server engine: listeners, accepting with limits, cached dates, shutdown.
 *
 * Accepting is the one place where a flood of clients meets finite resources, so each limit
 * here has a reason:
 *   - max_conns: at the limit the listeners are paused (the kernel's backlog holds further
 *     clients) rather than accepting and dropping; they resume when a connection closes.
 *   - the backend's highest watchable descriptor (select: FD_SETSIZE - 1) is a limit of the
 *     same kind: a client accepted above it could only be closed unanswered, so accepting
 *     pauses while the next descriptor would land there.
 *   - EMFILE/ENFILE: the pending connection stays in the backlog and the listener stays
 *     readable, so a level-triggered loop would spin. Accepting backs off for 100 ms instead,
 *     and the condition is reported at most once a second.
 *   - an accept error that is not about one client (EINVAL from a listener shut down under
 *     the engine, EBADF, ...) would also repeat at every turn: that listener is reported once
 *     and no longer watched.
 * On uring the listeners accept through one-shot operations instead of readiness (opaccept.c),
 * under the same limits: each one started counts as a connection (accepts_started), so that
 * those in flight can never take the engine past them.
 */
#include "internal.h"
#include "core/extstruct.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#define ACCEPT_BACKOFF_MS 100
/* Descriptors kept free for files, listings and logs of the connections already accepted,
 * so that running short of descriptors refuses new clients, not the ones being served. */
#define FD_RESERVE 32
#define TRIM_DELAY_MS 2000
#define ACCEPT_BATCH 64 /* accepts per readiness event, so one listener cannot starve the rest */
/* Watchable descriptors (below the backend's ceiling) kept free for the engine's own watchers,
 * such as the job thread's eventfd, which may be made while connections fill the rest. */
#define WATCH_RESERVE 4

static void config_defaults(nk_httpd_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->root = ".";
    cfg->index = "index.html";
    cfg->listing = 1;
    nk_http_limits_default(&cfg->limits);
    cfg->max_body = 1024 * 1024;
    cfg->max_conns = 10000;
    cfg->header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 30000;
    cfg->body_timeout_ms = 30000;
    cfg->body_total_timeout_ms = 60000;
    cfg->max_body_authenticated = UINT64_MAX;
    cfg->send_timeout_ms = 60000;
    cfg->drain_timeout_ms = 30000;
    cfg->defer_accept_s = 1;
    cfg->unsent_max = 256 * 1024;
    cfg->access_log_fd = -1;
}

int nk_httpd_config_init_size(nk_httpd_config *cfg, size_t size)
{
    nk_httpd_config defaults;
    config_defaults(&defaults);
    return nk__ext_fill(cfg, size, &defaults, sizeof defaults);
}

void nk__httpd_log(nk_httpd *srv, nk_log_level level, const char *fmt, ...)
{
    if (!srv->cfg.log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv->cfg.log(srv->cfg.log_arg, level, msg);
}

const char *nk__httpd_date(nk_httpd *srv)
{
    /* RFC 9110 section 6.6.1: the Date of every response. time() is a vDSO call; the text is
     * formatted once a second. */
    time_t now = time(NULL);
    if (now != srv->date_sec) {
        srv->date_sec = now;
        nk_http_date_format(now, srv->date);
    }
    return srv->date;
}

/* Before each wait: what the next wake-up finds is a new batch of input (see input_batch). */
static void on_batch_hook(nk_loop *loop, nk_prepare *p)
{
    (void)loop;
    nk_httpd *srv = p->data;
    srv->input_batch++;
}

static void listeners_set(nk_httpd *srv, int on)
{
    for (size_t i = 0; i < srv->nlisteners; i++) {
        nk__listener *l = srv->listeners[i];
        if (l->failed)
            continue;
        if (srv->ops_engine && on)
            nk__lops_fill(srv, l); /* a failure leaves it short, retried at the next change */
        else if (srv->ops_engine)
            nk__lops_stop(srv, l);
        else if (on)
            nk_io_start(srv->loop, &l->io, NK_READ);
        else
            nk_io_stop(srv->loop, &l->io);
    }
}

/* Will the next accepted descriptor be one the loop can watch? The kernel hands out the
 * lowest free number, which a dup shows; only backends with a ceiling pay for the look. */
static int next_fd_watchable(const nk_httpd *srv)
{
    int max_fd = nk_loop_max_fd(srv->loop);
    if (max_fd == INT_MAX)
        return 1;
    int next = fcntl(srv->root_fd, F_DUPFD_CLOEXEC, 0);
    if (next < 0)
        return 1; /* out of descriptors: accept meets EMFILE and backs off */
    close(next);
    return next <= max_fd - WATCH_RESERVE;
}

static int below_limits(const nk_httpd *srv)
{
    unsigned taken = srv->nconns + srv->accepts_started; /* accepts in flight: one each */
    return taken < srv->cfg.max_conns && taken + FD_RESERVE < srv->fd_limit &&
           next_fd_watchable(srv);
}

int nk__accept_room(const nk_httpd *srv)
{
    return below_limits(srv);
}

/* A client accepted but impossible to watch still gets an answer, never a bare close. */
static void refuse_unwatchable(int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Retry-After: 1\r\nConnection: close\r\n\r\n";
    ssize_t w = send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
}

static int may_accept(const nk_httpd *srv)
{
    return !srv->shutting_down && !srv->accept_paused && !srv->accept_backoff;
}

static void update_accepting(nk_httpd *srv)
{
    if (srv->ops_engine) {
        /* Operations in flight are never stopped at the cap (each already holds its slot):
         * the listeners are topped up to what the limits allow, paused when that is none. */
        listeners_set(srv, !srv->shutting_down && !srv->accept_backoff);
        srv->accept_paused = !below_limits(srv);
        return;
    }
    int paused = !below_limits(srv);
    srv->accept_paused = paused;
    listeners_set(srv, may_accept(srv));
}

void nk__accept_update(nk_httpd *srv)
{
    update_accepting(srv);
}

static void on_accept_timer(nk_loop *loop, nk_timer *t)
{
    nk_httpd *srv = t->data;
    srv->accept_backoff = 0;
    update_accepting(srv);
}

/* Errors of accept(2) that concern one client, not the listener: Linux passes a pending
 * network error of the new connection on to accept (the man page lists these for TCP), and
 * a firewall may refuse one (EPERM). The next accept may well succeed. */
static int accept_error_is_transient(int err)
{
    switch (-err) {
    case EINTR: case ECONNABORTED: case EPERM: case EPROTO: case ENOPROTOOPT:
    case ENETDOWN: case ENETUNREACH: case EHOSTDOWN: case EHOSTUNREACH: case ENONET:
    case ETIMEDOUT: case ECONNRESET:
        return 1;
    default:
        return 0;
    }
}

/* The listener cannot accept any more: say so once and stop watching it, rather than spin on
 * an always-ready descriptor. It stays open (and owned) until nk_httpd_free. */
static void listener_failed(nk_httpd *srv, nk__listener *l, int err)
{
    l->failed = 1;
    nk_io_stop(srv->loop, &l->io);
    nk__lops_stop(srv, l);
    nk__httpd_log(srv, NK_LOG_ERROR, "accept on descriptor %d: %s; no longer accepting on it",
                  l->fd, nk_strerror(err));
}

/* accept failed with err: out of descriptors or memory (back off), a client's own error
 * (nothing to do), or the listener's (given up). */
void nk__accept_failed(nk_httpd *srv, nk__listener *l, int err)
{
    if (err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM) {
        uint64_t now = nk_loop_now(srv->loop);
        if (now - srv->last_fd_warning_ms >= 1000 || srv->last_fd_warning_ms == 0) {
            srv->last_fd_warning_ms = now;
            nk__httpd_log(srv, NK_LOG_WARN,
                          "accept: %s; pausing new connections briefly (%u open)",
                          nk_strerror(err), srv->nconns);
        }
        /* Cached open files are the descriptors that can be given back at once. */
        nk__fcache_clear(srv);
        srv->accept_backoff = 1;
        listeners_set(srv, 0);
        nk_timer_start(srv->loop, &srv->accept_timer, ACCEPT_BACKOFF_MS, 0);
        return;
    }
    if (err == -EAGAIN || accept_error_is_transient(err))
        return;
    listener_failed(srv, l, err);
}

/* A client accepted on l: it becomes a connection (or gets an answer and is closed). */
void nk__accept_took(nk_httpd *srv, nk__listener *l, int fd, const nk_addr *peer)
{
    srv->stats.connections++;
    NK__COUNT(srv, connections_total, 1);
    int err = nk__conn_start(srv, fd, peer, l->tls, l->proxy);
    if (srv->nconns > srv->peak_conns)
        srv->peak_conns = srv->nconns;
    if (err < 0) {
        if (err == -ERANGE)
            refuse_unwatchable(fd);
        close(fd);
        if (err == -ERANGE) {
            /* The select backend cannot watch descriptors past FD_SETSIZE: only reached
             * when a descriptor was opened between the check and the accept. */
            uint64_t now = nk_loop_now(srv->loop);
            if (now - srv->last_fd_warning_ms >= 1000 || srv->last_fd_warning_ms == 0) {
                srv->last_fd_warning_ms = now;
                nk__httpd_log(srv, NK_LOG_WARN, "backend %s cannot watch more descriptors",
                              nk_loop_backend(srv->loop));
            }
        }
    }
}

static void on_listener(nk_loop *loop, nk_io *io, unsigned events)
{
    nk__listener *l = io->data;
    nk_httpd *srv = l->srv;
    for (int i = 0; i < ACCEPT_BATCH && may_accept(srv) && below_limits(srv); i++) {
        /* A connection accepted after this callback already answered others (a first request
         * is read and answered at accept) may carry a request its client sent after reading
         * one of those answers, say after changing a file: it starts a new batch of input, so
         * the file cache checks its files again (fcache.c). */
        if (i > 0)
            srv->input_batch++;
        nk_addr peer;
        int fd = nk_sock_accept(l->fd, &peer);
        if (fd == -EAGAIN)
            return;
        if (fd < 0) {
            nk__accept_failed(srv, l, fd);
            if (srv->accept_backoff || l->failed)
                return;
            continue;
        }
        nk__accept_took(srv, l, fd, &peer);
    }
    update_accepting(srv);
}

static void on_log_timer(nk_loop *loop, nk_timer *t)
{
    nk__log_flush(t->data);
}

static void on_trim_timer(nk_loop *loop, nk_timer *t)
{
    /* After a flood of connections closes, glibc keeps the freed per-connection memory for
     * later (it only returns the top of the heap). Give it back once the server has calmed
     * down, so memory returns near its baseline; rare, so its cost does not matter. */
    nk_httpd *srv = t->data;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    srv->peak_conns = srv->nconns;
}

/* The listeners' descriptors close two loop iterations after the drain began: by then the loop
 * has applied their watchers' removal (a deferred callback started from a deferred callback
 * runs on the iteration after, and each iteration applies changes after its defers). Closing
 * earlier would leave an epoll registration on a file other processes still hold. Once every
 * holder has closed (the other workers, a supervisor), the socket is gone: a new connection is
 * refused at once, and a balancer tries another node, instead of waiting in a backlog nobody
 * accepts from and being reset when the process exits. A listener shared with a new server
 * after an upgrade stays open in it. */
static void on_listeners_close(nk_loop *loop, nk_defer *d)
{
    nk_httpd *srv = d->data;
    if (!srv->listeners_closing) {
        srv->listeners_closing = 1;
        nk_defer_start(loop, d);
        return;
    }
    for (size_t i = 0; i < srv->nlisteners; i++) {
        if (srv->listeners[i]->fd >= 0)
            close(srv->listeners[i]->fd);
        srv->listeners[i]->fd = -1;
    }
}

static void on_drain_timer(nk_loop *loop, nk_timer *t)
{
    nk_httpd *srv = t->data;
    /* In-flight responses had their time; drop what is left. */
    while (srv->conns)
        nk__conn_close(srv->conns);
}

/* on_drained may free the engine (the documented life cycle), so it runs from the loop with no
 * engine frame below it: the last connection may close inside nk_httpd_shutdown, the drain
 * timer or a connection's own write path, all of which still use the engine afterwards. */
static void on_drained_defer(nk_loop *loop, nk_defer *d)
{
    nk_httpd *srv = d->data;
    if (srv->cfg.on_drained)
        srv->cfg.on_drained(srv->cfg.drained_arg); /* last: srv may be gone */
}

static int open_root(nk_httpd *srv)
{
    srv->root_fd = open(srv->cfg.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (srv->root_fd < 0)
        return -errno;
    char *real = realpath(srv->cfg.root, NULL);
    if (!real)
        return -errno;
    srv->root_real = real;
    srv->root_real_len = strlen(real);
    /* openat2(RESOLVE_BENEATH) confines look-ups to the root in the kernel; older kernels get
     * a check of the opened file's real path instead. */
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
    int fd = (int)syscall(SYS_openat2, srv->root_fd, ".", &how, sizeof how);
    srv->have_openat2 = fd >= 0;
    if (fd >= 0)
        close(fd);
    return 0;
}

int nk_httpd_new(nk_loop *loop, const nk_httpd_config *cfg, nk_httpd **out)
{
    nk_httpd_config known;
    config_defaults(&known);
    int rc = nk__ext_copy(&known, sizeof known, cfg);
    if (rc < 0)
        return rc;
    nk_httpd *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -ENOMEM;
    srv->loop = loop;
    srv->cfg = known;
    srv->ops_engine = strcmp(nk_loop_backend(loop), "uring") == 0;
    srv->root_fd = -1;
    if (srv->cfg.limits.max_headers > NK_HTTP_MAX_HEADERS)
        srv->cfg.limits.max_headers = NK_HTTP_MAX_HEADERS;
    if (srv->cfg.max_conns == 0)
        srv->cfg.max_conns = 1;
    /* A restarted worker takes over its slot: what was open died with its predecessor. */
    srv->ctr = srv->cfg.counters ? srv->cfg.counters : &srv->own_counters;
    __atomic_store_n(&srv->ctr->connections_open, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&srv->ctr->started, (uint64_t)time(NULL), __ATOMIC_RELAXED);
    __atomic_store_n(&srv->ctr->pid, (uint64_t)getpid(), __ATOMIC_RELAXED);
    if (srv->cfg.gzip_level < 1 || srv->cfg.gzip_level > 9)
        srv->cfg.gzip_level = 6;
    nk_buf_init(&srv->head, 0);
    nk_buf_init(&srv->body, 0);
    nk_buf_init(&srv->log, 0);
    nk_timer_init(&srv->accept_timer, on_accept_timer, srv);
    nk_timer_init(&srv->log_timer, on_log_timer, srv);
    nk_timer_init(&srv->drain_timer, on_drain_timer, srv);
    nk_timer_init(&srv->trim_timer, on_trim_timer, srv);
    nk_timer_init(&srv->kick_timer, nk__conn_on_kick, srv);
    srv->max_handshakes = NK__MAX_HANDSHAKES;
    srv->h2_on = 1;
    srv->h2_max_streams = 100;
    nk_defer_init(&srv->drained_defer, on_drained_defer, srv);
    nk_defer_init(&srv->listeners_close, on_listeners_close, srv);
    nk_prepare_init(&srv->batch_hook, on_batch_hook, srv);
    nk_prepare_start(loop, &srv->batch_hook);
    struct rlimit rl;
    srv->fd_limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                        ? (unsigned long)rl.rlim_cur : 1UL << 20;
    /* At most an eighth of the descriptors hold cached files. */
    srv->fcache_max = (unsigned)(srv->fd_limit / 8 < 512 ? srv->fd_limit / 8 : 512);
    int err = open_root(srv);
    if (err == 0)
        err = nk_mime_load(srv->cfg.mime_types, &srv->mime);
    if (err < 0) {
        nk_httpd_free(srv);
        return err;
    }
    *out = srv;
    return 0;
}

/* Can the engine accept on fd: a listening stream socket it does not have yet? Anything else
 * would fail at every readiness event (a UDP socket, a socket never listened on), or never
 * become ready in the way accepting needs (a regular file is always "readable"). */
static int check_listener(const nk_httpd *srv, int fd)
{
    if (fd < 0)
        return -EBADF;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISSOCK(st.st_mode))
        return -ENOTSOCK;
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return -errno;
    if (type != SOCK_STREAM)
        return -EINVAL;
    len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
        return -errno;
    if (!listening)
        return -EINVAL;
    for (size_t i = 0; i < srv->nlisteners; i++)
        if (srv->listeners[i]->fd == fd)
            return -EEXIST;
    return 0;
}

static int listen_on(nk_httpd *srv, int listen_fd, int tls, int proxy);

int nk_httpd_listen(nk_httpd *srv, int listen_fd)
{
    return listen_on(srv, listen_fd, 0, 0);
}

int nk_httpd_listen_opts(nk_httpd *srv, int listen_fd, unsigned flags, nk_tls_ctx *ctx)
{
    if (flags & ~(unsigned)(NK_HTTPD_LISTEN_TLS | NK_HTTPD_LISTEN_PROXY))
        return -EINVAL;
    int tls = (flags & NK_HTTPD_LISTEN_TLS) != 0;
    if (tls && ((!ctx && !srv->tls_ctx) || (ctx && nk_tls_ctx_ncerts(ctx) == 0)))
        return -EINVAL;
    int err = listen_on(srv, listen_fd, tls, (flags & NK_HTTPD_LISTEN_PROXY) != 0);
    if (err == 0 && tls && ctx)
        nk_httpd_set_tls(srv, ctx);
    return err;
}

int nk_httpd_listen_tls(nk_httpd *srv, int listen_fd, nk_tls_ctx *ctx)
{
    if (!ctx && !srv->tls_ctx)
        return -EINVAL;
    if (ctx && nk_tls_ctx_ncerts(ctx) == 0)
        return -EINVAL; /* a server context needs a certificate */
    int err = listen_on(srv, listen_fd, 1, 0);
    if (err == 0 && ctx)
        nk_httpd_set_tls(srv, ctx);
    return err;
}

int nk_httpd_set_tls(nk_httpd *srv, nk_tls_ctx *ctx)
{
    if (!ctx || nk_tls_ctx_ncerts(ctx) == 0)
        return -EINVAL;
    /* Connections keep the context they started with (nk_tls holds a reference), so a
     * reload changes only what new handshakes see. */
    nk_tls_ctx_free(srv->tls_ctx);
    srv->tls_ctx = nk_tls_ctx_ref(ctx);
    return 0;
}

void nk_httpd_set_http2(nk_httpd *srv, int on, unsigned max_streams)
{
    srv->h2_on = on != 0;
    srv->h2_max_streams = max_streams ? max_streams : 100;
}

void nk_httpd_set_hsts(nk_httpd *srv, unsigned max_age_s)
{
    srv->hsts_s = max_age_s;
}

void nk_httpd_set_https_redirect(nk_httpd *srv, unsigned port)
{
    srv->https_port = port <= 65535 ? port : 0;
}

void nk_httpd_set_limit_hint(nk_httpd *srv, const char *hint)
{
    srv->limit_hint = hint;
}

void nk_httpd_set_handshake_limit(nk_httpd *srv, unsigned max_in_flight)
{
    srv->max_handshakes = max_in_flight ? max_in_flight : NK__MAX_HANDSHAKES;
}

static int listen_on(nk_httpd *srv, int listen_fd, int tls, int proxy)
{
    int err = check_listener(srv, listen_fd);
    if (err < 0)
        return err;
    /* A blocking listener would block the whole loop in accept when the client that made it
     * readable is gone by then (reset, or taken by another process sharing the socket). The
     * flag belongs to the open file, so descriptors shared with it see it too. */
    int fl = fcntl(listen_fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return -errno;
    /* A fixed send buffer (inherited by accepted sockets, like TCP_NODELAY below) bounds the
     * kernel memory a client that does not read can pin; it turns autotuning off for them. */
    if (srv->cfg.sndbuf > 0 &&
        setsockopt(listen_fd, SOL_SOCKET, SO_SNDBUF, &srv->cfg.sndbuf, sizeof srv->cfg.sndbuf) < 0)
        return -errno;
    nk__listener **grown = realloc(srv->listeners, (srv->nlisteners + 1) * sizeof(nk__listener *));
    if (!grown)
        return -ENOMEM;
    srv->listeners = grown;
    nk__listener *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    /* Responses are written whole (head and body in one writev, or coalesced with MSG_MORE),
     * so Nagle's delay would only add latency to the last segment. Accepted sockets inherit
     * TCP_NODELAY from the listener, which saves a system call per connection. (On a Unix
     * socket this fails harmlessly.) */
    int on = 1;
    setsockopt(listen_fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    /* Inherited like TCP_NODELAY: the kernel stops taking writes (and stops reporting the
     * socket writable) while this many bytes wait unsent, so a client that does not read
     * cannot make the send queue grow to the autotuning maximum. */
    if (srv->cfg.unsent_max > 0)
        setsockopt(listen_fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &srv->cfg.unsent_max,
                   sizeof srv->cfg.unsent_max);
    /* HTTP clients speak first, so the kernel can hold a new connection until its request
     * arrives: accept then finds the request already readable (nk__conn_start reads at
     * once), which saves a wake-up, a failed read and a readiness change per connection
     * (about 30% of the server's CPU per request with Connection: close in bench/http.sh).
     * A client that sends nothing is accepted after about defer_accept_s seconds anyway
     * and meets the header timeout; until then it costs no descriptor. */
    if (srv->cfg.defer_accept_s > 0)
        setsockopt(listen_fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &srv->cfg.defer_accept_s,
                   sizeof srv->cfg.defer_accept_s);
    l->fd = listen_fd;
    l->srv = srv;
    l->tls = tls;
    l->proxy = proxy;
    nk_io_init(&l->io, listen_fd, on_listener, l);
    /* Watch it once now, so that what the loop refuses (another watcher has the descriptor,
     * select's FD_SETSIZE) is this call's error; update_accepting then pauses it if needed.
     * On operations, its first accepts are that test (none when at the cap already). */
    err = srv->ops_engine ? nk__lops_fill(srv, l) : nk_io_start(srv->loop, &l->io, NK_READ);
    if (err < 0) {
        free(l);
        return err;
    }
    grown[srv->nlisteners++] = l;
    update_accepting(srv);
    return 0;
}

void nk__httpd_conn_closed(nk_httpd *srv)
{
    if (srv->shutting_down) {
        if (!srv->conns && !srv->drained_called) {
            srv->drained_called = 1;
            nk_timer_stop(srv->loop, &srv->drain_timer);
            nk__log_flush(srv);
            nk_defer_start(srv->loop, &srv->drained_defer);
        }
        return;
    }
    if (srv->accept_paused && below_limits(srv))
        update_accepting(srv);
    if (srv->peak_conns >= 256 && srv->nconns <= srv->peak_conns / 4 &&
        !nk_timer_active(&srv->trim_timer))
        nk_timer_start(srv->loop, &srv->trim_timer, TRIM_DELAY_MS, 0);
}

void nk_httpd_shutdown(nk_httpd *srv)
{
    if (srv->shutting_down)
        return;
    srv->shutting_down = 1;
    nk_timer_stop(srv->loop, &srv->accept_timer);
    /* Listeners stop being watched now, and close once the loop has applied that (an accept
     * the kernel still held meanwhile comes back cancelled, its connection closed). */
    for (size_t i = 0; i < srv->nlisteners; i++) {
        nk_io_stop(srv->loop, &srv->listeners[i]->io);
        nk__lops_stop(srv, srv->listeners[i]);
    }
    nk_defer_start(srv->loop, &srv->listeners_close);
    /* Idle connections go now; busy ones finish their current response, then close. */
    for (nk__conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        nk__conn_shutdown(c);
    }
    if (srv->conns && srv->cfg.drain_timeout_ms)
        nk_timer_start(srv->loop, &srv->drain_timer, srv->cfg.drain_timeout_ms, 0);
    nk__httpd_conn_closed(srv);
}

void nk_httpd_set_access_log(nk_httpd *srv, int fd)
{
    nk__log_flush(srv);
    srv->cfg.access_log_fd = fd;
}

void nk_httpd_get_stats(const nk_httpd *srv, nk_httpd_stats *out)
{
    *out = srv->stats;
    out->open = srv->nconns;
}

void nk_httpd_free(nk_httpd *srv)
{
    if (!srv)
        return;
    /* No more accepting, resuming or drain callbacks while tearing down. */
    srv->shutting_down = 1;
    srv->drained_called = 1;
    while (srv->conns)
        nk__conn_close(srv->conns);
    nk__jobs_free(srv); /* after the connections: their jobs no longer answer anyone */
    nk__log_flush(srv);
    for (size_t i = 0; i < srv->nlisteners; i++) {
        nk_io_stop(srv->loop, &srv->listeners[i]->io);
        nk__lops_stop(srv, srv->listeners[i]);
        if (srv->listeners[i]->fd >= 0)
            close(srv->listeners[i]->fd);
    }
    nk_timer_stop(srv->loop, &srv->accept_timer);
    nk_timer_stop(srv->loop, &srv->log_timer);
    nk_timer_stop(srv->loop, &srv->drain_timer);
    nk_timer_stop(srv->loop, &srv->trim_timer);
    nk_timer_stop(srv->loop, &srv->kick_timer);
    nk_tls_ctx_free(srv->tls_ctx);
    nk_defer_stop(srv->loop, &srv->drained_defer);
    nk_defer_stop(srv->loop, &srv->listeners_close);
    nk_prepare_stop(srv->loop, &srv->batch_hook);
    /* Last of the loop's work: the kernel lets go of the closed connections' operations (their
     * callbacks touch nothing but their records), so that the loop can be freed. */
    nk__opc_drain(srv);
    nk__fopen_drain(srv);
    nk__lops_free_listeners(srv);
    if (srv->root_fd >= 0)
        close(srv->root_fd);
    free(srv->root_real);
    if (srv->mime)
        nk_mime_free(srv->mime);
    nk__pool_free(srv);
    nk__routes_free(srv); /* and the LATER exchanges whose clients went away */
    nk__fcache_free(srv);
    nk_buf_free(&srv->head);
    nk_buf_free(&srv->body);
    nk_buf_free(&srv->log);
    free(srv->proxy_from);
    free(srv->health_path);
    free(srv);
}
