/* The reference for bench/echo.sh: a TCP echo server on raw epoll, with nothing on top.
 *
 *   echo_epoll PORT      (0 picks a free port; prints "listening on tcp://127.0.0.1:PORT")
 *
 * Level-triggered, non-blocking, one thread. Per readiness event: one read of at most 64 KiB,
 * then one write of what was read. A write the socket cannot take whole keeps the rest and
 * waits for EPOLLOUT with reading stopped, so a reader that does not keep up pushes back on its
 * sender through TCP instead of growing a buffer. TCP_NODELAY on every accepted socket, as in
 * netkit echo serve, so small replies are not held back by Nagle. SIGTERM/SIGINT (signalfd)
 * close everything and exit 0. Deliberately minimal: it is the floor the other servers are
 * measured against.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_MAX (64 * 1024) /* one read, the same for every server in the benchmark */
#define MAX_EVENTS 1024

typedef struct conn {
    int fd;
    char *pending; /* bytes read but not yet written back (after a short write) */
    size_t off, len;
} conn;

static char rbuf[READ_MAX];

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, SOMAXCONN) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        close(fd);
        return -1;
    }
    fprintf(stderr, "listening on tcp://127.0.0.1:%d\n", ntohs(sa.sin_port));
    return fd;
}

static void conn_close(int ep, conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pending);
    free(c);
}

/* Write pending bytes once. 1 when all are out, 0 when some remain, -1 on a dead socket. */
static int conn_write(conn *c)
{
    ssize_t n = write(c->fd, c->pending + c->off, c->len - c->off);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    c->off += (size_t)n;
    if (c->off < c->len)
        return 0;
    free(c->pending);
    c->pending = NULL;
    c->off = c->len = 0;
    return 1;
}

static void conn_watch(int ep, conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        conn_close(ep, c);
}

static void on_conn(int ep, conn *c, uint32_t events)
{
    if (c->pending) { /* waiting for room to finish a short write */
        int rc = conn_write(c);
        if (rc < 0)
            conn_close(ep, c);
        else if (rc > 0)
            conn_watch(ep, c, EPOLLIN);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return;
    ssize_t n = read(c->fd, rbuf, sizeof rbuf);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) { /* end of input or an error: nothing is pending, so we are done */
        conn_close(ep, c);
        return;
    }
    ssize_t w = write(c->fd, rbuf, (size_t)n);
    if (w == n)
        return;
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        conn_close(ep, c);
        return;
    }
    if (w < 0)
        w = 0;
    c->len = (size_t)(n - w);
    c->pending = malloc(c->len);
    if (!c->pending) {
        conn_close(ep, c);
        return;
    }
    memcpy(c->pending, rbuf + w, c->len);
    conn_watch(ep, c, EPOLLOUT);
}

static void on_accept(int ep, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or an error the next readiness event will retry */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (!c || (c->fd = fd, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)) {
            free(c);
            close(fd);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int lfd = listen_on(atoi(argv[1]));
    if (sfd < 0 || ep < 0 || lfd < 0) {
        perror("echo_epoll");
        return 1;
    }
    /* The listener and the signalfd are told apart from connections by their data.ptr. */
    static int lmark, smark;
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &lmark};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &smark};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev);

    static struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) {
            perror("echo_epoll: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &lmark)
                on_accept(ep, lfd);
            else if (evs[i].data.ptr == &smark)
                goto out;
            else
                on_conn(ep, evs[i].data.ptr, evs[i].events);
        }
    }
out:
    /* Connections are not kept in a list, to stay minimal: exiting closes any still open. */
    close(lfd);
    close(ep);
    close(sfd);
    return 0;
}
