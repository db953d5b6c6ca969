/* Multi-process serving: a supervisor process and N worker processes.
 *
 * The supervisor (the process that calls nk_workers_new) forks nworkers children. Each runs
 * the caller's run(w, index, arg) and exits with its return value. The supervisor watches them
 * on its own event loop (a SIGCHLD watcher): a worker that dies while the group is not stopping
 * is started again, with the same index, after restart_delay_ms; more than restart_limit
 * restarts within restart_window_ms mean something is broken, so the supervisor gives up
 * (on_give_up) and stops the group instead of forking in a tight loop.
 *
 * Stopping: nk_workers_stop(w, sig, timeout_ms) ends restarts, sends sig (SIGTERM for a
 * graceful stop) to every live worker and sends SIGKILL to whoever is still alive after
 * timeout_ms. on_stopped is called once every worker has been reaped. The supervisor decides
 * which of its own signals mean "stop": it watches them on its loop (nk_signal) and calls
 * nk_workers_stop. Watch them before nk_workers_start, so that they are blocked in the workers
 * from their first instruction: a worker inherits the mask, and they stay blocked there until
 * its own loop watches them (or it unblocks them).
 *
 * Shared memory: shared_size bytes per worker, mapped MAP_SHARED before the first fork, so
 * every worker (a restarted one too) and the supervisor see the same bytes: the place for
 * per-worker counters that a status page sums. Worker i's slot starts at i * shared_size.
 *
 * Listeners: nk_workers_listen binds one SO_REUSEPORT socket per worker on one address. The
 * supervisor keeps every socket open for the life of the group, so a restarted worker accepts
 * on the socket of the worker it replaces, with the connections already queued on it (a
 * closed socket would lose them). nk_workers_takes tells which worker accepts on which
 * socket. nk_reuseport_steer hands each new connection to the worker pinned to the CPU that
 * received it (nk_cpu_pin, in run).
 *
 * In a worker: the supervisor's loop belongs to the supervisor (a worker shares its kernel
 * objects after fork); make a new one. Only nk_workers_ready, nk_workers_shared and
 * nk_workers_index may be called on w there. A worker gets SIGTERM when its supervisor dies
 * (PR_SET_DEATHSIG), so it never serves alone. Linux only. */
#ifndef NETKIT_WORKERS_H
#define NETKIT_WORKERS_H

#include <netkit/addr.h>
#include <netkit/api.h>
#include <netkit/loop.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

typedef struct nk_workers nk_workers;

/* Extensible (docs/library.md, "Config structs"): size is the caller's
 * sizeof(nk_workers_config), set by nk_workers_config_init or in the initializer
 * ({.size = sizeof cfg, ...}); fields are only ever added at the end. */
typedef struct nk_workers_config {
    size_t size;                 /* required: sizeof(nk_workers_config) of the caller */
    unsigned nworkers;           /* 1 or more */
    /* Runs in worker index (0 .. nworkers - 1); its return value is the worker's exit status. */
    int (*run)(nk_workers *w, unsigned index, void *arg);
    void *arg;                   /* passed to run and to every callback below */
    size_t shared_size;          /* bytes of shared memory per worker; 0: none */
    unsigned restart_delay_ms;   /* a dead worker starts again after this; 0: 100 */
    unsigned restart_limit;      /* restarts allowed within the window; 0: 20 */
    unsigned restart_window_ms;  /* 0: 10000 */
    unsigned stop_timeout_ms;    /* the bound of a stop after give-up or a failed start; 0: 5000 */
    unsigned ready_timeout_ms;   /* nk_workers_start waits at most this for every worker's
                                  * nk_workers_ready; 0: it does not wait */
    /* A worker was reaped (status as from waitpid); restarting: it will be started again. */
    void (*on_exit)(nk_workers *w, unsigned index, pid_t pid, int status, int restarting,
                    void *arg);
    /* Too many restarts: the group is stopping (SIGTERM, then SIGKILL after stop_timeout_ms). */
    void (*on_give_up)(nk_workers *w, void *arg);
    /* Stopping, and no worker is left (nk_loop_stop, typically). May come from inside
     * nk_workers_stop when no worker was alive. */
    void (*on_stopped)(nk_workers *w, void *arg);
} nk_workers_config;

/* Zero cfg (every default) and set its size. */
static inline void nk_workers_config_init(nk_workers_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
}

/* Set up a group on the supervisor's loop: the shared memory and a SIGCHLD watcher (started
 * now, so that no worker's exit is missed). No process is started yet. -EINVAL for no worker
 * or no run, or size 0; -E2BIG for a newer caller's struct that sets a field this library
 * does not know; -ENOMEM. */
int nk_workers_new(nk_loop *loop, const nk_workers_config *cfg, nk_workers **out);

/* Fork every worker, then (ready_timeout_ms > 0) wait until each said nk_workers_ready, died
 * before it, or the time ran out. A fork that fails stops the ones started (as after a give-up)
 * and returns its -errno; run the loop while nk_workers_alive to reap them. */
int nk_workers_start(nk_workers *w);

/* In a worker first started by nk_workers_start: tell the supervisor this worker serves now
 * (once; later calls, and calls in a restarted worker, do nothing). */
void nk_workers_ready(nk_workers *w);

/* The shared memory (nworkers * shared_size bytes, zeroed at nk_workers_new), or NULL. */
void *nk_workers_shared(const nk_workers *w);

/* In a worker: its index; in the supervisor: -1. */
int nk_workers_index(const nk_workers *w);

/* Send sig to every live worker; the number of workers signalled. */
int nk_workers_signal(nk_workers *w, int sig);

/* Stop: no more restarts, sig to every live worker, SIGKILL to the ones left after timeout_ms
 * (the first call's deadline holds; a later call only sends its signal again, e.g. a "stop now"
 * to workers that drain). */
void nk_workers_stop(nk_workers *w, int sig, unsigned timeout_ms);

int nk_workers_alive(const nk_workers *w);    /* workers running now */
int nk_workers_stopping(const nk_workers *w); /* nk_workers_stop was called, or a give-up */

/* Stop the watchers and unmap the memory. Workers still alive are killed (SIGKILL) and reaped
 * first: run the loop until on_stopped to end them gracefully. NULL is ignored. */
void nk_workers_free(nk_workers *w);

/* ---- listeners per worker ------------------------------------------------------------------ */

/* Bind n listening stream sockets on addr (nk_sock_listen with flags; n > 1 adds
 * NK_SOCK_REUSEPORT), all on one port: port 0 takes the port the kernel gives the first. The
 * descriptors go to fds[0..n-1]. 0, or a negative errno (none left open). A unix socket path
 * cannot be shared this way: n must be 1 there (-EINVAL). */
int nk_workers_listen(const nk_addr *addr, int flags, unsigned n, int *fds);

/* Does worker index of nworkers accept on socket pos of a group of count sockets (one address)?
 * Socket p goes to worker p mod nworkers; with fewer sockets than workers (one unix socket, one
 * inherited from a service manager) worker w >= count shares socket w mod count. So every
 * socket has a worker and every worker a socket of each group. */
int nk_workers_takes(unsigned pos, unsigned count, unsigned index, unsigned nworkers);

/* ---- CPUs ---------------------------------------------------------------------------------- */

/* The CPUs this process may run on, in order, at most max of them: the count, or -errno. */
int nk_cpu_list(int *cpus, int max);

/* Pin the calling process to one CPU. 0 or -errno. */
int nk_cpu_pin(int cpu);

/* On the first socket of a reuseport group whose socket w belongs to the worker pinned to
 * cpus[w]: each new connection goes to the socket of the worker on the CPU that received it
 * (a classic BPF program, SO_ATTACH_REUSEPORT_CBPF); on another CPU the kernel's hash chooses.
 * 0, or -E2BIG (too many workers for one program), or -errno. */
int nk_reuseport_steer(int fd, const int *cpus, unsigned nworkers);

/* Back to the kernel's hash (a group inherited from a server that steered). Best effort:
 * kernels before 5.8 cannot detach. */
void nk_reuseport_unsteer(int fd);

NK_API_END
#ifdef __cplusplus
}
#endif
#endif
