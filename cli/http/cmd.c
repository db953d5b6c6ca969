/* netkit http serve and http passwd: their option tables and argument parsing (the serving
 * itself is http/serve.c; http get is http/get.c).
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
#include "opt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* ---- http serve: the options -------------------------------------------------------------- */

/* Keys of the long-only options, in the order of the table. */
enum {
    SERVE_PROXY_FROM = CLI_OPT_LONG, SERVE_TLS_CERT, SERVE_TLS_KEY, SERVE_TLS_SELF,
    SERVE_REDIRECT_HTTPS, SERVE_HSTS, SERVE_NO_HTTP2, SERVE_H2_STREAMS, SERVE_CPU_AFFINITY,
    SERVE_BACKEND, SERVE_INDEX, SERVE_NO_LISTING, SERVE_DOTFILES, SERVE_SYMLINKS, SERVE_ARCHIVES,
    SERVE_ACCESS_LOG, SERVE_MAX_CONNS, SERVE_HEADER_TO, SERVE_IDLE_TO, SERVE_SEND_TO,
    SERVE_BODY_TO, SERVE_SNDBUF, SERVE_UNSENT_MAX, SERVE_MAX_HEADER, SERVE_MAX_BODY,
    SERVE_UPLOAD, SERVE_UPLOAD_ANON, SERVE_MKDIRS, SERVE_AUTH, SERVE_AUTH_FILE, SERVE_ECHO,
    SERVE_GZIP, SERVE_GZIP_LEVEL, SERVE_CORS, SERVE_SPA, SERVE_STATUS, SERVE_STATUS_PUBLIC,
    SERVE_HEALTH, SERVE_HEALTH_GRACE, SERVE_LOG_FORMAT, SERVE_SENDFILE,
};

static const cli_opt serve_opts[] = {
    {"listen", 'l', "ADDR",
     "listen on ADDR: HOST:PORT, [V6]:PORT, PORT (every interface) or unix:PATH, after http:// "
     "(the default) or https://; repeatable (default 127.0.0.1:8080, or https://127.0.0.1:8443 "
     "when TLS options are given).\n"
     "proxy+http:// and proxy+https:// listen behind a load balancer (HAProxy's send-proxy or "
     "send-proxy-v2): each connection must begin with a PROXY protocol header (v1 text or v2 "
     "binary), read before TLS and HTTP and within --header-timeout, from a peer allowed by "
     "--proxy-from. The client it names is then the client everywhere: access log, -v, the "
     "--status loopback rule, --auth failure limits. A missing or malformed header, or one from "
     "another peer, closes the connection (counted as proxy_refused on the status page, logged "
     "at most once per 10 seconds). A LOCAL header (the balancer's health checks) keeps the "
     "balancer's own address.\n"
     "Listening sockets passed by systemd (socket activation: LISTEN_FDS and LISTEN_PID) are "
     "served too, and stand for the default listener; each one's FileDescriptorName= "
     "(LISTEN_FDNAMES) chooses its scheme: http (any other name), https, proxy+http, "
     "proxy+https. With NOTIFY_SOCKET set (Type=notify), READY=1 is sent once every worker "
     "accepts and STOPPING=1 when the drain begins"},
    {"proxy-from", SERVE_PROXY_FROM, "CIDR",
     "peers allowed to send a PROXY header: an address or ADDRESS/BITS; repeatable (default "
     "127.0.0.0/8 and ::1, a balancer on the same machine); others are closed. A unix-socket "
     "peer is always allowed"},
    {"tls-cert", SERVE_TLS_CERT, "FILE",
     "certificate chain (PEM, leaf first) for the https:// listeners; repeatable, the first "
     "being the default and the others chosen by the name the client asks for (SNI). A "
     "directory stands for every NAME.crt in it with its NAME.key"},
    {"tls-key", SERVE_TLS_KEY, "FILE", "private key (PEM) of the --tls-cert at the same position"},
    {"tls-self-signed", SERVE_TLS_SELF, NULL,
     "make an ECDSA P-256 certificate in memory at start, for localhost, this machine's name and "
     "the listeners' addresses (every interface's for a listener on all of them), and print its "
     "SHA-256 fingerprint, which a client checks with netkit http get --pin-sha256"},
    {"redirect-https", SERVE_REDIRECT_HTTPS, NULL,
     "the http:// listeners answer every request with 308 to the same path and query over https "
     "(the request's host when it is a plain name or address, else the server's), before any "
     "credentials are asked for"},
    {"hsts", SERVE_HSTS, "SECONDS",
     "Strict-Transport-Security: max-age=SECONDS on every response sent over TLS"},
    {"no-http2", SERVE_NO_HTTP2, NULL,
     "serve HTTP/1.x only. By default an https:// listener offers HTTP/2 (h2) by ALPN before "
     "http/1.1, and an http:// listener serves HTTP/2 (h2c) to a client that opens with the "
     "HTTP/2 connection preface (prior knowledge); every feature works the same over both"},
    {"h2-max-streams", SERVE_H2_STREAMS, "N",
     "concurrent HTTP/2 streams a client may open on one connection "
     "(SETTINGS_MAX_CONCURRENT_STREAMS, default 100)"},
    {"workers", 'w', "N",
     "worker processes, each with its own loop and SO_REUSEPORT listener, under a supervisor "
     "that restarts one that dies (default: one per CPU)"},
    {"cpu-affinity", SERVE_CPU_AFFINITY, NULL,
     "pin worker N to the N-th CPU the server may use (at most one worker per CPU), and give "
     "each new connection to the worker on the CPU that received its first packet (a BPF "
     "program on the SO_REUSEPORT group, SO_ATTACH_REUSEPORT_CBPF), so a connection's packets "
     "and its worker share one CPU's caches. Connections received on other CPUs are spread by "
     "the kernel's hash"},
    {"backend", SERVE_BACKEND, "NAME",
     "event loop backend: epoll, uring, poll or select (default: $NETKIT_BACKEND, else epoll)"},
    {"index", SERVE_INDEX, "NAME", "index file of a directory (default index.html)"},
    {"no-listing", SERVE_NO_LISTING, NULL, "answer 403 for directories without an index"},
    {"dotfiles", SERVE_DOTFILES, NULL, "serve names starting with a dot (404 by default)"},
    {"follow-symlinks", SERVE_SYMLINKS, NULL,
     "serve symbolic links that point outside DIR (404 by default)"},
    {"archives", SERVE_ARCHIVES, NULL,
     "a directory also downloads as one archive of what its listing lists, streamed: "
     "?download=tar (POSIX ustar) or ?download=tar.gz (404 by default)"},
    {"access-log", SERVE_ACCESS_LOG, "DEST",
     "where the access log goes: FILE, '-' for standard output (the default) or 'off'"},
    {"max-conns", SERVE_MAX_CONNS, "N",
     "open connections per worker; accepting pauses at the limit (default 10000)"},
    {"header-timeout", SERVE_HEADER_TO, "SEC", "time for a request head to arrive (default 10)"},
    {"idle-timeout", SERVE_IDLE_TO, "SEC", "keep-alive time between requests (default 30)"},
    {"send-timeout", SERVE_SEND_TO, "SEC",
     "time a client may stall a response or a request body (default 60)"},
    {"body-timeout", SERVE_BODY_TO, "SEC",
     "total time for a request body, plus 1 s per KiB received (default 60; 0: only the "
     "--send-timeout gap)"},
    {"sndbuf", SERVE_SNDBUF, "BYTES",
     "fixed socket send buffer per connection, 4096 to 67108864 (default: kernel autotuning)"},
    {"unsent-max", SERVE_UNSENT_MAX, "BYTES",
     "unsent bytes queued per connection, TCP_NOTSENT_LOWAT (default 262144; 0: the kernel's "
     "setting): bounds what a client that stops reading pins"},
    {"sendfile", SERVE_SENDFILE, "MODE",
     "how file bodies over plain connections are sent: on (sendfile, no copy in the server), "
     "off (read and send, as through TLS), or auto (the default: off for bodies from 4 MiB up "
     "to loopback and unix-socket clients, whose own copy out of sendfile's pages is slower, "
     "on otherwise)"},
    {"max-header-bytes", SERVE_MAX_HEADER, "N",
     "request head size limit, 431 beyond (default 16384)"},
    {"max-body-bytes", SERVE_MAX_BODY, "N",
     "request body size limit, 413 beyond (default 1048576). An upload whose credentials were "
     "checked has no limit but the disk (507 when full) unless this option is given"},
    {"upload", SERVE_UPLOAD, NULL,
     "allow PUT (create or replace a file), DELETE (a file, or a directory) and POST of "
     "multipart/form-data files to a directory; bodies go to temporary files renamed once the "
     "whole request arrived. A form does not replace an existing file (409) unless it carries "
     "overwrite=1. DELETE removes an empty directory; one with entries only when the request "
     "carries Depth: infinity or the query recursive=1 (otherwise 409, saying how many entries "
     "are below it; the listing's delete button asks again with that number and then sends the "
     "query). The tree is removed without following symbolic links (a link is removed, its "
     "target kept) or entering another file system, and refused whole (409, nothing deleted) "
     "when it holds an entry the listing would not show (a dotfile without --dotfiles, an "
     "upload in progress, a special file) or more than 10000 entries or 32 levels of "
     "directories; a removal that fails half-way names the entry it stopped at. Any other "
     "Depth is 400; the root is never deleted (403). Needs credentials"},
    {"upload-anonymous", SERVE_UPLOAD_ANON, NULL, "allow --upload without credentials"},
    {"mkdirs", SERVE_MKDIRS, NULL,
     "PUT creates missing parent directories (else 409), and a POST of the form field "
     "mkdir=NAME to a directory creates that directory (201, or 303 back to the listing for a "
     "browser)"},
    {"auth", SERVE_AUTH, "USER:PASS",
     "HTTP Basic credentials, repeatable; without --upload they protect every request, with it "
     "only writes"},
    {"auth-file", SERVE_AUTH_FILE, "FILE",
     "credentials from FILE: lines 'USER:pbkdf2-sha256$ITER$SALT$HASH' made by netkit http "
     "passwd (blank lines and lines starting with '#' are skipped)"},
    {"echo", SERVE_ECHO, NULL,
     "answer every request with what was received (text, or JSON with Accept: "
     "application/json)"},
    {"gzip", SERVE_GZIP, NULL,
     "compress text-like responses over 1 KiB on the fly for clients that accept gzip "
     "(chunked; HTTP/1.0 and Range requests get the identity response)"},
    {"gzip-level", SERVE_GZIP_LEVEL, "N", "compression level 1 to 9 (default 6; implies --gzip)"},
    {"cors", SERVE_CORS, NULL,
     "allow any origin (Access-Control-Allow-Origin: * on every response) and answer CORS "
     "preflight requests"},
    {"spa", SERVE_SPA, NULL,
     "single-page apps: a missing path without an extension, asked by a client that accepts "
     "text/html, gets /index.html instead of 404"},
    {"status", SERVE_STATUS, "PATH",
     "live counters as JSON at PATH (Prometheus text format with ?format=prometheus); loopback "
     "clients only"},
    {"status-public", SERVE_STATUS_PUBLIC, NULL, "show --status to every client"},
    {"health", SERVE_HEALTH, "PATH",
     "GET or HEAD PATH answers 200 \"ok\" while the server serves and 503 \"draining\" once it "
     "stops (SIGTERM), with no credentials asked, for a load balancer's checks. New connections "
     "are not accepted while draining, so the 503 reaches requests already on their way; see "
     "--health-grace"},
    {"health-grace", SERVE_HEALTH_GRACE, "SECONDS",
     "on SIGTERM, first answer --health with 503 for SECONDS (0 to 3600) while still accepting "
     "and serving everything else, so balancers take the node out before it stops; then drain "
     "as usual (default 0)"},
    {"log-format", SERVE_LOG_FORMAT, "FMT",
     "access log format: combined (the combined log format, default) or json (one JSON object "
     "per line: time, client, method, path, protocol, status, bytes, duration_us, user_agent, "
     "referer)"},
    {"verbose", 'v', NULL,
     "print each request head on stderr, after a tag naming the peer and the connection, "
     "[127.0.0.1:54321 #3] (#W.N: worker W's connection N)"},
    {"quiet", 'q', NULL, "no access log on stdout, no extra messages"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand serve_operands[] = {
    {"DIR", "the folder whose files are served (default: the current directory); nothing "
            "outside it is served"},
    {NULL, NULL},
};

static void serve_notes(FILE *out)
{
    fputs("Once ready, prints one 'listening on URL' line per listener on stderr.\n"
          "SIGTERM/SIGINT stop gracefully: the first stops accepting and lets the responses in\n"
          "flight finish (up to 30 s), a second stops at once. SIGHUP reopens the access log\n"
          "file and reloads the TLS certificates (a certificate that fails to load keeps the old\n"
          "one); SIGUSR2 starts the binary now at this one's path on the same listening sockets,\n"
          "and once it accepts, this server drains and exits (zero-downtime upgrade; a new\n"
          "binary that fails to start leaves this one serving). contrib/netkit.socket and\n"
          "contrib/netkit.service are examples of a systemd setup.\n",
          out);
}

static const cli_spec serve_spec = {
    .cmd = "http serve",
    .synopsis = "[DIR] [options]",
    .about = "Serve the files below DIR (default: the current directory) over HTTP/1.1 and "
             "HTTP/2.\n",
    .operands = serve_operands,
    .opts = serve_opts,
    .notes = serve_notes,
};
CLI_SPEC_REGISTER(serve_spec);

/* ---- http serve: the options' values ------------------------------------------------------ */

/* A group's answer for an option that belongs to another group. */
enum { SERVE_NOT_MINE = -2 };

/* A PATH served by the server itself (--status, --health): absolute, no query or fragment. */
static int serve_path_ok(const char *path)
{
    return path[0] == '/' && !strpbrk(path, "?# \t");
}

/* Where and how it listens: -l, -w, --backend, --cpu-affinity, --proxy-from. */
static int serve_listen_opt(http_serve_opts *o, int key, const char *value)
{
    long v;
    switch (key) {
    case 'l':
        if (o->nlisten >= HTTP_MAX_LISTEN)
            return cli_usage(o->cmd, "too many listeners (at most %d)", HTTP_MAX_LISTEN);
        o->listen[o->nlisten++] = value;
        return 0;
    case 'w':
        if (cli_parse_long(value, 1, 256, &v) < 0)
            return cli_usage(o->cmd, "invalid worker count '%s' (1 to 256)", value);
        o->workers = (int)v;
        return 0;
    case SERVE_BACKEND: o->backend = value; return 0;
    case SERVE_CPU_AFFINITY: o->cpu_affinity = 1; return 0;
    case SERVE_PROXY_FROM: {
        nk_proxy_cidr range;
        if (nk_proxy_cidr_parse(value, &range) < 0)
            return cli_usage(o->cmd, "invalid --proxy-from '%s' (an address or ADDRESS/BITS)",
                             value);
        if (o->nproxy_from >= HTTP_MAX_PROXY_FROM)
            return cli_usage(o->cmd, "too many --proxy-from (at most %d)", HTTP_MAX_PROXY_FROM);
        o->proxy_from[o->nproxy_from++] = value;
        return 0;
    }
    default:
        return SERVE_NOT_MINE;
    }
}

/* TLS and HTTP/2: --tls-*, --redirect-https, --hsts, --no-http2, --h2-max-streams. */
static int serve_tls_opt(http_serve_opts *o, int key, const char *value)
{
    long v;
    switch (key) {
    case SERVE_TLS_CERT:
    case SERVE_TLS_KEY:
        if ((key == SERVE_TLS_CERT ? o->ncerts : o->nkeys) >= HTTP_MAX_CERTS)
            return cli_usage(o->cmd, "too many certificates (at most %d)", HTTP_MAX_CERTS);
        if (key == SERVE_TLS_CERT)
            o->tls_cert[o->ncerts++] = value;
        else
            o->tls_key[o->nkeys++] = value;
        return 0;
    case SERVE_TLS_SELF: o->tls_self_signed = 1; return 0;
    case SERVE_REDIRECT_HTTPS: o->redirect_https = 1; return 0;
    case SERVE_HSTS:
        if (cli_parse_long(value, 0, 100000000, &v) < 0)
            return cli_usage(o->cmd, "invalid --hsts '%s' (seconds)", value);
        o->hsts = (unsigned)v;
        return 0;
    case SERVE_NO_HTTP2: o->no_http2 = 1; return 0;
    case SERVE_H2_STREAMS:
        if (cli_parse_long(value, 1, 100000, &v) < 0)
            return cli_usage(o->cmd, "invalid --h2-max-streams '%s' (1 to 100000)", value);
        o->h2_max_streams = (unsigned)v;
        return 0;
    default:
        return SERVE_NOT_MINE;
    }
}

/* What is served and how: --index, --no-listing, --dotfiles, ..., --gzip, --cors, --spa. */
static int serve_content_opt(http_serve_opts *o, int key, const char *value)
{
    long v;
    switch (key) {
    case SERVE_INDEX: o->cfg.index = value; return 0;
    case SERVE_NO_LISTING: o->cfg.listing = 0; return 0;
    case SERVE_DOTFILES: o->cfg.dotfiles = 1; return 0;
    case SERVE_SYMLINKS: o->cfg.follow_symlinks = 1; return 0;
    case SERVE_ARCHIVES: o->cfg.archives = 1; return 0;
    case SERVE_ECHO: o->cfg.echo = 1; return 0;
    case SERVE_GZIP: o->cfg.gzip = 1; return 0;
    case SERVE_GZIP_LEVEL:
        if (cli_parse_long(value, 1, 9, &v) < 0)
            return cli_usage(o->cmd, "invalid --gzip-level '%s' (1 to 9)", value);
        o->cfg.gzip = 1;
        o->cfg.gzip_level = (int)v;
        return 0;
    case SERVE_CORS: o->cfg.cors = 1; return 0;
    case SERVE_SPA: o->cfg.spa = 1; return 0;
    default:
        return SERVE_NOT_MINE;
    }
}

/* The timeouts: --header-timeout, --idle-timeout, --send-timeout, --body-timeout. */
static int serve_timeout_opt(http_serve_opts *o, int key, const char *value)
{
    long v;
    switch (key) {
    case SERVE_BODY_TO:
        if (cli_parse_seconds(value, &v) < 0 || v < 0)
            return cli_usage(o->cmd, "invalid --body-timeout '%s' (seconds, 0 for none)", value);
        o->cfg.body_total_timeout_ms = (unsigned)v;
        return 0;
    case SERVE_HEADER_TO:
    case SERVE_IDLE_TO:
    case SERVE_SEND_TO:
        if (cli_parse_seconds(value, &v) < 0 || v <= 0)
            return cli_usage(o->cmd, "invalid timeout '%s' (seconds, more than 0)", value);
        if (key == SERVE_HEADER_TO)
            o->cfg.header_timeout_ms = (unsigned)v;
        else if (key == SERVE_IDLE_TO)
            o->cfg.idle_timeout_ms = (unsigned)v;
        else
            o->cfg.send_timeout_ms = o->cfg.body_timeout_ms = (unsigned)v;
        return 0;
    default:
        return SERVE_NOT_MINE;
    }
}

/* Sizes, counts and how bytes go out: --max-conns, --sndbuf, --unsent-max, --sendfile,
 * --max-header-bytes, --max-body-bytes. */
static int serve_limit_opt(http_serve_opts *o, int key, const char *value)
{
    long v;
    switch (key) {
    case SERVE_MAX_CONNS:
        if (cli_parse_long(value, 1, 10000000, &v) < 0)
            return cli_usage(o->cmd, "invalid --max-conns '%s'", value);
        o->cfg.max_conns = (unsigned)v;
        return 0;
    case SERVE_SNDBUF:
        if (cli_parse_long(value, 4096, 64L << 20, &v) < 0)
            return cli_usage(o->cmd, "invalid --sndbuf '%s' (4096 to 67108864 bytes)", value);
        o->cfg.sndbuf = (int)v;
        return 0;
    case SERVE_UNSENT_MAX:
        if (cli_parse_long(value, 0, 64L << 20, &v) < 0 || (v > 0 && v < 4096))
            return cli_usage(o->cmd, "invalid --unsent-max '%s' (0, or 4096 to 67108864 bytes)",
                             value);
        o->cfg.unsent_max = (int)v;
        return 0;
    case SERVE_SENDFILE:
        if (strcmp(value, "auto") == 0)
            o->cfg.sendfile = NK_HTTPD_SENDFILE_AUTO;
        else if (strcmp(value, "on") == 0)
            o->cfg.sendfile = NK_HTTPD_SENDFILE_ON;
        else if (strcmp(value, "off") == 0)
            o->cfg.sendfile = NK_HTTPD_SENDFILE_OFF;
        else
            return cli_usage(o->cmd, "invalid --sendfile '%s' (auto, on or off)", value);
        return 0;
    case SERVE_MAX_HEADER:
        if (cli_parse_long(value, 256, 1 << 24, &v) < 0)
            return cli_usage(o->cmd, "invalid --max-header-bytes '%s' (256 to 16777216)", value);
        o->cfg.limits.max_head = (size_t)v;
        if (o->cfg.limits.max_request_line > (size_t)v)
            o->cfg.limits.max_request_line = (size_t)v;
        return 0;
    case SERVE_MAX_BODY:
        if (cli_parse_long(value, 0, (long)1 << 62, &v) < 0)
            return cli_usage(o->cmd, "invalid --max-body-bytes '%s'", value);
        /* Given explicitly, the limit holds for authenticated uploads too. */
        o->cfg.max_body = o->cfg.max_body_authenticated = (uint64_t)v;
        return 0;
    default:
        return SERVE_NOT_MINE;
    }
}

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

/* Writes and who may make them: --upload, --upload-anonymous, --mkdirs, --auth, --auth-file. */
static int serve_auth_opt(http_serve_opts *o, int key, const char *value)
{
    switch (key) {
    case SERVE_UPLOAD: o->cfg.upload = 1; return 0;
    case SERVE_UPLOAD_ANON: o->upload_anonymous = 1; return 0;
    case SERVE_MKDIRS: o->cfg.mkdirs = 1; return 0;
    case SERVE_AUTH: {
        /* argv is ours to cut: USER ends at the colon, PASS follows it */
        char *user = (char *)value;
        char *colon = strchr(user, ':');
        if (!colon || colon == user)
            return cli_usage(o->cmd, "invalid --auth '%s' (USER:PASS)", value);
        if (o->nusers >= HTTP_MAX_USERS)
            return cli_usage(o->cmd, "too many users");
        *colon = '\0';
        o->users[o->nusers++] = (nk_httpd_user){user, colon + 1, NULL};
        return 0;
    }
    case SERVE_AUTH_FILE:
        return load_auth_file(o->cmd, value, o);
    default:
        return SERVE_NOT_MINE;
    }
}

/* What it tells: --access-log, --log-format, --status, --health, -v, -q. */
static int serve_report_opt(http_serve_opts *o, int key, const char *value)
{
    long v;
    switch (key) {
    case SERVE_ACCESS_LOG: o->access_log = value; return 0;
    case SERVE_LOG_FORMAT:
        if (strcmp(value, "combined") == 0)
            o->cfg.log_format = NK_HTTPD_LOG_COMBINED;
        else if (strcmp(value, "json") == 0)
            o->cfg.log_format = NK_HTTPD_LOG_JSON;
        else
            return cli_usage(o->cmd, "invalid --log-format '%s' (combined or json)", value);
        return 0;
    case SERVE_STATUS:
        if (!serve_path_ok(value))
            return cli_usage(o->cmd, "invalid --status '%s' (a path such as /.netkit/status)",
                             value);
        o->cfg.status_path = value;
        return 0;
    case SERVE_STATUS_PUBLIC: o->cfg.status_public = 1; return 0;
    case SERVE_HEALTH:
        if (!serve_path_ok(value))
            return cli_usage(o->cmd, "invalid --health '%s' (a path such as /health)", value);
        o->health = value;
        return 0;
    case SERVE_HEALTH_GRACE:
        if (cli_parse_long(value, 0, 3600, &v) < 0)
            return cli_usage(o->cmd, "invalid --health-grace '%s' (0 to 3600 seconds)", value);
        o->health_grace = (unsigned)v;
        return 0;
    case 'v': o->verbose = 1; return 0;
    case 'q': o->quiet = 1; return 0;
    default:
        return SERVE_NOT_MINE;
    }
}

static int on_serve_opt(void *ctx, int key, const char *value)
{
    static int (*const groups[])(http_serve_opts *, int, const char *) = {
        serve_listen_opt, serve_tls_opt,  serve_content_opt, serve_timeout_opt,
        serve_limit_opt,  serve_auth_opt, serve_report_opt,
    };
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        int rc = groups[i](ctx, key, value);
        if (rc != SERVE_NOT_MINE)
            return rc;
    }
    return CLI_USAGE; /* a key of the table no group takes: cannot happen */
}

/* ---- http serve: the command -------------------------------------------------------------- */

/* Options, then the optional DIR. 0, CLI_OPT_HELP_SHOWN or an exit code. */
static int parse_serve(int argc, char **argv, http_serve_opts *o)
{
    int first;
    int rc = cli_opt_parse(&serve_spec, argc, argv, on_serve_opt, o, &first);
    if (rc)
        return rc;
    if (first < argc)
        o->root = argv[first++];
    if (first < argc)
        return cli_usage(o->cmd, "unexpected argument '%s'", argv[first]);
    return 0;
}

/* What the options leave to be decided once all are known: the listeners (inherited ones
 * first), TLS, the worker count, the access log. 0 or an exit code. */
static int serve_settle(http_serve_opts *o)
{
    int r = http_inherit_listeners(o);
    if (r)
        return r;
    /* A replacement started by SIGUSR2 serves what the old server served: its sockets. */
    if (o->upgrade_fd >= 0)
        o->nlisten = 0;
    /* Listeners from a service manager stand for the default one. */
    if (o->nlisten == 0 && o->ninherited == 0)
        o->listen[o->nlisten++] = o->ncerts || o->tls_self_signed ? "https://127.0.0.1:8443"
                                                                  : "127.0.0.1:8080";
    r = http_tls_split_schemes(o);
    if (r == 0)
        r = http_tls_check(o);
    if (r)
        return r;
    if (o->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o->workers = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
    }
    if (!o->access_log)
        o->access_log = o->quiet ? "off" : "-";
    o->cfg.root = o->root;
    o->cfg.users = o->users;
    o->cfg.nusers = o->nusers;
    if (o->cfg.upload && o->nusers == 0 && !o->upload_anonymous)
        return cli_usage(o->cmd, "--upload needs --auth or --auth-file (or --upload-anonymous)");
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
    if (r == 0)
        r = serve_settle(&o);
    if (r == 0)
        r = http_serve_run(&o);
    free(o.auth_file_data);
    http_upgrade_free_command(&o);
    return r == CLI_OPT_HELP_SHOWN ? CLI_OK : r;
}

/* ---- http passwd -------------------------------------------------------------------------- */

#define PASSWD_DEFAULT_ITERATIONS 100000

enum { PASSWD_ITERATIONS = CLI_OPT_LONG };

static const cli_opt passwd_opts[] = {
    {"iterations", PASSWD_ITERATIONS, "N",
     "PBKDF2-HMAC-SHA256 iterations, 1000 to 10000000 (default 100000)"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand passwd_operands[] = {
    {"USER", "the user name (no ':')"},
    {NULL, NULL},
};

static void passwd_notes(FILE *out)
{
    fputs("HASH is pbkdf2-sha256$ITER$SALT$HASH: PBKDF2-HMAC-SHA256 with ITER iterations and a\n"
          "random 16-byte salt; SALT and HASH (32 bytes) in base64. On a terminal two different\n"
          "answers exit 1.\n",
          out);
}

static const cli_spec passwd_spec = {
    .cmd = "http passwd",
    .synopsis = "USER [--iterations N]",
    .about = "Ask for a password twice on the terminal (not echoed), or read the first line of\n"
             "stdin when it is not a terminal, and print 'USER:HASH' for http serve\n"
             "--auth-file.\n",
    .operands = passwd_operands,
    .opts = passwd_opts,
    .notes = passwd_notes,
};
CLI_SPEC_REGISTER(passwd_spec);

typedef struct passwd_args {
    const char *cmd;
    const char *user;
    long iterations;
} passwd_args;

static int on_passwd_opt(void *ctx, int key, const char *value)
{
    passwd_args *a = ctx;
    if (key != PASSWD_ITERATIONS)
        return CLI_USAGE;
    if (cli_parse_long(value, 1000, 10000000, &a->iterations) < 0)
        return cli_usage(a->cmd, "invalid --iterations (1000 to 10000000)");
    return 0;
}

/* Options, then USER. 0, CLI_OPT_HELP_SHOWN or an exit code. */
static int parse_passwd(int argc, char **argv, passwd_args *a)
{
    a->cmd = argv[0];
    a->user = NULL;
    a->iterations = PASSWD_DEFAULT_ITERATIONS;
    int first;
    int rc = cli_opt_parse(&passwd_spec, argc, argv, on_passwd_opt, a, &first);
    if (rc)
        return rc;
    if (first < argc)
        a->user = argv[first++];
    if (first < argc)
        return cli_usage(a->cmd, "unexpected argument '%s'", argv[first]);
    if (!a->user || !*a->user || strchr(a->user, ':') || strchr(a->user, '\n'))
        return cli_usage(a->cmd, "need a USER without ':'");
    return 0;
}

/* The password into pass (cap bytes, NUL-terminated, line end removed) and its length: asked
 * twice on a terminal, else the first line of stdin. 0, or CLI_FAIL after a message. */
static int passwd_read(const char *cmd, char *pass, size_t cap, size_t *len)
{
    if (isatty(STDIN_FILENO)) {
        /* As htpasswd: two prompts, nothing echoed, and a typo caught before it is stored. */
        char again[1024] = "";
        int r = cli_read_password(stdin, stderr, "New password: ", pass, cap);
        if (r == 0)
            r = cli_read_password(stdin, stderr, "Re-type new password: ", again,
                                  cap < sizeof again ? cap : sizeof again);
        int same = r == 0 && strcmp(pass, again) == 0;
        memset(again, 0, sizeof again);
        if (r < 0 || !same) {
            memset(pass, 0, cap);
            if (r == -ENODATA)
                return cli_fail(cmd, "no password given");
            if (r < 0)
                return cli_fail(cmd, "cannot read the password: %s", nk_strerror(r));
            return cli_fail(cmd, "passwords do not match");
        }
    } else if (!fgets(pass, (int)cap, stdin)) {
        return cli_fail(cmd, "no password on stdin");
    }
    *len = strcspn(pass, "\r\n");
    pass[*len] = '\0';
    if (*len == 0)
        return cli_fail(cmd, "empty password");
    return 0;
}

/* netkit http passwd USER: a line for --auth-file, from a password read on stdin. */
static int cmd_http_passwd(int argc, char **argv)
{
    passwd_args a;
    int rc = parse_passwd(argc, argv, &a);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    char pass[1024];
    size_t len = 0;
    if ((rc = passwd_read(a.cmd, pass, sizeof pass, &len)) != 0)
        return rc;
    unsigned char salt[16];
    if (getrandom(salt, sizeof salt, 0) != (ssize_t)sizeof salt) {
        memset(pass, 0, sizeof pass);
        return cli_fail(a.cmd, "no random bytes for the salt");
    }
    char hash[160];
    int n = nk_httpd_auth_hash(pass, len, (unsigned)a.iterations, salt, sizeof salt, hash,
                               sizeof hash);
    memset(pass, 0, sizeof pass);
    if (n < 0)
        return cli_fail(a.cmd, "cannot hash: %s", nk_strerror(n));
    printf("%s:%s\n", a.user, hash);
    return CLI_OK;
}

/* ---- the http commands -------------------------------------------------------------------- */

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
