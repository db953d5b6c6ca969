/* A UDP request with retries: UDP may lose the request or the reply, so send again when no
 * reply came in time, waiting twice as long after each try (exponential back-off, so a busy
 * or distant server is not flooded), and give up after the last try.
 *   cc udp_retry.c $(pkg-config --cflags --libs netkit) -o udp_retry
 *   ./udp_retry 127.0.0.1:7002 'hello' [TRIES [FIRST_MS]]
 * Defaults: 3 tries, waiting 200 ms, 400 ms, 800 ms. Prints the reply on stdout and exits 0,
 * or exits 1 when no reply came. A reply to any try answers the request (it must be safe to
 * repeat). */
#include <netkit/netkit.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct request {
    nk_io io;
    nk_timer timer;
    const char *msg;
    int tries, max_tries;
    uint64_t wait_ms; /* before the next try; doubles after each one */
    int result;       /* the exit code once the loop stops */
};

static void send_try(nk_loop *loop, struct request *r)
{
    r->tries++;
    fprintf(stderr, "try %d of %d, waiting %llu ms\n", r->tries, r->max_tries,
            (unsigned long long)r->wait_ms);
    /* The socket is connected, so to is NULL. -ECONNREFUSED here reports an ICMP error for an
     * earlier try (nobody listening yet): that is one more reason to try again, not to quit. */
    ssize_t n = nk_udp_send(r->io.fd, r->msg, strlen(r->msg), NULL);
    if (n < 0 && n != -ECONNREFUSED && n != -EAGAIN)
        fprintf(stderr, "send: %s\n", nk_strerror((int)n));
    nk_timer_start(loop, &r->timer, r->wait_ms, 0);
    r->wait_ms *= 2;
}

static void on_timeout(nk_loop *loop, nk_timer *t)
{
    struct request *r = t->data;
    if (r->tries < r->max_tries) {
        send_try(loop, r);
        return;
    }
    fprintf(stderr, "no reply after %d tries\n", r->tries);
    r->result = 1;
    nk_loop_stop(loop);
}

static void on_reply(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    struct request *r = io->data;
    char buf[65536];
    size_t dgram_len;
    /* A connected UDP socket only receives from its peer: no need to check the sender. */
    ssize_t n = nk_udp_recv(io->fd, buf, sizeof buf, NULL, &dgram_len);
    if (n == -EAGAIN || n == -ECONNREFUSED)
        return; /* nothing yet, or an ICMP error for a try: the timer decides what is next */
    if (n < 0) {
        fprintf(stderr, "recv: %s\n", nk_strerror((int)n));
        r->result = 1;
    } else {
        fwrite(buf, 1, (size_t)n, stdout);
        putchar('\n');
        if (dgram_len > (size_t)n)
            fprintf(stderr, "reply truncated: %zu of %zu bytes\n", (size_t)n, dgram_len);
        r->result = 0;
    }
    nk_loop_stop(loop); /* the pending timer is simply never run */
}

int main(int argc, char **argv)
{
    struct request r = {.max_tries = 3, .wait_ms = 200, .result = 1};
    nk_addr addr;
    nk_loop *loop;
    int in_progress, rc;
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: udp_retry HOST:PORT MESSAGE [TRIES [FIRST_MS]]\n");
        return 2;
    }
    r.msg = argv[2];
    if (argc > 3)
        r.max_tries = atoi(argv[3]);
    if (argc > 4)
        r.wait_ms = strtoull(argv[4], NULL, 10);
    /* Names allowed ("localhost:7002"); the first address is enough for an example. */
    rc = nk_addr_resolve(argv[1], SOCK_DGRAM, 0, &addr, 1);
    int fd = rc < 0 ? rc : nk_sock_connect(&addr, SOCK_DGRAM, 0, &in_progress);
    if (fd < 0 || r.max_tries < 1 || r.wait_ms == 0 || (rc = nk_loop_new(NULL, &loop)) < 0) {
        fprintf(stderr, "udp_retry: %s: %s\n", argv[1],
                nk_strerror(fd < 0 ? fd : rc < 0 ? rc : -EINVAL));
        return 2;
    }
    nk_io_init(&r.io, fd, on_reply, &r);
    nk_timer_init(&r.timer, on_timeout, &r);
    nk_io_start(loop, &r.io, NK_READ);
    send_try(loop, &r);
    rc = nk_loop_run(loop, NK_RUN_DEFAULT);
    nk_io_stop(loop, &r.io);
    nk_timer_stop(loop, &r.timer);
    close(fd);
    nk_loop_free(loop);
    return rc < 0 ? 1 : r.result;
}
