/* Message framing: encoders and the incremental decoder.
 *
 * The decoder keeps one invariant per kind in d->scanned, an offset from the buffer's read
 * position:
 *   LINE   bytes [0, scanned) contain no "\n". Every byte is searched once, so a long line
 *          that arrives a byte at a time costs O(n), not O(n^2).
 *   LEN32  every header that starts before scanned has been checked against max; scanned is
 *          where the next unchecked header starts (it may lie beyond the buffered bytes while
 *          a payload is still arriving).
 * Limits are enforced in feed, before the offending bytes are buffered, so one peer cannot make
 * us hold more than max (plus what a single feed brought). Messages that were complete before
 * the failure point are still handed out by next; after them next returns the sticky error.
 */
#include <netkit/frame.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* An empty decoder holding more than this gives the memory back, so that one large message
 * does not pin a large buffer for the rest of a long-lived connection. */
#define FRAME_KEEP_CAP 65536

int nk_frame_kind_parse(const char *name)
{
    if (!name)
        return -EINVAL;
    if (strcasecmp(name, "line") == 0)
        return NK_FRAME_LINE;
    if (strcasecmp(name, "len32") == 0)
        return NK_FRAME_LEN32;
    return -EINVAL;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

int nk_frame_encode(nk_frame_kind kind, const void *msg, size_t len, size_t max, nk_buf *out)
{
    if (max && len > max)
        return -EMSGSIZE;
    /* Reserve the whole frame first so that a failure never leaves half a frame in out. */
    if (kind == NK_FRAME_LINE) {
        if (len && memchr(msg, '\n', len))
            return -EINVAL;
        if (len == SIZE_MAX)
            return -EMSGSIZE;
        int rc = nk_buf_reserve(out, len + 1);
        if (rc < 0)
            return rc;
        if (len)
            memcpy(nk_buf_wptr(out), msg, len);
        nk_buf_wptr(out)[len] = '\n';
        nk_buf_commit(out, len + 1);
        return 0;
    }
    if (kind == NK_FRAME_LEN32) {
        if (len > UINT32_MAX)
            return -EMSGSIZE;
        int rc = nk_buf_reserve(out, len + 4);
        if (rc < 0)
            return rc;
        put_be32((unsigned char *)nk_buf_wptr(out), (uint32_t)len);
        if (len)
            memcpy(nk_buf_wptr(out) + 4, msg, len);
        nk_buf_commit(out, len + 4);
        return 0;
    }
    return -EINVAL;
}

void nk_frame_decoder_init(nk_frame_decoder *d, nk_frame_kind kind, size_t max)
{
    d->kind = kind;
    d->max = max;
    nk_buf_init(&d->in, 0);
    d->scanned = 0;
    d->failed = 0;
}

void nk_frame_decoder_free(nk_frame_decoder *d)
{
    nk_buf_free(&d->in);
    d->scanned = 0;
}

size_t nk_frame_pending(const nk_frame_decoder *d) { return nk_buf_len(&d->in); }

static size_t frame_max(const nk_frame_decoder *d)
{
    if (d->kind == NK_FRAME_LEN32 && (d->max == 0 || d->max > UINT32_MAX))
        return UINT32_MAX;
    return d->max ? d->max : SIZE_MAX;
}

static int fail(nk_frame_decoder *d, int err)
{
    d->failed = err;
    return err;
}

/* Can n bytes with no "\n" yet (ending in last) still become a line of at most max? One byte
 * over is allowed when it is the "\r" that decoding will strip. */
static int line_tail_ok(size_t n, char last, size_t max)
{
    if (n <= max)
        return 1;
    return n - 1 == max && last == '\r';
}

/* Payload length of a line of n bytes before its "\n", the last of which is last. */
static size_t line_payload(size_t n, char last) { return n && last == '\r' ? n - 1 : n; }

static int feed_line(nk_frame_decoder *d, const char *data, size_t len)
{
    size_t have = nk_buf_len(&d->in);
    size_t max = frame_max(d);
    if (d->scanned == have) {
        /* No complete line is buffered: the incoming bytes continue the first line, which can
         * be judged now, before it is stored. */
        const char *nl = memchr(data, '\n', len);
        if (!nl) {
            char last = data[len - 1];
            if (have > SIZE_MAX - len || !line_tail_ok(have + len, last, max))
                return fail(d, -EMSGSIZE);
            int rc = nk_buf_append(&d->in, data, len);
            if (rc < 0)
                return fail(d, rc);
            d->scanned = have + len;
            return 0;
        }
        size_t at = (size_t)(nl - data);
        char last = at ? data[at - 1] : (have ? nk_buf_rptr(&d->in)[have - 1] : '\n');
        if (line_payload(have + at, last) > max)
            return fail(d, -EMSGSIZE);
        int rc = nk_buf_append(&d->in, data, len);
        if (rc < 0)
            return fail(d, rc);
        d->scanned = have + at;
        return 0;
    }
    /* A complete line is already waiting; later lines are checked by next as it reaches them. */
    int rc = nk_buf_append(&d->in, data, len);
    return rc < 0 ? fail(d, rc) : 0;
}

/* Byte i of the stream formed by the buffered bytes followed by data. */
static unsigned char joined_byte(const nk_frame_decoder *d, const char *data, size_t i)
{
    size_t have = nk_buf_len(&d->in);
    return (unsigned char)(i < have ? nk_buf_rptr(&d->in)[i] : data[i - have]);
}

static int feed_len32(nk_frame_decoder *d, const char *data, size_t len)
{
    size_t have = nk_buf_len(&d->in);
    size_t total = have + len;
    size_t off = d->scanned;
    size_t max = frame_max(d);
    /* Walk the headers the new bytes complete; each pass moves off forward by at least 4. */
    while (off < total && total - off >= 4) {
        uint32_t n = (uint32_t)joined_byte(d, data, off) << 24 |
                     (uint32_t)joined_byte(d, data, off + 1) << 16 |
                     (uint32_t)joined_byte(d, data, off + 2) << 8 |
                     (uint32_t)joined_byte(d, data, off + 3);
        if (n > max) {
            /* Keep the complete messages before this header; drop the rest unbuffered. */
            if (off > have) {
                int rc = nk_buf_append(&d->in, data, off - have);
                if (rc < 0)
                    return fail(d, rc);
            }
            d->scanned = off;
            return fail(d, -EMSGSIZE);
        }
        if (off > SIZE_MAX - 4 - (size_t)n)
            return fail(d, -EMSGSIZE);
        off += 4 + (size_t)n;
    }
    int rc = nk_buf_append(&d->in, data, len);
    if (rc < 0)
        return fail(d, rc);
    d->scanned = off;
    return 0;
}

int nk_frame_feed(nk_frame_decoder *d, const void *data, size_t len)
{
    if (d->failed)
        return d->failed;
    if (len == 0)
        return 0;
    if (nk_buf_len(&d->in) == 0 && d->in.cap > FRAME_KEEP_CAP)
        nk_buf_free(&d->in);
    if (d->kind == NK_FRAME_LINE)
        return feed_line(d, data, len);
    if (d->kind == NK_FRAME_LEN32)
        return feed_len32(d, data, len);
    return fail(d, -EINVAL);
}

static int next_line(nk_frame_decoder *d, const char **msg, size_t *len)
{
    size_t have = nk_buf_len(&d->in);
    const char *p = nk_buf_rptr(&d->in);
    const char *nl = d->scanned < have ? memchr(p + d->scanned, '\n', have - d->scanned) : NULL;
    if (!nl) {
        d->scanned = have;
        /* The unfinished tail was buffered after a complete line, unchecked: check it now. */
        if (have && !line_tail_ok(have, p[have - 1], frame_max(d))) {
            nk_buf_free(&d->in);
            d->scanned = 0;
            return fail(d, -EMSGSIZE);
        }
        return d->failed;
    }
    size_t at = (size_t)(nl - p);
    size_t n = line_payload(at, at ? p[at - 1] : '\n');
    if (n > frame_max(d)) {
        nk_buf_free(&d->in);
        d->scanned = 0;
        return fail(d, -EMSGSIZE);
    }
    *msg = p;
    *len = n;
    /* The bytes stay where they are until the next feed or next, as the header promises. */
    nk_buf_consume(&d->in, at + 1);
    d->scanned = 0;
    return 1;
}

static int next_len32(nk_frame_decoder *d, const char **msg, size_t *len)
{
    size_t have = nk_buf_len(&d->in);
    if (have < 4)
        return d->failed;
    const unsigned char *p = (const unsigned char *)nk_buf_rptr(&d->in);
    size_t n = (size_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
                        (uint32_t)p[3]);
    if (have - 4 < n)
        return d->failed;
    *msg = (const char *)p + 4;
    *len = n;
    nk_buf_consume(&d->in, 4 + n);
    d->scanned -= 4 + n; /* feed checked this header, so scanned lies beyond this message */
    return 1;
}

int nk_frame_next(nk_frame_decoder *d, const char **msg, size_t *len)
{
    if (d->kind == NK_FRAME_LINE)
        return next_line(d, msg, len);
    if (d->kind == NK_FRAME_LEN32)
        return next_len32(d, msg, len);
    return fail(d, -EINVAL);
}
