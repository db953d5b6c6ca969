/* Socket helpers. Every descriptor they return is non-blocking and close-on-exec. */
#ifndef NETKIT_SOCK_H
#define NETKIT_SOCK_H

#include <netkit/addr.h>
#include <errno.h>
#include <netkit/api.h>

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

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
