/* The stream commands: netkit tcp listen|connect|wait and the stream half of netkit unix
 * listen|connect.
 *
 * tcp and unix listen|connect share their options (stream/stream_opts.c has the four option
 * tables, stream/stream_args.c turns a command line into a stream_args) and their run
 * (stream_run in stream/tcp.c: one connection at a time on the stdin/stdout pump).
 */
#ifndef NETKIT_CLI_STREAM_H
#define NETKIT_CLI_STREAM_H

#include "cli_tls.h"
#include "opt.h"
#include "stream/pump.h"

/* Resolved addresses tried in turn by tcp connect and tcp wait. */
#define STREAM_MAX_ADDRS 16
/* --sockopt may be given this many times. */
#define STREAM_MAX_SOCKOPTS 32

/* Keys of the long-only stream options (the TLS ones are CLI_TLS_OPT_*; -k, -w, -v and -x are
 * their letters). */
enum {
    STREAM_OPT_CRLF = CLI_OPT_LONG,
    STREAM_OPT_CLOSE_ON_EOF,
    STREAM_OPT_FRAME,
    STREAM_OPT_FRAME_OUTPUT,
    STREAM_OPT_SOCKOPT,
    STREAM_OPT_KEEP_OPEN,
};

/* The option tables (stream/stream_opts.c). The unix ones hold the --dgram options too. */
extern const cli_spec tcp_listen_spec, tcp_connect_spec, unix_listen_spec, unix_connect_spec;

/* What a stream command line asked for. */
typedef struct stream_args {
    const char *cmd;
    int unix_sock, listening;
    int verbose, keep; /* -v; listen -k */
    long timeout_ms;   /* -w; 0: none */
    const char *sockopts[STREAM_MAX_SOCKOPTS];
    size_t nsockopts;
    sp_opts pump;
    cli_tls_opts tls;
    /* from the operand (stream_args_operand) */
    const char *text; /* ADDR or PATH as given */
    nk_addr addrs[STREAM_MAX_ADDRS]; /* connect: tried in turn; listen: addrs[0] is bound */
    int naddrs;
    const char *server_name; /* connect --tls: the name the certificate must carry */
    char server_name_buf[256];
} stream_args;

/* Defaults before the options. */
void stream_args_init(stream_args *a, const char *cmd, int unix_sock, int listening);
/* One option (a cli_opt_fn over a stream_args): 0 or an exit code after saying why. */
int stream_on_opt(void *ctx, int key, const char *value);
/* After the options, the operand text: the checks that need every option, and the addresses.
 * 0 or an exit code after saying why. */
int stream_args_operand(stream_args *a, const char *text);
/* The whole command line of a stream command: options of spec, then one operand. 0,
 * CLI_OPT_HELP_SHOWN or an exit code. */
int stream_parse(const cli_spec *spec, int argc, char **argv, stream_args *a);

/* Serve (listen) or make (connect) the connection, pumping until it ends: the exit code
 * (stream/tcp.c). */
int stream_run(const stream_args *a);

/* netkit tcp wait (stream/tcp_wait.c). */
int tcp_wait(int argc, char **argv);

#endif
