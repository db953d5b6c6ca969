/* Socket helpers. Every descriptor they return is non-blocking and close-on-exec. */
#ifndef NETKIT_SOCK_H
#define NETKIT_SOCK_H

#include <netkit/addr.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <netkit/api.h>
#include <netkit/loop.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

enum {
    NK_SOCK_REUSEPORT = 1 << 0, /* SO_REUSEPORT: several processes share one port */
    NK_SOCK_V6ONLY = 1 << 1,    /* IPV6_V6ONLY on an IPv6 listener */
    NK_SOCK_BROADCAST = 1 << 2, /* SO_BROADCAST on a datagram socket */
};

/* Bind (and for SOCK_STREAM listen with backlog; <= 0 means SOMAXCONN) on addr.
 * TCP listeners get SO_REUSEADDR. For unix paths a stale socket file is removed only when
 * nothing answers on it (-EADDRINUSE otherwise; the probe is a connection that a live server
 * sees closed at once). Returns the fd or a negative error. */
int nk_sock_listen(const nk_addr *addr, int socktype, int flags, int backlog);

/* Start a non-blocking connect. Returns the fd; *in_progress is set to 1 when the connection
 * is still being established (wait for NK_WRITE, then nk_sock_error). For SOCK_DGRAM this
 * sets the default destination. */
int nk_sock_connect(const nk_addr *addr, int socktype, int flags, int *in_progress);

/* Connect and wait up to timeout_ms (negative: no limit) for the connection. Returns the
 * (non-blocking) fd or a negative error: -ETIMEDOUT, -ECONNREFUSED, ... */
int nk_sock_connect_wait(const nk_addr *addr, int socktype, int flags, int timeout_ms);

/* accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC; peer may be NULL. -EAGAIN when none is pending. */
int nk_sock_accept(int lfd, nk_addr *peer);

/* The pending error of a socket (SO_ERROR) as a negative errno, 0 when none. */
int nk_sock_error(int fd);

int nk_sock_local(int fd, nk_addr *out);  /* getsockname */
int nk_sock_peer(int fd, nk_addr *out);   /* getpeername */

int nk_sock_set_nodelay(int fd, int on); /* TCP_NODELAY */
/* SO_KEEPALIVE; idle_s > 0 also sets TCP_KEEPIDLE. */
int nk_sock_set_keepalive(int fd, int on, int idle_s);
/* SO_RCVBUF / SO_SNDBUF; a size <= 0 leaves that one unchanged. */
int nk_sock_set_bufsizes(int fd, int rcvbuf, int sndbuf);
int nk_sock_set_broadcast(int fd, int on);
int nk_sock_set_nonblock(int fd, int on);

/* Generic socket options by name, for tools: "SO_RCVBUF", "TCP_NODELAY", "IP_TTL", ...
 * nk_sockopt_set parses "NAME=VALUE" and applies it (-ENOENT for an unknown name, -EINVAL
 * for a bad value). nk_sockopt_get reads one integer option by name. nk_sockopt_names lists
 * the known names (NULL-terminated). */
int nk_sockopt_set(int fd, const char *name_eq_value);
int nk_sockopt_get(int fd, const char *name, int *value);
const char *const *nk_sockopt_names(void);

/* ---- Connecting: resolve, try each address, options before connect ------------------------ */

/* Called for each attempt after the socket exists and the options below are set, before bind
 * and connect: the place for any other option. A negative return ends the whole connect with
 * that error (no further address is tried: a bad option is bad for all of them). */
typedef int (*nk_connect_setup_cb)(int fd, const nk_addr *addr, void *data);

/* nk_sock_listen with setup(fd, addr, data) called before bind, after the options flags asks
 * for: the place for options that must precede listen() (SO_RCVBUF is inherited by accepted
 * sockets and sets the window their handshake offers). A negative return from setup is
 * returned (the socket closed). setup may be NULL. */
int nk_sock_listen_setup(const nk_addr *addr, int socktype, int flags, int backlog,
                         nk_connect_setup_cb setup, void *data);

/* How to connect. A NULL pointer, or all zero but size, means: no options, no time limit.
 * Extensible (docs/library.md, "Config structs"): size is the caller's
 * sizeof(nk_connect_opts), set by nk_connect_opts_init or in the initializer
 * ({.size = sizeof o, ...}); fields are only ever added at the end. The calls taking it
 * return -EINVAL for size 0 and -E2BIG for a newer caller's struct that sets a field this
 * library does not know. */
typedef struct nk_connect_opts {
    size_t size;                 /* required: sizeof(nk_connect_opts) of the caller */
    int rcvbuf, sndbuf;          /* > 0: SO_RCVBUF / SO_SNDBUF (they shape the handshake) */
    int nodelay;                 /* non-zero: TCP_NODELAY (IP stream sockets only) */
    int keepalive;               /* non-zero: SO_KEEPALIVE */
    const nk_addr *local;        /* bind to this local address first; NULL: the kernel picks */
    nk_connect_setup_cb setup;   /* optional, see above */
    void *setup_data;
    int attempt_timeout_ms;      /* limit for one address; <= 0: only the overall limit */
    int timeout_ms;              /* limit for all addresses together; <= 0: none */
} nk_connect_opts;

/* Zero o (no options) and set its size. */
static inline void nk_connect_opts_init(nk_connect_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
}

/* Blocking: try addrs[0..n) in order until one connects. Returns the connected (non-blocking,
 * close-on-exec) fd, or the error of the last attempt (-ECONNREFUSED, -ETIMEDOUT, ...); the
 * overall limit gives -ETIMEDOUT. -EINVAL when n is 0. */
int nk_connect_addrs(const nk_addr *addrs, size_t n, int socktype, const nk_connect_opts *opts);

/* nk_connect_addrs over nk_addr_resolve(text) ("host:port", "[v6]:port", "unix:path").
 * Resolver failures are returned as nk_addr_resolve reports them. */
int nk_connect(const char *text, int socktype, const nk_connect_opts *opts);

/* The same on a loop, without blocking. */
#define NK_CONNECTOR_MAX_ADDRS 16
typedef struct nk_connector nk_connector;
/* The end: fd >= 0 is connected and now the callee's; otherwise the error as above. */
typedef void (*nk_connector_cb)(nk_connector *c, int fd_or_err);
/* Optional: an attempt on addr failed with err; the next address is tried after it unless
 * the callback calls nk_connector_stop. */
typedef void (*nk_connector_attempt_cb)(nk_connector *c, const nk_addr *addr, int err);

struct nk_connector {
    void *data;                          /* the caller's */
    nk_connector_attempt_cb on_attempt;  /* optional, may be set after init */
    /* private */
    nk_loop *loop;
    nk_connector_cb cb;
    nk_connect_opts opts;
    nk_addr local;
    nk_addr addrs[NK_CONNECTOR_MAX_ADDRS];
    size_t naddrs, next;
    int socktype, fd, last_err;
    int running; /* between start and the result or stop */
    nk_io io;
    nk_timer attempt, overall;
};

/* Prepare c for loop; cb receives every result. Call once, before any other nk_connector_. */
void nk_connector_init(nk_connector *c, nk_loop *loop, nk_connector_cb cb, void *data);
/* Start trying addrs (at most NK_CONNECTOR_MAX_ADDRS are used; opts is copied). Returns 0, and
 * the result comes through cb from the loop, or a negative error when no attempt could start
 * (every address failed at once, or setup refused): cb is then not called. */
int nk_connector_start(nk_connector *c, const nk_addr *addrs, size_t n, int socktype,
                       const nk_connect_opts *opts);
/* Give up: closes a pending attempt; cb is not called. Safe when idle. */
void nk_connector_stop(nk_connector *c);
/* The address of the current (or the connected) attempt; NULL before any. */
const nk_addr *nk_connector_addr(const nk_connector *c);

/* ---- Accepting on a loop, with back-off when descriptors run out -------------------------- */

#define NK_ACCEPT_PER_EVENT 16 /* default batch: a burst cannot starve the other watchers */
#define NK_ACCEPT_PAUSE_MS 100 /* default back-off after EMFILE, ENFILE, ENOBUFS, ENOMEM */

typedef struct nk_acceptor nk_acceptor;
/* One accepted connection: fd (non-blocking, close-on-exec) is now the callee's. The callee
 * may stop the acceptor. */
typedef void (*nk_accept_cb)(nk_acceptor *a, int fd, const nk_addr *peer);
/* paused = 1: accept failed with err and accepting pauses for pause_ms; said for the first
 * pause only (a.pauses counts them all). paused = 0: the listener could not be watched again
 * after a pause (err): accepting has stopped for good. */
typedef void (*nk_accept_error_cb)(nk_acceptor *a, int err, int paused);

struct nk_acceptor {
    void *data;                   /* the caller's */
    int per_event;                /* accepts per readiness event; <= 0: NK_ACCEPT_PER_EVENT */
    unsigned pause_ms;            /* back-off; 0: NK_ACCEPT_PAUSE_MS */
    nk_accept_error_cb on_error;  /* optional */
    unsigned long pauses;         /* how many times accepting paused */
    /* private */
    nk_loop *loop;
    int fd;
    nk_accept_cb cb;
    nk_io io;
    nk_timer resume;
};

/* lfd is a listening socket, not owned (never closed by the acceptor). */
void nk_acceptor_init(nk_acceptor *a, nk_loop *loop, int lfd, nk_accept_cb cb, void *data);
/* Start (or resume) accepting: 0 or a negative error. */
int nk_acceptor_start(nk_acceptor *a);
/* Stop accepting, a pause included. Safe on an initialised acceptor that never started. */
void nk_acceptor_stop(nk_acceptor *a);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
