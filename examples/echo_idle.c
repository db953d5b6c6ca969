/* A TCP echo server that closes connections idle for too long: one nk_io and one nk_timer per
 * connection, both embedded in the connection's struct (the loop allocates nothing).
 *   cc echo_idle.c $(pkg-config --cflags --libs netkit) -o echo_idle
 *   ./echo_idle 127.0.0.1:7000 10 poll     then: nc 127.0.0.1 7000
 * Arguments: HOST:PORT (port 0: any free port), idle seconds (default 30), backend (default:
 * $NETKIT_BACKEND, else the best one). Stops on SIGTERM or SIGINT. */
#include <netkit/netkit.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define QUEUE_MAX (64 * 1024) /* echoed bytes a slow reader may owe us before we stop reading */

struct server {
    nk_loop *loop;
    nk_io listener;
    uint64_t idle_ms;
    struct conn *conns; /* every open connection, for the clean-up at exit */
};

struct conn {
    nk_io io;
    nk_timer idle;
    nk_buf queue; /* bytes read, not yet echoed */
    int eof;      /* the client finished sending: close once the queue is echoed */
    struct server *srv;
    struct conn *next, **prevp;
};

static void conn_close(struct conn *c)
{
    /* Stop the watchers before closing the fd: the number may be reused at once. */
    nk_io_stop(c->srv->loop, &c->io);
    nk_timer_stop(c->srv->loop, &c->idle);
    close(c->io.fd);
    nk_buf_free(&c->queue);
    if (c->next)
        c->next->prevp = c->prevp;
    *c->prevp = c->next;
    free(c);
}

/* Ask for what the connection can do next: read while the queue has room, write while it
 * holds bytes. Level-triggered, so asking again costs nothing if nothing changed. */
static void conn_update(struct conn *c)
{
    unsigned want = 0;
    if (!c->eof && nk_buf_len(&c->queue) < QUEUE_MAX)
        want |= NK_READ;
    if (nk_buf_len(&c->queue) > 0)
        want |= NK_WRITE;
    if (want == 0 || nk_io_start(c->srv->loop, &c->io, want) < 0)
        conn_close(c); /* nothing left to do (eof, all echoed), or the loop refused */
}

static void on_conn(nk_loop *loop, nk_io *io, unsigned events)
{
    struct conn *c = io->data;
    if (events & (NK_READ | NK_ERROR)) {
        ssize_t n = nk_buf_read_fd(&c->queue, io->fd, 0);
        if (n == 0)
            c->eof = 1;
        else if (n > 0)
            nk_timer_start(loop, &c->idle, c->srv->idle_ms, 0); /* activity: start over */
        else if (n != -EAGAIN && n != -ENOBUFS) {
            conn_close(c); /* reset by the peer, ... */
            return;
        }
    }
    /* Only bytes received reset the idle timer: a client that stops reading its echo fills
     * the queue, we stop reading it, and the timer closes it like any other idle client. */
    if (nk_buf_len(&c->queue) > 0) {
        ssize_t n = nk_buf_write_fd(&c->queue, io->fd);
        if (n < 0 && n != -EAGAIN) {
            conn_close(c);
            return;
        }
    }
    conn_update(c);
}

static void on_idle(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    struct conn *c = t->data;
    fprintf(stderr, "closing connection idle for %llu ms\n", (unsigned long long)c->srv->idle_ms);
    conn_close(c);
}

static void on_accept(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events; /* only NK_READ was asked for; an error shows as a failed accept */
    struct server *srv = io->data;
    /* Bounded: a flood of connections must not starve the established ones. */
    for (int i = 0; i < 64; i++) {
        int fd = nk_sock_accept(io->fd, NULL);
        if (fd < 0)
            return; /* -EAGAIN: none left; anything else (EMFILE...): try on the next event */
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->srv = srv;
        nk_buf_init(&c->queue, QUEUE_MAX);
        nk_io_init(&c->io, fd, on_conn, c);
        nk_timer_init(&c->idle, on_idle, c);
        c->next = srv->conns;
        if (c->next)
            c->next->prevp = &c->next;
        c->prevp = &srv->conns;
        srv->conns = c;
        /* nk_io_start fails with -ERANGE on select for fd >= FD_SETSIZE: conn_update closes. */
        nk_timer_start(loop, &c->idle, srv->idle_ms, 0);
        conn_update(c);
    }
}

static void on_stop(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)sig, (void)signum;
    nk_loop_stop(loop);
}

int main(int argc, char **argv)
{
    struct server srv = {0};
    nk_addr addr;
    char name[NK_ADDR_STRLEN];
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: echo_idle HOST:PORT [IDLE_SECONDS [BACKEND]]\n");
        return 2;
    }
    srv.idle_ms = (uint64_t)(argc > 2 ? strtod(argv[2], NULL) * 1000 : 30000);
    int rc = nk_addr_parse(argv[1], 0, &addr);
    int fd = rc < 0 ? rc : nk_sock_listen(&addr, SOCK_STREAM, 0, 0);
    if (fd < 0 || srv.idle_ms == 0) {
        fprintf(stderr, "echo_idle: %s: %s\n", argv[1], fd < 0 ? nk_strerror(fd) : "bad idle time");
        return 2;
    }
    rc = nk_loop_new(argc > 3 ? argv[3] : NULL, &srv.loop); /* NULL: $NETKIT_BACKEND or best */
    if (rc < 0) {
        fprintf(stderr, "echo_idle: backend %s: %s\n", argc > 3 ? argv[3] : "(default)",
                nk_strerror(rc));
        return 2;
    }
    nk_io_init(&srv.listener, fd, on_accept, &srv);
    nk_io_start(srv.loop, &srv.listener, NK_READ);
    /* Signals arrive as loop events: the callback may do anything, unlike a signal handler. */
    nk_signal term, intr;
    nk_signal_init(&term, on_stop, NULL);
    nk_signal_init(&intr, on_stop, NULL);
    nk_signal_start(srv.loop, &term, SIGTERM);
    nk_signal_start(srv.loop, &intr, SIGINT);

    nk_sock_local(fd, &addr); /* the real port when 0 was asked for */
    nk_addr_format(&addr, name, sizeof name);
    fprintf(stderr, "listening on tcp://%s (backend %s, idle %llu ms)\n", name,
            nk_loop_backend(srv.loop), (unsigned long long)srv.idle_ms);
    rc = nk_loop_run(srv.loop, NK_RUN_DEFAULT);

    /* nk_loop_run has returned, so the loop may be freed; watchers first, then their fds. */
    while (srv.conns)
        conn_close(srv.conns);
    nk_io_stop(srv.loop, &srv.listener);
    close(fd);
    nk_signal_stop(srv.loop, &term);
    nk_signal_stop(srv.loop, &intr);
    nk_loop_free(srv.loop);
    return rc < 0 ? 1 : 0;
}
