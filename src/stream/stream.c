/* Buffered streams (see stream.h for the contract).
 *
 * Life cycle. Every entry from the loop (I/O, idle timer, defer) goes through enter/leave,
 * which count the stream's frames in depth. nk_stream_close stops the watchers and closes
 * the fd at once, but frees the memory only when depth is 0: when called from a callback, the
 * outermost leave frees it after the callback has returned. Every place that calls a callback
 * checks s->closing right after it.
 *
 * Reporting. Callbacks run only under the stream's own frames. What is detected inside a call
 * the user made (nk_stream_write passing the high-water mark or failing, nk_stream_shutdown
 * finishing both directions) is recorded in the pending flags and the stream's defer is
 * started; the flags are flushed at the next enter or leave, whichever comes first.
 */
#include <netkit/stream.h>
#include "core/extstruct.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define STREAM_DEFAULT_MSG_MAX (64 * 1024)
#define STREAM_DEFAULT_HIGH (64 * 1024)
/* One read per readiness event, into the stack: the loop stays fair between streams, and an
 * idle stream holds no input buffer. */
#define STREAM_READ_CHUNK 16384
/* A drained queue bigger than this gives its memory back (one burst must not pin it). */
#define STREAM_KEEP_CAP (64 * 1024)
#define EINTR_RETRIES 100

enum {
    PENDING_HIGH = 1u << 0,
    PENDING_DONE = 1u << 1,
    PENDING_ERROR = 1u << 2,
};

struct nk_stream {
    nk_loop *loop;
    nk_io io;
    nk_timer idle;
    nk_defer later;
    nk_stream_config cfg;
    nk_frame_decoder dec; /* framed streams only */
    nk_buf out;           /* the write queue; max is queue_max */
    int depth;            /* frames of this stream on the call stack */
    int err;              /* the error once failed */
    unsigned pending;     /* PENDING_*: events to report from the loop */
    unsigned closing : 1, failed : 1, eof : 1, above : 1, paused : 1, shut_wanted : 1,
        shut_done : 1, done_reported : 1;
    nk_stream *next, **prevp; /* group links */
};

static void destroy(nk_stream *s)
{
    if (s->cfg.frame)
        nk_frame_decoder_free(&s->dec);
    nk_buf_free(&s->out);
    free(s);
}

static void report_later(nk_stream *s, unsigned what)
{
    s->pending |= what;
    nk_defer_start(s->loop, &s->later);
}

/* The stream can do no more I/O: stop the watchers now, report once from the loop. */
static void fail(nk_stream *s, int err)
{
    if (s->failed || s->closing)
        return;
    s->failed = 1;
    s->err = err;
    nk_io_stop(s->loop, &s->io);
    nk_timer_stop(s->loop, &s->idle);
    report_later(s, PENDING_ERROR);
}

static void emit(nk_stream *s, int event, int err)
{
    if (!s->closing)
        s->cfg.on_event(s, event, err, s->cfg.arg);
}

static void emit_water(nk_stream *s, int mark)
{
    if (!s->closing && s->cfg.on_water)
        s->cfg.on_water(s, mark, s->cfg.arg);
}

/* Deliver the pending reports in causal order; a callback may add more (or close). */
static void flush_pending(nk_stream *s)
{
    while (s->pending && !s->closing) {
        if (s->pending & PENDING_ERROR) {
            s->pending = 0;
            emit(s, NK_STREAM_ERROR, s->err);
        } else if (s->pending & PENDING_HIGH) {
            s->pending &= ~PENDING_HIGH;
            emit_water(s, NK_STREAM_HIGH);
        } else {
            s->pending &= ~PENDING_DONE;
            emit(s, NK_STREAM_DONE, 0);
        }
    }
}

static void touch(nk_stream *s)
{
    if (s->cfg.idle_ms && !s->failed && !s->closing)
        nk_timer_start(s->loop, &s->idle, s->cfg.idle_ms, 0);
}

static int may_read(const nk_stream *s)
{
    return !s->closing && !s->failed && !s->eof && !s->paused && !s->above;
}

static void update_interest(nk_stream *s)
{
    if (s->closing || s->failed)
        return;
    unsigned want = 0;
    if (may_read(s) && !(s->cfg.frame && s->dec.failed))
        want |= NK_READ;
    if (nk_buf_len(&s->out))
        want |= NK_WRITE;
    int rc = nk_io_start(s->loop, &s->io, want);
    if (rc < 0)
        fail(s, rc);
}

static void enter(nk_stream *s)
{
    s->depth++;
    flush_pending(s);
}

static void leave(nk_stream *s)
{
    flush_pending(s);
    update_interest(s);
    if (--s->depth == 0 && s->closing)
        destroy(s);
}

static void shut_now(nk_stream *s)
{
    if (shutdown(s->io.fd, SHUT_WR) < 0 && errno != ENOTCONN) {
        fail(s, -errno);
        return;
    }
    s->shut_done = 1;
    if (s->eof && !s->done_reported) {
        s->done_reported = 1;
        report_later(s, PENDING_DONE);
    }
}

/* After bytes were added to the queue (and maybe partly sent). */
static void queued_more(nk_stream *s)
{
    if (!s->above && nk_buf_len(&s->out) > s->cfg.high_water) {
        s->above = 1;
        report_later(s, PENDING_HIGH);
    }
    update_interest(s);
}

/* Bytes went out: the idle timer starts over, the low-water mark may be reached, and a
 * requested shutdown happens once everything is out. */
static void sent_some(nk_stream *s, ssize_t n)
{
    if (n > 0)
        touch(s);
    size_t left = nk_buf_len(&s->out);
    if (left == 0 && s->out.cap > STREAM_KEEP_CAP)
        nk_buf_free(&s->out);
    if (s->above && left <= s->cfg.low_water && s->depth > 0) {
        flush_pending(s); /* a HIGH still pending goes first; its callback may write more */
        if (!s->closing && nk_buf_len(&s->out) <= s->cfg.low_water) {
            s->above = 0;
            emit_water(s, NK_STREAM_LOW);
        }
    }
    if (left == 0 && s->shut_wanted && !s->shut_done && !s->closing)
        shut_now(s);
}

static void handle_write(nk_stream *s)
{
    ssize_t n = nk_buf_write_fd(&s->out, s->io.fd);
    if (n < 0 && n != -EAGAIN) {
        fail(s, (int)n);
        return;
    }
    sent_some(s, n);
}

/* Framed: hand out the whole messages received, while reading is allowed. */
static void deliver(nk_stream *s)
{
    while (s->cfg.frame && may_read(s)) {
        const char *msg;
        size_t len;
        int rc = nk_frame_next(&s->dec, &msg, &len);
        if (rc == 0)
            return;
        if (rc < 0) {
            fail(s, rc);
            return;
        }
        s->cfg.on_read(s, msg, len, s->cfg.arg);
    }
}

static void handle_read(nk_stream *s)
{
    deliver(s); /* messages left from a pause come before newer bytes */
    if (!may_read(s) || (s->cfg.frame && s->dec.failed))
        return;
    char chunk[STREAM_READ_CHUNK];
    ssize_t n = -1;
    for (int i = 0; i < EINTR_RETRIES && n < 0; i++) {
        n = read(s->io.fd, chunk, sizeof chunk);
        if (n < 0 && errno != EINTR)
            break;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            fail(s, -errno);
        return;
    }
    if (n == 0) {
        s->eof = 1;
        emit(s, NK_STREAM_EOF, s->cfg.frame && nk_frame_pending(&s->dec) ? -EBADMSG : 0);
        if (s->shut_done && !s->done_reported && !s->closing && !s->failed) {
            s->done_reported = 1;
            emit(s, NK_STREAM_DONE, 0);
        }
        return;
    }
    touch(s);
    if (!s->cfg.frame) {
        s->cfg.on_read(s, chunk, (size_t)n, s->cfg.arg);
        return;
    }
    /* A feed error (-EMSGSIZE) is sticky in the decoder: next reports it after the messages
     * that were complete before it, so it comes out of deliver in order. */
    (void)nk_frame_feed(&s->dec, chunk, (size_t)n);
    deliver(s);
}

static void on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    (void)loop;
    nk_stream *s = io->data;
    enter(s);
    if ((events & (NK_WRITE | NK_ERROR)) && nk_buf_len(&s->out) && !s->closing && !s->failed)
        handle_write(s);
    if ((events & (NK_READ | NK_ERROR)) && !s->closing && !s->failed)
        handle_read(s);
    leave(s);
}

static void on_idle(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    nk_stream *s = t->data;
    enter(s);
    if (!s->failed)
        emit(s, NK_STREAM_TIMEOUT, -ETIMEDOUT);
    leave(s);
}

static void on_later(nk_loop *loop, nk_defer *d)
{
    (void)loop;
    nk_stream *s = d->data;
    enter(s);
    deliver(s); /* messages waiting since reading was resumed */
    leave(s);
}

int nk_stream_new(nk_loop *loop, int fd, const nk_stream_config *cfg, nk_stream **out)
{
    if (out)
        *out = NULL;
    if (!loop || !cfg)
        return -EINVAL;
    nk_stream_config c = {0}; /* zero: every field's default */
    int rc = nk__ext_copy(&c, sizeof c, cfg);
    if (rc < 0)
        return rc;
    if (!c.on_read || !c.on_event)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (c.frame != 0 && c.frame != NK_FRAME_LINE && c.frame != NK_FRAME_LEN32)
        return -EINVAL;
    if (c.msg_max == 0)
        c.msg_max = STREAM_DEFAULT_MSG_MAX;
    if (c.high_water == 0)
        c.high_water = STREAM_DEFAULT_HIGH;
    if (c.low_water >= c.high_water)
        return -EINVAL;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return -errno;
    nk_stream *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->cfg = c;
    if (c.frame)
        nk_frame_decoder_init(&s->dec, (nk_frame_kind)c.frame, c.msg_max);
    nk_buf_init(&s->out, c.queue_max);
    nk_io_init(&s->io, fd, on_io, s);
    nk_timer_init(&s->idle, on_idle, s);
    nk_defer_init(&s->later, on_later, s);
    rc = nk_io_start(loop, &s->io, NK_READ);
    if (rc < 0) {
        destroy(s);
        return rc;
    }
    touch(s);
    if (c.group) {
        s->next = c.group->first;
        if (s->next)
            s->next->prevp = &s->next;
        s->prevp = &c.group->first;
        c.group->first = s;
        c.group->count++;
    }
    if (out)
        *out = s;
    return 0;
}

void nk_stream_close(nk_stream *s)
{
    if (!s || s->closing)
        return;
    s->closing = 1;
    if (s->prevp) {
        if (s->next)
            s->next->prevp = s->prevp;
        *s->prevp = s->next;
        s->cfg.group->count--;
        s->prevp = NULL;
    }
    /* Watchers before the fd: the number may be handed out again at once. */
    nk_io_stop(s->loop, &s->io);
    nk_timer_stop(s->loop, &s->idle);
    nk_defer_stop(s->loop, &s->later);
    close(s->io.fd);
    if (s->depth == 0)
        destroy(s);
}

/* Why a write cannot be accepted at all, or 0. */
static int write_refused(const nk_stream *s)
{
    if (s->closing)
        return -EBADF;
    if (s->failed)
        return s->err;
    if (s->shut_wanted)
        return -EPIPE;
    return 0;
}

/* The queue was empty: try the socket at once, which saves a loop iteration. */
static void send_queue_now(nk_stream *s)
{
    ssize_t n = nk_buf_write_fd(&s->out, s->io.fd);
    if (n < 0 && n != -EAGAIN)
        fail(s, (int)n);
    else
        sent_some(s, n);
}

int nk_stream_write(nk_stream *s, const void *data, size_t len)
{
    int rc = write_refused(s);
    if (rc < 0 || len == 0)
        return rc;
    size_t queued = nk_buf_len(&s->out);
    if (s->cfg.queue_max && (len > s->cfg.queue_max || queued > s->cfg.queue_max - len))
        return -ENOBUFS;
    size_t done = 0;
    if (queued == 0) {
        /* Straight from the caller's bytes: the queue only takes what the socket refuses. */
        ssize_t n = send(s->io.fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(s->io.fd, data, len);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            rc = -errno;
            fail(s, rc);
            return rc;
        }
        if (n > 0) {
            done = (size_t)n;
            sent_some(s, n);
        }
    }
    rc = nk_buf_append(&s->out, (const char *)data + done, len - done);
    if (rc < 0) {
        if (done) /* part of it is on the wire: the stream cannot go on */
            fail(s, rc);
        return rc;
    }
    queued_more(s);
    return 0;
}

int nk_stream_write_msg(nk_stream *s, const void *msg, size_t len)
{
    int rc = write_refused(s);
    if (rc < 0)
        return rc;
    if (!s->cfg.frame)
        return -EINVAL;
    size_t queued = nk_buf_len(&s->out);
    /* nk_frame_encode reserves the whole frame first: on failure nothing was queued. */
    rc = nk_frame_encode((nk_frame_kind)s->cfg.frame, msg, len, s->cfg.msg_max, &s->out);
    if (rc < 0)
        return rc;
    if (queued == 0)
        send_queue_now(s);
    if (!s->failed)
        queued_more(s);
    return s->failed ? s->err : 0;
}

int nk_stream_shutdown(nk_stream *s)
{
    if (s->closing)
        return -EBADF;
    if (s->failed)
        return s->err;
    if (s->shut_wanted)
        return 0;
    s->shut_wanted = 1;
    if (nk_buf_len(&s->out) == 0)
        shut_now(s);
    return s->failed ? s->err : 0;
}

void nk_stream_read_enable(nk_stream *s, int on)
{
    if (s->closing || s->failed || s->paused == !on)
        return;
    s->paused = !on;
    if (on && s->cfg.frame)
        nk_defer_start(s->loop, &s->later); /* messages received before the pause */
    update_interest(s);
}

void nk_stream_set_idle(nk_stream *s, uint64_t idle_ms)
{
    s->cfg.idle_ms = idle_ms;
    if (idle_ms)
        touch(s);
    else
        nk_timer_stop(s->loop, &s->idle);
}

size_t nk_stream_queued(const nk_stream *s) { return nk_buf_len(&s->out); }
int nk_stream_fd(const nk_stream *s) { return s->io.fd; }
void *nk_stream_arg(const nk_stream *s) { return s->cfg.arg; }
nk_stream *nk_stream_next(const nk_stream *s) { return s->next; }

void nk_stream_group_close(nk_stream_group *g)
{
    /* The next one is read before each close, which unlinks (and may free) the current. */
    for (nk_stream *s = g->first, *next; s; s = next) {
        next = s->next;
        nk_stream_close(s);
    }
}
