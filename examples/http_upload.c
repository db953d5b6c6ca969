/* A streaming upload endpoint: PUT or POST /upload gets its body piece by piece as it arrives
 * (NK_HTTPD_STREAM_BODY) and answers with its length and FNV-1a hash, in the same few KiB of
 * memory whatever the body's size, over HTTP/1.1 (Content-Length or chunked) and HTTP/2 (h2c)
 * alike. The same shape writes an upload to disk or forwards it to another server.
 *   cc http_upload.c $(pkg-config --cflags --libs netkit-httpd) -o http_upload
 *   ./http_upload 127.0.0.1:8080      then: curl -T big.iso http://127.0.0.1:8080/upload
 * ?max=N bounds the body (default 1 GiB): a Content-Length above it is refused with 413 before
 * a byte is read, a chunked body passing it is cut with 413. ?pause_ms=N pauses the body for
 * N ms after each piece, as a slow disk would: the client is held back meanwhile (over
 * HTTP/1.1 by the socket, over HTTP/2 by the stream's window), and nothing piles up here. */
#include <netkit/netkit.h>
#include <netkit/httpd.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

struct upload {
    nk_loop *loop;
    nk_httpd_ex *ex;
    uint64_t bytes, hash;
    long pause_ms;
    nk_timer resume; /* ends a pause */
};

static void upload_free(struct upload *u)
{
    nk_timer_stop(u->loop, &u->resume);
    free(u);
}

static void on_resume(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    struct upload *u = t->data;
    nk_httpd_ex_body_resume(u->ex);
}

static int on_data(nk_httpd_ex *ex, const void *p, size_t n, int end, void *arg)
{
    struct upload *u = arg;
    if (end < 0) { /* cut short (client gone, over max, timeout): ex is over, no answer */
        upload_free(u);
        return 0;
    }
    if (end) {
        char body[96];
        int len = snprintf(body, sizeof body, "{\"bytes\":%" PRIu64 ",\"fnv1a64\":\"%016" PRIx64
                           "\"}\n", u->bytes, u->hash);
        upload_free(u);
        return nk_httpd_respond(ex, 200, "application/json", body, (size_t)len);
    }
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        u->hash = (u->hash ^ b[i]) * 0x100000001b3u;
    u->bytes += n;
    if (u->pause_ms > 0) {
        nk_timer_start(u->loop, &u->resume, (uint64_t)u->pause_ms, 0);
        return NK_HTTPD_LATER; /* paused until on_resume */
    }
    return 0;
}

static long query_long(nk_httpd_ex *ex, const char *name, long dflt)
{
    char text[24], *end = text;
    if (nk_httpd_ex_query_param(ex, name, text, sizeof text) <= 0)
        return dflt;
    long v = strtol(text, &end, 10);
    return *end || v < 0 ? -1 : v;
}

static int upload_begin(nk_httpd_ex *ex, void *arg)
{
    long max = query_long(ex, "max", 1L << 30), pause_ms = query_long(ex, "pause_ms", 0);
    if (max < 0 || pause_ms < 0 || pause_ms > 10000)
        return nk_httpd_respond(ex, 400, "text/plain", "max=N, pause_ms=0..10000\n", 25);
    struct upload *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM; /* the engine answers 500 */
    u->loop = arg;
    u->ex = ex;
    u->hash = 0xcbf29ce484222325u;
    u->pause_ms = pause_ms;
    nk_timer_init(&u->resume, on_resume, u);
    int rc = nk_httpd_ex_body_read(ex, (uint64_t)max, on_data, u);
    if (rc < 0) {
        free(u);
        if (rc == -EFBIG) /* its Content-Length says so: refused before the upload */
            return nk_httpd_respond(ex, 413, "text/plain", "too large\n", 10);
        return rc;
    }
    return NK_HTTPD_LATER; /* answered from on_data at the end */
}

/* Routes come before the static files: a catch-all keeps the engine from serving any. */
static int not_found(nk_httpd_ex *ex, void *arg)
{
    (void)arg;
    return nk_httpd_respond(ex, 404, "text/plain", "not found\n", 10);
}

static void on_drained(void *arg) { nk_loop_stop(arg); }

static void on_term(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)signum;
    nk_signal_stop(loop, sig); /* a second SIGTERM now kills, as usual */
    nk_httpd_shutdown(sig->data); /* uploads in flight finish (or time out), then on_drained */
}

int main(int argc, char **argv)
{
    nk_loop *loop;
    nk_httpd *srv;
    nk_httpd_config cfg;
    nk_addr addr;
    char name[NK_ADDR_STRLEN];
    nk_httpd_config_init(&cfg);
    int rc = argc == 2 ? nk_addr_parse(argv[1], 0, &addr) : -EINVAL;
    int fd = rc < 0 ? rc : nk_sock_listen(&addr, SOCK_STREAM, 0, 0);
    if (fd < 0 || (rc = nk_loop_new(NULL, &loop)) < 0) {
        fprintf(stderr, "usage: http_upload HOST:PORT (%s)\n", nk_strerror(fd < 0 ? fd : rc));
        return 2;
    }
    cfg.on_drained = on_drained;
    cfg.drained_arg = loop;
    if ((rc = nk_httpd_new(loop, &cfg, &srv)) < 0 || (rc = nk_httpd_listen(srv, fd)) < 0 ||
        (rc = nk_httpd_route(srv, "PUT", "/upload", NK_HTTPD_STREAM_BODY, upload_begin, loop)) <
            0 ||
        (rc = nk_httpd_route(srv, "POST", "/upload", NK_HTTPD_STREAM_BODY, upload_begin, loop)) <
            0 ||
        (rc = nk_httpd_route(srv, NULL, "/", NK_HTTPD_PREFIX, not_found, NULL)) < 0) {
        fprintf(stderr, "http_upload: %s\n", nk_strerror(rc));
        return 1;
    }
    nk_signal term;
    nk_signal_init(&term, on_term, srv);
    nk_signal_start(loop, &term, SIGTERM);
    nk_sock_local(fd, &addr);
    nk_addr_format(&addr, name, sizeof name);
    fprintf(stderr, "listening on http://%s/\n", name);
    rc = nk_loop_run(loop, NK_RUN_DEFAULT);
    nk_httpd_free(srv);
    nk_loop_free(loop);
    return rc < 0 ? 1 : 0;
}
