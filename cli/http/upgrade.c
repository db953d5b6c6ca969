/* Zero-downtime upgrade of `netkit http serve` (SIGUSR2), nginx's binary upgrade done the way
 * socket activation already works:
 *
 * 1. The running server (the supervisor, or the only worker) forks and execs the binary found
 *    now at the path it was started from, with the command line it was started with, and
 *    passes every listening socket as descriptors 3, 4, ... with $LISTEN_FDS, $LISTEN_PID and
 *    $LISTEN_FDNAMES (http/activation.c reads them), plus $NETKIT_UPGRADE_FD, the write end of
 *    a pipe.
 * 2. The new server serves on those same sockets (no socket is closed, so nothing queued in a
 *    listen backlog is lost and no client sees a reset), and writes "R" to the pipe once every
 *    worker of it accepts.
 * 3. Only then the old one stops accepting and drains, as on SIGTERM (without --health-grace:
 *    the node does not go away, so balancers must not see it fail).
 * If the new binary cannot start, or exits, or is not ready within UPGRADE_TIMEOUT_MS, the old
 * server says so and goes on serving: an upgrade never leaves the port without a server. */
#include "cli.h"
#include "http/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define UPGRADE_TIMEOUT_MS 60000
#define DELETED_SUFFIX " (deleted)"

/* /proc/self/exe names the binary that runs (" (deleted)" once a package manager replaced it:
 * the new file at that path is the one to start) and /proc/self/cmdline the command line as
 * given, read before option parsing cuts its strings. */
int http_upgrade_save_command(http_serve_opts *o)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -errno;
    exe[n] = '\0';
    size_t sl = strlen(DELETED_SUFFIX);
    if ((size_t)n > sl && strcmp(exe + n - sl, DELETED_SUFFIX) == 0)
        exe[n - sl] = '\0';
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            close(fd);
            return -ENOMEM;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == cap) {
            char *nb = cap < (1u << 24) ? realloc(buf, cap * 2) : NULL;
            if (nb == NULL)
                free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    close(fd);
    if (buf == NULL || len == 0 || buf[len - 1] != '\0') {
        free(buf);
        return -EINVAL;
    }
    size_t argc = 0;
    for (size_t i = 0; i < len; i++)
        argc += buf[i] == '\0';
    char **argv = calloc(argc + 1, sizeof *argv);
    char *path = strdup(exe);
    if (argv == NULL || path == NULL) {
        free(argv);
        free(path);
        free(buf);
        return -ENOMEM;
    }
    for (size_t i = 0, k = 0; i < len; i += strlen(buf + i) + 1)
        argv[k++] = buf + i;
    o->self_exe = path;
    o->self_args = buf;
    o->self_argv = argv;
    return 0;
}

void http_upgrade_free_command(http_serve_opts *o)
{
    free(o->self_exe);
    free(o->self_args);
    free(o->self_argv);
    o->self_exe = o->self_args = NULL;
    o->self_argv = NULL;
}

/* Said once every worker of this server accepts: to a service manager, and to the server this
 * one replaces (which starts draining when it reads it). */
void http_ready(http_serve_opts *o)
{
    if (o->upgrade_fd < 0) {
        http_notify("READY=1");
        return;
    }
    /* The process the manager watched is about to exit: this one is the service now
     * (the unit needs NotifyAccess=all for a child to say so). */
    char msg[64];
    snprintf(msg, sizeof msg, "MAINPID=%d\nREADY=1", (int)getpid());
    http_notify(msg);
    ssize_t w;
    do
        w = write(o->upgrade_fd, "R", 1);
    while (w < 0 && errno == EINTR);
    close(o->upgrade_fd);
    o->upgrade_fd = -1;
}

static const char *handover_name(const http_inherited *h)
{
    static const char *const names[2][2][2] = {
        {{"http", "http-unlink"}, {"https", "https-unlink"}},
        {{"proxy+http", "proxy+http-unlink"}, {"proxy+https", "proxy+https-unlink"}},
    };
    return names[h->proxy != 0][h->tls != 0][h->unlink != 0];
}

/* In the child, between fork and exec: only async-signal-safe calls. The descriptors go to
 * 3..3+n-1 in two steps (first above every target, then down), as a listener may sit on a
 * number another one needs. */
static void exec_new(const http_serve_opts *o, const http_inherited *hs, int n, int pipe_fd,
                     const sigset_t *mask, char *env_pid, char *env_pipe)
{
    int base = 3 + n + 1;
    int high[HTTP_MAX_INHERIT];
    for (int i = 0; i < n; i++) {
        high[i] = fcntl(hs[i].fd, F_DUPFD_CLOEXEC, base); /* gone at exec */
        if (high[i] < 0)
            _exit(127);
    }
    int pfd = fcntl(pipe_fd, F_DUPFD, base); /* no FD_CLOEXEC: the new server writes to it */
    if (pfd < 0)
        _exit(127);
    for (int i = 0; i < n; i++)
        if (dup2(high[i], 3 + i) < 0) /* dup2 clears FD_CLOEXEC on the target */
            _exit(127);
    /* The numbers only now are known: print them into the buffers the parent made. */
    int pid = (int)getpid();
    char digits[16];
    int k = 0;
    do
        digits[k++] = (char)('0' + pid % 10);
    while ((pid /= 10) > 0 && k < 15);
    char *p = env_pid + strlen("LISTEN_PID=");
    while (k > 0)
        *p++ = digits[--k];
    *p = '\0';
    int v = pfd;
    k = 0;
    do
        digits[k++] = (char)('0' + v % 10);
    while ((v /= 10) > 0 && k < 15);
    p = env_pipe + strlen("NETKIT_UPGRADE_FD=");
    while (k > 0)
        *p++ = digits[--k];
    *p = '\0';
    sigprocmask(SIG_SETMASK, mask, NULL);
    execv(o->self_exe, o->self_argv);
    static const char msg[] = "netkit: http serve: upgrade: cannot start the new binary\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

/* Stop watching; a new server that failed is killed (its workers get SIGTERM when it dies)
 * and reaped (ECHILD when a SIGCHLD handler was first). */
static pid_t upgrade_stop(http_upgrade *u, int ok)
{
    nk_io_stop(u->loop, &u->io);
    nk_timer_stop(u->loop, &u->timer);
    close(u->fd);
    u->fd = -1;
    if (!ok) {
        kill(u->pid, SIGKILL);
        while (waitpid(u->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    pid_t pid = u->pid;
    u->pid = 0;
    return pid;
}

static void upgrade_end(http_upgrade *u, int ok)
{
    pid_t pid = upgrade_stop(u, ok);
    u->done(u, ok, pid);
}

void http_upgrade_cancel(http_upgrade *u)
{
    if (u->pid > 0)
        (void)upgrade_stop(u, 0);
}

static void on_upgrade_io(nk_loop *loop, nk_io *io, unsigned events)
{
    http_upgrade *u = io->data;
    (void)loop;
    (void)events;
    char c;
    ssize_t r = read(u->fd, &c, 1);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    upgrade_end(u, r == 1 && c == 'R');
}

static void on_upgrade_timer(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    http_upgrade *u = t->data;
    fprintf(stderr, "netkit: %s: upgrade: the new server was not ready within %d s\n",
            u->o->cmd, UPGRADE_TIMEOUT_MS / 1000);
    upgrade_end(u, 0);
}

/* The environment the new server starts with. putenv keeps these buffers (the child fills in
 * its pid and the pipe's number): they live until env_clear, after the fork. */
typedef struct upgrade_env {
    char fds[32], pid[32], pipe[40];
    char *names;
} upgrade_env;

static void env_clear(upgrade_env *e)
{
    /* The parent's environment must not keep pointers to its stack. */
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    unsetenv("LISTEN_PID");
    unsetenv("NETKIT_UPGRADE_FD");
    free(e->names);
    e->names = NULL;
}

/* Everything the child needs is prepared here: after fork it may not allocate. */
static int env_prepare(upgrade_env *e, const http_inherited *hs, int n)
{
    size_t names_len = strlen("LISTEN_FDNAMES=") + 1;
    for (int i = 0; i < n; i++)
        names_len += strlen(handover_name(&hs[i])) + 1;
    e->names = malloc(names_len);
    if (e->names == NULL)
        return -ENOMEM;
    snprintf(e->fds, sizeof e->fds, "LISTEN_FDS=%d", n);
    snprintf(e->pid, sizeof e->pid, "LISTEN_PID=");
    snprintf(e->pipe, sizeof e->pipe, "NETKIT_UPGRADE_FD=");
    size_t used = (size_t)snprintf(e->names, names_len, "LISTEN_FDNAMES=");
    for (int i = 0; i < n && used < names_len; i++)
        used += (size_t)snprintf(e->names + used, names_len - used, "%s%s", i ? ":" : "",
                                 handover_name(&hs[i]));
    if (putenv(e->fds) != 0 || putenv(e->names) != 0 || putenv(e->pid) != 0 ||
        putenv(e->pipe) != 0) {
        env_clear(e);
        return -ENOMEM;
    }
    return 0;
}

/* Watch the read end of the new server's readiness pipe, with a bound. */
static int upgrade_watch(http_upgrade *u, nk_loop *loop, http_serve_opts *o, int fd, pid_t pid)
{
    fcntl(fd, F_SETFL, O_NONBLOCK);
    u->loop = loop;
    u->o = o;
    u->fd = fd;
    u->pid = pid;
    nk_io_init(&u->io, fd, on_upgrade_io, u);
    nk_timer_init(&u->timer, on_upgrade_timer, u);
    nk_timer_start(loop, &u->timer, UPGRADE_TIMEOUT_MS, 0);
    int err = nk_io_start(loop, &u->io, NK_READ);
    if (err < 0)
        (void)upgrade_stop(u, 0);
    return err;
}

int http_upgrade_begin(http_upgrade *u, nk_loop *loop, http_serve_opts *o,
                       const http_inherited *hs, int n,
                       void (*done)(http_upgrade *u, int ok, pid_t pid), void *arg)
{
    if (u->pid > 0)
        return -EALREADY;
    if (o->self_exe == NULL)
        return -ENOEXEC;
    if (n > HTTP_MAX_INHERIT)
        return -EMFILE;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    upgrade_env env = {.names = NULL};
    sigset_t mask;
    int err = nk_loop_child_sigmask(loop, &mask) < 0 ? -ENOMEM : env_prepare(&env, hs, n);
    if (err < 0) {
        close(p[0]);
        close(p[1]);
        return err;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0)
        exec_new(o, hs, n, p[1], &mask, env.pid, env.pipe);
    err = pid < 0 ? -errno : 0;
    env_clear(&env);
    close(p[1]);
    if (err < 0) {
        close(p[0]);
        return err;
    }
    u->done = done;
    u->arg = arg;
    return upgrade_watch(u, loop, o, p[0], pid);
}
