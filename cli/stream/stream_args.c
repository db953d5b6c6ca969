/* The command line of tcp and unix listen|connect (stream.h): each option's value checked as
 * it comes, with its own message, then the checks that need them all and the operand. */
#include "cli.h"
#include "stream/stream.h"

#include <getopt.h> /* optind, for cli_one_operand */
#include <string.h>
#include <strings.h>
#include <unistd.h>

void stream_args_init(stream_args *a, const char *cmd, int unix_sock, int listening)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->unix_sock = unix_sock;
    a->listening = listening;
    a->pump.cmd = cmd;
    a->pump.frame_output = -1; /* chosen after the options: it depends on --frame and stdout */
}

/* --sockopt NAME=VALUE: the name must be one nk_sockopt_set knows (the value is checked when
 * it is set). 0 or CLI_USAGE, listing the known names. */
static int stream_check_sockopt_name(const char *cmd, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return cli_usage(cmd, "--sockopt wants NAME=VALUE, not '%s'", arg);
    size_t len = (size_t)(eq - arg);
    const char *const *names = nk_sockopt_names();
    for (size_t i = 0; names[i]; i++)
        if (strlen(names[i]) == len && strncasecmp(names[i], arg, len) == 0)
            return 0;
    char list[1024] = "";
    size_t used = 0;
    for (size_t i = 0; names[i] && used < sizeof list; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return cli_usage(cmd, "unknown socket option '%.*s' (known: %s)", (int)len, arg, list);
}

/* Returned by stream_pump_opt for a key that is not an option of the pump. */
enum { STREAM_NOT_PUMP_OPT = -1 };

/* The options of the pump (sp_opts): 0, an exit code, or STREAM_NOT_PUMP_OPT. */
static int stream_pump_opt(stream_args *a, int key, const char *value)
{
    int rc;
    switch (key) {
    case 'x':
        a->pump.hexdump = 1;
        return 0;
    case STREAM_OPT_CRLF:
        a->pump.crlf = 1;
        return 0;
    case STREAM_OPT_CLOSE_ON_EOF:
        a->pump.close_on_eof = 1;
        return 0;
    case STREAM_OPT_FRAME:
        if ((rc = nk_frame_kind_parse(value)) < 0)
            return cli_usage(a->cmd, "unknown framing '%s' (choose from line, len32)", value);
        a->pump.frame = rc;
        return 0;
    case STREAM_OPT_FRAME_OUTPUT:
        if (strcmp(value, "raw") == 0)
            a->pump.frame_output = SP_FRAME_OUT_RAW;
        else if (strcmp(value, "escaped") == 0)
            a->pump.frame_output = SP_FRAME_OUT_ESCAPED;
        else if (strcmp(value, "hex") == 0)
            a->pump.frame_output = SP_FRAME_OUT_HEX;
        else
            return cli_usage(a->cmd, "unknown frame output '%s' (choose from raw, escaped, hex)",
                             value);
        return 0;
    default:
        return STREAM_NOT_PUMP_OPT;
    }
}

int stream_on_opt(void *ctx, int key, const char *value)
{
    stream_args *a = ctx;
    int rc;
    switch (key) {
    case 'k': /* --keep-open for listen, --insecure for connect (as nc and curl have it) */
        if (a->listening)
            a->keep = 1;
        else
            a->tls.insecure = 1;
        return 0;
    case STREAM_OPT_KEEP_OPEN:
        if (!a->listening)
            return cli_usage(a->cmd, "--keep-open is for listen");
        a->keep = 1;
        return 0;
    case 'v':
        a->verbose = 1;
        return 0;
    case 'w':
        if (cli_parse_seconds(value, &a->timeout_ms) < 0 || a->timeout_ms == 0)
            return cli_usage(a->cmd, "invalid time '%s' for -w (seconds, more than 0)", value);
        return 0;
    case STREAM_OPT_SOCKOPT:
        if ((rc = stream_check_sockopt_name(a->cmd, value)) != 0)
            return rc;
        if (a->nsockopts == STREAM_MAX_SOCKOPTS)
            return cli_usage(a->cmd, "too many --sockopt (at most %d)", STREAM_MAX_SOCKOPTS);
        a->sockopts[a->nsockopts++] = value;
        return 0;
    default:
        if ((rc = stream_pump_opt(a, key, value)) != STREAM_NOT_PUMP_OPT)
            return rc;
        return cli_tls_option(&a->tls, key, value) ? 0 : CLI_USAGE;
    }
}

/* The operand as addresses: a unix path, the address to bind, or those to connect to. */
static int stream_args_addrs(stream_args *a)
{
    const char *text = a->text;
    int rc;
    if (a->unix_sock) {
        a->naddrs = 1;
        return cli_parse_unix_addr(a->cmd, text, SOCK_STREAM, &a->addrs[0]);
    }
    if (a->listening) {
        a->naddrs = 1;
        if ((rc = cli_parse_bind_addr(a->cmd, text, SOCK_STREAM, &a->addrs[0])) != 0)
            return rc;
        if (nk_addr_family(&a->addrs[0]) == AF_UNIX)
            return cli_usage(a->cmd, "'%s' is a unix address: use netkit unix listen", text);
        return 0;
    }
    if (strncmp(text, "unix:", 5) == 0)
        return cli_usage(a->cmd, "'%s' is a unix address: use netkit unix connect", text);
    size_t n = 0;
    rc = cli_parse_addrs(a->cmd, text, SOCK_STREAM, 0, a->addrs, STREAM_MAX_ADDRS, &n);
    a->naddrs = (int)n;
    return rc;
}

int stream_args_operand(stream_args *a, const char *text)
{
    a->text = text;
    int rc = cli_tls_check(a->cmd, &a->tls, a->listening);
    if (rc)
        return rc;
    if (a->tls.on && !a->listening) {
        a->server_name = cli_tls_server_name(&a->tls, a->unix_sock ? NULL : text,
                                             a->server_name_buf, sizeof a->server_name_buf);
        if (!a->server_name && !a->tls.pin && !a->tls.insecure)
            return cli_usage(a->cmd, "a unix socket has no host name for TLS to check: give "
                                     "--servername, --pin-sha256 or -k");
    }
    if ((rc = stream_args_addrs(a)) != 0)
        return rc;
    /* The peer's FIN ends the connection at once with -k (stdin is shared by the clients, its
     * end cannot be waited for) and for a person typing at a terminal. */
    a->pump.end_on_peer_eof = a->keep || isatty(STDIN_FILENO);
    a->pump.idle_ms = a->timeout_ms;
    if (a->pump.frame_output >= 0 && !a->pump.frame)
        return cli_usage(a->cmd, "--frame-output needs --frame");
    if (a->pump.frame_output < 0) /* a len32 message may hold "\n"; a terminal wants no controls */
        a->pump.frame_output = a->pump.frame == NK_FRAME_LEN32 || isatty(STDOUT_FILENO)
                                   ? SP_FRAME_OUT_ESCAPED
                                   : SP_FRAME_OUT_RAW;
    return 0;
}

int stream_parse(const cli_spec *spec, int argc, char **argv, stream_args *a)
{
    int first;
    int rc = cli_opt_parse(spec, argc, argv, stream_on_opt, a, &first);
    if (rc)
        return rc;
    optind = first;
    const char *text;
    if ((rc = cli_one_operand(a->cmd, argc, argv, a->unix_sock ? "PATH" : "ADDR", &text)) != 0)
        return rc;
    return stream_args_operand(a, text);
}
