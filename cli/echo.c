/* netkit echo serve: an echo server on the event loop, over TCP, UDP or Unix stream sockets.
 *
 * Stream connections read into one buffer per connection and write it straight back. A peer
 * that sends but does not read would make that buffer grow without end, so reading stops while
 * ECHO_HIGH_WATER bytes wait to be written and resumes once they drain: memory per connection
 * stays bounded and TCP flow control pushes back on the sender. End of input (half-close) is
 * answered by flushing what is pending, then closing.
 *
 * Datagrams are sent back to their sender one by one; when the socket cannot take a reply right
 * now, that one reply is kept and reading pauses until it is sent.
 */
#include "cli.h"
#include "cli_server.h"
#include "opt.h"

#include <errno.h>
#include <getopt.h> /* optind, for cli_one_operand */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Output allowed to wait for a slow reader before the connection stops reading. */
#define ECHO_HIGH_WATER (256 * 1024)
/* One read; a connection's buffer never holds more than HIGH_WATER + READ_CHUNK. */
#define ECHO_READ_CHUNK (64 * 1024)
#define ECHO_BUF_MAX (ECHO_HIGH_WATER + ECHO_READ_CHUNK)
/* Reads per readiness event, so that one fast sender cannot starve the other connections. */
#define ECHO_READS_PER_EVENT 8
/* Largest datagram (a UDP payload is at most 65507 bytes over IPv4, 65527 over IPv6). */
#define ECHO_DGRAM_MAX 65536
#define ECHO_DGRAMS_PER_EVENT 64
/* Connections accepted per readiness event before other watchers get a turn. */
#define ECHO_ACCEPTS_PER_EVENT 1024

typedef enum { PROTO_TCP, PROTO_UDP, PROTO_UNIX } echo_proto;

typedef struct echo_server echo_server;
typedef struct echo_conn echo_conn;

struct echo_conn {
    nk_io io;
    nk_buf buf;        /* read, not yet written back */
    unsigned interest; /* what io was last started with */
    int eof;           /* the peer finished sending */
    echo_server *srv;
    echo_conn *prev, *next;
};

struct echo_server {
    const char *cmd;
    nk_loop *loop;
    echo_proto proto;
    int lfd;
    nk_io lio;              /* udp: the socket */
    cli_acceptor accept;    /* tcp, unix: the listener */
    cli_stop_signals stop_signals;
    echo_conn *conns;
    size_t nconns;

    /* udp */
    char *dgram;
    size_t dgram_len;
    int dgram_pending; /* a reply waits for the socket to become writable */
    nk_addr dgram_peer;

    cli_unix_file unix_file; /* unix: the socket file to remove on exit */

    int warned_watch;
    int exit_code;
};

static const cli_opt serve_opts[] = {
    {"backend", 'b', "NAME", "event loop backend: epoll, uring, poll or select (default: "
                             "$NETKIT_BACKEND, else epoll)"},
    {"proto", 'p', "PROTO", "tcp (default; unix for a unix: ADDR), udp or unix"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand serve_operands[] = {
    {"ADDR", "HOST:PORT, [IPV6]:PORT, PORT (all interfaces), unix:PATH; with --proto unix a "
             "plain PATH too; port 0 picks a free port"},
    {NULL, NULL},
};

static void serve_notes(FILE *out)
{
    fprintf(out,
            "Once ready it prints \"listening on tcp://HOST:PORT\" (udp://HOST:PORT, unix:PATH) on\n"
            "stderr, with the real port. At most %d KiB wait per connection for a slow reader;\n"
            "reading pauses until they drain. A connection the backend cannot watch (select:\n"
            "descriptors past FD_SETSIZE) is closed; the others go on. SIGINT or SIGTERM closes\n"
            "everything, removes the unix socket file and exits 0.\n",
            ECHO_HIGH_WATER / 1024);
}

static const cli_spec serve_spec = {
    .cmd = "echo serve",
    .synopsis = "ADDR [--backend NAME] [--proto tcp|udp|unix]",
    .about = "Send every byte (tcp, unix) or datagram (udp) back to where it came from.\n",
    .operands = serve_operands,
    .opts = serve_opts,
    .notes = serve_notes,
};
CLI_SPEC_REGISTER(serve_spec);

/* ---- stream connections ------------------------------------------------------------------- */

static void conn_close(echo_conn *c)
{
    echo_server *srv = c->srv;
    nk_io_stop(srv->loop, &c->io);
    close(c->io.fd);
    nk_buf_free(&c->buf);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    free(c);
}

/* Write what is pending. 0 when done or the socket is full, negative on a dead connection. */
static int conn_flush(echo_conn *c)
{
    while (nk_buf_len(&c->buf) > 0) {
        ssize_t n = nk_buf_write_fd(&c->buf, c->io.fd);
        if (n == -EAGAIN || n == -EWOULDBLOCK || n == 0)
            return 0;
        if (n < 0)
            return (int)n;
    }
    /* Idle connections keep no buffer memory. */
    nk_buf_release(&c->buf);
    return 0;
}

/* Watch what the connection needs now, or close it when it is finished. Returns 0 when the
 * connection is still open. */
static int conn_update(echo_conn *c)
{
    size_t pending = nk_buf_len(&c->buf);
    unsigned want = 0;
    if (!c->eof && pending < ECHO_HIGH_WATER)
        want |= NK_READ;
    if (pending > 0)
        want |= NK_WRITE;
    if (want == 0) { /* end of input and everything echoed */
        conn_close(c);
        return -1;
    }
    if (want != c->interest) {
        int rc = nk_io_start(c->srv->loop, &c->io, want);
        if (rc < 0) {
            conn_close(c);
            return -1;
        }
        c->interest = want;
    }
    return 0;
}

static void conn_on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    echo_conn *c = io->data;
    if ((events & NK_ERROR) && nk_sock_error(io->fd) < 0) {
        conn_close(c);
        return;
    }
    if (!c->eof && (events & (NK_READ | NK_ERROR))) {
        /* The common case costs one read and one write and no allocation: read into the
         * stack, write straight back, and keep in the connection's buffer only what the
         * socket did not take (or everything, while older bytes are still queued). */
        char chunk[ECHO_READ_CHUNK];
        for (int i = 0; i < ECHO_READS_PER_EVENT && nk_buf_len(&c->buf) < ECHO_HIGH_WATER; i++) {
            ssize_t n = recv(io->fd, chunk, sizeof chunk, 0);
            if (n == 0) {
                c->eof = 1;
                break;
            }
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                conn_close(c); /* reset, or another error: nothing more can be echoed */
                return;
            }
            ssize_t w = 0;
            if (nk_buf_len(&c->buf) == 0) {
                w = send(io->fd, chunk, (size_t)n, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    conn_close(c);
                    return;
                }
                if (w < 0)
                    w = 0;
            }
            if (w < n && nk_buf_append(&c->buf, chunk + w, (size_t)(n - w)) < 0) {
                conn_close(c);
                return;
            }
            if ((size_t)n < sizeof chunk)
                break; /* a short read: the socket is drained, no need for an EAGAIN read */
        }
    }
    if (conn_flush(c) < 0) {
        conn_close(c);
        return;
    }
    conn_update(c);
}

static void conn_new(echo_server *srv, int fd)
{
    echo_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    nk_io_init(&c->io, fd, conn_on_io, c);
    nk_buf_init(&c->buf, ECHO_BUF_MAX);
    c->srv = srv;
    int rc = nk_io_start(srv->loop, &c->io, NK_READ);
    if (rc < 0) {
        /* The backend refuses this descriptor (select: fd >= FD_SETSIZE gives -ERANGE): close
         * this one connection and keep serving the others. Said once, not per connection. */
        if (!srv->warned_watch) {
            srv->warned_watch = 1;
            fprintf(stderr, "netkit: %s: the %s backend cannot watch fd %d (%s); closing such "
                            "connections\n",
                    srv->cmd, nk_loop_backend(srv->loop), fd, nk_strerror(rc));
        }
        close(fd);
        free(c);
        return;
    }
    c->interest = NK_READ;
    if (srv->proto == PROTO_TCP)
        nk_sock_set_nodelay(fd, 1);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
}

static void on_conn(cli_acceptor *a, int fd, const nk_addr *peer)
{
    (void)peer;
    conn_new(a->data, fd);
}

/* ---- datagrams ------------------------------------------------------------------------------ */

/* Send the reply in srv->dgram. 1 when done (sent, or dropped for good), 0 when it must wait. */
static int dgram_reply(echo_server *srv)
{
    for (int tries = 0; tries < 100; tries++) {
        ssize_t n = sendto(srv->lfd, srv->dgram, srv->dgram_len, MSG_NOSIGNAL,
                           &srv->dgram_peer.u.sa, srv->dgram_peer.len);
        if (n >= 0)
            return 1;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
            return 0;
        return 1; /* unreachable sender and the like: a datagram may be lost */
    }
    return 1;
}

static void dgram_on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    echo_server *srv = io->data;
    if (srv->dgram_pending) {
        if (!(events & (NK_WRITE | NK_ERROR)) || !dgram_reply(srv))
            return;
        srv->dgram_pending = 0;
        int rc = nk_io_start(loop, io, NK_READ);
        if (rc < 0) {
            srv->exit_code = cli_fail(srv->cmd, "cannot watch the socket: %s", nk_strerror(rc));
            nk_loop_stop(loop);
            return;
        }
    }
    for (int i = 0; i < ECHO_DGRAMS_PER_EVENT; i++) {
        srv->dgram_peer.len = sizeof srv->dgram_peer.u;
        ssize_t n = recvfrom(srv->lfd, srv->dgram, ECHO_DGRAM_MAX, MSG_TRUNC,
                             &srv->dgram_peer.u.sa, &srv->dgram_peer.len);
        if (n < 0) {
            if (errno == EINTR || errno == ECONNREFUSED)
                continue; /* ECONNREFUSED: an ICMP error about an earlier reply */
            return;       /* EAGAIN, or an error that retrying now would not clear */
        }
        if ((size_t)n > ECHO_DGRAM_MAX)
            continue; /* truncated: echoing part of it would be wrong */
        srv->dgram_len = (size_t)n;
        if (!dgram_reply(srv)) {
            srv->dgram_pending = 1;
            int rc = nk_io_start(loop, io, NK_WRITE);
            if (rc < 0) {
                srv->exit_code = cli_fail(srv->cmd, "cannot watch the socket: %s",
                                          nk_strerror(rc));
                nk_loop_stop(loop);
            }
            return;
        }
    }
}

/* ---- the server ------------------------------------------------------------------------------ */

static void server_free(echo_server *srv)
{
    /* conn_close unlinks only the connection it frees: take the next one first. */
    for (echo_conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    if (srv->loop) {
        if (srv->accept.loop)
            cli_acceptor_stop(&srv->accept);
        cli_stop_signals_stop(srv->loop, &srv->stop_signals);
        if (srv->lfd >= 0)
            nk_io_stop(srv->loop, &srv->lio);
    }
    if (srv->lfd >= 0)
        close(srv->lfd);
    cli_unix_file_remove(&srv->unix_file);
    free(srv->dgram);
    if (srv->loop)
        nk_loop_free(srv->loop);
}

static int parse_proto(const char *text, echo_proto *out)
{
    if (strcmp(text, "tcp") == 0)
        *out = PROTO_TCP;
    else if (strcmp(text, "udp") == 0)
        *out = PROTO_UDP;
    else if (strcmp(text, "unix") == 0)
        *out = PROTO_UNIX;
    else
        return -EINVAL;
    return 0;
}

/* What the command line asked for. */
typedef struct serve_args {
    const char *cmd;
    const char *backend;
    const char *proto_name; /* NULL: not given */
    echo_proto proto;
    const char *text;       /* ADDR as given */
    int is_unix_text;       /* ADDR starts with "unix:" */
    nk_addr addr;
} serve_args;

static int on_echo_opt(void *ctx, int key, const char *value)
{
    serve_args *a = ctx;
    switch (key) {
    case 'b':
        a->backend = value;
        return 0;
    case 'p':
        a->proto_name = value;
        if (parse_proto(value, &a->proto) < 0)
            return cli_usage(a->cmd, "unknown protocol '%s' (choose from tcp, udp, unix)", value);
        return 0;
    default:
        return CLI_USAGE;
    }
}

/* Options, then ADDR checked against the protocol. 0, CLI_OPT_HELP_SHOWN or an exit code. */
static int parse_echo_args(int argc, char **argv, serve_args *a)
{
    memset(a, 0, sizeof *a);
    a->cmd = argv[0];
    a->proto = PROTO_TCP;
    int first;
    int rc = cli_opt_parse(&serve_spec, argc, argv, on_echo_opt, a, &first);
    if (rc)
        return rc;
    optind = first;
    if ((rc = cli_one_operand(a->cmd, argc, argv, "ADDR", &a->text)) ||
        (rc = cli_check_backend(a->cmd, a->backend)))
        return rc;
    a->is_unix_text = strncmp(a->text, "unix:", 5) == 0;
    if (!a->proto_name && a->is_unix_text)
        a->proto = PROTO_UNIX;
    if (a->is_unix_text && a->proto != PROTO_UNIX)
        return cli_usage(a->cmd, "'%s' is a unix address: use --proto unix", a->text);
    int socktype = a->proto == PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
    /* --proto unix takes a plain path as well as unix:PATH. */
    if (a->proto == PROTO_UNIX)
        rc = cli_parse_unix_addr(a->cmd, a->text, socktype, &a->addr);
    else
        rc = cli_parse_bind_addr(a->cmd, a->text, socktype, &a->addr);
    if (rc)
        return rc;
    if (a->proto != PROTO_UNIX && nk_addr_family(&a->addr) == AF_UNIX)
        return cli_usage(a->cmd, "'%s' is a unix address: use --proto unix", a->text);
    return 0;
}

/* Bind and watch the socket: 0 or an exit code (after its message). */
static int echo_start(echo_server *srv, const serve_args *a)
{
    const char *cmd = a->cmd;
    int socktype = a->proto == PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
    if (a->proto == PROTO_UDP && !(srv->dgram = malloc(ECHO_DGRAM_MAX)))
        return cli_fail(cmd, "%s", nk_strerror(-ENOMEM));
    srv->lfd = nk_sock_listen(&a->addr, socktype, 0, 0);
    if (srv->lfd < 0)
        return cli_fail(cmd, "%s%s: %s", a->proto == PROTO_UNIX && !a->is_unix_text ? "unix:" : "",
                        a->text, nk_strerror(srv->lfd));
    if (a->proto == PROTO_UNIX)
        cli_unix_file_remember(&srv->unix_file, a->addr.u.un.sun_path);
    int rc;
    if (a->proto == PROTO_UDP) {
        nk_io_init(&srv->lio, srv->lfd, dgram_on_io, srv);
        rc = nk_io_start(srv->loop, &srv->lio, NK_READ);
    } else {
        cli_acceptor_init(&srv->accept, srv->loop, cmd, srv->lfd, ECHO_ACCEPTS_PER_EVENT, on_conn,
                          srv);
        rc = cli_acceptor_start(&srv->accept);
    }
    if (rc < 0)
        return cli_fail(cmd, "cannot watch the listener: %s", nk_strerror(rc));
    rc = cli_print_listening(a->proto == PROTO_UDP ? "udp" : "tcp", srv->lfd);
    if (rc < 0)
        return cli_fail(cmd, "getsockname: %s", nk_strerror(rc));
    return 0;
}

static int echo_serve(int argc, char **argv)
{
    serve_args a;
    int rc = parse_echo_args(argc, argv, &a);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;

    echo_server srv;
    memset(&srv, 0, sizeof srv);
    srv.cmd = a.cmd;
    srv.proto = a.proto;
    srv.lfd = -1;
    rc = nk_loop_new(a.backend, &srv.loop);
    if (rc < 0) {
        srv.loop = NULL;
        return cli_backend_fail(a.cmd, a.backend, rc);
    }
    /* Writes to a vanished peer must give EPIPE, not end the server. */
    signal(SIGPIPE, SIG_IGN);
    if ((rc = cli_stop_signals_start(srv.loop, &srv.stop_signals, NULL, NULL)) < 0)
        srv.exit_code = cli_fail(a.cmd, "cannot watch signals: %s", nk_strerror(rc));
    else
        srv.exit_code = echo_start(&srv, &a);
    if (srv.exit_code == CLI_OK) {
        rc = nk_loop_run(srv.loop, NK_RUN_DEFAULT);
        if (srv.exit_code == CLI_OK) /* a callback may have failed the run */
            srv.exit_code = srv.accept.exit_code; /* CLI_OK too without an acceptor */
        if (rc < 0 && srv.exit_code == CLI_OK)
            srv.exit_code = cli_fail(a.cmd, "event loop: %s", nk_strerror(rc));
    }
    int code = srv.exit_code;
    server_free(&srv);
    return code;
}

static const cli_cmd echo_commands[] = {
    {"serve", "echo server: ADDR [--backend NAME] [--proto tcp|udp|unix]", echo_serve},
    {NULL, NULL, NULL},
};

int cmd_echo(int argc, char **argv)
{
    return cli_dispatch("echo", echo_commands, argc, argv);
}
