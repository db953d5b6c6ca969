/* A growable byte buffer with a read position and a write position.
 *
 *   data[0 .. rpos)      consumed, reclaimed by compaction
 *   data[rpos .. wpos)   readable bytes (nk_buf_len)
 *   data[wpos .. cap)    writable space
 *
 * The buffer never grows past its max; nk_buf_reserve then fails with -ENOBUFS, which lets
 * every client-controlled size have a limit. The memory is the caller's to release with
 * nk_buf_free; nk_buf_release gives it back while keeping the buffer usable (for idle
 * connections).
 */
#ifndef NETKIT_BUF_H
#define NETKIT_BUF_H

#include <stddef.h>
#include <sys/types.h>
#include <errno.h>
#include <netkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

typedef struct nk_buf {
    char *data;
    size_t cap;
    size_t rpos;
    size_t wpos;
    size_t max; /* upper bound for cap; 0 means SIZE_MAX */
} nk_buf;

/* An empty buffer that may grow to max bytes (0: no limit); nk_buf_free releases it. */
void nk_buf_init(nk_buf *b, size_t max);
void nk_buf_free(nk_buf *b);
/* Free the memory if no readable bytes remain (readable bytes are kept); the buffer stays
 * initialised. */
void nk_buf_release(nk_buf *b);

/* Readable bytes. */
static inline size_t nk_buf_len(const nk_buf *b) { return b->wpos - b->rpos; }
/* A buffer that never held memory has data NULL: adding even 0 to it is undefined, so the
 * pointers are NULL then (with length 0, which every caller checks). */
static inline char *nk_buf_rptr(const nk_buf *b) { return b->data ? b->data + b->rpos : NULL; }
static inline char *nk_buf_wptr(const nk_buf *b) { return b->data ? b->data + b->wpos : NULL; }
static inline size_t nk_buf_space(const nk_buf *b) { return b->cap - b->wpos; }

/* Make at least n bytes writable at wptr (compacting or growing). -ENOBUFS past max, -ENOMEM. */
int nk_buf_reserve(nk_buf *b, size_t n);
/* Mark n bytes written at wptr as readable. */
void nk_buf_commit(nk_buf *b, size_t n);
/* Drop n readable bytes from the front (n <= len). */
void nk_buf_consume(nk_buf *b, size_t n);
void nk_buf_clear(nk_buf *b);

/* Append returns 0, printf the number of bytes appended; -ENOBUFS past max, -ENOMEM. */
int nk_buf_append(nk_buf *b, const void *src, size_t n);
int nk_buf_append_str(nk_buf *b, const char *s);
int nk_buf_printf(nk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Read from fd into the buffer (at most max_read bytes, 0 meaning 64 KiB; reserves space as
 * needed, and reads less when only that much fits under max).
 * Returns bytes read, 0 at end of file, or a negative error (-EAGAIN, -ENOBUFS, ...). */
ssize_t nk_buf_read_fd(nk_buf *b, int fd, size_t max_read);
/* Write readable bytes to fd and consume what was written. Returns bytes written or a
 * negative error (-EAGAIN, -EPIPE, ...). */
ssize_t nk_buf_write_fd(nk_buf *b, int fd);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
