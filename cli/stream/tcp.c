/* netkit tcp listen|connect|wait, and the stream half of netkit unix listen|connect.
 *
 * listen and connect put one connection at a time on the shared stdin/stdout pump
 * (stream/pump.c); this file parses the options, creates the sockets (so that --sockopt is
 * applied before connect() or listen(), where options such as SO_RCVBUF shape the handshake's
 * window; connect leaves trying each resolved address to nk_connector), and reports with -v.
 *
 * With --tls each connection's handshake is done before it is put on the pump, waiting at most
 * -w (or CLI_TLS_HANDSHAKE_MS): one connection at a time is served anyway, and a failure is
 * then one line (cli_tls.c has the options, contexts and the bounded handshake).
 *
 * tcp wait is in stream/tcp_wait.c.
 */
#include "cli.h"
#include "cli_tls.h"
#include "stream/pump.h"
#include "stream/stream.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define TCP_MAX_SOCKOPTS 32
/* Pending connections a sequential listener lets wait in its backlog. */
#define TCP_BACKLOG 16

typedef struct stream_tool {
    const char *cmd;
    int unix_sock, listening, verbose, keep;
    long timeout_ms;
    const char *sockopts[TCP_MAX_SOCKOPTS];
    size_t nsockopts;
    nk_loop *loop;
    stream_pump pump;
    int pump_ready;
    cli_stop_signals stop_signals;
    int exit_code;
    char peer_text[NK_ADDR_STRLEN];
    cli_tls_opts tls;
    nk_tls_ctx *tls_ctx; /* --tls */
    const char *server_name; /* connect --tls: the name the certificate must carry */
    char server_name_buf[256];

    /* connect */
    nk_addr addrs[STREAM_MAX_ADDRS];
    int naddrs;
    nk_connector connector;
    int connecting; /* the connector was initialised */
    char try_text[NK_ADDR_STRLEN];

    /* listen */
    int lfd;
    nk_acceptor acceptor;
    int acceptor_ready; /* the acceptor was initialised (lfd is open) */
    cli_unix_file unix_file; /* the socket file to remove on exit, if still ours */
} stream_tool;

enum { OPT_CRLF = 256, OPT_CLOSE_ON_EOF, OPT_FRAME, OPT_FRAME_OUTPUT, OPT_SOCKOPT, OPT_KEEP_OPEN };

/* -k is --keep-open for listen and --insecure for connect (as nc and curl have it). */
static const struct option stream_options[] = {
    {"keep-open", no_argument, NULL, OPT_KEEP_OPEN},
    {"verbose", no_argument, NULL, 'v'},
    {"hex", no_argument, NULL, 'x'},
    {"wait", required_argument, NULL, 'w'},
    {"crlf", no_argument, NULL, OPT_CRLF},
    {"close-on-eof", no_argument, NULL, OPT_CLOSE_ON_EOF},
    {"frame", required_argument, NULL, OPT_FRAME},
    {"frame-output", required_argument, NULL, OPT_FRAME_OUTPUT},
    {"sockopt", required_argument, NULL, OPT_SOCKOPT},
    {"tls", no_argument, NULL, CLI_TLS_OPT_TLS},
    {"tls-cert", required_argument, NULL, CLI_TLS_OPT_CERT},
    {"tls-key", required_argument, NULL, CLI_TLS_OPT_KEY},
    {"tls-self-signed", no_argument, NULL, CLI_TLS_OPT_SELF_SIGNED},
    {"cacert", required_argument, NULL, CLI_TLS_OPT_CACERT},
    {"pin-sha256", required_argument, NULL, CLI_TLS_OPT_PIN},
    {"insecure", no_argument, NULL, CLI_TLS_OPT_INSECURE},
    {"servername", required_argument, NULL, CLI_TLS_OPT_SERVERNAME},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void stream_help(FILE *out, int unix_sock, int listening)
{
    const char *noun = unix_sock ? "unix" : "tcp";
    if (listening)
        fprintf(out, "usage: netkit %s listen %s [-k] [options]\n\n", noun,
                unix_sock ? "PATH" : "ADDR");
    else
        fprintf(out, "usage: netkit %s connect %s [options]\n\n", noun, unix_sock ? "PATH" : "ADDR");
    fprintf(out,
            "%s, then copy stdin to the socket and the socket to stdout, both at once.\n"
            "EOF on stdin sends FIN (shutdown) and keeps reading until the peer closes.\n\n",
            listening ? "Wait for one client" : "Connect");
    if (unix_sock)
        fprintf(out, "  PATH                the socket path, with or without \"unix:\"\n"
                     "      --dgram         datagrams instead (netkit unix %s --dgram --help)\n",
                listening ? "listen" : "connect");
    else if (listening)
        fprintf(out, "  ADDR                HOST:PORT, [IPV6]:PORT or PORT (all interfaces); port "
                     "0 picks one\n");
    else
        fprintf(out, "  ADDR                HOST:PORT or [IPV6]:PORT; every address a name "
                     "resolves to is tried in turn\n");
    if (listening)
        fprintf(out, "  -k, --keep-open     after a client leaves, wait for the next one (one at a "
                     "time;\n"
                     "                      stdin goes to the current client, and the peer's "
                     "FIN ends\n"
                     "                      its connection)\n");
    fprintf(out,
            "  -w, --wait SEC      %sidle timeout: exit 1 \"timed out\"\n"
            "  -v, --verbose       addresses, descriptor, socket options and byte counts on "
            "stderr\n"
            "  -x, --hex           hex dump of the traffic on stderr ('>' sent, '<' received)\n"
            "      --crlf          send stdin's LF as CRLF\n"
            "      --close-on-eof  at stdin's EOF send what is left and quit, without waiting\n"
            "      --frame KIND    line or len32: each stdin line is sent as one message and "
            "each\n"
            "                      message received is printed as one line\n"
            "      --frame-output raw|escaped|hex\n"
            "                      how a received message is printed: escaped (\\\\, \\n, \\r,\n"
            "                      \\t, \\xNN; the default for len32 and on a terminal) keeps\n"
            "                      one message on one line; raw prints the bytes; hex as hex\n"
            "      --sockopt N=V   set a socket option before %s (repeatable; SO_RCVBUF,\n"
            "                      TCP_NODELAY, IP_TTL, ...; see man netkit)\n",
            listening ? "TLS handshake and " : "connect (per address), TLS handshake and ",
            listening ? "listening" : "connecting");
    cli_tls_help(out, listening);
    if (listening)
        fprintf(out, "      --cacert, --pin-sha256, --insecure, --servername  (connect only)\n");
    else
        fprintf(out,
                "      --keep-open, --tls-cert, --tls-key, --tls-self-signed  (listen only)\n");
    fprintf(out, "  -h, --help          show this help\n");
    if (!listening && unix_sock)
        fprintf(out, "\nA unix socket has no host name to check: --tls needs --servername,\n"
                     "--pin-sha256 or -k.\n");
    if (listening)
        fprintf(out, "\nOnce ready it prints \"listening on %s\" on stderr.\n",
                unix_sock ? "unix:PATH" : "tcp://HOST:PORT");
}

/* ---- verbose reports ---------------------------------------------------------------------- */

static void report_conn(stream_tool *t, int fd)
{
    nk_addr local, peer;
    char ltext[NK_ADDR_STRLEN] = "?", ptext[NK_ADDR_STRLEN] = "?";
    if (nk_sock_local(fd, &local) == 0)
        nk_addr_format(&local, ltext, sizeof ltext);
    if (nk_sock_peer(fd, &peer) == 0)
        nk_addr_format(&peer, ptext, sizeof ptext);
    if (t->unix_sock && strcmp(ptext, "unix:") == 0)
        snprintf(ptext, sizeof ptext, "unix:(unnamed)");
    snprintf(t->peer_text, sizeof t->peer_text, "%s", ptext);
    if (!t->verbose)
        return;
    fprintf(stderr, "%s: local %s, peer %s, fd %d\n", t->listening ? "accepted" : "connected",
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
    if (!t->unix_sock) {
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
    if (t->verbose)
        fprintf(stderr, "closed: peer %s, %llu bytes in, %llu bytes out\n", t->peer_text,
                (unsigned long long)p->bytes_in, (unsigned long long)p->bytes_out);
    int code = CLI_OK;
    switch (how) {
    case SP_END_DONE:
        break;
    case SP_END_TIMEOUT:
        code = cli_fail(t->cmd, "%s: timed out (idle for %ld ms)", t->peer_text, t->timeout_ms);
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
    if (t->listening && t->keep && how != SP_END_STDOUT && how != SP_END_STDIN) {
        start_accepting(t);
        return;
    }
    t->exit_code = code;
    nk_loop_stop(t->loop);
}

/* Apply every --sockopt. Returns 0 or an exit code (after printing why). */
static int apply_sockopts(stream_tool *t, int fd)
{
    for (size_t i = 0; i < t->nsockopts; i++) {
        int rc = nk_sockopt_set(fd, t->sockopts[i]);
        if (rc == -EINVAL || rc == -ENOPROTOOPT || rc == -ENOENT)
            return cli_usage(t->cmd, "--sockopt %s: %s", t->sockopts[i],
                             rc == -EINVAL ? "invalid value" : nk_strerror(rc));
        if (rc < 0)
            return cli_fail(t->cmd, "--sockopt %s: %s", t->sockopts[i], nk_strerror(rc));
    }
    return 0;
}

/* --tls: the handshake, bounded by -w or CLI_TLS_HANDSHAKE_MS. Returns 0 with *out set, an
 * exit code after saying why, or -1 for a client that left without a word (fd is still the
 * caller's). */
static int tls_handshake(stream_tool *t, int fd, nk_tls **out)
{
    char why[NK_TLS_ERR_MAX + 64] = "";
    long ms = t->timeout_ms > 0 ? t->timeout_ms : CLI_TLS_HANDSHAKE_MS;
    int rc = cli_tls_handshake(t->tls_ctx, fd, t->server_name, ms, out, why, sizeof why);
    if (rc < 0 && t->listening && cli_tls_closed_early(rc, why)) {
        /* A probe (tcp wait) that closed at once: a client that sent nothing, as without
         * TLS (-k waits for the next one, otherwise the command is done). */
        if (t->verbose)
            fprintf(stderr, "closed: peer %s, before the TLS handshake\n", t->peer_text);
        return -1;
    }
    if (rc < 0) {
        if (t->listening)
            return cli_fail(t->cmd, "TLS: %s (client %s)", why, t->peer_text);
        return cli_fail(t->cmd, "TLS: %s", why);
    }
    if (t->verbose)
        cli_tls_print_info(*out);
    return 0;
}

/* A listener with -k goes on with the next client after a failed one. */
static void conn_failed(stream_tool *t, int code)
{
    if (t->listening && t->keep) {
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
    if (t->verbose)
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
    if (t->verbose)
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
        t->exit_code = cli_fail(t->cmd, "%s: timed out after %ld ms", t->try_text, t->timeout_ms);
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
    if (t->timeout_ms > 0) /* -w bounds each address, as it bounds each idle period */
        o.attempt_timeout_ms = t->timeout_ms > INT_MAX ? INT_MAX : (int)t->timeout_ms;
    nk_connector_init(&t->connector, t->loop, on_connected, t);
    t->connector.on_attempt = connect_attempt_failed;
    t->connecting = 1;
    int rc = nk_connector_start(&t->connector, t->addrs, (size_t)t->naddrs, SOCK_STREAM, &o);
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
    if (!t->keep) { /* one client only, as nc -l: later ones are refused, not queued */
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
    if (t->unix_sock)
        cli_unix_file_remember(&t->unix_file, addr->u.un.sun_path);
    return 0;
}

/* ---- the command ------------------------------------------------------------------------------ */

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

static int check_sockopt_name(const char *cmd, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return cli_usage(cmd, "--sockopt wants NAME=VALUE, not '%s'", arg);
    const char *const *names = nk_sockopt_names();
    for (size_t i = 0; names[i]; i++)
        if (strlen(names[i]) == (size_t)(eq - arg) && strncasecmp(names[i], arg, (size_t)(eq - arg)) == 0)
            return 0;
    char list[1024] = "";
    size_t used = 0;
    for (size_t i = 0; names[i] && used < sizeof list; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return cli_usage(cmd, "unknown socket option '%.*s' (known: %s)", (int)(eq - arg), arg, list);
}

int stream_cmd(int argc, char **argv, int unix_sock, int listening)
{
    stream_tool t;
    memset(&t, 0, sizeof t);
    t.cmd = argv[0];
    t.unix_sock = unix_sock;
    t.listening = listening;
    t.lfd = -1;
    sp_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.cmd = t.cmd;
    opts.frame_output = -1; /* chosen after the options: it depends on --frame and stdout */

    optind = 0; /* glibc: full re-initialisation, argv differs from any earlier parse */
    opterr = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, ":kvxw:h", stream_options, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (listening)
                t.keep = 1;
            else
                t.tls.insecure = 1;
            break;
        case OPT_KEEP_OPEN:
            if (!listening)
                return cli_usage(t.cmd, "--keep-open is for listen");
            t.keep = 1;
            break;
        case 'v':
            t.verbose = 1;
            break;
        case 'x':
            opts.hexdump = 1;
            break;
        case 'w':
            if (cli_parse_seconds(optarg, &t.timeout_ms) < 0 || t.timeout_ms == 0)
                return cli_usage(t.cmd, "invalid time '%s' for -w (seconds, more than 0)", optarg);
            break;
        case OPT_CRLF:
            opts.crlf = 1;
            break;
        case OPT_CLOSE_ON_EOF:
            opts.close_on_eof = 1;
            break;
        case OPT_FRAME:
            if ((rc = nk_frame_kind_parse(optarg)) < 0)
                return cli_usage(t.cmd, "unknown framing '%s' (choose from line, len32)", optarg);
            opts.frame = rc;
            break;
        case OPT_FRAME_OUTPUT:
            if (strcmp(optarg, "raw") == 0)
                opts.frame_output = SP_FRAME_OUT_RAW;
            else if (strcmp(optarg, "escaped") == 0)
                opts.frame_output = SP_FRAME_OUT_ESCAPED;
            else if (strcmp(optarg, "hex") == 0)
                opts.frame_output = SP_FRAME_OUT_HEX;
            else
                return cli_usage(t.cmd, "unknown frame output '%s' (choose from raw, escaped, "
                                        "hex)", optarg);
            break;
        case OPT_SOCKOPT:
            if ((rc = check_sockopt_name(t.cmd, optarg)) != 0)
                return rc;
            if (t.nsockopts == TCP_MAX_SOCKOPTS)
                return cli_usage(t.cmd, "too many --sockopt (at most %d)", TCP_MAX_SOCKOPTS);
            t.sockopts[t.nsockopts++] = optarg;
            break;
        case 'h':
            stream_help(stdout, unix_sock, listening);
            return CLI_OK;
        default:
            if (cli_tls_option(&t.tls, c, optarg))
                break;
            return cli_getopt_error(t.cmd, c, argv);
        }
    }
    const char *text;
    if ((rc = cli_one_operand(t.cmd, argc, argv, unix_sock ? "PATH" : "ADDR", &text)) != 0)
        return rc;
    if ((rc = cli_tls_check(t.cmd, &t.tls, listening)) != 0)
        return rc;
    if (t.tls.on && !listening) {
        t.server_name = cli_tls_server_name(&t.tls, unix_sock ? NULL : text, t.server_name_buf,
                                            sizeof t.server_name_buf);
        if (!t.server_name && !t.tls.pin && !t.tls.insecure)
            return cli_usage(t.cmd, "a unix socket has no host name for TLS to check: give "
                                    "--servername, --pin-sha256 or -k");
    }

    nk_addr bind_addr;
    if (unix_sock) {
        if ((rc = cli_parse_unix_addr(t.cmd, text, SOCK_STREAM, &t.addrs[0])) != 0)
            return rc;
        t.naddrs = 1;
        bind_addr = t.addrs[0];
    } else if (listening) {
        if ((rc = cli_parse_bind_addr(t.cmd, text, SOCK_STREAM, &bind_addr)) != 0)
            return rc;
        if (nk_addr_family(&bind_addr) == AF_UNIX)
            return cli_usage(t.cmd, "'%s' is a unix address: use netkit unix listen", text);
    } else {
        if (strncmp(text, "unix:", 5) == 0)
            return cli_usage(t.cmd, "'%s' is a unix address: use netkit unix connect", text);
        size_t n;
        if ((rc = cli_parse_addrs(t.cmd, text, SOCK_STREAM, 0, t.addrs, STREAM_MAX_ADDRS, &n)) != 0)
            return rc;
        t.naddrs = (int)n;
    }

    /* The peer's FIN ends the connection at once with -k (stdin is shared by the clients, its
     * end cannot be waited for) and for a person typing at a terminal. */
    opts.end_on_peer_eof = t.keep || isatty(STDIN_FILENO);
    opts.idle_ms = t.timeout_ms;
    if (opts.frame_output >= 0 && !opts.frame)
        return cli_usage(t.cmd, "--frame-output needs --frame");
    if (opts.frame_output < 0) /* a len32 message may hold "\n"; a terminal wants no controls */
        opts.frame_output = opts.frame == NK_FRAME_LEN32 || isatty(STDOUT_FILENO)
                                ? SP_FRAME_OUT_ESCAPED
                                : SP_FRAME_OUT_RAW;

    rc = nk_loop_new(NULL, &t.loop);
    if (rc < 0)
        return cli_fail(t.cmd, "cannot start the event loop: %s", nk_strerror(rc));
    signal(SIGPIPE, SIG_IGN);
    if ((rc = cli_stop_signals_start(t.loop, &t.stop_signals, NULL, NULL)) < 0) {
        tool_free(&t);
        return cli_fail(argv[0], "cannot watch signals: %s", nk_strerror(rc));
    }
    if ((rc = sp_init(&t.pump, t.loop, &opts)) < 0) {
        tool_free(&t);
        return cli_fail(argv[0], "%s", nk_strerror(rc));
    }
    t.pump_ready = 1;
    t.pump.data = &t;

    if (listening) {
        /* The certificate first: its line is out before anyone can connect. */
        int code = t.tls.on ? cli_tls_server_ctx(t.cmd, &t.tls, &bind_addr, &t.tls_ctx) : 0;
        if (code == 0)
            code = open_listener(&t, text, &bind_addr);
        if (code) {
            tool_free(&t);
            return code;
        }
        nk_acceptor_init(&t.acceptor, t.loop, t.lfd, on_accepted, &t);
        t.acceptor.per_event = 1;
        t.acceptor.on_error = on_accept_error;
        t.acceptor_ready = 1;
        start_accepting(&t);
        if ((rc = cli_print_listening("tcp", t.lfd)) < 0) {
            tool_free(&t);
            return cli_fail(argv[0], "getsockname: %s", nk_strerror(rc));
        }
    } else {
        int code = t.tls.on ? cli_tls_client_ctx(t.cmd, &t.tls, &t.tls_ctx) : 0;
        if (code) {
            tool_free(&t);
            return code;
        }
        start_connecting(&t);
    }
    if (t.exit_code == CLI_OK) {
        rc = nk_loop_run(t.loop, NK_RUN_DEFAULT);
        if (rc < 0 && t.exit_code == CLI_OK)
            t.exit_code = cli_fail(t.cmd, "event loop: %s", nk_strerror(rc));
    }
    int code = t.exit_code;
    tool_free(&t);
    return code;
}

static int tcp_listen(int argc, char **argv) { return stream_cmd(argc, argv, 0, 1); }
static int tcp_connect(int argc, char **argv) { return stream_cmd(argc, argv, 0, 0); }

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
