/* Running `netkit http serve`: listeners, one worker or a supervisor with several (the process
 * layer is the library's netkit/workers.h; http/serve_state.h holds the running state). */
#ifndef NETKIT_CLI_HTTP_SERVE_H
#define NETKIT_CLI_HTTP_SERVE_H

#include <netkit/httpd.h>
#include <netkit/loop.h>

#include <signal.h>
#include <sys/types.h>

#define HTTP_MAX_LISTEN 16
#define HTTP_MAX_USERS 1024
#define HTTP_MAX_CERTS 16
#define HTTP_MAX_PROXY_FROM 64

#define HTTP_MAX_INHERIT 1024 /* also the most listeners: addresses x workers */
#define HTTP_MAX_AFFINITY 256 /* workers with --cpu-affinity (the most workers); the CPU
                               * helpers are the library's (netkit/workers.h) */

/* A listener passed by a service manager (socket activation) or by the server this one
 * replaces (http/upgrade.c); unlink: a unix socket path this server removes when it stops. */
typedef struct http_inherited {
    int fd;
    int tls, proxy;
    int unlink;
} http_inherited;

typedef struct http_serve_opts {
    const char *cmd;
    const char *root;
    const char *listen[HTTP_MAX_LISTEN];
    int listen_tls[HTTP_MAX_LISTEN]; /* https:// */
    int listen_proxy[HTTP_MAX_LISTEN]; /* proxy+http:// or proxy+https:// */
    http_inherited inherited[HTTP_MAX_INHERIT];
    int ninherited;
    const char *proxy_from[HTTP_MAX_PROXY_FROM]; /* --proxy-from; none: loopback */
    int nproxy_from;
    const char *health;     /* --health PATH */
    unsigned health_grace;  /* --health-grace SECONDS */
    int nlisten;
    const char *tls_cert[HTTP_MAX_CERTS]; /* file, or a directory of NAME.crt + NAME.key */
    const char *tls_key[HTTP_MAX_CERTS];
    int ncerts, nkeys;
    int tls_self_signed;
    int redirect_https;
    unsigned hsts;
    int no_http2;           /* --no-http2 */
    unsigned h2_max_streams; /* 0: the engine's default */
    unsigned char tls_secret[48]; /* ticket keys of every worker derive from it */
    int workers;
    const char *backend;
    const char *access_log; /* "-", "off" or a path */
    int quiet;
    int verbose;            /* -v: print each request head on stderr */
    int upload_anonymous;   /* --upload-anonymous: writes without credentials */
    nk_httpd_user users[HTTP_MAX_USERS];
    size_t nusers;
    char *auth_file_data;   /* the --auth-file contents; users point into it */
    nk_httpd_config cfg;
    /* SIGUSR2 (http/upgrade.c): the binary and command line to start again, and the pipe to
     * the server this one replaces (-1: none), to which it says that it accepts. */
    char *self_exe;
    char *self_args;
    char **self_argv;
    int upgrade_fd;
    int cpu_affinity;       /* --cpu-affinity */
} http_serve_opts;

int http_serve_run(http_serve_opts *o);

/* http/activation.c: listeners from $LISTEN_FDS (0, or an exit code after a message), and a
 * state ("READY=1", "STOPPING=1") for $NOTIFY_SOCKET when there is one. */
int http_inherit_listeners(http_serve_opts *o);
void http_notify(const char *state);

/* http/upgrade.c: SIGUSR2, a new binary started on the same listening sockets. Once it
 * accepts, the supervisor sends its workers HTTP_SIG_HANDED_OVER: drain now, without the
 * --health-grace delay (the node stays up, so its health must not fail). A real-time signal,
 * as nothing else sends it (SIGWINCH, nginx's choice, comes from terminals). */
#define HTTP_SIG_HANDED_OVER (SIGRTMIN + 1)

typedef struct http_upgrade {
    nk_loop *loop;
    http_serve_opts *o;
    nk_io io;          /* the read end of the new server's readiness pipe */
    nk_timer timer;    /* gives up on a new server that never gets ready */
    int fd;
    pid_t pid;         /* the new server while it starts, else 0 */
    void (*done)(struct http_upgrade *u, int ok, pid_t pid);
    void *arg;
} http_upgrade;

int http_upgrade_save_command(http_serve_opts *o);
void http_upgrade_free_command(http_serve_opts *o);
/* Start the new server on these listeners; done(ok=1) once it accepts, done(ok=0) when it
 * failed (then killed and reaped). -EALREADY while one is starting. */
int http_upgrade_begin(http_upgrade *u, nk_loop *loop, http_serve_opts *o,
                       const http_inherited *listeners, int n,
                       void (*done)(http_upgrade *u, int ok, pid_t pid), void *arg);
/* While one starts (stopping the server, say): kill and reap it. */
void http_upgrade_cancel(http_upgrade *u);
/* READY=1 for a service manager (with MAINPID after an upgrade) and "R" to the old server. */
void http_ready(http_serve_opts *o);

/* http/tls.c */
int http_tls_split_schemes(http_serve_opts *o);
int http_tls_check(http_serve_opts *o);
int http_tls_context(const http_serve_opts *o, nk_tls_ctx **out, char *err, size_t errlen);
#endif
