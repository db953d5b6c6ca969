/* A chat relay: every client sends messages as len32 frames (a 4-byte big-endian length, then
 * the payload) and every message is relayed, framed the same way, to every other client.
 *   cc chat_relay.c $(pkg-config --cflags --libs netkit) -o chat_relay
 *   ./chat_relay 127.0.0.1:7001 [QUEUE_KIB]
 * TCP may cut a frame anywhere, so each client has an nk_frame_decoder that puts messages back
 * together. Each client also has a bounded write queue (QUEUE_KIB, default 256): a client that
 * stops reading would otherwise make the relay hold every message for it, forever; once its
 * queue is full it is dropped, and everyone else carries on. */
#include <netkit/netkit.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MESSAGE_MAX (64 * 1024)

struct relay {
    nk_loop *loop;
    nk_io listener;
    size_t queue_max;
    size_t nclients;
    struct client *clients;
};

struct client {
    nk_io io;
    nk_frame_decoder in; /* bytes received, cut into messages */
    nk_buf out;          /* frames waiting to be written; bounded by queue_max */
    char name[NK_ADDR_STRLEN];
    struct relay *relay;
    struct client *next, **prevp;
};

static void client_drop(struct client *c, const char *why)
{
    struct relay *r = c->relay;
    fprintf(stderr, "dropped %s: %s (%zu clients)\n", c->name, why, r->nclients - 1);
    nk_io_stop(r->loop, &c->io); /* before close: the fd number may be reused at once */
    close(c->io.fd);
    nk_frame_decoder_free(&c->in);
    nk_buf_free(&c->out);
    if (c->next)
        c->next->prevp = c->prevp;
    *c->prevp = c->next;
    r->nclients--;
    free(c);
}

static int client_watch(struct client *c)
{
    return nk_io_start(c->relay->loop, &c->io, NK_READ | (nk_buf_len(&c->out) ? NK_WRITE : 0));
}

/* Queue msg for every client but the sender. Only queued here: the bytes are written from each
 * receiver's own callback, so a write error never has to be handled in the middle of this walk.
 * Dropping a receiver is safe during the walk since its successor was read first. */
static void relay_message(struct client *from, const char *msg, size_t len)
{
    struct client *next;
    for (struct client *c = from->relay->clients; c; c = next) {
        next = c->next;
        if (c == from)
            continue;
        /* nk_frame_encode reserves the whole frame first: on -ENOBUFS nothing was added. */
        int rc = nk_frame_encode(NK_FRAME_LEN32, msg, len, MESSAGE_MAX, &c->out);
        if (rc == -ENOBUFS)
            client_drop(c, "too far behind");
        else if (rc < 0 || client_watch(c) < 0)
            client_drop(c, nk_strerror(rc < 0 ? rc : -ENOMEM));
    }
}

static void on_client(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    struct client *c = io->data;
    if (events & NK_WRITE) {
        ssize_t n = nk_buf_write_fd(&c->out, io->fd);
        if (n < 0 && n != -EAGAIN) {
            client_drop(c, nk_strerror((int)n));
            return;
        }
    }
    if (events & (NK_READ | NK_ERROR)) {
        char chunk[16384];
        ssize_t n = read(io->fd, chunk, sizeof chunk);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            client_drop(c, n == 0 ? "left" : nk_strerror(-errno));
            return;
        }
        int rc = nk_frame_feed(&c->in, chunk, n > 0 ? (size_t)n : 0);
        const char *msg;
        size_t len;
        while (rc >= 0 && (rc = nk_frame_next(&c->in, &msg, &len)) == 1)
            relay_message(c, msg, len); /* msg is valid until the next feed or next */
        if (rc < 0) {
            client_drop(c, rc == -EMSGSIZE ? "message too long" : nk_strerror(rc));
            return;
        }
    }
    if (client_watch(c) < 0)
        client_drop(c, "cannot watch");
}

static void on_accept(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    struct relay *r = io->data;
    for (int i = 0; i < 64; i++) { /* bounded, so that connecting clients cannot starve others */
        nk_addr peer;
        int fd = nk_sock_accept(io->fd, &peer);
        if (fd < 0)
            return;
        struct client *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->relay = r;
        nk_frame_decoder_init(&c->in, NK_FRAME_LEN32, MESSAGE_MAX);
        nk_buf_init(&c->out, r->queue_max);
        nk_addr_format(&peer, c->name, sizeof c->name);
        nk_io_init(&c->io, fd, on_client, c);
        c->next = r->clients;
        if (c->next)
            c->next->prevp = &c->next;
        c->prevp = &r->clients;
        r->clients = c;
        r->nclients++;
        if (nk_io_start(loop, &c->io, NK_READ) < 0) {
            client_drop(c, "cannot watch");
            continue;
        }
        fprintf(stderr, "joined %s (%zu clients)\n", c->name, r->nclients);
    }
}

static void on_stop(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)sig, (void)signum;
    nk_loop_stop(loop);
}

int main(int argc, char **argv)
{
    struct relay r = {0};
    nk_addr addr;
    char name[NK_ADDR_STRLEN];
    r.queue_max = (size_t)(argc > 2 ? atoi(argv[2]) : 256) * 1024;
    int rc = argc > 1 ? nk_addr_parse(argv[1], 0, &addr) : -EINVAL;
    int fd = rc < 0 ? rc : nk_sock_listen(&addr, SOCK_STREAM, 0, 0);
    /* A queue must hold at least one whole frame, or every client would be dropped. */
    if (fd < 0 || r.queue_max < MESSAGE_MAX + 4 || (rc = nk_loop_new(NULL, &r.loop)) < 0) {
        fprintf(stderr, "usage: chat_relay HOST:PORT [QUEUE_KIB >= 65] (%s)\n",
                nk_strerror(fd < 0 ? fd : rc < 0 ? rc : -EINVAL));
        return 2;
    }
    nk_io_init(&r.listener, fd, on_accept, &r);
    nk_io_start(r.loop, &r.listener, NK_READ);
    nk_signal term, intr;
    nk_signal_init(&term, on_stop, NULL);
    nk_signal_init(&intr, on_stop, NULL);
    nk_signal_start(r.loop, &term, SIGTERM);
    nk_signal_start(r.loop, &intr, SIGINT);
    nk_sock_local(fd, &addr);
    nk_addr_format(&addr, name, sizeof name);
    fprintf(stderr, "listening on tcp://%s\n", name);
    rc = nk_loop_run(r.loop, NK_RUN_DEFAULT);
    while (r.clients)
        client_drop(r.clients, "relay stopping");
    nk_io_stop(r.loop, &r.listener);
    close(fd);
    nk_loop_free(r.loop); /* forgets the signal watchers and restores the signal mask */
    return rc < 0 ? 1 : 0;
}
