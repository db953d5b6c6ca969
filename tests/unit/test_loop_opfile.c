/* File steps as operations (nk_op_openat, openat2, statx, fsync, renameat, pread) on every
 * backend: native
 * requests on uring, the loop's file thread elsewhere; same results, same stop rules, and the
 * loop goes on turning while a step blocks (an open of a FIFO with no writer stands for a slow
 * disk, as it blocks until a writer comes). */
#include "loop_fixture.h"

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>
#include <linux/openat2.h>

#include <netkit/op.h>

typedef struct {
    int calls;
    ssize_t last;
} op_rec;

static void file_op_cb(nk_loop *loop, nk_op *op, ssize_t result)
{
    (void)loop;
    op_rec *r = op->data;
    r->calls++;
    r->last = result;
}

/* Run until r->calls reaches want (bounded: 2,500 iterations of at most 2 s). */
static void wait_calls(nk_loop *loop, const op_rec *r, int want)
{
    for (int i = 0; i < 2500 && r->calls < want; i++)
        assert_false(run_once(loop));
    assert_int_equal(r->calls, want);
}

typedef struct {
    char dir[64];
    int dirfd;
} tmpdir;

static void tmpdir_make(tmpdir *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/nk-opfile-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    t->dirfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(t->dirfd >= 0);
}

static void tmpdir_put(const tmpdir *t, const char *name, const char *text)
{
    int fd = openat(t->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void tmpdir_remove(tmpdir *t)
{
    DIR *d = fdopendir(dup(t->dirfd));
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            assert_int_equal(unlinkat(t->dirfd, e->d_name, 0), 0);
    closedir(d);
    close(t->dirfd);
    assert_int_equal(rmdir(t->dir), 0);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static void test_open_stat_sync_rename(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    tmpdir t;
    tmpdir_make(&t);
    tmpdir_put(&t, "a.txt", "hello, disk\n");
    op_rec r = {0};
    nk_op op;
    nk_op_init(&op, file_op_cb, &r);

    assert_int_equal(nk_op_openat(loop, &op, t.dirfd, "a.txt", O_RDWR, 0), 0);
    assert_int_equal(r.calls, 0); /* never called back inside the start */
    assert_int_equal(nk_op_openat(loop, &op, t.dirfd, "a.txt", O_RDONLY, 0), -EBUSY);
    wait_calls(loop, &r, 1);
    int fd = (int)r.last;
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    char buf[32] = {0};
    assert_int_equal(pread(fd, buf, sizeof buf, 0), 12);
    assert_string_equal(buf, "hello, disk\n");

    struct statx sx;
    memset(&sx, 0, sizeof sx);
    assert_int_equal(nk_op_statx(loop, &op, t.dirfd, "a.txt", 0, STATX_SIZE | STATX_MTIME, &sx),
                     0);
    wait_calls(loop, &r, 2);
    assert_int_equal(r.last, 0);
    assert_true(sx.stx_mask & STATX_SIZE);
    assert_int_equal(sx.stx_size, 12);

    assert_int_equal(nk_op_fsync(loop, &op, fd, 0), 0);
    wait_calls(loop, &r, 3);
    assert_int_equal(r.last, 0);
    assert_int_equal(nk_op_fsync(loop, &op, fd, NK_OP_FSYNC_DATA), 0);
    wait_calls(loop, &r, 4);
    assert_int_equal(r.last, 0);
    close(fd);

    assert_int_equal(nk_op_renameat(loop, &op, t.dirfd, "a.txt", t.dirfd, "b.txt", 0), 0);
    wait_calls(loop, &r, 5);
    assert_int_equal(r.last, 0);
    assert_int_equal(faccessat(t.dirfd, "b.txt", F_OK, 0), 0);
    assert_int_equal(faccessat(t.dirfd, "a.txt", F_OK, 0), -1);

    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_loop_free(loop), 0);
    tmpdir_remove(&t);
}

static void test_errors_come_as_results(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    tmpdir t;
    tmpdir_make(&t);
    tmpdir_put(&t, "x", "1");
    tmpdir_put(&t, "y", "2");
    op_rec r = {0};
    nk_op op;
    nk_op_init(&op, file_op_cb, &r);
    struct statx sx;

    assert_int_equal(nk_op_openat(loop, &op, t.dirfd, "missing", O_RDONLY, 0), 0);
    wait_calls(loop, &r, 1);
    assert_int_equal(r.last, -ENOENT);
    assert_int_equal(nk_op_statx(loop, &op, t.dirfd, "missing", 0, STATX_SIZE, &sx), 0);
    wait_calls(loop, &r, 2);
    assert_int_equal(r.last, -ENOENT);
    /* renameat2's flags reach the call: no replacing of an existing name */
    assert_int_equal(nk_op_renameat(loop, &op, t.dirfd, "x", t.dirfd, "y", RENAME_NOREPLACE), 0);
    wait_calls(loop, &r, 3);
    assert_int_equal(r.last, -EEXIST);
    /* fsync of a pipe: EINVAL from the call itself */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(nk_op_fsync(loop, &op, p[0], 0), 0);
    wait_calls(loop, &r, 4);
    assert_int_equal(r.last, -EINVAL);
    close(p[0]);
    close(p[1]);

    /* refused at start: nothing started, no callback */
    assert_int_equal(nk_op_openat(loop, &op, -5, "x", O_RDONLY, 0), -EBADF);
    assert_int_equal(nk_op_openat(loop, &op, t.dirfd, NULL, O_RDONLY, 0), -EFAULT);
    assert_int_equal(nk_op_statx(loop, &op, t.dirfd, "x", 0, STATX_SIZE, NULL), -EFAULT);
    assert_int_equal(nk_op_fsync(loop, &op, -1, 0), -EBADF);
    assert_int_equal(nk_op_fsync(loop, &op, 0, 0x80), -EINVAL);
    assert_int_equal(nk_op_renameat(loop, &op, t.dirfd, "x", -7, "z", 0), -EBADF);
    assert_false(nk_op_active(&op));
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 4);
    assert_int_equal(nk_loop_free(loop), 0);
    tmpdir_remove(&t);
}

/* openat2's resolve rules reach the call: RESOLVE_BENEATH refuses ".." and an absolute path
 * (-EXDEV), RESOLVE_NO_SYMLINKS a link (-ELOOP); the how is the op's own copy (the caller's
 * is changed right after the start), and O_CLOEXEC is added as for openat. */
static void test_openat2_resolve_rules(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    tmpdir t;
    tmpdir_make(&t);
    tmpdir_put(&t, "in.txt", "inside\n");
    assert_int_equal(symlinkat("in.txt", t.dirfd, "link"), 0);
    op_rec r = {0};
    nk_op op;
    nk_op_init(&op, file_op_cb, &r);
    struct open_how how = {.flags = O_RDONLY, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};

    assert_int_equal(nk_op_openat2(loop, &op, t.dirfd, "in.txt", &how), 0);
    how.resolve = 0;
    how.flags = O_WRONLY | O_TRUNC; /* the op took its copy: this changes nothing */
    wait_calls(loop, &r, 1);
    int fd = (int)r.last;
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
    char buf[16] = {0};
    assert_int_equal(pread(fd, buf, sizeof buf, 0), 7);
    assert_string_equal(buf, "inside\n");
    close(fd);

    how = (struct open_how){.flags = O_RDONLY, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
    assert_int_equal(nk_op_openat2(loop, &op, t.dirfd, "../in.txt", &how), 0);
    wait_calls(loop, &r, 2);
    assert_int_equal(r.last, -EXDEV);
    assert_int_equal(nk_op_openat2(loop, &op, t.dirfd, "/etc/passwd", &how), 0);
    wait_calls(loop, &r, 3);
    assert_int_equal(r.last, -EXDEV);
    assert_int_equal(nk_op_openat2(loop, &op, t.dirfd, "link", &how), 0);
    wait_calls(loop, &r, 4);
    assert_int_equal(r.last, -ELOOP);
    how.resolve = RESOLVE_BENEATH; /* links inside the directory are fine without NO_SYMLINKS */
    assert_int_equal(nk_op_openat2(loop, &op, t.dirfd, "link", &how), 0);
    wait_calls(loop, &r, 5);
    assert_true(r.last >= 0);
    close((int)r.last);

    /* refused at start */
    assert_int_equal(nk_op_openat2(loop, &op, -3, "x", &how), -EBADF);
    assert_int_equal(nk_op_openat2(loop, &op, t.dirfd, NULL, &how), -EFAULT);
    assert_int_equal(nk_op_openat2(loop, &op, t.dirfd, "x", NULL), -EFAULT);
    assert_false(nk_op_active(&op));
    assert_int_equal(nk_loop_free(loop), 0);
    tmpdir_remove(&t);
}

typedef struct {
    int ticks;
} tick_rec;

static void tick_cb(nk_loop *loop, nk_timer *tm)
{
    (void)loop;
    ((tick_rec *)tm->data)->ticks++;
}

/* A step that blocks (a FIFO's open waits for a writer) does not block the loop: a timer keeps
 * firing meanwhile; a writer ends it. */
static void test_loop_turns_while_a_step_blocks(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    tmpdir t;
    tmpdir_make(&t);
    assert_int_equal(mkfifoat(t.dirfd, "fifo", 0600), 0);
    op_rec r = {0};
    nk_op op;
    nk_op_init(&op, file_op_cb, &r);
    assert_int_equal(nk_op_openat(loop, &op, t.dirfd, "fifo", O_RDONLY, 0), 0);
    if (is_backend(loop, "uring")) {
        /* The kernel's first attempt at an io_uring open is non-blocking (O_NONBLOCK added,
         * then taken off the file again): a FIFO opens for reading at once, with no writer. */
        wait_calls(loop, &r, 1);
        assert_true(r.last >= 0);
        assert_int_equal(fcntl((int)r.last, F_GETFL) & O_NONBLOCK, 0);
        close((int)r.last);
        assert_int_equal(nk_loop_free(loop), 0);
        tmpdir_remove(&t);
        return;
    }

    tick_rec tr = {0};
    nk_timer tick;
    nk_timer_init(&tick, tick_cb, &tr);
    assert_int_equal(nk_timer_start(loop, &tick, 5, 5), 0);
    for (int i = 0; i < 400 && tr.ticks < 5; i++)
        assert_false(run_once(loop));
    assert_true(tr.ticks >= 5);
    if (r.calls != 0)
        fail_msg("the open of a FIFO without a writer ended: %zd", r.last);
    assert_true(nk_op_active(&op));
    assert_int_equal(nk_loop_free(loop), -EBUSY);

    int w = -1;
    for (int i = 0; i < 2000 && w < 0; i++) { /* the reader may not be in its open yet */
        w = openat(t.dirfd, "fifo", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (w < 0)
            usleep(1000);
    }
    assert_true(w >= 0);
    wait_calls(loop, &r, 1);
    assert_true(r.last >= 0);
    close((int)r.last);
    close(w);
    nk_timer_stop(loop, &tick);
    assert_int_equal(nk_loop_free(loop), 0);
    tmpdir_remove(&t);
}

/* Stopped while its open blocks: -EINPROGRESS, then one -ECANCELED callback once the call has
 * returned, and the descriptor it may have opened is closed, not leaked. */
static void test_stop_while_blocked(void **state)
{
    (void)state;
    tmpdir t;
    tmpdir_make(&t);
    assert_int_equal(mkfifoat(t.dirfd, "fifo", 0600), 0);
    int fds_before = count_fds();
    nk_loop *loop = new_loop();
    if (is_backend(loop, "uring")) {
        /* An open of a FIFO does not block on uring (see the test above): no step to stop
         * in its system call this way; test_stop_before_it_runs covers stopping there. */
        assert_int_equal(nk_loop_free(loop), 0);
        tmpdir_remove(&t);
        skip();
    }
    op_rec r = {0};
    nk_op op;
    nk_op_init(&op, file_op_cb, &r);
    assert_int_equal(nk_op_openat(loop, &op, t.dirfd, "fifo", O_RDONLY, 0), 0);
    /* let it reach its system call */
    int w = -1;
    for (int i = 0; i < 2000 && w < 0; i++) {
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
        w = openat(t.dirfd, "fifo", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (w < 0)
            usleep(1000);
    }
    /* The writer may already have released the open: either way a stop now is in progress or
     * finds the result waiting, and cancels it. */
    assert_true(w >= 0);
    int rc = nk_op_stop(loop, &op);
    if (rc == -EINPROGRESS) {
        assert_true(nk_op_active(&op));
        wait_calls(loop, &r, 1);
        assert_int_equal(r.last, -ECANCELED);
    } else {
        assert_int_equal(rc, 0);
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
        assert_int_equal(r.calls, 0);
    }
    assert_false(nk_op_active(&op));
    close(w);
    assert_int_equal(nk_loop_free(loop), 0);
    assert_int_equal(count_fds(), fds_before); /* whatever it opened was closed */
    tmpdir_remove(&t);
}

/* Stopped before it ran: over at once, no callback. */
static void test_stop_before_it_runs(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    tmpdir t;
    tmpdir_make(&t);
    tmpdir_put(&t, "f", "x");
    op_rec r = {0};
    nk_op op;
    nk_op_init(&op, file_op_cb, &r);
    struct statx sx;
    assert_int_equal(nk_op_statx(loop, &op, t.dirfd, "f", 0, STATX_SIZE, &sx), 0);
    int rc = nk_op_stop(loop, &op);
    assert_true(rc == 0 || rc == -EINPROGRESS); /* the file thread may have taken it already */
    if (rc == -EINPROGRESS)
        wait_calls(loop, &r, 1);
    else
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, rc == 0 ? 0 : 1);
    assert_false(nk_op_active(&op));
    assert_int_equal(nk_op_stop(loop, &op), 0); /* not started: a no-op */
    assert_int_equal(nk_loop_free(loop), 0);
    tmpdir_remove(&t);
}

/* Many steps at once: each called back once with its own result. */
static void test_many(void **state)
{
    (void)state;
    enum { N = 40 };
    nk_loop *loop = new_loop();
    tmpdir t;
    tmpdir_make(&t);
    char names[N][16];
    op_rec r[N];
    nk_op ops[N];
    struct statx sx[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        char text[N + 1];
        memset(text, 'x', (size_t)i + 1); /* i + 1 bytes */
        text[i + 1] = '\0';
        tmpdir_put(&t, names[i], text);
        memset(&r[i], 0, sizeof r[i]);
        nk_op_init(&ops[i], file_op_cb, &r[i]);
        assert_int_equal(nk_op_statx(loop, &ops[i], t.dirfd, names[i], 0, STATX_SIZE, &sx[i]),
                         0);
    }
    assert_int_equal(nk_loop_active(loop), N);
    for (int i = 0; i < N; i++)
        wait_calls(loop, &r[i], 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].last, 0);
        assert_int_equal(sx[i].stx_size, (uint64_t)i + 1);
    }
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_loop_free(loop), 0);
    tmpdir_remove(&t);
}

/* ---- nk_op_pread ------------------------------------------------------------------------- */

/* Run one read to its callback: the result. */
static ssize_t pread_now(nk_loop *loop, nk_op *op, op_rec *r, int fd, void *buf, size_t len,
                         int64_t offset)
{
    int want = r->calls + 1;
    assert_int_equal(nk_op_pread(loop, op, fd, buf, len, offset), 0);
    assert_int_equal(r->calls, want - 1); /* never called back inside the start */
    wait_calls(loop, r, want);
    assert_false(nk_op_active(op));
    return r->last;
}

/* Whole and short reads, the end of the file, errors as results and refusals at start. The
 * file is opened with O_NONBLOCK, as the HTTP server opens its files. */
static void test_pread_results(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    tmpdir t;
    tmpdir_make(&t);
    tmpdir_put(&t, "a.txt", "hello, disk\n");
    int fd = openat(t.dirfd, "a.txt", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    assert_true(fd >= 0);
    op_rec r = {0};
    nk_op op;
    nk_op_init(&op, file_op_cb, &r);
    char buf[64];

    memset(buf, '#', sizeof buf);
    assert_int_equal(pread_now(loop, &op, &r, fd, buf, 12, 0), 12);
    assert_memory_equal(buf, "hello, disk\n", 12);
    assert_int_equal(buf[12], '#'); /* nothing beyond len */

    memset(buf, '#', sizeof buf);
    assert_int_equal(pread_now(loop, &op, &r, fd, buf, 5, 2), 5); /* a middle piece */
    assert_memory_equal(buf, "llo, ", 5);
    assert_int_equal(buf[5], '#');

    memset(buf, '#', sizeof buf);
    assert_int_equal(pread_now(loop, &op, &r, fd, buf, sizeof buf, 7), 5); /* short: EOF */
    assert_memory_equal(buf, "disk\n", 5);
    assert_int_equal(buf[5], '#');

    assert_int_equal(pread_now(loop, &op, &r, fd, buf, sizeof buf, 12), 0);      /* at EOF */
    assert_int_equal(pread_now(loop, &op, &r, fd, buf, sizeof buf, 1 << 20), 0); /* past it */
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 0); /* the file position neither used nor moved */

    /* errors of the read itself come as results */
    int gone = dup(fd);
    assert_true(gone >= 0);
    close(gone);
    assert_int_equal(pread_now(loop, &op, &r, gone, buf, sizeof buf, 0), -EBADF);
    int wr = openat(t.dirfd, "a.txt", O_WRONLY | O_CLOEXEC);
    assert_true(wr >= 0);
    assert_int_equal(pread_now(loop, &op, &r, wr, buf, sizeof buf, 0), -EBADF);
    close(wr);
    assert_int_equal(pread_now(loop, &op, &r, t.dirfd, buf, sizeof buf, 0), -EISDIR);
    int calls = r.calls;

    /* refused at start: nothing started, no callback */
    assert_int_equal(nk_op_pread(loop, &op, -1, buf, sizeof buf, 0), -EBADF);
    assert_int_equal(nk_op_pread(loop, &op, fd, NULL, sizeof buf, 0), -EFAULT);
    assert_int_equal(nk_op_pread(loop, &op, fd, buf, 0, 0), -EINVAL);
    assert_int_equal(nk_op_pread(loop, &op, fd, buf, (size_t)SSIZE_MAX + 1, 0), -EINVAL);
    assert_int_equal(nk_op_pread(loop, &op, fd, buf, sizeof buf, -1), -EINVAL);
    assert_false(nk_op_active(&op));
    assert_int_equal(nk_op_pread(loop, &op, fd, buf, sizeof buf, 0), 0);
    assert_int_equal(nk_op_pread(loop, &op, fd, buf, sizeof buf, 0), -EBUSY);
    wait_calls(loop, &r, calls + 1);
    assert_int_equal(r.last, 12);
    assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, calls + 1); /* the refused starts made no callback */

    close(fd);
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_loop_free(loop), 0);
    tmpdir_remove(&t);
}

enum { BIG = 1 << 20, PIECE = 256 << 10, NPIECE = BIG / PIECE };

/* BIG bytes no two pieces of which are alike: a read from a wrong offset shows. */
static unsigned char *big_file(const tmpdir *t, const char *name)
{
    unsigned char *data = malloc(BIG);
    assert_non_null(data);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < BIG; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (unsigned char)x;
    }
    int fd = openat(t->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    for (size_t off = 0; off < BIG;) {
        ssize_t n = write(fd, data + off, BIG - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    close(fd);
    return data;
}

/* A 1 MiB file read in 256 KiB pieces, one after another (reading on after a short read, as a
 * caller must), then all four pieces at once on four operations: the same bytes as written. */
static void test_pread_pieces(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    tmpdir t;
    tmpdir_make(&t);
    unsigned char *data = big_file(&t, "big");
    int fd = openat(t.dirfd, "big", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    unsigned char *got = malloc(BIG);
    assert_non_null(got);

    memset(got, 0, BIG);
    op_rec r = {0};
    nk_op op;
    nk_op_init(&op, file_op_cb, &r);
    int pieces = 0;
    for (size_t off = 0; off < BIG && pieces < 64; pieces++) {
        size_t len = PIECE - off % PIECE; /* the rest of this piece after a short read */
        ssize_t n = pread_now(loop, &op, &r, fd, got + off, len, (int64_t)off);
        assert_true(n > 0 && (size_t)n <= len);
        off += (size_t)n;
    }
    assert_true(pieces >= NPIECE);
    assert_memory_equal(got, data, BIG);
    assert_int_equal(pread_now(loop, &op, &r, fd, got, PIECE, BIG), 0);

    memset(got, 0, BIG);
    op_rec rs[NPIECE];
    nk_op ops[NPIECE];
    for (int i = 0; i < NPIECE; i++) {
        memset(&rs[i], 0, sizeof rs[i]);
        nk_op_init(&ops[i], file_op_cb, &rs[i]);
        assert_int_equal(nk_op_pread(loop, &ops[i], fd, got + (size_t)i * PIECE, PIECE,
                                     (int64_t)i * PIECE),
                         0);
    }
    assert_int_equal(nk_loop_active(loop), NPIECE);
    for (int i = 0; i < NPIECE; i++) {
        wait_calls(loop, &rs[i], 1);
        /* a short piece is allowed by the contract, but leaves bytes to compare: read them */
        for (size_t off = (size_t)rs[i].last; off < PIECE;) {
            assert_true(rs[i].last > 0);
            ssize_t n = pread_now(loop, &ops[i], &rs[i], fd, got + (size_t)i * PIECE + off,
                                  PIECE - off, (int64_t)((size_t)i * PIECE + off));
            assert_true(n > 0);
            off += (size_t)n;
        }
    }
    assert_memory_equal(got, data, BIG);

    close(fd);
    free(got);
    free(data);
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_loop_free(loop), 0);
    tmpdir_remove(&t);
}

/* Stopped before it began: 0, no callback ever, the buffer untouched, and the op can be started
 * again. On the file thread the read is kept from beginning by a step ahead of it that blocks
 * (the open of a FIFO without a writer); on uring a request is only submitted by the wait. */
static void test_pread_stop_before_start(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    tmpdir t;
    tmpdir_make(&t);
    tmpdir_put(&t, "a.txt", "hello, disk\n");
    int fd = openat(t.dirfd, "a.txt", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    int uring = is_backend(loop, "uring");
    op_rec ro = {0};
    nk_op opener;
    nk_op_init(&opener, file_op_cb, &ro);
    if (!uring) {
        assert_int_equal(mkfifoat(t.dirfd, "fifo", 0600), 0);
        assert_int_equal(nk_op_openat(loop, &opener, t.dirfd, "fifo", O_RDONLY, 0), 0);
    }
    op_rec r = {0};
    nk_op op;
    nk_op_init(&op, file_op_cb, &r);
    char buf[32];
    memset(buf, '#', sizeof buf);
    assert_int_equal(nk_op_pread(loop, &op, fd, buf, sizeof buf, 0), 0);
    assert_int_equal(nk_op_stop(loop, &op), 0);
    assert_false(nk_op_active(&op));

    if (!uring) { /* let the blocked open go, and finish it */
        int w = -1;
        for (int i = 0; i < 2000 && w < 0; i++) {
            w = openat(t.dirfd, "fifo", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
            if (w < 0)
                usleep(1000);
        }
        assert_true(w >= 0);
        wait_calls(loop, &ro, 1);
        assert_true(ro.last >= 0);
        close((int)ro.last);
        close(w);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 0);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], '#');
    assert_int_equal(nk_op_stop(loop, &op), 0); /* not started: a no-op */

    assert_int_equal(pread_now(loop, &op, &r, fd, buf, sizeof buf, 0), 12);
    assert_memory_equal(buf, "hello, disk\n", 12);
    close(fd);
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_loop_free(loop), 0);
    tmpdir_remove(&t);
}

typedef struct {
    nk_op *victim;
    int rc, rc_again, active_after, calls;
} stopper;

/* Stop s->victim: what the stop said, whether the op stayed active, what a second stop said. */
static void stop_now(nk_loop *loop, stopper *s)
{
    s->calls++;
    s->rc = nk_op_stop(loop, s->victim);
    s->active_after = nk_op_active(s->victim);
    s->rc_again = nk_op_stop(loop, s->victim);
}

/* uring: stops the read from an I/O callback of the iteration whose wait submitted it. */
static void stop_from_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)events;
    stop_now(loop, io->data);
    nk_io_stop(loop, io);
}

/* Stopped once it has begun: -EINPROGRESS, still active, then exactly one more callback, with
 * -ECANCELED (the bytes it read are dropped), after which it is over. On the file thread the
 * stop comes once the read has filled the buffer (begun and done, not yet collected by the
 * loop); on uring from an I/O callback right after the wait that submitted it (the kernel
 * holds it, or has completed it with the completion not yet handed over). */
static void test_pread_stop_while_running(void **state)
{
    (void)state;
    nk_loop *loop = new_loop();
    tmpdir t;
    tmpdir_make(&t);
    tmpdir_put(&t, "a.txt", "hello, disk\n");
    int fd = openat(t.dirfd, "a.txt", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    op_rec r = {0};
    nk_op op;
    nk_op_init(&op, file_op_cb, &r);
    char buf[32];
    memset(buf, '#', sizeof buf);
    stopper s = {.victim = &op};

    if (is_backend(loop, "uring")) {
        int sv[2];
        make_pair(sv);
        assert_int_equal(write(sv[1], "x", 1), 1); /* readable from the start */
        nk_io io;
        nk_io_init(&io, sv[0], stop_from_io, &s);
        assert_int_equal(nk_op_pread(loop, &op, fd, buf, sizeof buf, 0), 0);
        assert_int_equal(nk_io_start(loop, &io, NK_READ), 0);
        /* The -ECANCELED callback may come in that same iteration, right after the I/O
         * callbacks; a read called back with its bytes before the stop fails below. */
        for (int i = 0; i < 100 && s.calls == 0 && r.calls == 0; i++)
            assert_false(run_once(loop));
        assert_int_equal(s.calls, 1);
        close(sv[0]);
        close(sv[1]);
    } else {
        assert_int_equal(nk_op_pread(loop, &op, fd, buf, sizeof buf, 0), 0);
        /* The file thread reads without the loop turning; wait (bounded) for its bytes. */
        const volatile char *v = buf;
        for (int i = 0; i < 2000 && v[11] != '\n'; i++)
            usleep(1000);
        assert_int_equal(v[11], '\n');
        assert_int_equal(r.calls, 0);
        stop_now(loop, &s);
        assert_int_equal(nk_loop_free(loop), -EBUSY);
    }
    assert_int_equal(s.rc, -EINPROGRESS);
    assert_true(s.active_after);
    assert_int_equal(s.rc_again, -EINPROGRESS); /* again: still in progress */
    wait_calls(loop, &r, 1);
    assert_int_equal(r.last, -ECANCELED);
    assert_false(nk_op_active(&op));
    for (int i = 0; i < 3; i++)
        assert_int_equal(nk_loop_run(loop, NK_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 1); /* the last callback was the last */
    assert_int_equal(nk_op_stop(loop, &op), 0);

    close(fd);
    assert_int_equal(nk_loop_active(loop), 0);
    assert_int_equal(nk_loop_free(loop), 0);
    tmpdir_remove(&t);
}

int main(void)
{
    skip_suite_if_backend_refused();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_stat_sync_rename),
        cmocka_unit_test(test_errors_come_as_results),
        cmocka_unit_test(test_openat2_resolve_rules),
        cmocka_unit_test(test_loop_turns_while_a_step_blocks),
        cmocka_unit_test(test_stop_while_blocked),
        cmocka_unit_test(test_stop_before_it_runs),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_pread_results),
        cmocka_unit_test(test_pread_pieces),
        cmocka_unit_test(test_pread_stop_before_start),
        cmocka_unit_test(test_pread_stop_while_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
