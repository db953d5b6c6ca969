/* Listeners behind a load balancer that speaks the PROXY protocol (nk_httpd_listen_opts with
 * NK_HTTPD_LISTEN_PROXY): each connection begins with a header naming the client, read here
 * before anything else (before the TLS handshake on a TLS listener). Only the header's bytes
 * are taken from the socket: what follows belongs to TLS or HTTP. The kernel's buffer is
 * looked at with MSG_PEEK; an incomplete header is taken out all the same (every byte of it
 * is header), so a level-triggered loop does not see the socket readable again until more
 * arrives. */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PROXY_LOG_MS 10000 /* refusals are reported at most this often */

struct nk__pp {
    size_t len;
    unsigned char buf[NK_PROXY_MAX];
};

int nk__proxy_new(nk__conn *c)
{
    nk__conn_set_pp(c, calloc(1, sizeof(struct nk__pp)));
    return nk__conn_pp(c) ? 0 : -ENOMEM;
}

void nk__proxy_free(nk__conn *c)
{
    free(nk__conn_pp(c));
    nk__conn_set_pp(c, NULL);
}

static int trusted(const nk__conn *c)
{
    const nk_httpd *srv = c->srv;
    if (!c->is_tcp)
        return 1; /* a unix socket: who may connect is the socket file's permissions */
    for (size_t i = 0; i < srv->nproxy_from; i++)
        if (nk_proxy_cidr_match(&srv->proxy_from[i], c->peer_family, c->peer_ip))
            return 1;
    return 0;
}

static int refuse(nk__conn *c, const char *why, int err)
{
    nk_httpd *srv = c->srv;
    NK__COUNT(srv, proxy_refused, 1);
    srv->proxy_unlogged++;
    uint64_t now = nk_loop_now(srv->loop);
    if (srv->last_proxy_log_ms == 0 || now - srv->last_proxy_log_ms >= PROXY_LOG_MS) {
        char ip[INET6_ADDRSTRLEN] = "a unix socket";
        if (c->is_tcp)
            inet_ntop(c->peer_family, c->peer_ip, ip, sizeof ip);
        nk__httpd_log(srv, NK_LOG_WARN, "PROXY header from %s: %s; %u connection%s refused", ip,
                      why, srv->proxy_unlogged, srv->proxy_unlogged == 1 ? "" : "s");
        srv->last_proxy_log_ms = now ? now : 1;
        srv->proxy_unlogged = 0;
    }
    return err;
}

int nk__proxy_read(nk__conn *c)
{
    struct nk__pp *pp = nk__conn_pp(c);
    int fd = c->io.fd;
    if (pp->len == 0 && !trusted(c))
        return refuse(c, "source not allowed (--proxy-from)", -EPERM);
    for (;;) {
        size_t room = sizeof pp->buf - pp->len;
        ssize_t n = recv(fd, pp->buf + pp->len, room, MSG_PEEK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0)
            return -errno;
        if (n == 0)
            return pp->len ? refuse(c, "connection closed inside the header", -ECONNRESET)
                           : -ECONNRESET;
        nk_proxy_info info;
        int r = nk_proxy_parse(pp->buf, pp->len + (size_t)n, &info);
        if (r == -EAGAIN) {
            /* All of it is header: take it out of the socket and wait for the rest. */
            if (recv(fd, pp->buf + pp->len, (size_t)n, 0) != n)
                return -EIO;
            pp->len += (size_t)n;
            continue;
        }
        if (r < 0)
            return refuse(c, r == -EMSGSIZE ? "header too long" : "malformed or missing header",
                          r);
        size_t take = (size_t)r - pp->len;
        if (recv(fd, pp->buf + pp->len, take, 0) != (ssize_t)take)
            return -EIO;
        if (!info.local) {
            /* From here on the client is the one the balancer names: the log, -v, the status
             * page's loopback rule, the rate limits of failed credentials, handlers. */
            c->peer_family = (unsigned char)info.family;
            memset(c->peer_ip, 0, sizeof c->peer_ip);
            memcpy(c->peer_ip, info.src_ip, info.family == AF_INET ? 4 : 16);
            c->peer_port = (unsigned short)info.src_port;
            c->is_tcp = 1;
        }
        nk__proxy_free(c);
        return 1;
    }
}

int nk_httpd_set_proxy_from(nk_httpd *srv, const char *const *ranges, size_t n)
{
    nk_proxy_cidr *v = NULL;
    if (n) {
        v = calloc(n, sizeof *v);
        if (!v)
            return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ranges[i] || nk_proxy_cidr_parse(ranges[i], &v[i]) < 0) {
            free(v);
            return -EINVAL;
        }
    }
    free(srv->proxy_from);
    srv->proxy_from = v;
    srv->nproxy_from = n;
    return 0;
}
