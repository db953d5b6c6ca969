/* A TCP echo server on completion-based operations (netkit/op.h): a multishot accept, and per
 * connection a receive always waiting while the last message goes back. On the uring backend
 * each iteration is one io_uring_enter that both sends the replies and waits for what comes
 * next; on epoll, poll and select the same code runs on readiness plus the system calls.
 *   cc echo_ops.c $(pkg-config --cflags --libs netkit) -o echo_ops
 *   ./echo_ops 127.0.0.1:7000 uring     then: nc 127.0.0.1 7000
 * Arguments: HOST:PORT (port 0: any free port), backend (default: $NETKIT_BACKEND, else the
 * best one). Stops on SIGTERM or SIGINT: every operation is stopped and its last callback
 * awaited before the loop is freed (buffers stay valid until the kernel lets go of them). */
#include <netkit/netkit.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define READ_MAX (64 * 1024) /* one receive at most, as the benchmark's other servers */

typedef struct conn {
    int fd;
    nk_op rx;        /* receiving into buf[next] */
    nk_op tx[2];     /* sending buf[0], buf[1] back */
    int next;        /* the buffer the next receive fills */
    int closing;     /* stopping: freed once no operation is started */
    struct conn *prev, *link;
    char buf[2][READ_MAX];
} conn;

typedef struct {
    nk_op accept;
    int listen_fd;
    nk_timer retry; /* accepting again after an error (out of descriptors ...) */
    conn *conns;    /* every open connection, for the stop */
} server;

static void conn_maybe_free(conn *c)
{
    if (!c->closing || nk_op_active(&c->rx) || nk_op_active(&c->tx[0]) ||
        nk_op_active(&c->tx[1]))
        return;
    close(c->fd);
    free(c);
}

/* Stop everything; on uring some operations end later with -ECANCELED, and the last one to
 * end frees the connection. */
static void conn_close(nk_loop *loop, conn *c)
{
    server *srv = nk_loop_data(loop);
    if (c->closing)
        return;
    c->closing = 1;
    if (c->prev)
        c->prev->link = c->link;
    else
        srv->conns = c->link;
    if (c->link)
        c->link->prev = c->prev;
    nk_op_stop(loop, &c->rx);
    nk_op_stop(loop, &c->tx[0]);
    nk_op_stop(loop, &c->tx[1]);
    conn_maybe_free(c);
}

static void receive_next(nk_loop *loop, conn *c)
{
    if (nk_op_recv(loop, &c->rx, c->fd, c->buf[c->next], READ_MAX) < 0)
        conn_close(loop, c);
}

static void on_sent(nk_loop *loop, nk_op *op, ssize_t result)
{
    conn *c = op->data;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    if (result < 0) {
        conn_close(loop, c);
        return;
    }
    /* The receive was waiting for this buffer: it may go on now. */
    if (!nk_op_active(&c->rx) && op == &c->tx[c->next])
        receive_next(loop, c);
}

static void on_received(nk_loop *loop, nk_op *op, ssize_t result)
{
    conn *c = op->data;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    if (result <= 0) { /* the client's end, or an error */
        conn_close(loop, c);
        return;
    }
    int full = c->next;
    c->next ^= 1;
    /* Sends on one socket go out in start order, so the reply may be started at once. */
    if (nk_op_send(loop, &c->tx[full], c->fd, c->buf[full], (size_t)result) < 0) {
        conn_close(loop, c);
        return;
    }
    if (!nk_op_active(&c->tx[c->next])) /* else on_sent continues when that buffer is free */
        receive_next(loop, c);
}

static void on_accept(nk_loop *loop, nk_op *op, ssize_t result)
{
    server *srv = op->data;
    if (result < 0) {
        if (result == -ECANCELED) /* the stop's last callback */
            return;
        /* Out of descriptors ...: serve who is here, and try again in a while. */
        fprintf(stderr, "echo_ops: accept: %s\n", nk_strerror((int)result));
        nk_timer_start(loop, &srv->retry, 100, 0);
        return;
    }
    int fd = (int)result, one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        return;
    }
    c->fd = fd;
    nk_op_init(&c->rx, on_received, c);
    nk_op_init(&c->tx[0], on_sent, c);
    nk_op_init(&c->tx[1], on_sent, c);
    c->link = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    receive_next(loop, c);
}

static void on_retry(nk_loop *loop, nk_timer *t)
{
    server *srv = t->data;
    nk_op_accept(loop, &srv->accept, srv->listen_fd);
}

static void on_stop(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)signum;
    server *srv = nk_loop_data(loop);
    nk_signal_stop(loop, sig);
    nk_signal_stop(loop, sig->data);
    nk_op_stop(loop, &srv->accept);
    nk_timer_stop(loop, &srv->retry);
    while (srv->conns)
        conn_close(loop, srv->conns);
    /* nk_loop_run returns once the last operation has been called back. */
}

int main(int argc, char **argv)
{
    nk_addr addr;
    int rc = argc < 2 || argc > 3 ? -EINVAL : nk_addr_parse(argv[1], 0, &addr);
    int fd = rc < 0 ? rc : nk_sock_listen(&addr, SOCK_STREAM, 0, 0);
    if (fd < 0) {
        fprintf(stderr, "usage: echo_ops HOST:PORT [BACKEND] (%s)\n", nk_strerror(fd));
        return 2;
    }
    nk_loop *loop;
    if ((rc = nk_loop_new(argc > 2 ? argv[2] : NULL, &loop)) < 0) {
        fprintf(stderr, "echo_ops: backend %s: %s\n", argc > 2 ? argv[2] : "(default)",
                nk_strerror(rc));
        return 2;
    }
    server srv = {.listen_fd = fd, .conns = NULL};
    nk_timer_init(&srv.retry, on_retry, &srv);
    nk_loop_set_data(loop, &srv);
    nk_signal term, intr;
    nk_signal_init(&term, on_stop, &intr);
    nk_signal_init(&intr, on_stop, &term);
    nk_signal_start(loop, &term, SIGTERM);
    nk_signal_start(loop, &intr, SIGINT);
    nk_op_init(&srv.accept, on_accept, &srv);
    if ((rc = nk_op_accept(loop, &srv.accept, fd)) < 0) {
        fprintf(stderr, "echo_ops: accept: %s\n", nk_strerror(rc));
        return 1;
    }

    char name[NK_ADDR_STRLEN];
    nk_sock_local(fd, &addr); /* the real port when 0 was asked for */
    nk_addr_format(&addr, name, sizeof name);
    fprintf(stderr, "listening on tcp://%s (backend %s)\n", name, nk_loop_backend(loop));
    rc = nk_loop_run(loop, NK_RUN_DEFAULT);
    close(fd);
    int frc = nk_loop_free(loop); /* -EBUSY if an operation were still started */
    if (frc < 0)
        fprintf(stderr, "echo_ops: %s\n", nk_strerror(frc));
    return rc < 0 || frc < 0 ? 1 : 0;
}
