/* The process side of `netkit http serve`: binding listeners, running a worker's loop, and
 * supervising several workers. See http/cmd.c for the model. */
#include "cli.h"
#include "cli_tls.h"
#include "conn_tags.h"
#include "http/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SOCKETS HTTP_MAX_INHERIT /* all of them pass to a new binary on SIGUSR2 */
#define RESTART_WINDOW_MS 10000
#define RESTART_LIMIT 20 /* restarts within the window before the supervisor gives up */
/* Bounds of the walk for a dead worker's temporary upload files (done on the supervisor's
 * loop); what lies beyond waits for the clean-up at the next start. */
#define CLEAN_MAX_DEPTH 32
#define CLEAN_MAX_ENTRIES 100000

/* With several workers each TCP address is bound once per worker (SO_REUSEPORT), and the
 * supervisor keeps every socket: a restarted worker takes over its predecessor's socket with
 * the connections queued on it, and SIGUSR2 hands all of them to a new binary. Sockets of one
 * address form a group; worker w accepts on the group's sockets p with p mod N = w (see
 * worker_takes). A unix socket, or one from a service manager, is a group of one: shared. */
typedef struct listener {
    nk_addr addr;     /* bound address, with the real port */
    int fd;
    int group;        /* listeners of one address and scheme */
    int is_unix;
    int flags;        /* NK_SOCK_* used to bind it; workers bind theirs the same way, since
                       * SO_REUSEPORT groups only sockets with equal options (IPV6_V6ONLY) */
    int tls;          /* https:// */
    int proxy;        /* proxy+: a PROXY protocol header first */
    int inherited;    /* passed by a service manager or the server before an upgrade */
    int unlink;       /* a unix socket path this server removes when it stops */
} listener;

typedef struct server_state {
    http_serve_opts *o;
    listener socks[MAX_SOCKETS];
    int nsocks;
    /* worker */
    nk_loop *loop;
    nk_httpd *httpd;
    int log_fd;
    nk_signal sig_term, sig_int, sig_hup, sig_usr1, sig_usr2, sig_drain;
    int draining;           /* the first SIGTERM/SIGINT came */
    http_upgrade upgrade;   /* SIGUSR2: the new server while it starts */
    int handed_over;        /* a new server took the listeners: leave unix paths alone */
    int cpus[HTTP_MAX_AFFINITY]; /* --cpu-affinity: worker w runs on cpus[w] */
    nk_timer log_tty_timer; /* flushes the access log when it goes to a terminal */
    nk_timer grace_timer;   /* --health-grace: the drain begins when it fires */
    conn_tags conn_tags;    /* -v: connection numbers */
    int exit_code;
    /* supervisor */
    pid_t *pids;
    uint64_t *started_ms;
    int stopping;
    unsigned restarts;
    uint64_t window_start;
    int ready_fd;           /* worker: write end of the supervisor's readiness pipe, or -1 */
    nk_httpd_counters *counters; /* shared slots, one per worker (several workers), or NULL */
    int worker_index;
    nk_tls_ctx *tls;        /* the context of https:// listeners, made before any fork */
    nk_signal sig_chld;
    nk_timer kill_timer, restart_timer;
} server_state;

/* ---- listeners ---------------------------------------------------------------------------- */

static int bind_one(server_state *s, const nk_addr *addr, int flags, const char *text, int tls,
                    int proxy, int group)
{
    if (s->nsocks >= MAX_SOCKETS)
        return cli_usage(s->o->cmd, "too many listening sockets (at most %d: addresses times "
                                    "workers)", MAX_SOCKETS);
    int fd = nk_sock_listen(addr, SOCK_STREAM, flags, 0);
    if (fd < 0)
        return cli_fail(s->o->cmd, "cannot listen on %s: %s", text, nk_strerror(fd));
    listener *l = &s->socks[s->nsocks++];
    memset(l, 0, sizeof *l);
    l->fd = fd;
    l->flags = flags;
    l->tls = tls;
    l->proxy = proxy;
    l->group = group;
    l->is_unix = nk_addr_family(addr) == AF_UNIX;
    l->unlink = l->is_unix;
    if (nk_sock_local(fd, &l->addr) < 0 || l->is_unix)
        l->addr = *addr;
    return 0;
}

/* Worker `index` of n accepts on listener i: the group's socket p goes to worker p mod n, and
 * with fewer sockets than workers (a unix socket, an inherited one) worker w >= k shares the
 * socket w mod k. Every socket has a worker; every worker has a socket of every group. */
static int worker_takes(const server_state *s, int i, int index, int n)
{
    int pos = 0, k = 0;
    for (int j = 0; j < s->nsocks; j++) {
        if (s->socks[j].group != s->socks[i].group)
            continue;
        pos += j < i;
        k++;
    }
    return pos % n == index || (index >= k && pos == index % k);
}

/* Listeners a service manager passed (socket activation): every worker shares each one. */
static int add_inherited(server_state *s)
{
    for (int i = 0; i < s->o->ninherited; i++) {
        if (s->nsocks >= MAX_SOCKETS)
            return cli_usage(s->o->cmd, "too many listening sockets");
        const http_inherited *h = &s->o->inherited[i];
        listener *l = &s->socks[s->nsocks++];
        memset(l, 0, sizeof *l);
        l->fd = h->fd;
        l->tls = h->tls;
        l->proxy = h->proxy;
        l->inherited = 1;
        l->unlink = h->unlink;
        if (nk_sock_local(h->fd, &l->addr) < 0)
            return cli_fail(s->o->cmd, "inherited descriptor %d: no local address", h->fd);
        l->is_unix = nk_addr_family(&l->addr) == AF_UNIX;
        /* Sockets of one address and scheme (one per worker of the server before an upgrade)
         * are spread over the workers like the ones bound here. */
        l->group = s->nsocks - 1;
        for (int j = 0; j < s->nsocks - 1; j++) {
            const listener *o = &s->socks[j];
            if (nk_addr_equal(&o->addr, &l->addr) && o->tls == l->tls && o->proxy == l->proxy) {
                l->group = o->group;
                break;
            }
        }
    }
    return 0;
}

static int bind_listeners(server_state *s)
{
    http_serve_opts *o = s->o;
    int reuse = o->workers > 1 ? NK_SOCK_REUSEPORT : 0;
    for (int i = 0; i < o->nlisten; i++) {
        const char *text = o->listen[i];
        nk_addr addrs[8];
        size_t count;
        int bad = cli_parse_addrs(o->cmd, text, SOCK_STREAM,
                                  CLI_ADDR_LISTEN | CLI_ADDR_BOTH_FAMILIES, addrs, 8, &count);
        if (bad)
            return bad;
        int n = (int)count;
        int first_port = -1;
        for (int k = 0; k < n; k++) {
            nk_addr a = addrs[k];
            int flags = nk_addr_family(&a) == AF_UNIX ? 0 : reuse;
            if (n > 1 && nk_addr_family(&a) == AF_INET6)
                flags |= NK_SOCK_V6ONLY; /* the IPv4 address is bound separately */
            if (first_port > 0 && nk_addr_port(&a) == 0)
                nk_addr_set_port(&a, first_port); /* port 0: one port for all addresses */
            /* One socket per worker (a unix socket is one socket for all). */
            int copies = flags & NK_SOCK_REUSEPORT ? o->workers : 1;
            int group = s->nsocks;
            for (int w = 0; w < copies; w++) {
                int r = bind_one(s, &a, flags, text, o->listen_tls[i], o->listen_proxy[i], group);
                if (r)
                    return r;
                if (w == 0 && nk_addr_port(&a) == 0 && nk_addr_family(&a) != AF_UNIX)
                    nk_addr_set_port(&a, nk_addr_port(&s->socks[s->nsocks - 1].addr));
            }
            if (first_port < 0)
                first_port = nk_addr_port(&s->socks[s->nsocks - 1].addr);
        }
    }
    return 0;
}

static void print_listeners(server_state *s)
{
    for (int i = 0; i < s->nsocks; i++) {
        if (s->socks[i].group != i)
            continue; /* the same address again, for another worker */
        char text[NK_ADDR_STRLEN];
        nk_addr_format(&s->socks[i].addr, text, sizeof text);
        if (s->socks[i].is_unix) {
            fprintf(stderr, "listening on %s\n", text);
            continue;
        }
        const char *scheme = s->socks[i].tls ? "https" : "http";
        fprintf(stderr, "listening on %s%s://%s\n", s->socks[i].proxy ? "proxy+" : "", scheme,
                text);
        if (!nk_addr_is_wildcard(&s->socks[i].addr) || s->o->quiet)
            continue;
        /* Tell the user where other machines can reach a listener on all interfaces. */
        struct ifaddrs *ifs;
        if (getifaddrs(&ifs) < 0)
            continue;
        int family = nk_addr_family(&s->socks[i].addr);
        for (struct ifaddrs *ifa = ifs; ifa; ifa = ifa->ifa_next) {
            if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != family || !(ifa->ifa_flags & IFF_UP))
                continue;
            nk_addr a;
            memset(&a, 0, sizeof a);
            a.len = family == AF_INET ? sizeof a.u.in : sizeof a.u.in6;
            memcpy(&a.u.ss, ifa->ifa_addr, a.len);
            nk_addr_set_port(&a, nk_addr_port(&s->socks[i].addr));
            nk_addr_format(&a, text, sizeof text);
            fprintf(stderr, "  reachable at %s://%s (%s)\n", scheme, text, ifa->ifa_name);
        }
        freeifaddrs(ifs);
    }
    fflush(stderr);
}

/* --cpu-affinity: the CPUs of the workers, and each reuseport group steered by CPU; without
 * it, a group inherited from a server that steered goes back to the kernel's hash. */
static int setup_affinity(server_state *s)
{
    http_serve_opts *o = s->o;
    if (o->cpu_affinity) {
        int n = http_affinity_cpus(s->cpus, HTTP_MAX_AFFINITY);
        if (n < 0)
            return cli_fail(o->cmd, "--cpu-affinity: cannot read the CPUs: %s", nk_strerror(n));
        if (o->workers > n)
            return cli_usage(o->cmd, "--cpu-affinity: %d workers for %d CPU%s (at most one "
                                     "worker per CPU)", o->workers, n, n == 1 ? "" : "s");
    }
    for (int i = 0; i < s->nsocks; i++) {
        const listener *l = &s->socks[i];
        if (l->group != i || l->is_unix || i + 1 >= s->nsocks || s->socks[i + 1].group != i)
            continue; /* not the first of a group of several sockets */
        if (!o->cpu_affinity) {
            if (l->inherited)
                http_affinity_unsteer(l->fd);
            continue;
        }
        int err = http_affinity_steer(l->fd, s->cpus, o->workers);
        if (err < 0)
            return cli_fail(o->cmd, "--cpu-affinity: cannot steer connections by CPU: %s",
                            nk_strerror(err));
    }
    return 0;
}

/* ---- one worker --------------------------------------------------------------------------- */

static void log_to_stderr(void *arg, nk_log_level level, const char *msg)
{
    server_state *s = arg;
    fprintf(stderr, "netkit: %s: %s%s\n", s->o->cmd, level == NK_LOG_ERROR ? "error: " : "", msg);
}

static void print_head(void *arg, const void *conn, unsigned nth, int family,
                       const unsigned char *ip, unsigned port, const char *head, size_t len)
{
    /* -v: the head as it arrived, CRs left out; any other control byte (C0, DEL, C1) would
     * reach the terminal, so it is shown escaped, as every tool shows text from peers. It
     * starts with a tag naming the peer and the connection ("[127.0.0.1:54321 #3]"; with
     * several workers "#W.N", worker W's connection N), as heads of clients served at the
     * same time come one after the other. */
    server_state *s = arg;
    char addr[INET6_ADDRSTRLEN] = "unix";
    if ((family == AF_INET || family == AF_INET6) && ip)
        inet_ntop(family, ip, addr, sizeof addr);
    unsigned long number = conn_tags_number(&s->conn_tags, conn, nth == 0);
    fputc('[', stderr);
    if (family == AF_INET6)
        fprintf(stderr, "[%s]:%u", addr, port);
    else if (family == AF_INET)
        fprintf(stderr, "%s:%u", addr, port);
    else
        fputs(addr, stderr);
    if (s->o->workers > 1)
        fprintf(stderr, " #%d.%lu] ", s->worker_index + 1, number);
    else
        fprintf(stderr, " #%lu] ", number);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || head[i] == '\r') {
            cli_fput_escaped(stderr, head + start, i - start, CLI_ESC_KEEP_NL | CLI_ESC_KEEP_TAB);
            start = i + 1;
        }
    }
    fflush(stderr);
}

static int open_access_log(const char *dest)
{
    if (strcmp(dest, "off") == 0)
        return -1;
    if (strcmp(dest, "-") == 0)
        return STDOUT_FILENO;
    int fd = open(dest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno - 1000000 : fd;
}

/* A terminal echoes Ctrl-C as "^C" and leaves the cursor there: end that line, so that the
 * next message or log line starts at the margin. */
static void end_ctrl_c_line(void)
{
    if (isatty(STDERR_FILENO)) {
        fputc('\n', stderr);
        fflush(stderr);
    }
}

/* The engine batches access log lines and writes them within a second, which suits files and
 * pipes; a person watching a terminal expects each request's line as it happens. The engine
 * writes its batch whenever the log descriptor is set again, so on a terminal that is done
 * every TTY_LOG_FLUSH_MS (a write only when a line is waiting). */
#define TTY_LOG_FLUSH_MS 100
static void on_log_tty_timer(nk_loop *loop, nk_timer *t)
{
    server_state *s = t->data;
    (void)loop;
    nk_httpd_set_access_log(s->httpd, s->log_fd);
}

static void on_drained(void *arg)
{
    server_state *s = arg;
    nk_loop_stop(s->loop);
}

/* SIGHUP: certificates and keys read again; connections open keep the old context until
 * they end. A certificate that fails to load leaves the old one in place. */
static void reload_tls(server_state *s)
{
    if (!s->tls || s->o->ncerts == 0)
        return; /* no TLS, or only a certificate made at start */
    char err[NK_TLS_ERR_MAX] = "";
    nk_tls_ctx *ctx;
    int r = http_tls_context(s->o, &ctx, err, sizeof err);
    if (r < 0) {
        /* Said once: by the only worker, or by the supervisor of several. */
        if (!s->httpd || s->o->workers == 1) {
            fprintf(stderr, "netkit: %s: keeping the old TLS certificate: %s\n", s->o->cmd, err);
            fflush(stderr);
        }
        return;
    }
    if (s->httpd) /* a worker; the supervisor keeps it for the workers it restarts */
        nk_httpd_set_tls(s->httpd, ctx);
    nk_tls_ctx_free(s->tls);
    s->tls = ctx;
}

static void begin_drain(server_state *s);

/* The listeners as a new binary gets them (the ones of this server, in order). */
static int handover_list(const server_state *s, http_inherited *out)
{
    int n = 0;
    for (int i = 0; i < s->nsocks; i++) {
        if (s->socks[i].fd < 0)
            continue;
        out[n].fd = s->socks[i].fd;
        out[n].tls = s->socks[i].tls;
        out[n].proxy = s->socks[i].proxy;
        out[n].unlink = s->socks[i].unlink;
        n++;
    }
    return n;
}

static void close_listeners(server_state *s);

/* The new server accepts on every listener: this one lets go of them. */
static void close_handed_over(server_state *s)
{
    s->handed_over = 1;
    close_listeners(s);
}

static void report_upgrade(const server_state *s, int ok, pid_t pid)
{
    if (ok)
        fprintf(stderr, "netkit: %s: upgrade: the new server (pid %d) accepts; this one (pid %d) "
                        "drains and exits\n", s->o->cmd, (int)pid, (int)getpid());
    else
        fprintf(stderr, "netkit: %s: upgrade failed: the new server did not start; still "
                        "serving\n", s->o->cmd);
    fflush(stderr);
}

static void start_upgrade(server_state *s, void (*done)(http_upgrade *, int, pid_t))
{
    if (s->draining || s->stopping) {
        fprintf(stderr, "netkit: %s: upgrade refused: the server is stopping\n", s->o->cmd);
        return;
    }
    http_inherited list[MAX_SOCKETS];
    int n = handover_list(s, list);
    int err = http_upgrade_begin(&s->upgrade, s->loop, s->o, list, n, done, s);
    if (err == -EALREADY)
        fprintf(stderr, "netkit: %s: upgrade already in progress (pid %d)\n", s->o->cmd,
                (int)s->upgrade.pid);
    else if (err < 0)
        fprintf(stderr, "netkit: %s: upgrade failed: %s; still serving\n", s->o->cmd,
                err == -ENOEXEC ? "the command line is not known (no /proc)" : nk_strerror(err));
    else if (!s->o->quiet)
        fprintf(stderr, "netkit: %s: upgrade: starting %s (pid %d)\n", s->o->cmd,
                s->o->self_exe, (int)s->upgrade.pid);
    fflush(stderr);
}

/* The only worker's upgrade ended. */
static void on_worker_upgraded(http_upgrade *u, int ok, pid_t pid)
{
    server_state *s = u->arg;
    report_upgrade(s, ok, pid);
    if (!ok)
        return;
    close_handed_over(s);
    s->draining = 1;
    begin_drain(s);
}

static void on_worker_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    server_state *s = sig->data;
    if (signum == SIGUSR2) {
        start_upgrade(s, on_worker_upgraded);
        return;
    }
    if (signum == HTTP_SIG_HANDED_OVER) {
        if (!s->draining) {
            s->draining = 1;
            begin_drain(s);
        }
        return;
    }
    if (signum == SIGHUP) {
        const char *dest = s->o->access_log;
        if (s->log_fd > STDOUT_FILENO) {
            int fd = open_access_log(dest);
            if (fd >= 0) {
                nk_httpd_set_access_log(s->httpd, fd);
                close(s->log_fd);
                s->log_fd = fd;
            }
        }
        reload_tls(s);
        return;
    }
    /* The watchers stay: stopping them would unblock the signals, and a second SIGTERM
     * during the drain would then kill the process instead of stopping it cleanly. */
    int supervised = s->o->workers > 1;
    if (signum == SIGINT && !supervised)
        end_ctrl_c_line();
    if (signum == SIGUSR1 || (s->draining && !supervised)) {
        /* Stop now: the loop ends and nk_httpd_free drops what is left. A supervised worker
         * gets SIGTERM twice for one stop (from the terminal or a service manager as well as
         * from its supervisor), so there only the supervisor's SIGUSR1 means "again". */
        nk_loop_stop(loop);
        return;
    }
    if (s->draining)
        return;
    s->draining = 1;
    if (!supervised)
        http_notify("STOPPING=1");
    if (s->o->health && s->o->health_grace) {
        /* Balancers see the health check fail while the node still takes what they send. */
        nk_httpd_set_healthy(s->httpd, 0);
        nk_timer_start(loop, &s->grace_timer, s->o->health_grace * 1000u, 0);
        return;
    }
    begin_drain(s);
}

static void on_grace_timer(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    begin_drain(t->data);
}

/* The supervisor's (or the only worker's) own descriptors of the listeners, closed once the
 * server stops accepting: with the engine's gone too, the sockets close and new connections
 * are refused at once (a balancer tries another node) instead of waiting, unaccepted, in a
 * backlog. A new server after an upgrade holds its own. */
static void close_listeners(server_state *s)
{
    for (int i = 0; i < s->nsocks; i++) {
        if (s->socks[i].fd >= 0)
            close(s->socks[i].fd);
        s->socks[i].fd = -1;
    }
}

static void begin_drain(server_state *s)
{
    close_listeners(s);
    nk_httpd_shutdown(s->httpd);
    nk_httpd_stats st;
    nk_httpd_get_stats(s->httpd, &st);
    if (st.open > 0 && !s->o->quiet) {
        fprintf(stderr, "netkit: %s: draining %u connection%s (up to %u s; SIGTERM again to stop "
                        "now)\n", s->o->cmd, st.open, st.open == 1 ? "" : "s",
                (s->o->cfg.drain_timeout_ms + 999) / 1000);
        fflush(stderr);
    }
}

/* Run one worker's loop until a graceful stop, on the listeners worker_takes gives it. */
static int run_worker(server_state *s)
{
#ifdef __GLIBC__
    /* Buffers of 64-256 KiB come and go with every large answer (HTTP/2 streams, TLS): by
     * default glibc hands the top of the heap back on each free and faults it in again on the
     * next malloc, which doubled the CPU per 64 KiB response in bench/h2.sh. The engine's own
     * malloc_trim after a peak still returns the memory once the server calms down. */
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
#endif
    http_serve_opts *o = s->o;
    if (o->cpu_affinity) {
        int pinned = http_affinity_pin(s->cpus[s->worker_index]);
        if (pinned < 0)
            return cli_fail(o->cmd, "--cpu-affinity: cannot pin worker %d to CPU %d: %s",
                            s->worker_index + 1, s->cpus[s->worker_index], nk_strerror(pinned));
    }
    int err = nk_loop_new(o->backend, &s->loop);
    if (err < 0)
        return cli_fail(o->cmd, "cannot start the %s event loop: %s", o->backend ? o->backend : "default", nk_strerror(err));
    s->log_fd = open_access_log(o->access_log);
    if (s->log_fd < -1)
        return cli_fail(o->cmd, "cannot open access log '%s': %s", o->access_log, nk_strerror(s->log_fd + 1000000));
    nk_httpd_config cfg = o->cfg;
    cfg.access_log_fd = s->log_fd;
    cfg.log = log_to_stderr;
    cfg.log_arg = s;
    cfg.on_drained = on_drained;
    cfg.drained_arg = s;
    if (o->verbose) {
        cfg.on_head_from = print_head;
        cfg.head_arg = s;
    }
    if (s->counters) {
        cfg.counters = &s->counters[s->worker_index];
        cfg.all_counters = s->counters;
        cfg.nworkers = (unsigned)o->workers;
        cfg.worker_index = (unsigned)s->worker_index;
    }
    err = nk_httpd_new(s->loop, &cfg, &s->httpd);
    if (err < 0)
        return cli_fail(o->cmd, "cannot serve '%s': %s", o->root, nk_strerror(err));
    nk_httpd_set_limit_hint(s->httpd, "the server's operator can raise it with --max-body-bytes");
    nk_httpd_set_http2(s->httpd, !o->no_http2, o->h2_max_streams);
    /* Without --proxy-from a balancer on this machine is trusted: loopback only. */
    static const char *const loopback[] = {"127.0.0.0/8", "::1"};
    err = o->nproxy_from ? nk_httpd_set_proxy_from(s->httpd, o->proxy_from, (size_t)o->nproxy_from)
                         : nk_httpd_set_proxy_from(s->httpd, loopback, 2);
    if (err == 0 && o->health)
        err = nk_httpd_set_health_path(s->httpd, o->health);
    if (err < 0)
        return cli_fail(o->cmd, "cannot set up the server: %s", nk_strerror(err));
    if (s->tls) {
        /* A worker (re)started after a SIGHUP reads the certificates as they are now. */
        if (s->o->ncerts && o->workers > 1)
            reload_tls(s);
        nk_httpd_set_hsts(s->httpd, o->hsts);
        if (o->redirect_https) {
            for (int i = 0; i < s->nsocks; i++)
                if (s->socks[i].tls && !s->socks[i].is_unix) {
                    nk_httpd_set_https_redirect(s->httpd, (unsigned)nk_addr_port(&s->socks[i].addr));
                    break;
                }
        }
    }
    int supervised = o->workers > 1;
    for (int i = 0; i < s->nsocks; i++) {
        listener *l = &s->socks[i];
        if (!worker_takes(s, i, s->worker_index, o->workers)) {
            close(l->fd); /* a forked worker's copy of another worker's socket */
            l->fd = -1;
            continue;
        }
        /* A forked worker's descriptors are its own; the only worker keeps the original for a
         * new binary on SIGUSR2 (the engine closes the copy it gets). */
        int fd = l->fd;
        if (supervised) {
            l->fd = -1;
        } else if ((fd = fcntl(l->fd, F_DUPFD_CLOEXEC, 3)) < 0) {
            return cli_fail(o->cmd, "cannot watch listener: %s", strerror(errno));
        }
        unsigned lflags = (l->tls ? NK_HTTPD_LISTEN_TLS : 0) | (l->proxy ? NK_HTTPD_LISTEN_PROXY : 0);
        err = nk_httpd_listen_opts(s->httpd, fd, lflags, l->tls ? s->tls : NULL);
        if (err < 0)
            return cli_fail(o->cmd, "cannot watch listener: %s", nk_strerror(err));
    }
    nk_signal_init(&s->sig_term, on_worker_signal, s);
    nk_signal_init(&s->sig_int, on_worker_signal, s);
    nk_signal_init(&s->sig_hup, on_worker_signal, s);
    nk_signal_start(s->loop, &s->sig_term, SIGTERM);
    nk_signal_start(s->loop, &s->sig_int, SIGINT);
    nk_signal_start(s->loop, &s->sig_hup, SIGHUP);
    nk_timer_init(&s->log_tty_timer, on_log_tty_timer, s);
    nk_timer_init(&s->grace_timer, on_grace_timer, s);
    if (s->log_fd == STDOUT_FILENO && isatty(STDOUT_FILENO))
        nk_timer_start(s->loop, &s->log_tty_timer, TTY_LOG_FLUSH_MS, TTY_LOG_FLUSH_MS);
    nk_signal_init(&s->sig_usr2, on_worker_signal, s);
    nk_signal_init(&s->sig_drain, on_worker_signal, s);
    if (supervised) {
        nk_signal_init(&s->sig_usr1, on_worker_signal, s);
        nk_signal_start(s->loop, &s->sig_usr1, SIGUSR1); /* the supervisor's "stop now" */
        /* the supervisor's "a new server took over: drain, without --health-grace" */
        nk_signal_start(s->loop, &s->sig_drain, HTTP_SIG_HANDED_OVER);
    } else {
        nk_signal_start(s->loop, &s->sig_usr2, SIGUSR2); /* upgrade: a new binary */
    }
    /* Announce readiness only now: a connection queued before nk_httpd_listen set the
     * listener's options (TCP_NODELAY, SO_SNDBUF) would not inherit them, and a SIGTERM
     * before the handlers exist would kill the process instead of draining it. */
    if (s->ready_fd >= 0) {
        /* Tell the supervisor this worker accepts now; it prints the readiness line only
         * when every worker has said so. */
        ssize_t w = write(s->ready_fd, "r", 1);
        (void)w;
        close(s->ready_fd);
        s->ready_fd = -1;
    } else if (!supervised) {
        print_listeners(s);
        http_ready(o);
    }
    err = nk_loop_run(s->loop, NK_RUN_DEFAULT);
    nk_signal_stop(s->loop, &s->sig_term);
    nk_signal_stop(s->loop, &s->sig_int);
    nk_signal_stop(s->loop, &s->sig_hup);
    nk_signal_stop(s->loop, &s->sig_usr1);
    nk_signal_stop(s->loop, &s->sig_usr2);
    nk_signal_stop(s->loop, &s->sig_drain);
    http_upgrade_cancel(&s->upgrade);
    nk_timer_stop(s->loop, &s->log_tty_timer);
    nk_timer_stop(s->loop, &s->grace_timer);
    nk_httpd_free(s->httpd);
    s->httpd = NULL;
    conn_tags_free(&s->conn_tags);
    nk_loop_free(s->loop);
    s->loop = NULL;
    if (s->log_fd > STDOUT_FILENO)
        close(s->log_fd);
    fflush(stdout);
    if (err < 0)
        return cli_fail(o->cmd, "event loop failed: %s", nk_strerror(err));
    return CLI_OK;
}

/* ---- supervisor --------------------------------------------------------------------------- */

static server_state *g_child_state; /* keeps the parent's state reachable in a forked child */

static pid_t spawn_worker(server_state *s, int index)
{
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* A worker must not outlive its supervisor (killed with SIGKILL, say): it would keep
     * serving on the port with nobody to stop it. Ask the kernel for a SIGTERM when the
     * parent goes, and check it did not go already before that request took effect. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(0);
    /* Child: the parent's loop is not ours to use or free (its epoll instance is shared
     * with the parent); a fresh loop is made in run_worker. */
    g_child_state = s;
    server_state child = *s;
    child.loop = NULL;
    child.worker_index = index;
    if (s->o->upgrade_fd >= 0) {
        /* The server we replace waits for the supervisor's word, not for this pipe's end. */
        close(s->o->upgrade_fd);
        s->o->upgrade_fd = -1;
    }
    int rc = run_worker(&child);
    _exit(rc);
}

static void stop_workers(server_state *s, int sig)
{
    for (int i = 0; i < s->o->workers; i++)
        if (s->pids[i] > 0)
            kill(s->pids[i], sig);
}

static int workers_alive(const server_state *s)
{
    for (int i = 0; i < s->o->workers; i++)
        if (s->pids[i] > 0)
            return 1;
    return 0;
}

static void restart_dead(server_state *s)
{
    uint64_t now = nk_loop_now(s->loop);
    for (int i = 0; i < s->o->workers; i++) {
        if (s->pids[i] > 0)
            continue;
        if (now - s->window_start > RESTART_WINDOW_MS) {
            s->window_start = now;
            s->restarts = 0;
        }
        if (++s->restarts > RESTART_LIMIT) {
            cli_fail(s->o->cmd, "workers keep dying; giving up");
            s->exit_code = CLI_FAIL;
            s->stopping = 1;
            stop_workers(s, SIGTERM);
            nk_timer_start(s->loop, &s->kill_timer, s->o->cfg.drain_timeout_ms + s->o->health_grace * 1000 + 5000, 0);
            return;
        }
        pid_t pid = spawn_worker(s, i);
        if (pid < 0) {
            nk_timer_start(s->loop, &s->restart_timer, 500, 0);
            return;
        }
        s->pids[i] = pid;
    }
}

static void on_restart_timer(nk_loop *loop, nk_timer *t)
{
    server_state *s = t->data;
    if (!s->stopping)
        restart_dead(s);
}

static void on_kill_timer(nk_loop *loop, nk_timer *t)
{
    /* The graceful stop took too long: end it. */
    stop_workers(t->data, SIGKILL);
}

/* A worker that did not exit cleanly may have died in the middle of uploads, whose temporary
 * files carry its pid: remove them before its replacement starts (the other workers' stay). */
static void clean_after_worker(server_state *s, pid_t pid, int status)
{
    if (!s->o->cfg.upload || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
        return;
    int n = nk_httpd_clean_worker_uploads(s->o->root, (int)pid, CLEAN_MAX_DEPTH,
                                          CLEAN_MAX_ENTRIES);
    if (n > 0 && !s->o->quiet)
        fprintf(stderr, "netkit: %s: removed %d unfinished upload%s of worker %d\n", s->o->cmd,
                n, n == 1 ? "" : "s", (int)pid);
}

/* The new server's workers accept: this supervisor's workers drain (no grace: the node stays
 * up), and it exits when they are done. */
static void on_supervisor_upgraded(http_upgrade *u, int ok, pid_t pid)
{
    server_state *s = u->arg;
    report_upgrade(s, ok, pid);
    if (!ok || s->stopping)
        return;
    close_handed_over(s);
    s->stopping = 1;
    nk_timer_stop(s->loop, &s->restart_timer);
    stop_workers(s, HTTP_SIG_HANDED_OVER);
    nk_timer_start(s->loop, &s->kill_timer, s->o->cfg.drain_timeout_ms + 5000, 0);
    if (!workers_alive(s))
        nk_loop_stop(s->loop);
}

static void on_supervisor_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    server_state *s = sig->data;
    if (signum == SIGCHLD) {
        int status;
        pid_t pid;
        int died = 0;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < s->o->workers; i++) {
                if (s->pids[i] != pid)
                    continue;
                s->pids[i] = 0;
                clean_after_worker(s, pid, status);
                if (!s->stopping) {
                    died = 1;
                    if (WIFSIGNALED(status))
                        fprintf(stderr, "netkit: %s: worker %d killed by signal %d; restarting\n",
                                s->o->cmd, (int)pid, WTERMSIG(status));
                    else
                        fprintf(stderr, "netkit: %s: worker %d exited with %d; restarting\n",
                                s->o->cmd, (int)pid, WEXITSTATUS(status));
                }
            }
        }
        if (s->stopping && !workers_alive(s))
            nk_loop_stop(loop);
        else if (died)
            nk_timer_start(loop, &s->restart_timer, 100, 0);
        return;
    }
    if (signum == SIGHUP) {
        reload_tls(s); /* a worker restarted later starts from the certificate read now */
        stop_workers(s, SIGHUP);
        return;
    }
    if (signum == SIGUSR2) {
        start_upgrade(s, on_supervisor_upgraded);
        return;
    }
    if (signum == HTTP_SIG_HANDED_OVER)
        return; /* watched only so that it is blocked in workers from their start */
    if (signum == SIGINT)
        end_ctrl_c_line();
    if (!s->stopping) {
        s->stopping = 1;
        close_listeners(s); /* the workers' copies keep them open while they still accept */
        http_notify("STOPPING=1");
        nk_timer_stop(loop, &s->restart_timer);
        stop_workers(s, SIGTERM);
        nk_timer_start(loop, &s->kill_timer, s->o->cfg.drain_timeout_ms + s->o->health_grace * 1000 + 5000, 0);
    } else {
        stop_workers(s, SIGUSR1); /* asked again: the workers stop draining */
    }
    if (!workers_alive(s))
        nk_loop_stop(loop);
}

/* Wait (bounded) until n workers reported that they accept connections. A worker that fails
 * to start closes its end without writing; the supervisor then goes on (and restarts it). */
static void wait_workers_ready(int fd, int n)
{
    int got = 0;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 10000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        char buf[64];
        ssize_t k = read(fd, buf, sizeof buf);
        if (k <= 0)
            return;
        got += (int)k;
    }
}

static int run_supervisor(server_state *s)
{
    http_serve_opts *o = s->o;
    int err = nk_loop_new(o->backend, &s->loop);
    if (err < 0)
        return cli_fail(o->cmd, "cannot start the event loop: %s", nk_strerror(err));
    s->pids = calloc((size_t)o->workers, sizeof *s->pids);
    /* Counters every worker writes (its own slot) and every status page reads: shared
     * memory made before the forks, so restarted workers map it too. */
    size_t ctr_len = (size_t)o->workers * sizeof(nk_httpd_counters);
    void *ctr = mmap(NULL, ctr_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    s->counters = ctr == MAP_FAILED ? NULL : ctr;
    nk_signal sig_term, sig_int, sig_hup, sig_usr2, sig_handed;
    nk_signal_init(&sig_term, on_supervisor_signal, s);
    nk_signal_init(&sig_int, on_supervisor_signal, s);
    nk_signal_init(&sig_hup, on_supervisor_signal, s);
    nk_signal_init(&sig_usr2, on_supervisor_signal, s);
    nk_signal_init(&sig_handed, on_supervisor_signal, s);
    nk_signal_init(&s->sig_chld, on_supervisor_signal, s);
    nk_timer_init(&s->kill_timer, on_kill_timer, s);
    nk_timer_init(&s->restart_timer, on_restart_timer, s);
    /* Signals are blocked (and queued for signalfd) before any worker exists, so none is
     * lost between fork and the child's own loop. */
    nk_signal_start(s->loop, &sig_term, SIGTERM);
    nk_signal_start(s->loop, &sig_int, SIGINT);
    nk_signal_start(s->loop, &sig_hup, SIGHUP);
    nk_signal_start(s->loop, &sig_usr2, SIGUSR2);
    nk_signal_start(s->loop, &sig_handed, HTTP_SIG_HANDED_OVER);
    nk_signal_start(s->loop, &s->sig_chld, SIGCHLD);
    s->window_start = nk_loop_now(s->loop);
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        return cli_fail(o->cmd, "cannot create a pipe: %s", strerror(errno));
    s->ready_fd = ready[1];
    for (int i = 0; i < o->workers; i++) {
        pid_t pid = spawn_worker(s, i);
        if (pid < 0) {
            cli_fail(o->cmd, "cannot start worker: %s", strerror(errno));
            s->exit_code = CLI_FAIL;
            s->stopping = 1;
            stop_workers(s, SIGTERM);
            break;
        }
        s->pids[i] = pid;
    }
    close(ready[1]);
    s->ready_fd = -1;
    wait_workers_ready(ready[0], o->workers);
    close(ready[0]);
    if (s->exit_code == CLI_OK) {
        print_listeners(s);
        http_ready(o);
    }
    if (workers_alive(s))
        nk_loop_run(s->loop, NK_RUN_DEFAULT);
    nk_signal_stop(s->loop, &sig_term);
    nk_signal_stop(s->loop, &sig_int);
    nk_signal_stop(s->loop, &sig_hup);
    nk_signal_stop(s->loop, &sig_usr2);
    nk_signal_stop(s->loop, &sig_handed);
    nk_signal_stop(s->loop, &s->sig_chld);
    http_upgrade_cancel(&s->upgrade);
    nk_timer_stop(s->loop, &s->kill_timer);
    nk_timer_stop(s->loop, &s->restart_timer);
    nk_loop_free(s->loop);
    free(s->pids);
    if (s->counters)
        munmap(s->counters, ctr_len);
    return s->exit_code;
}

/* The TLS context, before any worker exists: every worker inherits it, and with it the one
 * ticket secret from which all of them derive the same session ticket keys. */
static int setup_tls(server_state *s)
{
    http_serve_opts *o = s->o;
    int any = 0;
    for (int i = 0; i < s->nsocks; i++)
        any |= s->socks[i].tls;
    if (!any)
        return 0;
    if (getrandom(o->tls_secret, sizeof o->tls_secret, 0) != (ssize_t)sizeof o->tls_secret)
        return cli_fail(o->cmd, "no random bytes for TLS session tickets");
    char err[NK_TLS_ERR_MAX] = "";
    int r = http_tls_context(o, &s->tls, err, sizeof err);
    if (r < 0)
        return cli_fail(o->cmd, "TLS: %s", err);
    if (o->tls_self_signed) {
        nk_addr addrs[MAX_SOCKETS];
        int n = 0;
        for (int i = 0; i < s->nsocks; i++)
            if (s->socks[i].tls)
                addrs[n++] = s->socks[i].addr;
        char fp[NK_TLS_FP_HEX];
        r = cli_tls_add_self_signed(s->tls, addrs, n, fp, err, sizeof err);
        if (r < 0)
            return cli_fail(o->cmd, "TLS: %s", err);
        /* Printed even with -q: without it nobody can check the certificate. */
        fprintf(stderr, "TLS certificate: self-signed, sha256 %s\n", fp);
    }
    if (o->verbose) {
        char why[200];
        if (nk_tls_ktls_available(why, sizeof why))
            fprintf(stderr, "TLS: kernel TLS available: file bodies are sent without a copy\n");
        else
            fprintf(stderr, "TLS: kernel TLS off (%s): file bodies go through a buffer\n", why);
    }
    return 0;
}

static void raise_fd_limit(void)
{
    /* Each connection is a descriptor; use what the administrator allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int http_serve_run(http_serve_opts *o)
{
    server_state s;
    memset(&s, 0, sizeof s);
    s.o = o;
    s.ready_fd = -1;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    /* Check what can be checked before binding anything. */
    if (o->backend) {
        nk_loop *probe;
        int err = nk_loop_new(o->backend, &probe);
        if (err == -EINVAL)
            return cli_usage(o->cmd, "unknown backend '%s'", o->backend);
        if (err < 0)
            return cli_fail(o->cmd, "backend '%s' cannot start: %s", o->backend, nk_strerror(err));
        nk_loop_free(probe);
    }
    struct stat root_st;
    if (stat(o->root, &root_st) == 0 && !S_ISDIR(root_st.st_mode))
        return cli_fail(o->cmd, "cannot serve '%s': is not a directory", o->root);
    if (access(o->root, R_OK | X_OK) < 0)
        return cli_fail(o->cmd, "cannot serve '%s': %s", o->root, strerror(errno));
    int fd = open_access_log(o->access_log);
    if (fd < -1)
        return cli_fail(o->cmd, "cannot open access log '%s': %s", o->access_log,
                        nk_strerror(fd + 1000000));
    if (fd > STDOUT_FILENO)
        close(fd);

    int r = add_inherited(&s);
    if (r == 0)
        r = bind_listeners(&s);
    if (r) {
        for (int i = 0; i < s.nsocks; i++)
            close(s.socks[i].fd);
        return r;
    }
    r = setup_tls(&s);
    if (r == 0)
        r = setup_affinity(&s);
    if (r) {
        for (int i = 0; i < s.nsocks; i++)
            close(s.socks[i].fd);
        return r;
    }
    if (o->cfg.nusers) {
        /* Basic credentials are base64: over cleartext, readable by anyone on the path (a
         * listener redirecting to https never asks for them). */
        for (int i = 0; i < s.nsocks; i++) {
            if (s.socks[i].is_unix || nk_addr_is_loopback(&s.socks[i].addr) || s.socks[i].tls ||
                o->redirect_https)
                continue;
            fprintf(stderr, "netkit: %s: WARNING: passwords travel in clear text (no TLS) on "
                            "a listener that is not loopback; anyone on the network path can "
                            "read them\n", o->cmd);
            break;
        }
    }
    if (o->cfg.upload) {
        /* Before any worker exists, so no upload of ours can be in flight. */
        int n = nk_httpd_clean_uploads(o->root, 10000);
        if (n > 0 && !o->quiet)
            fprintf(stderr, "netkit: %s: removed %d unfinished upload%s from an earlier run\n",
                    o->cmd, n, n == 1 ? "" : "s");
    }
    if (o->workers == 1) {
        r = run_worker(&s); /* prints the readiness lines once it accepts */
    } else {
        r = run_supervisor(&s);
    }
    for (int i = 0; i < s.nsocks; i++) {
        if (s.socks[i].fd >= 0)
            close(s.socks[i].fd);
        if (s.socks[i].unlink && !s.handed_over && s.socks[i].addr.u.un.sun_path[0])
            unlink(s.socks[i].addr.u.un.sun_path);
    }
    nk_tls_ctx_free(s.tls);
    return r;
}
