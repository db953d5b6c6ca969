/* The process side of `netkit http serve`: checks before anything is bound, the listeners,
 * the TLS context, and the start of one worker (http/worker.c) or of a supervisor of several
 * (http/supervise.c). See http/cmd.c for the model. */
#include "cli.h"
#include "cli_tls.h"
#include "http/serve_state.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- listeners ---------------------------------------------------------------------------- */

/* n sockets of one address, one group: one per worker (SO_REUSEPORT), or one for all. */
static int bind_group(server_state *s, const nk_addr *addr, int flags, unsigned n,
                      const char *text, int tls, int proxy)
{
    if (s->nsocks + (int)n > MAX_SOCKETS)
        return cli_usage(s->o->cmd, "too many listening sockets (at most %d: addresses times "
                                    "workers)", MAX_SOCKETS);
    int fds[MAX_SOCKETS];
    int err = nk_workers_listen(addr, flags, n, fds);
    if (err < 0)
        return cli_fail(s->o->cmd, "cannot listen on %s: %s", text, nk_strerror(err));
    int group = s->nsocks;
    for (unsigned k = 0; k < n; k++) {
        listener *l = &s->socks[s->nsocks++];
        memset(l, 0, sizeof *l);
        l->fd = fds[k];
        l->tls = tls;
        l->proxy = proxy;
        l->group = group;
        l->is_unix = nk_addr_family(addr) == AF_UNIX;
        l->unlink = l->is_unix;
        if (nk_sock_local(l->fd, &l->addr) < 0 || l->is_unix)
            l->addr = *addr;
    }
    return 0;
}

/* Does this worker accept on listener i? Its place in its group decides (nk_workers_takes). */
int serve_worker_takes(const server_state *s, int i)
{
    unsigned pos = 0, k = 0;
    for (int j = 0; j < s->nsocks; j++) {
        if (s->socks[j].group != s->socks[i].group)
            continue;
        pos += j < i;
        k++;
    }
    return nk_workers_takes(pos, k, (unsigned)s->worker_index, (unsigned)s->o->workers);
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
    for (int i = 0; i < o->nlisten; i++) {
        nk_addr addrs[8];
        size_t count;
        int bad = cli_parse_addrs(o->cmd, o->listen[i], SOCK_STREAM,
                                  CLI_ADDR_LISTEN | CLI_ADDR_BOTH_FAMILIES, addrs, 8, &count);
        if (bad)
            return bad;
        int first_port = -1;
        for (size_t k = 0; k < count; k++) {
            nk_addr a = addrs[k];
            int is_unix = nk_addr_family(&a) == AF_UNIX;
            int flags = 0;
            if (count > 1 && nk_addr_family(&a) == AF_INET6)
                flags |= NK_SOCK_V6ONLY; /* the IPv4 address is bound separately */
            if (first_port > 0 && nk_addr_port(&a) == 0)
                nk_addr_set_port(&a, first_port); /* port 0: one port for all addresses */
            /* One socket per worker (a unix socket is one socket for all). */
            unsigned copies = is_unix ? 1 : (unsigned)o->workers;
            int r = bind_group(s, &a, flags, copies, o->listen[i], o->listen_tls[i],
                               o->listen_proxy[i]);
            if (r)
                return r;
            if (first_port < 0)
                first_port = nk_addr_port(&s->socks[s->nsocks - 1].addr);
        }
    }
    return 0;
}

void serve_print_listeners(server_state *s)
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
        int n = nk_cpu_list(s->cpus, HTTP_MAX_AFFINITY);
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
                nk_reuseport_unsteer(l->fd);
            continue;
        }
        int err = nk_reuseport_steer(l->fd, s->cpus, (unsigned)o->workers);
        if (err < 0)
            return cli_fail(o->cmd, "--cpu-affinity: cannot steer connections by CPU: %s",
                            nk_strerror(err));
    }
    return 0;
}

/* The supervisor's (or the only worker's) own descriptors of the listeners, closed once the
 * server stops accepting: with the engine's gone too, the sockets close and new connections
 * are refused at once (a balancer tries another node) instead of waiting, unaccepted, in a
 * backlog. A new server after an upgrade holds its own. */
void serve_close_listeners(server_state *s)
{
    for (int i = 0; i < s->nsocks; i++) {
        if (s->socks[i].fd >= 0)
            close(s->socks[i].fd);
        s->socks[i].fd = -1;
    }
}

/* ---- shared by the worker and the supervisor ------------------------------------------- */

int serve_open_access_log(const char *dest)
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
void serve_end_ctrl_c_line(void)
{
    if (isatty(STDERR_FILENO)) {
        fputc('\n', stderr);
        fflush(stderr);
    }
}

/* SIGHUP: certificates and keys read again; connections open keep the old context until
 * they end. A certificate that fails to load leaves the old one in place. */
void serve_reload_tls(server_state *s)
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

int serve_upgrade_ended(server_state *s, int ok, pid_t pid)
{
    if (ok)
        fprintf(stderr, "netkit: %s: upgrade: the new server (pid %d) accepts; this one (pid %d) "
                        "drains and exits\n", s->o->cmd, (int)pid, (int)getpid());
    else
        fprintf(stderr, "netkit: %s: upgrade failed: the new server did not start; still "
                        "serving\n", s->o->cmd);
    fflush(stderr);
    if (!ok || (s->workers && nk_workers_stopping(s->workers)))
        return 0;
    /* The new server accepts on every listener: this one lets go of them. */
    s->handed_over = 1;
    serve_close_listeners(s);
    return 1;
}

void serve_start_upgrade(server_state *s, void (*done)(http_upgrade *, int, pid_t))
{
    if (s->draining || (s->workers && nk_workers_stopping(s->workers))) {
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
/* ---- start ------------------------------------------------------------------------------ */

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


/* What can be checked before anything is bound: the backend, the folder, the access log. */
static int check_setup(const http_serve_opts *o)
{
    if (o->backend) {
        nk_loop *probe;
        int err = nk_loop_new(o->backend, &probe);
        if (err == -EINVAL)
            return cli_usage(o->cmd, "unknown backend '%s'", o->backend);
        if (err < 0)
            return cli_backend_fail(o->cmd, o->backend, err);
        nk_loop_free(probe);
    }
    struct stat root_st;
    if (stat(o->root, &root_st) == 0 && !S_ISDIR(root_st.st_mode))
        return cli_fail(o->cmd, "cannot serve '%s': is not a directory", o->root);
    if (access(o->root, R_OK | X_OK) < 0)
        return cli_fail(o->cmd, "cannot serve '%s': %s", o->root, strerror(errno));
    int fd = serve_open_access_log(o->access_log);
    if (fd < -1)
        return cli_fail(o->cmd, "cannot open access log '%s': %s", o->access_log,
                        nk_strerror(fd + 1000000));
    if (fd > STDOUT_FILENO)
        close(fd);
    return 0;
}

/* Every listener (inherited, then bound), the TLS context and the CPU steering; on failure
 * none is left open. */
static int open_listeners(server_state *s)
{
    int r = add_inherited(s);
    if (r == 0)
        r = bind_listeners(s);
    if (r == 0)
        r = setup_tls(s);
    if (r == 0)
        r = setup_affinity(s);
    if (r) {
        for (int i = 0; i < s->nsocks; i++)
            close(s->socks[i].fd);
        nk_tls_ctx_free(s->tls);
        s->tls = NULL;
    }
    return r;
}

/* Before any worker exists: a warning about passwords in clear text, and uploads an earlier
 * run left unfinished (none of ours can be in flight yet). */
static void before_start(const server_state *s)
{
    const http_serve_opts *o = s->o;
    for (int i = 0; o->cfg.nusers && i < s->nsocks; i++) {
        /* Basic credentials are base64: over cleartext, readable by anyone on the path (a
         * listener redirecting to https never asks for them). */
        if (s->socks[i].is_unix || nk_addr_is_loopback(&s->socks[i].addr) || s->socks[i].tls ||
            o->redirect_https)
            continue;
        fprintf(stderr, "netkit: %s: WARNING: passwords travel in clear text (no TLS) on "
                        "a listener that is not loopback; anyone on the network path can "
                        "read them\n", o->cmd);
        break;
    }
    if (o->cfg.upload) {
        int n = nk_httpd_clean_uploads(o->root, 10000);
        if (n > 0 && !o->quiet)
            fprintf(stderr, "netkit: %s: removed %d unfinished upload%s from an earlier run\n",
                    o->cmd, n, n == 1 ? "" : "s");
    }
}

int http_serve_run(http_serve_opts *o)
{
    server_state s;
    memset(&s, 0, sizeof s);
    s.o = o;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    int r = check_setup(o);
    if (r == 0)
        r = open_listeners(&s);
    if (r)
        return r;
    before_start(&s);
    /* The only worker prints the readiness lines once it accepts; a supervisor once all do. */
    r = o->workers == 1 ? serve_run_worker(&s) : serve_run_supervisor(&s);
    for (int i = 0; i < s.nsocks; i++) {
        if (s.socks[i].fd >= 0)
            close(s.socks[i].fd);
        if (s.socks[i].unlink && !s.handed_over && s.socks[i].addr.u.un.sun_path[0])
            unlink(s.socks[i].addr.u.un.sun_path);
    }
    nk_tls_ctx_free(s.tls);
    return r;
}
