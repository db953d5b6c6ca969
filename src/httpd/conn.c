/* One client connection: read -> parse -> (read the body) -> respond -> keep-alive or close.
 *
 * Ordering: a pipelined request is not parsed until the previous response is fully written,
 * so responses leave in request order and output per connection stays bounded.
 * Bodies: the server must find where a body ends to find the next request (RFC 9112 section
 * 6.3). While a body is read its head stays at the front of the buffer (parsed again
 * afterwards) and body bytes are taken out behind it as they arrive, so the buffer never holds
 * more than the head and one read. By default they are discarded and the request is answered
 * after its body; a handler that wants the body claims it at head time as a sink
 * (nk__sink in internal.h: data pieces, then end, or abort when it cannot complete).
 * Closing: after an error or with unread input, the write side is shut first and what the
 * client still sends is drained for a short time ("lingering close"), because closing with
 * unread data makes the kernel send a reset that can destroy the response in flight.
 */
#include "internal.h"
#include "httpd/bodyread.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINGER_MS 2000
/* On shutdown an idle keep-alive connection gets this long (or its idle or header timeout, if
 * shorter) for one more request, answered with Connection: close, instead of being closed at
 * once: a balancer's pooled connection on which a request was already under way as the drain
 * began then gets its answer, not a closed connection to retry elsewhere. */
#define LAST_CALL_MS 1000
#define LINGER_MAX_BYTES (1024 * 1024)

/* What an event achieved: a send deadline is renewed only by bytes the client took, a body
 * deadline only by bytes it sent (else a client that never reads could keep a response alive
 * by trickling bytes in). */
enum { PROGRESS_WRITE = 1, PROGRESS_READ = 2 };

static void conn_update(nk__conn *c, int progress);
static nk__outcome conn_process(nk__conn *c);

/* ---- pools: read buffers and exchange states ---------------------------------------------- */

static int in_acquire(nk__conn *c)
{
    nk_httpd *srv = c->srv;
    nk_buf *in = &c->x->in;
    if (in->data)
        return 0;
    if (srv->npool) {
        in->data = srv->pool[--srv->npool];
        in->cap = NK__POOL_BLOCK;
        in->rpos = in->wpos = 0;
        return 0;
    }
    return nk_buf_reserve(in, NK__POOL_BLOCK);
}

/* Give an empty read buffer back to the pool (or to malloc when the pool is full). */
static void in_release(nk__conn *c)
{
    nk_httpd *srv = c->srv;
    nk_buf *in = &c->x->in;
    if (!in->data || nk_buf_len(in))
        return;
    if (in->cap == NK__POOL_BLOCK) {
        if (!srv->pool)
            srv->pool = calloc(NK__POOL_MAX, sizeof *srv->pool);
        if (srv->pool && srv->npool < NK__POOL_MAX) {
            srv->pool[srv->npool++] = in->data;
            in->data = NULL;
            in->cap = in->rpos = in->wpos = 0;
            return;
        }
    }
    nk_buf_release(in);
}

/* Give c an exchange state, from the pool when one is free. 0 or -ENOMEM. */
static int ex_acquire(nk__conn *c)
{
    nk_httpd *srv = c->srv;
    if (c->x)
        return 0;
    nk__ex *x = srv->ex_pool;
    nk_buf out;
    nk_buf_init(&out, 0);
    if (x) {
        srv->ex_pool = x->next_free;
        srv->nex_pool--;
        out = x->out; /* the pooled exchange's output memory (see ex_drop) */
        memset(x, 0, offsetof(nk__ex, request)); /* the parser sets the request's fields */
    } else {
        x = calloc(1, sizeof *x);
        if (!x)
            return -ENOMEM;
    }
    nk_buf_init(&x->in, srv->cfg.limits.max_head + NK__POOL_BLOCK);
    x->out = out;
    nk_buf_init(&x->hdrs, 0);
    nk_buf_init(&x->rbody, 0);
    nk_buf_init(&x->piece, 0);
    x->file_fd = -1;
    x->conn = c;
    x->srv = srv;
    c->x = x;
    return 0;
}

/* Drop c's exchange state and everything it holds (the sink must be aborted first). */
static void ex_drop(nk__conn *c)
{
    nk_httpd *srv = c->srv;
    nk__ex *x = c->x;
    if (!x)
        return;
    if (x->job) {
        x->job->conn = NULL; /* the work completes; its answer has nobody to go to */
        x->job = NULL;
    }
    nk__gz_free(c);
    if (x->produce)
        nk__produce_abort(x); /* the body will not finish: the producer's last call */
    nk_buf_free(&x->piece);
    nk__ex_file_release(srv, x);
    free(x->segs);
    x->segs = NULL;
    c->x = NULL;
    if (nk__ex_release_handler(srv, x))
        return; /* a handler still answers it later: kept, with the request's bytes */
    c->x = x;
    x->in.rpos = x->in.wpos = 0;
    in_release(c);
    nk_buf_free(&x->in);
    /* A connection on operations writes every response through out (opconn.c): a pooled
     * exchange keeps a small one's memory, so a request costs no allocation there. */
    if (c->opc && x->out.cap <= NK__POOL_BLOCK && srv->nex_pool < NK__POOL_MAX)
        nk_buf_clear(&x->out);
    else
        nk_buf_free(&x->out);
    c->x = NULL;
    if (srv->nex_pool < NK__POOL_MAX) {
        x->next_free = srv->ex_pool;
        srv->ex_pool = x;
        srv->nex_pool++;
    } else {
        free(x);
    }
}

void nk__pool_free(nk_httpd *srv)
{
    for (size_t i = 0; i < srv->npool; i++)
        free(srv->pool[i]);
    free(srv->pool);
    srv->pool = NULL;
    srv->npool = 0;
    while (srv->ex_pool) {
        nk__ex *x = srv->ex_pool;
        srv->ex_pool = x->next_free;
        nk_buf_free(&x->out);
        free(x);
    }
    srv->nex_pool = 0;
}

/* ---- life cycle --------------------------------------------------------------------------- */

static int out_pending(const nk__conn *c)
{
    const nk__ex *x = c->x;
    return x && (x->seg.mem || x->seg.len || nk_buf_len(&x->fcopy) || x->iseg < x->nsegs || x->gz ||
                 (x->produce && !x->produce_paused));
}

/* Between requests with nothing buffered, pending or claimed: the state can go back. */
static int ex_is_idle(const nk__conn *c)
{
    const nk__ex *x = c->x;
    return !out_pending(c) && nk_buf_len(&x->in) == 0 && nk_buf_len(&x->out) == 0 &&
           x->head_len == 0 && !x->file && !x->sink && !x->early_status && !x->body_left &&
           !x->chunked_active && !x->job && !x->later && !x->produce && !c->lingering &&
           !c->close_after;
}

/* Work off the connection answers its request (a job, or a handler's LATER): the
 * connection reads nothing and has no timer meanwhile. */
static int waiting(const nk__conn *c)
{
    return c->x && (c->x->job || c->x->later || (c->x->produce && c->x->produce_paused) ||
                    nk__bodyrd_paused(c->x));
}

/* After processing: a client that has ended its side and has nothing left to be answered is
 * closed (a body cut short cannot be finished either); else the watchers and timer follow the
 * connection's state. Every path that processes input ends here: readiness, and the resumes
 * of work done off the loop (an answer made by a job or a file operation after the client's
 * end of stream was read would otherwise leave the connection open until its idle timeout). */
static void conn_settle(nk__conn *c, int progress)
{
    if (c->peer_eof && !out_pending(c) && !waiting(c)) {
        nk__conn_close(c);
        return;
    }
    conn_update(c, progress);
}

static void sink_abort(nk__conn *c)
{
    const nk__sink *sink = c->x ? c->x->sink : NULL;
    if (!sink)
        return;
    c->x->sink = NULL;
    sink->abort(c);
    c->x->sink_state = NULL;
}

/* ---- plaintext left inside OpenSSL --------------------------------------------------------
 * A TLS record decrypted into a buffer too small for it keeps the rest inside OpenSSL, and
 * the socket, already read, will not become readable for it. Such connections wait on
 * srv->kicks, which a zero timer walks on the next loop turn as if they had been readable. */

static void kick_remove(nk__conn *c)
{
    nk__conn **pp = &c->srv->kicks;
    while (*pp && *pp != c)
        pp = &(*pp)->kick_next;
    if (*pp)
        *pp = c->kick_next;
    c->kick_next = NULL;
    c->kicked = 0;
}

static void kick_add(nk__conn *c)
{
    nk_httpd *srv = c->srv;
    if (c->kicked)
        return;
    c->kicked = 1;
    c->kick_next = srv->kicks;
    srv->kicks = c;
    if (!nk_timer_active(&srv->kick_timer))
        nk_timer_start(srv->loop, &srv->kick_timer, 0, 0);
}

void nk__conn_kick(nk__conn *c)
{
    if (nk__conn_h2s(c))
        nk__h2s_kick(nk__conn_h2s(c)); /* run by its session */
    else
        kick_add(c);
}

static void on_io(nk_loop *loop, nk_io *io, unsigned events);

/* The TLS handshake chose HTTP/2 (ALPN "h2"). */
static int alpn_h2(const nk__conn *c)
{
    size_t n = 0;
    const char *p = c->srv->h2_on && c->tls ? nk_tls_alpn(c->tls, &n) : NULL;
    return p && n == 2 && memcmp(p, "h2", 2) == 0;
}

void nk__conn_on_kick(nk_loop *loop, nk_timer *t)
{
    nk_httpd *srv = t->data;
    /* Those on the list now, once each: one that joins again waits for the next turn. The
     * list stays whole while walked, so a connection closed meanwhile leaves it cleanly. */
    unsigned n = 0;
    for (const nk__conn *c = srv->kicks; c; c = c->kick_next)
        n++;
    while (n-- && srv->kicks) {
        nk__conn *c = srv->kicks;
        srv->kicks = c->kick_next;
        c->kick_next = NULL;
        c->kicked = 0;
        on_io(loop, &c->io, nk__conn_h2(c) || c->opc ? NK_READ | NK_WRITE : NK_READ);
    }
    if (srv->kicks && !nk_timer_active(&srv->kick_timer))
        nk_timer_start(loop, &srv->kick_timer, 0, 0);
}

void nk__conn_close(nk__conn *c)
{
    nk_httpd *srv = c->srv;
    if (c->busy) {
        /* A handler runs on c: freed when it has returned (nk__route_call). */
        c->close_pending = 1;
        return;
    }
    int is_stream = nk__conn_h2s(c) != NULL;
    sink_abort(c);
    if (nk__conn_h2(c))
        nk__h2_free(c); /* its streams end first */
    if (!nk__conn_h2s(c))
        nk_io_stop(srv->loop, &c->io);
    nk_timer_stop(srv->loop, &c->timer);
    if (c->kicked)
        kick_remove(c);
    nk__xp_close(c);
    nk__proxy_free(c);
    ex_drop(c);
    if (is_stream) {
        /* A stream's virtual connection: not one of the server's connections. */
        free(c);
        return;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    __atomic_fetch_sub(&srv->ctr->connections_open, 1, __ATOMIC_RELAXED);
    free(c);
    nk__httpd_conn_closed(srv);
}

/* The response that ends the connection is out: close, or shut the write side and drain. */
static void conn_finish(nk__conn *c)
{
    if (nk__conn_h2s(c) || c->peer_eof || (!c->linger_needed && nk_buf_len(&c->x->in) == 0)) {
        nk__conn_close(c);
        return;
    }
    nk__xp_shutdown_write(c);
    c->lingering = 1;
    nk_buf_clear(&c->x->in);
    conn_update(c, 0);
}

static unsigned phase_timeout(const nk__conn *c, nk__phase phase);

void nk__conn_shutdown(nk__conn *c)
{
    if (nk__conn_h2(c)) {
        nk__h2_shutdown(c);
        return;
    }
    if (!out_pending(c) && (!c->x || (c->x->head_len == 0 && !waiting(c))) && !c->lingering) {
        /* Idle, or in the middle of a head: the last call. A request that comes is answered
         * with Connection: close (the engine is shutting down); else the timer closes it. */
        unsigned ms = phase_timeout(c, (nk__phase)c->phase);
        nk_timer_start(c->srv->loop, &c->timer, ms ? ms : LAST_CALL_MS, 0);
        return;
    }
    c->close_after = 1;
    conn_update(c, 0);
}

/* ---- reading ------------------------------------------------------------------------------ */

static void linger_read(nk__conn *c)
{
    char sink[4096];
    /* A bounded batch per event, so one connection cannot hold the loop; what is left comes
     * with the next readiness event, within LINGER_MAX_BYTES and the linger timer. */
    for (int i = 0; i < 16; i++) {
        ssize_t n = nk__xp_recv(c, sink, sizeof sink);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            nk__conn_close(c); /* EOF or error: nothing more to drain */
            return;
        }
        c->x->linger_bytes += (uint64_t)n;
        if (c->x->linger_bytes > LINGER_MAX_BYTES) {
            nk__conn_close(c);
            return;
        }
    }
}

/* Read what the transport has into b (at most max bytes): the count, 0 at EOF, -EAGAIN. */
static ssize_t read_into(nk__conn *c, nk_buf *b, size_t max)
{
    if (!c->tls && !nk__conn_h2s(c) && !c->opc)
        return nk_buf_read_fd(b, c->io.fd, max);
    if (nk_buf_space(b) < max) {
        int rc = nk_buf_reserve(b, max);
        if (rc < 0)
            return rc;
    }
    ssize_t n = nk__xp_recv(c, nk_buf_wptr(b), max);
    if (n > 0)
        b->wpos += (size_t)n;
    return n;
}

/* Returns -1 when the connection was closed. */
static int conn_read(nk__conn *c)
{
    if (ex_acquire(c) < 0 || in_acquire(c) < 0) {
        nk__conn_close(c);
        return -1;
    }
    size_t room = c->x->in.max - nk_buf_len(&c->x->in);
    if (room == 0)
        return 0;
    ssize_t n = read_into(c, &c->x->in, room < NK__POOL_BLOCK ? room : NK__POOL_BLOCK);
    if (n == -EAGAIN) {
        /* Nothing came: an idle connection gives its buffer back to the pool at once, so
         * thousands of silent clients cost no buffer memory. */
        in_release(c);
        return 0;
    }
    if (n < 0) {
        nk__conn_close(c);
        return -1;
    }
    if (n == 0)
        c->peer_eof = 1;
    return 1;
}

/* ---- request handling --------------------------------------------------------------------- */

static nk__outcome respond_allow(nk__conn *c, nk__status status)
{
    nk__resp r;
    nk__resp_init(&r, status);
    r.allow = nk__resp_allow(c->srv);
    if (status == 204) {
        r.no_body = 1;
        return nk__respond(c, &r);
    }
    return nk__respond_error(c, status, "This resource does not allow this method.");
}

static int redirect_to_https(const nk__conn *c, const nk_http_request *req)
{
    return c->srv->https_port && !nk__conn_secure(c) && !nk__ops_is_path(c->srv, req);
}

/* A status decided at head time: 308 is the https redirect, the rest error pages. */
static nk__outcome answer_early(nk__conn *c, const nk_http_request *req, nk__status status)
{
    if (status == 308)
        return nk__respond_https_redirect(c, req);
    return nk__respond_error(c, status, NULL);
}

static nk__outcome handle(nk__conn *c, const nk_http_request *req)
{
    if (c->x->route && !c->x->early_status) {
        /* A route without a body to wait for (with one, the route's sink got here). */
        nk__outcome r = nk__route_call(c, req);
        if (r != NK__PASS)
            return r;
    }
    return nk__conn_handle(c, req);
}

nk__outcome nk__conn_handle(nk__conn *c, const nk_http_request *req)
{
    nk_httpd *srv = c->srv;
    if (c->x->early_status) {
        nk__status status = c->x->early_status;
        c->x->early_status = NK__NO_STATUS;
        return answer_early(c, req, status);
    }
    /* Credentials were checked at head time (gate, in begin_request), before any handler
     * could claim the request. */
    if (srv->cfg.cors && req->method == NK_HTTP_OPTIONS) {
        nk__outcome r = nk__cors_preflight(c, req);
        if (r != NK__PASS)
            return r;
    }
    if (srv->health_path) {
        nk__outcome r = nk__health_handle(c, req);
        if (r != NK__PASS)
            return r;
    }
    if (srv->cfg.status_path) {
        nk__outcome r = nk__status_handle(c, req);
        if (r != NK__PASS)
            return r;
    }
    switch (req->method) {
    case NK_HTTP_GET:
    case NK_HTTP_HEAD:
        return nk__static_handle(c, req);
    case NK_HTTP_OPTIONS:
        /* RFC 9110 section 9.3.7: describe the communication options; Allow says them. */
        return respond_allow(c, 204);
    case NK_HTTP_DELETE:
        if (srv->cfg.upload && !srv->cfg.echo)
            return nk__upload_delete(c, req);
        return respond_allow(c, 405);
    case NK_HTTP_UNKNOWN:
        /* RFC 9110 section 9.1: a method no route took and the server does not implement. */
        return nk__respond_error(c, 501, NULL);
    default:
        /* RFC 9110 section 15.5.6: 405 MUST carry Allow. TRACE is refused here too, since
         * echoing requests back can leak credentials to scripts (cross-site tracing). */
        return respond_allow(c, 405);
    }
}

void nk__conn_log_fields(nk__conn *c, const nk_http_request *req)
{
    nk_httpd *srv = c->srv;
    const char *start = req->method_name.p;
    const char *end = req->target.p + req->target.len;
    /* the request line as sent, up to and including the version */
    srv->log_line.p = start;
    srv->log_line.len = (size_t)(end - start) + 9;
    if (srv->cfg.access_log_fd < 0) {
        /* Only the access log shows them: no lookups per request when it is off. */
        srv->log_referer = srv->log_agent = (nk_str){NULL, 0};
        return;
    }
    const nk_http_header *h = nk_http_find_header(req, "Referer");
    srv->log_referer = h ? h->value : (nk_str){NULL, 0};
    h = nk_http_find_header(req, "User-Agent");
    srv->log_agent = h ? h->value : (nk_str){NULL, 0};
}

static void set_log_raw(nk__conn *c)
{
    /* A refused request: log its first line as far as it goes (bounded). */
    nk_httpd *srv = c->srv;
    const char *p = nk_buf_rptr(&c->x->in);
    size_t len = nk_buf_len(&c->x->in), n = 0;
    while (n < len && n < 256 && p[n] != '\r' && p[n] != '\n')
        n++;
    srv->log_line = (nk_str){p, n};
    srv->log_referer = srv->log_agent = (nk_str){NULL, 0};
}

/* A request that cannot be answered normally: answer status and close. */
static nk__outcome refuse(nk__conn *c, nk__status status)
{
    sink_abort(c);
    c->x->early_status = 0;
    c->close_after = 1;
    c->linger_needed = 1;
    c->x->head_len = 0;
    /* A client that sent HEAD reads no body after the head, whatever else was wrong with its
     * request (as nginx, which knows the method before the rest of the line fails). */
    const nk_buf *in = &c->x->in;
    c->srv->req_is_head = nk_buf_len(in) >= 5 && memcmp(nk_buf_rptr(in), "HEAD ", 5) == 0;
    set_log_raw(c);
    nk_buf_clear(&c->x->in);
    return nk__respond_error(c, status, NULL);
}

static void send_continue(nk__conn *c)
{
    /* RFC 9110 section 10.1.1: tell the client to send the body it is holding back. The
     * bytes go through the normal output path so they stay ahead of the final response. */
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (nk_buf_append(&c->x->out, cont, sizeof cont - 1) == 0)
        c->x->seg.mem += sizeof cont - 1;
}

/* Where the request body stands after take_body. */
typedef enum body_step {
    BODY_MORE,     /* more is needed */
    BODY_WHOLE,    /* complete: the request is finished */
    BODY_REFUSED,  /* cannot be taken (413, 400, or the sink's status): answer it, close */
    BODY_ANSWERED, /* a streaming handler answered before the end */
    BODY_PAUSED,   /* a streaming handler paused it */
} body_step;

static body_step body_step_of(nk__sink_step s)
{
    switch (s) {
    case NK__SINK_REFUSED: return BODY_REFUSED;
    case NK__SINK_ANSWERED: return BODY_ANSWERED;
    case NK__SINK_PAUSED: return BODY_PAUSED;
    default: return BODY_MORE;
    }
}

/* Take the body bytes that follow the retained head, giving them to the sink if one claimed
 * the body. *status is set with BODY_REFUSED. */
static body_step take_body(nk__conn *c, nk__status *status)
{
    char *base = nk_buf_rptr(&c->x->in) + c->x->head_len;
    size_t avail = nk_buf_len(&c->x->in) - c->x->head_len, used = 0;
    nk__sink_step sunk = NK__SINK_MORE;
    body_step result = BODY_MORE;
    if (c->x->body_left) {
        used = avail < c->x->body_left ? avail : (size_t)c->x->body_left;
        if (used && c->x->sink)
            sunk = c->x->sink->data(c, base, used, status);
        c->x->body_left -= used;
        result = sunk != NK__SINK_MORE ? body_step_of(sunk)
                 : c->x->body_left == 0 ? BODY_WHOLE
                                        : BODY_MORE;
    } else if (c->x->chunked_active) {
        for (;;) {
            size_t consumed;
            const char *data;
            size_t dlen;
            int r = nk_http_chunked_step(&c->x->chunked, base + used, avail - used, &consumed,
                                         &data, &dlen);
            used += consumed;
            if (r == 1) {
                if (c->x->sink && dlen &&
                    (sunk = c->x->sink->data(c, data, dlen, status)) != NK__SINK_MORE) {
                    result = body_step_of(sunk);
                    break;
                }
                continue;
            }
            if (r == 2) {
                c->x->chunked_active = 0;
                result = BODY_WHOLE;
            } else if (r == -EFBIG) {
                *status = 413;
                result = BODY_REFUSED;
            } else if (r < 0) {
                *status = 400;
                result = BODY_REFUSED;
            }
            break;
        }
    } else {
        result = BODY_WHOLE;
    }
    c->x->body_received += used;
    if (used) {
        /* close the gap: pipelined bytes after the body move up behind the head */
        memmove(base, base + used, avail - used);
        c->x->in.wpos -= used;
    }
    return result;
}

/* What every request passes before any handler sees it, whatever the mode (--echo and
 * --upload claim requests at head time, so this cannot wait for handle): credentials.
 * A CORS preflight never carries credentials (Fetch standard, CORS-preflight fetch), so it
 * is exempt; its answer reveals nothing about the resource. NK__DONE with *status set when
 * refused, or NK__WAIT while the verdict is made off the loop. */
static nk__outcome gate(nk__conn *c, const nk_http_request *req, nk__status *status)
{
    nk_httpd *srv = c->srv;
    /* A balancer's health check carries no credentials and the answer reveals nothing. */
    if (nk__cors_is_preflight(srv, req) || nk__health_is_path(srv, req))
        return NK__DONE;
    if (nk__auth_needed(srv, req)) {
        nk__outcome r = nk__auth_check(c, req, status);
        c->x->authenticated = r == NK__DONE && !*status && srv->cfg.nusers > 0;
        return r;
    }
    return NK__DONE;
}

/* The body limit for this request: an upload by someone who proved who they are is bounded
 * by max_body_authenticated (by default only by the disk: 507 when full); every other body
 * (anonymous, echoed or given to a route, which hold it in memory) by max_body. */
uint64_t nk__conn_body_limit(const nk__conn *c, const nk_http_request *req)
{
    const nk_httpd *srv = c->srv;
    int upload = srv->cfg.upload && !srv->cfg.echo &&
                 (req->method == NK_HTTP_PUT || req->method == NK_HTTP_POST);
    if (c->x->route && nk__route_streams(c->x->route))
        return UINT64_MAX; /* its handler sets the limit (nk_httpd_ex_body_read) */
    return upload && c->x->authenticated && !c->x->route ? srv->cfg.max_body_authenticated
                                                         : srv->cfg.max_body;
}

/* At head time, let a handler claim the body: NK__DONE, with *status set when it is to be
 * answered at once, or NK__CLOSED. */
static nk__outcome claim_body(nk__conn *c, const nk_http_request *req, nk__status *status)
{
    nk_httpd *srv = c->srv;
    /* The status page and the health check are their own handlers in every mode. */
    if (nk__ops_is_path(srv, req))
        return NK__DONE;
    if (c->x->route) { /* matched in begin_request */
        nk__outcome r = c->x->body_left || c->x->chunked_active || nk__route_streams(c->x->route)
                            ? nk__route_claim(c, req, status)
                            : NK__DONE;
        if (r != NK__PASS)
            return r; /* else a streaming route let it fall through */
    }
    *status = nk__conn_claim_builtin(c, req);
    return NK__DONE;
}

nk__status nk__conn_claim_builtin(nk__conn *c, const nk_http_request *req)
{
    const nk_httpd *srv = c->srv;
    if (srv->cfg.echo)
        return nk__echo_begin(c, req);
    if (srv->cfg.upload && (req->method == NK_HTTP_PUT || req->method == NK_HTTP_POST))
        return nk__upload_begin(c, req);
    return NK__NO_STATUS;
}

static nk__outcome begin_request(nk__conn *c, nk_http_request *req, int head_len)
{
    nk_httpd *srv = c->srv;
    size_t shown = (size_t)(nk_buf_rptr(&c->x->in) + head_len - req->method_name.p);
    if (srv->cfg.on_head_from && !c->x->auth_verdict && nk__conn_h2s(c))
        nk__h2s_show_head(nk__conn_h2s(c), req->method_name.p, shown);
    else if (srv->cfg.on_head_from && !c->x->auth_verdict)
        srv->cfg.on_head_from(srv->cfg.head_arg, c, c->requests, c->peer_family,
                              c->peer_family == AF_UNIX ? NULL : c->peer_ip, c->peer_port,
                              req->method_name.p, shown);
    else if (srv->cfg.on_head && !c->x->auth_verdict) /* not again when a verdict came back */
        srv->cfg.on_head(srv->cfg.head_arg, req->method_name.p, shown);
    srv->req_is_head = req->method == NK_HTTP_HEAD;
    c->x->head_len = (size_t)head_len;
    c->http10 = req->version_minor == 0;
    if (!req->keep_alive || srv->shutting_down)
        c->close_after = 1;
    /* Credentials first: the body limit depends on who is asking. A cleartext request to a
     * server that wants https is sent there before it could send a password in clear. */
    nk__status st = req->expect_unknown ? 417 : redirect_to_https(c, req) ? 308 : NK__NO_STATUS;
    if (!st && gate(c, req, &st) == NK__WAIT) {
        /* The head stays at the front of `in` and is processed again, from the start,
         * when the verdict is in (nk__conn_resume); meanwhile the connection waits. */
        c->x->head_len = 0;
        return NK__DONE;
    }
    /* The application's routes come before the built-in handlers that claim requests; the
     * status page before both. */
    c->x->route = st == 0 && !nk__ops_is_path(srv, req) ? nk__route_match(srv, req) : NULL;
    uint64_t limit = st == 0 ? nk__conn_body_limit(c, req) : srv->cfg.max_body;
    if (req->content_length > 0) {
        if (st == 0 && (uint64_t)req->content_length > limit) { /* else refused below */
            /* RFC 9110 section 15.5.14; the body is not read, so the connection closes. */
            nk__conn_log_fields(c, req);
            c->close_after = 1;
            c->linger_needed = 1;
            c->x->head_len = 0;
            /* Clear first: after a failed respond the connection is freed. The log line
             * still points at the bytes, which clearing only forgets. */
            nk_buf_clear(&c->x->in);
            return nk__respond_error(c, 413, NULL);
        }
        c->x->body_left = (uint64_t)req->content_length;
    } else if (req->chunked) {
        nk_http_chunked_init(&c->x->chunked, limit);
        c->x->chunked_active = 1;
    }
    c->x->body_start_ms = nk_loop_now(srv->loop);
    c->x->body_received = 0;
    /* RFC 9110 section 10.1.1: an expectation this server cannot meet (417) is answered
     * before the body, which is then not read, as are refused credentials. */
    if (st == NK__NO_STATUS && claim_body(c, req, &st) == NK__CLOSED)
        return NK__CLOSED;
    if (st) {
        if (!c->x->body_left && !c->x->chunked_active) {
            c->x->early_status = st; /* answered in order, after the (empty) body */
        } else {
            /* Answer before the body, which is then not read: the connection closes. */
            nk__conn_log_fields(c, req);
            c->close_after = 1;
            c->linger_needed = 1;
            c->x->head_len = 0;
            c->x->body_left = 0;
            c->x->chunked_active = 0;
            nk_buf_clear(&c->x->in); /* before: a failed respond frees c */
            return answer_early(c, req, st);
        }
    }
    if ((c->x->body_left || c->x->chunked_active) && req->expect_continue && !c->http10 &&
        nk_buf_len(&c->x->in) - c->x->head_len == 0 && !nk__bodyrd_active(c->x))
        send_continue(c);
    return NK__DONE;
}

/* fresh: the views of c->x->request still point at the head (it was parsed in this pass of
 * conn_process and no body moved the buffer since), so they need no second parse. */
static nk__outcome finish_request(nk__conn *c, int fresh)
{
    nk_httpd *srv = c->srv;
    nk_http_request *req = &c->x->request;
    int status;
    /* The head was validated before its body was read; parse it again for the views. */
    if (!fresh && nk_http_parse_request(nk_buf_rptr(&c->x->in), c->x->head_len, 0,
                                        &srv->cfg.limits, req, &status) < 0)
        return refuse(c, 400);
    c->requests++;
    srv->stats.requests++;
    srv->req_is_head = req->method == NK_HTTP_HEAD;
    nk__conn_log_fields(c, req);
    const nk__sink *sink = c->x->sink;
    nk__outcome r;
    if (sink) {
        c->x->sink = NULL; /* the sink's end answers and frees its state */
        r = sink->end(c, req);
        if (r != NK__CLOSED) /* closed: c is gone (a write of the answer failed) */
            c->x->sink_state = NULL;
    } else {
        r = handle(c, req);
    }
    if (r == NK__CLOSED)
        return NK__CLOSED;
    if (c->x->later)
        return NK__DONE; /* the head stays until the handler answers (nk__conn_after_later) */
    nk_buf_consume(&c->x->in, c->x->head_len);
    c->x->head_len = 0;
    return NK__DONE;
}

void nk__conn_after_later(nk__conn *c)
{
    nk__ex *x = c->x;
    x->later = 0;
    x->req = NULL;
    nk_buf_free(&x->rbody);
    nk_buf_consume(&x->in, x->head_len);
    x->head_len = 0;
    nk__conn_resume(c);
}

/* The connection speaks HTTP/2 from here: what it sent so far goes to the session. */
static nk__outcome switch_to_h2(nk__conn *c)
{
    nk__ex *x = c->x;
    if (nk__opc_leave(c) < 0) {
        nk__conn_close(c);
        return NK__CLOSED;
    }
    int r = nk__h2_start(c, nk_buf_rptr(&x->in), nk_buf_len(&x->in));
    nk_buf_clear(&x->in);
    ex_drop(c);
    if (r < 0) {
        nk__conn_close(c);
        return NK__CLOSED;
    }
    nk__h2_on_io(c, NK_WRITE);
    return NK__CLOSED; /* the HTTP/1.1 code is done with c */
}

/* Parse and answer whatever the buffer holds, in order. NK__CLOSED if c was closed. */
static nk__outcome conn_process(nk__conn *c)
{
    nk_httpd *srv = c->srv;
    if (!c->x)
        return NK__DONE; /* idle: nothing buffered, nothing pending */
    const char *fresh = NULL; /* the head parsed in this pass, when finish_request may trust it */
    for (;;) {
        if (c->lingering)
            return NK__DONE;
        if (waiting(c) || out_pending(c))
            return NK__DONE; /* answers go out in order: wait for the one in progress */
        if (c->x->head_len) {
            nk__status status = NK__NO_STATUS;
            switch (take_body(c, &status)) {
            case BODY_MORE:
            case BODY_PAUSED:
                return NK__DONE;
            case BODY_ANSWERED: /* a streaming handler answered before the body's end */
                if (nk__bodyrd_answered(c) == NK__CLOSED)
                    return NK__CLOSED;
                continue;
            case BODY_REFUSED:
                if (refuse(c, status) == NK__CLOSED)
                    return NK__CLOSED;
                continue;
            case BODY_WHOLE:
                break;
            }
            if (finish_request(c, fresh && fresh == nk_buf_rptr(&c->x->in)) == NK__CLOSED)
                return NK__CLOSED;
            fresh = NULL;
            continue;
        }
        /* A head whose password was checked off the loop is processed again first: its
         * answer is still due, even on a connection that ends with it. */
        if (c->close_after && !c->x->auth_verdict) {
            conn_finish(c);
            return NK__CLOSED;
        }
        size_t len = nk_buf_len(&c->x->in);
        if (len == 0)
            return NK__DONE;
        if (c->requests == 0 && !c->tls && !nk__conn_h2s(c) && srv->h2_on) {
            /* RFC 9113 section 3.3: h2c with prior knowledge begins with the preface. */
            int p = nk__h2_preface(nk_buf_rptr(&c->x->in), len);
            if (p == -EAGAIN && !c->peer_eof)
                return NK__DONE;
            if (p == 1)
                return switch_to_h2(c);
        }
        int status = 0;
        int r = nk_http_parse_request(nk_buf_rptr(&c->x->in), len, c->x->parsed_prev,
                                      &srv->cfg.limits, &c->x->request, &status);
        if (r == -EAGAIN) {
            c->x->parsed_prev = len;
            if (c->peer_eof) {
                /* The client stopped in the middle of a head. */
                if (refuse(c, 400) == NK__CLOSED)
                    return NK__CLOSED;
                continue;
            }
            return NK__DONE;
        }
        c->x->parsed_prev = 0;
        if (r < 0) {
            /* RFC 9112 section 2.2/11.2: after a framing error the rest of the stream cannot
             * be trusted, so nothing more is read from it. */
            if (refuse(c, status ? status : 400) == NK__CLOSED)
                return NK__CLOSED;
            continue;
        }
        c->x->t_head_us = nk__log_clock_us();
        if (begin_request(c, &c->x->request, r) == NK__CLOSED)
            return NK__CLOSED;
        /* Without a body nothing moves the head before it is answered (a small request's
         * second parse was a quarter of the server's own instructions). */
        if (c->x->head_len && !c->x->body_left && !c->x->chunked_active)
            fresh = nk_buf_rptr(&c->x->in);
    }
}

/* ---- interest and timers ------------------------------------------------------------------ */

static unsigned phase_timeout(const nk__conn *c, nk__phase phase)
{
    const nk_httpd_config *cfg = &c->srv->cfg;
    if (c->srv->shutting_down && (phase == NK__PHASE_IDLE || phase == NK__PHASE_HEAD)) {
        unsigned t = phase == NK__PHASE_IDLE ? cfg->idle_timeout_ms : cfg->header_timeout_ms;
        return t && t < LAST_CALL_MS ? t : LAST_CALL_MS;
    }
    switch (phase) {
    case NK__PHASE_HEAD: return cfg->header_timeout_ms;
    case NK__PHASE_IDLE: return cfg->idle_timeout_ms;
    case NK__PHASE_BODY: return cfg->body_timeout_ms;
    case NK__PHASE_WRITE: return cfg->send_timeout_ms;
    case NK__PHASE_LINGER: return LINGER_MS;
    default: return 0;
    }
}

/* The body's gap timeout, shortened to what is left of its total deadline (which each KiB
 * received extends by a second). Never 0 when a deadline applies: 0 means "no timer". */
static unsigned body_deadline_cap(const nk__conn *c, unsigned gap_ms)
{
    const nk_httpd *srv = c->srv;
    uint64_t total = srv->cfg.body_total_timeout_ms;
    if (!total)
        return gap_ms;
    uint64_t allowed = total + c->x->body_received * 1000 / NK_HTTPD_BODY_MIN_RATE;
    uint64_t elapsed = nk_loop_now(srv->loop) - c->x->body_start_ms;
    uint64_t left = allowed > elapsed ? allowed - elapsed : 1;
    return !gap_ms || left < gap_ms ? (unsigned)(left < UINT32_MAX ? left : UINT32_MAX) : gap_ms;
}

/* Readiness interest, in operations: a receive under way while reading; writing goes on from
 * each send's completion, so output with no send under way (a send cut short by a file that
 * shrank, or not yet begun) gets a turn of the handler as a writable socket would. A receive
 * that cannot start leaves the connection to its timer. */
static void ops_want(nk__conn *c, unsigned ev)
{
    if (ev & NK_READ)
        (void)nk__opc_arm_read(c);
    if ((ev & NK_WRITE) && !nk__opc_sending(c))
        kick_add(c);
}

static void conn_update(nk__conn *c, int progress)
{
    if (nk__conn_h2(c)) {
        nk__h2_update(c);
        return;
    }
    nk_httpd *srv = c->srv;
    unsigned ev = 0;
    nk__phase phase;
    int pending = out_pending(c);
    if (nk__conn_pp(c)) {
        ev = NK_READ;
        phase = NK__PHASE_HEAD; /* the header counts against the first head's deadline */
    } else if (nk__conn_handshaking(c)) {
        /* One waiting for a handshake slot is not read: its ClientHello stays in the kernel. */
        const nk__tlsconn *t = nk__conn_tlsc(c);
        ev = t->hs_waiting ? 0 : t->want_write ? NK_WRITE : NK_READ;
        phase = NK__PHASE_HEAD; /* the handshake counts against the first head's deadline */
    } else if (c->lingering) {
        ev = NK_READ;
        phase = NK__PHASE_LINGER;
    } else if (waiting(c) && !out_pending(c)) {
        phase = NK__PHASE_WAIT; /* nothing to read or write until the job is done */
    } else {
        const nk__ex *x = c->x;
        size_t head_len = x ? x->head_len : 0;
        size_t buffered = x ? nk_buf_len(&x->in) : 0;
        if (!c->peer_eof && !(c->close_after && !head_len) && (!x || buffered < x->in.max))
            ev |= NK_READ;
        if (pending || nk__conn_tls_want_write(c))
            ev |= NK_WRITE;
        if ((ev & NK_READ) && nk__xp_pending(c))
            kick_add(c);
        if (pending)
            phase = NK__PHASE_WRITE;
        else if (head_len)
            phase = NK__PHASE_BODY;
        else if (buffered || c->requests == 0)
            phase = NK__PHASE_HEAD;
        else
            phase = NK__PHASE_IDLE;
    }
    if (nk__conn_h2s(c))
        nk__h2s_want(nk__conn_h2s(c), ev);
    else if (c->opc)
        ops_want(c, ev);
    else
        nk_io_start(srv->loop, &c->io, ev);
    /* A head has one deadline from its first byte (renewing it per read would let a client
     * trickle bytes forever); body and write deadlines are renewed on progress. */
    int renew = phase != c->phase || c->requests != c->timer_requests ||
                ((progress & PROGRESS_READ) && phase == NK__PHASE_BODY) ||
                ((progress & PROGRESS_WRITE) && phase == NK__PHASE_WRITE);
    if (renew) {
        c->phase = (unsigned char)phase;
        c->timer_requests = c->requests;
        unsigned ms = phase_timeout(c, phase);
        if (phase == NK__PHASE_BODY && c->x)
            ms = body_deadline_cap(c, ms);
        if (ms)
            nk_timer_start(srv->loop, &c->timer, ms, 0);
        else
            nk_timer_stop(srv->loop, &c->timer);
    }
    /* Between requests (or before the first byte) the exchange state and its buffers go
     * back to the pools: an idle connection costs only its nk__conn. */
    if ((phase == NK__PHASE_IDLE || phase == NK__PHASE_HEAD) && c->x && ex_is_idle(c))
        ex_drop(c);
}

static void on_timer(nk_loop *loop, nk_timer *t)
{
    nk__conn *c = t->data;
    if (nk__conn_h2(c)) {
        nk__h2_on_timer(c);
        return;
    }
    if (c->phase == NK__PHASE_HEAD && c->x && nk_buf_len(&c->x->in) && !out_pending(c)) {
        /* RFC 9110 section 15.5.9: tell a slow client why it is being dropped. */
        if (refuse(c, 408) == NK__CLOSED)
            return;
        if (conn_process(c) == NK__CLOSED)
            return;
        conn_update(c, 0);
        return;
    }
    nk__conn_close(c);
}

/* r from a step that comes before HTTP (the PROXY header, the TLS handshake): 1 when it is
 * done; otherwise c was closed (r < 0) or waits for more (r == 0), and 0 says so. */
static int step_done(nk__conn *c, int r)
{
    if (r < 0)
        nk__conn_close(c);
    else if (r == 0)
        conn_update(c, 0);
    return r > 0;
}

static void on_io(nk_loop *loop, nk_io *io, unsigned events)
{
    nk__conn *c = io->data;
    int progress = 0;
    if (nk__conn_h2(c)) {
        nk__h2_on_io(c, events);
        return;
    }
    if (nk__conn_pp(c)) {
        /* The balancer's header comes before TLS and HTTP alike. */
        if (!step_done(c, nk__proxy_read(c)))
            return;
        events = NK_READ; /* what followed the header may be here already */
    }
    if (nk__conn_handshaking(c)) {
        if (!step_done(c, nk__xp_handshake(c)))
            return;
        if (alpn_h2(c)) {
            if (nk__h2_start(c, NULL, 0) < 0) {
                nk__conn_close(c);
                return;
            }
            nk__h2_on_io(c, NK_READ | NK_WRITE); /* our SETTINGS go first */
            return;
        }
        events = NK_READ; /* the first request may have come with the handshake's end */
    }
    if (c->tls && (events & NK_WRITE))
        events |= NK_READ; /* a TLS read may have waited for the socket to take a write */
    if (c->lingering) {
        linger_read(c);
        return;
    }
    if ((events & NK_WRITE) || ((events & NK_ERROR) && out_pending(c))) {
        int r = nk__respond_flush(c);
        if (r < 0) {
            nk__conn_close(c);
            return;
        }
        progress |= PROGRESS_WRITE;
    }
    if (events & (NK_READ | NK_ERROR)) {
        int r = conn_read(c);
        if (r < 0)
            return;
        if (r > 0)
            progress |= PROGRESS_READ;
    }
    if (conn_process(c) == NK__CLOSED)
        return;
    conn_settle(c, progress);
}

void nk__conn_resume_output(nk__conn *c)
{
    int r = nk__respond_flush(c);
    if (r < 0) {
        nk__conn_close(c);
        return;
    }
    if (conn_process(c) == NK__CLOSED)
        return;
    conn_settle(c, PROGRESS_WRITE);
}

void nk__conn_resume(nk__conn *c)
{
    if (conn_process(c) == NK__CLOSED)
        return;
    conn_settle(c, 0);
}

/* A connection on fd (-1: a stream's virtual one), with its watchers, not yet started. */
static nk__conn *conn_alloc(nk_httpd *srv, int fd, int tls)
{
    /* A TLS connection's record carries its handshake state after the nk__conn: a plain one
     * is allocated without it (the budget at struct nk__conn). */
    nk__conn *c = calloc(1, tls ? sizeof(nk__tlsconn) : sizeof *c);
    if (!c)
        return NULL;
    c->tls_side = tls != 0;
    c->srv = srv;
    nk_timer_init(&c->timer, on_timer, c);
    nk_io_init(&c->io, fd, on_io, c);
    c->phase = NK__PHASE_NONE;
    return c;
}

int nk__conn_start(nk_httpd *srv, int fd, const nk_addr *peer, int tls, int proxy)
{
    nk__conn *c = conn_alloc(srv, fd, tls);
    if (!c)
        return -ENOMEM;
    if (proxy && nk__proxy_new(c) < 0) {
        free(c);
        return -ENOMEM;
    }
    /* The TLS state is made when the ClientHello's first bytes arrive (nk__xp_handshake):
     * a silent connection costs no more than over http and takes no handshake slot. */
    if (tls)
        nk__conn_tlsc(c)->handshaking = 1;
    int family = nk_addr_family(peer);
    c->is_tcp = family == AF_INET || family == AF_INET6;
    c->peer_family = (unsigned char)family;
    if (family == AF_INET)
        memcpy(c->peer_ip, &peer->u.in.sin_addr, 4);
    else if (family == AF_INET6)
        memcpy(c->peer_ip, &peer->u.in6.sin6_addr, 16);
    if (c->is_tcp)
        c->peer_port = (unsigned short)nk_addr_port(peer);
    /* The accepted peer, not one a PROXY header names: the bytes go to this socket. */
    c->peer_local = family == AF_UNIX || nk_addr_is_loopback(peer);
    /* On uring a plain connection runs on completion operations (opconn.c); without the
     * memory for their record it runs on readiness as on the other backends. */
    int err = nk__opc_wanted(srv, tls, proxy) && nk__opc_new(c) == 0
                  ? 0
                  : nk_io_start(srv->loop, &c->io, NK_READ);
    if (err < 0) {
        nk__proxy_free(c);
        free(c);
        return err;
    }
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    NK__COUNT(srv, connections_open, 1);
    /* With TCP_DEFER_ACCEPT the request is usually here already: save a loop round trip. */
    on_io(srv->loop, &c->io, NK_READ);
    return 0;
}

nk__conn *nk__conn_new_stream(nk__conn *parent, nk__h2s *s)
{
    nk__conn *c = conn_alloc(parent->srv, -1, 0);
    if (!c)
        return NULL;
    nk__conn_set_h2s(c, s);
    c->is_tcp = parent->is_tcp;
    c->peer_family = parent->peer_family;
    c->peer_port = parent->peer_port;
    memcpy(c->peer_ip, parent->peer_ip, sizeof c->peer_ip);
    return c;
}

void nk__conn_run(nk__conn *c, unsigned events)
{
    on_io(c->srv->loop, &c->io, events);
}
