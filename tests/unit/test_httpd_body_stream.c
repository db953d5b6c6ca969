/* Request bodies streamed to a route (NK_HTTPD_STREAM_BODY), through the public headers
 * only: a real engine on a loopback TCP socket, driven by the test's own loop, with clients
 * in the same thread writing as much as their socket takes between loop turns. */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "netkit/netkit.h"
#include "netkit/httpd.h"

#include "backend_skip.h"

#if defined(__SANITIZE_ADDRESS__)
/* The ASan runtime's (sanitizer/allocator_interface.h, which gcc does not always ship). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/* Heap bytes in use by the whole process (ASan keeps its own books). */
static size_t heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

#define MIB (1024u * 1024u)

/* What one upload's handler saw. */
typedef struct upload {
    uint64_t bytes, hash;
    unsigned pieces, ends, aborts, calls_after_end;
    int end_code;            /* the last call's end */
    int pause_each;          /* return LATER after every piece */
    int hold;                /* pause at the first piece, until the test resumes */
    uint64_t answer_after;   /* answer 200 once this many bytes arrived (0: at the end) */
    int fail_with;           /* a negative errno returned for the first piece (0: none) */
    size_t heap_peak;
    int alive_at_abort;
} upload;

typedef struct fixture {
    char dir[64];
    nk_loop *loop;
    nk_httpd *srv;
    int port;
    nk_timer tick;
    nk_timer resume;         /* resumes fx->paused */
    nk_timer start;          /* starts reading fx->waiting (a handler that said LATER first) */
    nk_httpd_ex *paused, *waiting;
    upload up;
    uint64_t max;            /* the limit handlers give nk_httpd_ex_body_read */
    int read_rc;             /* what nk_httpd_ex_body_read returned */
    size_t heap_base;
} fixture;

static void on_tick(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    (void)t;
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

/* ---- handlers ---------------------------------------------------------------------------------- */

static int answer(nk_httpd_ex *ex, fixture *fx)
{
    char body[96];
    int n = snprintf(body, sizeof body, "bytes=%llu hash=%016llx pieces=%u\n",
                     (unsigned long long)fx->up.bytes, (unsigned long long)fx->up.hash,
                     fx->up.pieces);
    return nk_httpd_respond(ex, 200, "text/plain", body, (size_t)n);
}

static int on_data(nk_httpd_ex *ex, const void *p, size_t n, int end, void *arg)
{
    fixture *fx = arg;
    upload *up = &fx->up;
    if (up->ends || up->aborts)
        up->calls_after_end++;
    size_t heap = heap_in_use();
    if (heap > up->heap_peak)
        up->heap_peak = heap;
    if (end < 0) {
        up->aborts++;
        up->end_code = end;
        up->alive_at_abort = nk_httpd_ex_alive(ex);
        /* ex is over: an answer is refused. */
        assert_int_equal(nk_httpd_respond(ex, 500, NULL, NULL, 0), -EINVAL);
        if (fx->paused == ex)
            fx->paused = NULL;
        return 0;
    }
    if (end) {
        assert_int_equal(n, 0);
        up->ends++;
        up->end_code = end;
        return answer(ex, fx);
    }
    assert_true(n > 0);
    if (up->fail_with)
        return up->fail_with;
    up->pieces++;
    up->bytes += n;
    up->hash = fnv1a(up->hash, p, n);
    if (up->answer_after && up->bytes >= up->answer_after) {
        assert_int_equal(answer(ex, fx), NK_HTTPD_DONE);
        return 0;
    }
    if (up->hold && up->pieces == 1) {
        fx->paused = ex;
        assert_int_equal(nk_httpd_ex_body_pause(ex), 0);
        return 0;
    }
    if (up->pause_each) {
        fx->paused = ex;
        nk_timer_start(fx->loop, &fx->resume, 1, 0);
        return NK_HTTPD_LATER;
    }
    return 0;
}

static void on_resume(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    fixture *fx = t->data;
    nk_httpd_ex *ex = fx->paused;
    fx->paused = NULL;
    if (ex)
        assert_int_equal(nk_httpd_ex_body_resume(ex), 0);
}

static int h_hash(nk_httpd_ex *ex, void *arg)
{
    fixture *fx = arg;
    assert_null(nk_httpd_ex_body(ex).p);
    fx->read_rc = nk_httpd_ex_body_read(ex, fx->max, on_data, fx);
    if (fx->read_rc == -EFBIG)
        return nk_httpd_respond(ex, 413, "text/plain", "too big\n", 8);
    assert_int_equal(fx->read_rc, 0);
    assert_int_equal(nk_httpd_ex_body_read(ex, 0, on_data, fx), -EINVAL); /* once */
    return NK_HTTPD_LATER;
}

static int h_refuse(nk_httpd_ex *ex, void *arg)
{
    (void)arg;
    return nk_httpd_respond(ex, 403, "text/plain", "no\n", 3); /* without reading */
}

static int h_next(nk_httpd_ex *ex, void *arg)
{
    (void)ex;
    (void)arg;
    return NK_HTTPD_NEXT;
}

static int h_later(nk_httpd_ex *ex, void *arg)
{
    fixture *fx = arg;
    fx->waiting = ex;
    nk_timer_start(fx->loop, &fx->start, 20, 0);
    return NK_HTTPD_LATER;
}

static void on_start(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    fixture *fx = t->data;
    nk_httpd_ex *ex = fx->waiting;
    fx->waiting = NULL;
    assert_int_equal(nk_httpd_ex_body_read(ex, UINT64_MAX, on_data, fx), 0);
}

/* ---- fixture ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    strcpy(fx->dir, "/tmp/nk-bodystream-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(nk_loop_new(NULL, &fx->loop), 0);
    nk_httpd_config cfg;
    nk_httpd_config_init(&cfg);
    cfg.root = fx->dir;
    cfg.access_log_fd = -1;
    cfg.max_body = 64 * 1024; /* routes that stream give their own limits */
    assert_int_equal(nk_httpd_new(fx->loop, &cfg, &fx->srv), 0);
    assert_int_equal(nk_httpd_route(fx->srv, NULL, "/hash", NK_HTTPD_STREAM_BODY, h_hash, fx), 0);
    assert_int_equal(nk_httpd_route(fx->srv, "POST", "/refuse", NK_HTTPD_STREAM_BODY, h_refuse,
                                    fx), 0);
    assert_int_equal(nk_httpd_route(fx->srv, NULL, "/next", NK_HTTPD_STREAM_BODY, h_next, fx), 0);
    assert_int_equal(nk_httpd_route(fx->srv, "PUT", "/later", NK_HTTPD_STREAM_BODY, h_later,
                                    fx), 0);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* Small kernel buffers (inherited by accepted sockets), so that a server that stops
     * reading stops the client soon. */
    int small = 64 * 1024;
    assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    fx->port = ntohs(sa.sin_port);
    assert_int_equal(listen(lfd, 16), 0);
    assert_int_equal(nk_httpd_listen(fx->srv, lfd), 0);
    nk_timer_init(&fx->tick, on_tick, fx);
    nk_timer_start(fx->loop, &fx->tick, 20, 20);
    nk_timer_init(&fx->resume, on_resume, fx);
    nk_timer_init(&fx->start, on_start, fx);
    fx->max = UINT64_MAX;
    fx->up.hash = FNV_INIT;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    nk_timer_stop(fx->loop, &fx->tick);
    nk_timer_stop(fx->loop, &fx->resume);
    nk_timer_stop(fx->loop, &fx->start);
    nk_httpd_free(fx->srv);
    assert_int_equal(nk_loop_free(fx->loop), 0);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* ---- a client that uploads as fast as the server takes it ------------------------------------- */

typedef struct client {
    int fd;
    char head[512];
    size_t head_len, head_sent;
    uint64_t size, made;     /* body bytes in all, made so far */
    int chunked;
    uint64_t hash;           /* of the body bytes made */
    unsigned char buf[65536 + 32]; /* framed bytes made but not yet sent */
    size_t pos, len;
    int body_done, trailer_sent;
    uint64_t sent;           /* body and framing bytes the socket took */
    char resp[8192];
    size_t resp_len;
    int eof, blocked;        /* the server closed; the last send found the socket full */
    int wait_continue;       /* the body waits for "100 Continue" */
} client;

static void client_open(fixture *fx, client *cl, const char *method, const char *extra,
                        uint64_t size, int chunked)
{
    memset(cl, 0, sizeof *cl);
    cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 64 * 1024;
    setsockopt(cl->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(cl->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char framing[64];
    if (chunked)
        snprintf(framing, sizeof framing, "Transfer-Encoding: chunked\r\n");
    else
        snprintf(framing, sizeof framing, "Content-Length: %llu\r\n", (unsigned long long)size);
    cl->head_len = (size_t)snprintf(cl->head, sizeof cl->head,
                                    "%s HTTP/1.1\r\nHost: t\r\n%s%s%s\r\n", method,
                                    strstr(extra, "Connection:") ? "" : "Connection: close\r\n",
                                    framing, extra);
    cl->size = size;
    cl->chunked = chunked;
    cl->hash = FNV_INIT;
}

/* The next framed piece of the body into cl->buf: bytes of a fixed pseudo-random sequence in
 * chunks of varying sizes. */
static void client_make(client *cl)
{
    uint64_t left = cl->size - cl->made;
    size_t n = (size_t)(left < 60000 ? left : 60000 - (cl->made % 7) * 1000);
    size_t off = 0;
    if (n == 0) {
        if (cl->chunked)
            off = (size_t)snprintf((char *)cl->buf, sizeof cl->buf, "0\r\n\r\n");
        cl->body_done = 1;
        cl->pos = 0;
        cl->len = off;
        return;
    }
    if (cl->chunked)
        off = (size_t)snprintf((char *)cl->buf, sizeof cl->buf, "%zx\r\n", n);
    for (size_t i = 0; i < n; i++) {
        uint64_t k = cl->made + i;
        cl->buf[off + i] = (unsigned char)((k * 2654435761u) >> 11 ^ k >> 8);
    }
    cl->hash = fnv1a(cl->hash, cl->buf + off, n);
    cl->made += n;
    off += n;
    if (cl->chunked) {
        memcpy(cl->buf + off, "\r\n", 2);
        off += 2;
    }
    cl->pos = 0;
    cl->len = off;
}

/* Send what the socket takes, read what came back, run the loop once. */
static void client_step(fixture *fx, client *cl)
{
    cl->blocked = 0;
    while (cl->fd >= 0 && !cl->eof) {
        ssize_t n;
        if (cl->head_sent < cl->head_len) {
            n = send(cl->fd, cl->head + cl->head_sent, cl->head_len - cl->head_sent,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                cl->head_sent += (size_t)n;
        } else if (cl->wait_continue && !strstr(cl->resp, " 100 Continue\r\n")) {
            break;
        } else {
            if (cl->pos == cl->len) {
                if (cl->body_done)
                    break;
                client_make(cl);
                if (cl->len == 0)
                    break;
            }
            n = send(cl->fd, cl->buf + cl->pos, cl->len - cl->pos, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                cl->pos += (size_t)n;
                cl->sent += (uint64_t)n;
            }
        }
        if (n < 0) {
            cl->blocked = errno == EAGAIN;
            break;
        }
    }
    while (cl->fd >= 0 && !cl->eof && cl->resp_len < sizeof cl->resp - 1) {
        ssize_t n = recv(cl->fd, cl->resp + cl->resp_len, sizeof cl->resp - 1 - cl->resp_len,
                         MSG_DONTWAIT);
        if (n > 0)
            cl->resp_len += (size_t)n;
        else {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                cl->eof = 1;
            break;
        }
    }
    cl->resp[cl->resp_len] = '\0';
    nk_loop_run(fx->loop, NK_RUN_ONCE);
}

/* Until the server closed, within a bound of loop turns. */
static void client_finish(fixture *fx, client *cl)
{
    for (int i = 0; i < 20000 && !cl->eof; i++)
        client_step(fx, cl);
    assert_true(cl->eof);
    close(cl->fd);
    cl->fd = -1;
}

static void assert_has(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected %s in:\n%s", needle, hay);
}

static void assert_hash_answer(const client *cl, const upload *up)
{
    char want[96];
    snprintf(want, sizeof want, "bytes=%llu hash=%016llx ", (unsigned long long)cl->size,
             (unsigned long long)cl->hash);
    assert_has(cl->resp, "HTTP/1.1 200 OK\r\n");
    assert_has(cl->resp, want);
    assert_int_equal(up->ends, 1);
    assert_int_equal(up->aborts, 0);
}

/* A 4 MiB chunked upload whose handler pauses at its first piece: returns once it did. */
static void start_held(fixture *fx, client *cl)
{
    fx->up.hold = 1;
    client_open(fx, cl, "POST /hash", "", 4 * MIB, 1);
    for (int i = 0; i < 2000 && !fx->paused; i++)
        client_step(fx, cl);
    assert_non_null(fx->paused);
}

/* Run the loop until the handler was told its body will not complete (bounded). */
static void run_until_told(fixture *fx)
{
    for (int i = 0; i < 500 && !fx->up.aborts; i++)
        nk_loop_run(fx->loop, NK_RUN_ONCE);
}

/* ---- tests ------------------------------------------------------------------------------------- */

static void test_10mib_chunked_upload_in_constant_memory(void **state)
{
    fixture *fx = *state;
    client cl;
    client_open(fx, &cl, "POST /hash", "", 10 * MIB, 1);
    size_t base = heap_in_use();
    fx->up.heap_peak = base;
    client_finish(fx, &cl);
    assert_hash_answer(&cl, &fx->up);
    assert_int_equal(fx->up.bytes, 10 * MIB);
    assert_true(fx->up.pieces > 100); /* pieces as they came, not one buffered body */
    /* The engine held the head and about one read at a time: far below the body's size. */
    size_t grew = fx->up.heap_peak - base;
    if (grew > 512 * 1024)
        fail_msg("heap grew by %zu bytes during a 10 MiB upload", grew);
    assert_int_equal(fx->up.calls_after_end, 0);
}

static void test_content_length_body_and_keep_alive(void **state)
{
    fixture *fx = *state;
    client cl;
    client_open(fx, &cl, "PUT /hash", "", 3 * MIB + 17, 0);
    client_finish(fx, &cl);
    assert_hash_answer(&cl, &fx->up);
    /* Two requests on one connection: the second is answered after the first's body. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char req[] = "POST /hash HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                       "GET /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    memset(&fx->up, 0, sizeof fx->up);
    fx->up.hash = FNV_INIT;
    char out[4096];
    size_t len = 0;
    for (int i = 0; i < 500; i++) {
        ssize_t n = recv(fd, out + len, sizeof out - 1 - len, MSG_DONTWAIT);
        if (n > 0)
            len += (size_t)n;
        else if (n == 0)
            break;
        nk_loop_run(fx->loop, NK_RUN_ONCE);
    }
    close(fd);
    out[len] = '\0';
    assert_has(out, "bytes=5 hash=");
    assert_has(out, "HTTP/1.1 404 "); /* /next fell through to the static files */
    assert_true(strstr(out, "bytes=5") < strstr(out, "HTTP/1.1 404 "));
}

static void test_pause_stops_reading_and_resume_goes_on(void **state)
{
    fixture *fx = *state;
    client cl;
    start_held(fx, &cl);
    /* Paused: no piece comes, and the client's socket fills up (the server reads nothing). */
    int blocked = 0;
    for (int i = 0; i < 300 && blocked < 20; i++) {
        client_step(fx, &cl);
        blocked = cl.blocked ? blocked + 1 : 0;
    }
    assert_int_equal(blocked, 20);
    assert_int_equal(fx->up.pieces, 1);
    assert_true(cl.sent < 4 * MIB);
    uint64_t sent_paused = cl.sent;
    for (int i = 0; i < 50; i++)
        client_step(fx, &cl);
    assert_true(cl.sent == sent_paused);
    /* Resumed: the rest, every byte once. */
    assert_int_equal(nk_httpd_ex_body_resume(fx->paused), 0);
    fx->paused = NULL;
    client_finish(fx, &cl);
    assert_hash_answer(&cl, &fx->up);
}

static void test_paused_after_every_piece(void **state)
{
    fixture *fx = *state;
    fx->up.pause_each = 1;
    client cl;
    client_open(fx, &cl, "POST /hash", "", 1 * MIB, 0);
    client_finish(fx, &cl);
    assert_hash_answer(&cl, &fx->up);
    assert_true(fx->up.pieces > 1);
}

static void test_content_length_over_the_limit_gets_413_before_the_body(void **state)
{
    fixture *fx = *state;
    fx->max = 1000;
    client cl;
    client_open(fx, &cl, "POST /hash", "Expect: 100-continue\r\n", 1001, 0);
    cl.wait_continue = 1;
    client_finish(fx, &cl);
    assert_int_equal(fx->read_rc, -EFBIG);
    assert_has(cl.resp, "HTTP/1.1 413 ");
    assert_null(strstr(cl.resp, "100 Continue"));
    assert_int_equal(fx->up.pieces, 0);
    /* Within the limit the client is told to go on. */
    memset(&fx->up, 0, sizeof fx->up);
    fx->up.hash = FNV_INIT;
    client_open(fx, &cl, "POST /hash", "Expect: 100-continue\r\n", 1000, 0);
    cl.wait_continue = 1;
    client_finish(fx, &cl);
    assert_has(cl.resp, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n");
    assert_hash_answer(&cl, &fx->up);
}

static void test_chunked_over_the_limit_is_cut_with_413(void **state)
{
    fixture *fx = *state;
    fx->max = 100 * 1024;
    client cl;
    client_open(fx, &cl, "POST /hash", "", 2 * MIB, 1);
    client_finish(fx, &cl);
    assert_has(cl.resp, "HTTP/1.1 413 ");
    assert_int_equal(fx->up.aborts, 1);
    assert_int_equal(fx->up.end_code, -EFBIG);
    assert_int_equal(fx->up.ends, 0);
    assert_true(fx->up.bytes <= 100 * 1024);
    assert_int_equal(fx->up.calls_after_end, 0);
}

static void test_default_limit_is_max_body(void **state)
{
    fixture *fx = *state;
    fx->max = 0; /* the engine's max_body: 64 KiB here */
    client cl;
    client_open(fx, &cl, "POST /hash", "", 64 * 1024 + 1, 0);
    client_finish(fx, &cl);
    assert_int_equal(fx->read_rc, -EFBIG);
    assert_has(cl.resp, "HTTP/1.1 413 ");
}

static void test_answer_mid_body_stops_reading(void **state)
{
    fixture *fx = *state;
    fx->up.answer_after = 200 * 1024;
    client cl;
    client_open(fx, &cl, "POST /hash", "Connection: keep-alive\r\n", 8 * MIB, 0);
    client_finish(fx, &cl);
    assert_has(cl.resp, "HTTP/1.1 200 OK\r\n");
    assert_has(cl.resp, "Connection: close\r\n"); /* it says so: the rest is not read */
    assert_int_equal(fx->up.ends, 0);
    assert_int_equal(fx->up.aborts, 0);
    assert_int_equal(fx->up.calls_after_end, 0);
    /* The rest was not read into the handler; the server closed within its linger bound. */
    assert_true(fx->up.bytes < 8 * MIB);
    assert_true(cl.sent < 8 * MIB);
    /* And it still serves. */
    memset(&fx->up, 0, sizeof fx->up);
    fx->up.hash = FNV_INIT;
    client_open(fx, &cl, "POST /hash", "", 1000, 0);
    client_finish(fx, &cl);
    assert_hash_answer(&cl, &fx->up);
}

/* Whatever errno a handler gives up with, the engine answers 500: none of them may be taken
 * for "answered" or "paused" (-EPERM and -ENOENT once were, leaving the client without an
 * answer). */
static void test_handler_error_mid_body_is_500(void **state)
{
    fixture *fx = *state;
    static const int errs[] = {-EPERM, -ENOENT, -EIO};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        memset(&fx->up, 0, sizeof fx->up);
        fx->up.hash = FNV_INIT;
        fx->up.fail_with = errs[i];
        client cl;
        client_open(fx, &cl, "PUT /hash", "", 64 * 1024, 0);
        client_finish(fx, &cl);
        assert_has(cl.resp, "HTTP/1.1 500 ");
        assert_int_equal(fx->up.pieces, 0);
        assert_int_equal(fx->up.aborts, 0); /* a handler that gave up gets no last call */
    }
}

static void test_answer_at_head_time_without_reading(void **state)
{
    fixture *fx = *state;
    client cl;
    client_open(fx, &cl, "POST /refuse", "Connection: keep-alive\r\n", 2 * MIB, 1);
    client_finish(fx, &cl);
    assert_has(cl.resp, "HTTP/1.1 403 ");
    assert_has(cl.resp, "Connection: close\r\n");
    assert_true(cl.sent < 2 * MIB);
}

static void test_client_gone_mid_body_is_told_once(void **state)
{
    fixture *fx = *state;
    client cl;
    client_open(fx, &cl, "POST /hash", "", 4 * MIB, 0);
    for (int i = 0; i < 2000 && fx->up.bytes < 256 * 1024; i++)
        client_step(fx, &cl);
    assert_true(fx->up.bytes >= 256 * 1024);
    close(cl.fd);
    run_until_told(fx);
    assert_int_equal(fx->up.aborts, 1);
    assert_int_equal(fx->up.end_code, -ECONNRESET);
    assert_int_equal(fx->up.alive_at_abort, 0);
    assert_int_equal(fx->up.ends, 0);
    for (int i = 0; i < 20; i++)
        nk_loop_run(fx->loop, NK_RUN_NOWAIT);
    assert_int_equal(fx->up.calls_after_end, 0);
}

static void test_client_gone_while_paused_is_told_on_resume(void **state)
{
    fixture *fx = *state;
    client cl;
    start_held(fx, &cl);
    close(cl.fd);
    for (int i = 0; i < 20; i++)
        nk_loop_run(fx->loop, NK_RUN_NOWAIT);
    assert_int_equal(fx->up.aborts, 0); /* not reading: not noticed yet */
    assert_int_equal(nk_httpd_ex_body_resume(fx->paused), 0);
    run_until_told(fx);
    assert_int_equal(fx->up.aborts, 1);
    assert_int_equal(fx->up.calls_after_end, 0);
}

static void test_reading_when_the_engine_is_freed(void **state)
{
    fixture *fx = *state;
    client cl;
    start_held(fx, &cl);
    nk_httpd_free(fx->srv);
    assert_int_equal(fx->up.aborts, 1); /* told, once, before the engine went */
    close(cl.fd);
    nk_httpd_config cfg;
    nk_httpd_config_init(&cfg);
    cfg.root = fx->dir;
    assert_int_equal(nk_httpd_new(fx->loop, &cfg, &fx->srv), 0); /* for teardown */
}

static void test_no_body_and_falling_through(void **state)
{
    fixture *fx = *state;
    client cl;
    client_open(fx, &cl, "GET /hash", "", 0, 0);
    client_finish(fx, &cl);
    assert_hash_answer(&cl, &fx->up);
    assert_has(cl.resp, "pieces=0\n");
    /* NEXT before reading: the built-ins answer (a POST of a static path: 405). */
    client_open(fx, &cl, "POST /next", "", 100 * 1024, 1);
    client_finish(fx, &cl);
    assert_has(cl.resp, "HTTP/1.1 405 ");
}

static void test_reading_begins_after_later(void **state)
{
    fixture *fx = *state;
    client cl;
    client_open(fx, &cl, "PUT /later", "", 2 * MIB, 1);
    client_finish(fx, &cl);
    assert_hash_answer(&cl, &fx->up);
}

static void test_flag_checks(void **state)
{
    fixture *fx = *state;
    assert_int_equal(nk_httpd_route(fx->srv, "GET", "/a", 0x100, h_next, NULL), -EINVAL);
    assert_int_equal(nk_httpd_ex_body_read(NULL, 0, on_data, NULL), -EINVAL);
    assert_int_equal(nk_httpd_ex_body_pause(NULL), -EINVAL);
    assert_int_equal(nk_httpd_ex_body_resume(NULL), -EINVAL);
}

int main(void)
{
    skip_suite_if_backend_refused();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_10mib_chunked_upload_in_constant_memory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_content_length_body_and_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_stops_reading_and_resume_goes_on, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_paused_after_every_piece, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_length_over_the_limit_gets_413_before_the_body,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_over_the_limit_is_cut_with_413, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_default_limit_is_max_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_mid_body_stops_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_error_mid_body_is_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_at_head_time_without_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_mid_body_is_told_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_while_paused_is_told_on_resume, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reading_when_the_engine_is_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_body_and_falling_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reading_begins_after_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag_checks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
