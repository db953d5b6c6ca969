/* The supervisor of a group of worker processes: fork, reap, restart with a bound, stop with a
 * bound. See netkit/workers.h for the model. */
#include <netkit/workers.h>

#include "core/extstruct.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_RESTART_DELAY_MS 100
#define DEFAULT_RESTART_LIMIT 20
#define DEFAULT_RESTART_WINDOW_MS 10000
#define DEFAULT_STOP_TIMEOUT_MS 5000
#define FORK_RETRY_MS 500 /* a fork that failed while restarting is tried again after this */

struct nk_workers {
    nk_loop *loop;
    nk_workers_config cfg;
    pid_t *pids;            /* per index; 0: not running */
    void *shared;
    size_t shared_len;
    nk_signal sig_chld;
    nk_timer restart_timer, kill_timer;
    uint64_t window_start;  /* restarts are counted per window */
    unsigned restarts;
    int stopping;
    int ready_fd;           /* worker of the first start: the readiness pipe's write end */
    int index;              /* worker: its index; supervisor: -1 */
};

static void on_sigchld(nk_loop *loop, nk_signal *sig, int signum);
static void on_restart_timer(nk_loop *loop, nk_timer *t);
static void on_kill_timer(nk_loop *loop, nk_timer *t);

static void apply_defaults(nk_workers_config *c)
{
    if (c->restart_delay_ms == 0)
        c->restart_delay_ms = DEFAULT_RESTART_DELAY_MS;
    if (c->restart_limit == 0)
        c->restart_limit = DEFAULT_RESTART_LIMIT;
    if (c->restart_window_ms == 0)
        c->restart_window_ms = DEFAULT_RESTART_WINDOW_MS;
    if (c->stop_timeout_ms == 0)
        c->stop_timeout_ms = DEFAULT_STOP_TIMEOUT_MS;
}

int nk_workers_new(nk_loop *loop, const nk_workers_config *cfg, nk_workers **out)
{
    if (!loop || !cfg || !out)
        return -EINVAL;
    nk_workers_config c = {0}; /* zero: every default */
    int rc = nk__ext_copy(&c, sizeof c, cfg);
    if (rc < 0)
        return rc;
    cfg = &c;
    if (cfg->nworkers == 0 || !cfg->run)
        return -EINVAL;
    nk_workers *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->loop = loop;
    w->cfg = c;
    apply_defaults(&w->cfg);
    w->ready_fd = -1;
    w->index = -1;
    nk_signal_init(&w->sig_chld, on_sigchld, w);
    nk_timer_init(&w->restart_timer, on_restart_timer, w);
    nk_timer_init(&w->kill_timer, on_kill_timer, w);
    w->pids = calloc(c.nworkers, sizeof *w->pids);
    if (c.shared_size) {
        w->shared_len = c.shared_size * c.nworkers;
        /* Mapped before any fork, so a restarted worker maps the same pages. */
        void *m = mmap(NULL, w->shared_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                       -1, 0);
        w->shared = m == MAP_FAILED ? NULL : m;
    }
    if (!w->pids || (c.shared_size && !w->shared)) {
        nk_workers_free(w);
        return -ENOMEM;
    }
    int err = nk_signal_start(loop, &w->sig_chld, SIGCHLD);
    if (err < 0) {
        nk_workers_free(w);
        return err;
    }
    w->window_start = nk_loop_now(loop);
    *out = w;
    return 0;
}

/* In the child: never returns. */
static void worker_main(nk_workers *w, unsigned index, pid_t parent)
{
    /* A worker must not outlive its supervisor (killed with SIGKILL, say): it would go on
     * serving with nobody to stop it. The kernel sends SIGTERM when the parent goes; check that
     * it did not go before the request took effect. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(0);
    w->index = (int)index;
    int rc = w->cfg.run(w, index, w->cfg.arg);
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
}

static pid_t spawn(nk_workers *w, unsigned index)
{
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        worker_main(w, index, parent);
    if (pid > 0)
        w->pids[index] = pid;
    return pid;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait until n workers said they serve, at most timeout_ms in all. A worker that fails before
 * closes its end without a word; when all have ended or written, the read sees the end. */
static void wait_ready(int fd, unsigned n, unsigned timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    unsigned got = 0;
    while (got < n) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        char buf[64];
        ssize_t k = read(fd, buf, sizeof buf);
        if (k <= 0)
            return;
        got += (unsigned)k;
    }
}

int nk_workers_start(nk_workers *w)
{
    int ready[2] = {-1, -1};
    if (w->cfg.ready_timeout_ms && pipe2(ready, O_CLOEXEC) < 0)
        return -errno;
    w->ready_fd = ready[1];
    int err = 0;
    for (unsigned i = 0; i < w->cfg.nworkers && err == 0; i++)
        if (spawn(w, i) < 0)
            err = -errno;
    w->ready_fd = -1; /* workers restarted later do not report */
    if (ready[1] >= 0)
        close(ready[1]);
    if (err < 0)
        nk_workers_stop(w, SIGTERM, w->cfg.stop_timeout_ms);
    else if (ready[0] >= 0)
        wait_ready(ready[0], w->cfg.nworkers, w->cfg.ready_timeout_ms);
    if (ready[0] >= 0)
        close(ready[0]);
    return err;
}

void nk_workers_ready(nk_workers *w)
{
    if (w->ready_fd < 0)
        return;
    ssize_t n = write(w->ready_fd, "r", 1);
    (void)n;
    close(w->ready_fd);
    w->ready_fd = -1;
}

void *nk_workers_shared(const nk_workers *w)
{
    return w->shared;
}

int nk_workers_index(const nk_workers *w)
{
    return w->index;
}

int nk_workers_signal(nk_workers *w, int sig)
{
    int n = 0;
    for (unsigned i = 0; i < w->cfg.nworkers; i++)
        if (w->pids[i] > 0 && kill(w->pids[i], sig) == 0)
            n++;
    return n;
}

int nk_workers_alive(const nk_workers *w)
{
    int n = 0;
    for (unsigned i = 0; i < w->cfg.nworkers; i++)
        n += w->pids[i] > 0;
    return n;
}

int nk_workers_stopping(const nk_workers *w)
{
    return w->stopping;
}

void nk_workers_stop(nk_workers *w, int sig, unsigned timeout_ms)
{
    nk_timer_stop(w->loop, &w->restart_timer);
    if (!w->stopping) {
        w->stopping = 1;
        nk_timer_start(w->loop, &w->kill_timer, timeout_ms, 0);
    }
    nk_workers_signal(w, sig);
    if (nk_workers_alive(w) == 0) {
        nk_timer_stop(w->loop, &w->kill_timer);
        if (w->cfg.on_stopped)
            w->cfg.on_stopped(w, w->cfg.arg);
    }
}

/* Start the workers that are not running, unless they died too often lately. */
static void restart_dead(nk_workers *w)
{
    uint64_t now = nk_loop_now(w->loop);
    for (unsigned i = 0; i < w->cfg.nworkers && !w->stopping; i++) {
        if (w->pids[i] > 0)
            continue;
        if (now - w->window_start > w->cfg.restart_window_ms) {
            w->window_start = now;
            w->restarts = 0;
        }
        if (++w->restarts > w->cfg.restart_limit) {
            if (w->cfg.on_give_up)
                w->cfg.on_give_up(w, w->cfg.arg);
            nk_workers_stop(w, SIGTERM, w->cfg.stop_timeout_ms);
            return;
        }
        if (spawn(w, i) < 0) {
            nk_timer_start(w->loop, &w->restart_timer, FORK_RETRY_MS, 0);
            return;
        }
    }
}

static void on_restart_timer(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    nk_workers *w = t->data;
    if (!w->stopping)
        restart_dead(w);
}

static void on_kill_timer(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    nk_workers_signal(t->data, SIGKILL); /* the graceful stop took too long */
}

/* Reap this group's workers only: other children of the process are their owners' to wait for. */
static void on_sigchld(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)signum;
    nk_workers *w = sig->data;
    int died = 0;
    for (unsigned i = 0; i < w->cfg.nworkers; i++) {
        int status;
        if (w->pids[i] <= 0 || waitpid(w->pids[i], &status, WNOHANG) != w->pids[i])
            continue;
        pid_t pid = w->pids[i];
        w->pids[i] = 0;
        died |= !w->stopping;
        if (w->cfg.on_exit)
            w->cfg.on_exit(w, i, pid, status, !w->stopping, w->cfg.arg);
    }
    if (w->stopping && nk_workers_alive(w) == 0) {
        nk_timer_stop(loop, &w->kill_timer);
        if (w->cfg.on_stopped)
            w->cfg.on_stopped(w, w->cfg.arg);
    } else if (died && !w->stopping && !nk_timer_active(&w->restart_timer)) {
        nk_timer_start(loop, &w->restart_timer, w->cfg.restart_delay_ms, 0);
    }
}

void nk_workers_free(nk_workers *w)
{
    if (!w)
        return;
    for (unsigned i = 0; w->pids && i < w->cfg.nworkers; i++) {
        if (w->pids[i] <= 0)
            continue;
        kill(w->pids[i], SIGKILL);
        while (waitpid(w->pids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (w->index < 0) { /* a worker never frees the supervisor's watchers */
        nk_signal_stop(w->loop, &w->sig_chld);
        nk_timer_stop(w->loop, &w->restart_timer);
        nk_timer_stop(w->loop, &w->kill_timer);
    }
    if (w->shared)
        munmap(w->shared, w->shared_len);
    free(w->pids);
    free(w);
}
