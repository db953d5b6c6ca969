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
 * built-in handler it would have had without the route: listing, static file, upload. Here
 * it is a NK_HTTPD_STREAM_BODY route, which declines before the body is read (a plain route
 * declines after taking it: test_declined_body_goes_to_the_upload). The status page is
 * answered before any route (the documented order). */
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

/* ---- a plain route that declines a request with a body ------------------------------------ */

/* What a declining plain route saw: how often it ran, the body of its last request. */
typedef struct seen {
    int calls;
    size_t body_len;
} seen;

static int h_peek_next(nk_httpd_ex *ex, void *arg)
{
    seen *s = arg;
    s->calls++;
    s->body_len = nk_httpd_ex_body(ex).len;
    return NK_HTTPD_NEXT;
}

/* A route that answers with the length of the body it was given. */
static int h_body_len(nk_httpd_ex *ex, void *arg)
{
    (void)arg;
    char text[32];
    int n = snprintf(text, sizeof text, "len %zu\n", nk_httpd_ex_body(ex).len);
    return nk_httpd_respond(ex, 200, "text/plain", text, (size_t)n);
}

/* What the on_data of /read-then-next was told: its calls and the last end. */
typedef struct told {
    int calls, end, alive;
} told;
static told read_told;

static int on_piece_count(nk_httpd_ex *ex, const void *p, size_t n, int end, void *arg)
{
    (void)p;
    (void)n;
    told *t = arg;
    t->calls++;
    t->end = end;
    t->alive = nk_httpd_ex_alive(ex);
    return 0;
}

/* A streamed-body route that begins to read, then declines: too late (answered 500). */
static int h_read_then_next(nk_httpd_ex *ex, void *arg)
{
    assert_int_equal(nk_httpd_ex_body_read(ex, 0, on_piece_count, arg), 0);
    return NK_HTTPD_NEXT;
}

enum { DECLINE_LIMIT = 4096 };

/* Another engine on the fixture's socket: writes (or echo) on, max_body DECLINE_LIMIT, a
 * plain catch-all route in front that declines everything (a body-length route first). With
 * auth_limit, writes need the user "u" (password "p") and their bodies that limit. */
static void restart_with_declining_route_auth(fixture *fx, int echo, seen *s,
                                              uint64_t auth_limit)
{
    memset(&read_told, 0, sizeof read_told);
    nk_httpd_free(fx->srv);
    unlink(fx->sock);
    char root[128];
    snprintf(root, sizeof root, "%s/root", fx->dir);
    nk_httpd_config cfg;
    nk_httpd_config_init(&cfg);
    cfg.root = root;
    cfg.access_log_fd = -1;
    cfg.upload = !echo;
    cfg.echo = echo;
    cfg.max_body = DECLINE_LIMIT;
    static const nk_httpd_user user = {.name = "u", .password = "p"};
    if (auth_limit) {
        cfg.users = &user;
        cfg.nusers = 1;
        cfg.max_body_authenticated = auth_limit;
    }
    assert_int_equal(nk_httpd_new(fx->loop, &cfg, &fx->srv), 0);
    assert_int_equal(nk_httpd_route(fx->srv, NULL, "/len", 0, h_body_len, NULL), 0);
    assert_int_equal(nk_httpd_route(fx->srv, NULL, "/read-then-next", NK_HTTPD_STREAM_BODY,
                                    h_read_then_next, &read_told), 0);
    assert_int_equal(nk_httpd_route(fx->srv, NULL, "/", NK_HTTPD_PREFIX, h_peek_next, s), 0);
    listen_on_sock(fx);
}

static void restart_with_declining_route(fixture *fx, int echo, seen *s)
{
    restart_with_declining_route_auth(fx, echo, s, 0);
}

/* The whole content of root/name into buf (at most cap bytes); its length, -1 when absent. */
static ssize_t read_root_file(const fixture *fx, const char *name, char *buf, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "%s/root/%s", fx->dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    ssize_t n;
    while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)n;
    close(fd);
    return (ssize_t)len;
}

/* No temporary upload file is left anywhere in root. */
static void assert_no_temp_files(const fixture *fx)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test -z \"$(find '%s/root' -name '.netkit-upload-*')\"", fx->dir);
    assert_int_equal(system(cmd), 0);
}

/* "PUT /target" with Content-Length and body on one new connection: the answer. */
static char *put_body(fixture *fx, const char *target, const char *body, size_t len)
{
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "PUT %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      target, len);
    char *req = malloc((size_t)hl + len);
    memcpy(req, head, (size_t)hl);
    memcpy(req + hl, body, len);
    char *out = exchange(fx, req, (size_t)hl + len);
    free(req);
    return out;
}

/* req, a body over the limit, is answered 413 before any route sees it, and root/name is
 * not written. */
static void assert_refused_unseen(fixture *fx, const seen *s, const char *req, size_t len,
                                  const char *name)
{
    int calls = s->calls;
    char *out = exchange(fx, req, len);
    assert_has(out, "HTTP/1.1 413 ");
    free(out);
    assert_int_equal(s->calls, calls);
    char got[16];
    assert_int_equal(read_root_file(fx, name, got, sizeof got), -1);
}

static void test_declined_body_goes_to_the_upload(void **state)
{
    fixture *fx = *state;
    seen s = {0};
    restart_with_declining_route(fx, 0, &s);
    char got[DECLINE_LIMIT + 16];

    /* One byte: the route saw it, declined, and the upload wrote it. */
    char *out = put_body(fx, "/one.txt", "x", 1);
    assert_has(out, "HTTP/1.1 201 ");
    free(out);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.body_len, 1);
    assert_int_equal(read_root_file(fx, "one.txt", got, sizeof got), 1);
    assert_int_equal(got[0], 'x');

    /* Empty: Content-Length 0 gives the route no body to take, and the file is created. */
    out = put_body(fx, "/empty.txt", "", 0);
    assert_has(out, "HTTP/1.1 201 ");
    free(out);
    assert_int_equal(s.calls, 2);
    assert_int_equal(read_root_file(fx, "empty.txt", got, sizeof got), 0);

    /* Exactly the limit, every byte value: byte-exact on disk. */
    char big[DECLINE_LIMIT];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7 + i / 256);
    out = put_body(fx, "/limit.bin", big, sizeof big);
    assert_has(out, "HTTP/1.1 201 ");
    free(out);
    assert_int_equal(s.body_len, DECLINE_LIMIT);
    assert_int_equal(read_root_file(fx, "limit.bin", got, sizeof got), DECLINE_LIMIT);
    assert_memory_equal(got, big, sizeof big);

    /* Replacing a file the same way: 204, the new content. */
    out = put_body(fx, "/one.txt", "yz", 2);
    assert_has(out, "HTTP/1.1 204 ");
    free(out);
    assert_int_equal(read_root_file(fx, "one.txt", got, sizeof got), 2);
    assert_memory_equal(got, "yz", 2);

    /* One byte over: 413 before the route or the upload runs, no file, no leftovers. */
    char creq[DECLINE_LIMIT + 256];
    int cl = snprintf(creq, sizeof creq,
                      "PUT /over.bin HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n\r\n", DECLINE_LIMIT + 1);
    memset(creq + cl, 'o', DECLINE_LIMIT + 1);
    assert_refused_unseen(fx, &s, creq, (size_t)cl + DECLINE_LIMIT + 1, "over.bin");

    /* Chunked, whole and over the limit. */
    const char *req = "PUT /chunked.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                      "Connection: close\r\n\r\n5\r\nchunk\r\n3\r\ned!\r\n0\r\n\r\n";
    out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 201 ");
    free(out);
    assert_int_equal(s.body_len, 8);
    assert_int_equal(read_root_file(fx, "chunked.txt", got, sizeof got), 8);
    assert_memory_equal(got, "chunked!", 8);
    cl = snprintf(creq, sizeof creq,
                  "PUT /cover.bin HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                  "Connection: close\r\n\r\n%x\r\n", DECLINE_LIMIT + 1);
    memset(creq + cl, 'c', DECLINE_LIMIT + 1);
    cl += DECLINE_LIMIT + 1;
    cl += snprintf(creq + cl, sizeof creq - (size_t)cl, "\r\n0\r\n\r\n");
    assert_refused_unseen(fx, &s, creq, (size_t)cl, "cover.bin");

    /* A form POST to the directory, declined the same way, is stored too. */
    const char *form = "--XX\r\nContent-Disposition: form-data; name=\"f\"; "
                       "filename=\"form.txt\"\r\n\r\nformed\r\n--XX--\r\n";
    cl = snprintf(creq, sizeof creq,
                  "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=XX"
                  "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                  strlen(form), form);
    out = exchange(fx, creq, (size_t)cl);
    assert_has(out, "HTTP/1.1 201 ");
    free(out);
    assert_int_equal(read_root_file(fx, "form.txt", got, sizeof got), 6);
    assert_memory_equal(got, "formed", 6);
    assert_no_temp_files(fx);

    /* What the upload refuses at its start is still refused: a missing directory (409). */
    out = put_body(fx, "/no/such/dir.txt", "abc", 3);
    assert_has(out, "HTTP/1.1 409 ");
    free(out);
    assert_no_temp_files(fx);
}

/* An authenticated upload may have a lower limit than max_body, which bounded the route: the
 * declined body is held to the upload's own (413, nothing written), as without the route. */
static void test_declined_body_keeps_the_upload_limit(void **state)
{
    fixture *fx = *state;
    seen s = {0};
    restart_with_declining_route_auth(fx, 0, &s, 8);
    const char *req = "PUT /big.txt HTTP/1.1\r\nHost: t\r\nAuthorization: Basic dTpw\r\n"
                      "Content-Length: 9\r\nConnection: close\r\n\r\n123456789";
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 413 ");
    free(out);
    assert_int_equal(s.calls, 1); /* the route saw it: max_body allows 9 */
    assert_int_equal(s.body_len, 9);
    char got[16];
    assert_int_equal(read_root_file(fx, "big.txt", got, sizeof got), -1);
    assert_no_temp_files(fx);
    req = "PUT /fits.txt HTTP/1.1\r\nHost: t\r\nAuthorization: Basic dTpw\r\n"
          "Content-Length: 8\r\nConnection: close\r\n\r\n12345678";
    out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 201 ");
    free(out);
    assert_int_equal(read_root_file(fx, "fits.txt", got, sizeof got), 8);
    assert_memory_equal(got, "12345678", 8);
    /* Without credentials the upload is refused whatever the route did. */
    out = put_body(fx, "/anon.txt", "x", 1);
    assert_has(out, "HTTP/1.1 401 ");
    free(out);
    assert_int_equal(read_root_file(fx, "anon.txt", got, sizeof got), -1);
}

static void test_declined_body_goes_to_the_echo(void **state)
{
    fixture *fx = *state;
    seen s = {0};
    restart_with_declining_route(fx, 1, &s);
    const char *req = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                      "Connection: close\r\n\r\nhello";
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 200 OK\r\n");
    assert_has(out, "request-line POST /x HTTP/1.1\n");
    assert_has(out, "body 5 bytes text\n\nhello");
    free(out);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.body_len, 5);
    /* No body at all: the echo still answers (not the static handler). */
    req = GET("/static.txt", "");
    out = exchange(fx, req, strlen(req));
    assert_has(out, "request-line GET /static.txt HTTP/1.1\n");
    assert_has(out, "body 0 bytes text\n");
    free(out);
    /* Chunked, and one byte. */
    req = "PUT /y HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
          "Connection: close\r\n\r\n1\r\nZ\r\n0\r\n\r\n";
    out = exchange(fx, req, strlen(req));
    assert_has(out, "body 1 bytes text\n\nZ");
    free(out);
    assert_int_equal(s.calls, 3);
}

/* ---- HTTP/2 (h2c with prior knowledge), frames built by hand --------------------------------- */

static size_t h2_frame(unsigned char *f, unsigned type, unsigned flags, unsigned stream,
                       const void *payload, size_t len)
{
    f[0] = (unsigned char)(len >> 16);
    f[1] = (unsigned char)(len >> 8);
    f[2] = (unsigned char)len;
    f[3] = (unsigned char)type;
    f[4] = (unsigned char)flags;
    f[5] = (unsigned char)(stream >> 24);
    f[6] = (unsigned char)(stream >> 16);
    f[7] = (unsigned char)(stream >> 8);
    f[8] = (unsigned char)stream;
    if (len)
        memcpy(f + 9, payload, len);
    return 9 + len;
}

/* HPACK (RFC 7541 section 6.2.2): a literal field without indexing, with a new name. */
static size_t hpack_literal(unsigned char *out, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    out[0] = 0;
    out[1] = (unsigned char)nl;
    memcpy(out + 2, name, nl);
    out[2 + nl] = (unsigned char)vl;
    memcpy(out + 3 + nl, value, vl);
    return 3 + nl + vl;
}

/* The HEADERS frame of a PUT of path on stream (END_STREAM when it has no body). */
static size_t h2_put_headers(unsigned char *f, unsigned stream, const char *path, int no_body)
{
    unsigned char block[256];
    size_t n = hpack_literal(block, ":method", "PUT");
    n += hpack_literal(block + n, ":scheme", "http");
    n += hpack_literal(block + n, ":path", path);
    n += hpack_literal(block + n, ":authority", "t");
    return h2_frame(f, 1, 0x4 | (no_body ? 0x1 : 0), stream, block, n);
}

/* Over HTTP/2 a declined body goes to the upload too, and stays in its own stream: two PUTs
 * on one connection, the first with a body, the second without. */
static void test_declined_body_over_http2(void **state)
{
    fixture *fx = *state;
    seen s = {0};
    restart_with_declining_route(fx, 0, &s);
    unsigned char req[1024];
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t n = sizeof preface - 1;
    memcpy(req, preface, n);
    n += h2_frame(req + n, 4, 0, 0, NULL, 0); /* SETTINGS, none changed */
    n += h2_put_headers(req + n, 1, "/h2a.txt", 0);
    n += h2_frame(req + n, 0, 0x1, 1, "secret", 6); /* DATA, END_STREAM */
    n += h2_put_headers(req + n, 3, "/h2b.txt", 1);
    int fd = client(fx);
    assert_int_equal(send(fd, req, n, MSG_NOSIGNAL), (ssize_t)n);
    char got[16];
    for (int i = 0; i < 500 && (read_root_file(fx, "h2a.txt", got, sizeof got) < 0 ||
                                read_root_file(fx, "h2b.txt", got, sizeof got) < 0); i++) {
        char sink[4096];
        while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
            ;
        nk_loop_run(fx->loop, NK_RUN_ONCE);
    }
    close(fd);
    assert_int_equal(s.calls, 2);
    assert_int_equal(read_root_file(fx, "h2a.txt", got, sizeof got), 6);
    assert_memory_equal(got, "secret", 6);
    assert_int_equal(read_root_file(fx, "h2b.txt", got, sizeof got), 0);
    for (int i = 0; i < 5; i++)
        nk_loop_run(fx->loop, NK_RUN_NOWAIT); /* the close is seen */
    assert_no_temp_files(fx);
}

/* What the docs promise a streamed-body route: NK_HTTPD_NEXT before reading goes on as if
 * the route were not there (test_catch_all_route_falls_through_to_every_builtin); after
 * nk_httpd_ex_body_read it is too late: answered 500, the body not read (so no upload has
 * it), the connection closed (what follows is not answered), and on_data gets the one last
 * call that reading began owes it (end -ECANCELED, ex no longer alive), so arg is freed. */
static void test_streamed_route_declining_after_it_began_reading(void **state)
{
    fixture *fx = *state;
    seen s = {0};
    restart_with_declining_route(fx, 0, &s);
    const char *req = "PUT /read-then-next HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n"
                      "hello" GET("/static.txt", "");
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "HTTP/1.1 500 ");
    assert_has(out, "Connection: close\r\n");
    assert_null(strstr(out, "static file body"));
    free(out);
    char got[16];
    assert_int_equal(read_root_file(fx, "read-then-next", got, sizeof got), -1);
    assert_no_temp_files(fx);
    assert_int_equal(s.calls, 0); /* the catch-all behind it never saw the request */
    assert_int_equal(read_told.calls, 1);
    assert_int_equal(read_told.end, -ECANCELED);
    assert_int_equal(read_told.alive, 0);
    /* The engine goes on serving other connections. */
    out = put_body(fx, "/after.txt", "ok", 2);
    assert_has(out, "HTTP/1.1 201 ");
    free(out);
}

/* A client that sends a whole request and leaves at once: the answer's write fails and the
 * connection closes under the body's end (echo's, after the route declined): nothing may
 * touch the connection after (ASan). The engine goes on serving. */
static void test_client_gone_before_a_declined_body_is_answered(void **state)
{
    fixture *fx = *state;
    seen s = {0};
    restart_with_declining_route(fx, 1, &s);
    for (int round = 0; round < 2; round++) {
        /* round 0: with a body (the route's, then echo's end); 1: without (echo's alone) */
        const char *req = round == 0 ? "POST /gone HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                                       "\r\nbody"
                                     : "POST /gone HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
        int fd = client(fx);
        assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
        close(fd);
        for (int i = 0; i < 10; i++)
            nk_loop_run(fx->loop, NK_RUN_NOWAIT);
        assert_int_equal(s.calls, round + 1);
    }
    const char *req = GET("/x", "");
    char *out = exchange(fx, req, strlen(req));
    assert_has(out, "request-line GET /x HTTP/1.1\n");
    free(out);
}

/* Read from fd, running the loop, until want occurs count times in what arrived (or the
 * server closes): what arrived, NUL-terminated (to be freed). */
static char *read_until(fixture *fx, int fd, const char *want, int count)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    for (int i = 0; i < 500; i++) {
        ssize_t n;
        while ((n = recv(fd, out + len, cap - len - 1, MSG_DONTWAIT)) > 0)
            len += (size_t)n;
        out[len] = '\0';
        int found = 0;
        for (const char *p = out; (p = strstr(p, want)) != NULL; p++)
            found++;
        if (found >= count || n == 0)
            break;
        nk_loop_run(fx->loop, NK_RUN_ONCE);
    }
    return out;
}

/* An attacker's view: the body a declining route received is replayed into its own request
 * only, never into the next request on the same connection (pipelined right after it) nor
 * into another connection's. */
static void test_declined_body_stays_in_its_request(void **state)
{
    fixture *fx = *state;
    seen s = {0};
    restart_with_declining_route(fx, 0, &s);
    char got[64];
    const char *req = "PUT /p.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nsecret"
                      "PUT /q.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
                      "POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
                      "GET /len HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char *out = exchange(fx, req, strlen(req));
    const char *first = strstr(out, "HTTP/1.1 201 ");
    assert_non_null(first);
    assert_non_null(strstr(first + 1, "HTTP/1.1 201 "));
    assert_null(strstr(out, "secret"));
    /* Both later requests to the body-length route see no body. */
    const char *l1 = strstr(out, "len 0\n");
    assert_non_null(l1);
    assert_non_null(strstr(l1 + 1, "len 0\n"));
    free(out);
    assert_int_equal(read_root_file(fx, "p.txt", got, sizeof got), 6);
    assert_memory_equal(got, "secret", 6);
    assert_int_equal(read_root_file(fx, "q.txt", got, sizeof got), 0);

    /* A route that answers keeps no body for the next request either. */
    req = "POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nsecret"
          "GET /len HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    out = exchange(fx, req, strlen(req));
    l1 = strstr(out, "len 6\n");
    assert_non_null(l1);
    assert_has(l1, "len 0\n");
    free(out);

    /* Two connections interleaved: A's body half sent, B's whole request, then A's rest. */
    int a = client(fx), b = client(fx);
    const char *a1 = "PUT /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n"
                     "Connection: close\r\n\r\nAAAA";
    const char *b1 = "PUT /b.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n";
    assert_int_equal(send(a, a1, strlen(a1), MSG_NOSIGNAL), (ssize_t)strlen(a1));
    for (int i = 0; i < 5; i++)
        nk_loop_run(fx->loop, NK_RUN_ONCE);
    assert_int_equal(send(b, b1, strlen(b1), MSG_NOSIGNAL), (ssize_t)strlen(b1));
    out = read_until(fx, b, "HTTP/1.1 201 ", 1);
    assert_has(out, "HTTP/1.1 201 ");
    free(out);
    assert_int_equal(read_root_file(fx, "b.txt", got, sizeof got), 0);
    assert_int_equal(send(a, "aaaa", 4, MSG_NOSIGNAL), 4);
    out = read_until(fx, a, "HTTP/1.1 201 ", 1);
    assert_has(out, "HTTP/1.1 201 ");
    free(out);
    close(a);
    close(b);
    assert_int_equal(read_root_file(fx, "a.txt", got, sizeof got), 8);
    assert_memory_equal(got, "AAAAaaaa", 8);
    assert_int_equal(read_root_file(fx, "b.txt", got, sizeof got), 0);
    assert_no_temp_files(fx);
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
        cmocka_unit_test_setup_teardown(test_declined_body_goes_to_the_upload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declined_body_keeps_the_upload_limit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_declined_body_goes_to_the_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declined_body_stays_in_its_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declined_body_over_http2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_before_a_declined_body_is_answered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_streamed_route_declining_after_it_began_reading,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
