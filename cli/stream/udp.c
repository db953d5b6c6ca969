/* netkit udp listen|send: datagrams, one per line, boundaries kept (the work is in
 * stream/dgram.c; this file parses options and makes the socket). */
#include "cli.h"
#include "stream/dgram.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

enum { OPT_RAW = 256, OPT_ECHO, OPT_MAX_SIZE, OPT_REPLY };

static int parse_max_size(const char *cmd, const char *text, dgram_opts *o)
{
    long v;
    if (cli_parse_long(text, 1, DGRAM_LIMIT_MAX, &v) < 0)
        return cli_usage(cmd, "invalid --max-size '%s' (1 to %d bytes)", text, DGRAM_LIMIT_MAX);
    o->max_size = (size_t)v;
    return 0;
}

static int udp_listen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"raw", no_argument, NULL, OPT_RAW},
        {"echo", no_argument, NULL, OPT_ECHO},
        {"max-size", required_argument, NULL, OPT_MAX_SIZE},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    dgram_opts o = {.max_size = DGRAM_DEFAULT_MAX};
    optind = 0;
    opterr = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
        switch (c) {
        case OPT_RAW:
            o.raw = 1;
            break;
        case OPT_ECHO:
            o.echo = 1;
            break;
        case OPT_MAX_SIZE:
            if ((rc = parse_max_size(cmd, optarg, &o)) != 0)
                return rc;
            break;
        case 'v':
            o.verbose = 1;
            break;
        case 'h':
            printf("usage: netkit udp listen ADDR [--raw] [--echo] [-v] [--max-size BYTES]\n\n"
                   "Print each datagram arriving at ADDR (HOST:PORT, [IPV6]:PORT or PORT) on its\n"
                   "own line (a newline is added when it has none).\n\n"
                   "  --raw             write the bytes exactly, nothing added\n"
                   "  --echo            send each datagram back to its sender\n"
                   "  -v, --verbose     \"from HOST:PORT (N bytes)\" on stderr before each\n"
                   "  --max-size BYTES  bytes kept per datagram (default %d); a longer one is\n"
                   "                    reported on stderr as truncated, never silently cut\n"
                   "  -h, --help        show this help\n\n"
                   "Example: netkit udp listen 127.0.0.1:9001 --echo -v\n\n"
                   "Once ready it prints \"listening on udp://HOST:PORT\" on stderr.\n",
                   DGRAM_DEFAULT_MAX);
            return CLI_OK;
        default:
            return cli_getopt_error(cmd, c, argv);
        }
    }
    const char *text;
    if (cli_one_operand(cmd, argc, argv, "ADDR", &text) != 0)
        return CLI_USAGE;
    nk_addr addr;
    if ((rc = cli_parse_bind_addr(cmd, text, SOCK_DGRAM, &addr)) != 0)
        return rc;
    if (nk_addr_family(&addr) == AF_UNIX)
        return cli_usage(cmd, "'%s' is a unix address: use netkit unix listen --dgram", text);
    int fd = nk_sock_listen(&addr, SOCK_DGRAM, 0, 0);
    if (fd < 0)
        return cli_fail(cmd, "%s: %s", text, nk_strerror(fd));
    if ((rc = cli_print_listening("udp", fd)) < 0) {
        close(fd);
        return cli_fail(cmd, "getsockname: %s", nk_strerror(rc));
    }
    int code = dgram_listen(cmd, fd, &o);
    close(fd);
    return code;
}

static int udp_send(int argc, char **argv)
{
    static const struct option opts[] = {
        {"reply", no_argument, NULL, OPT_REPLY},
        {"raw", no_argument, NULL, OPT_RAW},
        {"max-size", required_argument, NULL, OPT_MAX_SIZE},
        {"wait", required_argument, NULL, 'w'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    dgram_opts o = {.max_size = DGRAM_DEFAULT_MAX, .wait_ms = 2000};
    optind = 0;
    opterr = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, ":w:vh", opts, NULL)) != -1) {
        switch (c) {
        case OPT_REPLY:
            o.reply = 1;
            break;
        case OPT_RAW:
            o.raw = 1;
            break;
        case OPT_MAX_SIZE:
            if ((rc = parse_max_size(cmd, optarg, &o)) != 0)
                return rc;
            break;
        case 'w':
            if (cli_parse_seconds(optarg, &o.wait_ms) < 0)
                return cli_usage(cmd, "invalid time '%s' for -w (seconds)", optarg);
            break;
        case 'v':
            o.verbose = 1;
            break;
        case 'h':
            printf("usage: netkit udp send ADDR [MSG...] [--reply [-w SEC]] [-v]\n\n"
                   "Send each MSG, or each stdin line when none is given, as one datagram to\n"
                   "ADDR (HOST:PORT or [IPV6]:PORT).\n\n"
                   "  --reply           then wait for one reply per datagram and print each on\n"
                   "                    its own line; exit 1 if they are not all back in time\n"
                   "  -w, --wait SEC    how long --reply waits after the last send (default 2)\n"
                   "  --raw             write the replies' bytes exactly, nothing added\n"
                   "  --max-size BYTES  bytes kept per reply, as for udp listen\n"
                   "  -v, --verbose     \"from HOST:PORT (N bytes)\" on stderr before each reply\n"
                   "  -h, --help        show this help\n\n"
                   "Example: netkit udp send 127.0.0.1:9001 hello world --reply\n");
            return CLI_OK;
        default:
            return cli_getopt_error(cmd, c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage(cmd, "missing ADDR");
    const char *text = argv[optind];
    if (strncmp(text, "unix:", 5) == 0)
        return cli_usage(cmd, "'%s' is a unix address: use netkit unix connect --dgram", text);
    nk_addr addr;
    size_t naddr;
    if ((rc = cli_parse_addrs(cmd, text, SOCK_DGRAM, 0, &addr, 1, &naddr)) != 0)
        return rc;
    int fd = nk_sock_connect(&addr, SOCK_DGRAM, 0, NULL);
    if (fd < 0)
        return cli_fail(cmd, "%s: %s", text, nk_strerror(fd));
    char dest[NK_ADDR_STRLEN];
    nk_addr_format(&addr, dest, sizeof dest);
    int code = dgram_send(cmd, fd, dest, argv + optind + 1, argc - optind - 1, &o);
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
