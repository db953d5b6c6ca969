/* A TCP echo server on libuv, for bench/echo.sh.
 *
 *   echo_libuv PORT      (0 picks a free port; prints "listening on tcp://127.0.0.1:PORT")
 *
 * libuv is completion-based: uv_read_start hands us what was read, into a buffer we lend it.
 * Every connection reads into one shared 64 KiB buffer (the same read size as the other
 * servers; the data is consumed before the read callback returns). The echo goes out with
 * uv_try_write, which writes at once like the other servers do; only when the socket cannot
 * take all of it is the rest copied into a uv_write request, and reading stops until that
 * request completes, so a slow reader pushes back on its sender. TCP_NODELAY on every accepted
 * socket. SIGTERM/SIGINT stop the loop; every handle is closed and we exit 0.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#define READ_MAX (64 * 1024) /* one read, the same for every server in the benchmark */

typedef struct {
    uv_write_t req;
    char data[]; /* the part of an echo the socket did not take at once */
} wreq;

static char rbuf[READ_MAX];

static void on_close(uv_handle_t *h)
{
    free(h->data); /* connections only; the server's own handles have data NULL */
}

static void conn_close(uv_stream_t *s)
{
    if (!uv_is_closing((uv_handle_t *)s))
        uv_close((uv_handle_t *)s, on_close);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
    uv_stream_t *s = req->handle;
    free(req);
    if (status < 0)
        conn_close(s);
    else if (!uv_is_closing((uv_handle_t *)s))
        uv_read_start(s, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    if (nread == 0) /* EAGAIN */
        return;
    if (nread < 0) { /* UV_EOF or an error */
        conn_close(s);
        return;
    }
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
    int n = uv_try_write(s, &out, 1);
    if (n == nread)
        return;
    if (n < 0 && n != UV_EAGAIN) {
        conn_close(s);
        return;
    }
    if (n < 0)
        n = 0;
    size_t rest = (size_t)nread - (size_t)n;
    wreq *w = malloc(sizeof *w + rest);
    if (!w) {
        conn_close(s);
        return;
    }
    memcpy(w->data, buf->base + n, rest);
    out = uv_buf_init(w->data, (unsigned)rest);
    if (uv_write(&w->req, s, &out, 1, on_write) < 0) {
        free(w);
        conn_close(s);
        return;
    }
    uv_read_stop(s);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof *c);
    if (!c || uv_tcp_init(server->loop, c) < 0) {
        free(c);
        return;
    }
    c->data = c;
    if (uv_accept(server, (uv_stream_t *)c) < 0) {
        conn_close((uv_stream_t *)c);
        return;
    }
    uv_tcp_nodelay(c, 1);
    if (uv_read_start((uv_stream_t *)c, on_alloc, on_read) < 0)
        conn_close((uv_stream_t *)c);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    uv_stop(h->loop);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, on_close);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    uv_signal_t sterm, sint;
    struct sockaddr_in sa;
    int salen = sizeof sa;
    int rc;
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &sa);
    if ((rc = uv_tcp_init(loop, &server)) < 0 ||
        (rc = uv_tcp_bind(&server, (struct sockaddr *)&sa, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&server, SOMAXCONN, on_connection)) < 0 ||
        (rc = uv_tcp_getsockname(&server, (struct sockaddr *)&sa, &salen)) < 0 ||
        (rc = uv_signal_init(loop, &sterm)) < 0 || (rc = uv_signal_init(loop, &sint)) < 0 ||
        (rc = uv_signal_start(&sterm, on_signal, SIGTERM)) < 0 ||
        (rc = uv_signal_start(&sint, on_signal, SIGINT)) < 0) {
        fprintf(stderr, "echo_libuv: %s\n", uv_strerror(rc));
        return 1;
    }
    server.data = sterm.data = sint.data = NULL;
    fprintf(stderr, "listening on tcp://127.0.0.1:%d\n", ntohs(sa.sin_port));
    uv_run(loop, UV_RUN_DEFAULT);
    uv_walk(loop, close_any, NULL);
    uv_run(loop, UV_RUN_DEFAULT); /* runs the close callbacks */
    return uv_loop_close(loop) == 0 ? 0 : 1;
}
