/* libFuzzer target for the whole server path (src/httpd/): request bytes in, response bytes
 * out, checked by invariants a client relies on.
 *
 * Input: the first byte chooses the engine (bits 0-1: 0 or 1 for A, static files with
 * listings, gzip, CORS and a status page; 2 for B, echo behind HTTP Basic; 3 for C, no
 * listing, SPA and tiny limits) and
 * how the rest is written (bits 2-4: all at once, or pieces of 1, 2, 3, 7, 16, 61, 512 bytes
 * with one loop iteration between pieces). The rest is the byte stream of one connection,
 * followed by the client's end of stream (shutdown SHUT_WR).
 *
 * The engines run on one loop in this process; each listens on a Unix socket in a temporary
 * directory next to the docroot, and the client end is driven from here without blocking, so
 * a run is deterministic: no timers fire (every timeout is far longer than a run) and Unix
 * sockets move bytes synchronously, so "nothing happened for MAX_IDLE rounds" means stuck.
 *
 * Invariants (any violation aborts with a message on stderr):
 *   - every response is a strict HTTP/1.1 message: status line, CRLF field lines with token
 *     names and no control characters, one Content-Length or Transfer-Encoding: chunked;
 *   - its body is exactly what the framing declares (valid, complete chunked coding), and
 *     nothing follows it but the next response; no body after HEAD, 204 or 304; no chunked
 *     coding to an HTTP/1.0 request; nothing at all after "Connection: close";
 *   - as many final responses as complete requests (plus one for a refused tail), never more,
 *     and fewer only when the last one said "Connection: close";
 *   - a request the client ends with "close" gets "Connection: close";
 *   - Location is a path on this server: one leading "/" (never "//" or "/\"), no space or
 *     control, no "." or ".." segment, even percent-encoded;
 *   - a 200 or 206 for a file of the docroot carries exactly that file's bytes (or its .gz
 *     sidecar's, or gzip that inflates to it); a HEAD's Content-Length is the file's size;
 *   - the dotfile's and the outside-the-root file's contents never appear in a response;
 *   - after the client's end of stream the server answers and closes; after the client
 *     closes, the server's connection is gone.
 * A model of the request stream (nk_http_parse_request and the chunked decoder, with each
 * engine's limits, as the engine frames requests) tells which request each response answers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zlib.h>

#include "netkit/http.h"
#include "netkit/httpd.h"
#include "netkit/loop.h"

#define MAX_REQUEST_BYTES (64 * 1024)       /* request bytes taken from one input */
#define MAX_IDLE 2000               /* loop rounds without any byte moving: the server is stuck */
#define MAX_RX (256u << 20)         /* response bytes of one run: beyond, the server loops */
#define MAX_RESP_HEAD (64 * 1024)
#define SECRET_DOT "NK-DOTFILE-SECRET-5c1e"
#define SECRET_OUT "NK-OUTSIDE-SECRET-93ad"

static void remove_docroot(void);

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
    remove_docroot(); /* abort skips atexit: do not leave a directory behind per crash */
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_httpd: invariant broken: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* Show up to 300 bytes of what the server sent, escaped, after a violation's message. */
static void show(const char *what, const unsigned char *p, size_t n)
{
    fprintf(stderr, "fuzz_httpd: %s (%zu bytes): \"", what, n);
    for (size_t i = 0; i < n && i < 300; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
            fputc(p[i], stderr);
        else
            fprintf(stderr, "\\x%02x", p[i]);
    }
    fputs(n > 300 ? "\"...\n" : "\"\n", stderr);
}

/* ---- the docroot ----------------------------------------------------------------------- */

typedef struct doc {
    const char *url;  /* normalised request path that serves it */
    const char *file; /* below root */
    unsigned char *plain;
    size_t plain_len;
    unsigned char *gz; /* its .gz sidecar, or NULL */
    size_t gz_len;
    int gz_valid;      /* the sidecar inflates to plain (the empty one does not) */
} doc;

enum { DOC_INDEX, DOC_INDEX2, DOC_EMPTY, DOC_HELLO, DOC_BIG, DOC_APP, DOC_STYLE, DOC_SUB_A,
       DOC_SUB_EMPTY, DOC_WITHINDEX, DOC_WITHINDEX2, DOC_SPACE, DOC_LINK, NDOCS };

static doc docs[NDOCS] = {
    [DOC_INDEX] = {"/", "index.html", 0, 0, 0, 0, 0},
    [DOC_INDEX2] = {"/index.html", "index.html", 0, 0, 0, 0, 0},
    [DOC_EMPTY] = {"/empty", "empty", 0, 0, 0, 0, 0},
    [DOC_HELLO] = {"/hello.txt", "hello.txt", 0, 0, 0, 0, 0},
    [DOC_BIG] = {"/big.txt", "big.txt", 0, 0, 0, 0, 0},
    [DOC_APP] = {"/app.js", "app.js", 0, 0, 0, 0, 0},
    [DOC_STYLE] = {"/style.css", "style.css", 0, 0, 0, 0, 0},
    [DOC_SUB_A] = {"/sub/a.txt", "sub/a.txt", 0, 0, 0, 0, 0},
    [DOC_SUB_EMPTY] = {"/sub/empty.txt", "sub/empty.txt", 0, 0, 0, 0, 0},
    [DOC_WITHINDEX] = {"/withindex/", "withindex/index.html", 0, 0, 0, 0, 0},
    [DOC_WITHINDEX2] = {"/withindex/index.html", "withindex/index.html", 0, 0, 0, 0, 0},
    [DOC_SPACE] = {"/sp ace%.txt", "sp ace%.txt", 0, 0, 0, 0, 0},
    [DOC_LINK] = {"/link.txt", "hello.txt", 0, 0, 0, 0, 0},
};

static char tmp_dir[64];
static char root_dir[96];

static void setup_fail(const char *what)
{
    fprintf(stderr, "fuzz_httpd: setup: %s: %s\n", what, strerror(errno));
    abort();
}

static void put_file(const char *rel, const void *p, size_t n, time_t mtime)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n))
        setup_fail(path);
    /* Sidecars are made newer than their file: an older one is ignored by the server. */
    struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
    if (futimens(fd, ts) < 0)
        setup_fail(path);
    close(fd);
}

static unsigned char *dup_bytes(const char *s, size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    if (!p)
        abort();
    memcpy(p, s, n);
    return p;
}

static unsigned char *gzip_bytes(const unsigned char *in, size_t n, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, n);
    unsigned char *out = malloc(cap);
    if (!out)
        abort();
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

static const char *const dirs[] = {"root", "root/sub", "root/withindex", "outside"};

static void make_docroot(void)
{
    strcpy(tmp_dir, "/tmp/nk-fuzz-httpd.XXXXXX");
    if (!mkdtemp(tmp_dir))
        setup_fail("mkdtemp");
    snprintf(root_dir, sizeof root_dir, "%s/root", tmp_dir);
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", tmp_dir, dirs[i]);
        if (mkdir(path, 0755) < 0)
            setup_fail(path);
    }
    static const char *const text[NDOCS] = {
        [DOC_INDEX] = "<!DOCTYPE html>\n<title>home</title><p>home page</p>\n",
        [DOC_EMPTY] = "",
        [DOC_HELLO] = "hello, world\n",
        [DOC_SUB_A] = "a file in a subdirectory\n",
        [DOC_SUB_EMPTY] = "",
        [DOC_WITHINDEX] = "<!DOCTYPE html>\n<title>with index</title>\n",
        [DOC_SPACE] = "a name with a space and a percent\n",
    };
    for (int i = 0; i < NDOCS; i++)
        if (text[i])
            docs[i].plain = dup_bytes(text[i], docs[i].plain_len = strlen(text[i]));
    /* 20 KiB of numbered lines (above the gzip threshold, text/plain: compressed on the fly) */
    char big[20480];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i % 64 == 63 ? '\n' : 'a' + (char)((i / 64 + i) % 26));
    docs[DOC_BIG].plain = dup_bytes(big, docs[DOC_BIG].plain_len = sizeof big);
    char app[3000], style[1500];
    for (size_t i = 0; i < sizeof app; i++)
        app[i] = i % 50 == 49 ? '\n' : "let x = f(1);"[i % 13];
    for (size_t i = 0; i < sizeof style; i++)
        style[i] = i % 30 == 29 ? '\n' : "p { margin: 0 }"[i % 15];
    docs[DOC_APP].plain = dup_bytes(app, docs[DOC_APP].plain_len = sizeof app);
    docs[DOC_STYLE].plain = dup_bytes(style, docs[DOC_STYLE].plain_len = sizeof style);
    docs[DOC_APP].gz = gzip_bytes(docs[DOC_APP].plain, sizeof app, &docs[DOC_APP].gz_len);
    docs[DOC_APP].gz_valid = 1;
    docs[DOC_STYLE].gz = dup_bytes("", 0); /* an empty sidecar */
    docs[DOC_INDEX2] = (doc){docs[DOC_INDEX2].url, docs[DOC_INDEX].file, docs[DOC_INDEX].plain,
                             docs[DOC_INDEX].plain_len, NULL, 0, 0};
    docs[DOC_WITHINDEX2].plain = docs[DOC_WITHINDEX].plain;
    docs[DOC_WITHINDEX2].plain_len = docs[DOC_WITHINDEX].plain_len;
    docs[DOC_LINK].plain = docs[DOC_HELLO].plain;
    docs[DOC_LINK].plain_len = docs[DOC_HELLO].plain_len;

    time_t t = 1700000000;
    for (int i = 0; i < NDOCS; i++) {
        if (i == DOC_INDEX2 || i == DOC_WITHINDEX2 || i == DOC_LINK)
            continue;
        char rel[128];
        snprintf(rel, sizeof rel, "root/%s", docs[i].file);
        put_file(rel, docs[i].plain, docs[i].plain_len, t);
        if (docs[i].gz) {
            snprintf(rel, sizeof rel, "root/%s.gz", docs[i].file);
            put_file(rel, docs[i].gz, docs[i].gz_len, t + 10);
        }
    }
    put_file("root/.hidden", SECRET_DOT "\n", sizeof SECRET_DOT, t);
    put_file("root/sub/.env", SECRET_DOT "\n", sizeof SECRET_DOT, t);
    put_file("outside/secret.txt", SECRET_OUT "\n", sizeof SECRET_OUT, t);
    char path[256];
    snprintf(path, sizeof path, "%s/link.txt", root_dir);
    if (symlink("hello.txt", path) < 0)
        setup_fail(path);
    snprintf(path, sizeof path, "%s/out", root_dir);
    if (symlink("../outside", path) < 0)
        setup_fail(path);
    snprintf(path, sizeof path, "%s/escape.txt", root_dir);
    if (symlink("../outside/secret.txt", path) < 0)
        setup_fail(path);
}

static const char *const created[] = {
    "root/index.html", "root/empty", "root/hello.txt", "root/big.txt", "root/app.js",
    "root/app.js.gz", "root/style.css", "root/style.css.gz", "root/sub/a.txt",
    "root/sub/empty.txt", "root/withindex/index.html", "root/sp ace%.txt", "root/.hidden",
    "root/sub/.env", "outside/secret.txt", "root/link.txt", "root/out", "root/escape.txt",
    "a.sock", "b.sock", "c.sock"};

/* ---- the engines ------------------------------------------------------------------------ */

typedef struct engine {
    nk_httpd_config cfg;
    nk_httpd *srv;
    struct sockaddr_un addr;
    int serves_files; /* content and secret checks apply */
    int needs_auth;   /* every request needs the credentials of users[] */
} engine;

static nk_loop *loop;
static engine engines[3];
static const nk_httpd_user users[] = {{"user", "pass", NULL}};

static void start_engine(engine *e, const char *sock_name)
{
    e->cfg.root = root_dir;
    e->cfg.mime_types = ""; /* the built-in table: the same types on every machine */
    e->cfg.defer_accept_s = 0;
    e->cfg.max_conns = 16;
    /* far longer than any run: no timer ever decides what a run sees */
    e->cfg.header_timeout_ms = e->cfg.idle_timeout_ms = 600000;
    e->cfg.body_timeout_ms = e->cfg.send_timeout_ms = 600000;
    int err = nk_httpd_new(loop, &e->cfg, &e->srv);
    if (err < 0) {
        errno = -err;
        setup_fail("nk_httpd_new");
    }
    /* This target checks HTTP/1.x answers: a stream opening with the HTTP/2 preface would be
     * served as HTTP/2, which fuzz_h2.c checks. */
    nk_httpd_set_http2(e->srv, 0, 0);
    e->addr.sun_family = AF_UNIX;
    snprintf(e->addr.sun_path, sizeof e->addr.sun_path, "%s/%s", tmp_dir, sock_name);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&e->addr, sizeof e->addr) < 0 || listen(fd, 8) < 0)
        setup_fail(e->addr.sun_path);
    if ((err = nk_httpd_listen(e->srv, fd)) < 0) {
        errno = -err;
        setup_fail("nk_httpd_listen");
    }
}

static void remove_docroot(void)
{
    if (!tmp_dir[0])
        return;
    for (size_t i = 0; i < sizeof created / sizeof created[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", tmp_dir, created[i]);
        unlink(path);
    }
    for (size_t i = sizeof dirs / sizeof dirs[0]; i-- > 0;) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", tmp_dir, dirs[i]);
        rmdir(path);
    }
    rmdir(tmp_dir);
    tmp_dir[0] = '\0';
}

static void teardown(void)
{
    for (int i = 0; i < 3; i++)
        nk_httpd_free(engines[i].srv);
    nk_loop_free(loop);
    remove_docroot();
    for (int i = 0; i < NDOCS; i++)
        if (i != DOC_INDEX2 && i != DOC_WITHINDEX2 && i != DOC_LINK) {
            free(docs[i].plain);
            free(docs[i].gz);
        }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    signal(SIGPIPE, SIG_IGN); /* sendfile has no MSG_NOSIGNAL */
    make_docroot();
    if (nk_loop_new(NULL, &loop) < 0)
        setup_fail("nk_loop_new");
    engine *a = &engines[0], *b = &engines[1], *c = &engines[2];
    nk_httpd_config_default(&a->cfg);
    a->cfg.gzip = 1;
    a->cfg.cors = 1;
    a->cfg.status_path = "/status";
    a->serves_files = 1;
    nk_httpd_config_default(&b->cfg);
    b->cfg.echo = 1;
    b->cfg.users = users;
    b->cfg.nusers = 1;
    b->cfg.max_body = 4096;
    b->needs_auth = 1;
    nk_httpd_config_default(&c->cfg);
    c->cfg.listing = 0;
    c->cfg.spa = 1;
    c->cfg.limits.max_request_line = 128;
    c->cfg.limits.max_head = 512;
    c->cfg.limits.max_headers = 8;
    c->cfg.max_body = 64;
    c->serves_files = 1;
    start_engine(a, "a.sock");
    start_engine(b, "b.sock");
    start_engine(c, "c.sock");
    atexit(teardown);
    return 0;
}

/* ---- the model of the request stream ------------------------------------------------------ */

typedef struct mreq {
    nk_http_method method;
    int http10;
    int closes;     /* the client ended the connection with this request */
    const doc *doc; /* the docroot file its path names, or NULL */
    int authorized; /* carries users[0]'s credentials */
} mreq;

typedef struct model {
    mreq *reqs;
    size_t n, cap;
    int tail; /* bytes after the last complete request that the server may refuse (one 4xx) */
} model;

static const doc *doc_for(const nk_http_request *req)
{
    char path[4096];
    if (nk_http_path_normalize(req->path.p, req->path.len, path, sizeof path) < 0)
        return NULL;
    for (int i = 0; i < NDOCS; i++)
        if (strcmp(path, docs[i].url) == 0)
            return &docs[i];
    return NULL;
}

/* Frame the requests as the engine does: a head, then Content-Length bytes or a chunked body
 * (within max_body), until a head or body is incomplete or invalid, or a request says close. */
static void model_build(model *m, const engine *e, const char *in, size_t n)
{
    static nk_http_request req;
    size_t off = 0;
    while (off < n) {
        int status = 0;
        int r = nk_http_parse_request(in + off, n - off, 0, &e->cfg.limits, &req, &status);
        if (r <= 0)
            break;
        size_t pos = off + (size_t)r;
        if (req.content_length > 0) {
            if ((uint64_t)req.content_length > e->cfg.max_body ||
                (uint64_t)req.content_length > n - pos)
                break;
            pos += (size_t)req.content_length;
        } else if (req.chunked) {
            nk_http_chunked ch;
            nk_http_chunked_init(&ch, e->cfg.max_body);
            int cr;
            do {
                size_t used;
                const char *data;
                size_t dlen;
                cr = nk_http_chunked_step(&ch, in + pos, n - pos, &used, &data, &dlen);
                pos += used;
            } while (cr == 1);
            if (cr != 2)
                break;
        }
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 16;
            m->reqs = realloc(m->reqs, m->cap * sizeof *m->reqs);
            if (!m->reqs)
                abort();
        }
        mreq *q = &m->reqs[m->n++];
        q->method = req.method;
        q->http10 = req.version_minor == 0;
        q->closes = !req.keep_alive;
        q->doc = e->serves_files ? doc_for(&req) : NULL;
        /* base64 of "user:pass"; a request without it must never get a 2xx */
        const nk_http_header *auth = nk_http_find_header(&req, "Authorization");
        q->authorized = auth && memmem(auth->value.p, auth->value.len, "dXNlcjpwYXNz", 12);
        off = pos;
        if (q->closes)
            return; /* the server answers it and closes: the rest is never read */
    }
    m->tail = off < n;
}

/* ---- the response checker ---------------------------------------------------------------- */

typedef struct rx {
    unsigned char *p; /* received bytes not yet checked */
    size_t len, cap;
    size_t total;
    size_t finals;    /* final (non-1xx) responses checked */
    int closed;       /* a response said Connection: close */
    const engine *e;
    const model *m;
    unsigned char *scratch; /* a dechunked body */
    size_t scratch_len, scratch_cap;
} rx;

static void grow(unsigned char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    *p = realloc(*p, c);
    if (!*p)
        abort();
    *cap = c;
}

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int ieq(const unsigned char *p, size_t n, const char *s)
{
    return strlen(s) == n && strncasecmp((const char *)p, s, n) == 0;
}

static void check_location(const unsigned char *v, size_t n)
{
    if (n == 0 || v[0] != '/' || (n > 1 && (v[1] == '/' || v[1] == '\\')))
        fail("Location \"%.*s\" is not one path on this server (must start with exactly one /)",
             (int)n, v);
    size_t end = n;
    for (size_t i = 0; i < n; i++) {
        if (v[i] <= 0x20 || v[i] >= 0x7f)
            fail("Location \"%.*s\" holds a space, control or non-ASCII byte", (int)n, v);
        if ((v[i] == '?' || v[i] == '#') && end == n)
            end = i;
    }
    /* every segment of the path part, with %2e decoded, must not be "." or ".." */
    for (size_t s = 1; s <= end;) {
        size_t e = s;
        while (e < end && v[e] != '/')
            e++;
        int dots = 0, other = 0;
        for (size_t i = s; i < e; i++) {
            if (v[i] == '.')
                dots++;
            else if (v[i] == '%' && i + 2 < e && v[i + 1] == '2' && (v[i + 2] | 0x20) == 'e')
                dots++, i += 2;
            else
                other = 1;
        }
        if (!other && (dots == 1 || dots == 2))
            fail("Location \"%.*s\" has a dot segment", (int)n, v);
        s = e + 1;
    }
}

/* Content-Length: digits only, bounded. */
static int64_t parse_length(const unsigned char *v, size_t n)
{
    if (n == 0 || n > 18)
        fail("Content-Length \"%.*s\" is not a bounded decimal number", (int)n, v);
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            fail("Content-Length \"%.*s\" is not a decimal number", (int)n, v);
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

typedef struct head {
    int status;
    int64_t length;      /* -1 when absent */
    int chunked, close, gzip, multipart;
    const unsigned char *range; /* Content-Range value, or NULL */
    size_t range_len;
    size_t len;          /* through the empty line */
} head;

/* Parse the head at r->p strictly. 0 when more bytes are needed. */
static int parse_head(rx *r, head *h, int eof)
{
    const unsigned char *p = r->p, *end = NULL;
    for (size_t i = 0; i + 3 < r->len; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
            end = p + i + 2;
            break;
        }
    size_t k = r->len < 9 ? r->len : 9;
    if (memcmp(p, "HTTP/1.1 ", k) != 0) {
        show("received", p, r->len);
        if (r->finals)
            fail("bytes after response %zu's declared end are not a response (a body after "
                 "HEAD, 204 or 304, or longer than its framing says?)", r->finals);
        fail("the first response does not start with an HTTP/1.1 status line");
    }
    if (!end) {
        if (r->len > MAX_RESP_HEAD || eof) {
            show("received", p, r->len);
            fail(eof ? "the connection ended inside a response head" : "a response head over 64 KiB");
        }
        return 0;
    }
    memset(h, 0, sizeof *h);
    h->length = -1;
    h->len = (size_t)(end - p) + 2;
    if (h->len < 17 || !(p[9] >= '1' && p[9] <= '5') || p[10] < '0' || p[10] > '9' ||
        p[11] < '0' || p[11] > '9' || p[12] != ' ') {
        show("received", p, r->len);
        fail("a malformed status line after %zu response(s)", r->finals);
    }
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const unsigned char *line = p + 13;
    int seen_length = 0, seen_te = 0;
    for (;;) {
        const unsigned char *eol = line;
        while (*eol != '\r' && *eol != '\n')
            eol++;
        if (*eol != '\r' || eol[1] != '\n') {
            show("head", p, h->len);
            fail("a bare CR or LF in a response head");
        }
        if (line != p + 13) { /* a field line (the first line is the reason) */
            if (eol == line)
                break;
            const unsigned char *colon = line;
            while (colon < eol && is_tchar(*colon))
                colon++;
            if (colon == line || colon == eol || *colon != ':') {
                show("head", p, h->len);
                fail("a field line without a token name and a colon");
            }
            const unsigned char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            for (const unsigned char *c = v; c < ve; c++)
                if ((*c < 0x20 && *c != '\t') || *c == 0x7f) {
                    show("head", p, h->len);
                    fail("a control character in a field value");
                }
            size_t nl = (size_t)(colon - line), vl = (size_t)(ve - v);
            if (ieq(line, nl, "Content-Length")) {
                if (seen_length++)
                    fail("two Content-Length fields");
                h->length = parse_length(v, vl);
            } else if (ieq(line, nl, "Transfer-Encoding")) {
                if (seen_te++ || !ieq(v, vl, "chunked"))
                    fail("Transfer-Encoding other than one \"chunked\"");
                h->chunked = 1;
            } else if (ieq(line, nl, "Connection")) {
                h->close = ieq(v, vl, "close");
            } else if (ieq(line, nl, "Content-Encoding")) {
                h->gzip = ieq(v, vl, "gzip");
            } else if (ieq(line, nl, "Content-Type")) {
                h->multipart = vl >= 10 && strncasecmp((const char *)v, "multipart/", 10) == 0;
            } else if (ieq(line, nl, "Content-Range")) {
                h->range = v;
                h->range_len = vl;
            } else if (ieq(line, nl, "Location")) {
                check_location(v, vl);
            }
        } else {
            for (const unsigned char *c = line; c < eol; c++)
                if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
                    fail("a control character in the reason phrase");
        }
        line = eol + 2;
    }
    if (seen_length && seen_te)
        fail("both Content-Length and Transfer-Encoding");
    return 1;
}

/* Walk a chunked body strictly (hex size CRLF data CRLF ... "0" CRLF CRLF), copying the data
 * to r->scratch. Returns its length on the wire, or 0 when more bytes are needed. */
static size_t chunked_body(rx *r, size_t start, int eof)
{
    const unsigned char *p = r->p;
    size_t i = start;
    r->scratch_len = 0;
    for (;;) {
        uint64_t size = 0;
        size_t digits = 0;
        for (; i < r->len; i++, digits++) {
            int c = p[i];
            int d = c >= '0' && c <= '9' ? c - '0'
                    : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
            if (d < 0)
                break;
            if (digits >= 15)
                fail("a chunk size of more than 15 hex digits");
            size = size * 16 + (uint64_t)d;
        }
        if (i + 2 > r->len)
            goto more;
        if (digits == 0 || p[i] != '\r' || p[i + 1] != '\n') {
            show("chunked body", p + start, r->len - start);
            fail("a chunk size line that is not HEX CRLF");
        }
        i += 2;
        if (size == 0) {
            if (i + 2 > r->len)
                goto more;
            if (p[i] != '\r' || p[i + 1] != '\n')
                fail("trailer fields or garbage after the last chunk");
            return i + 2 - start;
        }
        if (r->len - i < size + 2)
            goto more;
        grow(&r->scratch, &r->scratch_cap, r->scratch_len + size);
        memcpy(r->scratch + r->scratch_len, p + i, size);
        r->scratch_len += size;
        i += size;
        if (p[i] != '\r' || p[i + 1] != '\n')
            fail("chunk data not followed by CRLF");
        i += 2;
    }
more:
    if (eof) {
        show("chunked body", p + start, r->len - start);
        fail("the connection ended inside a chunked body");
    }
    return 0;
}

static void check_inflates_to(const unsigned char *gz, size_t n, const doc *d)
{
    unsigned char *out = malloc(d->plain_len + 1);
    if (!out)
        abort();
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        abort();
    z.next_in = (unsigned char *)gz;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)d->plain_len + 1;
    int zr = inflate(&z, Z_FINISH);
    size_t got = z.total_out;
    inflateEnd(&z);
    int ok = zr == Z_STREAM_END && got == d->plain_len && memcmp(out, d->plain, got) == 0;
    free(out);
    if (!ok)
        fail("the gzip body of %s does not inflate to the file (zlib %d, %zu bytes)", d->url, zr,
             got);
}

/* A 200 or 206 for a known file carries its bytes. */
static void check_content(const head *h, const mreq *q, const unsigned char *body, size_t n)
{
    const doc *d = q->doc;
    const unsigned char *rep = d->plain;
    size_t rep_len = d->plain_len;
    if (h->gzip && !h->chunked) {
        if (!d->gz)
            fail("%s sent gzip-encoded with a length, but it has no sidecar", d->url);
        rep = d->gz;
        rep_len = d->gz_len;
    }
    if (q->method == NK_HTTP_HEAD) {
        if (h->status == 200 && !h->chunked && (uint64_t)h->length != rep_len)
            fail("HEAD %s: Content-Length %lld, the file has %zu bytes", d->url,
                 (long long)h->length, rep_len);
        return;
    }
    if (h->status == 200 && h->gzip && h->chunked) {
        check_inflates_to(body, n, d);
        return;
    }
    size_t from = 0;
    if (h->status == 206) {
        if (h->multipart)
            return;
        unsigned long long a, b, total;
        char tail;
        char spec[96];
        snprintf(spec, sizeof spec, "%.*s", (int)h->range_len, h->range ? (const char *)h->range : "");
        if (sscanf(spec, "bytes %llu-%llu/%llu%c", &a, &b, &total, &tail) != 3 || a > b ||
            b >= total || total != rep_len)
            fail("206 for %s with Content-Range \"%s\" (the representation has %zu bytes)",
                 d->url, spec, rep_len);
        from = (size_t)a;
        rep_len = (size_t)(b - a + 1);
    }
    if (n != rep_len || memcmp(body, rep + from, n) != 0) {
        show("body", body, n);
        fail("%d for %s: the body is not the file's %zu bytes at %zu", h->status, d->url, rep_len,
             from);
    }
}

/* Check the response at the front of r->p and drop it. 0 when more bytes are needed. */
static int check_one(rx *r, int eof)
{
    head h;
    if (!parse_head(r, &h, eof))
        return 0;
    if (r->closed)
        fail("a response after one that said Connection: close");
    const model *m = r->m;
    int interim = h.status < 200;
    if (interim && (h.status != 100 || h.length >= 0 || h.chunked))
        fail("an interim response other than a bare 100 Continue (%d)", h.status);
    if (!interim && r->finals >= m->n + (size_t)m->tail)
        fail("response %zu, but only %zu complete request(s)%s", r->finals + 1, m->n,
             m->tail ? " and a refused tail" : "");
    const mreq *q = !interim && r->finals < m->n ? &m->reqs[r->finals] : NULL;
    if (q && q->http10 && h.chunked)
        fail("chunked coding in a response to an HTTP/1.0 request");
    if (q && q->closes && !h.close)
        fail("the request said close, its response does not say Connection: close");
    if (q && r->e->needs_auth && !q->authorized && h.status >= 200 && h.status < 300)
        fail("%d to a request without credentials", h.status);
    if (h.status == 204 && (h.length >= 0 || h.chunked))
        fail("a 204 with Content-Length or Transfer-Encoding");
    size_t body_at = h.len, body_len = 0, wire = 0;
    const unsigned char *body = r->p + body_at;
    if (interim || h.status == 204 || h.status == 304 || (q && q->method == NK_HTTP_HEAD)) {
        wire = 0;
    } else if (h.chunked) {
        if (!(wire = chunked_body(r, body_at, eof)))
            return 0;
        body = r->scratch;
        body_len = r->scratch_len;
    } else if (h.length < 0) {
        show("head", r->p, h.len);
        fail("a response with a body but neither Content-Length nor chunked coding");
    } else if (!q) {
        /* The refusal of an unframed tail: a HEAD's (no body) or anyone else's. It is the last
         * response, so wait for the end to see which. */
        if (!eof)
            return 0;
        if (r->len - body_at != 0 && r->len - body_at != (uint64_t)h.length) {
            show("after the head", r->p + body_at, r->len - body_at);
            fail("the last response has %zu bytes after its head, Content-Length says %lld",
                 r->len - body_at, (long long)h.length);
        }
        wire = body_len = r->len - body_at;
    } else {
        if (r->len - body_at < (uint64_t)h.length) {
            if (eof) {
                show("head", r->p, h.len);
                fail("the connection ended %zu bytes into a %lld-byte body", r->len - body_at,
                     (long long)h.length);
            }
            return 0;
        }
        wire = body_len = (size_t)h.length;
    }
    if (r->e->serves_files) {
        /* The body only: a Location may repeat the request's query, which the fuzzer can
         * fill with the marker itself. */
        const unsigned char *b = r->p + body_at;
        if (memmem(b, wire, SECRET_DOT, sizeof SECRET_DOT - 1) ||
            memmem(b, wire, SECRET_OUT, sizeof SECRET_OUT - 1)) {
            show("response", r->p, body_at + wire);
            fail("a dotfile or a file outside the root was served");
        }
    }
    if (q && q->doc && (h.status == 200 || h.status == 206))
        check_content(&h, q, body, body_len);
    if (!interim) {
        r->finals++;
        r->closed = h.close;
    }
    size_t used = body_at + wire;
    memmove(r->p, r->p + used, r->len - used);
    r->len -= used;
    return 1;
}

/* ---- one run ----------------------------------------------------------------------------- */

static void pump_reads(rx *r, int fd, int *eof, int *progress)
{
    for (;;) {
        grow(&r->p, &r->cap, r->len + 65536);
        ssize_t n = recv(fd, r->p + r->len, 65536, 0);
        if (n > 0) {
            r->len += (size_t)n;
            r->total += (size_t)n;
            *progress = 1;
            if (r->total > MAX_RX)
                fail("more than %u response bytes for one input", MAX_RX);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        *eof = 1; /* end of stream, or ECONNRESET after the data (Unix sockets keep it) */
        return;
    }
}

static void run(engine *e, const uint8_t *in, size_t n, size_t piece)
{
    model m = {0};
    model_build(&m, e, (const char *)in, n);
    rx r = {0};
    r.e = e;
    r.m = &m;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&e->addr, sizeof e->addr) < 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
        setup_fail("connect");
    size_t sent = 0;
    int writing = 1, eof = 0;
    unsigned idle = 0;
    if (n == 0) {
        shutdown(fd, SHUT_WR);
        writing = 0;
    }
    while (!eof) {
        int progress = 0;
        if (writing) {
            size_t want = n - sent;
            if (piece && want > piece)
                want = piece;
            ssize_t w = send(fd, in + sent, want, MSG_NOSIGNAL);
            if (w > 0) {
                sent += (size_t)w;
                progress = 1;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                writing = 0; /* the server closed: it reads no more */
            }
            if (sent == n) {
                shutdown(fd, SHUT_WR);
                writing = 0;
            }
        }
        nk_loop_run(loop, NK_RUN_NOWAIT);
        pump_reads(&r, fd, &eof, &progress);
        while (r.len && check_one(&r, 0))
            ;
        if (progress)
            idle = 0;
        else if (++idle > MAX_IDLE)
            fail("stuck: %zu of %zu request bytes sent, the server neither answers nor closes "
                 "(%zu response(s) so far)", sent, n, r.finals);
    }
    while (r.len)
        check_one(&r, 1);
    if (r.finals < m.n && !r.closed)
        fail("%zu complete request(s), %zu response(s), and none said Connection: close", m.n,
             r.finals);
    close(fd);
    nk_httpd_stats st;
    for (int i = 0;; i++) {
        nk_loop_run(loop, NK_RUN_NOWAIT);
        nk_httpd_get_stats(e->srv, &st);
        if (st.open == 0)
            break;
        if (i > MAX_IDLE)
            fail("the server keeps a connection whose client has closed");
    }
    free(r.p);
    free(r.scratch);
    free(m.reqs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t pieces[8] = {0, 1, 2, 3, 7, 16, 61, 512};
    if (size == 0)
        return 0;
    unsigned sel = data[0];
    engine *e = &engines[(sel & 3) == 3 ? 2 : (sel & 3) == 2 ? 1 : 0];
    size_t n = size - 1 > MAX_REQUEST_BYTES ? MAX_REQUEST_BYTES : size - 1;
    run(e, data + 1, n, pieces[(sel >> 2) & 7]);
    return 0;
}
