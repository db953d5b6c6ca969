/* A TCP echo server on libev, for bench/echo.sh.
 *
 *   echo_libev PORT      (0 picks a free port; prints "listening on tcp://127.0.0.1:PORT")
 *
 * libev only reports readiness, so the connection code is the same as the raw epoll
 * reference's: per event one read of at most 64 KiB and one write of it; a short write keeps
 * the rest and swaps the read watcher for a write watcher until it is out. TCP_NODELAY on every
 * accepted socket. The default loop on Linux is epoll. SIGTERM/SIGINT stop the loop; we close
 * everything and exit 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_MAX (64 * 1024) /* one read, the same for every server in the benchmark */

typedef struct conn {
    ev_io io; /* first, so a watcher pointer is the connection */
    char *pending;
    size_t off, len;
    struct conn *prev, *next;
} conn;

static char rbuf[READ_MAX];
static conn *conns;

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

static void conn_close(struct ev_loop *loop, conn *c)
{
    ev_io_stop(loop, &c->io);
    close(c->io.fd);
    free(c->pending);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

static void conn_rewatch(struct ev_loop *loop, conn *c, int events)
{
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->io.fd, events);
    ev_io_start(loop, &c->io);
}

static void on_conn(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    conn *c = (conn *)w;
    if (c->pending) { /* finishing a short write */
        ssize_t n = write(w->fd, c->pending + c->off, c->len - c->off);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                conn_close(loop, c);
            return;
        }
        c->off += (size_t)n;
        if (c->off == c->len) {
            free(c->pending);
            c->pending = NULL;
            c->off = c->len = 0;
            conn_rewatch(loop, c, EV_READ);
        }
        return;
    }
    ssize_t n = read(w->fd, rbuf, sizeof rbuf);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(loop, c);
        return;
    }
    ssize_t wr = write(w->fd, rbuf, (size_t)n);
    if (wr == n)
        return;
    if (wr < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        conn_close(loop, c);
        return;
    }
    if (wr < 0)
        wr = 0;
    c->len = (size_t)(n - wr);
    if (!(c->pending = malloc(c->len))) {
        conn_close(loop, c);
        return;
    }
    memcpy(c->pending, rbuf + wr, c->len);
    conn_rewatch(loop, c, EV_WRITE);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        ev_io_init(&c->io, on_conn, fd, EV_READ);
        ev_io_start(loop, &c->io);
        c->next = conns;
        if (conns)
            conns->prev = c;
        conns = c;
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    int lfd = listen_on(atoi(argv[1]));
    if (!loop || lfd < 0) {
        perror("echo_libev");
        return 1;
    }
    ev_io lio;
    ev_signal sterm, sint;
    ev_io_init(&lio, on_accept, lfd, EV_READ);
    ev_io_start(loop, &lio);
    ev_signal_init(&sterm, on_signal, SIGTERM);
    ev_signal_init(&sint, on_signal, SIGINT);
    ev_signal_start(loop, &sterm);
    ev_signal_start(loop, &sint);
    ev_run(loop, 0);
    while (conns)
        conn_close(loop, conns);
    ev_io_stop(loop, &lio);
    ev_signal_stop(loop, &sterm);
    ev_signal_stop(loop, &sint);
    close(lfd);
    ev_loop_destroy(loop);
    return 0;
}
