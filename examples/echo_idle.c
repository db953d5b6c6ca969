/* A TCP echo server that closes connections idle for too long, on nk_stream: the stream queues
 * what a slow reader has not taken, stops reading from a client whose queue passes the high-water
 * mark (64 KiB), and reports the client's end, errors and idleness as events.
 *   cc echo_idle.c $(pkg-config --cflags --libs netkit) -o echo_idle
 *   ./echo_idle 127.0.0.1:7000 10 poll     then: nc 127.0.0.1 7000
 * Arguments: HOST:PORT (port 0: any free port), idle seconds (default 30), backend (default:
 * $NETKIT_BACKEND, else the best one). Stops on SIGTERM or SIGINT. */
#include <netkit/netkit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void on_read(nk_stream *s, const char *data, size_t len, void *cfg)
{
    (void)cfg;
    if (nk_stream_write(s, data, len) < 0)
        nk_stream_close(s);
}

static void on_event(nk_stream *s, int event, int err, void *cfg)
{
    (void)err;
    if (event == NK_STREAM_EOF && nk_stream_shutdown(s) == 0)
        return; /* the client is done sending: echo what is queued, then end (DONE) */
    if (event == NK_STREAM_TIMEOUT)
        fprintf(stderr, "closing connection idle for %llu ms\n",
                (unsigned long long)((nk_stream_config *)cfg)->idle_ms);
    nk_stream_close(s); /* DONE, ERROR, TIMEOUT: safe from inside the stream's callback */
}

static void on_accept(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    int fd; /* at most 64 per call: a flood of connections must not starve the others */
    for (int i = 0; i < 64 && (fd = nk_sock_accept(io->fd, NULL)) >= 0; i++)
        if (nk_stream_new(loop, fd, io->data, NULL) < 0) /* -ERANGE: fd too high for select */
            close(fd);
}

static void on_stop(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)sig, (void)signum;
    nk_loop_stop(loop);
}

int main(int argc, char **argv)
{
    nk_stream_group conns = {0}; /* every open connection, for the clean-up at exit */
    nk_stream_config cfg = {.size = sizeof cfg, .on_read = on_read, .on_event = on_event,
                            .group = &conns};
    cfg.arg = &cfg;
    cfg.idle_ms = (uint64_t)(argc > 2 ? strtod(argv[2], NULL) * 1000 : 30000);
    nk_addr addr;
    int rc = argc < 2 || argc > 4 ? -EINVAL : nk_addr_parse(argv[1], 0, &addr);
    int fd = rc < 0 ? rc : nk_sock_listen(&addr, SOCK_STREAM, 0, 0);
    if (fd < 0 || cfg.idle_ms == 0) {
        fprintf(stderr, "usage: echo_idle HOST:PORT [IDLE_SECONDS [BACKEND]] (%s)\n",
                fd < 0 ? nk_strerror(fd) : "bad idle time");
        return 2;
    }
    nk_loop *loop;
    if ((rc = nk_loop_new(argc > 3 ? argv[3] : NULL, &loop)) < 0) {
        fprintf(stderr, "echo_idle: backend %s: %s\n", argc > 3 ? argv[3] : "(default)",
                nk_strerror(rc));
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
    nk_sock_local(fd, &addr); /* the real port when 0 was asked for */
    nk_addr_format(&addr, name, sizeof name);
    fprintf(stderr, "listening on tcp://%s (backend %s, idle %llu ms)\n", name,
            nk_loop_backend(loop), (unsigned long long)cfg.idle_ms);
    rc = nk_loop_run(loop, NK_RUN_DEFAULT);
    nk_stream_group_close(&conns); /* nk_loop_run has returned: close, then free the loop */
    nk_io_stop(loop, &listener);
    close(fd);
    nk_loop_free(loop); /* forgets the signal watchers and restores the signal mask */
    return rc < 0 ? 1 : 0;
}
