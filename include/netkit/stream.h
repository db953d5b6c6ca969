/* Buffered streams: a connected stream socket on a loop, with a write queue, water marks,
 * half-close, optional message framing and an idle timeout.
 *
 * An nk_stream owns one connected non-blocking stream socket (TCP, a Unix stream socket, one
 * end of a socketpair) from nk_stream_new to nk_stream_close. It reads whatever arrives and
 * hands it to on_read: raw bytes as they came, or, with framing (NK_FRAME_LINE or
 * NK_FRAME_LEN32, see frame.h), one whole message per call. Writes go to the socket at once
 * when it takes them; what it does not take waits in the stream's queue and is written as the
 * socket drains.
 *
 * Allocated, not embedded: nk_stream_close is allowed from inside any of the stream's own
 * callbacks, and the stream's code still runs after such a callback returns. Were the struct
 * embedded in the caller's memory, the caller could not free that memory until some later
 * "closed" callback; allocated, the stream frees itself once its callbacks have returned (a
 * closing flag checked after every callback, the free done by the outermost frame), and the
 * caller may free its own state right after nk_stream_close. One allocation per connection is
 * small next to the socket's kernel buffers.
 *
 * Back-pressure with water marks: when the queue grows past high_water, on_water is called with
 * NK_STREAM_HIGH and the stream stops reading from the peer (a peer that does not read our
 * answers cannot make us produce more of them); once the queue has drained to low_water,
 * on_water gets NK_STREAM_LOW and reading resumes. HIGH and LOW strictly alternate, HIGH first.
 * queue_max, when set, is a hard limit: a write that would pass it is refused (-ENOBUFS,
 * nothing queued).
 *
 * Callbacks are only ever called from the loop, never from inside nk_stream_* calls: a write
 * that fails or passes the high-water mark is reported from the loop afterwards, so code that
 * writes to many streams (a broadcast) never sees one of them closed under it by a callback.
 * After nk_stream_close no callback of that stream is called again.
 *
 * Errors are negative errno values. The library never prints. Threading: as the loop's.
 */
#ifndef NETKIT_STREAM_H
#define NETKIT_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <netkit/addr.h>
#include <netkit/loop.h>
#include <netkit/frame.h>
#include <netkit/api.h>

#ifdef __cplusplus
extern "C" {
#endif
NK_API_BEGIN

typedef struct nk_stream nk_stream;

/* Events for on_event. After NK_STREAM_ERROR nothing more is read or written: close it. */
enum {
    NK_STREAM_EOF = 1,     /* the peer finished sending. err 0, or -EBADMSG when the stream
                              ended inside a message (framing). The queue still drains. */
    NK_STREAM_DONE = 2,    /* both directions finished: peer EOF seen and our shutdown sent */
    NK_STREAM_ERROR = 3,   /* err: -ECONNRESET, -EPIPE, -EMSGSIZE (message over msg_max), ... */
    NK_STREAM_TIMEOUT = 4  /* nothing read or written for idle_ms (err -ETIMEDOUT); the timer
                              starts again with the next activity */
};

/* Marks for on_water. */
enum { NK_STREAM_HIGH = 1, NK_STREAM_LOW = 2 };

typedef void (*nk_stream_read_cb)(nk_stream *s, const char *data, size_t len, void *arg);
typedef void (*nk_stream_event_cb)(nk_stream *s, int event, int err, void *arg);
typedef void (*nk_stream_water_cb)(nk_stream *s, int mark, void *arg);

/* A caller-owned set of open streams (zero-initialised): a server's connections, to walk for a
 * broadcast or to close at exit. A stream leaves its group when it is closed. */
typedef struct nk_stream_group {
    nk_stream *first; /* read-only: walk with nk_stream_next */
    size_t count;     /* read-only: open streams in the group */
} nk_stream_group;

/* Zero means the default for every field but size and the callbacks. Extensible
 * (docs/library.md, "Config structs"): size is the caller's sizeof(nk_stream_config), set by
 * nk_stream_config_init or written in the initializer ({.size = sizeof cfg, ...}); fields are
 * only ever added at the end, and nk_stream_new gives an older caller's missing ones their
 * default. */
typedef struct nk_stream_config {
    size_t size;                 /* required: sizeof(nk_stream_config) of the caller */
    nk_stream_read_cb on_read;   /* required: data (valid during the call only) */
    nk_stream_event_cb on_event; /* required */
    nk_stream_water_cb on_water; /* optional */
    void *arg;                   /* passed to the callbacks */
    int frame;                   /* 0: raw bytes; NK_FRAME_LINE or NK_FRAME_LEN32 */
    size_t msg_max;              /* framing: largest message, in and out; 0: 64 KiB */
    size_t high_water;           /* queue bytes above which reading pauses; 0: 64 KiB */
    size_t low_water;            /* queue bytes at or below which it resumes (< high_water) */
    size_t queue_max;            /* hard limit on queued bytes (-ENOBUFS); 0: none */
    uint64_t idle_ms;            /* NK_STREAM_TIMEOUT after this long without I/O; 0: never */
    nk_stream_group *group;      /* optional: the stream joins it until closed */
} nk_stream_config;

/* Zero cfg and set its size: then set the callbacks and what differs from the defaults. */
static inline void nk_stream_config_init(nk_stream_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
}

/* Wrap fd (made non-blocking if it was not). On success the stream owns fd and closes it;
 * on failure fd is still the caller's. out may be NULL (when a group keeps track). The config
 * is copied. Errors: -EINVAL (size 0, missing callback, bad frame kind, low_water >=
 * high_water), -E2BIG (a newer caller's struct setting a field this library does not know),
 * -EBADF, -ENOMEM, and nk_io_start's (-ERANGE on select for fd >= FD_SETSIZE). */
int nk_stream_new(nk_loop *loop, int fd, const nk_stream_config *cfg, nk_stream **out);

/* Stop everything, drop what is still queued, close the fd, free the stream (after its own
 * callbacks have returned, when called from one of them). Safe from any callback; NULL is a
 * no-op. For a graceful end, nk_stream_shutdown and close on NK_STREAM_DONE. */
void nk_stream_close(nk_stream *s);

/* Send bytes, queueing what the socket does not take now. Returns 0, or: -ENOBUFS (queue_max
 * would be passed; nothing queued), -EPIPE (after nk_stream_shutdown), the stream's error
 * once it has failed, -ENOMEM. */
int nk_stream_write(nk_stream *s, const void *data, size_t len);

/* Send one message framed as the stream's frame kind. As nk_stream_write, plus -EINVAL (raw
 * stream, or "\n" inside a LINE message) and -EMSGSIZE (len > msg_max). Never half a frame. */
int nk_stream_write_msg(nk_stream *s, const void *msg, size_t len);

/* Half-close: no more writes; once the queue is empty the socket is shut for writing (the
 * peer reads everything queued, then EOF). Reading goes on; NK_STREAM_DONE comes when the
 * peer's EOF has also been seen. Returns 0 or a negative error. */
int nk_stream_shutdown(nk_stream *s);

/* Pause (on = 0) or resume (on = 1) reading, e.g. while another stream this one feeds is above
 * its high-water mark. Messages already received wait while paused. */
void nk_stream_read_enable(nk_stream *s, int on);

/* Change the idle timeout (0: none); restarts the timer. */
void nk_stream_set_idle(nk_stream *s, uint64_t idle_ms);

size_t nk_stream_queued(const nk_stream *s); /* bytes waiting in the queue */
int nk_stream_fd(const nk_stream *s);      /* the socket (still the stream's) */
void *nk_stream_arg(const nk_stream *s);    /* config.arg */
/* The next stream of the same group, NULL at the end. When the walk may close streams, take
 * the next one before closing the current one. */
nk_stream *nk_stream_next(const nk_stream *s);
/* Close every stream of the group (nk_stream_close each). */
void nk_stream_group_close(nk_stream_group *g);

/* ---- Listening: every accepted connection becomes a stream -------------------------------- */

typedef struct nk_stream_listener nk_stream_listener;

/* Listen on addr (a TCP or unix stream socket, as nk_sock_listen with the default backlog) and
 * wrap every connection accepted there in a stream with cfg (copied; cfg->arg is every
 * stream's arg, cfg->group collects them). Accepting goes through an nk_acceptor (netkit/
 * sock.h): bounded batches per readiness event, a pause when descriptors run out. A
 * connection that cannot become a stream (nk_stream_new fails) is closed. Errors: -EINVAL (no
 * out, loop, addr or cfg, size 0, missing callback), -E2BIG (as nk_stream_new), -ENOMEM, and
 * nk_sock_listen's and nk_io_start's. */
int nk_stream_listen(nk_loop *loop, const nk_addr *addr, const nk_stream_config *cfg,
                     nk_stream_listener **out);
/* The address listened on (the real port when port 0 was asked for). */
int nk_stream_listener_addr(const nk_stream_listener *l, nk_addr *out);
/* Stop accepting and close the listening socket; the streams already made stay open. Safe
 * from any callback; NULL is a no-op. */
void nk_stream_listener_free(nk_stream_listener *l);

NK_API_END
#ifdef __cplusplus
}
#endif

#endif
