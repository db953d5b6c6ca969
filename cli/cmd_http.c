/* netkit http serve: argument parsing, listeners, and the worker processes.
 *
 * With -w 1 the server runs in this process. With more, this process becomes a supervisor:
 * it binds the listeners (so port 0 is resolved once and errors are reported before any
 * fork), hands them to the first worker, and every other worker binds its own SO_REUSEPORT
 * socket on the same address so the kernel spreads connections across workers. A worker that
 * dies is restarted (with a bound on how fast); SIGTERM/SIGINT are forwarded for a graceful
 * stop and SIGHUP for reopening the access log.
 */
#include "cli.h"
#include "http_serve.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char serve_usage[] =
    "usage: netkit http serve [DIR] [options]\n"
    "\n"
    "Serve the files below DIR (default: the current directory) over HTTP/1.1.\n"
    "\n"
    "options:\n"
    "  -l, --listen ADDR        HOST:PORT, [V6]:PORT, PORT (all interfaces) or unix:PATH;\n"
    "                           repeatable (default 127.0.0.1:8080)\n"
    "  -w, --workers N          worker processes (default: one per CPU)\n"
    "      --backend NAME       event loop backend: epoll, poll or select\n"
    "      --index NAME         index file of a directory (default index.html)\n"
    "      --no-listing         answer 403 for directories without an index\n"
    "      --dotfiles           serve names starting with '.' (refused by default)\n"
    "      --follow-symlinks    serve symlinks that point outside DIR\n"
    "      --access-log DEST    FILE, '-' for stdout (default) or 'off'\n"
    "      --max-conns N        open connections per worker (default 10000)\n"
    "      --header-timeout SEC time for a request head to arrive (default 10)\n"
    "      --idle-timeout SEC   keep-alive time between requests (default 30)\n"
    "      --send-timeout SEC   time a client may stall a response (default 60)\n"
    "      --max-header-bytes N request head size limit (default 16384)\n"
    "      --max-body-bytes N   request body size limit (default 1048576)\n"
    "  -q, --quiet              no access log on stdout, no extra messages\n"
    "  -h, --help               show this help\n"
    "\n"
    "Once ready, prints one 'listening on URL' line per listener on stderr.\n"
    "SIGTERM/SIGINT stop gracefully; SIGHUP reopens the access log file.\n";

static int parse_serve(int argc, char **argv, http_serve_opts *o)
{
    const char *cmd = argv[0];
    enum {
        OPT_BACKEND = 256, OPT_INDEX, OPT_NO_LISTING, OPT_DOTFILES, OPT_SYMLINKS, OPT_LOG,
        OPT_MAX_CONNS, OPT_HEADER_TO, OPT_IDLE_TO, OPT_SEND_TO, OPT_MAX_HEADER, OPT_MAX_BODY
    };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"backend", required_argument, NULL, OPT_BACKEND},
        {"index", required_argument, NULL, OPT_INDEX},
        {"no-listing", no_argument, NULL, OPT_NO_LISTING},
        {"dotfiles", no_argument, NULL, OPT_DOTFILES},
        {"follow-symlinks", no_argument, NULL, OPT_SYMLINKS},
        {"access-log", required_argument, NULL, OPT_LOG},
        {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TO},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TO},
        {"send-timeout", required_argument, NULL, OPT_SEND_TO},
        {"max-header-bytes", required_argument, NULL, OPT_MAX_HEADER},
        {"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":l:w:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (o->nlisten >= HTTP_MAX_LISTEN)
                return cli_usage(cmd, "too many listeners (at most %d)", HTTP_MAX_LISTEN);
            o->listen[o->nlisten++] = optarg;
            break;
        case 'w':
            if (cli_parse_long(optarg, 1, 256, &v) < 0)
                return cli_usage(cmd, "invalid worker count '%s' (1 to 256)", optarg);
            o->workers = (int)v;
            break;
        case OPT_BACKEND: o->backend = optarg; break;
        case OPT_INDEX: o->cfg.index = optarg; break;
        case OPT_NO_LISTING: o->cfg.listing = 0; break;
        case OPT_DOTFILES: o->cfg.dotfiles = 1; break;
        case OPT_SYMLINKS: o->cfg.follow_symlinks = 1; break;
        case OPT_LOG: o->access_log = optarg; break;
        case OPT_MAX_CONNS:
            if (cli_parse_long(optarg, 1, 10000000, &v) < 0)
                return cli_usage(cmd, "invalid --max-conns '%s'", optarg);
            o->cfg.max_conns = (unsigned)v;
            break;
        case OPT_HEADER_TO:
        case OPT_IDLE_TO:
        case OPT_SEND_TO:
            if (cli_parse_seconds(optarg, &v) < 0 || v <= 0)
                return cli_usage(cmd, "invalid timeout '%s' (seconds, more than 0)", optarg);
            if (c == OPT_HEADER_TO)
                o->cfg.header_timeout_ms = (unsigned)v;
            else if (c == OPT_IDLE_TO)
                o->cfg.idle_timeout_ms = (unsigned)v;
            else
                o->cfg.send_timeout_ms = o->cfg.body_timeout_ms = (unsigned)v;
            break;
        case OPT_MAX_HEADER:
            if (cli_parse_long(optarg, 256, 1 << 24, &v) < 0)
                return cli_usage(cmd, "invalid --max-header-bytes '%s' (256 to 16777216)", optarg);
            o->cfg.limits.max_head = (size_t)v;
            if (o->cfg.limits.max_request_line > (size_t)v)
                o->cfg.limits.max_request_line = (size_t)v;
            break;
        case OPT_MAX_BODY:
            if (cli_parse_long(optarg, 0, (long)1 << 62, &v) < 0)
                return cli_usage(cmd, "invalid --max-body-bytes '%s'", optarg);
            o->cfg.max_body = (uint64_t)v;
            break;
        case 'q': o->quiet = 1; break;
        case 'h':
            fputs(serve_usage, stdout);
            return -1;
        case ':':
            return cli_usage(cmd, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        o->root = argv[optind++];
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

static int cmd_http_serve(int argc, char **argv)
{
    http_serve_opts o;
    memset(&o, 0, sizeof o);
    nk_httpd_config_default(&o.cfg);
    o.root = ".";
    o.access_log = NULL;
    o.cmd = argv[0];
    int r = parse_serve(argc, argv, &o);
    if (r < 0)
        return CLI_OK; /* --help */
    if (r > 0)
        return r;
    if (o.nlisten == 0)
        o.listen[o.nlisten++] = "127.0.0.1:8080";
    if (o.workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.workers = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
    }
    if (!o.access_log)
        o.access_log = o.quiet ? "off" : "-";
    o.cfg.root = o.root;
    return http_serve_run(&o);
}

static const cli_cmd http_commands[] = {
    {"serve", "serve files over HTTP/1.1", cmd_http_serve},
    {"get", "HTTP/1.1 client: show the exchange, download files", cmd_http_get},
    {NULL, NULL, NULL},
};

int cmd_http(int argc, char **argv)
{
    return cli_dispatch("http", http_commands, argc, argv);
}
