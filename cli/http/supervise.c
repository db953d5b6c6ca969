/* The supervisor of `netkit http serve -w N`: the library's worker group (netkit/workers.h)
 * forks, restarts and stops the workers; this file says what the command's signals mean to
 * them (SIGTERM/SIGINT: drain; again: stop now; SIGHUP: reload; SIGUSR2: a new binary), and
 * cleans up after a worker that died in the middle of uploads. */
#include "cli.h"
#include "http/serve_state.h"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Bounds of the walk for a dead worker's temporary upload files (done on the supervisor's
 * loop); what lies beyond waits for the clean-up at the next start. */
#define CLEAN_MAX_DEPTH 32
#define CLEAN_MAX_ENTRIES 100000
#define READY_TIMEOUT_MS 10000 /* the readiness lines wait at most this for the workers */
#define KILL_MARGIN_MS 5000    /* after the drain's own bound, before SIGKILL */

static server_state *g_child_state; /* keeps the parent's state reachable in a forked child */

/* The time a graceful stop may take: the drain, the --health-grace before it, a margin. */
static unsigned stop_bound_ms(const http_serve_opts *o)
{
    return o->cfg.drain_timeout_ms + o->health_grace * 1000 + KILL_MARGIN_MS;
}

/* In a new worker process: the supervisor's state as it was at the fork, as this worker's. */
static int run_in_worker(nk_workers *w, unsigned index, void *arg)
{
    server_state *s = arg;
    g_child_state = s;
    if (s->o->upgrade_fd >= 0) {
        /* The server we replace waits for the supervisor's word, not for this pipe's end. */
        close(s->o->upgrade_fd);
        s->o->upgrade_fd = -1;
    }
    /* The parent's loop is not ours to use or free (its epoll instance is shared with the
     * parent); serve_run_worker makes a fresh one. */
    server_state child = *s;
    child.loop = NULL;
    child.workers = w;
    child.worker_index = (int)index;
    return serve_run_worker(&child);
}

/* A worker that did not exit cleanly may have died in the middle of uploads, whose temporary
 * files carry its pid: remove them before its replacement starts (the other workers' stay). */
static void on_worker_exit(nk_workers *w, unsigned index, pid_t pid, int status, int restarting,
                           void *arg)
{
    server_state *s = arg;
    (void)w;
    (void)index;
    if (s->o->cfg.upload && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        int n = nk_httpd_clean_worker_uploads(s->o->root, (int)pid, CLEAN_MAX_DEPTH,
                                              CLEAN_MAX_ENTRIES);
        if (n > 0 && !s->o->quiet)
            fprintf(stderr, "netkit: %s: removed %d unfinished upload%s of worker %d\n",
                    s->o->cmd, n, n == 1 ? "" : "s", (int)pid);
    }
    if (!restarting)
        return;
    if (WIFSIGNALED(status))
        fprintf(stderr, "netkit: %s: worker %d killed by signal %d; restarting\n", s->o->cmd,
                (int)pid, WTERMSIG(status));
    else
        fprintf(stderr, "netkit: %s: worker %d exited with %d; restarting\n", s->o->cmd,
                (int)pid, WEXITSTATUS(status));
}

static void on_give_up(nk_workers *w, void *arg)
{
    server_state *s = arg;
    (void)w;
    cli_fail(s->o->cmd, "workers keep dying; giving up");
    s->exit_code = CLI_FAIL;
}

static void on_all_stopped(nk_workers *w, void *arg)
{
    server_state *s = arg;
    (void)w;
    nk_loop_stop(s->loop);
}

/* The new server's workers accept: this supervisor's workers drain (no grace: the node stays
 * up), and it exits when they are done. */
static void on_supervisor_upgraded(http_upgrade *u, int ok, pid_t pid)
{
    server_state *s = u->arg;
    if (serve_upgrade_ended(s, ok, pid))
        nk_workers_stop(s->workers, HTTP_SIG_HANDED_OVER, s->o->cfg.drain_timeout_ms + KILL_MARGIN_MS);
}

static void on_supervisor_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    server_state *s = sig->data;
    (void)loop;
    if (signum == SIGHUP) {
        serve_reload_tls(s); /* a worker restarted later starts from the certificate read now */
        nk_workers_signal(s->workers, SIGHUP);
        return;
    }
    if (signum == SIGUSR2) {
        serve_start_upgrade(s, on_supervisor_upgraded);
        return;
    }
    if (signum == HTTP_SIG_HANDED_OVER)
        return; /* watched only so that it is blocked in workers from their start */
    if (signum == SIGINT)
        serve_end_ctrl_c_line();
    if (nk_workers_stopping(s->workers)) {
        nk_workers_signal(s->workers, SIGUSR1); /* asked again: the workers stop draining */
        return;
    }
    serve_close_listeners(s); /* the workers' copies keep them open while they still accept */
    http_notify("STOPPING=1");
    nk_workers_stop(s->workers, SIGTERM, stop_bound_ms(s->o));
}

static int supervise(server_state *s)
{
    /* Signals are blocked (and queued for the loop) before any worker exists, so none is lost
     * between the fork and the worker's own loop. */
    const int signums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2, HTTP_SIG_HANDED_OVER};
    enum { NSIGS = sizeof signums / sizeof signums[0] };
    nk_signal sigs[NSIGS];
    for (int i = 0; i < NSIGS; i++) {
        nk_signal_init(&sigs[i], on_supervisor_signal, s);
        nk_signal_start(s->loop, &sigs[i], signums[i]);
    }
    int err = nk_workers_start(s->workers);
    if (err < 0) {
        cli_fail(s->o->cmd, "cannot start worker: %s", nk_strerror(err));
        s->exit_code = CLI_FAIL;
    } else {
        serve_print_listeners(s);
        http_ready(s->o);
    }
    if (nk_workers_alive(s->workers))
        nk_loop_run(s->loop, NK_RUN_DEFAULT);
    for (int i = 0; i < NSIGS; i++)
        nk_signal_stop(s->loop, &sigs[i]);
    http_upgrade_cancel(&s->upgrade);
    return s->exit_code;
}

int serve_run_supervisor(server_state *s)
{
    http_serve_opts *o = s->o;
    int err = nk_loop_new(o->backend, &s->loop);
    if (err < 0)
        return cli_backend_fail(o->cmd, o->backend, err);
    /* Counters every worker writes (its own slot) and every status page reads: shared memory
     * made before the forks, so restarted workers map it too. */
    nk_workers_config cfg = {
        .size = sizeof cfg,
        .nworkers = (unsigned)o->workers,
        .run = run_in_worker,
        .arg = s,
        .shared_size = sizeof(nk_httpd_counters),
        .stop_timeout_ms = stop_bound_ms(o),
        .ready_timeout_ms = READY_TIMEOUT_MS,
        .on_exit = on_worker_exit,
        .on_give_up = on_give_up,
        .on_stopped = on_all_stopped,
    };
    err = nk_workers_new(s->loop, &cfg, &s->workers);
    if (err < 0) {
        nk_loop_free(s->loop);
        return cli_fail(o->cmd, "cannot set up the workers: %s", nk_strerror(err));
    }
    int r = supervise(s);
    nk_workers_free(s->workers);
    s->workers = NULL;
    nk_loop_free(s->loop);
    s->loop = NULL;
    return r;
}
