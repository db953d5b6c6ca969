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
#include "stdin_watch.h"
#include "opt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h> /* optind, for cli_one_operand */
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
    stdin_watch input; /* stdin, the lines to send */
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

static void on_stdin(void *data)
{
    read_stdin(data);
}

static void in_watch(bc_send *s, int on)
{
    stdin_watch_set(&s->input, on && !s->in_eof);
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

static const cli_opt bc_send_opts[] = {
    {"to", 't', "ADDR", "destination IPv4 address (default 255.255.255.255, the limited broadcast "
                        "address; 127.255.255.255 stays on loopback)"},
    {"interval", 'i', "SEC", "seconds between repeats of MSG (default 1)"},
    {"count", 'c', "N", "send MSG N times (default 1)"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand bc_send_operands[] = {
    {"PORT", "destination port (1 to 65535)"},
    {"MSG", "the message; without it, each stdin line is one datagram"},
    {NULL, NULL},
};

static const cli_spec bc_send_spec = {
    .cmd = "broadcast send",
    .synopsis = "PORT [MSG] [--to ADDR] [--interval SEC] [--count N]",
    .about = "Send UDP broadcast datagrams to PORT (SO_BROADCAST).\n",
    .operands = bc_send_operands,
    .opts = bc_send_opts,
};
CLI_SPEC_REGISTER(bc_send_spec);

/* What the command line of broadcast send asked for. */
typedef struct bc_send_args {
    const char *cmd;
    const char *to;
    long interval_ms, count;
    nk_addr dst;
    const char *msg; /* NULL: stdin lines */
} bc_send_args;

static int on_bc_send_opt(void *ctx, int key, const char *value)
{
    bc_send_args *a = ctx;
    switch (key) {
    case 't':
        a->to = value;
        return 0;
    case 'i':
        if (cli_parse_seconds(value, &a->interval_ms) < 0)
            return cli_usage(a->cmd, "invalid interval '%s' (seconds)", value);
        return 0;
    case 'c':
        if (cli_parse_long(value, 1, 1000000000L, &a->count) < 0)
            return cli_usage(a->cmd, "invalid count '%s' (1 or more)", value);
        return 0;
    default:
        return CLI_USAGE;
    }
}

/* Options, PORT and MSG. 0, CLI_OPT_HELP_SHOWN or an exit code. */
static int parse_bc_send_args(int argc, char **argv, bc_send_args *a)
{
    memset(a, 0, sizeof *a);
    a->cmd = argv[0];
    a->to = "255.255.255.255";
    a->interval_ms = 1000;
    a->count = 1;
    int first;
    int rc = cli_opt_parse(&bc_send_spec, argc, argv, on_bc_send_opt, a, &first);
    if (rc)
        return rc;
    if (first >= argc)
        return cli_usage(a->cmd, "missing PORT");
    if (argc - first > 2)
        return cli_usage(a->cmd, "unexpected argument '%s'", argv[first + 2]);
    int port = 0;
    if ((rc = parse_port(a->cmd, argv[first], 1, &port)) != 0 ||
        (rc = parse_ipv4(a->cmd, "--to", a->to, port, &a->dst)) != 0)
        return rc;
    a->msg = first + 1 < argc ? argv[first + 1] : NULL;
    if (a->msg && strlen(a->msg) > BC_DGRAM_MAX)
        return cli_usage(a->cmd, "message too long for a datagram (at most %d bytes)",
                         BC_DGRAM_MAX);
    return 0;
}

/* The broadcast socket and the loop with its watchers: 0 or an exit code (nothing kept). */
static int bc_send_open(bc_send *s, const bc_send_args *a)
{
    memset(s, 0, sizeof *s);
    s->cmd = a->cmd;
    s->dst = a->dst;
    s->msg = a->msg;
    s->count = a->count;
    s->interval_ms = a->interval_ms;
    s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return cli_fail(a->cmd, "socket: %s", strerror(errno));
    int rc = nk_sock_set_broadcast(s->fd, 1);
    if (rc < 0) {
        close(s->fd);
        return cli_fail(a->cmd, "SO_BROADCAST: %s", nk_strerror(rc));
    }
    rc = nk_loop_new(NULL, &s->loop);
    if (rc < 0) {
        close(s->fd);
        return cli_fail(a->cmd, "event loop: %s", nk_strerror(rc));
    }
    nk_buf_init(&s->in, BC_DGRAM_MAX + 2 + BC_STDIN_CHUNK);
    nk_io_init(&s->sock_io, s->fd, on_sock_writable, s);
    stdin_watch_init(&s->input, s->loop, on_stdin, s);
    nk_timer_init(&s->timer, on_tick, s);
    cli_stop_signals_start(s->loop, &s->stop_signals, NULL, NULL);
    return 0;
}

static void bc_send_close(bc_send *s)
{
    nk_timer_stop(s->loop, &s->timer);
    nk_io_stop(s->loop, &s->sock_io);
    stdin_watch_set(&s->input, 0);
    cli_stop_signals_stop(s->loop, &s->stop_signals);
    nk_loop_free(s->loop);
    nk_buf_free(&s->in);
    close(s->fd);
}

static int broadcast_send(int argc, char **argv)
{
    bc_send_args a;
    int rc = parse_bc_send_args(argc, argv, &a);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    bc_send s;
    if ((rc = bc_send_open(&s, &a)) != 0)
        return rc;
    if (s.msg)
        nk_timer_start(s.loop, &s.timer, 0, 0);
    else
        stdin_watch_set(&s.input, 1);
    rc = nk_loop_run(s.loop, NK_RUN_DEFAULT);
    if (rc < 0)
        s.exit_code = cli_fail(a.cmd, "event loop: %s", nk_strerror(rc));
    bc_send_close(&s);
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

static const cli_opt bc_listen_opts[] = {
    {"bind", 'b', "ADDR", "local IPv4 address to bind (default 0.0.0.0; a unicast address does "
                          "not receive broadcasts)"},
    {"verbose", 'v', NULL, "prefix each line with the sender's address"},
    {"count", 'c', "N", "exit after N datagrams"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand bc_listen_operands[] = {
    {"PORT", "port to listen on (0 picks a free one)"},
    {NULL, NULL},
};

static void bc_listen_notes(FILE *out)
{
    fputs("Prints \"listening on udp://HOST:PORT\" on stderr once ready; SIGINT or SIGTERM\n"
          "ends it (exit 0).\n", out);
}

static const cli_spec bc_listen_spec = {
    .cmd = "broadcast listen",
    .synopsis = "PORT [--bind ADDR] [-v] [--count N]",
    .about = "Print every UDP datagram (broadcast or not) arriving on PORT as one line. Several\n"
             "listeners may share the port (SO_REUSEADDR): each receives every broadcast.\n",
    .operands = bc_listen_operands,
    .opts = bc_listen_opts,
    .notes = bc_listen_notes,
};
CLI_SPEC_REGISTER(bc_listen_spec);

/* What the command line of broadcast listen asked for (the rest is in bc_listen). */
typedef struct bc_listen_args {
    const char *bind_text;
    int port;
    nk_addr addr;
    bc_listen *l;
} bc_listen_args;

static int on_bc_listen_opt(void *ctx, int key, const char *value)
{
    bc_listen_args *a = ctx;
    switch (key) {
    case 'b':
        a->bind_text = value;
        return 0;
    case 'v':
        a->l->verbose = 1;
        return 0;
    case 'c':
        if (cli_parse_long(value, 1, 1000000000L, &a->l->count) < 0)
            return cli_usage(a->l->cmd, "invalid count '%s' (1 or more)", value);
        return 0;
    default:
        return CLI_USAGE;
    }
}

/* Options and PORT into a and l. 0, CLI_OPT_HELP_SHOWN or an exit code. */
static int parse_bc_listen_args(int argc, char **argv, bc_listen_args *a, bc_listen *l)
{
    memset(a, 0, sizeof *a);
    memset(l, 0, sizeof *l);
    l->cmd = argv[0];
    l->fd = -1;
    a->l = l;
    a->bind_text = "0.0.0.0";
    int first;
    int rc = cli_opt_parse(&bc_listen_spec, argc, argv, on_bc_listen_opt, a, &first);
    if (rc)
        return rc;
    optind = first;
    if (cli_one_operand(l->cmd, argc, argv, "PORT", NULL) != 0)
        return CLI_USAGE;
    if ((rc = parse_port(l->cmd, argv[first], 0, &a->port)) != 0)
        return rc;
    return parse_ipv4(l->cmd, "--bind", a->bind_text, a->port, &a->addr);
}

/* The socket bound with SO_REUSEADDR and the datagram buffer: 0 or an exit code. */
static int bc_listen_open(bc_listen *l, const bc_listen_args *a)
{
    l->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0)
        return cli_fail(l->cmd, "socket: %s", strerror(errno));
    int one = 1;
    if (setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(l->fd, &a->addr.u.sa, a->addr.len) < 0) {
        int err = errno;
        close(l->fd);
        return cli_fail(l->cmd, "cannot bind %s:%d: %s", a->bind_text, a->port, strerror(err));
    }
    l->dgram = malloc(BC_DGRAM_MAX + 1);
    return 0;
}

static int broadcast_listen(int argc, char **argv)
{
    bc_listen_args a;
    bc_listen l;
    int rc = parse_bc_listen_args(argc, argv, &a, &l);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    if ((rc = bc_listen_open(&l, &a)) != 0)
        return rc;
    nk_loop *loop = NULL;
    rc = l.dgram ? nk_loop_new(NULL, &loop) : -ENOMEM;
    if (rc < 0) {
        free(l.dgram);
        close(l.fd);
        return cli_fail(l.cmd, "event loop: %s", nk_strerror(rc));
    }
    cli_stop_signals stop_signals;
    cli_stop_signals_start(loop, &stop_signals, NULL, NULL);
    nk_io_init(&l.io, l.fd, on_dgram, &l);
    rc = nk_io_start(loop, &l.io, NK_READ);
    if (rc < 0)
        l.exit_code = cli_fail(l.cmd, "cannot watch the socket: %s", nk_strerror(rc));
    else if (cli_print_listening("udp", l.fd) < 0)
        l.exit_code = cli_fail(l.cmd, "getsockname failed");
    else if ((rc = nk_loop_run(loop, NK_RUN_DEFAULT)) < 0)
        l.exit_code = cli_fail(l.cmd, "event loop: %s", nk_strerror(rc));
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
