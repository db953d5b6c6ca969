/* The state of a running `netkit http serve`, shared by its three parts: http/serve.c (checks,
 * listeners, TLS, start), http/worker.c (one worker's loop) and http/supervise.c (several
 * workers, through the library's netkit/workers.h). */
#ifndef NETKIT_CLI_HTTP_SERVE_STATE_H
#define NETKIT_CLI_HTTP_SERVE_STATE_H

#include "conn_tags.h"
#include "http/serve.h"

#include <netkit/workers.h>

#define MAX_SOCKETS HTTP_MAX_INHERIT /* all of them pass to a new binary on SIGUSR2 */

/* With several workers each TCP address is bound once per worker (SO_REUSEPORT), and the
 * supervisor keeps every socket: a restarted worker takes over its predecessor's socket with
 * the connections queued on it, and SIGUSR2 hands all of them to a new binary. Sockets of one
 * address form a group; which worker accepts on which is nk_workers_takes's rule. A unix
 * socket, or one from a service manager, is a group of one: shared. */
typedef struct listener {
    nk_addr addr;     /* bound address, with the real port */
    int fd;
    int group;        /* listeners of one address and scheme */
    int is_unix;
    int tls;          /* https:// */
    int proxy;        /* proxy+: a PROXY protocol header first */
    int inherited;    /* passed by a service manager or the server before an upgrade */
    int unlink;       /* a unix socket path this server removes when it stops */
} listener;

typedef struct server_state {
    http_serve_opts *o;
    listener socks[MAX_SOCKETS];
    int nsocks;
    nk_tls_ctx *tls;        /* the context of https:// listeners, made before any fork */
    int cpus[HTTP_MAX_AFFINITY]; /* --cpu-affinity: worker w runs on cpus[w] */
    nk_loop *loop;          /* the worker's, or the supervisor's */
    http_upgrade upgrade;   /* SIGUSR2: the new server while it starts */
    int handed_over;        /* a new server took the listeners: leave unix paths alone */
    int exit_code;
    /* several workers: the group (in the supervisor), or a worker's view of it (its slot of
     * the shared counters, its readiness); NULL for the only worker */
    nk_workers *workers;
    int worker_index;
    /* worker */
    nk_httpd *httpd;
    int log_fd;
    nk_signal sig_term, sig_int, sig_hup, sig_usr1, sig_usr2, sig_drain;
    int draining;           /* the first SIGTERM/SIGINT came */
    nk_timer log_tty_timer; /* flushes the access log when it goes to a terminal */
    nk_timer grace_timer;   /* --health-grace: the drain begins when it fires */
    conn_tags conn_tags;    /* -v: connection numbers */
} server_state;

/* http/serve.c */
int serve_worker_takes(const server_state *s, int i);
void serve_print_listeners(server_state *s);
void serve_close_listeners(server_state *s);
void serve_reload_tls(server_state *s);
int serve_open_access_log(const char *dest); /* fd, -1 for "off", or -errno - 1000000 */
void serve_end_ctrl_c_line(void);
void serve_start_upgrade(server_state *s, void (*done)(http_upgrade *, int, pid_t));
/* The upgrade ended: said on stderr; ok: the new server accepts, this one lets go of the
 * listeners. */
int serve_upgrade_ended(server_state *s, int ok, pid_t pid);

/* http/worker.c: one worker's loop until a graceful stop. */
int serve_run_worker(server_state *s);

/* http/supervise.c: several workers. */
int serve_run_supervisor(server_state *s);

#endif
