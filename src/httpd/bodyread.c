/* Request bodies streamed to their handler (NK_HTTPD_STREAM_BODY routes).
 *
 * Such a route claims the body at head time with the sink below and runs its handler there,
 * before any body byte is taken. From nk_httpd_ex_body_read on, take_body (conn.c) gives the
 * decoded pieces to the sink as they arrive, which hands them to the handler's on_data: the
 * connection buffer holds the head and at most one read, so memory does not grow with the
 * body. Back-pressure is the connection not reading: while the handler has not started
 * reading, or paused, the exchange is "waiting" (conn.c), which takes the read interest away;
 * over HTTP/2 the stream's virtual connection then leaves its input unread, and h2stream.c
 * gives window back only as that input is read.
 *
 * Who is told what. A handler running on the connection (the head-time call and every
 * on_data call) has the connection marked busy, so an answer that fails to write only marks
 * it for closing; the close happens after the call. Exactly one final on_data call comes once
 * reading started: end 1 (then the exchange follows the NK_HTTPD_LATER rules) or end < 0 from
 * the sink's abort (then the exchange goes with the connection's state, its answer refused).
 * An answer before the end ends the calls: nothing more is read for that body, the
 * connection closes after the answer (the lingering close bounds what is drained).
 *
 * Views: the request's views point into the connection's read buffer, which must not move
 * while the body passes behind the head, so the buffer is given its full size once at head
 * time (head limit plus one read) and never grows or compacts after.
 */
#include "httpd/bodyread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct bodyrd {
    nk_httpd_body_fn on_data; /* NULL until nk_httpd_ex_body_read */
    void *arg;
    uint64_t max, got;
    uint64_t paused_at;       /* loop time of the pause (the total body deadline skips it) */
    int err;                  /* why the body stopped, for the last call (0: the client) */
    unsigned char paused, failed;
} bodyrd;

static nk__sink_step rd_data(nk__conn *c, const char *p, size_t n, nk__status *status);
static nk__outcome rd_end(nk__conn *c, const nk_http_request *req);
static void rd_abort(nk__conn *c);
static const nk__sink rd_sink = {rd_data, rd_end, rd_abort};

int nk__bodyrd_active(const nk__ex *x)
{
    return x->sink == &rd_sink;
}

int nk__bodyrd_paused(const nk__ex *x)
{
    return x->sink == &rd_sink && ((const bodyrd *)x->sink_state)->paused;
}

static bodyrd *state_of(const nk__ex *x)
{
    return x->sink == &rd_sink ? x->sink_state : NULL;
}

static void drop_state(nk__ex *x)
{
    if (x->sink == &rd_sink)
        x->sink = NULL;
    free(x->sink_state);
    x->sink_state = NULL;
}

/* The engine's scratch (log line, HEAD) belongs to this request while its handler runs. */
static void enter(nk__conn *c)
{
    nk__ex *x = c->x;
    x->req = &x->request;
    c->srv->req_is_head = x->request.method == NK_HTTP_HEAD;
    nk__conn_log_fields(c, x->req);
}

static int body_pending(const nk__ex *x)
{
    return x->body_left || x->chunked_active;
}

/* The request is over without the rest of its body: close once the answer is out. */
static void stop_body(nk__conn *c)
{
    nk__ex *x = c->x;
    c->close_after = 1;
    c->linger_needed = 1;
    x->head_len = 0;
    x->body_left = 0;
    x->chunked_active = 0;
    nk_buf_clear(&x->in); /* the log line points at these bytes: clearing only forgets them */
}

void nk__bodyrd_answering(nk__conn *c)
{
    if (body_pending(c->x))
        c->close_after = 1; /* the answer says Connection: close: the rest is not read */
}

nk__outcome nk__bodyrd_answered(nk__conn *c)
{
    nk__ex *x = c->x;
    drop_state(x);
    x->later = 0;
    if (c->close_pending) {
        nk__conn_close(c);
        return NK__CLOSED;
    }
    if (body_pending(x)) {
        stop_body(c);
        return NK__DONE;
    }
    /* The body was whole (paused before its end was told): the connection goes on. */
    c->requests++;
    c->srv->stats.requests++;
    nk_buf_consume(&x->in, x->head_len);
    x->head_len = 0;
    return NK__DONE;
}

/* ---- head time ------------------------------------------------------------------------------ */

/* The handler did not claim the body: the engine answers status. */
static nk__outcome refused(nk__status *status, nk__status answer)
{
    *status = answer;
    return NK__DONE;
}

nk__outcome nk__bodyrd_begin(nk__conn *c, const nk_http_request *req, nk_httpd_handler handler,
                             void *arg, nk__status *status)
{
    nk__ex *x = c->x;
    nk_httpd *srv = c->srv;
    (void)req; /* it is x->request, parsed again below once the buffer is in place */
    if (nk_buf_reserve(&x->in, x->in.max - nk_buf_len(&x->in)) < 0)
        return refused(status, 503);
    int parse_status = 0;
    if (nk_http_parse_request(nk_buf_rptr(&x->in), x->head_len, 0, &srv->cfg.limits,
                              &x->request, &parse_status) < 0)
        return refused(status, 400); /* cannot happen: the same bytes parsed a moment ago */
    bodyrd *st = calloc(1, sizeof *st);
    if (!st)
        return refused(status, 503);
    x->sink = &rd_sink;
    x->sink_state = st;
    x->route = NULL; /* run here, not again after the body */
    x->answered = 0;
    nk_buf_clear(&x->hdrs);
    enter(c);
    c->busy = 1;
    int r = handler(x, arg);
    c->busy = 0;
    if (c->close_pending || x->answered)
        return nk__bodyrd_answered(c);
    if (r == NK_HTTPD_LATER) {
        /* Not reading yet: the connection waits for nk_httpd_ex_body_read or the answer. */
        x->later = (unsigned char)(st->on_data == NULL);
        return NK__DONE;
    }
    if (st->on_data) {
        /* Reading began, so the last call is owed (the handler frees what arg holds there),
         * though no byte came: too late to decline, and DONE without an answer or an error
         * fails the request as before reading. */
        st->err = -ECANCELED;
        rd_abort(c);
        x->sink = NULL;
        x->answered = 0; /* rd_abort refused the handler's answers; the engine's is 500 */
        return refused(status, 500);
    }
    drop_state(x);
    if (r == NK_HTTPD_NEXT)
        return NK__PASS;
    return refused(status, 500); /* DONE without an answer, or an error */
}

/* ---- the body ---------------------------------------------------------------------------------- */

/* One on_data call on the connection: NK__SINK_MORE, NK__SINK_ANSWERED or NK__SINK_PAUSED,
 * and *failed set when the handler gave up (a negative errno, whichever: none of them can be
 * taken for a step). */
static nk__sink_step deliver(nk__conn *c, const char *p, size_t n, int end, int *failed)
{
    nk__ex *x = c->x;
    bodyrd *st = x->sink_state;
    enter(c);
    c->busy = 1;
    int r = st->on_data(x, p, n, end, st->arg);
    c->busy = 0;
    *failed = 0;
    if (c->close_pending || x->answered)
        return NK__SINK_ANSWERED;
    if (r < 0) {
        *failed = 1;
        return NK__SINK_MORE;
    }
    if (r == NK_HTTPD_LATER && !end) {
        st->paused = 1;
        st->paused_at = nk_loop_now(c->srv->loop);
    }
    return st->paused && !end ? NK__SINK_PAUSED : NK__SINK_MORE;
}

static nk__sink_step rd_data(nk__conn *c, const char *p, size_t n, nk__status *status)
{
    bodyrd *st = c->x->sink_state;
    if (n > st->max - st->got) {
        st->err = -EFBIG; /* told by the abort that follows the engine's 413 */
        *status = 413;
        return NK__SINK_REFUSED;
    }
    st->got += n;
    int failed;
    nk__sink_step step = deliver(c, p, n, 0, &failed);
    if (failed) {
        st->failed = 1; /* the handler gave up: 500, and no last call */
        *status = 500;
        return NK__SINK_REFUSED;
    }
    return step;
}

static nk__outcome rd_end(nk__conn *c, const nk_http_request *req)
{
    nk__ex *x = c->x;
    (void)req; /* x->request, parsed again by finish_request */
    int failed;
    deliver(c, NULL, 0, 1, &failed);
    drop_state(x);
    if (c->close_pending) {
        nk__conn_close(c);
        return NK__CLOSED;
    }
    if (x->answered)
        return NK__DONE;
    if (failed)
        return nk__respond_error(c, 500, NULL);
    x->later = 1; /* the head stays until the answer (nk__conn_after_later) */
    return NK__DONE;
}

static void rd_abort(nk__conn *c)
{
    nk__ex *x = c->x;
    bodyrd *st = x->sink_state;
    if (st && st->on_data && !st->failed && !x->answered) {
        /* The last call: ex is over for the handler, whose answer is refused (answered). */
        x->answered = 1;
        x->later = 0;
        nk__conn *keep = x->conn;
        x->conn = NULL; /* nk_httpd_ex_alive: 0 */
        st->on_data(x, NULL, 0, st->err ? st->err : -ECONNRESET, st->arg);
        x->conn = keep;
    }
    free(st);
    x->sink_state = NULL;
}

/* ---- the public calls ------------------------------------------------------------------------ */

/* c's exchange is ex and streams its body: its state, else NULL. */
static bodyrd *reading_state(nk_httpd_ex *ex)
{
    nk__conn *c = ex ? ex->conn : NULL;
    if (!c || c->x != ex || ex->answered || c->close_pending)
        return NULL;
    return state_of(ex);
}

/* Let the connection act on a change: at once when no handler runs on it (else when that
 * handler returns), and on_data only from the loop's next turn. */
static void wake(nk__conn *c)
{
    if (!c->busy)
        nk__conn_kick(c);
}

int nk_httpd_ex_body_read(nk_httpd_ex *ex, uint64_t max, nk_httpd_body_fn on_data, void *arg)
{
    if (ex && !ex->conn)
        return -ENOTCONN;
    bodyrd *st = reading_state(ex);
    if (!st || !on_data || st->on_data)
        return -EINVAL;
    nk__conn *c = ex->conn;
    nk_httpd *srv = c->srv;
    if (!max)
        max = srv->cfg.max_body;
    if (ex->request.content_length > 0 && (uint64_t)ex->request.content_length > max)
        return -EFBIG;
    st->on_data = on_data;
    st->arg = arg;
    st->max = max;
    ex->later = 0;
    ex->body_start_ms = nk_loop_now(srv->loop);
    ex->body_received = 0;
    if (body_pending(ex) && ex->request.expect_continue && !c->http10 &&
        nk_buf_len(&ex->in) == ex->head_len) {
        /* RFC 9110 section 10.1.1: the client holds the body back until told to send it. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (nk_buf_append(&ex->out, cont, sizeof cont - 1) == 0)
            ex->seg.mem += sizeof cont - 1;
    }
    wake(c);
    return 0;
}

int nk_httpd_ex_body_pause(nk_httpd_ex *ex)
{
    bodyrd *st = reading_state(ex);
    if (!st || !st->on_data)
        return -EINVAL;
    if (!st->paused) {
        st->paused = 1;
        st->paused_at = nk_loop_now(ex->srv->loop);
        if (!ex->conn->busy)
            nk__conn_resume(ex->conn); /* the read interest goes now */
    }
    return 0;
}

int nk_httpd_ex_body_resume(nk_httpd_ex *ex)
{
    bodyrd *st = reading_state(ex);
    if (!st || !st->on_data)
        return -EINVAL;
    if (st->paused) {
        st->paused = 0;
        ex->body_start_ms += nk_loop_now(ex->srv->loop) - st->paused_at;
        wake(ex->conn);
    }
    return 0;
}
