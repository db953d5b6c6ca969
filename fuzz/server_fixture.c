/* The docroot and the engines the whole-server fuzz targets share: see server_fixture.h. */
#include "server_fixture.h"

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
#include <unistd.h>
#include <zlib.h>

static const char *target = "server"; /* fuzz_<target> in every message */

static void remove_docroot(void);

void fail(const char *fmt, ...)
{
    remove_docroot(); /* abort skips atexit: do not leave a directory behind per crash */
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_%s: invariant broken: ", target);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void show(const char *what, const unsigned char *p, size_t n)
{
    fprintf(stderr, "fuzz_%s: %s (%zu bytes): \"", target, what, n);
    for (size_t i = 0; i < n && i < 300; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
            fputc(p[i], stderr);
        else
            fprintf(stderr, "\\x%02x", p[i]);
    }
    fputs(n > 300 ? "\"...\n" : "\"\n", stderr);
}

void grow(unsigned char **p, size_t *cap, size_t need)
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

/* ---- the docroot ----------------------------------------------------------------------- */

doc docs[NDOCS] = {
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

void setup_fail(const char *what)
{
    fprintf(stderr, "fuzz_%s: setup: %s: %s\n", target, what, strerror(errno));
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
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/nk-fuzz-%s.XXXXXX", target);
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

const doc *doc_for(const nk_http_request *req)
{
    char path[4096];
    if (nk_http_path_normalize(req->path.p, req->path.len, path, sizeof path) < 0)
        return NULL;
    for (int i = 0; i < NDOCS; i++)
        if (strcmp(path, docs[i].url) == 0)
            return &docs[i];
    return NULL;
}

void check_inflates_to(const unsigned char *gz, size_t n, const doc *d)
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

/* ---- a route that streams its request bodies (engine A, /sink) -------------------------
 * The query picks what the handler does, so the inputs reach every turn of a streamed body:
 * "early" answers at head time without reading, "pause" pauses after each piece (a timer of
 * the next loop turn resumes), "cut" answers 413 once 100 bytes came; else the whole body is
 * counted and answered 200. */

typedef struct sink {
    nk_httpd_ex *ex;
    nk_timer resume;
    uint64_t bytes;
    int pause, cut;
} sink;

static void sink_resume(nk_loop *l, nk_timer *t)
{
    (void)l;
    sink *k = t->data;
    if (nk_httpd_ex_body_resume(k->ex) < 0)
        fail("a paused body could not be resumed");
}

static int sink_data(nk_httpd_ex *ex, const void *p, size_t n, int end, void *arg)
{
    sink *k = arg;
    (void)p;
    if (end) {
        nk_timer_stop(loop, &k->resume);
        uint64_t bytes = k->bytes;
        free(k);
        if (end < 0)
            return 0; /* ex is over */
        char body[32];
        int len = snprintf(body, sizeof body, "%llu\n", (unsigned long long)bytes);
        return nk_httpd_respond(ex, 200, "text/plain", body, (size_t)len);
    }
    k->bytes += n;
    if (k->cut && k->bytes > 100) {
        nk_timer_stop(loop, &k->resume);
        free(k);
        return nk_httpd_respond(ex, 413, "text/plain", "cut\n", 4);
    }
    if (k->pause) {
        nk_timer_start(loop, &k->resume, 0, 0);
        return NK_HTTPD_LATER;
    }
    return 0;
}

static int sink_begin(nk_httpd_ex *ex, void *arg)
{
    (void)arg;
    char v[8];
    if (nk_httpd_ex_query_param(ex, "early", v, sizeof v) >= 0)
        return nk_httpd_respond(ex, 403, "text/plain", "early\n", 6);
    sink *k = calloc(1, sizeof *k);
    if (!k)
        abort();
    k->ex = ex;
    k->pause = nk_httpd_ex_query_param(ex, "pause", v, sizeof v) >= 0;
    k->cut = nk_httpd_ex_query_param(ex, "cut", v, sizeof v) >= 0;
    nk_timer_init(&k->resume, sink_resume, k);
    int rc = nk_httpd_ex_body_read(ex, 0, sink_data, k);
    if (rc < 0) {
        free(k);
        if (rc != -EFBIG)
            fail("nk_httpd_ex_body_read: %d", rc);
        return nk_httpd_respond(ex, 413, "text/plain", "too large\n", 10);
    }
    return NK_HTTPD_LATER;
}

/* ---- the engines ------------------------------------------------------------------------ */

nk_loop *loop;
engine engines[3];
const nk_httpd_user users[1] = {{"user", "pass", NULL}};

static void start_engine(engine *e, const char *sock_name, int http2)
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
    /* Off, a stream opening with the HTTP/2 preface gets the HTTP/1.1 answer, which is what
     * the HTTP/1.x target checks. */
    nk_httpd_set_http2(e->srv, http2, http2 ? e->h2_streams : 0);
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

void fixture_start(const char *name, int http2)
{
    target = name;
    signal(SIGPIPE, SIG_IGN); /* sendfile has no MSG_NOSIGNAL */
    make_docroot();
    if (nk_loop_new(NULL, &loop) < 0)
        setup_fail("nk_loop_new");
    engine *a = &engines[0], *b = &engines[1], *c = &engines[2];
    nk_httpd_config_init(&a->cfg);
    a->cfg.gzip = 1;
    a->cfg.cors = 1;
    a->cfg.status_path = "/status";
    a->serves_files = 1;
    nk_httpd_config_init(&b->cfg);
    b->cfg.echo = 1;
    b->cfg.users = users;
    b->cfg.nusers = 1;
    b->cfg.max_body = 4096;
    b->needs_auth = 1;
    nk_httpd_config_init(&c->cfg);
    c->cfg.listing = 0;
    c->cfg.spa = 1;
    c->cfg.limits.max_request_line = 128;
    c->cfg.limits.max_head = 512;
    c->cfg.limits.max_headers = 8;
    c->cfg.max_body = 64;
    c->serves_files = 1;
    c->h2_streams = 2;
    start_engine(a, "a.sock", http2);
    if (nk_httpd_route(a->srv, NULL, "/sink", NK_HTTPD_PREFIX | NK_HTTPD_STREAM_BODY, sink_begin,
                       NULL) < 0)
        setup_fail("nk_httpd_route");
    start_engine(b, "b.sock", http2);
    start_engine(c, "c.sock", http2);
    atexit(teardown);
}

engine *engine_for(unsigned ctl)
{
    return &engines[(ctl & 3) == 3 ? 2 : (ctl & 3) == 2 ? 1 : 0];
}

size_t piece_for(unsigned ctl)
{
    static const size_t pieces[8] = {0, 1, 2, 3, 7, 16, 61, 512};
    return pieces[(ctl >> 2) & 7];
}

/* ---- the client's end ------------------------------------------------------------------- */

int client_connect(const engine *e)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&e->addr, sizeof e->addr) < 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
        setup_fail("connect");
    return fd;
}

void client_recv(int fd, unsigned char **p, size_t *len, size_t *cap, size_t *total, int *eof,
                 int *progress)
{
    for (;;) {
        grow(p, cap, *len + 65536);
        ssize_t n = recv(fd, *p + *len, 65536, 0);
        if (n > 0) {
            *len += (size_t)n;
            *total += (size_t)n;
            *progress = 1;
            if (*total > MAX_RX)
                fail("more than %u bytes from the server for one input", MAX_RX);
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

int loop_turn(const engine *e)
{
    if (nk_httpd_waiting(e->srv)) {
        nk_loop_run(loop, NK_RUN_ONCE);
        return 1;
    }
    nk_loop_run(loop, NK_RUN_NOWAIT);
    return 0;
}

void wait_released(engine *e)
{
    nk_httpd_stats st;
    for (int i = 0;; i++) {
        if (loop_turn(e))
            i = 0;
        nk_httpd_get_stats(e->srv, &st);
        if (st.open == 0)
            break;
        if (i > MAX_IDLE)
            fail("the server keeps a connection whose client has closed");
    }
}
