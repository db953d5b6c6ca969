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

#include <errno.h>
#include <getopt.h>
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

static const struct option serve_options[] = {
    {"backend", required_argument, NULL, 'b'},
    {"proto", required_argument, NULL, 'p'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void serve_help(FILE *out)
{
    const char *const *names = nk_loop_backends();
    fprintf(out,
            "usage: netkit echo serve ADDR [--backend NAME] [--proto tcp|udp|unix]\n"
            "\n"
            "Send every byte (tcp, unix) or datagram (udp) back to where it came from.\n"
            "\n"
            "  ADDR                HOST:PORT, [IPV6]:PORT, PORT (all interfaces), unix:PATH;\n"
            "                      with --proto unix a plain PATH too; port 0 picks a free port\n"
            "  -b, --backend NAME  event loop backend:");
    for (size_t i = 0; names[i]; i++)
        fprintf(out, "%s %s", i ? "," : "", names[i]);
    fprintf(out,
            "\n"
            "                      (default: $NETKIT_BACKEND, else the first)\n"
            "  -p, --proto PROTO   tcp (default; unix for a unix: ADDR), udp or unix\n"
            "  -h, --help          show this help\n"
            "\n"
            "Once ready it prints \"listening on tcp://HOST:PORT\" (udp://HOST:PORT, unix:PATH) on\n"
            "stderr, with the real port. At most %d KiB wait per connection for a slow reader;\n"
            "reading pauses until they drain. A connection the backend cannot watch (select:\n"
            "descriptors past FD_SETSIZE) is closed; the others go on. SIGINT or SIGTERM closes\n"
            "everything, removes the unix socket file and exits 0.\n",
            ECHO_HIGH_WATER / 1024);
}

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

static int echo_serve(int argc, char **argv)
{
    const char *cmd = argv[0];
    const char *backend = NULL;
    const char *proto_name = NULL;
    echo_proto proto = PROTO_TCP;

    optind = 0; /* glibc: full re-initialisation, argv differs from any earlier parse */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":b:p:h", serve_options, NULL)) != -1) {
        switch (c) {
        case 'b':
            backend = optarg;
            break;
        case 'p':
            proto_name = optarg;
            if (parse_proto(optarg, &proto) < 0)
                return cli_usage(cmd, "unknown protocol '%s' (choose from tcp, udp, unix)",
                                 optarg);
            break;
        case 'h':
            serve_help(stdout);
            return CLI_OK;
        default:
            return cli_getopt_error(cmd, c, argv);
        }
    }
    const char *text;
    int rc = cli_one_operand(cmd, argc, argv, "ADDR", &text);
    if (rc)
        return rc;
    rc = cli_check_backend(cmd, backend);
    if (rc)
        return rc;

    int is_unix_text = strncmp(text, "unix:", 5) == 0;
    if (!proto_name && is_unix_text)
        proto = PROTO_UNIX;
    if (is_unix_text && proto != PROTO_UNIX)
        return cli_usage(cmd, "'%s' is a unix address: use --proto unix", text);

    nk_addr addr;
    int socktype = proto == PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
    /* --proto unix takes a plain path as well as unix:PATH. */
    if (proto == PROTO_UNIX)
        rc = cli_parse_unix_addr(cmd, text, socktype, &addr);
    else
        rc = cli_parse_bind_addr(cmd, text, socktype, &addr);
    if (rc)
        return rc;
    if (proto != PROTO_UNIX && nk_addr_family(&addr) == AF_UNIX)
        return cli_usage(cmd, "'%s' is a unix address: use --proto unix", text);

    echo_server srv;
    memset(&srv, 0, sizeof srv);
    srv.cmd = cmd;
    srv.proto = proto;
    srv.lfd = -1;

    rc = nk_loop_new(backend, &srv.loop);
    if (rc < 0) {
        srv.loop = NULL;
        return cli_backend_fail(cmd, backend, rc);
    }
    /* Writes to a vanished peer must give EPIPE, not end the server. */
    signal(SIGPIPE, SIG_IGN);
    if ((rc = cli_stop_signals_start(srv.loop, &srv.stop_signals, NULL, NULL)) < 0) {
        int code = cli_fail(cmd, "cannot watch signals: %s", nk_strerror(rc));
        server_free(&srv);
        return code;
    }

    if (proto == PROTO_UDP && !(srv.dgram = malloc(ECHO_DGRAM_MAX))) {
        server_free(&srv);
        return cli_fail(cmd, "%s", nk_strerror(-ENOMEM));
    }

    srv.lfd = nk_sock_listen(&addr, socktype, 0, 0);
    if (srv.lfd < 0) {
        int code = cli_fail(cmd, "%s%s: %s", proto == PROTO_UNIX && !is_unix_text ? "unix:" : "",
                            text, nk_strerror(srv.lfd));
        server_free(&srv);
        return code;
    }
    if (proto == PROTO_UNIX)
        cli_unix_file_remember(&srv.unix_file, addr.u.un.sun_path);

    if (proto == PROTO_UDP) {
        nk_io_init(&srv.lio, srv.lfd, dgram_on_io, &srv);
        rc = nk_io_start(srv.loop, &srv.lio, NK_READ);
    } else {
        cli_acceptor_init(&srv.accept, srv.loop, cmd, srv.lfd, ECHO_ACCEPTS_PER_EVENT, on_conn,
                          &srv);
        rc = cli_acceptor_start(&srv.accept);
    }
    if (rc < 0) {
        int code = cli_fail(cmd, "cannot watch the listener: %s", nk_strerror(rc));
        server_free(&srv);
        return code;
    }

    rc = cli_print_listening(proto == PROTO_UDP ? "udp" : "tcp", srv.lfd);
    if (rc < 0) {
        int code = cli_fail(cmd, "getsockname: %s", nk_strerror(rc));
        server_free(&srv);
        return code;
    }

    rc = nk_loop_run(srv.loop, NK_RUN_DEFAULT);
    if (srv.exit_code == CLI_OK)
        srv.exit_code = srv.accept.exit_code; /* CLI_OK too when there is no acceptor */
    if (rc < 0 && srv.exit_code == CLI_OK)
        srv.exit_code = cli_fail(cmd, "event loop: %s", nk_strerror(rc));
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
