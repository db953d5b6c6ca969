/* Unit tests for the core module: nk_buf and the error table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netkit/buf.h>
#include <netkit/err.h>

/* Fill b with n readable bytes following a pattern that shows whether data moved intact. */
static void fill(nk_buf *b, size_t n, size_t start)
{
    for (size_t i = 0; i < n; i++) {
        char c = (char)('a' + (start + i) % 26);
        assert_int_equal(nk_buf_append(b, &c, 1), 0);
    }
}

static void check_pattern(const nk_buf *b, size_t start)
{
    for (size_t i = 0; i < nk_buf_len(b); i++)
        assert_int_equal(nk_buf_rptr(b)[i], (char)('a' + (start + i) % 26));
}

struct reserve_case {
    const char *why;
    size_t max;     /* buffer limit */
    size_t fill;    /* bytes appended first */
    size_t consume; /* bytes consumed after that */
    size_t n;       /* bytes to reserve */
    int rc;
    size_t cap;     /* expected capacity afterwards (0: don't care, just >= len + n) */
};

static const struct reserve_case reserve_cases[] = {
    {"an empty buffer allocates", 0, 0, 0, 10, 0, 0},
    {"exactly max is allowed", 100, 0, 0, 100, 0, 100},
    {"more than max is refused", 100, 0, 0, 101, -ENOBUFS, 0},
    {"compaction makes room without growing", 100, 100, 60, 50, 0, 100},
    {"compaction cannot help when readable + n > max", 100, 100, 10, 20, -ENOBUFS, 100},
    {"growth is geometric", 0, 64, 0, 1, 0, 128},
    {"growth stops at max", 100, 64, 0, 30, 0, 100},
    {"growth while a prefix is consumed keeps the bytes", 0, 64, 10, 64, 0, 128},
    {"zero bytes always succeed", 1, 1, 0, 0, 0, 1},
};

static void test_buf_reserve(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(reserve_cases) / sizeof(reserve_cases[0]); i++) {
        const struct reserve_case *c = &reserve_cases[i];
        print_message("reserve: %s\n", c->why);
        nk_buf b;
        nk_buf_init(&b, c->max);
        fill(&b, c->fill, 0);
        nk_buf_consume(&b, c->consume);
        size_t cap_before = b.cap;
        size_t len = nk_buf_len(&b);
        assert_int_equal(nk_buf_reserve(&b, c->n), c->rc);
        assert_int_equal(nk_buf_len(&b), len);
        check_pattern(&b, c->consume);
        if (c->rc == 0)
            assert_true(nk_buf_space(&b) >= c->n);
        else
            assert_int_equal(b.cap, cap_before);
        if (c->cap)
            assert_int_equal(b.cap, c->cap);
        if (c->max)
            assert_true(b.cap <= c->max);
        nk_buf_free(&b);
    }
}

static void test_buf_consume_release(void **state)
{
    (void)state;
    nk_buf b;
    nk_buf_init(&b, 0);
    assert_int_equal(nk_buf_append_str(&b, "hello world"), 0);
    nk_buf_consume(&b, 6);
    assert_int_equal(nk_buf_len(&b), 5);
    assert_memory_equal(nk_buf_rptr(&b), "world", 5);
    /* Releasing a buffer with readable bytes must keep them. */
    nk_buf_release(&b);
    assert_non_null(b.data);
    assert_memory_equal(nk_buf_rptr(&b), "world", 5);
    /* Consuming everything starts over at the front. */
    nk_buf_consume(&b, 5);
    assert_int_equal(b.rpos, 0);
    assert_int_equal(b.wpos, 0);
    nk_buf_release(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    /* Still usable after release. */
    assert_int_equal(nk_buf_append(&b, "x", 1), 0);
    assert_int_equal(nk_buf_len(&b), 1);
    /* Commit is clamped to the space that exists. */
    nk_buf_clear(&b);
    assert_int_equal(nk_buf_reserve(&b, 4), 0);
    nk_buf_commit(&b, b.cap + 100);
    assert_int_equal(nk_buf_len(&b), b.cap);
    nk_buf_free(&b);
}

static void test_buf_printf(void **state)
{
    (void)state;
    nk_buf b;
    nk_buf_init(&b, 0);
    assert_int_equal(nk_buf_printf(&b, "%d-%s", 42, "x"), 4);
    assert_int_equal(nk_buf_len(&b), 4);
    assert_memory_equal(nk_buf_rptr(&b), "42-x", 4);

    /* Longer than the current capacity: must grow and retry with the exact size. */
    char big[3000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    size_t cap = b.cap;
    assert_true(cap < sizeof(big));
    assert_int_equal(nk_buf_printf(&b, "[%s]", big), (int)sizeof(big) + 1);
    assert_int_equal(nk_buf_len(&b), 4 + sizeof(big) + 1);
    assert_memory_equal(nk_buf_rptr(&b), "42-x[zzz", 8);
    assert_int_equal(nk_buf_rptr(&b)[nk_buf_len(&b) - 1], ']');
    nk_buf_free(&b);

    /* Over max: refused, nothing committed. */
    nk_buf_init(&b, 8);
    assert_int_equal(nk_buf_printf(&b, "%s", "1234"), 4);
    assert_int_equal(nk_buf_printf(&b, "%s", "56789"), -ENOBUFS);
    assert_int_equal(nk_buf_len(&b), 4);
    /* Exactly filling max works although vsnprintf's NUL would not fit. */
    assert_int_equal(nk_buf_printf(&b, "%s", "5678"), 4);
    assert_int_equal(nk_buf_len(&b), 8);
    assert_memory_equal(nk_buf_rptr(&b), "12345678", 8);
    assert_int_equal(nk_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(nk_buf_printf(&b, "%s", "9"), -ENOBUFS);
    nk_buf_free(&b);
}

static void test_buf_append_max(void **state)
{
    (void)state;
    nk_buf b;
    nk_buf_init(&b, 16);
    assert_int_equal(nk_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(nk_buf_append(&b, "0123456789", 10), -ENOBUFS);
    assert_int_equal(nk_buf_len(&b), 10);
    nk_buf_consume(&b, 8);
    assert_int_equal(nk_buf_append(&b, "0123456789", 10), 0); /* compaction made room */
    assert_memory_equal(nk_buf_rptr(&b), "890123456789", 12);
    nk_buf_free(&b);
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void test_buf_read_fd_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    set_nonblock(p[0]);
    nk_buf b;
    nk_buf_init(&b, 0);
    assert_int_equal(nk_buf_read_fd(&b, p[0], 16), -EAGAIN); /* nothing there yet */
    assert_int_equal(write(p[1], "hello, pipe", 11), 11);
    assert_int_equal(nk_buf_read_fd(&b, p[0], 5), 5); /* max_read bounds the read */
    assert_int_equal(nk_buf_read_fd(&b, p[0], 0), 6);
    assert_int_equal(nk_buf_len(&b), 11);
    assert_memory_equal(nk_buf_rptr(&b), "hello, pipe", 11);
    close(p[1]);
    assert_int_equal(nk_buf_read_fd(&b, p[0], 16), 0); /* end of file */
    close(p[0]);
    nk_buf_free(&b);

    /* The buffer's max bounds reads: what fits is read, then -ENOBUFS. */
    assert_int_equal(pipe(p), 0);
    nk_buf_init(&b, 4);
    assert_int_equal(write(p[1], "0123456789", 10), 10);
    assert_int_equal(nk_buf_read_fd(&b, p[0], 100), 4);
    assert_int_equal(nk_buf_read_fd(&b, p[0], 100), -ENOBUFS);
    nk_buf_consume(&b, 4);
    assert_int_equal(nk_buf_read_fd(&b, p[0], 100), 4);
    assert_memory_equal(nk_buf_rptr(&b), "4567", 4);
    assert_int_equal(nk_buf_read_fd(&b, -1, 1), -ENOBUFS);
    nk_buf_clear(&b);
    assert_int_equal(nk_buf_read_fd(&b, -1, 1), -EBADF);
    close(p[0]);
    close(p[1]);
    nk_buf_free(&b);
}

static void test_buf_write_fd_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    nk_buf b;
    nk_buf_init(&b, 0);
    assert_int_equal(nk_buf_write_fd(&b, p[1]), 0); /* nothing to write */
    assert_int_equal(nk_buf_append_str(&b, "xxpipe data"), 0);
    nk_buf_consume(&b, 2);
    assert_int_equal(nk_buf_write_fd(&b, p[1]), 9); /* not a socket: falls back to write */
    assert_int_equal(nk_buf_len(&b), 0);
    char got[16];
    assert_int_equal(read(p[0], got, sizeof(got)), 9);
    assert_memory_equal(got, "pipe data", 9);
    close(p[0]);
    close(p[1]);
    nk_buf_free(&b);
}

static void test_buf_socketpair(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    set_nonblock(sv[0]);
    nk_buf out, in;
    nk_buf_init(&out, 0);
    nk_buf_init(&in, 0);
    assert_int_equal(nk_buf_append_str(&out, "over a socket"), 0);
    assert_int_equal(nk_buf_write_fd(&out, sv[0]), 13);
    assert_int_equal(nk_buf_read_fd(&in, sv[1], 64), 13);
    assert_memory_equal(nk_buf_rptr(&in), "over a socket", 13);

    /* A write larger than the socket can take: partial, the rest stays, then -EAGAIN. */
    size_t big = 8u << 20;
    assert_int_equal(nk_buf_reserve(&out, big), 0);
    memset(nk_buf_wptr(&out), 'q', big);
    nk_buf_commit(&out, big);
    ssize_t w = nk_buf_write_fd(&out, sv[0]);
    assert_true(w > 0 && (size_t)w < big);
    assert_int_equal(nk_buf_len(&out), big - (size_t)w);
    ssize_t w2 = 0;
    for (int i = 0; i < 1000 && w2 >= 0; i++) /* bounded: the socket buffer fills quickly */
        w2 = nk_buf_write_fd(&out, sv[0]);
    assert_int_equal(w2, -EAGAIN);
    nk_buf_free(&out);
    nk_buf_free(&in);
    close(sv[0]);
    close(sv[1]);
}

static void test_buf_write_closed_socket(void **state)
{
    (void)state;
    /* The default action of SIGPIPE kills the process: with it in place, surviving the write
     * proves MSG_NOSIGNAL was used. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    assert_int_equal(sigaction(SIGPIPE, &sa, &old), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    nk_buf b;
    nk_buf_init(&b, 0);
    assert_int_equal(nk_buf_append_str(&b, "into the void"), 0);
    assert_int_equal(nk_buf_write_fd(&b, sv[0]), -EPIPE);
    assert_int_equal(nk_buf_len(&b), 13); /* nothing consumed on failure */
    close(sv[0]);
    nk_buf_free(&b);
    sigaction(SIGPIPE, &old, NULL);
}

struct err_case {
    const char *why;
    int code;
    const char *name;
    const char *message; /* NULL: only "not NULL, not empty" */
};

static void test_err(void **state)
{
    (void)state;
    const struct err_case cases[] = {
        {"common errno", -EINVAL, "EINVAL", "Invalid argument"},
        {"would block", -EAGAIN, "EAGAIN", "Resource temporarily unavailable"},
        {"refused connection", -ECONNREFUSED, "ECONNREFUSED", "Connection refused"},
        {"buffer limit", -ENOBUFS, "ENOBUFS", "No buffer space available"},
        {"a raw positive errno is understood too", EPIPE, "EPIPE", "Broken pipe"},
        {"resolver: unknown name", NK_ERR_GAI(EAI_NONAME), "EAI_NONAME", gai_strerror(EAI_NONAME)},
        {"resolver: try again", NK_ERR_GAI(EAI_AGAIN), "EAI_AGAIN", gai_strerror(EAI_AGAIN)},
        {"resolver: bad service", NK_ERR_GAI(EAI_SERVICE), "EAI_SERVICE", gai_strerror(EAI_SERVICE)},
        {"unknown errno", -9999, "E?", NULL},
        {"unknown resolver code", NK_ERR_GAI(-999), "EAI_?", NULL},
        {"success", 0, "OK", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct err_case *c = &cases[i];
        print_message("err: %s\n", c->why);
        const char *name = nk_errname(c->code);
        const char *msg = nk_strerror(c->code);
        assert_non_null(name);
        assert_non_null(msg);
        assert_true(msg[0] != '\0');
        assert_string_equal(name, c->name);
        if (c->message)
            assert_string_equal(msg, c->message);
    }
    assert_true(NK_ERR_IS_GAI(NK_ERR_GAI(EAI_NONAME)));
    assert_false(NK_ERR_IS_GAI(-EINVAL));
    /* Extremes must not crash or index out of range. */
    assert_non_null(nk_strerror(-2147483647 - 1));
    assert_non_null(nk_errname(-2147483647 - 1));
    assert_non_null(nk_strerror(2147483647));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_reserve),
        cmocka_unit_test(test_buf_consume_release),
        cmocka_unit_test(test_buf_printf),
        cmocka_unit_test(test_buf_append_max),
        cmocka_unit_test(test_buf_read_fd_pipe),
        cmocka_unit_test(test_buf_write_fd_pipe),
        cmocka_unit_test(test_buf_socketpair),
        cmocka_unit_test(test_buf_write_closed_socket),
        cmocka_unit_test(test_err),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
