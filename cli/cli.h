/* Shared pieces of the netkit command: the subcommand table and the error conventions.
 *
 * Conventions (DESIGN.md, CLI contract): errors are one line on stderr,
 * "netkit: <command>: <message>"; exit 0 on success, 1 when the work failed, 2 for usage.
 */
#ifndef NETKIT_CLI_H
#define NETKIT_CLI_H

#include <stdio.h>
#include <sys/types.h>
#include <netkit/netkit.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli_cmd {
    const char *name;
    const char *summary;
    /* argv[0] is the command's full name ("http serve"), argv[1..] its arguments. */
    int (*run)(int argc, char **argv);
} cli_cmd;

/* Print "netkit: <cmd>: <message>\n" to stderr; return CLI_FAIL / CLI_USAGE. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Dispatch argv[1] among a table of sub-commands (for nouns with verbs, such as "http serve").
 * Handles --help/-h and unknown verbs. prefix is the noun ("http"). */
int cli_dispatch(const char *prefix, const cli_cmd *table, int argc, char **argv);

/* Parse a non-negative integer option value in [min, max]; returns 0 or -EINVAL/-ERANGE. */
int cli_parse_long(const char *text, long min, long max, long *out);

/* Parse seconds as a decimal ("1.5") into milliseconds; -EINVAL when malformed or negative. */
int cli_parse_seconds(const char *text, long *out_ms);

/* ---- shared helpers for commands (cli_util.c) ---------------------------------------------- */

/* Report a getopt_long failure (c is '?' or ':', with optstring starting with ':') as a usage
 * error for cmd and return CLI_USAGE. */
int cli_getopt_error(const char *cmd, int c, char **argv);

/* Check a --backend name against the compiled-in backends. Returns 0 when it is known (or
 * NULL), else prints "unknown backend 'NAME' (choose from epoll, uring, poll, select)" and returns
 * CLI_USAGE. */
int cli_check_backend(const char *cmd, const char *name);

/* Report that nk_loop_new(name, ...) failed with err: "cannot start the NAME backend: why",
 * NAME being $NETKIT_BACKEND when name is NULL and that is set, else "default"; when uring is
 * refused (-ENOSYS, -EPERM) it says the kernel refuses io_uring. Returns CLI_FAIL. */
int cli_backend_fail(const char *cmd, const char *name, int err);

/* The one address parser (cli_addr.c): HOST:PORT, [IPV6]:PORT, PORT or :PORT, unix:PATH. PORT
 * and :PORT mean every interface when listening (CLI_ADDR_LISTEN; 0.0.0.0, plus [::] with
 * CLI_ADDR_BOTH_FAMILIES) and localhost when connecting; port 0 only when listening. Fills up
 * to max addresses (*count of them) and returns 0, or prints one line and returns CLI_USAGE for
 * every malformed address ("invalid port 'abc'", "port out of range", "unix socket path too
 * long (at most 107 bytes)", an unknown name) or CLI_FAIL when the resolver is down. */
enum { CLI_ADDR_LISTEN = 1u << 0, CLI_ADDR_BOTH_FAMILIES = 1u << 1 };
int cli_parse_addrs(const char *cmd, const char *text, int socktype, unsigned flags,
                    nk_addr *out, size_t max, size_t *count);
/* cli_parse_addrs for one address to bind. */
int cli_parse_bind_addr(const char *cmd, const char *text, int socktype, nk_addr *out);

/* Print the readiness line "listening on <scheme>://<addr>" ("unix:<path>" for Unix sockets,
 * whatever scheme says) for the listening socket fd, with the real port. 0 or negative error. */
int cli_print_listening(const char *scheme, int fd);

/* After getopt: exactly one operand must follow the options; `what` names it in the messages
 * ("ADDR"). Sets *out (when out is not NULL) to argv[optind] and returns 0, or prints "missing ADDR" / "unexpected argument 'X'" and
 * returns CLI_USAGE. */
int cli_one_operand(const char *cmd, int argc, char **argv, const char *what, const char **out);

/* Parse a unix socket address given as PATH or unix:PATH, for commands where only a unix socket
 * makes sense (so a plain path needs no prefix). Returns 0 or an exit code, as
 * cli_parse_bind_addr. */
int cli_parse_unix_addr(const char *cmd, const char *text, int socktype, nk_addr *out);

/* The socket file a command bound. It is removed on exit only if it is still the file this
 * command created: meanwhile another process may have replaced it with its own socket. */
typedef struct cli_unix_file {
    char *path; /* NULL: nothing to remove (not a unix path, abstract name, or gone already) */
    dev_t dev;
    ino_t ino;
} cli_unix_file;

/* Remember the socket file at sun_path (a sockaddr_un's), right after binding it; an abstract
 * name (sun_path[0] == '\0') has no file. */
void cli_unix_file_remember(cli_unix_file *f, const char *sun_path);
/* Unlink the file if it is still the one remembered; forget it either way. */
void cli_unix_file_remove(cli_unix_file *f);

/* SIGINT and SIGTERM, watched on the loop: how every long-running command is told to stop
 * (DESIGN.md: servers stop cleanly, exit 0). Zeroed or started, it may be stopped. */
typedef struct cli_stop_signals {
    nk_signal sigint, sigterm;
} cli_stop_signals;

/* Watch SIGINT and SIGTERM. cb runs on either, with sig->data == data; a NULL cb stops the loop,
 * so that the command's normal clean-up runs. Returns 0, or a negative error with nothing
 * watched. */
int cli_stop_signals_start(nk_loop *loop, cli_stop_signals *s, nk_signal_cb cb, void *data);
void cli_stop_signals_stop(nk_loop *loop, cli_stop_signals *s);

/* ---- text from peers on a terminal (cli_util.c) ------------------------------------------ */

/* Names, messages and file names that come from the network are shown escaped, so that a
 * peer cannot move the cursor, retitle the window or worse: every C0 control (except a tab
 * or newline the caller keeps), DEL and every byte that is not part of valid UTF-8 (raw
 * 0x80..0x9F included, C1 controls to a terminal in an 8-bit mode) becomes "\xNN", and the
 * UTF-8 encodings of the C1 controls U+0080..U+009F become "\u00NN". Valid UTF-8 text passes
 * unchanged, so the output is always valid UTF-8 without control characters. */
enum {
    CLI_ESC_KEEP_TAB = 1u << 0, /* leave '\t' as it is */
    CLI_ESC_KEEP_NL = 1u << 1,  /* leave '\n' as it is */
};
/* Bytes one input byte can grow to ("\xNN"): size a buffer 4 * len + 1 to hold any text. */
#define CLI_ESC_GROWTH 4
/* Write s[0..len) escaped into out[0..cap), NUL-terminated, cut only between whole pieces;
 * returns the length the whole text needs (without the NUL), as snprintf does. */
size_t cli_term_escape(char *out, size_t cap, const char *s, size_t len, unsigned flags);
/* The same, written to a stream. */
void cli_fput_escaped(FILE *f, const char *s, size_t len, unsigned flags);

/* Commands: a folder per tool with several files (http/, chat/, file/, sniff/, stream/: its
 * cmd.c, or tcp.c, udp.c, unix.c), one file for the others (echo.c, bench.c, lookup.c, ping.c,
 * broadcast.c); shared helpers at the top of cli/. */
int cmd_echo(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_tcp(int argc, char **argv);
int cmd_udp(int argc, char **argv);
int cmd_unix(int argc, char **argv);
int cmd_http(int argc, char **argv);
int cmd_http_get(int argc, char **argv); /* http/get.c, in http's table */
int cmd_bench(int argc, char **argv);
int cmd_broadcast(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_file(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_sniff(int argc, char **argv);

#endif
