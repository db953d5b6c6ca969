/* Datagram listen and send on the loop (see stream/dgram.h).
 *
 * Datagrams are printed with stdio and flushed one by one, so that each is visible at once to
 * whoever reads stdout; a blocked stdout therefore pauses receiving, and the kernel's receive
 * queue (then dropping, as UDP may) is the only buffer, which keeps memory bounded.
 *
 * Sending keeps the unsent rest of its input where it is (the argument list, or the stdin line
 * buffer): when the socket is full the datagram at the front waits for NK_WRITE and stdin is
 * not read meanwhile, so nothing is queued without bound and nothing is dropped.
 */
#include "cli.h"
#include "stream/dgram.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Datagrams handled per readiness event, so a flood cannot starve the signal watchers. */
#define DGRAMS_PER_EVENT 64
#define STDIN_CHUNK 65536

typedef struct dgram_tool {
    const char *cmd;
    const char *dest;
    const dgram_opts *o;
    nk_loop *loop;
    int fd;
    nk_io io, in_io;
    unsigned io_ev, in_ev;
    cli_stop_signals stop_signals;
    nk_timer wait;
    char *buf;
    /* send */
    char **msgs;
    int nmsgs, next;
    nk_buf lines;
    int in_eof;
    int blocked; /* the datagram at the front waits for room in the socket */
    unsigned long sent, received;
    int exit_code;
} dgram_tool;

static void on_wait_timeout(nk_loop *loop, nk_timer *timer);

static void fail(dgram_tool *t, int code)
{
    t->exit_code = code;
    nk_loop_stop(t->loop);
}

static void set_watch(dgram_tool *t, nk_io *io, unsigned *cur, unsigned want)
{
    if (want == *cur)
        return;
    int rc = want ? nk_io_start(t->loop, io, want) : (nk_io_stop(t->loop, io), 0);
    if (rc < 0) {
        fail(t, cli_fail(t->cmd, "cannot watch fd %d: %s", io->fd, nk_strerror(rc)));
        return;
    }
    *cur = want;
}

static void format_from(const nk_addr *from, char *text, size_t len)
{
    if (nk_addr_family(from) == AF_UNIX && from->len <= sizeof(sa_family_t))
        snprintf(text, len, "unix:(unnamed)");
    else if (nk_addr_format(from, text, len) < 0)
        snprintf(text, len, "?");
}

/* Receive and print up to DGRAMS_PER_EVENT datagrams. Returns the number printed, or -1 after
 * a failure that ends the command. */
static int receive(dgram_tool *t)
{
    const dgram_opts *o = t->o;
    int count = 0;
    for (int i = 0; i < DGRAMS_PER_EVENT; i++) {
        nk_addr from;
        size_t full = 0;
        ssize_t n = nk_udp_recv(t->fd, t->buf, o->max_size, &from, &full);
        if (n == -EAGAIN)
            break;
        if (n == -ECONNREFUSED && !t->dest)
            continue; /* a listener's ICMP error about an earlier echo: not fatal */
        if (n < 0) {
            fail(t, cli_fail(t->cmd, "%s: %s", t->dest ? t->dest : "recv", nk_strerror((int)n)));
            return -1;
        }
        char text[NK_ADDR_STRLEN];
        format_from(&from, text, sizeof text);
        if (o->verbose)
            fprintf(stderr, "from %s (%zu bytes)\n", text, full);
        if (full > (size_t)n)
            fprintf(stderr, "netkit: %s: datagram from %s truncated: %zu bytes, %zd kept\n",
                    t->cmd, text, full, n);
        fwrite(t->buf, 1, (size_t)n, stdout);
        if (!o->raw && (n == 0 || t->buf[n - 1] != '\n'))
            fputc('\n', stdout);
        if (fflush(stdout) == EOF || ferror(stdout)) {
            fail(t, cli_fail(t->cmd, "stdout: %s", nk_strerror(-errno)));
            return -1;
        }
        /* A truncated datagram is not echoed: sending back part of it would be wrong. */
        if (o->echo && full == (size_t)n && from.len > sizeof(sa_family_t))
            nk_udp_send(t->fd, t->buf, (size_t)n, &from);
        count++;
    }
    return count;
}

static void listen_on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    receive(io->data);
}

static int tool_init(dgram_tool *t, const char *cmd, int fd, const dgram_opts *o)
{
    memset(t, 0, sizeof *t);
    t->cmd = cmd;
    t->fd = fd;
    t->o = o;
    nk_buf_init(&t->lines, DGRAM_LIMIT_MAX);
    nk_timer_init(&t->wait, on_wait_timeout, t);
    nk_io_init(&t->io, fd, NULL, t);
    nk_io_init(&t->in_io, STDIN_FILENO, NULL, t);
    int rc = nk_loop_new(NULL, &t->loop);
    if (rc < 0) {
        t->loop = NULL;
        return cli_fail(cmd, "cannot start the event loop: %s", nk_strerror(rc));
    }
    t->buf = malloc(o->max_size > 0 ? o->max_size : 1);
    if (!t->buf)
        return cli_fail(cmd, "%s", nk_strerror(-ENOMEM));
    signal(SIGPIPE, SIG_IGN);
    if ((rc = cli_stop_signals_start(t->loop, &t->stop_signals, NULL, NULL)) < 0)
        return cli_fail(cmd, "cannot watch signals: %s", nk_strerror(rc));
    return 0;
}

static int tool_run(dgram_tool *t)
{
    if (t->exit_code == CLI_OK) {
        int rc = nk_loop_run(t->loop, NK_RUN_DEFAULT);
        if (rc < 0 && t->exit_code == CLI_OK)
            t->exit_code = cli_fail(t->cmd, "event loop: %s", nk_strerror(rc));
    }
    return t->exit_code;
}

static void tool_free(dgram_tool *t)
{
    if (t->loop) {
        cli_stop_signals_stop(t->loop, &t->stop_signals);
        nk_timer_stop(t->loop, &t->wait);
        nk_io_stop(t->loop, &t->io);
        nk_io_stop(t->loop, &t->in_io);
        nk_loop_free(t->loop);
    }
    nk_buf_free(&t->lines);
    free(t->buf);
}

int dgram_listen(const char *cmd, int fd, const dgram_opts *o)
{
    dgram_tool t;
    int code = tool_init(&t, cmd, fd, o);
    if (code == 0) {
        nk_io_init(&t.io, fd, listen_on_io, &t);
        set_watch(&t, &t.io, &t.io_ev, NK_READ);
        code = tool_run(&t);
    }
    tool_free(&t);
    return code;
}

/* ---- send ------------------------------------------------------------------------------------ */

static void send_step(dgram_tool *t);

/* Send one datagram: 1 sent, 0 the socket is full (try again on NK_WRITE), -1 failed. */
static int send_one(dgram_tool *t, const char *msg, size_t len)
{
    ssize_t n = nk_udp_send(t->fd, msg, len, NULL);
    if (n == -EAGAIN || n == -ENOBUFS) {
        t->blocked = 1;
        return 0;
    }
    if (n < 0) {
        if (n == -EMSGSIZE)
            fail(t, cli_fail(t->cmd, "%s: a %zu-byte datagram: %s", t->dest, len,
                             nk_strerror((int)n)));
        else
            fail(t, cli_fail(t->cmd, "%s: %s", t->dest, nk_strerror((int)n)));
        return -1;
    }
    t->sent++;
    return 1;
}

/* Send what can be sent now. Returns 1 when everything is sent, 0 when waiting, -1 failed. */
static int send_pending(dgram_tool *t)
{
    t->blocked = 0;
    if (t->nmsgs > 0) {
        while (t->next < t->nmsgs) {
            int rc = send_one(t, t->msgs[t->next], strlen(t->msgs[t->next]));
            if (rc <= 0)
                return rc;
            t->next++;
        }
        return 1;
    }
    for (;;) {
        char *start = nk_buf_rptr(&t->lines);
        size_t avail = nk_buf_len(&t->lines);
        char *nl = avail ? memchr(start, '\n', avail) : NULL;
        if (!nl && !(t->in_eof && avail > 0))
            break;
        size_t len = nl ? (size_t)(nl - start) : avail;
        int rc = send_one(t, start, len);
        if (rc <= 0)
            return rc;
        nk_buf_consume(&t->lines, nl ? len + 1 : len);
    }
    return t->in_eof ? 1 : 0;
}

static void on_wait_timeout(nk_loop *loop, nk_timer *timer)
{
    (void)loop;
    dgram_tool *t = timer->data;
    fail(t, cli_fail(t->cmd, "%s: timed out waiting for replies (%lu of %lu received)", t->dest,
                     t->received, t->sent));
}

static void send_step(dgram_tool *t)
{
    int rc = send_pending(t);
    if (rc < 0)
        return;
    int done = rc == 1;
    int reading = t->o->reply || t->o->show_replies;
    if (done && (!t->o->reply || t->received >= t->sent)) {
        nk_loop_stop(t->loop); /* exit_code stays CLI_OK */
        return;
    }
    if (done && !nk_timer_active(&t->wait))
        nk_timer_start(t->loop, &t->wait, (uint64_t)t->o->wait_ms, 0);
    unsigned want = (reading ? NK_READ : 0) | (t->blocked ? NK_WRITE : 0);
    set_watch(t, &t->io, &t->io_ev, want);
    /* stdin is read only while nothing waits for room in the socket. */
    set_watch(t, &t->in_io, &t->in_ev,
              t->nmsgs == 0 && !t->in_eof && !t->blocked ? NK_READ : 0);
}

static void send_on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    dgram_tool *t = io->data;
    if ((events & (NK_READ | NK_ERROR)) && (t->o->reply || t->o->show_replies)) {
        int n = receive(t);
        if (n < 0)
            return;
        t->received += (unsigned long)n;
    }
    send_step(t);
}

static void send_on_stdin(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    dgram_tool *t = io->data;
    ssize_t n = nk_buf_read_fd(&t->lines, io->fd, STDIN_CHUNK);
    if (n == 0) {
        t->in_eof = 1;
    } else if (n == -ENOBUFS) {
        fail(t, cli_fail(t->cmd, "stdin: a line longer than %d bytes", DGRAM_LIMIT_MAX));
        return;
    } else if (n < 0 && n != -EAGAIN && n != -EINTR) {
        fail(t, cli_fail(t->cmd, "stdin: %s", nk_strerror((int)n)));
        return;
    }
    send_step(t);
}

int dgram_send(const char *cmd, int fd, const char *dest, char **msgs, int nmsgs,
               const dgram_opts *o)
{
    dgram_tool t;
    int code = tool_init(&t, cmd, fd, o);
    if (code == 0) {
        t.dest = dest;
        t.msgs = msgs;
        t.nmsgs = nmsgs;
        nk_io_init(&t.io, fd, send_on_io, &t);
        nk_io_init(&t.in_io, STDIN_FILENO, send_on_stdin, &t);
        send_step(&t);
        code = tool_run(&t);
    }
    tool_free(&t);
    return code;
}
