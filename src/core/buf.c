/* Growable byte buffer (see buf.h for the layout).
 *
 * Growth is geometric so that appending n bytes one at a time costs O(n) copies, but never
 * past max: the limit is what keeps a peer from making us allocate without bound. Before
 * growing, the consumed prefix is reclaimed when that alone makes enough room.
 */
#include <netkit/buf.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Smallest allocation: tiny buffers would otherwise regrow on every short append. */
#define BUF_MIN_CAP 64
/* A read with max_read 0 asks for this much: one typical socket receive. */
#define BUF_DEFAULT_READ 65536
/* EINTR retries are bounded so that a signal storm cannot pin us in a loop forever. */
#define EINTR_RETRIES 100

static size_t buf_max(const nk_buf *b) { return b->max ? b->max : SIZE_MAX; }

void nk_buf_init(nk_buf *b, size_t max)
{
    b->data = NULL;
    b->cap = 0;
    b->rpos = 0;
    b->wpos = 0;
    b->max = max;
}

void nk_buf_free(nk_buf *b)
{
    free(b->data);
    nk_buf_init(b, b->max);
}

void nk_buf_release(nk_buf *b)
{
    /* Readable bytes may be a pipelined request that has not been looked at yet, so they are
     * kept; only an empty buffer gives its memory back. */
    if (nk_buf_len(b) == 0)
        nk_buf_free(b);
}

/* Move the readable bytes to the front, reclaiming the consumed prefix. */
static void buf_compact(nk_buf *b)
{
    size_t len = nk_buf_len(b);
    if (b->rpos == 0)
        return;
    if (len)
        memmove(b->data, b->data + b->rpos, len);
    b->rpos = 0;
    b->wpos = len;
}

int nk_buf_reserve(nk_buf *b, size_t n)
{
    if (b->cap - b->wpos >= n)
        return 0;
    size_t len = nk_buf_len(b);
    size_t max = buf_max(b);
    if (n > max || len > max - n)
        return -ENOBUFS;
    size_t need = len + n;
    if (b->cap >= need) {
        buf_compact(b);
        return 0;
    }
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < need) /* at most log2(SIZE_MAX) rounds */
        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    if (cap > max)
        cap = max;
    char *p;
    if (b->rpos == 0) {
        p = realloc(b->data, cap);
        if (!p)
            return -ENOMEM;
    } else {
        /* Copy only the readable part rather than realloc-then-memmove. */
        p = malloc(cap);
        if (!p)
            return -ENOMEM;
        if (len)
            memcpy(p, b->data + b->rpos, len);
        free(b->data);
        b->rpos = 0;
        b->wpos = len;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void nk_buf_commit(nk_buf *b, size_t n)
{
    /* Clamped rather than trusted: committing past cap would make later reads overrun. */
    if (n > b->cap - b->wpos)
        n = b->cap - b->wpos;
    b->wpos += n;
}

void nk_buf_consume(nk_buf *b, size_t n)
{
    if (n >= nk_buf_len(b)) {
        /* Everything read: start over at the front, so no compaction is ever needed. */
        b->rpos = 0;
        b->wpos = 0;
        return;
    }
    b->rpos += n;
}

void nk_buf_clear(nk_buf *b)
{
    b->rpos = 0;
    b->wpos = 0;
}

int nk_buf_append(nk_buf *b, const void *src, size_t n)
{
    if (n == 0)
        return 0;
    int rc = nk_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(nk_buf_wptr(b), src, n);
    b->wpos += n;
    return 0;
}

int nk_buf_append_str(nk_buf *b, const char *s)
{
    return nk_buf_append(b, s, strlen(s));
}

int nk_buf_printf(nk_buf *b, const char *fmt, ...)
{
    va_list ap;
    size_t space = nk_buf_space(b);
    /* First try the space we already have; vsnprintf reports the size it needed. */
    va_start(ap, fmt);
    int n = vsnprintf(space ? nk_buf_wptr(b) : NULL, space, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < space) {
        b->wpos += (size_t)n;
        return n;
    }
    /* One byte more for the NUL vsnprintf always writes; it is not committed. */
    int rc = nk_buf_reserve(b, (size_t)n + 1);
    char *tmp = NULL;
    if (rc == -ENOBUFS) {
        /* The text fits exactly up to max but its NUL does not: format aside, then copy. */
        rc = nk_buf_reserve(b, (size_t)n);
        if (rc == 0 && !(tmp = malloc((size_t)n + 1)))
            rc = -ENOMEM;
    }
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    int m = tmp ? vsnprintf(tmp, (size_t)n + 1, fmt, ap)
                : vsnprintf(nk_buf_wptr(b), nk_buf_space(b), fmt, ap);
    va_end(ap);
    if (tmp && m == n)
        memcpy(nk_buf_wptr(b), tmp, (size_t)n);
    free(tmp);
    if (m != n)
        return -EINVAL; /* arguments changed between the two calls */
    b->wpos += (size_t)n;
    return n;
}

ssize_t nk_buf_read_fd(nk_buf *b, int fd, size_t max_read)
{
    size_t want = max_read ? max_read : BUF_DEFAULT_READ;
    size_t room = buf_max(b) - nk_buf_len(b);
    if (room == 0)
        return -ENOBUFS;
    if (want > room)
        want = room; /* read what still fits under max rather than fail */
    /* Use free space already there when it is enough for a useful read, else make room. */
    if (nk_buf_space(b) < want) {
        int rc = nk_buf_reserve(b, want);
        if (rc < 0)
            return rc;
    }
    size_t n = nk_buf_space(b) < want ? nk_buf_space(b) : want;
    for (int i = 0; i < EINTR_RETRIES; i++) {
        ssize_t r = read(fd, nk_buf_wptr(b), n);
        if (r >= 0) {
            b->wpos += (size_t)r;
            return r;
        }
        if (errno != EINTR)
            return -errno;
    }
    return -EINTR;
}

/* send with MSG_NOSIGNAL so that a peer that went away gives -EPIPE instead of a SIGPIPE that
 * would kill the process; pipes and files are not sockets and take write. */
static ssize_t write_some(int fd, const void *p, size_t n)
{
    ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
    if (r < 0 && errno == ENOTSOCK)
        r = write(fd, p, n);
    return r;
}

ssize_t nk_buf_write_fd(nk_buf *b, int fd)
{
    size_t len = nk_buf_len(b);
    if (len == 0)
        return 0;
    for (int i = 0; i < EINTR_RETRIES; i++) {
        ssize_t r = write_some(fd, nk_buf_rptr(b), len);
        if (r >= 0) {
            nk_buf_consume(b, (size_t)r);
            return r;
        }
        if (errno != EINTR)
            return -errno;
    }
    return -EINTR;
}
