/* A chat relay: every client sends messages as len32 frames (a 4-byte big-endian length, then
 * the payload) and every message is relayed, framed the same way, to every other client.
 *   cc chat_relay.c $(pkg-config --cflags --libs netkit) -o chat_relay
 *   ./chat_relay 127.0.0.1:7001 [QUEUE_KIB]
 * Each client is an nk_stream with len32 framing: TCP may cut a frame anywhere, the stream hands
 * out whole messages (at most 64 KiB) and frames what we send. Each client's write queue is
 * bounded (queue_max, QUEUE_KIB, default 256): a client that stops reading would otherwise make
 * the relay hold every message for it, forever; once its queue is full it is dropped, and
 * everyone else carries on. */
#include <netkit/netkit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MESSAGE_MAX (64 * 1024)

static void drop(nk_stream *c, nk_stream_group *clients, const char *why)
{
    nk_addr peer;
    char name[NK_ADDR_STRLEN] = "?";
    if (nk_sock_peer(nk_stream_fd(c), &peer) == 0)
        nk_addr_format(&peer, name, sizeof name);
    nk_stream_close(c);
    fprintf(stderr, "dropped %s: %s (%zu clients)\n", name, why, clients->count);
}

/* Queue msg for every client but the sender. A write never calls back into us (a failure is
 * reported later, from the loop), so the only change to the group during the walk is our own
 * drop, after the next client was taken. */
static void on_message(nk_stream *from, const char *msg, size_t len, void *clients)
{
    nk_stream *next;
    for (nk_stream *c = ((nk_stream_group *)clients)->first; c; c = next) {
        next = nk_stream_next(c);
        int rc = c == from ? 0 : nk_stream_write_msg(c, msg, len);
        if (rc < 0)
            drop(c, clients, rc == -ENOBUFS ? "too far behind" : nk_strerror(rc));
    }
}

static void on_event(nk_stream *c, int event, int err, void *clients)
{
    drop(c, clients, event == NK_STREAM_EOF ? "left" : err == -EMSGSIZE ? "message too long"
                                                                       : nk_strerror(err));
}

static void on_accept(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    nk_stream_config *cfg = io->data;
    for (int i = 0; i < 64; i++) { /* bounded, so that connecting clients cannot starve others */
        nk_addr peer;
        char name[NK_ADDR_STRLEN];
        int fd = nk_sock_accept(io->fd, &peer);
        if (fd < 0)
            return;
        if (nk_stream_new(loop, fd, cfg, NULL) < 0) {
            close(fd);
            continue;
        }
        nk_addr_format(&peer, name, sizeof name);
        fprintf(stderr, "joined %s (%zu clients)\n", name, cfg->group->count);
    }
}

static void on_stop(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)sig, (void)signum;
    nk_loop_stop(loop);
}

int main(int argc, char **argv)
{
    nk_stream_group clients = {0};
    nk_stream_config cfg = {.size = sizeof cfg, .on_read = on_message, .on_event = on_event,
                            .arg = &clients, .group = &clients, .frame = NK_FRAME_LEN32, .msg_max = MESSAGE_MAX};
    cfg.queue_max = (size_t)(argc > 2 ? atoi(argv[2]) : 256) * 1024;
    nk_addr addr;
    nk_loop *loop;
    int rc = argc > 1 ? nk_addr_parse(argv[1], 0, &addr) : -EINVAL;
    int fd = rc < 0 ? rc : nk_sock_listen(&addr, SOCK_STREAM, 0, 0);
    /* A queue must hold at least one whole frame, or every client would be dropped. */
    if (fd < 0 || cfg.queue_max < MESSAGE_MAX + 4 || (rc = nk_loop_new(NULL, &loop)) < 0) {
        fprintf(stderr, "usage: chat_relay HOST:PORT [QUEUE_KIB >= 65] (%s)\n",
                nk_strerror(fd < 0 ? fd : rc < 0 ? rc : -EINVAL));
        return 2;
    }
    nk_io listener;
    nk_signal term, intr;
    nk_io_init(&listener, fd, on_accept, &cfg);
    nk_io_start(loop, &listener, NK_READ);
    nk_signal_init(&term, on_stop, NULL);
    nk_signal_init(&intr, on_stop, NULL);
    nk_signal_start(loop, &term, SIGTERM);
    nk_signal_start(loop, &intr, SIGINT);
    char name[NK_ADDR_STRLEN];
    nk_sock_local(fd, &addr);
    nk_addr_format(&addr, name, sizeof name);
    fprintf(stderr, "listening on tcp://%s\n", name);
    rc = nk_loop_run(loop, NK_RUN_DEFAULT);
    while (clients.first)
        drop(clients.first, &clients, "relay stopping");
    nk_io_stop(loop, &listener);
    close(fd);
    nk_loop_free(loop); /* forgets the signal watchers and restores the signal mask */
    return rc < 0 ? 1 : 0;
}
