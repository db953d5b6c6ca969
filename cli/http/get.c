/* netkit http get: an HTTP/1.1 (or, asked, HTTP/2) client, over TLS for https:// URLs, that
 * shows the exchange
 * (-v, -i), follows redirects (-L) and downloads files atomically (-o): the body goes to a
 * temporary file next to FILE, which is synced and renamed over FILE only once the whole body
 * has arrived, so FILE is never seen half-written. --tls-info stops after the TLS handshake and
 * reports it. The exchange itself is in http/client.c (HTTP/2 in http/client_h2.c), TLS settings
 * in http/client_tls.c. */
#include "http/client.h"
#include "http/gunzip.h"
#include "opt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GET_MAX_HEADERS 64
#define GET_DEFAULT_TIMEOUT_MS 30000
#define GET_DEFAULT_MAX_REDIRS 10
/* Largest -d @FILE body held in memory. */
#define GET_MAX_DATA (1L << 30)
/* Progress bar redraws at most this often. */
#define GET_PROGRESS_MS 200

typedef struct get_opts {
    const char *cmd;
    const char *url;
    const char *output;
    const char *method;
    const char *headers[GET_MAX_HEADERS];
    int nheaders;
    const char *data;
    const char *unix_path;
    long timeout_ms;
    long max_redirs;
    int verbose, include, follow, fail, compressed, head;
    hc_tls_opts tls;
    int tls_info;
    int h2_prior; /* --http2-prior-knowledge (tls.http2 is --http2, or implied by it) */
} get_opts;

/* State of the whole command across redirects. */
typedef struct get_run {
    const get_opts *o;
    FILE *out;         /* where the body (and -i heads) go: stdout or the temporary file */
    char *tmp_path;    /* the temporary file, until renamed */
    int out_err;       /* a write to out failed (negative errno) */
    /* the current response */
    int final;         /* this head is the final one (not 1xx) */
    int deliver;       /* its body goes to out */
    int status;
    char reason[128];
    char *location;    /* Location of a redirect being followed */
    int head_request;  /* the request is HEAD: no body whatever the head says */
    hc_gunzip gz;      /* --compressed: decoding this response's gzip body */
    int gz_active;
    int gz_err;        /* the gzip body was corrupt */
    int guard_terminal;/* stdout is a terminal nobody forced (-o -): no binary there */
    int binary;        /* a binary body was refused */
    nk_tls_ctx *tls;   /* made at the first https:// URL */
    const char *host;  /* the host of the exchange under way (what its certificate names) */
    /* progress */
    int progress;
    uint64_t bytes;
    int64_t total;
    struct timespec start, last;
} get_run;

/* ---- output ------------------------------------------------------------------------------- */

static double since(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void human(double v, char *buf, size_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void draw_progress(get_run *r, int force)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!force && since(&r->last, &now) * 1000 < GET_PROGRESS_MS)
        return;
    r->last = now;
    double el = since(&r->start, &now);
    double rate = el > 0 ? (double)r->bytes / el : 0;
    char got[32], tot[32], rt[32];
    human((double)r->bytes, got, sizeof got);
    human(rate, rt, sizeof rt);
    if (r->total > 0) {
        human((double)r->total, tot, sizeof tot);
        double left = rate > 0 ? (double)((uint64_t)r->total - r->bytes) / rate : 0;
        long eta = (long)(left + 0.5);
        fprintf(stderr, "\r%s / %s %3d%%  %s/s  ETA %ld:%02ld   ", got, tot,
                (int)((double)r->bytes * 100 / (double)r->total), rt, eta / 60, eta % 60);
    } else {
        fprintf(stderr, "\r%s  %s/s   ", got, rt);
    }
    fflush(stderr);
}

static void put_out(get_run *r, const char *p, size_t n)
{
    if (r->out_err == 0 && n > 0 && fwrite(p, 1, n, r->out) != n)
        r->out_err = -(errno ? errno : EIO);
}

static int is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static void on_head(void *arg, const nk_http_response *resp, const char *raw, size_t len)
{
    get_run *r = arg;
    if (r->o->verbose)
        hc_show_lines("< ", raw, len);
    if (r->o->include)
        put_out(r, raw, len);
    if (resp->status < 200)
        return;
    r->final = 1;
    r->status = resp->status;
    snprintf(r->reason, sizeof r->reason, "%.*s", (int)resp->reason.len, resp->reason.p);
    const nk_http_header *loc = nk_http_response_header(resp, "location");
    free(r->location);
    r->location = NULL;
    if (r->o->follow && is_redirect(resp->status) && loc && loc->value.len > 0)
        r->location = strndup(loc->value.p, loc->value.len);
    /* The body of a redirect being followed is not the answer; with --fail, neither is that of
     * a non-2xx status. */
    r->deliver = !r->location && !(r->o->fail && resp->status / 100 != 2);
    r->total = resp->content_length;
    r->bytes = 0;
    if (r->gz_active) {
        hc_gunzip_free(&r->gz);
        r->gz_active = 0;
    }
    const nk_http_header *ce = nk_http_response_header(resp, "content-encoding");
    if (r->o->compressed && r->deliver && !r->head_request && ce &&
        ((ce->value.len == 4 && strncasecmp(ce->value.p, "gzip", 4) == 0) ||
         (ce->value.len == 6 && strncasecmp(ce->value.p, "x-gzip", 6) == 0)))
        r->gz_active = hc_gunzip_init(&r->gz) == 0;
    clock_gettime(CLOCK_MONOTONIC, &r->start);
    r->last = r->start;
}

/* Body bytes as they go out (decoded when --compressed): curl's rule keeps a binary body off
 * a terminal, where it could change the terminal's state, unless the user forced it. */
static int emit_body(void *arg, const char *p, size_t n)
{
    get_run *r = arg;
    if (r->guard_terminal && memchr(p, 0, n)) {
        r->binary = 1;
        return -EPERM;
    }
    put_out(r, p, n);
    return r->out_err;
}

static int on_body(void *arg, const char *p, size_t n)
{
    get_run *r = arg;
    if (!r->deliver)
        return 0;
    r->bytes += n;
    int e;
    if (r->gz_active) {
        e = hc_gunzip_feed(&r->gz, p, n, emit_body, r);
        if (e == -EBADMSG)
            r->gz_err = 1;
    } else {
        e = emit_body(r, p, n);
    }
    if (r->progress)
        draw_progress(r, 0);
    return e;
}

static void on_tls(void *arg, const nk_tls *t, const nk_addr *peer)
{
    get_run *r = arg;
    if (r->o->tls_info)
        hc_tls_report(stdout, t, peer, &r->o->tls, r->host);
    else if (r->o->verbose)
        hc_tls_describe(stderr, "* ", t, &r->o->tls, r->host);
}

/* ---- the request ------------------------------------------------------------------------- */

/* Is the -H header h named name (case-insensitive)? */
static int header_is(const char *h, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(h, name, n) == 0 && h[n] == ':';
}

/* Is name among the -H names? */
static int user_has(const get_opts *o, const char *name)
{
    for (int i = 0; i < o->nheaders; i++)
        if (header_is(o->headers[i], name))
            return 1;
    return 0;
}

/* Credentials the user gave for the URL asked for: as curl does, they do not follow a redirect
 * to another origin (another host, or the same host by another scheme or port, where they
 * could leave in clear text or reach another service). */
static int is_credential(const char *h)
{
    return header_is(h, "authorization") || header_is(h, "cookie");
}

static int build_head(const get_opts *o, const hc_url *u, const char *method, int with_body,
                      size_t body_len, int foreign, nk_buf *head)
{
    nk_buf_clear(head);
    int rc = nk_buf_printf(head, "%s %s HTTP/1.1\r\n", method, u->target);
    /* RFC 9110 section 7.2: Host is the URI's authority, without the default port. */
    if (rc >= 0 && !user_has(o, "host")) {
        const char *lb = u->ipv6 ? "[" : "", *rb = u->ipv6 ? "]" : "";
        if (u->port == hc_url_default_port(u))
            rc = nk_buf_printf(head, "Host: %s%s%s\r\n", lb, u->host, rb);
        else
            rc = nk_buf_printf(head, "Host: %s%s%s:%d\r\n", lb, u->host, rb, u->port);
    }
    if (rc >= 0 && !user_has(o, "user-agent"))
        rc = nk_buf_printf(head, "User-Agent: netkit/%s\r\n", NETKIT_VERSION);
    if (rc >= 0 && !user_has(o, "accept"))
        rc = nk_buf_append_str(head, "Accept: */*\r\n");
    if (rc >= 0 && o->compressed && !user_has(o, "accept-encoding"))
        rc = nk_buf_append_str(head, "Accept-Encoding: gzip\r\n");
    for (int i = 0; rc >= 0 && i < o->nheaders; i++) {
        if (foreign && is_credential(o->headers[i]))
            continue;
        const char *colon = strchr(o->headers[i], ':');
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vlen = strlen(v); /* OWS around the value is not part of it (RFC 9110 5.5) */
        while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (vlen) /* "Name:" alone only removes a default header */
            rc = nk_buf_printf(head, "%.*s: %.*s\r\n", (int)(colon - o->headers[i]),
                               o->headers[i], (int)vlen, v);
    }
    if (rc >= 0 && with_body) {
        if (!user_has(o, "content-type"))
            rc = nk_buf_append_str(head, "Content-Type: application/x-www-form-urlencoded\r\n");
        if (rc >= 0 && !user_has(o, "content-length"))
            rc = nk_buf_printf(head, "Content-Length: %zu\r\n", body_len);
    }
    if (rc >= 0)
        rc = nk_buf_append_str(head, "\r\n");
    return rc < 0 ? rc : 0;
}

/* -d @FILE (or @- for stdin): the file's bytes, as they are. */
static int read_data(const char *cmd, const char *spec, char **out, size_t *outlen)
{
    if (spec[0] != '@') {
        *out = strdup(spec);
        *outlen = strlen(spec);
        return *out ? 0 : cli_fail(cmd, "%s", nk_strerror(-ENOMEM));
    }
    const char *path = spec + 1;
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail(cmd, "cannot open '%s': %s", path, strerror(errno));
    nk_buf b;
    nk_buf_init(&b, GET_MAX_DATA);
    ssize_t n;
    while ((n = nk_buf_read_fd(&b, fd, 0)) > 0)
        ;
    if (fd != STDIN_FILENO)
        close(fd);
    if (n < 0) {
        nk_buf_free(&b);
        return cli_fail(cmd, "reading '%s': %s", path, nk_strerror((int)n));
    }
    size_t len = nk_buf_len(&b);
    *out = malloc(len + 1);
    if (!*out) {
        nk_buf_free(&b);
        return cli_fail(cmd, "%s", nk_strerror(-ENOMEM));
    }
    if (len)
        memcpy(*out, nk_buf_rptr(&b), len);
    *outlen = len;
    nk_buf_free(&b);
    return 0;
}

/* ---- -o FILE -------------------------------------------------------------------------------- */

static int open_output(get_run *r, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    size_t n = strlen(path) + 16;
    r->tmp_path = malloc(n);
    if (!r->tmp_path)
        return -ENOMEM;
    snprintf(r->tmp_path, n, "%.*s.%s.XXXXXX", (int)dirlen, path, path + dirlen);
    int fd = mkostemp(r->tmp_path, O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        free(r->tmp_path);
        r->tmp_path = NULL;
        return e;
    }
    r->out = fdopen(fd, "wb");
    if (!r->out) {
        int e = -errno;
        close(fd);
        unlink(r->tmp_path);
        free(r->tmp_path);
        r->tmp_path = NULL;
        return e;
    }
    return 0;
}

static void discard_output(get_run *r)
{
    if (!r->tmp_path)
        return;
    fclose(r->out);
    unlink(r->tmp_path);
    free(r->tmp_path);
    r->tmp_path = NULL;
    r->out = NULL;
}

/* Make the download durable, then visible under its name (rename is atomic on one file
 * system; syncing the directory makes the new name itself survive a crash). */
static int commit_output(get_run *r, const char *path)
{
    int fd = fileno(r->out);
    int rc = 0;
    mode_t mask = umask(0);
    umask(mask);
    if (fflush(r->out) != 0 || fchmod(fd, 0666 & ~mask) != 0 || fsync(fd) != 0)
        rc = -errno;
    if (fclose(r->out) != 0 && rc == 0)
        rc = -errno;
    r->out = NULL;
    if (rc == 0 && rename(r->tmp_path, path) != 0)
        rc = -errno;
    if (rc < 0) {
        unlink(r->tmp_path);
    } else {
        const char *slash = strrchr(path, '/');
        char *dir = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup(".");
        int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    free(r->tmp_path);
    r->tmp_path = NULL;
    return rc;
}

/* ---- the options ------------------------------------------------------------------------- */

/* Keys of the long-only options. */
enum {
    GET_COMPRESSED = CLI_OPT_LONG, GET_MAX_REDIRS, GET_UNIX, GET_CACERT, GET_PIN, GET_HTTP2,
    GET_H2_PRIOR, GET_TLS_INFO,
};

static const cli_opt get_opts_table[] = {
    {"verbose", 'v', NULL,
     "show the request sent ('> '), each response head ('< ') and the connection ('* ') on "
     "stderr; over TLS also the protocol version, cipher, ALPN protocol, how the certificate "
     "was checked and the chain the server sent (subject, issuer, validity and SHA-256 of each "
     "certificate)"},
    {"include", 'i', NULL, "write the response head(s) before the body"},
    {"head", 'I', NULL, "send HEAD and write the response head only"},
    {"compressed", GET_COMPRESSED, NULL,
     "ask for gzip (Accept-Encoding: gzip) and decode a gzip body (netkit's own --gzip "
     "responses too)"},
    {"output", 'o', "FILE",
     "write the body to FILE, atomically: a temporary file in the same directory, renamed once "
     "complete; progress on a terminal. '-o -' writes to stdout, even a binary body to a "
     "terminal"},
    {"request", 'X', "METHOD", "request method (default GET, or POST with -d)"},
    {"header", 'H', "'N: V'", "add a header, repeatable; 'N:' alone removes a default one"},
    {"data", 'd', "DATA", "send DATA as the body; @FILE sends FILE's bytes, @- stdin"},
    {"location", 'L', NULL, "follow redirects (301, 302, 303 become GET; 307, 308 resend)"},
    {"max-redirs", GET_MAX_REDIRS, "N", "follow at most N redirects (default 10)"},
    {"unix", GET_UNIX, "PATH",
     "connect to the Unix socket PATH (the URL still names the host)"},
    {"unix-socket", GET_UNIX, "PATH", "the same as --unix (curl's name)"},
    {"fail", 'f', NULL, "exit 1 when the final status is not 2xx"},
    {"timeout", 'w', "SEC",
     "connect timeout, the time for the whole TLS handshake, and the longest wait for the "
     "server (default 30)"},
    {"cacert", GET_CACERT, "FILE",
     "check https servers against the CA certificates of FILE (PEM) instead of the system's "
     "store"},
    {"pin-sha256", GET_PIN, "HEX",
     "accept only the server certificate whose SHA-256 fingerprint is HEX (64 hex digits, "
     "colons allowed, as http serve --tls-self-signed prints it), without CA or name checks"},
    {"insecure", 'k', NULL, "do not check the server's certificate at all"},
    {"http2", GET_HTTP2, NULL,
     "over https://, offer ALPN h2 before http/1.1 and speak HTTP/2 (RFC 9113) when the server "
     "picks h2; HTTP/1.1 when it picks http/1.1 or nothing. Over http:// it changes nothing "
     "(HTTP/1.1, said under -v): there is no Upgrade to h2c, see --http2-prior-knowledge. "
     "Everything else works the same: the request carries the same fields (Host as :authority, "
     "connection-specific fields left out), -i and -I write the head as \"HTTP/2 200\" and "
     "lowercase \"name: value\" lines, redirects follow the same rules. A stream the server "
     "resets (RST_STREAM) or a connection it ends with an error (GOAWAY) ends the command with "
     "one line naming the HTTP/2 error code, and exit status 1. With -v every frame sent (> ) "
     "and received (< ) is shown on one line, \"HEADERS stream=1 flags=END_STREAM|END_HEADERS "
     "length=37\", the header fields and settings it carries indented below it, window "
     "increments and error codes by name"},
    {"http2-prior-knowledge", GET_H2_PRIOR, NULL,
     "over http://, speak HTTP/2 (h2c) from the first byte: the connection preface, then "
     "frames, without asking the server first; the server must speak it (one that answers in "
     "HTTP/1.1 is reported as such). Over https:// the same as --http2"},
    {"tls-info", GET_TLS_INFO, NULL,
     "only do the TLS handshake (no request is sent) and print on stdout the server's address, "
     "the protocol, cipher, ALPN protocol, how the certificate was checked and the chain, then "
     "exit; as lookup tls"},
    {NULL, 0, NULL, NULL},
};

static const cli_operand get_operands[] = {
    {"URL", "what to ask for: http://HOST[:PORT][/PATH][?QUERY] or https://...; HOST a name, "
            "an IPv4 address or [IPV6]; without a scheme, http://"},
    {NULL, NULL},
};

static void get_notes(FILE *out)
{
    fputs("https:// checks the certificate against the system's CAs and the URL's host (an IP\n"
          "address must be among the certificate's IP addresses), offers ALPN http/1.1 (h2 first\n"
          "with --http2), and sends the host as SNI. -v also shows the TLS version, cipher, ALPN\n"
          "and certificate chain.\n"
          "A redirect to another origin (scheme, host or port) does not get -H Authorization or\n"
          "Cookie.\n"
          "A binary body (one with a NUL byte) is not written to a terminal unless -o - says so.\n"
          "\n"
          "Exit status: 0 success, 1 failure (connection, protocol, --fail), 2 bad usage.\n",
          out);
}

static const cli_spec get_spec = {
    .cmd = "http get",
    .synopsis = "URL [options]",
    .about = "Send one HTTP request (http:// or https://) and write the response body to stdout.\n",
    .operands = get_operands,
    .opts = get_opts_table,
    .notes = get_notes,
};
CLI_SPEC_REGISTER(get_spec);

/* A group's answer for an option that belongs to the other group. */
enum { GET_NOT_MINE = -2 };

/* A method or a header name is an RFC 9110 token: visible ASCII without separators. */
static int get_token_char(char c)
{
    return c > ' ' && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

/* -X METHOD: a token. 0 or an exit code. */
static int get_method_ok(const char *cmd, const char *method)
{
    for (const char *p = method; *p; p++)
        if (!get_token_char(*p))
            return cli_usage(cmd, "invalid method '%s'", method);
    if (!*method)
        return cli_usage(cmd, "empty method");
    return 0;
}

/* -H 'Name: value': a token name, a colon, and no line break anywhere. */
static int get_header_ok(const char *header)
{
    const char *colon = strchr(header, ':');
    if (!colon || colon == header || strpbrk(header, "\r\n"))
        return 0;
    for (const char *p = header; p < colon; p++)
        if (!get_token_char(*p))
            return 0;
    return 1;
}

/* What is sent and what is shown: -v, -i, -I, --compressed, -o, -X, -H, -d. */
static int get_request_opt(get_opts *o, int key, const char *value)
{
    switch (key) {
    case 'v': o->verbose = 1; return 0;
    case 'i': o->include = 1; return 0;
    case 'I': o->head = 1; return 0;
    case GET_COMPRESSED: o->compressed = 1; return 0;
    case 'o': o->output = value; return 0;
    case 'X': {
        int rc = get_method_ok(o->cmd, value);
        if (rc == 0)
            o->method = value;
        return rc;
    }
    case 'H':
        if (!get_header_ok(value))
            return cli_usage(o->cmd, "invalid header '%s' (want 'Name: value')", value);
        if (o->nheaders >= GET_MAX_HEADERS)
            return cli_usage(o->cmd, "too many -H (at most %d)", GET_MAX_HEADERS);
        o->headers[o->nheaders++] = value;
        return 0;
    case 'd': o->data = value; return 0;
    default:
        return GET_NOT_MINE;
    }
}

/* How it connects and what it accepts: -L, --max-redirs, --unix, -f, -w, TLS and HTTP/2. */
static int get_connect_opt(get_opts *o, int key, const char *value)
{
    long v;
    switch (key) {
    case 'L': o->follow = 1; return 0;
    case GET_MAX_REDIRS:
        if (cli_parse_long(value, 0, 1000, &v) < 0)
            return cli_usage(o->cmd, "invalid --max-redirs '%s' (0 to 1000)", value);
        o->max_redirs = v;
        return 0;
    case GET_UNIX: o->unix_path = value; return 0;
    case 'f': o->fail = 1; return 0;
    case 'w':
        if (cli_parse_seconds(value, &v) < 0 || v <= 0)
            return cli_usage(o->cmd, "invalid timeout '%s' (seconds, more than 0)", value);
        o->timeout_ms = v;
        return 0;
    case GET_CACERT: o->tls.ca_file = value; return 0;
    case GET_PIN:
        if (!hc_tls_pin_valid(value))
            return cli_usage(o->cmd, "invalid --pin-sha256 '%s' (64 hex digits, colons allowed)",
                             value);
        o->tls.pin = value;
        return 0;
    case 'k': o->tls.insecure = 1; return 0;
    case GET_TLS_INFO: o->tls_info = 1; return 0;
    case GET_HTTP2: o->tls.http2 = 1; return 0;
    case GET_H2_PRIOR: o->tls.http2 = o->h2_prior = 1; return 0;
    default:
        return GET_NOT_MINE;
    }
}

static int on_get_opt(void *ctx, int key, const char *value)
{
    int rc = get_request_opt(ctx, key, value);
    if (rc == GET_NOT_MINE)
        rc = get_connect_opt(ctx, key, value);
    return rc == GET_NOT_MINE ? CLI_USAGE : rc;
}

/* Options that cannot go together. 0 or an exit code. */
static int get_check_args(get_opts *o)
{
    const char *cmd = o->cmd;
    if (o->head) {
        /* As curl -I: the head is the output. */
        if (o->data)
            return cli_usage(cmd, "-I/--head sends no body: drop -d");
        if (o->method && strcmp(o->method, "HEAD") != 0)
            return cli_usage(cmd, "-I/--head and -X %s ask for two methods", o->method);
        o->method = "HEAD";
        o->include = 1;
    }
    /* One way of checking the server: two would leave the user guessing which one held. */
    if (!!o->tls.ca_file + !!o->tls.pin + o->tls.insecure > 1)
        return cli_usage(cmd, "--cacert, --pin-sha256 and -k are alternatives: give one");
    if (o->tls_info && (o->output || o->data || o->head || o->include))
        return cli_usage(cmd, "--tls-info sends no request: drop -o, -d, -I, -i");
    return 0;
}

/* Options, their combination, then URL. 0, CLI_OPT_HELP_SHOWN or an exit code. */
static int parse_get(int argc, char **argv, get_opts *o)
{
    int first;
    int rc = cli_opt_parse(&get_spec, argc, argv, on_get_opt, o, &first);
    if (rc || (rc = get_check_args(o)))
        return rc;
    if (first >= argc)
        return cli_usage(o->cmd, "missing URL");
    o->url = argv[first++];
    if (first < argc)
        return cli_usage(o->cmd, "unexpected argument '%s'", argv[first]);
    return 0;
}

/* ---- the exchanges ------------------------------------------------------------------------ */

static int url_error(const char *cmd, const char *text, int rc)
{
    if (rc == -EPROTONOSUPPORT)
        return cli_fail(cmd, "unsupported URL scheme in '%s' (http:// or https:// only)", text);
    if (rc == -ENOMEM)
        return cli_fail(cmd, "%s", nk_strerror(rc));
    return cli_usage(cmd, "invalid URL '%s'", text);
}

/* The request across the redirects of one command. */
typedef struct get_hop {
    hc_url url;         /* where the next exchange goes */
    hc_url first;       /* the origin the user's credentials are for */
    const char *method;
    int with_body;      /* the body is sent (a 301, 302 or 303 drops it) */
    const char *body;
    size_t body_len;
    nk_buf head;        /* the request head being sent */
} get_hop;

/* 0, or an exit code after its message (nothing left to free then). */
static int get_hop_init(const get_opts *o, get_hop *h, const char *body, size_t body_len)
{
    int rc = hc_url_parse(o->url, &h->url);
    if (rc < 0)
        return url_error(o->cmd, o->url, rc);
    if (o->tls_info && !h->url.tls) {
        hc_url_free(&h->url);
        return cli_usage(o->cmd, "--tls-info needs an https:// URL");
    }
    if ((rc = hc_url_parse(o->url, &h->first)) < 0) {
        hc_url_free(&h->url);
        return cli_fail(o->cmd, "%s", nk_strerror(rc));
    }
    h->method = o->method ? o->method : body ? "POST" : "GET";
    h->with_body = body != NULL;
    h->body = body;
    h->body_len = body_len;
    nk_buf_init(&h->head, 0);
    return CLI_OK;
}

static void get_hop_free(get_hop *h)
{
    nk_buf_free(&h->head);
    hc_url_free(&h->url);
    hc_url_free(&h->first);
}

/* An exchange that failed (rc < 0): the message that says why. */
static int get_exchange_error(const char *cmd, const get_run *r, int rc, const char *msg)
{
    if (r->binary)
        return cli_fail(cmd, "binary output can mess up your terminal; use -o - to force, or -o "
                             "FILE to save it");
    if (r->gz_err)
        return cli_fail(cmd, "invalid gzip body from the server");
    if (r->out_err)
        return cli_fail(cmd, "writing the output: %s", nk_strerror(r->out_err));
    return cli_fail(cmd, "%s", msg[0] ? msg : nk_strerror(rc));
}

/* One request and its response, to h->url. CLI_OK or an exit code after its message. */
static int get_exchange(const get_opts *o, get_run *r, nk_loop *loop, get_hop *h)
{
    const char *cmd = o->cmd;
    char msg[512];
    int foreign = !hc_url_same_origin(&h->first, &h->url);
    if (build_head(o, &h->url, h->method, h->with_body, h->body_len, foreign, &h->head) < 0)
        return cli_fail(cmd, "%s", nk_strerror(-ENOMEM));
    if (h->url.tls && !r->tls && hc_tls_ctx_new(&o->tls, &r->tls, msg, sizeof msg) < 0)
        return cli_fail(cmd, "%s", msg);
    hc_request req = {
        .url = &h->url, .unix_path = o->unix_path,
        .head = nk_buf_rptr(&h->head), .head_len = nk_buf_len(&h->head),
        .body = h->with_body ? h->body : NULL, .body_len = h->with_body ? h->body_len : 0,
        .head_request = strcmp(h->method, "HEAD") == 0,
        .timeout_ms = o->timeout_ms, .verbose = o->verbose,
        .tls = h->url.tls ? r->tls : NULL, .tls_only = o->tls_info,
        .http2 = h->url.tls && o->tls.http2, .h2c = !h->url.tls && o->h2_prior,
    };
    if (o->verbose && !h->url.tls && o->tls.http2 && !o->h2_prior)
        fputs("* --http2 over http:// without --http2-prior-knowledge: HTTP/1.1 (no "
              "Upgrade: h2c)\n", stderr);
    r->final = 0;
    r->head_request = req.head_request;
    r->host = h->url.host;
    hc_events ev = {r, on_head, on_body, on_tls};
    int status = 0;
    int rc = hc_exchange(loop, &req, &ev, &status, msg, sizeof msg);
    if (r->progress && r->final && r->deliver) {
        draw_progress(r, 1);
        fputc('\n', stderr);
    }
    if (rc == 0 && r->gz_active && r->bytes > 0 && hc_gunzip_finish(&r->gz) < 0)
        return cli_fail(cmd, "the gzip body ended before its end (cut short)");
    if (rc < 0)
        return get_exchange_error(cmd, r, rc, msg);
    return CLI_OK;
}

/* -v: where the redirect goes, and that the credentials stay behind on another origin. */
static void get_show_redirect(const get_opts *o, const get_run *r, const get_hop *h)
{
    char *s = hc_url_format(&h->url);
    fprintf(stderr, "* Following redirect (%d) to %s\n", r->status, s ? s : "?");
    free(s);
    int creds = 0;
    for (int i = 0; i < o->nheaders; i++)
        creds |= is_credential(o->headers[i]);
    if (creds && !hc_url_same_origin(&h->first, &h->url))
        fputs("* Another origin: -H Authorization and Cookie are not sent there\n", stderr);
}

/* Turn h to r->location, the redirs-th redirect. CLI_OK or an exit code after its message. */
static int get_follow(const get_opts *o, const get_run *r, get_hop *h, long redirs)
{
    const char *cmd = o->cmd;
    if (redirs >= o->max_redirs)
        return cli_fail(cmd, "maximum (%ld) redirects followed", o->max_redirs);
    hc_url next;
    int rc = hc_url_resolve(&h->url, r->location, strlen(r->location), &next);
    if (rc == -EPROTONOSUPPORT)
        return cli_fail(cmd, "redirected to '%s': only http:// and https:// are supported",
                        r->location);
    if (rc < 0)
        return cli_fail(cmd, "invalid redirect location '%s'", r->location);
    hc_url_free(&h->url);
    h->url = next;
    if (o->verbose)
        get_show_redirect(o, r, h);
    /* RFC 9110 sections 15.4.2 to 15.4.4: after 301 and 302 user agents change POST to
     * GET (historic practice), and 303 asks for a GET (HEAD stays HEAD); 307 and 308
     * "MUST NOT" change the method, so they resend the body. */
    if (r->status == 301 || r->status == 302 || r->status == 303) {
        if (strcmp(h->method, "HEAD") != 0)
            h->method = "GET";
        h->with_body = 0;
    }
    return CLI_OK;
}

/* Follow the exchanges of one command: the request, then each redirect. */
static int run_get(const get_opts *o, get_run *r, nk_loop *loop, const char *body,
                   size_t body_len)
{
    get_hop h;
    int code = get_hop_init(o, &h, body, body_len);
    if (code != CLI_OK)
        return code;
    for (long redirs = 0; code == CLI_OK; redirs++) {
        code = get_exchange(o, r, loop, &h);
        if (code != CLI_OK || !r->location || o->tls_info)
            break;
        code = get_follow(o, r, &h, redirs);
    }
    get_hop_free(&h);
    if (code == CLI_OK && o->fail && !o->tls_info && r->status / 100 != 2)
        code = cli_fail(o->cmd, "server answered %d %s", r->status,
                        r->reason[0] ? r->reason : nk_http_reason(r->status));
    return code;
}

/* Where the body goes: stdout, or a temporary file next to -o FILE. CLI_OK or an exit code. */
static int get_open(const get_opts *o, get_run *r)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    r->out = stdout;
    int to_file = o->output && strcmp(o->output, "-") != 0;
    int rc;
    if (to_file && (rc = open_output(r, o->output)) < 0)
        return cli_fail(o->cmd, "cannot create a file next to '%s': %s", o->output,
                        nk_strerror(rc));
    r->progress = to_file && isatty(STDERR_FILENO);
    r->guard_terminal = !o->output && isatty(STDOUT_FILENO);
    return CLI_OK;
}

static void on_signal(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)sig;
    (void)signum;
    nk_loop_set_data(loop, loop); /* hc_exchange stops at its next turn */
}

/* The exchanges on an event loop that SIGINT and SIGTERM stop. */
static int get_loop(const get_opts *o, get_run *r, const char *body, size_t body_len)
{
    nk_loop *loop = NULL;
    cli_stop_signals stop_signals = {0};
    signal(SIGPIPE, SIG_IGN); /* a closed peer or stdout must give EPIPE, not kill us */
    int code;
    int rc = nk_loop_new(NULL, &loop);
    if (rc < 0) {
        code = cli_fail(o->cmd, "cannot create the event loop: %s", nk_strerror(rc));
    } else if ((rc = cli_stop_signals_start(loop, &stop_signals, on_signal, NULL)) < 0) {
        code = cli_fail(o->cmd, "cannot watch signals: %s", nk_strerror(rc));
    } else {
        code = run_get(o, r, loop, body, body_len);
    }
    if (loop) {
        cli_stop_signals_stop(loop, &stop_signals);
        nk_loop_free(loop);
    }
    return code;
}

/* After the exchanges (code is their result): the download kept or dropped, stdout flushed,
 * r freed. Returns the command's exit code. */
static int get_close(const get_opts *o, get_run *r, int code)
{
    if (r->tmp_path && code == CLI_OK) {
        int rc = commit_output(r, o->output);
        if (rc < 0)
            code = cli_fail(o->cmd, "cannot write '%s': %s", o->output, nk_strerror(rc));
    } else if (r->tmp_path) {
        discard_output(r);
    } else if (fflush(stdout) != 0 && code == CLI_OK) {
        code = cli_fail(o->cmd, "writing the output: %s", strerror(errno));
    }
    if (r->gz_active)
        hc_gunzip_free(&r->gz);
    free(r->location);
    nk_tls_ctx_free(r->tls);
    return code;
}

int cmd_http_get(int argc, char **argv)
{
    get_opts o;
    memset(&o, 0, sizeof o);
    o.cmd = argv[0];
    o.timeout_ms = GET_DEFAULT_TIMEOUT_MS;
    o.max_redirs = GET_DEFAULT_MAX_REDIRS;
    int rc = parse_get(argc, argv, &o);
    if (rc)
        return rc == CLI_OPT_HELP_SHOWN ? CLI_OK : rc;
    /* Check the URL before anything is opened or read. */
    hc_url probe;
    rc = hc_url_parse(o.url, &probe);
    if (rc < 0)
        return url_error(o.cmd, o.url, rc);
    hc_url_free(&probe);

    char *body = NULL;
    size_t body_len = 0;
    if (o.data && (rc = read_data(o.cmd, o.data, &body, &body_len)) != 0)
        return rc;
    get_run r;
    int code = get_open(&o, &r);
    if (code == CLI_OK)
        code = get_close(&o, &r, get_loop(&o, &r, body, body_len));
    free(body);
    return code;
}
