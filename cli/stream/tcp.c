/* netkit tcp listen|connect, and the stream half of netkit unix listen|connect.
 *
 * listen and connect put one connection at a time on the shared stdin/stdout pump
 * (stream/pump.c); this file runs what stream/stream_args.c parsed: it creates the sockets (so
 * that --sockopt is applied before connect() or listen(), where options such as SO_RCVBUF shape
 * the handshake's window; connect leaves trying each resolved address to nk_connector), and
 * reports with -v.
 *
 * With --tls each connection's handshake is done before it is put on the pump, waiting at most
 * -w (or CLI_TLS_HANDSHAKE_MS): one connection at a time is served anyway, and a failure is
 * then one line (cli_tls.c has the options, contexts and the bounded handshake).
 *
 * tcp wait is in stream/tcp_wait.c.
 */
#include "cli.h"
#include "stream/pump.h"
#include "stream/stream.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* Pending connections a sequential listener lets wait in its backlog. */
#define TCP_BACKLOG 16

typedef struct stream_tool {
    const stream_args *a; /* the command line */
    const char *cmd;
    nk_loop *loop;
    stream_pump pump;
    int pump_ready;
    cli_stop_signals stop_signals;
    int exit_code;
    char peer_text[NK_ADDR_STRLEN];
    nk_tls_ctx *tls_ctx; /* --tls */

    /* connect */
    nk_connector connector;
    int connecting; /* the connector was initialised */
    char try_text[NK_ADDR_STRLEN];

    /* listen */
    int lfd;
    nk_acceptor acceptor;
    int acceptor_ready; /* the acceptor was initialised (lfd is open) */
    cli_unix_file unix_file; /* the socket file to remove on exit, if still ours */
} stream_tool;

/* ---- verbose reports ---------------------------------------------------------------------- */

static void report_conn(stream_tool *t, int fd)
{
    nk_addr local, peer;
    char ltext[NK_ADDR_STRLEN] = "?", ptext[NK_ADDR_STRLEN] = "?";
    if (nk_sock_local(fd, &local) == 0)
        nk_addr_format(&local, ltext, sizeof ltext);
    if (nk_sock_peer(fd, &peer) == 0)
        nk_addr_format(&peer, ptext, sizeof ptext);
    if (t->a->unix_sock && strcmp(ptext, "unix:") == 0)
        snprintf(ptext, sizeof ptext, "unix:(unnamed)");
    snprintf(t->peer_text, sizeof t->peer_text, "%s", ptext);
    if (!t->a->verbose)
        return;
    fprintf(stderr, "%s: local %s, peer %s, fd %d\n", t->a->listening ? "accepted" : "connected",
            ltext, ptext, fd);
    static const char *const tcp_opts[] = {"SO_RCVBUF", "SO_SNDBUF", "TCP_NODELAY",
                                           "SO_KEEPALIVE", NULL};
    fprintf(stderr, "socket options:");
    for (size_t i = 0; tcp_opts[i]; i++) {
        int v;
        if (nk_sockopt_get(fd, tcp_opts[i], &v) == 0)
            fprintf(stderr, " %s=%d", tcp_opts[i], v);
    }
    int v;
    if (!t->a->unix_sock) {
        const char *ttl = nk_addr_family(&local) == AF_INET6 ? "IPV6_UNICAST_HOPS" : "IP_TTL";
        if (nk_sockopt_get(fd, ttl, &v) == 0)
            fprintf(stderr, " %s=%d", ttl, v);
    }
    fputc('\n', stderr);
}

/* ---- the end of a connection -------------------------------------------------------------- */

static void start_accepting(stream_tool *t);

static void on_end(stream_pump *p, int how, int err)
{
    stream_tool *t = p->data;
    if (t->a->verbose)
        fprintf(stderr, "closed: peer %s, %llu bytes in, %llu bytes out\n", t->peer_text,
                (unsigned long long)p->bytes_in, (unsigned long long)p->bytes_out);
    int code = CLI_OK;
    switch (how) {
    case SP_END_DONE:
        break;
    case SP_END_TIMEOUT:
        code = cli_fail(t->cmd, "%s: timed out (idle for %ld ms)", t->peer_text, t->a->timeout_ms);
        break;
    case SP_END_SOCK:
        if (sp_tls_error(p))
            code = cli_fail(t->cmd, "%s: TLS: %s", t->peer_text, sp_tls_error(p));
        else
            code = cli_fail(t->cmd, "%s: %s", t->peer_text, nk_strerror(err));
        break;
    case SP_END_FRAME:
        code = cli_fail(t->cmd, "%s: bad framing from the peer: %s", t->peer_text,
                        nk_strerror(err));
        break;
    case SP_END_STDIN:
        code = cli_fail(t->cmd, "stdin: %s", nk_strerror(err));
        break;
    default:
        code = cli_fail(t->cmd, "stdout: %s", nk_strerror(err));
        break;
    }
    sp_detach(p);
    /* With -k a failed client is reported and the next one served; stdout or stdin failing
     * affects every later client, so it ends the command. */
    if (t->a->listening && t->a->keep && how != SP_END_STDOUT && how != SP_END_STDIN) {
        start_accepting(t);
        return;
    }
    t->exit_code = code;
    nk_loop_stop(t->loop);
}

/* Apply every --sockopt. Returns 0 or an exit code (after printing why). */
static int apply_sockopts(stream_tool *t, int fd)
{
    for (size_t i = 0; i < t->a->nsockopts; i++) {
        int rc = nk_sockopt_set(fd, t->a->sockopts[i]);
        if (rc == -EINVAL || rc == -ENOPROTOOPT || rc == -ENOENT)
            return cli_usage(t->cmd, "--sockopt %s: %s", t->a->sockopts[i],
                             rc == -EINVAL ? "invalid value" : nk_strerror(rc));
        if (rc < 0)
            return cli_fail(t->cmd, "--sockopt %s: %s", t->a->sockopts[i], nk_strerror(rc));
    }
    return 0;
}

/* --tls: the handshake, bounded by -w or CLI_TLS_HANDSHAKE_MS. Returns 0 with *out set, an
 * exit code after saying why, or -1 for a client that left without a word (fd is still the
 * caller's). */
static int tls_handshake(stream_tool *t, int fd, nk_tls **out)
{
    char why[NK_TLS_ERR_MAX + 64] = "";
    long ms = t->a->timeout_ms > 0 ? t->a->timeout_ms : CLI_TLS_HANDSHAKE_MS;
    int rc = cli_tls_handshake(t->tls_ctx, fd, t->a->server_name, ms, out, why, sizeof why);
    if (rc < 0 && t->a->listening && cli_tls_closed_early(rc, why)) {
        /* A probe (tcp wait) that closed at once: a client that sent nothing, as without
         * TLS (-k waits for the next one, otherwise the command is done). */
        if (t->a->verbose)
            fprintf(stderr, "closed: peer %s, before the TLS handshake\n", t->peer_text);
        return -1;
    }
    if (rc < 0) {
        if (t->a->listening)
            return cli_fail(t->cmd, "TLS: %s (client %s)", why, t->peer_text);
        return cli_fail(t->cmd, "TLS: %s", why);
    }
    if (t->a->verbose)
        cli_tls_print_info(*out);
    return 0;
}

/* A listener with -k goes on with the next client after a failed one. */
static void conn_failed(stream_tool *t, int code)
{
    if (t->a->listening && t->a->keep) {
        start_accepting(t);
        return;
    }
    t->exit_code = code;
    nk_loop_stop(t->loop);
}

static void attach(stream_tool *t, int fd)
{
    report_conn(t, fd);
    nk_tls *tls = NULL;
    int code = t->tls_ctx ? tls_handshake(t, fd, &tls) : 0;
    if (code) {
        close(fd);
        conn_failed(t, code < 0 ? CLI_OK : code);
        return;
    }
    int rc = sp_attach_tls(&t->pump, fd, tls, on_end);
    if (rc < 0) {
        nk_tls_free(tls);
        close(fd);
        t->exit_code = cli_fail(t->cmd, "cannot watch the connection: %s", nk_strerror(rc));
        nk_loop_stop(t->loop);
    }
}

/* ---- connect -------------------------------------------------------------------------------- */

/* Each attempt's socket gets --sockopt before connect(). A refused option ends the command:
 * it would be refused for every address. */
static int connect_setup(int fd, const nk_addr *addr, void *data)
{
    stream_tool *t = data;
    nk_addr_format(addr, t->try_text, sizeof t->try_text);
    if (t->a->verbose)
        fprintf(stderr, "trying %s\n", t->try_text);
    int code = apply_sockopts(t, fd);
    if (code) {
        t->exit_code = code;
        return -ECANCELED;
    }
    return 0;
}

static void connect_attempt_failed(nk_connector *c, const nk_addr *addr, int err)
{
    stream_tool *t = c->data;
    nk_addr_format(addr, t->try_text, sizeof t->try_text);
    if (t->a->verbose)
        fprintf(stderr, "netkit: %s: %s: %s\n", t->cmd, t->try_text, nk_strerror(err));
}

/* The connector's end: attach the connection, or report the last attempt's failure. */
static void connect_result(stream_tool *t, int fd_or_err)
{
    if (fd_or_err >= 0) {
        attach(t, fd_or_err);
        return;
    }
    if (t->exit_code != CLI_OK) { /* --sockopt refused: already said */
    } else if (fd_or_err == -ETIMEDOUT) {
        t->exit_code =
            cli_fail(t->cmd, "%s: timed out after %ld ms", t->try_text, t->a->timeout_ms);
    } else {
        t->exit_code = cli_fail(t->cmd, "%s: %s", t->try_text, nk_strerror(fd_or_err));
    }
    nk_loop_stop(t->loop);
}

static void on_connected(nk_connector *c, int fd_or_err)
{
    connect_result(c->data, fd_or_err);
}

static void start_connecting(stream_tool *t)
{
    nk_connect_opts o = {.size = sizeof o, .setup = connect_setup, .setup_data = t};
    if (t->a->timeout_ms > 0) /* -w bounds each address, as it bounds each idle period */
        o.attempt_timeout_ms = t->a->timeout_ms > INT_MAX ? INT_MAX : (int)t->a->timeout_ms;
    nk_connector_init(&t->connector, t->loop, on_connected, t);
    t->connector.on_attempt = connect_attempt_failed;
    t->connecting = 1;
    int rc = nk_connector_start(&t->connector, t->a->addrs, (size_t)t->a->naddrs, SOCK_STREAM, &o);
    if (rc < 0)
        connect_result(t, rc);
}

/* ---- listen --------------------------------------------------------------------------------- */

/* One client at a time: the acceptor takes one connection, then waits until it ends. */
static void on_accepted(nk_acceptor *a, int fd, const nk_addr *peer)
{
    (void)peer;
    stream_tool *t = a->data;
    nk_acceptor_stop(a);
    if (!t->a->keep) { /* one client only, as nc -l: later ones are refused, not queued */
        close(t->lfd);
        t->lfd = -1;
    }
    int code = apply_sockopts(t, fd);
    if (code) {
        close(fd);
        t->exit_code = code;
        nk_loop_stop(t->loop);
        return;
    }
    attach(t, fd);
}

static void on_accept_error(nk_acceptor *a, int err, int paused)
{
    stream_tool *t = a->data;
    if (paused) {
        fprintf(stderr, "netkit: %s: accept: %s; pausing for %u ms (said once)\n", t->cmd,
                nk_strerror(err), a->pause_ms);
        return;
    }
    t->exit_code = cli_fail(t->cmd, "cannot watch the listener: %s", nk_strerror(err));
    nk_loop_stop(t->loop);
}

static void start_accepting(stream_tool *t)
{
    int rc = nk_acceptor_start(&t->acceptor);
    if (rc < 0) {
        t->exit_code = cli_fail(t->cmd, "cannot watch the listener: %s", nk_strerror(rc));
        nk_loop_stop(t->loop);
    }
}

/* --sockopt on the listening socket before bind() and listen(): accepted sockets inherit
 * options such as SO_RCVBUF, which must be set before the handshake to shape its window. */
static int listen_setup(int fd, const nk_addr *addr, void *data)
{
    (void)addr;
    stream_tool *t = data;
    int code = apply_sockopts(t, fd);
    if (code) {
        t->exit_code = code;
        return -ECANCELED;
    }
    return 0;
}

/* Create the listening socket. Returns 0 or an exit code. nk_sock_listen replaces a stale
 * unix socket file (one nobody answers on) safely, and gives an IP listener SO_REUSEADDR
 * (a restarted listener binds while old connections sit in TIME_WAIT) and "[::]" both
 * stacks. */
static int open_listener(stream_tool *t, const char *text, const nk_addr *addr)
{
    t->lfd = nk_sock_listen_setup(addr, SOCK_STREAM, 0, TCP_BACKLOG, listen_setup, t);
    if (t->lfd < 0) {
        int code = t->exit_code != CLI_OK
                       ? t->exit_code
                       : cli_fail(t->cmd, "%s: %s", text, nk_strerror(t->lfd));
        t->exit_code = CLI_OK;
        t->lfd = -1;
        return code;
    }
    if (t->a->unix_sock)
        cli_unix_file_remember(&t->unix_file, addr->u.un.sun_path);
    return 0;
}

/* ---- the run ------------------------------------------------------------------------------ */

static void tool_free(stream_tool *t)
{
    if (t->pump_ready)
        sp_free(&t->pump);
    if (t->loop) {
        cli_stop_signals_stop(t->loop, &t->stop_signals);
        if (t->connecting)
            nk_connector_stop(&t->connector);
        if (t->acceptor_ready)
            nk_acceptor_stop(&t->acceptor);
    }
    if (t->lfd >= 0)
        close(t->lfd);
    nk_tls_ctx_free(t->tls_ctx);
    cli_unix_file_remove(&t->unix_file);
    if (t->loop)
        nk_loop_free(t->loop);
}

/* The loop, the stop signals and the pump. 0 or an exit code (tool_free undoes what was
 * done either way). */
static int stream_tool_init(stream_tool *t, const stream_args *a)
{
    memset(t, 0, sizeof *t);
    t->a = a;
    t->cmd = a->cmd;
    t->lfd = -1;
    int rc = nk_loop_new(NULL, &t->loop);
    if (rc < 0) {
        t->loop = NULL;
        return cli_fail(t->cmd, "cannot start the event loop: %s", nk_strerror(rc));
    }
    signal(SIGPIPE, SIG_IGN);
    if ((rc = cli_stop_signals_start(t->loop, &t->stop_signals, NULL, NULL)) < 0)
        return cli_fail(t->cmd, "cannot watch signals: %s", nk_strerror(rc));
    if ((rc = sp_init(&t->pump, t->loop, &a->pump)) < 0)
        return cli_fail(t->cmd, "%s", nk_strerror(rc));
    t->pump_ready = 1;
    t->pump.data = t;
    return 0;
}

/* The certificate first (its line is out before anyone can connect), then the socket and the
 * acceptor, then the readiness line. 0 or an exit code. */
static int stream_start_listening(stream_tool *t)
{
    const stream_args *a = t->a;
    int code = a->tls.on ? cli_tls_server_ctx(t->cmd, &a->tls, &a->addrs[0], &t->tls_ctx) : 0;
    if (code == 0)
        code = open_listener(t, a->text, &a->addrs[0]);
    if (code)
        return code;
    nk_acceptor_init(&t->acceptor, t->loop, t->lfd, on_accepted, t);
    t->acceptor.per_event = 1;
    t->acceptor.on_error = on_accept_error;
    t->acceptor_ready = 1;
    start_accepting(t);
    int rc = cli_print_listening("tcp", t->lfd);
    if (rc < 0)
        return cli_fail(t->cmd, "getsockname: %s", nk_strerror(rc));
    return 0;
}

static int stream_start_connecting(stream_tool *t)
{
    int code = t->a->tls.on ? cli_tls_client_ctx(t->cmd, &t->a->tls, &t->tls_ctx) : 0;
    if (code == 0)
        start_connecting(t);
    return code;
}

int stream_run(const stream_args *a)
{
    stream_tool t;
    int code = stream_tool_init(&t, a);
    if (code == CLI_OK)
        code = a->listening ? stream_start_listening(&t) : stream_start_connecting(&t);
    if (code == CLI_OK && t.exit_code == CLI_OK) { /* starting may have failed already */
        int rc = nk_loop_run(t.loop, NK_RUN_DEFAULT);
        if (rc < 0 && t.exit_code == CLI_OK)
            t.exit_code = cli_fail(t.cmd, "event loop: %s", nk_strerror(rc));
    }
    if (code == CLI_OK)
        code = t.exit_code;
    tool_free(&t);
    return code;
}

/* ---- the commands ------------------------------------------------------------------------- */

static int tcp_stream_cmd(const cli_spec *spec, int argc, char **argv, int listening)
{
    stream_args a;
    stream_args_init(&a, argv[0], 0, listening);
    int rc = stream_parse(spec, argc, argv, &a);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    return stream_run(&a);
}

static int tcp_listen(int argc, char **argv)
{
    return tcp_stream_cmd(&tcp_listen_spec, argc, argv, 1);
}

static int tcp_connect(int argc, char **argv)
{
    return tcp_stream_cmd(&tcp_connect_spec, argc, argv, 0);
}

static const cli_cmd tcp_commands[] = {
    {"listen", "wait for a client: ADDR [-k] [-v] [-x] [--frame KIND]", tcp_listen},
    {"connect", "connect: ADDR [-w SEC] [-v] [-x] [--frame KIND]", tcp_connect},
    {"wait", "wait until ADDR accepts connections: ADDR [--timeout SEC]", tcp_wait},
    {NULL, NULL, NULL},
};

int cmd_tcp(int argc, char **argv)
{
    return cli_dispatch("tcp", tcp_commands, argc, argv);
}
