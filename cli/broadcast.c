/* netkit broadcast: UDP broadcast, one sender to many listeners on one port.
 *
 *   send PORT [MSG]   SO_BROADCAST socket; MSG --count times every --interval seconds (a loop
 *                     timer), or each stdin line as one datagram
 *   listen PORT       every datagram arriving on PORT as one line on stdout
 *
 * Listeners share the port with SO_REUSEADDR only. For broadcast (and multicast) datagrams
 * Linux delivers a copy to every socket bound to the port with SO_REUSEADDR (udp4_lib_mcast_
 * deliver), which is what "many listeners" need. SO_REUSEPORT would deliver broadcasts to all
 * as well, but it load-balances unicast datagrams between the sockets, so a unicast sent to the
 * port would reach only one listener; measured on loopback with 127.255.255.255, REUSEADDR
 * alone gives every listener every message (tests/integration/test_broadcast.py).
 */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP). */
#define BC_DGRAM_MAX 65507
#define BC_DGRAMS_PER_EVENT 64
#define BC_STDIN_CHUNK 65536

typedef struct bc_send {
    const char *cmd;
    nk_loop *loop;
    int fd;
    nk_addr dst;
    nk_io sock_io;   /* watched for NK_WRITE only while a datagram waits for room */
    nk_io in_io;     /* stdin, when it can be watched */
    nk_defer in_defer; /* stdin that is a regular file (epoll cannot watch those) */
    int in_polled;
    nk_buf in;       /* stdin bytes not yet sent as lines */
    int in_eof;
    int waiting;     /* the first line in `in` could not be sent yet */
    nk_timer timer;
    const char *msg;
    long count, sent, interval_ms;
    cli_stop_signals stop_signals;
    int exit_code;
} bc_send;

static int parse_port(const char *cmd, const char *text, int min, int *out)
{
    long v;
    if (cli_parse_long(text, min, 65535, &v) < 0)
        return cli_usage(cmd, "invalid port '%s' (%d to 65535)", text, min);
    *out = (int)v;
    return 0;
}

static int parse_ipv4(const char *cmd, const char *opt, const char *text, int port, nk_addr *out)
{
    memset(out, 0, sizeof *out);
    out->u.in.sin_family = AF_INET;
    out->u.in.sin_port = htons((uint16_t)port);
    out->len = sizeof out->u.in;
    if (inet_pton(AF_INET, text, &out->u.in.sin_addr) != 1)
        return cli_usage(cmd, "%s: invalid IPv4 address '%s'", opt, text);
    return 0;
}

/* 1 sent, 0 no room now (wait for NK_WRITE), negative: failed for good. */
static int bc_sendto(bc_send *s, const void *data, size_t len)
{
    for (;;) {
        ssize_t n = sendto(s->fd, data, len, MSG_NOSIGNAL, &s->dst.u.sa, s->dst.len);
        if (n >= 0)
            return 1;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
            return 0;
        return -errno;
    }
}

static void send_done(bc_send *s, int code)
{
    s->exit_code = code;
    nk_loop_stop(s->loop);
}

static void in_watch(bc_send *s, int on);

/* Send every complete line buffered from stdin (and the last, unterminated one at EOF). */
static void send_lines(bc_send *s)
{
    for (;;) {
        char *p = nk_buf_rptr(&s->in);
        size_t avail = nk_buf_len(&s->in);
        char *nl = avail ? memchr(p, '\n', avail) : NULL; /* empty: p may be NULL */
        size_t len, take;
        if (nl) {
            len = (size_t)(nl - p);
            take = len + 1;
        } else if (s->in_eof && avail > 0) {
            len = take = avail;
        } else {
            break;
        }
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (len > BC_DGRAM_MAX) {
            send_done(s, cli_fail(s->cmd, "line of %zu bytes is too long for a datagram "
                                  "(at most %d)", len, BC_DGRAM_MAX));
            return;
        }
        int rc = bc_sendto(s, p, len);
        if (rc < 0) {
            send_done(s, cli_fail(s->cmd, "send: %s", nk_strerror(rc)));
            return;
        }
        if (rc == 0) { /* socket full: pause stdin until it drains */
            s->waiting = 1;
            in_watch(s, 0);
            nk_io_start(s->loop, &s->sock_io, NK_WRITE);
            return;
        }
        nk_buf_consume(&s->in, take);
    }
    s->waiting = 0;
    nk_io_stop(s->loop, &s->sock_io);
    if (s->in_eof) {
        send_done(s, CLI_OK);
        return;
    }
    if (nk_buf_len(&s->in) > BC_DGRAM_MAX + 2) {
        send_done(s, cli_fail(s->cmd, "line too long for a datagram (at most %d bytes)",
                              BC_DGRAM_MAX));
        return;
    }
    in_watch(s, 1);
}

static void read_stdin(bc_send *s)
{
    ssize_t n = nk_buf_read_fd(&s->in, STDIN_FILENO, BC_STDIN_CHUNK);
    if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR)
        return;
    if (n < 0) {
        send_done(s, cli_fail(s->cmd, "reading stdin: %s", nk_strerror((int)n)));
        return;
    }
    if (n == 0) {
        s->in_eof = 1;
        in_watch(s, 0);
    }
    send_lines(s);
}

static void on_stdin(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    read_stdin(io->data);
}

static void on_stdin_defer(nk_loop *loop, nk_defer *d)
{
    (void)loop;
    bc_send *s = d->data;
    read_stdin(s);
}

static void in_watch(bc_send *s, int on)
{
    if (s->in_polled) {
        if (on && !s->in_eof)
            nk_defer_start(s->loop, &s->in_defer);
        else
            nk_defer_stop(s->loop, &s->in_defer);
    } else if (on && !s->in_eof) {
        nk_io_start(s->loop, &s->in_io, NK_READ);
    } else {
        nk_io_stop(s->loop, &s->in_io);
    }
}

static void on_sock_writable(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    send_lines(io->data);
}

static void on_tick(nk_loop *loop, nk_timer *t)
{
    bc_send *s = t->data;
    int rc = bc_sendto(s, s->msg, strlen(s->msg));
    if (rc < 0) {
        send_done(s, cli_fail(s->cmd, "send: %s", nk_strerror(rc)));
        return;
    }
    if (rc == 0) {  /* no room: try again shortly rather than lose a counted message */
        nk_timer_start(loop, t, 1, 0);
        return;
    }
    if (++s->sent >= s->count) {
        send_done(s, CLI_OK);
        return;
    }
    nk_timer_start(loop, t, (uint64_t)s->interval_ms, 0);
}

static void send_help(FILE *out)
{
    fputs("usage: netkit broadcast send PORT [MSG] [--to ADDR] [--interval SEC] [--count N]\n"
          "\n"
          "Send UDP broadcast datagrams to PORT (SO_BROADCAST).\n"
          "\n"
          "  PORT              destination port (1 to 65535)\n"
          "  MSG               the message; without it, each stdin line is one datagram\n"
          "  --to ADDR         destination IPv4 address (default 255.255.255.255, the limited\n"
          "                    broadcast address; 127.255.255.255 stays on loopback)\n"
          "  -i, --interval S  seconds between repeats of MSG (default 1)\n"
          "  -c, --count N     send MSG N times (default 1)\n"
          "  -h, --help        show this help\n", out);
}

static int broadcast_send(int argc, char **argv)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},
        {"interval", required_argument, NULL, 'i'},
        {"count", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    const char *to = "255.255.255.255";
    long interval_ms = 1000, count = 1;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":t:i:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            to = optarg;
            break;
        case 'i':
            if (cli_parse_seconds(optarg, &interval_ms) < 0)
                return cli_usage(cmd, "invalid interval '%s' (seconds)", optarg);
            break;
        case 'c':
            if (cli_parse_long(optarg, 1, 1000000000L, &count) < 0)
                return cli_usage(cmd, "invalid count '%s' (1 or more)", optarg);
            break;
        case 'h':
            send_help(stdout);
            return CLI_OK;
        default:
            return cli_getopt_error(cmd, c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage(cmd, "missing PORT");
    if (argc - optind > 2)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind + 2]);
    bc_send s;
    memset(&s, 0, sizeof s);
    s.cmd = cmd;
    s.fd = -1;
    int port = 0, rc;
    if ((rc = parse_port(cmd, argv[optind], 1, &port)) != 0)
        return rc;
    if ((rc = parse_ipv4(cmd, "--to", to, port, &s.dst)) != 0)
        return rc;
    s.msg = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (s.msg && strlen(s.msg) > BC_DGRAM_MAX)
        return cli_usage(cmd, "message too long for a datagram (at most %d bytes)", BC_DGRAM_MAX);
    s.count = count;
    s.interval_ms = interval_ms;

    s.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0)
        return cli_fail(cmd, "socket: %s", strerror(errno));
    rc = nk_sock_set_broadcast(s.fd, 1);
    if (rc < 0) {
        close(s.fd);
        return cli_fail(cmd, "SO_BROADCAST: %s", nk_strerror(rc));
    }
    rc = nk_loop_new(NULL, &s.loop);
    if (rc < 0) {
        close(s.fd);
        return cli_fail(cmd, "event loop: %s", nk_strerror(rc));
    }
    nk_buf_init(&s.in, BC_DGRAM_MAX + 2 + BC_STDIN_CHUNK);
    nk_io_init(&s.sock_io, s.fd, on_sock_writable, &s);
    nk_io_init(&s.in_io, STDIN_FILENO, on_stdin, &s);
    nk_defer_init(&s.in_defer, on_stdin_defer, &s);
    nk_timer_init(&s.timer, on_tick, &s);
    cli_stop_signals_start(s.loop, &s.stop_signals, NULL, NULL);
    if (s.msg) {
        nk_timer_start(s.loop, &s.timer, 0, 0);
    } else if (nk_io_start(s.loop, &s.in_io, NK_READ) < 0) {
        /* epoll cannot watch a regular file (EPERM); such input is always ready anyway. */
        s.in_polled = 1;
        nk_defer_start(s.loop, &s.in_defer);
    }
    rc = nk_loop_run(s.loop, NK_RUN_DEFAULT);
    if (rc < 0)
        s.exit_code = cli_fail(cmd, "event loop: %s", nk_strerror(rc));
    nk_timer_stop(s.loop, &s.timer);
    nk_io_stop(s.loop, &s.sock_io);
    nk_io_stop(s.loop, &s.in_io);
    nk_defer_stop(s.loop, &s.in_defer);
    cli_stop_signals_stop(s.loop, &s.stop_signals);
    nk_loop_free(s.loop);
    nk_buf_free(&s.in);
    close(s.fd);
    return s.exit_code;
}

/* ---- listen --------------------------------------------------------------------------------- */

typedef struct bc_listen {
    const char *cmd;
    int fd;
    int verbose;
    long count, got;  /* exit after count datagrams (0: never) */
    char *dgram;
    nk_io io;
    int exit_code;
} bc_listen;

static void on_dgram(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    bc_listen *l = io->data;
    for (int i = 0; i < BC_DGRAMS_PER_EVENT; i++) {
        nk_addr from;
        from.len = sizeof from.u;
        ssize_t n = recvfrom(l->fd, l->dgram, BC_DGRAM_MAX + 1, MSG_TRUNC, &from.u.sa, &from.len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        size_t len = (size_t)n > BC_DGRAM_MAX ? BC_DGRAM_MAX : (size_t)n;
        if (len > 0 && l->dgram[len - 1] == '\n') /* a sender's line ending is not doubled */
            len--;
        if (l->verbose) {
            char text[NK_ADDR_STRLEN];
            if (nk_addr_format(&from, text, sizeof text) < 0)
                strcpy(text, "?");
            printf("%s: ", text);
        }
        fwrite(l->dgram, 1, len, stdout);
        putchar('\n');
        if (l->count && ++l->got >= l->count) {
            nk_loop_stop(loop);
            break;
        }
    }
    if (fflush(stdout) != 0) {
        l->exit_code = cli_fail(l->cmd, "writing stdout: %s", strerror(errno));
        nk_loop_stop(loop);
    }
}

static void listen_help(FILE *out)
{
    fputs("usage: netkit broadcast listen PORT [--bind ADDR] [-v] [--count N]\n"
          "\n"
          "Print every UDP datagram (broadcast or not) arriving on PORT as one line. Several\n"
          "listeners may share the port (SO_REUSEADDR): each receives every broadcast.\n"
          "\n"
          "  PORT            port to listen on (0 picks a free one)\n"
          "  -b, --bind ADDR local IPv4 address to bind (default 0.0.0.0; a unicast address\n"
          "                  does not receive broadcasts)\n"
          "  -v, --verbose   prefix each line with the sender's address\n"
          "  -c, --count N   exit after N datagrams\n"
          "  -h, --help      show this help\n"
          "\n"
          "Prints \"listening on udp://HOST:PORT\" on stderr once ready; SIGINT or SIGTERM\n"
          "ends it (exit 0).\n", out);
}

static int broadcast_listen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"bind", required_argument, NULL, 'b'},
        {"verbose", no_argument, NULL, 'v'},
        {"count", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    const char *bind_text = "0.0.0.0";
    bc_listen l;
    memset(&l, 0, sizeof l);
    l.cmd = cmd;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":b:vc:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            bind_text = optarg;
            break;
        case 'v':
            l.verbose = 1;
            break;
        case 'c':
            if (cli_parse_long(optarg, 1, 1000000000L, &l.count) < 0)
                return cli_usage(cmd, "invalid count '%s' (1 or more)", optarg);
            break;
        case 'h':
            listen_help(stdout);
            return CLI_OK;
        default:
            return cli_getopt_error(cmd, c, argv);
        }
    }
    if (cli_one_operand(cmd, argc, argv, "PORT", NULL) != 0)
        return CLI_USAGE;
    int port = 0, rc;
    nk_addr addr;
    if ((rc = parse_port(cmd, argv[optind], 0, &port)) != 0)
        return rc;
    if ((rc = parse_ipv4(cmd, "--bind", bind_text, port, &addr)) != 0)
        return rc;

    l.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l.fd < 0)
        return cli_fail(cmd, "socket: %s", strerror(errno));
    int one = 1;
    if (setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(l.fd, &addr.u.sa, addr.len) < 0) {
        int err = errno;
        close(l.fd);
        return cli_fail(cmd, "cannot bind %s:%d: %s", bind_text, port, strerror(err));
    }
    l.dgram = malloc(BC_DGRAM_MAX + 1);
    nk_loop *loop = NULL;
    rc = l.dgram ? nk_loop_new(NULL, &loop) : -ENOMEM;
    if (rc < 0) {
        free(l.dgram);
        close(l.fd);
        return cli_fail(cmd, "event loop: %s", nk_strerror(rc));
    }
    cli_stop_signals stop_signals;
    cli_stop_signals_start(loop, &stop_signals, NULL, NULL);
    nk_io_init(&l.io, l.fd, on_dgram, &l);
    rc = nk_io_start(loop, &l.io, NK_READ);
    if (rc < 0)
        l.exit_code = cli_fail(cmd, "cannot watch the socket: %s", nk_strerror(rc));
    else if (cli_print_listening("udp", l.fd) < 0)
        l.exit_code = cli_fail(cmd, "getsockname failed");
    else if ((rc = nk_loop_run(loop, NK_RUN_DEFAULT)) < 0)
        l.exit_code = cli_fail(cmd, "event loop: %s", nk_strerror(rc));
    nk_io_stop(loop, &l.io);
    cli_stop_signals_stop(loop, &stop_signals);
    nk_loop_free(loop);
    free(l.dgram);
    close(l.fd);
    return l.exit_code;
}

int cmd_broadcast(int argc, char **argv)
{
    static const cli_cmd verbs[] = {
        {"send", "send broadcast datagrams (MSG, or stdin lines)", broadcast_send},
        {"listen", "print the datagrams that arrive on a port", broadcast_listen},
        {NULL, NULL, NULL},
    };
    return cli_dispatch("broadcast", verbs, argc, argv);
}
