/* netkit udp listen|send: datagrams, one per line, boundaries kept (the work is in
 * stream/dgram.c; this file parses options and makes the socket). */
#include "cli.h"
#include "opt.h"
#include "stream/dgram.h"

#include <getopt.h> /* optind, for cli_one_operand */
#include <string.h>
#include <unistd.h>

/* What a udp command line asked for. */
typedef struct udp_args {
    const char *cmd;
    dgram_opts o;
    const char *text; /* ADDR as given */
    nk_addr addr;
} udp_args;

static int on_udp_opt(void *ctx, int key, const char *value)
{
    udp_args *a = ctx;
    int rc = dgram_on_opt(a->cmd, &a->o, key, value);
    return rc == DGRAM_OPT_NOT_MINE ? CLI_USAGE : rc;
}

/* ---- udp listen ----------------------------------------------------------------------------- */

static const cli_opt udp_listen_opts[] = {
    {"raw", DGRAM_OPT_RAW, NULL, "write the bytes exactly, nothing added"},
    {"echo", DGRAM_OPT_ECHO, NULL, "send each datagram back to its sender (not one that was "
                                   "truncated: part of it would be a wrong echo)"},
    {"verbose", 'v', NULL, "\"from HOST:PORT (N bytes)\" on stderr before each datagram"},
    {"max-size", DGRAM_OPT_MAX_SIZE, "BYTES",
     "bytes kept per datagram (default " DGRAM_DEFAULT_MAX_TEXT ", at most 16 MiB); a longer "
     "one is reported on stderr as truncated, never silently cut"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand udp_listen_operands[] = {
    {"ADDR", "HOST:PORT, [IPV6]:PORT or PORT (all interfaces); port 0 picks a free port"},
    {NULL, NULL},
};

static void udp_listen_notes(FILE *out)
{
    fputs("Once ready it prints \"listening on udp://HOST:PORT\" on stderr, with the real\n"
          "port.\n"
          "\n"
          "Example: netkit udp listen 127.0.0.1:9001 --echo -v\n",
          out);
}

static const cli_spec udp_listen_spec = {
    .cmd = "udp listen",
    .synopsis = "ADDR [--raw] [--echo] [-v] [--max-size BYTES]",
    .about = "Print each datagram arriving at ADDR on its own line (a newline is added when\n"
             "it has none).\n",
    .operands = udp_listen_operands,
    .opts = udp_listen_opts,
    .notes = udp_listen_notes,
};
CLI_SPEC_REGISTER(udp_listen_spec);

/* Options, then ADDR: 0, CLI_OPT_HELP_SHOWN or an exit code. */
static int udp_listen_parse(int argc, char **argv, udp_args *a)
{
    int first;
    int rc = cli_opt_parse(&udp_listen_spec, argc, argv, on_udp_opt, a, &first);
    if (rc)
        return rc;
    optind = first;
    if (cli_one_operand(a->cmd, argc, argv, "ADDR", &a->text) != 0)
        return CLI_USAGE;
    if ((rc = cli_parse_bind_addr(a->cmd, a->text, SOCK_DGRAM, &a->addr)) != 0)
        return rc;
    if (nk_addr_family(&a->addr) == AF_UNIX)
        return cli_usage(a->cmd, "'%s' is a unix address: use netkit unix listen --dgram",
                         a->text);
    return 0;
}

static int udp_listen(int argc, char **argv)
{
    udp_args a = {.cmd = argv[0], .o = {.max_size = DGRAM_DEFAULT_MAX}};
    int rc = udp_listen_parse(argc, argv, &a);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    int fd = nk_sock_listen(&a.addr, SOCK_DGRAM, 0, 0);
    if (fd < 0)
        return cli_fail(a.cmd, "%s: %s", a.text, nk_strerror(fd));
    if ((rc = cli_print_listening("udp", fd)) < 0) {
        close(fd);
        return cli_fail(a.cmd, "getsockname: %s", nk_strerror(rc));
    }
    int code = dgram_listen(a.cmd, fd, &a.o);
    close(fd);
    return code;
}

/* ---- udp send ------------------------------------------------------------------------------- */

static const cli_opt udp_send_opts[] = {
    {"reply", DGRAM_OPT_REPLY, NULL, "then wait for one reply per datagram and print each on "
                                     "its own line; exit 1 if they are not all back in time"},
    {"wait", 'w', "SEC", "how long --reply waits after the last send (default 2)"},
    {"raw", DGRAM_OPT_RAW, NULL, "write the replies' bytes exactly, nothing added"},
    {"max-size", DGRAM_OPT_MAX_SIZE, "BYTES",
     "bytes kept per reply (default " DGRAM_DEFAULT_MAX_TEXT "), as for udp listen"},
    {"verbose", 'v', NULL, "\"from HOST:PORT (N bytes)\" on stderr before each reply"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand udp_send_operands[] = {
    {"ADDR", "HOST:PORT, [IPV6]:PORT or PORT (localhost); of a name, its first address"},
    {"MSG", "a datagram to send; without any, each stdin line is one"},
    {NULL, NULL},
};

static void udp_send_notes(FILE *out)
{
    fputs("Example: netkit udp send 127.0.0.1:9001 hello world --reply\n", out);
}

static const cli_spec udp_send_spec = {
    .cmd = "udp send",
    .synopsis = "ADDR [MSG...] [--reply [-w SEC]] [-v]",
    .about = "Send each MSG, or each stdin line when none is given, as one datagram to ADDR.\n",
    .operands = udp_send_operands,
    .opts = udp_send_opts,
    .notes = udp_send_notes,
};
CLI_SPEC_REGISTER(udp_send_spec);

/* Options, then ADDR (the MSGs follow it from *first on): 0, CLI_OPT_HELP_SHOWN or an exit
 * code. */
static int udp_send_parse(int argc, char **argv, udp_args *a, int *first)
{
    int rc = cli_opt_parse(&udp_send_spec, argc, argv, on_udp_opt, a, first);
    if (rc)
        return rc;
    if (*first >= argc)
        return cli_usage(a->cmd, "missing ADDR");
    a->text = argv[(*first)++];
    if (strncmp(a->text, "unix:", 5) == 0)
        return cli_usage(a->cmd, "'%s' is a unix address: use netkit unix connect --dgram",
                         a->text);
    size_t naddr;
    return cli_parse_addrs(a->cmd, a->text, SOCK_DGRAM, 0, &a->addr, 1, &naddr);
}

static int udp_send(int argc, char **argv)
{
    udp_args a = {.cmd = argv[0], .o = {.max_size = DGRAM_DEFAULT_MAX, .wait_ms = 2000}};
    int first;
    int rc = udp_send_parse(argc, argv, &a, &first);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    int fd = nk_sock_connect(&a.addr, SOCK_DGRAM, 0, NULL);
    if (fd < 0)
        return cli_fail(a.cmd, "%s: %s", a.text, nk_strerror(fd));
    char dest[NK_ADDR_STRLEN];
    nk_addr_format(&a.addr, dest, sizeof dest);
    int code = dgram_send(a.cmd, fd, dest, argv + first, argc - first, &a.o);
    close(fd);
    return code;
}

static const cli_cmd udp_commands[] = {
    {"listen", "print datagrams: ADDR [--raw] [--echo] [-v] [--max-size BYTES]", udp_listen},
    {"send", "send datagrams: ADDR [MSG...] [--reply] [-w SEC]", udp_send},
    {NULL, NULL, NULL},
};

int cmd_udp(int argc, char **argv)
{
    return cli_dispatch("udp", udp_commands, argc, argv);
}
