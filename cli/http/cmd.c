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
#include "cli_password.h"
#include "http/serve.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static const char serve_usage[] =
    "usage: netkit http serve [DIR] [options]\n"
    "\n"
    "Serve the files below DIR (default: the current directory) over HTTP/1.1 and HTTP/2.\n"
    "\n"
    "options:\n"
    "  -l, --listen ADDR        HOST:PORT, [V6]:PORT, PORT (all interfaces) or unix:PATH,\n"
    "                           after http:// (the default) or https://; repeatable\n"
    "                           (default 127.0.0.1:8080, or https://127.0.0.1:8443 with TLS);\n"
    "                           proxy+http:// or proxy+https://: behind a load balancer,\n"
    "                           each connection begins with a PROXY protocol header (v1 or\n"
    "                           v2) naming the client, who is then logged and checked;\n"
    "                           listeners passed by systemd (LISTEN_FDS; FileDescriptorName\n"
    "                           http, https, proxy+http, proxy+https) are used as well, and\n"
    "                           readiness and stopping are told to NOTIFY_SOCKET\n"
    "      --proxy-from CIDR    peers allowed to send that header (repeatable; default\n"
    "                           127.0.0.0/8 and ::1); others are closed\n"
    "      --tls-cert FILE      certificate chain (PEM, leaf first) for https:// listeners;\n"
    "                           repeatable, chosen by the name the client asks for (SNI);\n"
    "                           a directory: every NAME.crt with its NAME.key\n"
    "      --tls-key FILE       private key (PEM) of the --tls-cert at the same position\n"
    "      --tls-self-signed    make an ECDSA P-256 certificate at start for localhost and\n"
    "                           the listeners' addresses; prints its SHA-256 fingerprint\n"
    "      --redirect-https     http:// listeners answer 308 to the same URL over https\n"
    "      --hsts SECONDS       Strict-Transport-Security max-age on https responses\n"
    "      --no-http2           HTTP/1.x only (by default https:// offers h2 by ALPN and\n"
    "                           http:// serves h2c to clients that open with its preface)\n"
    "      --h2-max-streams N   concurrent HTTP/2 streams per connection (default 100)\n"
    "  -w, --workers N          worker processes (default: one per CPU)\n"
    "      --cpu-affinity       pin worker N to the N-th CPU and give each new connection\n"
    "                           to the worker on the CPU that received it\n"
    "      --backend NAME       event loop backend: epoll, uring, poll or select\n"
    "      --index NAME         index file of a directory (default index.html)\n"
    "      --no-listing         answer 403 for directories without an index\n"
    "      --dotfiles           serve names starting with '.' (refused by default)\n"
    "      --follow-symlinks    serve symlinks that point outside DIR\n"
    "      --archives           a directory also downloads as a streamed archive of what its\n"
    "                           listing lists: ?download=tar or ?download=tar.gz\n"
    "      --access-log DEST    FILE, '-' for stdout (default) or 'off'\n"
    "      --max-conns N        open connections per worker (default 10000)\n"
    "      --header-timeout SEC time for a request head to arrive (default 10)\n"
    "      --idle-timeout SEC   keep-alive time between requests (default 30)\n"
    "      --send-timeout SEC   time a client may stall a response or a request body (default 60)\n"
    "      --body-timeout SEC   total time for a request body, plus 1 s per KiB received\n"
    "                           (default 60; 0: only the --send-timeout gap)\n"
    "      --sndbuf BYTES       socket send buffer per connection (default: kernel autotuning)\n"
    "      --unsent-max BYTES   unsent bytes queued per connection (default 262144; 0: the\n"
    "                           kernel's setting): bounds what a client that stops reading pins\n"
    "      --max-header-bytes N request head size limit (default 16384)\n"
    "      --max-body-bytes N   request body size limit (default 1048576; an authenticated\n"
    "                           upload has none but the disk unless this is given)\n"
    "      --upload             allow PUT (create/replace a file), DELETE (a file, a directory\n"
    "                           when empty, its tree with Depth: infinity or ?recursive=1) and\n"
    "                           POST of multipart/form-data files to a directory; needs\n"
    "                           credentials\n"
    "      --upload-anonymous   allow --upload without credentials\n"
    "      --mkdirs             PUT creates missing parent directories (else 409)\n"
    "      --auth USER:PASS     HTTP Basic credentials (repeatable); without --upload they\n"
    "                           protect every request, with it only writes\n"
    "      --auth-file FILE     lines 'USER:pbkdf2-sha256$ITER$SALT$HASH' (see 'http passwd')\n"
    "      --echo               answer every request with what was received (text, or JSON\n"
    "                           with Accept: application/json)\n"
    "      --gzip               compress text-like responses over 1 KiB on the fly for clients\n"
    "                           that accept gzip (chunked; HTTP/1.0 and Range get identity)\n"
    "      --gzip-level N       compression level 1-9 (default 6; implies --gzip)\n"
    "      --cors               allow any origin (Access-Control-Allow-Origin: *) and answer\n"
    "                           CORS preflight requests\n"
    "      --spa                single-page app: a missing route (no extension, Accept:\n"
    "                           text/html) gets /index.html instead of 404\n"
    "      --status PATH        live counters as JSON at PATH (?format=prometheus for the\n"
    "                           Prometheus text format); loopback clients only\n"
    "      --status-public      show --status to every client\n"
    "      --health PATH        GET/HEAD PATH answers 200 \"ok\" while serving, 503 once\n"
    "                           stopping, for a load balancer's checks (no credentials)\n"
    "      --health-grace S     on SIGTERM, answer --health with 503 for S seconds while\n"
    "                           still serving everything, then drain (default 0)\n"
    "      --log-format FMT     access log format: combined (default) or json\n"
    "  -v, --verbose            print each request head on stderr, after [PEER #CONN]\n"
    "  -q, --quiet              no access log on stdout, no extra messages\n"
    "  -h, --help               show this help\n"
    "\n"
    "Once ready, prints one 'listening on URL' line per listener on stderr.\n"
    "SIGTERM/SIGINT stop gracefully; SIGHUP reopens the access log file and reloads the\n"
    "TLS certificates (a certificate that fails to load keeps the old one); SIGUSR2 starts\n"
    "the binary now at this one's path on the same listening sockets, and once it accepts,\n"
    "this server drains and exits (zero-downtime upgrade; a new binary that fails to start\n"
    "leaves this one serving).\n";

/* Read FILE: one "user:hash" per line; blank lines and lines starting with '#' are skipped. */
static int load_auth_file(const char *cmd, const char *path, http_serve_opts *o)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return cli_fail(cmd, "cannot read --auth-file '%s': %s", path, strerror(errno));
    char *data = NULL;
    size_t cap = 0, len = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *grown = realloc(data, cap);
            if (!grown || cap > (16u << 20)) {
                free(grown ? grown : data);
                fclose(f);
                return cli_fail(cmd, "--auth-file '%s' is too large", path);
            }
            data = grown;
        }
        memcpy(data + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!data)
        return cli_fail(cmd, "--auth-file '%s' has no users", path);
    data[len] = '\0';
    free(o->auth_file_data);
    o->auth_file_data = data;
    int lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
            line[--l] = '\0';
        if (l == 0 || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        if (!colon || colon == line || nk_httpd_auth_verify(colon + 1, "", 0) < 0)
            return cli_usage(cmd, "%s: line %d is not 'USER:pbkdf2-sha256$ITER$SALT$HASH'", path,
                             lineno);
        if (o->nusers >= HTTP_MAX_USERS)
            return cli_usage(cmd, "too many users");
        *colon = '\0';
        o->users[o->nusers++] = (nk_httpd_user){line, NULL, colon + 1};
    }
    if (o->nusers == 0)
        return cli_fail(cmd, "--auth-file '%s' has no users", path);
    return 0;
}

static int parse_serve(int argc, char **argv, http_serve_opts *o)
{
    const char *cmd = argv[0];
    enum {
        OPT_BACKEND = 256, OPT_ARCHIVES, OPT_INDEX, OPT_NO_LISTING, OPT_DOTFILES, OPT_SYMLINKS, OPT_LOG,
        OPT_MAX_CONNS, OPT_HEADER_TO, OPT_IDLE_TO, OPT_SEND_TO, OPT_SNDBUF, OPT_MAX_HEADER, OPT_MAX_BODY,
        OPT_BODY_TO, OPT_UPLOAD, OPT_UPLOAD_ANON, OPT_MKDIRS, OPT_AUTH, OPT_AUTH_FILE, OPT_ECHO,
        OPT_GZIP, OPT_GZIP_LEVEL, OPT_CORS, OPT_SPA, OPT_STATUS, OPT_STATUS_PUBLIC, OPT_LOG_FORMAT,
        OPT_UNSENT_MAX, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_SELF, OPT_REDIRECT_HTTPS, OPT_HSTS,
        OPT_NO_HTTP2, OPT_H2_STREAMS, OPT_PROXY_FROM, OPT_HEALTH, OPT_HEALTH_GRACE,
        OPT_CPU_AFFINITY
    };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"backend", required_argument, NULL, OPT_BACKEND},
        {"cpu-affinity", no_argument, NULL, OPT_CPU_AFFINITY},
        {"index", required_argument, NULL, OPT_INDEX},
        {"no-listing", no_argument, NULL, OPT_NO_LISTING},
        {"dotfiles", no_argument, NULL, OPT_DOTFILES},
        {"follow-symlinks", no_argument, NULL, OPT_SYMLINKS},
        {"archives", no_argument, NULL, OPT_ARCHIVES},
        {"access-log", required_argument, NULL, OPT_LOG},
        {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TO},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TO},
        {"send-timeout", required_argument, NULL, OPT_SEND_TO},
        {"body-timeout", required_argument, NULL, OPT_BODY_TO},
        {"sndbuf", required_argument, NULL, OPT_SNDBUF},
        {"unsent-max", required_argument, NULL, OPT_UNSENT_MAX},
        {"max-header-bytes", required_argument, NULL, OPT_MAX_HEADER},
        {"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
        {"upload", no_argument, NULL, OPT_UPLOAD},
        {"upload-anonymous", no_argument, NULL, OPT_UPLOAD_ANON},
        {"mkdirs", no_argument, NULL, OPT_MKDIRS},
        {"auth", required_argument, NULL, OPT_AUTH},
        {"auth-file", required_argument, NULL, OPT_AUTH_FILE},
        {"echo", no_argument, NULL, OPT_ECHO},
        {"gzip", no_argument, NULL, OPT_GZIP},
        {"gzip-level", required_argument, NULL, OPT_GZIP_LEVEL},
        {"cors", no_argument, NULL, OPT_CORS},
        {"spa", no_argument, NULL, OPT_SPA},
        {"status", required_argument, NULL, OPT_STATUS},
        {"status-public", no_argument, NULL, OPT_STATUS_PUBLIC},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"tls-self-signed", no_argument, NULL, OPT_TLS_SELF},
        {"redirect-https", no_argument, NULL, OPT_REDIRECT_HTTPS},
        {"hsts", required_argument, NULL, OPT_HSTS},
        {"no-http2", no_argument, NULL, OPT_NO_HTTP2},
        {"h2-max-streams", required_argument, NULL, OPT_H2_STREAMS},
        {"proxy-from", required_argument, NULL, OPT_PROXY_FROM},
        {"health", required_argument, NULL, OPT_HEALTH},
        {"health-grace", required_argument, NULL, OPT_HEALTH_GRACE},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":l:w:qvh", opts, NULL)) != -1) {
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
        case OPT_ARCHIVES: o->cfg.archives = 1; break;
        case OPT_SYMLINKS: o->cfg.follow_symlinks = 1; break;
        case OPT_LOG: o->access_log = optarg; break;
        case OPT_MAX_CONNS:
            if (cli_parse_long(optarg, 1, 10000000, &v) < 0)
                return cli_usage(cmd, "invalid --max-conns '%s'", optarg);
            o->cfg.max_conns = (unsigned)v;
            break;
        case OPT_SNDBUF:
            if (cli_parse_long(optarg, 4096, 64L << 20, &v) < 0)
                return cli_usage(cmd, "invalid --sndbuf '%s' (4096 to 67108864 bytes)", optarg);
            o->cfg.sndbuf = (int)v;
            break;
        case OPT_UNSENT_MAX:
            if (cli_parse_long(optarg, 0, 64L << 20, &v) < 0 || (v > 0 && v < 4096))
                return cli_usage(cmd, "invalid --unsent-max '%s' (0, or 4096 to 67108864 bytes)",
                                 optarg);
            o->cfg.unsent_max = (int)v;
            break;
        case OPT_BODY_TO:
            if (cli_parse_seconds(optarg, &v) < 0 || v < 0)
                return cli_usage(cmd, "invalid --body-timeout '%s' (seconds, 0 for none)", optarg);
            o->cfg.body_total_timeout_ms = (unsigned)v;
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
            /* Given explicitly, the limit holds for authenticated uploads too. */
            o->cfg.max_body = o->cfg.max_body_authenticated = (uint64_t)v;
            break;
        case OPT_UPLOAD: o->cfg.upload = 1; break;
        case OPT_UPLOAD_ANON: o->upload_anonymous = 1; break;
        case OPT_MKDIRS: o->cfg.mkdirs = 1; break;
        case OPT_ECHO: o->cfg.echo = 1; break;
        case OPT_GZIP: o->cfg.gzip = 1; break;
        case OPT_GZIP_LEVEL:
            if (cli_parse_long(optarg, 1, 9, &v) < 0)
                return cli_usage(cmd, "invalid --gzip-level '%s' (1 to 9)", optarg);
            o->cfg.gzip = 1;
            o->cfg.gzip_level = (int)v;
            break;
        case OPT_CORS: o->cfg.cors = 1; break;
        case OPT_SPA: o->cfg.spa = 1; break;
        case OPT_STATUS:
            if (optarg[0] != '/' || strpbrk(optarg, "?# \t"))
                return cli_usage(cmd, "invalid --status '%s' (a path such as /.netkit/status)",
                                 optarg);
            o->cfg.status_path = optarg;
            break;
        case OPT_STATUS_PUBLIC: o->cfg.status_public = 1; break;
        case OPT_LOG_FORMAT:
            if (strcmp(optarg, "combined") == 0)
                o->cfg.log_format = NK_HTTPD_LOG_COMBINED;
            else if (strcmp(optarg, "json") == 0)
                o->cfg.log_format = NK_HTTPD_LOG_JSON;
            else
                return cli_usage(cmd, "invalid --log-format '%s' (combined or json)", optarg);
            break;
        case OPT_AUTH: {
            char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg)
                return cli_usage(cmd, "invalid --auth '%s' (USER:PASS)", optarg);
            if (o->nusers >= HTTP_MAX_USERS)
                return cli_usage(cmd, "too many users");
            *colon = '\0'; /* argv is ours to cut */
            o->users[o->nusers++] = (nk_httpd_user){optarg, colon + 1, NULL};
            break;
        }
        case OPT_AUTH_FILE: {
            int r = load_auth_file(cmd, optarg, o);
            if (r)
                return r;
            break;
        }
        case OPT_TLS_CERT:
        case OPT_TLS_KEY:
            if ((c == OPT_TLS_CERT ? o->ncerts : o->nkeys) >= HTTP_MAX_CERTS)
                return cli_usage(cmd, "too many certificates (at most %d)", HTTP_MAX_CERTS);
            if (c == OPT_TLS_CERT)
                o->tls_cert[o->ncerts++] = optarg;
            else
                o->tls_key[o->nkeys++] = optarg;
            break;
        case OPT_TLS_SELF: o->tls_self_signed = 1; break;
        case OPT_REDIRECT_HTTPS: o->redirect_https = 1; break;
        case OPT_HSTS:
            if (cli_parse_long(optarg, 0, 100000000, &v) < 0)
                return cli_usage(cmd, "invalid --hsts '%s' (seconds)", optarg);
            o->hsts = (unsigned)v;
            break;
        case OPT_NO_HTTP2: o->no_http2 = 1; break;
        case OPT_H2_STREAMS:
            if (cli_parse_long(optarg, 1, 100000, &v) < 0)
                return cli_usage(cmd, "invalid --h2-max-streams '%s' (1 to 100000)", optarg);
            o->h2_max_streams = (unsigned)v;
            break;
        case OPT_PROXY_FROM: {
            nk_proxy_cidr range;
            if (nk_proxy_cidr_parse(optarg, &range) < 0)
                return cli_usage(cmd, "invalid --proxy-from '%s' (an address or ADDRESS/BITS)",
                                 optarg);
            if (o->nproxy_from >= HTTP_MAX_PROXY_FROM)
                return cli_usage(cmd, "too many --proxy-from (at most %d)", HTTP_MAX_PROXY_FROM);
            o->proxy_from[o->nproxy_from++] = optarg;
            break;
        }
        case OPT_HEALTH:
            if (optarg[0] != '/' || strpbrk(optarg, "?# \t"))
                return cli_usage(cmd, "invalid --health '%s' (a path such as /health)", optarg);
            o->health = optarg;
            break;
        case OPT_HEALTH_GRACE:
            if (cli_parse_long(optarg, 0, 3600, &v) < 0)
                return cli_usage(cmd, "invalid --health-grace '%s' (0 to 3600 seconds)", optarg);
            o->health_grace = (unsigned)v;
            break;
        case OPT_CPU_AFFINITY: o->cpu_affinity = 1; break;
        case 'v': o->verbose = 1; break;
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
    nk_httpd_config_init(&o.cfg);
    o.root = ".";
    o.access_log = NULL;
    o.cmd = argv[0];
    o.upgrade_fd = -1;
    /* Before parsing, which cuts strings of argv: SIGUSR2 starts this command line again.
     * Without /proc the server runs, only without upgrades. */
    (void)http_upgrade_save_command(&o);
    int r = parse_serve(argc, argv, &o);
    if (r != 0) {
        free(o.auth_file_data);
        http_upgrade_free_command(&o);
    }
    if (r < 0)
        return CLI_OK; /* --help */
    if (r > 0)
        return r;
    r = http_inherit_listeners(&o);
    if (r) {
        free(o.auth_file_data);
        http_upgrade_free_command(&o);
        return r;
    }
    /* A replacement started by SIGUSR2 serves what the old server served: its sockets. */
    if (o.upgrade_fd >= 0)
        o.nlisten = 0;
    /* Listeners from a service manager stand for the default one. */
    if (o.nlisten == 0 && o.ninherited == 0)
        o.listen[o.nlisten++] = o.ncerts || o.tls_self_signed ? "https://127.0.0.1:8443"
                                                              : "127.0.0.1:8080";
    r = http_tls_split_schemes(&o);
    if (r == 0)
        r = http_tls_check(&o);
    if (r) {
        free(o.auth_file_data);
        http_upgrade_free_command(&o);
        return r;
    }
    if (o.workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.workers = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
    }
    if (!o.access_log)
        o.access_log = o.quiet ? "off" : "-";
    o.cfg.root = o.root;
    o.cfg.users = o.users;
    o.cfg.nusers = o.nusers;
    if (o.cfg.upload && o.nusers == 0 && !o.upload_anonymous)
        r = cli_usage(o.cmd, "--upload needs --auth or --auth-file (or --upload-anonymous)");
    else
        r = http_serve_run(&o);
    free(o.auth_file_data);
    http_upgrade_free_command(&o);
    return r;
}

/* netkit http passwd USER: a line for --auth-file, from a password read on stdin. */
static int cmd_http_passwd(int argc, char **argv)
{
    const char *cmd = argv[0];
    static const char usage[] =
        "usage: netkit http passwd USER [--iterations N]\n"
        "\n"
        "Ask for a password twice on the terminal (not echoed), or read the first line of\n"
        "stdin when it is not a terminal, and print 'USER:HASH' for --auth-file.\n"
        "HASH is pbkdf2-sha256$ITER$SALT$HASH: PBKDF2-HMAC-SHA256 with ITER iterations\n"
        "(default 100000) and a random 16-byte salt; SALT and HASH (32 bytes) in base64.\n";
    const char *user = NULL;
    long iter = 100000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return CLI_OK;
        }
        if (strcmp(argv[i], "--iterations") == 0) {
            if (i + 1 >= argc || cli_parse_long(argv[i + 1], 1000, 10000000, &iter) < 0)
                return cli_usage(cmd, "invalid --iterations (1000 to 10000000)");
            i++;
        } else if (argv[i][0] == '-') {
            return cli_usage(cmd, "unknown option '%s'", argv[i]);
        } else if (!user) {
            user = argv[i];
        } else {
            return cli_usage(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!user || !*user || strchr(user, ':') || strchr(user, '\n'))
        return cli_usage(cmd, "need a USER without ':'");
    char pass[1024];
    if (isatty(STDIN_FILENO)) {
        /* As htpasswd: two prompts, nothing echoed, and a typo caught before it is stored. */
        char again[sizeof pass] = "";
        int r = cli_read_password(stdin, stderr, "New password: ", pass, sizeof pass);
        if (r == 0)
            r = cli_read_password(stdin, stderr, "Re-type new password: ", again, sizeof again);
        int same = r == 0 && strcmp(pass, again) == 0;
        memset(again, 0, sizeof again);
        if (r < 0 || !same) {
            memset(pass, 0, sizeof pass);
            if (r == -ENODATA)
                return cli_fail(cmd, "no password given");
            if (r < 0)
                return cli_fail(cmd, "cannot read the password: %s", nk_strerror(r));
            return cli_fail(cmd, "passwords do not match");
        }
    } else if (!fgets(pass, sizeof pass, stdin)) {
        return cli_fail(cmd, "no password on stdin");
    }
    size_t len = strcspn(pass, "\r\n");
    pass[len] = '\0';
    if (len == 0)
        return cli_fail(cmd, "empty password");
    unsigned char salt[16];
    if (getrandom(salt, sizeof salt, 0) != (ssize_t)sizeof salt)
        return cli_fail(cmd, "no random bytes for the salt");
    char hash[160];
    int n = nk_httpd_auth_hash(pass, len, (unsigned)iter, salt, sizeof salt, hash, sizeof hash);
    memset(pass, 0, sizeof pass);
    if (n < 0)
        return cli_fail(cmd, "cannot hash: %s", nk_strerror(n));
    printf("%s:%s\n", user, hash);
    return CLI_OK;
}

static const cli_cmd http_commands[] = {
    {"serve", "serve files over HTTP/1.1", cmd_http_serve},
    {"get", "HTTP/1.1 client: show the exchange, download files", cmd_http_get},
    {"passwd", "print an --auth-file line for a user (asks for the password)", cmd_http_passwd},
    {NULL, NULL, NULL},
};

int cmd_http(int argc, char **argv)
{
    return cli_dispatch("http", http_commands, argc, argv);
}
