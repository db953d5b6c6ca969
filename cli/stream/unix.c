/* netkit unix listen|connect: Unix-domain sockets. Streams go through the same pump and options
 * as netkit tcp (stream_cmd in stream/tcp.c); --dgram uses datagram sockets (stream/dgram.c).
 *
 * A datagram client binds a temporary path of its own: without a name, a server has no address
 * to reply to (unix(7): an unbound datagram socket's sender address is empty). That path and the
 * listener's socket file are removed on exit, SIGINT and SIGTERM included (those stop the loop,
 * so the normal clean-up runs).
 */
#include "cli.h"
#include "stream/dgram.h"
#include "stream/pump.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OPT_DGRAM = 256, OPT_RAW, OPT_ECHO, OPT_MAX_SIZE, OPT_REPLY };

/* Is --dgram among the options (before a "--")? */
static int wants_dgram(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "--dgram") == 0)
            return 1;
    }
    return 0;
}

static int dgram_cmd(int argc, char **argv, int listening)
{
    static const struct option opts[] = {
        {"dgram", no_argument, NULL, OPT_DGRAM},
        {"raw", no_argument, NULL, OPT_RAW},
        {"echo", no_argument, NULL, OPT_ECHO},
        {"max-size", required_argument, NULL, OPT_MAX_SIZE},
        {"reply", no_argument, NULL, OPT_REPLY},
        {"wait", required_argument, NULL, 'w'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    dgram_opts o = {.max_size = DGRAM_DEFAULT_MAX, .wait_ms = 2000, .show_replies = 1};
    optind = 0;
    opterr = 0;
    int c, rc;
    long v;
    while ((c = getopt_long(argc, argv, ":w:vh", opts, NULL)) != -1) {
        switch (c) {
        case OPT_DGRAM:
            break;
        case OPT_RAW:
            o.raw = 1;
            break;
        case OPT_ECHO:
            if (!listening)
                return cli_usage(cmd, "--echo is for listen");
            o.echo = 1;
            break;
        case OPT_REPLY:
            if (listening)
                return cli_usage(cmd, "--reply is for connect");
            o.reply = 1;
            break;
        case OPT_MAX_SIZE:
            if (cli_parse_long(optarg, 1, DGRAM_LIMIT_MAX, &v) < 0)
                return cli_usage(cmd, "invalid --max-size '%s' (1 to %d bytes)", optarg,
                                 DGRAM_LIMIT_MAX);
            o.max_size = (size_t)v;
            break;
        case 'w':
            if (cli_parse_seconds(optarg, &o.wait_ms) < 0)
                return cli_usage(cmd, "invalid time '%s' for -w (seconds)", optarg);
            break;
        case 'v':
            o.verbose = 1;
            break;
        case 'h':
            if (listening)
                printf("usage: netkit unix listen PATH --dgram [--raw] [--echo] [-v] "
                       "[--max-size BYTES]\n\n"
                       "Print each datagram arriving at the socket PATH (with or without "
                       "\"unix:\") on\nits own line; options as for netkit udp listen. Prints "
                       "\"listening on unix:PATH\"\non stderr once ready; the socket file is "
                       "removed on exit.\n\n");
            else
                printf("usage: netkit unix connect PATH --dgram [--reply [-w SEC]] [-v]\n\n"
                       "Send each stdin line as one datagram to the socket PATH, from a "
                       "temporary\nsocket of its own (removed on exit) so that replies can "
                       "come back; replies\nare printed one per line.\n\n");
            printf("  --dgram           datagram sockets (this help)\n"
                   "  --raw             write the bytes exactly, nothing added\n"
                   "  --echo            (listen) send each datagram back to its sender\n"
                   "  --reply           (connect) after stdin ends, wait for one reply per\n"
                   "                    datagram; exit 1 if they are not all back in time\n"
                   "  -w, --wait SEC    how long --reply waits (default 2)\n"
                   "  --max-size BYTES  bytes kept per datagram (default %d)\n"
                   "  -v, --verbose     \"from PATH (N bytes)\" on stderr before each\n"
                   "  -h, --help        show this help\n\n"
                   "Example: netkit unix listen /tmp/d.sock --dgram --echo & netkit unix "
                   "connect /tmp/d.sock --dgram --reply\n", DGRAM_DEFAULT_MAX);
            return CLI_OK;
        default:
            return cli_getopt_error(cmd, c, argv);
        }
    }
    const char *text;
    if ((rc = cli_one_operand(cmd, argc, argv, "PATH", &text)) != 0)
        return rc;
    nk_addr addr;
    memset(&addr, 0, sizeof addr); /* filled by the parser; zeroed so no path reads garbage */
    if ((rc = cli_parse_unix_addr(cmd, text, SOCK_DGRAM, &addr)) != 0)
        return rc;

    if (listening) {
        int fd = nk_sock_listen(&addr, SOCK_DGRAM, 0, 0);
        if (fd < 0)
            return cli_fail(cmd, "%s: %s", text, nk_strerror(fd));
        cli_unix_file file;
        cli_unix_file_remember(&file, addr.u.un.sun_path);
        int code;
        if ((rc = cli_print_listening("unix", fd)) < 0)
            code = cli_fail(cmd, "getsockname: %s", nk_strerror(rc));
        else
            code = dgram_listen(cmd, fd, &o);
        close(fd);
        cli_unix_file_remove(&file);
        return code;
    }

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cli_fail(cmd, "socket: %s", nk_strerror(-errno));
    /* The reply address: a fresh name in $TMPDIR (or /tmp), unique by pid and a counter. */
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    struct sockaddr_un me;
    memset(&me, 0, sizeof me);
    me.sun_family = AF_UNIX;
    rc = -EADDRINUSE;
    for (int i = 0; i < 100 && rc == -EADDRINUSE; i++) {
        int n = snprintf(me.sun_path, sizeof me.sun_path, "%s/netkit-%ld-%d.sock", dir,
                         (long)getpid(), i);
        if (n < 0 || (size_t)n >= sizeof me.sun_path) {
            rc = -ENAMETOOLONG;
            break;
        }
        rc = bind(fd, (struct sockaddr *)&me, sizeof me) < 0 ? -errno : 0;
    }
    if (rc < 0) {
        close(fd);
        return cli_fail(cmd, "cannot bind a reply socket in %s: %s", dir, nk_strerror(rc));
    }
    cli_unix_file file;
    cli_unix_file_remember(&file, me.sun_path);
    int code;
    if (connect(fd, &addr.u.sa, addr.len) < 0) {
        code = cli_fail(cmd, "%s: %s", text, nk_strerror(-errno));
    } else {
        char dest[NK_ADDR_STRLEN];
        nk_addr_format(&addr, dest, sizeof dest);
        code = dgram_send(cmd, fd, dest, NULL, 0, &o);
    }
    close(fd);
    cli_unix_file_remove(&file);
    return code;
}

static int unix_listen(int argc, char **argv)
{
    if (wants_dgram(argc, argv))
        return dgram_cmd(argc, argv, 1);
    return stream_cmd(argc, argv, 1, 1);
}

static int unix_connect(int argc, char **argv)
{
    if (wants_dgram(argc, argv))
        return dgram_cmd(argc, argv, 0);
    return stream_cmd(argc, argv, 1, 0);
}

static const cli_cmd unix_commands[] = {
    {"listen", "wait for a client: PATH [-k] [--dgram] (stream options as tcp)", unix_listen},
    {"connect", "connect: PATH [--dgram] (stream options as tcp)", unix_connect},
    {NULL, NULL, NULL},
};

int cmd_unix(int argc, char **argv)
{
    return cli_dispatch("unix", unix_commands, argc, argv);
}
