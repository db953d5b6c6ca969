/* One worker of `netkit http serve`: its loop, its engine on the listeners it takes, and its
 * signals (a graceful stop with --health-grace, SIGHUP, and SIGUSR2 when it is the only one). */
#include "cli.h"
#include "http/serve_state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
static void begin_drain(server_state *s);

/* The only worker's upgrade ended. */
static void on_worker_upgraded(http_upgrade *u, int ok, pid_t pid)
{
    server_state *s = u->arg;
    if (!serve_upgrade_ended(s, ok, pid))
        return;
    s->draining = 1;
    begin_drain(s);
}

/* SIGHUP: the access log opened again (rotation), the certificates read again. */
static void reopen_files(server_state *s)
{
    const char *dest = s->o->access_log;
    if (s->log_fd > STDOUT_FILENO) {
        int fd = serve_open_access_log(dest);
        if (fd >= 0) {
            nk_httpd_set_access_log(s->httpd, fd);
            close(s->log_fd);
            s->log_fd = fd;
        }
    }
    serve_reload_tls(s);
}

static void on_worker_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    server_state *s = sig->data;
    if (signum == SIGUSR2) {
        serve_start_upgrade(s, on_worker_upgraded);
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
        reopen_files(s);
        return;
    }
    /* The watchers stay: stopping them would unblock the signals, and a second SIGTERM
     * during the drain would then kill the process instead of stopping it cleanly. */
    int supervised = s->o->workers > 1;
    if (signum == SIGINT && !supervised)
        serve_end_ctrl_c_line();
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

static void begin_drain(server_state *s)
{
    serve_close_listeners(s);
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


/* The process, its loop and its access log. */
static int worker_open(server_state *s)
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
        int pinned = nk_cpu_pin(s->cpus[s->worker_index]);
        if (pinned < 0)
            return cli_fail(o->cmd, "--cpu-affinity: cannot pin worker %d to CPU %d: %s",
                            s->worker_index + 1, s->cpus[s->worker_index], nk_strerror(pinned));
    }
    int err = nk_loop_new(o->backend, &s->loop);
    if (err < 0)
        return cli_fail(o->cmd, "cannot start the %s event loop: %s",
                        o->backend ? o->backend : "default", nk_strerror(err));
    s->log_fd = serve_open_access_log(o->access_log);
    if (s->log_fd < -1)
        return cli_fail(o->cmd, "cannot open access log '%s': %s", o->access_log,
                        nk_strerror(s->log_fd + 1000000));
    return 0;
}

/* The engine's configuration: the options, plus this worker's log, hooks and counters. */
static nk_httpd_config worker_config(server_state *s)
{
    const http_serve_opts *o = s->o;
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
    nk_httpd_counters *counters = s->workers ? nk_workers_shared(s->workers) : NULL;
    if (counters) {
        /* Every worker writes its own slot; a status page sums all of them. */
        cfg.counters = &counters[s->worker_index];
        cfg.all_counters = counters;
        cfg.nworkers = (unsigned)o->workers;
        cfg.worker_index = (unsigned)s->worker_index;
    }
    return cfg;
}

static int worker_httpd(server_state *s)
{
    http_serve_opts *o = s->o;
    nk_httpd_config cfg = worker_config(s);
    int err = nk_httpd_new(s->loop, &cfg, &s->httpd);
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
    if (!s->tls)
        return 0;
    /* A worker (re)started after a SIGHUP reads the certificates as they are now. */
    if (o->ncerts && o->workers > 1)
        serve_reload_tls(s);
    nk_httpd_set_hsts(s->httpd, o->hsts);
    for (int i = 0; o->redirect_https && i < s->nsocks; i++) {
        if (s->socks[i].tls && !s->socks[i].is_unix) {
            nk_httpd_set_https_redirect(s->httpd, (unsigned)nk_addr_port(&s->socks[i].addr));
            break;
        }
    }
    return 0;
}

/* The engine accepts on the listeners this worker takes. */
static int worker_listen(server_state *s)
{
    http_serve_opts *o = s->o;
    int supervised = o->workers > 1;
    for (int i = 0; i < s->nsocks; i++) {
        listener *l = &s->socks[i];
        if (!serve_worker_takes(s, i)) {
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
        int err = nk_httpd_listen_opts(s->httpd, fd, lflags, l->tls ? s->tls : NULL);
        if (err < 0)
            return cli_fail(o->cmd, "cannot watch listener: %s", nk_strerror(err));
    }
    return 0;
}

static void worker_watch(server_state *s)
{
    nk_signal_start(s->loop, &s->sig_term, SIGTERM);
    nk_signal_start(s->loop, &s->sig_int, SIGINT);
    nk_signal_start(s->loop, &s->sig_hup, SIGHUP);
    if (s->log_fd == STDOUT_FILENO && isatty(STDOUT_FILENO))
        nk_timer_start(s->loop, &s->log_tty_timer, TTY_LOG_FLUSH_MS, TTY_LOG_FLUSH_MS);
    if (s->workers) {
        nk_signal_start(s->loop, &s->sig_usr1, SIGUSR1); /* the supervisor's "stop now" */
        /* the supervisor's "a new server took over: drain, without --health-grace" */
        nk_signal_start(s->loop, &s->sig_drain, HTTP_SIG_HANDED_OVER);
    } else {
        nk_signal_start(s->loop, &s->sig_usr2, SIGUSR2); /* upgrade: a new binary */
    }
}

/* Everything the worker made; safe on a partial start. */
static void worker_close(server_state *s)
{
    if (s->loop) {
        nk_signal_stop(s->loop, &s->sig_term);
        nk_signal_stop(s->loop, &s->sig_int);
        nk_signal_stop(s->loop, &s->sig_hup);
        nk_signal_stop(s->loop, &s->sig_usr1);
        nk_signal_stop(s->loop, &s->sig_usr2);
        nk_signal_stop(s->loop, &s->sig_drain);
        http_upgrade_cancel(&s->upgrade);
        nk_timer_stop(s->loop, &s->log_tty_timer);
        nk_timer_stop(s->loop, &s->grace_timer);
    }
    nk_httpd_free(s->httpd);
    s->httpd = NULL;
    conn_tags_free(&s->conn_tags);
    nk_loop_free(s->loop);
    s->loop = NULL;
    if (s->log_fd > STDOUT_FILENO)
        close(s->log_fd);
    s->log_fd = -1;
    fflush(stdout);
}

/* Run one worker's loop until a graceful stop, on the listeners it takes. */
int serve_run_worker(server_state *s)
{
    nk_signal *sigs[] = {&s->sig_term, &s->sig_int, &s->sig_hup,
                         &s->sig_usr1, &s->sig_usr2, &s->sig_drain};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        nk_signal_init(sigs[i], on_worker_signal, s);
    nk_timer_init(&s->log_tty_timer, on_log_tty_timer, s);
    nk_timer_init(&s->grace_timer, on_grace_timer, s);
    s->log_fd = -1;
    int r = worker_open(s);
    if (r == 0)
        r = worker_httpd(s);
    if (r == 0)
        r = worker_listen(s);
    if (r) {
        worker_close(s);
        return r;
    }
    worker_watch(s);
    /* Announce readiness only now: a connection queued before nk_httpd_listen set the
     * listener's options (TCP_NODELAY, SO_SNDBUF) would not inherit them, and a SIGTERM
     * before the handlers exist would kill the process instead of draining it. A supervised
     * worker tells its supervisor, which speaks once every worker has said so. */
    if (s->workers) {
        nk_workers_ready(s->workers);
    } else {
        serve_print_listeners(s);
        http_ready(s->o);
    }
    int err = nk_loop_run(s->loop, NK_RUN_DEFAULT);
    worker_close(s);
    if (err < 0)
        return cli_fail(s->o->cmd, "event loop failed: %s", nk_strerror(err));
    return CLI_OK;
}
