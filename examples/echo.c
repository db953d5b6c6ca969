/* The shortest TCP echo server: a stream listener (netkit/stream.h) makes every connection a
 * stream; the stream queues what a slow client has not read yet and pauses reading meanwhile.
 *   cc echo.c $(pkg-config --cflags --libs netkit) -o echo
 *   ./echo 127.0.0.1:7000      then: nc 127.0.0.1 7000      (SIGINT or SIGTERM stops it) */
#include <netkit/netkit.h>
#include <signal.h>
#include <stdio.h>

static void on_read(nk_stream *s, const char *data, size_t len, void *arg)
{
    (void)arg;
    if (nk_stream_write(s, data, len) < 0)
        nk_stream_close(s);
}

static void on_event(nk_stream *s, int event, int err, void *arg)
{
    (void)err, (void)arg; /* EOF: send back what is queued, then end; DONE, ERROR: close */
    if (event != NK_STREAM_EOF || nk_stream_shutdown(s) < 0)
        nk_stream_close(s);
}

static void on_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)sig, (void)signum;
    nk_loop_stop(loop);
}

int main(int argc, char **argv)
{
    nk_stream_group conns = {0};
    nk_stream_config cfg = {.size = sizeof cfg, .on_read = on_read, .on_event = on_event,
                            .group = &conns};
    nk_loop *loop = NULL;
    nk_stream_listener *l = NULL;
    nk_addr addr;
    nk_signal intr, term;
    char name[NK_ADDR_STRLEN];
    int rc = nk_addr_parse(argc > 1 ? argv[1] : "127.0.0.1:7000", 0, &addr);
    if (rc < 0 || (rc = nk_loop_new(NULL, &loop)) < 0 ||
        (rc = nk_stream_listen(loop, &addr, &cfg, &l)) < 0) {
        fprintf(stderr, "echo: %s\n", nk_strerror(rc));
        nk_loop_free(loop); /* NULL: nothing */
        return 1;
    }
    nk_signal_init(&intr, on_signal, NULL);
    nk_signal_init(&term, on_signal, NULL);
    nk_signal_start(loop, &intr, SIGINT);
    nk_signal_start(loop, &term, SIGTERM);
    nk_stream_listener_addr(l, &addr);
    nk_addr_format(&addr, name, sizeof name);
    fprintf(stderr, "listening on tcp://%s\n", name);
    rc = nk_loop_run(loop, NK_RUN_DEFAULT);
    nk_stream_group_close(&conns);
    nk_stream_listener_free(l);
    nk_loop_free(loop);
    return rc < 0;
}
