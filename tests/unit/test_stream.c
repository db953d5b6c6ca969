/* Buffered streams over socketpairs, on every loop backend: partial writes, water marks, framing
 * both ways split at every byte, size limits, half-close, close from inside callbacks, idle
 * timeouts, groups. Each test body runs once per compiled-in backend. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <netkit/stream.h>

/* ---- fixture ---------------------------------------------------------------------------- */

enum { LOG_HIGH = 11, LOG_LOW = 12, LOG_READ = 20, LOG_MAX = 256 };

struct rec {
    nk_stream *s;
    nk_buf in;           /* raw: bytes received; framed: messages, each followed by '|' */
    int msgs;            /* on_read calls */
    int log[LOG_MAX];    /* events (NK_STREAM_*), water marks (LOG_HIGH/LOW), reads if asked */
    int errs[LOG_MAX];   /* err of each logged event */
    int n;
    int log_reads;
    int echo;            /* write back what is read (raw) */
    int want_msgs;       /* has_msgs: wait for this many on_read calls */
    int close_on_read;   /* close after this many on_read calls */
    struct rec *victim;  /* close this other stream from on_read */
    int close_on_event;  /* close on this event */
    int close_on_water;  /* close on this mark */
    int shutdown_on_eof;
    uint64_t timeout_at; /* loop time of NK_STREAM_TIMEOUT */
    nk_loop *loop;
};

static void logit(struct rec *r, int what, int err)
{
    if (r->n < LOG_MAX) {
        r->errs[r->n] = err;
        r->log[r->n++] = what;
    }
}

static int count(const struct rec *r, int what)
{
    int c = 0;
    for (int i = 0; i < r->n; i++)
        c += r->log[i] == what;
    return c;
}

static void on_read(nk_stream *s, const char *data, size_t len, void *arg)
{
    struct rec *r = arg;
    assert_ptr_equal(s, r->s);
    r->msgs++;
    if (r->log_reads)
        logit(r, LOG_READ, 0);
    assert_int_equal(nk_buf_append(&r->in, data, len), 0);
    if (r->echo)
        assert_int_equal(nk_stream_write(s, data, len), 0);
    if (r->close_on_read && r->msgs == r->close_on_read) {
        nk_stream_close(s);
        r->s = NULL;
    }
    if (r->victim && r->victim->s) {
        nk_stream_close(r->victim->s);
        r->victim->s = NULL;
    }
}

static void on_msg(nk_stream *s, const char *data, size_t len, void *arg)
{
    struct rec *r = arg;
    on_read(s, data, len, arg);
    assert_int_equal(nk_buf_append(&r->in, "|", 1), 0);
}

static void on_event(nk_stream *s, int event, int err, void *arg)
{
    struct rec *r = arg;
    assert_ptr_equal(s, r->s);
    logit(r, event, err);
    if (event == NK_STREAM_TIMEOUT)
        r->timeout_at = nk_loop_now(r->loop);
    if (event == NK_STREAM_EOF && r->shutdown_on_eof)
        assert_int_equal(nk_stream_shutdown(s), 0);
    if (event == r->close_on_event) {
        nk_stream_close(s);
        r->s = NULL;
    }
}

static void on_water(nk_stream *s, int mark, void *arg)
{
    struct rec *r = arg;
    assert_ptr_equal(s, r->s);
    logit(r, mark == NK_STREAM_HIGH ? LOG_HIGH : LOG_LOW, 0);
    if (mark == r->close_on_water) {
        nk_stream_close(s);
        r->s = NULL;
    }
}

static nk_stream_config config(struct rec *r, int frame)
{
    nk_stream_config c;
    nk_stream_config_init(&c);
    c.on_read = frame ? on_msg : on_read;
    c.on_event = on_event;
    c.on_water = on_water;
    c.arg = r;
    c.frame = frame;
    return c;
}

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK), 0);
}

static void small_sndbuf(int fd)
{
    int v = 4096;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v), 0);
}

/* A stream on sv[0] (owned by the stream from here), the test plays the peer on sv[1]. */
static void open_stream(nk_loop *loop, struct rec *r, const nk_stream_config *c, int sv[2])
{
    memset(r, 0, sizeof *r);
    nk_buf_init(&r->in, 0);
    r->loop = loop;
    make_pair(sv);
    assert_int_equal(nk_stream_new(loop, sv[0], c, &r->s), 0);
    assert_non_null(r->s);
}

static void close_rec(struct rec *r, int peer)
{
    nk_stream_close(r->s);
    r->s = NULL;
    nk_buf_free(&r->in);
    if (peer >= 0)
        close(peer);
}

static void guard_cb(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    (void)t;
}

/* One loop iteration that waits at most 20 ms. */
static void step(nk_loop *loop)
{
    nk_timer guard;
    nk_timer_init(&guard, guard_cb, NULL);
    assert_int_equal(nk_timer_start(loop, &guard, 20, 0), 0);
    assert_int_equal(nk_loop_run(loop, NK_RUN_ONCE), 0);
    nk_timer_stop(loop, &guard);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop until done(arg) holds; fails the test after ms. */
static void run_until(nk_loop *loop, int (*done)(void *), void *arg, int ms)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    while (!done(arg)) {
        assert_true(now_ms() < deadline);
        step(loop);
    }
}

/* Read at most max bytes the peer end has into b; returns 0 at EOF, 1 otherwise. */
static int peer_read_some(int fd, nk_buf *b, size_t max)
{
    while (max > 0) {
        size_t want = max < 65536 ? max : 65536;
        assert_int_equal(nk_buf_reserve(b, want), 0);
        ssize_t n = read(fd, nk_buf_wptr(b), want);
        if (n > 0) {
            nk_buf_commit(b, (size_t)n);
            max -= (size_t)n;
            continue;
        }
        if (n == 0)
            return 0;
        assert_true(errno == EAGAIN);
        return 1;
    }
    return 1;
}

/* Read everything the peer end has into b; returns 0 at EOF, 1 otherwise. */
static int peer_drain(int fd, nk_buf *b) { return peer_read_some(fd, b, SIZE_MAX); }

static void pattern(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(i * 7 + i / 251);
}

static void each_backend(void (*body)(nk_loop *loop))
{
    for (const char *const *b = nk_loop_backends(); *b; b++) {
        nk_loop *loop = NULL;
        assert_int_equal(nk_loop_new(*b, &loop), 0);
        body(loop);
        assert_int_equal(nk_loop_active(loop), 0); /* everything the stream started is gone */
        assert_int_equal(nk_loop_free(loop), 0);
    }
}

#define BACKEND_TEST(name)                                                                     \
    static void name##_body(nk_loop *loop);                                                    \
    static void name(void **state)                                                             \
    {                                                                                          \
        (void)state;                                                                           \
        alarm(60);                                                                             \
        each_backend(name##_body);                                                             \
        alarm(0);                                                                              \
    }                                                                                          \
    static void name##_body(nk_loop *loop)

/* ---- writing ---------------------------------------------------------------------------- */

struct peer_read {
    int fd;
    nk_buf got;
    size_t want;
    int eof;
};

static int peer_has_all(void *arg)
{
    struct peer_read *p = arg;
    if (!p->eof && !peer_drain(p->fd, &p->got))
        p->eof = 1;
    return nk_buf_len(&p->got) >= p->want;
}

static int peer_at_eof(void *arg)
{
    struct peer_read *p = arg;
    if (!p->eof && !peer_drain(p->fd, &p->got))
        p->eof = 1;
    return p->eof;
}

BACKEND_TEST(test_partial_writes_are_queued_in_order)
{
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, 0);
    c.high_water = SIZE_MAX; /* this test is about the queue, not the marks */
    open_stream(loop, &r, &c, sv);
    small_sndbuf(sv[0]);
    size_t total = 1 << 20;
    char *data = malloc(total);
    pattern(data, total);
    /* Uneven pieces: the socket takes part of the first, the rest queues behind it. */
    size_t off = 0, piece = 1;
    while (off < total) {
        size_t n = piece < total - off ? piece : total - off;
        assert_int_equal(nk_stream_write(r.s, data + off, n), 0);
        off += n;
        piece = piece * 3 + 1;
    }
    assert_true(nk_stream_queued(r.s) > 0);
    assert_true(nk_stream_queued(r.s) < total);
    struct peer_read p = {.fd = sv[1], .want = total};
    nk_buf_init(&p.got, 0);
    run_until(loop, peer_has_all, &p, 10000);
    assert_int_equal(nk_buf_len(&p.got), total);
    assert_memory_equal(nk_buf_rptr(&p.got), data, total);
    assert_int_equal(nk_stream_queued(r.s), 0);
    assert_int_equal(r.n, 0); /* no event: nothing went wrong, no marks configured */
    nk_buf_free(&p.got);
    free(data);
    close_rec(&r, sv[1]);
}

BACKEND_TEST(test_queue_max_refuses_whole_writes)
{
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, NK_FRAME_LEN32);
    c.queue_max = 10000;
    c.high_water = SIZE_MAX;
    open_stream(loop, &r, &c, sv);
    small_sndbuf(sv[0]);
    char msg[3000];
    pattern(msg, sizeof msg);
    int accepted = 0, rc = 0;
    for (int i = 0; i < 1000 && (rc = nk_stream_write_msg(r.s, msg, sizeof msg)) == 0; i++)
        accepted++;
    assert_int_equal(rc, -ENOBUFS);
    assert_true(nk_stream_queued(r.s) <= 10000);
    assert_int_equal(nk_stream_write(r.s, msg, 10001), -ENOBUFS); /* bigger than the limit */
    /* Refused writes left nothing behind: the peer gets exactly the accepted frames. */
    struct peer_read p = {.fd = sv[1], .want = (size_t)accepted * (sizeof msg + 4)};
    nk_buf_init(&p.got, 0);
    run_until(loop, peer_has_all, &p, 5000);
    step(loop);
    peer_drain(sv[1], &p.got);
    assert_int_equal(nk_buf_len(&p.got), p.want);
    for (int i = 0; i < accepted; i++) {
        const unsigned char *f = (const unsigned char *)nk_buf_rptr(&p.got) + i * (sizeof msg + 4);
        assert_int_equal(f[0] << 24 | f[1] << 16 | f[2] << 8 | f[3], sizeof msg);
        assert_memory_equal(f + 4, msg, sizeof msg);
    }
    nk_buf_free(&p.got);
    close_rec(&r, sv[1]);
}

/* ---- water marks ------------------------------------------------------------------------ */

static int log_has_low(void *arg) { return count(arg, LOG_LOW) > 0; }
static int log_has_high(void *arg) { return count(arg, LOG_HIGH) > 0; }

BACKEND_TEST(test_water_marks_fire_in_order_and_pause_reading)
{
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, 0);
    c.high_water = 8192;
    c.low_water = 1024;
    open_stream(loop, &r, &c, sv);
    r.log_reads = 1;
    small_sndbuf(sv[0]);
    char big[64 * 1024];
    pattern(big, sizeof big);
    assert_int_equal(nk_stream_write(r.s, big, sizeof big), 0);
    assert_true(nk_stream_queued(r.s) > 8192);
    assert_int_equal(r.n, 0); /* never a callback from inside nk_stream_write */
    run_until(loop, log_has_high, &r, 2000);
    /* Above the mark the stream does not read: the peer's bytes wait in the socket. */
    assert_int_equal(write(sv[1], "ping", 4), 4);
    for (int i = 0; i < 5; i++)
        step(loop);
    assert_int_equal(r.msgs, 0);
    /* The peer reads: the queue drains to the low mark, then reading resumes. */
    struct peer_read p = {.fd = sv[1], .want = sizeof big};
    nk_buf_init(&p.got, 0);
    run_until(loop, peer_has_all, &p, 5000);
    run_until(loop, log_has_low, &r, 2000);
    for (int i = 0; i < 5 && r.msgs == 0; i++)
        step(loop);
    assert_int_equal(r.msgs, 1);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.log[0], LOG_HIGH);
    assert_int_equal(r.log[1], LOG_LOW);
    assert_int_equal(r.log[2], LOG_READ);
    assert_memory_equal(nk_buf_rptr(&r.in), "ping", 4);
    /* A second round: HIGH again, strictly alternating. */
    assert_int_equal(nk_stream_write(r.s, big, sizeof big), 0);
    nk_buf_clear(&p.got);
    run_until(loop, peer_has_all, &p, 5000);
    for (int i = 0; i < 5 && count(&r, LOG_LOW) < 2; i++)
        step(loop);
    assert_int_equal(r.n, 5);
    assert_int_equal(r.log[3], LOG_HIGH);
    assert_int_equal(r.log[4], LOG_LOW);
    nk_buf_free(&p.got);
    close_rec(&r, sv[1]);
}

BACKEND_TEST(test_echo_through_its_own_queue)
{
    /* The echo server's shape: write back from on_read; a peer sending far more than the
     * high-water mark gets everything back, in order. */
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, 0);
    c.high_water = 16384;
    open_stream(loop, &r, &c, sv);
    r.echo = 1;
    small_sndbuf(sv[0]);
    size_t total = 512 * 1024, sent = 0;
    char *data = malloc(total);
    pattern(data, total);
    nk_buf got;
    nk_buf_init(&got, 0);
    uint64_t deadline = now_ms() + 10000;
    while (nk_buf_len(&got) < total) {
        assert_true(now_ms() < deadline);
        if (sent < total) {
            ssize_t n = write(sv[1], data + sent, total - sent < 8192 ? total - sent : 8192);
            if (n > 0)
                sent += (size_t)n;
        }
        step(loop);
        /* A slow reader: less per iteration than the stream reads, so its queue grows. */
        assert_int_equal(peer_read_some(sv[1], &got, 4096), 1);
    }
    assert_memory_equal(nk_buf_rptr(&got), data, total);
    assert_true(count(&r, LOG_HIGH) >= 1); /* the peer outran the socket at least once */
    assert_int_equal(count(&r, LOG_HIGH) - count(&r, LOG_LOW), 0);
    nk_buf_free(&got);
    free(data);
    close_rec(&r, sv[1]);
}

/* ---- framing ---------------------------------------------------------------------------- */

static int has_msgs(void *arg)
{
    struct rec *r = arg;
    return r->msgs >= r->want_msgs;
}

/* The wire split in two at `cut` gives the expected messages, whatever the cut. */
static void check_split(nk_loop *loop, int frame, const char *wire, size_t wire_len,
                        const char *expect, int nmsgs, size_t cut)
{
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, frame);
    open_stream(loop, &r, &c, sv);
    r.want_msgs = nmsgs;
    if (cut) {
        assert_int_equal(write(sv[1], wire, cut), (ssize_t)cut);
        step(loop); /* the first piece is read on its own */
    }
    assert_int_equal(write(sv[1], wire + cut, wire_len - cut), (ssize_t)(wire_len - cut));
    run_until(loop, has_msgs, &r, 2000);
    assert_int_equal(r.msgs, nmsgs);
    assert_int_equal(nk_buf_len(&r.in), strlen(expect));
    assert_memory_equal(nk_buf_rptr(&r.in), expect, strlen(expect));
    assert_int_equal(r.n, 0);
    close_rec(&r, sv[1]);
}

BACKEND_TEST(test_line_messages_split_at_every_byte)
{
    static const char wire[] = "hello\r\n\nworld\nwith\rcr inside\r\n";
    static const char expect[] = "hello||world|with\rcr inside|";
    for (size_t cut = 0; cut <= sizeof wire - 1; cut++)
        check_split(loop, NK_FRAME_LINE, wire, sizeof wire - 1, expect, 4, cut);
}

BACKEND_TEST(test_len32_messages_split_at_every_byte)
{
    static const char wire[] = "\0\0\0\5hello\0\0\0\0\0\0\0\3a|b\0\0\0\1\n";
    static const char expect[] = "hello||a|b|\n|";
    for (size_t cut = 0; cut <= sizeof wire - 1; cut++)
        check_split(loop, NK_FRAME_LEN32, wire, sizeof wire - 1, expect, 4, cut);
}

BACKEND_TEST(test_messages_one_byte_at_a_time)
{
    static const char wire[] = "\0\0\0\3abc\0\0\0\2de";
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, NK_FRAME_LEN32);
    open_stream(loop, &r, &c, sv);
    for (size_t i = 0; i < sizeof wire - 1; i++) {
        assert_int_equal(write(sv[1], wire + i, 1), 1);
        step(loop);
    }
    assert_int_equal(r.msgs, 2);
    assert_memory_equal(nk_buf_rptr(&r.in), "abc|de|", 7);
    close_rec(&r, sv[1]);
}

BACKEND_TEST(test_framed_output)
{
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, NK_FRAME_LINE);
    c.msg_max = 10;
    open_stream(loop, &r, &c, sv);
    assert_int_equal(nk_stream_write_msg(r.s, "one", 3), 0);
    assert_int_equal(nk_stream_write_msg(r.s, "", 0), 0);
    assert_int_equal(nk_stream_write_msg(r.s, "a\nb", 3), -EINVAL);
    assert_int_equal(nk_stream_write_msg(r.s, "0123456789x", 11), -EMSGSIZE);
    assert_int_equal(nk_stream_write_msg(r.s, "0123456789", 10), 0);
    struct peer_read p = {.fd = sv[1], .want = 16};
    nk_buf_init(&p.got, 0);
    run_until(loop, peer_has_all, &p, 2000);
    assert_int_equal(nk_buf_len(&p.got), 16);
    assert_memory_equal(nk_buf_rptr(&p.got), "one\n\n0123456789\n", 16);
    close_rec(&r, sv[1]);

    c = config(&r, NK_FRAME_LEN32);
    c.msg_max = 4;
    open_stream(loop, &r, &c, sv);
    assert_int_equal(nk_stream_write_msg(r.s, "abcd", 4), 0);
    assert_int_equal(nk_stream_write_msg(r.s, "abcde", 5), -EMSGSIZE);
    assert_int_equal(nk_stream_write_msg(r.s, "", 0), 0);
    nk_buf_clear(&p.got);
    p.fd = sv[1];
    p.want = 12;
    run_until(loop, peer_has_all, &p, 2000);
    assert_int_equal(nk_buf_len(&p.got), 12);
    assert_memory_equal(nk_buf_rptr(&p.got), "\0\0\0\4abcd\0\0\0\0", 12);
    nk_buf_free(&p.got);
    close_rec(&r, sv[1]);

    c = config(&r, 0);
    open_stream(loop, &r, &c, sv);
    assert_int_equal(nk_stream_write_msg(r.s, "raw", 3), -EINVAL); /* no framing: no messages */
    close_rec(&r, sv[1]);
}

static int has_event(void *arg) { return ((struct rec *)arg)->n > 0; }

BACKEND_TEST(test_oversized_message_is_refused_after_the_good_ones)
{
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, NK_FRAME_LEN32);
    c.msg_max = 100;
    open_stream(loop, &r, &c, sv);
    /* A good message, then a header announcing 101 bytes: refused before any payload. */
    assert_int_equal(write(sv[1], "\0\0\0\2ok\0\0\0\145", 10), 10);
    run_until(loop, has_event, &r, 2000);
    assert_int_equal(r.msgs, 1);
    assert_memory_equal(nk_buf_rptr(&r.in), "ok|", 3);
    assert_int_equal(r.log[0], NK_STREAM_ERROR);
    assert_int_equal(r.errs[0], -EMSGSIZE);
    assert_int_equal(nk_stream_write_msg(r.s, "x", 1), -EMSGSIZE); /* failed for good */
    for (int i = 0; i < 3; i++)
        step(loop);
    assert_int_equal(r.n, 1); /* reported once */
    close_rec(&r, sv[1]);

    c = config(&r, NK_FRAME_LINE);
    c.msg_max = 5;
    open_stream(loop, &r, &c, sv);
    assert_int_equal(write(sv[1], "12345\r\n123456", 13), 13);
    run_until(loop, has_event, &r, 2000);
    assert_int_equal(r.msgs, 1);
    assert_int_equal(r.log[0], NK_STREAM_ERROR);
    assert_int_equal(r.errs[0], -EMSGSIZE);
    close_rec(&r, sv[1]);
}

BACKEND_TEST(test_eof_inside_a_message)
{
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, NK_FRAME_LINE);
    open_stream(loop, &r, &c, sv);
    assert_int_equal(write(sv[1], "whole\npart", 10), 10);
    assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
    run_until(loop, has_event, &r, 2000);
    assert_int_equal(r.msgs, 1);
    assert_int_equal(r.log[0], NK_STREAM_EOF);
    assert_int_equal(r.errs[0], -EBADMSG);
    close_rec(&r, sv[1]);
}

/* ---- half-close ------------------------------------------------------------------------- */

static int has_done(void *arg) { return count(arg, NK_STREAM_DONE) > 0; }

BACKEND_TEST(test_shutdown_after_the_queue_drains)
{
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, 0);
    c.high_water = SIZE_MAX;
    open_stream(loop, &r, &c, sv);
    small_sndbuf(sv[0]);
    size_t total = 300 * 1000;
    char *data = malloc(total);
    pattern(data, total);
    assert_int_equal(nk_stream_write(r.s, data, total), 0);
    assert_true(nk_stream_queued(r.s) > 0);
    assert_int_equal(nk_stream_shutdown(r.s), 0);
    assert_int_equal(nk_stream_write(r.s, "late", 4), -EPIPE);
    /* The peer reads every queued byte, then the end of the stream, in that order. */
    struct peer_read p = {.fd = sv[1]};
    nk_buf_init(&p.got, 0);
    run_until(loop, peer_at_eof, &p, 10000);
    assert_int_equal(nk_buf_len(&p.got), total);
    assert_memory_equal(nk_buf_rptr(&p.got), data, total);
    assert_int_equal(r.n, 0);
    /* Our side still reads: the peer answers, then ends too. */
    assert_int_equal(write(sv[1], "bye", 3), 3);
    assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
    run_until(loop, has_done, &r, 2000);
    assert_memory_equal(nk_buf_rptr(&r.in), "bye", 3);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.log[0], NK_STREAM_EOF);
    assert_int_equal(r.errs[0], 0);
    assert_int_equal(r.log[1], NK_STREAM_DONE);
    nk_buf_free(&p.got);
    free(data);
    close_rec(&r, sv[1]);
}

BACKEND_TEST(test_shutdown_from_the_eof_callback)
{
    /* The echo server's end: the peer finishes, we shut down from the EOF callback with
     * nothing queued, and DONE follows from the loop (not from inside nk_stream_shutdown). */
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, 0);
    open_stream(loop, &r, &c, sv);
    r.echo = 1;
    r.shutdown_on_eof = 1;
    r.close_on_event = NK_STREAM_DONE;
    assert_int_equal(write(sv[1], "abc", 3), 3);
    assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
    struct peer_read p = {.fd = sv[1]};
    nk_buf_init(&p.got, 0);
    run_until(loop, peer_at_eof, &p, 2000);
    assert_int_equal(nk_buf_len(&p.got), 3);
    assert_memory_equal(nk_buf_rptr(&p.got), "abc", 3);
    run_until(loop, has_done, &r, 2000);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.log[0], NK_STREAM_EOF);
    assert_int_equal(r.log[1], NK_STREAM_DONE);
    assert_null(r.s); /* closed from the DONE callback */
    nk_buf_free(&p.got);
    close_rec(&r, sv[1]);
}

/* ---- closing from callbacks (ASan checks the memory) ------------------------------------ */

BACKEND_TEST(test_close_inside_the_read_callback)
{
    struct rec r;
    int sv[2];
    /* Framed: three messages arrive in one read; the first callback closes the stream. */
    nk_stream_config c = config(&r, NK_FRAME_LINE);
    open_stream(loop, &r, &c, sv);
    r.close_on_read = 1;
    assert_int_equal(write(sv[1], "a\nb\nc\n", 6), 6);
    for (int i = 0; i < 5; i++)
        step(loop);
    assert_null(r.s);
    assert_int_equal(r.msgs, 1);
    assert_int_equal(r.n, 0);
    char x;
    assert_int_equal(read(sv[1], &x, 1), 0); /* the fd was closed */
    close_rec(&r, sv[1]);

    /* Raw, with an echo queued behind a full socket: closing drops the queue. */
    c = config(&r, 0);
    c.high_water = SIZE_MAX; /* keep reading while the queue is long */
    open_stream(loop, &r, &c, sv);
    small_sndbuf(sv[0]);
    char big[100000];
    pattern(big, sizeof big);
    assert_int_equal(nk_stream_write(r.s, big, sizeof big), 0);
    r.close_on_read = 1;
    assert_int_equal(write(sv[1], "z", 1), 1);
    for (int i = 0; i < 5 && r.s; i++)
        step(loop);
    assert_null(r.s);
    close_rec(&r, sv[1]);
}

BACKEND_TEST(test_close_inside_the_event_and_water_callbacks)
{
    struct rec r;
    int sv[2];
    /* EOF */
    nk_stream_config c = config(&r, 0);
    open_stream(loop, &r, &c, sv);
    r.close_on_event = NK_STREAM_EOF;
    close(sv[1]);
    run_until(loop, has_event, &r, 2000);
    assert_null(r.s);
    close_rec(&r, -1);

    /* ERROR from a write the peer can no longer take: -EPIPE from the call, then the event,
     * from the loop, where the callback closes. */
    open_stream(loop, &r, &c, sv);
    r.close_on_event = NK_STREAM_ERROR;
    close(sv[1]);
    assert_int_equal(nk_stream_write(r.s, "x", 1), -EPIPE);
    assert_int_equal(r.n, 0);
    run_until(loop, has_event, &r, 2000);
    assert_int_equal(r.log[0], NK_STREAM_ERROR);
    assert_int_equal(r.errs[0], -EPIPE);
    assert_null(r.s);
    close_rec(&r, -1);

    /* ERROR from a reset while reading: the peer closed with our bytes unread. */
    open_stream(loop, &r, &c, sv);
    r.close_on_event = NK_STREAM_ERROR;
    assert_int_equal(nk_stream_write(r.s, "unread", 6), 0);
    for (int i = 0; i < 2; i++)
        step(loop);
    close(sv[1]);
    run_until(loop, has_event, &r, 2000);
    assert_int_equal(r.log[0], NK_STREAM_ERROR);
    assert_int_equal(r.errs[0], -ECONNRESET);
    assert_null(r.s);
    close_rec(&r, -1);

    /* HIGH */
    c.high_water = 1000;
    open_stream(loop, &r, &c, sv);
    small_sndbuf(sv[0]);
    r.close_on_water = NK_STREAM_HIGH;
    char big[100000];
    pattern(big, sizeof big);
    assert_int_equal(nk_stream_write(r.s, big, sizeof big), 0);
    run_until(loop, has_event, &r, 2000);
    assert_int_equal(r.log[0], LOG_HIGH);
    assert_null(r.s);
    close_rec(&r, sv[1]);
}

BACKEND_TEST(test_close_from_another_streams_callback)
{
    /* A relay: the first stream's read callback writes to and closes the second, which has
     * events of its own pending in the same loop iteration. */
    struct rec a, b;
    int sa[2], sb[2];
    nk_stream_config ca = config(&a, 0), cb = config(&b, 0);
    open_stream(loop, &a, &ca, sa);
    open_stream(loop, &b, &cb, sb);
    assert_int_equal(write(sb[1], "to b", 4), 4);
    assert_int_equal(write(sa[1], "to a", 4), 4);
    /* Whichever is called first closes the other, whose callback must then never run. */
    a.victim = &b;
    b.victim = &a;
    for (int i = 0; i < 5 && a.s && b.s; i++)
        step(loop);
    for (int i = 0; i < 3; i++)
        step(loop);
    assert_int_equal(a.msgs + b.msgs, 1);
    assert_true(a.msgs ? b.s == NULL && a.s != NULL : a.s == NULL && b.s != NULL);
    close_rec(&a, sa[1]);
    close_rec(&b, sb[1]);
}

/* ---- idle timeout ----------------------------------------------------------------------- */

BACKEND_TEST(test_idle_timeout)
{
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, 0);
    c.idle_ms = 100;
    open_stream(loop, &r, &c, sv);
    nk_loop_update_time(loop);
    uint64_t start = nk_loop_now(loop);
    /* Activity every 40 ms for 300 ms keeps it alive. */
    uint64_t wrote = start;
    while (nk_loop_now(loop) - start < 300) {
        assert_int_equal(write(sv[1], "k", 1), 1);
        wrote = nk_loop_now(loop); /* the stream reads it at this loop time or later */
        while (nk_loop_now(loop) - wrote < 40)
            step(loop);
        assert_int_equal(r.n, 0);
    }
    r.close_on_event = NK_STREAM_TIMEOUT;
    run_until(loop, has_event, &r, 2000);
    assert_int_equal(r.log[0], NK_STREAM_TIMEOUT);
    assert_int_equal(r.errs[0], -ETIMEDOUT);
    assert_true(r.timeout_at - wrote >= 100);
    assert_true(r.timeout_at - wrote < 1000);
    assert_null(r.s);
    close_rec(&r, sv[1]);
}

/* ---- pause, groups, arguments ----------------------------------------------------------- */

BACKEND_TEST(test_read_enable_keeps_messages_for_later)
{
    struct rec r;
    int sv[2];
    nk_stream_config c = config(&r, NK_FRAME_LINE);
    open_stream(loop, &r, &c, sv);
    r.want_msgs = 3;
    nk_stream_read_enable(r.s, 0);
    assert_int_equal(write(sv[1], "1\n2\n3\n", 6), 6);
    for (int i = 0; i < 3; i++)
        step(loop);
    assert_int_equal(r.msgs, 0);
    nk_stream_read_enable(r.s, 1);
    run_until(loop, has_msgs, &r, 2000);
    assert_memory_equal(nk_buf_rptr(&r.in), "1|2|3|", 6);
    close_rec(&r, sv[1]);
}

BACKEND_TEST(test_group)
{
    nk_stream_group g = {0};
    struct rec r[3];
    int sv[3][2];
    nk_stream_config c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = config(&r[i], 0);
        c[i].group = &g;
        open_stream(loop, &r[i], &c[i], sv[i]);
        assert_ptr_equal(nk_stream_arg(r[i].s), &r[i]);
        assert_int_equal(nk_stream_fd(r[i].s), sv[i][0]);
    }
    assert_int_equal(g.count, 3);
    int seen = 0;
    for (nk_stream *s = g.first; s; s = nk_stream_next(s))
        seen++;
    assert_int_equal(seen, 3);
    nk_stream_close(r[1].s);
    assert_int_equal(g.count, 2);
    seen = 0;
    for (nk_stream *s = g.first; s; s = nk_stream_next(s))
        seen += s == r[0].s || s == r[2].s;
    assert_int_equal(seen, 2);
    nk_stream_group_close(&g);
    assert_int_equal(g.count, 0);
    assert_null(g.first);
    for (int i = 0; i < 3; i++) {
        nk_buf_free(&r[i].in);
        close(sv[i][1]);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    nk_loop *loop;
    assert_int_equal(nk_loop_new(NULL, &loop), 0);
    struct rec r;
    nk_stream_config c = config(&r, 0);
    nk_stream *s = (nk_stream *)&r;
    assert_int_equal(nk_stream_new(loop, -1, &c, &s), -EBADF);
    assert_null(s);
    c.on_read = NULL;
    assert_int_equal(nk_stream_new(loop, 0, &c, &s), -EINVAL);
    c = config(&r, 3);
    assert_int_equal(nk_stream_new(loop, 0, &c, &s), -EINVAL);
    c = config(&r, 0);
    c.high_water = 100;
    c.low_water = 100;
    assert_int_equal(nk_stream_new(loop, 0, &c, &s), -EINVAL);
    nk_stream_close(NULL);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_loop_free(loop);
}

/* The config's size (docs/library.md, "Config structs"): a caller compiled before a field
 * existed leaves it at its default whatever its memory holds past its size; a struct never
 * initialised (size 0) and a newer one setting a field this library lacks are refused. */
static void test_config_size(void **state)
{
    (void)state;
    nk_loop *loop;
    assert_int_equal(nk_loop_new(NULL, &loop), 0);
    struct rec r;
    int sv[2];
    nk_stream_group g = {0};
    /* An older caller: its struct ends before group; the bytes after it are not its. */
    nk_stream_config c = config(&r, 0);
    c.group = &g;
    c.size = offsetof(nk_stream_config, group);
    open_stream(loop, &r, &c, sv);
    assert_int_equal(g.count, 0);
    close_rec(&r, sv[1]);
    c.size = sizeof c;
    open_stream(loop, &r, &c, sv);
    assert_int_equal(g.count, 1);
    close_rec(&r, sv[1]);
    assert_int_equal(g.count, 0);

    nk_stream *s = (nk_stream *)&r;
    make_pair(sv);
    c.size = 0;
    assert_int_equal(nk_stream_new(loop, sv[0], &c, &s), -EINVAL);
    assert_null(s);
    /* A newer caller: the library's struct followed by one more field. */
    struct {
        nk_stream_config known;
        uint64_t later;
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.known = config(&r, 0);
    newer.known.size = sizeof newer;
    newer.later = 1;
    assert_int_equal(nk_stream_new(loop, sv[0], &newer.known, &s), -E2BIG);
    newer.later = 0; /* unset, it asks for nothing this library lacks */
    assert_int_equal(nk_stream_new(loop, sv[0], &newer.known, &s), 0);
    assert_non_null(s);
    nk_stream_close(s); /* closed sv[0] */
    close(sv[1]);
    assert_int_equal(nk_loop_active(loop), 0);
    nk_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_writes_are_queued_in_order),
        cmocka_unit_test(test_queue_max_refuses_whole_writes),
        cmocka_unit_test(test_water_marks_fire_in_order_and_pause_reading),
        cmocka_unit_test(test_echo_through_its_own_queue),
        cmocka_unit_test(test_line_messages_split_at_every_byte),
        cmocka_unit_test(test_len32_messages_split_at_every_byte),
        cmocka_unit_test(test_messages_one_byte_at_a_time),
        cmocka_unit_test(test_framed_output),
        cmocka_unit_test(test_oversized_message_is_refused_after_the_good_ones),
        cmocka_unit_test(test_eof_inside_a_message),
        cmocka_unit_test(test_shutdown_after_the_queue_drains),
        cmocka_unit_test(test_shutdown_from_the_eof_callback),
        cmocka_unit_test(test_close_inside_the_read_callback),
        cmocka_unit_test(test_close_inside_the_event_and_water_callbacks),
        cmocka_unit_test(test_close_from_another_streams_callback),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_read_enable_keeps_messages_for_later),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_config_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
