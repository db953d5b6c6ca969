/* Routes and the exchange API, through the public headers only: a real engine on a unix
 * socket, driven by the test's own loop, with a client on the other end of the socket. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "netkit/netkit.h"
#include "netkit/httpd.h"

#include "backend_skip.h"

typedef struct fixture {
    char dir[64];      /* temporary: root/ and the socket */
    char sock[128];
    nk_loop *loop;
    nk_httpd *srv;
    nk_timer tick;     /* keeps NK_RUN_ONCE from blocking for long */
    nk_timer later;    /* answers the pending LATER exchange */
    nk_httpd_ex *pending;
    int later_status;
    /* streamed bodies */
    int pieces, aborts, drip_left;
    nk_timer drip;
    nk_httpd_ex *dripping;
} fixture;

static void on_tick(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    (void)t;
}

static void put_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/root/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- handlers --------------------------------------------------------------------------------- */

static int h_hello(nk_httpd_ex *ex, void *arg)
{
    (void)arg;
    char name[64], body[160];
    int n = nk_httpd_ex_query_param(ex, "name", name, sizeof name);
    if (n == -ENOENT)
        strcpy(name, "world");
    else if (n < 0)
        return nk_httpd_respond(ex, 400, "text/plain", "bad name\n", 9);
    int len = snprintf(body, sizeof body, "{\"hello\":\"%s\",\"path\":\"%s\"}", name,
                       nk_httpd_ex_path(ex));
    assert_int_equal(nk_httpd_ex_add_header(ex, "Cache-Control", "no-store"), 0);
    return nk_httpd_respond(ex, 200, "application/json", body, (size_t)len);
}

static int h_echo(nk_httpd_ex *ex, void *arg)
{
    (void)arg;
    nk_str body = nk_httpd_ex_body(ex);
    nk_str type = nk_httpd_ex_header(ex, "Content-Type");
    char len[32];
    snprintf(len, sizeof len, "%zu", body.len);
    assert_int_equal(nk_httpd_ex_add_header(ex, "X-Body-Length", len), 0);
    nk_str method = nk_httpd_ex_method(ex);
    assert_int_equal(nk_httpd_ex_add_header(ex, "X-Method",
                                            method.len == 4 ? "POST" : "other"), 0);
    (void)type;
    return nk_httpd_respond(ex, 200, "application/octet-stream", body.p, body.len);
}

static int h_later(nk_httpd_ex *ex, void *arg)
{
    fixture *fx = arg;
    assert_null(fx->pending);
    fx->pending = ex;
    nk_timer_start(fx->loop, &fx->later, 30, 0);
    return NK_HTTPD_LATER;
}

static void on_later(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    fixture *fx = t->data;
    nk_httpd_ex *ex = fx->pending;
    fx->pending = NULL;
    char body[64];
    int n = snprintf(body, sizeof body, "later %s\n", nk_httpd_ex_alive(ex) ? "alive" : "gone");
    fx->later_status = nk_httpd_respond(ex, 200, "text/plain", body, (size_t)n);
}

static int h_next(nk_httpd_ex *ex, void *arg)
{
    (void)ex;
    (void)arg;
    return NK_HTTPD_NEXT;
}

static int h_file(nk_httpd_ex *ex, void *arg)
{
    fixture *fx = arg;
    char path[256];
    snprintf(path, sizeof path, "%s/root/static.txt", fx->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    /* bytes 7.. of "static file body\n": "file body\n" */
    return nk_httpd_respond_fd(ex, 200, "text/plain", fd, 7, (uint64_t)st.st_size - 7);
}

static int h_purge(nk_httpd_ex *ex, void *arg)
{
    (void)arg;
    const char *path = nk_httpd_ex_path(ex);
    return nk_httpd_respond(ex, 200, "text/plain", path, strlen(path));
}

/* Five pieces, one per call, then done. */
static int produce_count(nk_httpd_ex *ex, nk_buf *out, void *arg)
{
    fixture *fx = arg;
    (void)ex;
    if (!out) {
        fx->aborts++;
        return 0;
    }
    nk_buf_printf(out, "piece %d\n", fx->pieces);
    return ++fx->pieces == 5 ? NK_HTTPD_DONE : 0;
}

static int h_stream(nk_httpd_ex *ex, void *arg)
{
    return nk_httpd_respond_stream(ex, 200, "text/plain", produce_count, arg);
}

/* Nothing until a timer says so: LATER, then resumed, three times. */
static int produce_drip(nk_httpd_ex *ex, nk_buf *out, void *arg)
{
    fixture *fx = arg;
    if (!out) {
        fx->aborts++;
        fx->dripping = NULL;
        nk_timer_stop(fx->loop, &fx->drip);
        return 0;
    }
    if (fx->drip_left % 2) { /* odd: data is ready */
        nk_buf_printf(out, "drop %d\n", fx->drip_left);
        fx->drip_left--;
        return fx->drip_left == 0 ? (fx->dripping = NULL, NK_HTTPD_DONE) : 0;
    }
    fx->dripping = ex;
    nk_timer_start(fx->loop, &fx->drip, 10, 0);
    return NK_HTTPD_LATER;
}

static void on_drip(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    fixture *fx = t->data;
    fx->drip_left--; /* now odd: ready */
    assert_int_equal(nk_httpd_ex_resume(fx->dripping), 0);
}

static int h_drip(nk_httpd_ex *ex, void *arg)
{
    fixture *fx = arg;
    fx->drip_left = 6;
    return nk_httpd_respond_stream(ex, 200, "text/plain", produce_drip, arg);
}

static int h_forgets(nk_httpd_ex *ex, void *arg)
{
    (void)ex;
    (void)arg;
    return NK_HTTPD_DONE; /* but never answered: the engine answers 500 */
}

static int h_headers(nk_httpd_ex *ex, void *arg)
{
    (void)arg;
    assert_int_equal(nk_httpd_ex_add_header(ex, "Content-Length", "5"), -EINVAL);
    assert_int_equal(nk_httpd_ex_add_header(ex, "Connection", "close"), -EINVAL);
    assert_int_equal(nk_httpd_ex_add_header(ex, "Bad Name", "x"), -EINVAL);
    assert_int_equal(nk_httpd_ex_add_header(ex, "X-Split", "a\r\nInjected: 1"), -EINVAL);
    assert_int_equal(nk_httpd_ex_add_header(ex, "X-Ok", "fine"), 0);
    assert_int_equal(nk_httpd_respond(ex, 99, NULL, NULL, 0), -EINVAL);
    int r = nk_httpd_respond(ex, 204, NULL, NULL, 0);
    assert_int_equal(nk_httpd_respond(ex, 200, NULL, NULL, 0), -EINVAL); /* twice */
    return r;
}

/* ---- fixture ---------------------------------------------------------------------------------- */

/* The engine accepts on a unix socket at fx->sock. */
static void listen_on_sock(fixture *fx)
{
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, fx->sock);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 16), 0);
    assert_int_equal(nk_httpd_listen(fx->srv, lfd), 0);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    strcpy(fx->dir, "/tmp/nk-handlers-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    char root[128];
    snprintf(root, sizeof root, "%s/root", fx->dir);
    assert_int_equal(mkdir(root, 0755), 0);
    put_file(fx->dir, "static.txt", "static file body\n");
    put_file(fx->dir, "next", "served by the static handler\n");
    snprintf(fx->sock, sizeof fx->sock, "%s/s", fx->dir);

    assert_int_equal(nk_loop_new(NULL, &fx->loop), 0);
    nk_httpd_config cfg;
    nk_httpd_config_init(&cfg);
    cfg.root = root;
    cfg.access_log_fd = -1;
    assert_int_equal(nk_httpd_new(fx->loop, &cfg, &fx->srv), 0);
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "/api/hello", 0, h_hello, fx), 0);
    assert_int_equal(nk_httpd_route(fx->srv, "POST", "/api/echo", 0, h_echo, fx), 0);
    assert_int_equal(nk_httpd_route(fx->srv, NULL, "/later", NK_HTTPD_PREFIX, h_later, fx), 0);
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "/next", 0, h_next, fx), 0);
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "/file", 0, h_file, fx), 0);
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "/forgets", 0, h_forgets, fx), 0);
    assert_int_equal(nk_httpd_route(fx->srv, "PURGE", "/cache", NK_HTTPD_PREFIX, h_purge, fx), 0);
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "/stream", 0, h_stream, fx), 0);
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "/drip", 0, h_drip, fx), 0);
    nk_timer_init(&fx->drip, on_drip, fx);
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "/headers", 0, h_headers, fx), 0);

    listen_on_sock(fx);
    nk_timer_init(&fx->tick, on_tick, fx);
    nk_timer_start(fx->loop, &fx->tick, 20, 20);
    nk_timer_init(&fx->later, on_later, fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    nk_timer_stop(fx->loop, &fx->tick);
    nk_timer_stop(fx->loop, &fx->later);
    nk_timer_stop(fx->loop, &fx->drip);
    nk_httpd_free(fx->srv);
    assert_int_equal(nk_loop_free(fx->loop), 0);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static int client(fixture *fx)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, fx->sock);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Send req on a new connection and read until the server closes it, running the loop;
 * returns the bytes received (NUL-terminated, to be freed). */
static char *exchange(fixture *fx, const char *req, size_t reqlen)
{
    int fd = client(fx);
    assert_int_equal(send(fd, req, reqlen, MSG_NOSIGNAL), (ssize_t)reqlen);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    for (int i = 0; i < 500; i++) {
        ssize_t n;
        while ((n = recv(fd, out + len, cap - len - 1, MSG_DONTWAIT)) > 0)
            len += (size_t)n;
        if (n == 0)
            break;
        nk_loop_run(fx->loop, NK_RUN_ONCE);
    }
    close(fd);
    out[len] = '\0';
    return out;
}

#define GET(target, extra) "GET " target " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" extra "\r\n"

static void assert_has(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected %s in:\n%s", needle, hay);
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_route_answers_with_query_and_headers(void **state)
{
    fixture *fx = *state;
    const char *req = GET("/api/hello?name=a+b%21&x=1", "");
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 200 OK\r\n");
    assert_has(out, "Content-Type: application/json\r\n");
    assert_has(out, "Cache-Control: no-store\r\n");
    assert_has(out, "\r\n\r\n{\"hello\":\"a b!\",\"path\":\"/api/hello\"}");
    free(out);
    /* The route's path is compared decoded and normalised. */
    req = GET("/api/x/../%68ello", "");
    out = exchange(fx, req, strlen(req));
    assert_has(out, "\"hello\":\"world\"");
    free(out);
    /* HEAD takes the GET route, without the body. */
    req = "HEAD /api/hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 200 OK\r\n");
    assert_has(out, "Content-Length: 37\r\n");
    assert_null(strstr(out, "{\"hello\""));
    free(out);
}

static void test_other_methods_and_paths_fall_through(void **state)
{
    fixture *fx = *state;
    const char *req = "POST /api/hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                      "Connection: close\r\n\r\n";
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 405 "); /* the built-in answer: no route for POST */
    free(out);
    req = GET("/api/hello/more", "");
    out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 404 "); /* exact route: not below it */
    free(out);
    req = GET("/next", "");
    out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 200 OK\r\n");
    assert_has(out, "served by the static handler\n");
    free(out);
}

static int h_count_next(nk_httpd_ex *ex, void *arg)
{
    (void)ex;
    (*(int *)arg)++;
    return NK_HTTPD_NEXT;
}

/* A route in front of everything that declines (NK_HTTPD_NEXT) leaves each request to the
 * built-in handler it would have had without the route: listing, static file, upload. It is
 * a NK_HTTPD_STREAM_BODY route, which runs before the body is read: a plain route has taken
 * the body into memory by the time it declines, and the upload handler, which streams bodies
 * to disk, can no longer have it. The status page is answered before any route (the
 * documented order). */
static void test_catch_all_route_falls_through_to_every_builtin(void **state)
{
    fixture *fx = *state;
    nk_httpd_free(fx->srv); /* another engine, with writes and the status page on */
    unlink(fx->sock);
    char root[128];
    snprintf(root, sizeof root, "%s/root", fx->dir);
    nk_httpd_config cfg;
    nk_httpd_config_init(&cfg);
    cfg.root = root;
    cfg.access_log_fd = -1;
    cfg.upload = 1;
    cfg.status_path = "/status";
    assert_int_equal(nk_httpd_new(fx->loop, &cfg, &fx->srv), 0);
    int calls = 0;
    assert_int_equal(nk_httpd_route(fx->srv, NULL, "/", NK_HTTPD_PREFIX | NK_HTTPD_STREAM_BODY,
                                    h_count_next, &calls),
                     0);
    listen_on_sock(fx);

    const char *req = GET("/", "Accept: text/html\r\n");
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 200 OK\r\n");
    assert_has(out, "static.txt"); /* the listing */
    free(out);
    assert_int_equal(calls, 1);
    req = GET("/static.txt", "");
    out = exchange(fx, req, strlen(req));
    assert_has(out, "\r\n\r\nstatic file body\n");
    free(out);
    assert_int_equal(calls, 2);
    req = "PUT /new.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\nConnection: close\r\n\r\n"
          "uploaded";
    out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 201 ");
    free(out);
    assert_int_equal(calls, 3);
    req = GET("/new.txt", "");
    out = exchange(fx, req, strlen(req));
    assert_has(out, "\r\n\r\nuploaded");
    free(out);
    assert_int_equal(calls, 4);
    req = GET("/status", "");
    out = exchange(fx, req, strlen(req));
    assert_has(out, "\"requests_total\":");
    free(out);
    assert_int_equal(calls, 4);
}

static void test_any_method_token(void **state)
{
    fixture *fx = *state;
    const char *req = "PURGE /cache/a/b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 200 OK\r\n");
    assert_has(out, "\r\n\r\n/cache/a/b");
    free(out);
    /* The same unknown method elsewhere: the built-ins do not implement it. */
    req = "PURGE /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 501 ");
    free(out);
}

static void test_streamed_body(void **state)
{
    fixture *fx = *state;
    /* HTTP/1.1: chunked, then the next pipelined request is answered after it. */
    const char *req = "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n" GET("/api/hello", "");
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "Transfer-Encoding: chunked\r\n");
    assert_null(strstr(out, "Content-Length: 0"));
    assert_has(out, "\r\n\r\n8\r\npiece 0\n\r\n8\r\npiece 1\n\r\n");
    assert_has(out, "8\r\npiece 4\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n");
    assert_int_equal(fx->aborts, 0);
    free(out);
    /* HTTP/1.0: no chunked coding; the close ends the body. */
    fx->pieces = 0;
    req = "GET /stream HTTP/1.0\r\n\r\n";
    out = exchange(fx, req, strlen(req));
    assert_null(strstr(out, "Transfer-Encoding"));
    assert_has(out, "Connection: close\r\n");
    assert_has(out, "\r\n\r\npiece 0\npiece 1\npiece 2\npiece 3\npiece 4\n");
    free(out);
    /* HEAD: the head, and the producer's last call at once. */
    fx->pieces = 0;
    req = "HEAD /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    out = exchange(fx, req, strlen(req));
    assert_has(out, "Transfer-Encoding: chunked\r\n");
    assert_null(strstr(out, "piece"));
    assert_int_equal(fx->pieces, 0);
    assert_int_equal(fx->aborts, 1);
    free(out);
}

static void test_streamed_body_paused_and_resumed(void **state)
{
    fixture *fx = *state;
    const char *req = GET("/drip", "");
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "7\r\ndrop 5\n\r\n7\r\ndrop 3\n\r\n7\r\ndrop 1\n\r\n0\r\n\r\n");
    assert_int_equal(fx->aborts, 0);
    free(out);
    /* The client goes away while the producer waits: its last call comes, once. */
    int fd = client(fx);
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    for (int i = 0; i < 100 && !fx->dripping; i++)
        nk_loop_run(fx->loop, NK_RUN_ONCE);
    assert_non_null(fx->dripping);
    close(fd);
    /* The resumed write fails on the closed socket (or the read sees EOF): aborted. */
    for (int i = 0; i < 100 && fx->aborts == 0; i++)
        nk_loop_run(fx->loop, NK_RUN_ONCE);
    assert_int_equal(fx->aborts, 1);
}

static void test_route_takes_the_body(void **state)
{
    fixture *fx = *state;
    const char *req = "POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n"
                      "Connection: close\r\n\r\nhello body!";
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "X-Body-Length: 11\r\n");
    assert_has(out, "X-Method: POST\r\n");
    assert_has(out, "\r\n\r\nhello body!");
    free(out);
    req = "POST /api/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
          "Connection: close\r\n\r\n5\r\nchunk\r\n3\r\ned!\r\n0\r\n\r\n";
    out = exchange(fx, req, strlen(req));
    assert_has(out, "X-Body-Length: 8\r\n");
    assert_has(out, "\r\n\r\nchunked!");
    free(out);
}

static void test_later_answers_in_order(void **state)
{
    fixture *fx = *state;
    /* Pipelined: the second request waits for the first's late answer. */
    const char *req = "GET /later/x HTTP/1.1\r\nHost: t\r\n\r\n" GET("/api/hello", "");
    char *out = exchange(fx, req, strlen(req));
    char *first = strstr(out, "later alive\n");
    char *second = strstr(out, "{\"hello\"");
    assert_non_null(first);
    assert_non_null(second);
    assert_true(first < second);
    assert_int_equal(fx->later_status, NK_HTTPD_DONE);
    free(out);
}

static void test_later_after_the_client_left(void **state)
{
    fixture *fx = *state;
    int fd = client(fx);
    const char *req = GET("/later", "");
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    for (int i = 0; i < 100 && !fx->pending; i++)
        nk_loop_run(fx->loop, NK_RUN_ONCE);
    assert_non_null(fx->pending);
    close(fd); /* gone before the answer */
    for (int i = 0; i < 100 && fx->pending; i++)
        nk_loop_run(fx->loop, NK_RUN_ONCE);
    assert_null(fx->pending);
    assert_int_equal(fx->later_status, NK_HTTPD_DONE); /* answered into the void, freed */
    /* The engine still serves. */
    req = GET("/api/hello", "");
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 200 OK\r\n");
    free(out);
}

static void test_later_pending_at_free(void **state)
{
    fixture *fx = *state;
    int fd = client(fx);
    const char *req = GET("/later", "");
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    for (int i = 0; i < 100 && !fx->pending; i++)
        nk_loop_run(fx->loop, NK_RUN_ONCE);
    assert_non_null(fx->pending);
    close(fd);
    nk_loop_run(fx->loop, NK_RUN_NOWAIT);
    /* nk_httpd_free (teardown) frees the exchange nobody answered; ASan checks the rest. */
    nk_timer_stop(fx->loop, &fx->later);
    fx->pending = NULL;
}

static void test_file_descriptor_body(void **state)
{
    fixture *fx = *state;
    const char *req = GET("/file", "");
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "Content-Length: 10\r\n");
    assert_has(out, "\r\n\r\nfile body\n");
    free(out);
    req = "HEAD /file HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    out = exchange(fx, req, strlen(req));
    assert_has(out, "Content-Length: 10\r\n");
    assert_null(strstr(out, "file body"));
    free(out);
}

static void test_mistakes_are_refused(void **state)
{
    fixture *fx = *state;
    const char *req = GET("/forgets", "");
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 500 ");
    free(out);
    req = GET("/headers", "");
    out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 204 No Content\r\n");
    assert_has(out, "X-Ok: fine\r\n");
    assert_null(strstr(out, "Injected"));
    free(out);
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "relative", 0, h_next, NULL), -EINVAL);
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "/a/../b", 0, h_next, NULL), -EINVAL);
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "/a%2Fb", 0, h_next, NULL), -EINVAL);
    assert_int_equal(nk_httpd_route(fx->srv, "G T", "/a", 0, h_next, NULL), -EINVAL);
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "/a", 0, NULL, NULL), -EINVAL);
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "/a", 0x100, h_next, NULL), -EINVAL);
}

int main(void)
{
    skip_suite_if_backend_refused();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_route_answers_with_query_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_methods_and_paths_fall_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catch_all_route_falls_through_to_every_builtin, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_route_takes_the_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_any_method_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streamed_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streamed_body_paused_and_resumed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_later_answers_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_later_after_the_client_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_later_pending_at_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_descriptor_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mistakes_are_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
