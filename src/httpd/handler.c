/* Routes and the exchange API: how an application answers requests.
 *
 * A route is matched at head time (after authentication and the status page), so that a
 * route can take the request body before the built-in handlers (echo, uploads) would claim
 * it; its handler runs once the body is complete. The handler sees the exchange (nk__ex, the
 * public nk_httpd_ex) and never the socket: the same handler will serve HTTP/1.1 over any
 * transport and HTTP/2 streams.
 *
 * Lifetimes. While a handler runs, the connection is marked busy: a failed write inside
 * nk_httpd_respond only records that the connection must close, and the close happens when
 * the handler has returned (no engine frame ever runs on a freed connection). A handler
 * that returns NK_HTTPD_LATER keeps the exchange, which holds the parsed request (its bytes
 * stay in the connection's buffer, which reads nothing meanwhile); if the client goes away
 * before the answer the exchange is detached from the connection and freed by that answer
 * (or by nk_httpd_free).
 *
 * A route added with NK_HTTPD_STREAM_BODY claims its body at head time and runs its handler
 * there (bodyread.c): the body then goes to the handler in pieces, and an answer before the
 * body's end ends the request without reading the rest (answer() hands that to bodyread.c).
 */
#include "internal.h"
#include "httpd/bodyread.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct nk__route {
    char *method;         /* NULL: any */
    char *path;
    size_t path_len;
    int flags;
    nk_httpd_handler handler;
    void *arg;
};

/* RFC 9110 section 5.6.2: token = 1*tchar. */
static int is_token(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              strchr("!#$%&'*+-.^_`|~", ch)))
            return 0;
    }
    return 1;
}

int nk_httpd_route(nk_httpd *srv, const char *method, const char *path, int flags,
                   nk_httpd_handler handler, void *arg)
{
    if (!srv || !handler || !path || path[0] != '/' || (method && !is_token(method)) ||
        (flags & ~(NK_HTTPD_PREFIX | NK_HTTPD_STREAM_BODY)))
        return -EINVAL;
    /* The path is compared with normalised request paths: it must be one itself. */
    char norm[4096];
    int n = nk_http_path_normalize(path, strlen(path), norm, sizeof norm);
    if (n < 0 || strcmp(norm, path) != 0)
        return -EINVAL;
    nk__route *grown = realloc(srv->routes, (srv->nroutes + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    srv->routes = grown;
    nk__route *r = &grown[srv->nroutes];
    memset(r, 0, sizeof *r);
    r->path = strdup(path);
    r->method = method ? strdup(method) : NULL;
    if (!r->path || (method && !r->method)) {
        free(r->path);
        free(r->method);
        return -ENOMEM;
    }
    r->path_len = strlen(path);
    /* "/api/" as a prefix means the same as "/api": what is below it. */
    if (flags & NK_HTTPD_PREFIX)
        while (r->path_len > 1 && r->path[r->path_len - 1] == '/')
            r->path[--r->path_len] = '\0';
    r->flags = flags;
    r->handler = handler;
    r->arg = arg;
    srv->nroutes++;
    return 0;
}

void nk__routes_free(nk_httpd *srv)
{
    for (size_t i = 0; i < srv->nroutes; i++) {
        free(srv->routes[i].method);
        free(srv->routes[i].path);
    }
    free(srv->routes);
    srv->routes = NULL;
    srv->nroutes = 0;
    while (srv->detached) {
        nk__ex *x = srv->detached;
        srv->detached = x->next_free;
        nk__ex_release_handler(srv, x); /* not attached: only frees */
    }
}

static int method_matches(const nk__route *r, const nk_http_request *req)
{
    if (!r->method)
        return 1;
    size_t n = strlen(r->method);
    if (req->method_name.len == n && memcmp(req->method_name.p, r->method, n) == 0)
        return 1;
    /* RFC 9110 section 9.3.2: HEAD is GET without the body. */
    return req->method == NK_HTTP_HEAD && strcmp(r->method, "GET") == 0;
}

static int path_matches(const nk__route *r, const char *path)
{
    size_t n = strlen(path);
    if (!(r->flags & NK_HTTPD_PREFIX))
        return n == r->path_len && memcmp(path, r->path, n) == 0;
    if (r->path_len == 1)
        return 1; /* "/" covers everything */
    return n >= r->path_len && memcmp(path, r->path, r->path_len) == 0 &&
           (path[r->path_len] == '\0' || path[r->path_len] == '/');
}

const nk__route *nk__route_match(nk_httpd *srv, const nk_http_request *req)
{
    if (!srv->nroutes)
        return NULL;
    if (nk_http_path_normalize(req->path.p, req->path.len, srv->path, sizeof srv->path) < 0)
        return NULL; /* the built-in handlers answer 400/404 */
    for (size_t i = 0; i < srv->nroutes; i++)
        if (method_matches(&srv->routes[i], req) && path_matches(&srv->routes[i], srv->path))
            return &srv->routes[i];
    return NULL;
}

/* ---- the body of a route's request --------------------------------------------------------- */

static nk__sink_step route_data(nk__conn *c, const char *p, size_t n, nk__status *status)
{
    /* The engine bounds the body by max_body already (Content-Length and chunked). */
    return nk_buf_append(&c->x->rbody, p, n) < 0 ? nk__sink_refuse(status, 500) : NK__SINK_MORE;
}

static nk__outcome route_end(nk__conn *c, const nk_http_request *req)
{
    return nk__route_call(c, req);
}

static void route_abort(nk__conn *c)
{
    nk_buf_free(&c->x->rbody);
}

static const nk__sink route_sink = {route_data, route_end, route_abort};

int nk__route_streams(const nk__route *route)
{
    return (route->flags & NK_HTTPD_STREAM_BODY) != 0;
}

nk__outcome nk__route_claim(nk__conn *c, const nk_http_request *req, nk__status *status)
{
    const nk__route *route = c->x->route;
    if (nk__route_streams(route))
        return nk__bodyrd_begin(c, req, route->handler, route->arg, status);
    nk_buf_free(&c->x->rbody); /* empty already: the last route's was freed when it ended */
    c->x->sink = &route_sink;
    return NK__DONE;
}

/* ---- running a handler --------------------------------------------------------------------- */

/* A sink that claimed a replayed body refused it: undo what it began, answer its status. */
static nk__outcome replay_refused(nk__conn *c, const nk__sink *sink, nk__status status)
{
    if (sink) {
        c->x->sink = NULL;
        sink->abort(c); /* removes a temporary upload file */
        c->x->sink_state = NULL;
    }
    return nk__respond_error(c, status, NULL);
}

/* The route declined (NK_HTTPD_NEXT): the request goes on as if it had not matched. Without
 * the route, the built-in handler that takes bodies (echo, or an upload's PUT and POST) would
 * have claimed this one at head time, so it claims it now and is given, in one piece, the
 * body the route received (all of it: the route runs after the body's end), under the limit
 * it would have had; then it ends as after a body read from the socket (an upload's temporary
 * file is fsynced and renamed into place, off the loop). The body goes with the request: it
 * is freed here, before anything is answered, so no later request can see it. */
static nk__outcome route_declined(nk__conn *c, const nk_http_request *req)
{
    nk__ex *x = c->x;
    nk_buf_clear(&x->hdrs); /* fields the route added are not the built-ins' */
    size_t len = nk_buf_len(&x->rbody);
    /* The route was given max_body; an authenticated upload may have a lower bound. */
    nk__status status = len > nk__conn_body_limit(c, req) ? 413 : nk__conn_claim_builtin(c, req);
    const nk__sink *sink = x->sink;
    if (!status && sink && len &&
        sink->data(c, nk_buf_rptr(&x->rbody), len, &status) != NK__SINK_MORE && !status)
        status = 500; /* the built-in sinks refuse with a status: nothing else is expected */
    nk_buf_free(&x->rbody);
    if (status)
        return replay_refused(c, sink, status);
    if (!sink)
        return nk__conn_handle(c, req);
    x->sink = NULL; /* its end answers and frees its state */
    nk__outcome r = sink->end(c, req);
    if (r != NK__CLOSED)
        c->x->sink_state = NULL;
    return r;
}

nk__outcome nk__route_call(nk__conn *c, const nk_http_request *req)
{
    nk__ex *x = c->x;
    const nk__route *route = x->route;
    x->route = NULL;
    x->req = req;
    x->answered = 0;
    nk_buf_clear(&x->hdrs);
    c->busy = 1;
    int r = route->handler(x, route->arg);
    c->busy = 0;
    if (c->close_pending) {
        nk__conn_close(c);
        return NK__CLOSED;
    }
    if (!x->answered && r == NK_HTTPD_LATER) {
        /* The request lives in the exchange, its views in the connection's buffer, which
         * keeps the head until the answer; the body until then too (nk__conn_after_later). */
        x->later = 1;
        return NK__DONE;
    }
    if (!x->answered && r == NK_HTTPD_NEXT)
        return route_declined(c, req);
    /* The handler is done with the body: the next request on the connection starts with
     * none (a route without a body to wait for reads rbody as it stands). */
    nk_buf_free(&x->rbody);
    if (x->answered)
        return NK__DONE;
    /* DONE without an answer, or an error: the application failed this request. */
    return nk__respond_error(c, 500, NULL);
}

int nk__ex_release_handler(nk_httpd *srv, nk__ex *x)
{
    nk__conn *c = x->conn;
    if (c && x->later && !x->answered) {
        /* The client went away while its handler still works: keep what the handler may
         * read (the request and the bytes it points into) until it answers. */
        x->conn = NULL;
        x->next_free = srv->detached;
        srv->detached = x;
        return 1;
    }
    free(x->dpath);
    x->dpath = NULL;
    nk_buf_free(&x->rbody);
    nk_buf_free(&x->hdrs);
    x->later = x->answered = 0;
    x->route = NULL;
    x->req = NULL;
    if (!c) {
        /* Detached (or the server is going): this exchange is not going back to a pool. */
        nk_buf_free(&x->in);
        nk_buf_free(&x->out);
        free(x);
    }
    return 0;
}

static void unlink_detached(nk_httpd *srv, nk__ex *x)
{
    for (nk__ex **pp = &srv->detached; *pp; pp = &(*pp)->next_free)
        if (*pp == x) {
            *pp = x->next_free;
            return;
        }
}

/* ---- the request ----------------------------------------------------------------------------- */

nk_str nk_httpd_ex_method(const nk_httpd_ex *ex)
{
    return ex->req->method_name;
}

nk_str nk_httpd_ex_target(const nk_httpd_ex *ex)
{
    return ex->req->target;
}

nk_str nk_httpd_ex_query(const nk_httpd_ex *ex)
{
    return ex->req->query;
}

const char *nk_httpd_ex_path(nk_httpd_ex *ex)
{
    if (!ex->dpath) {
        size_t cap = ex->req->path.len + 2;
        char *p = malloc(cap);
        if (!p || nk_http_path_normalize(ex->req->path.p, ex->req->path.len, p, cap) < 0) {
            free(p);
            return NULL;
        }
        ex->dpath = p;
    }
    return ex->dpath;
}

nk_str nk_httpd_ex_header(const nk_httpd_ex *ex, const char *name)
{
    const nk_http_header *h = nk_http_find_header(ex->req, name);
    return h ? h->value : (nk_str){NULL, 0};
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* application/x-www-form-urlencoded decoding of one name or value: "+" is a space. */
static int form_decode(const char *s, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            if (len - i < 3)
                return -EINVAL;
            int hi = hexval((unsigned char)s[i + 1]);
            int lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            ch = (char)(hi << 4 | lo);
            i += 2;
        }
        if (out) {
            if (n + 1 >= outlen)
                return -ENOSPC;
            out[n] = ch;
        }
        n++;
    }
    if (out)
        out[n] = '\0';
    return (int)n;
}

int nk_httpd_ex_query_param(const nk_httpd_ex *ex, const char *name, char *out, size_t outlen)
{
    nk_str q = ex->req->query;
    if (!q.p || !name || !out || outlen == 0)
        return q.p ? -EINVAL : -ENOENT;
    size_t want = strlen(name);
    const char *p = q.p, *end = q.p + q.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        char key[256];
        int kn = form_decode(p, (size_t)(ke - p), key, sizeof key);
        if (kn >= 0 && (size_t)kn == want && memcmp(key, name, want) == 0)
            return form_decode(eq ? eq + 1 : pe, eq ? (size_t)(pe - eq - 1) : 0, out, outlen);
        p = pe + (amp ? 1 : 0);
    }
    return -ENOENT;
}

nk_str nk_httpd_ex_body(const nk_httpd_ex *ex)
{
    size_t n = nk_buf_len(&ex->rbody);
    return n ? (nk_str){nk_buf_rptr(&ex->rbody), n} : (nk_str){NULL, 0};
}

int nk_httpd_ex_alive(const nk_httpd_ex *ex)
{
    return ex->conn != NULL;
}

nk_httpd *nk_httpd_ex_server(const nk_httpd_ex *ex)
{
    return ex->conn ? ex->conn->srv : NULL;
}

int nk_httpd_ex_peer(const nk_httpd_ex *ex, nk_addr *out)
{
    const nk__conn *c = ex->conn;
    if (!c)
        return -ENOTCONN;
    memset(out, 0, sizeof *out);
    if (c->peer_family == AF_INET) {
        out->u.in.sin_family = AF_INET;
        memcpy(&out->u.in.sin_addr, c->peer_ip, 4);
        out->u.in.sin_port = htons(c->peer_port);
        out->len = sizeof out->u.in;
    } else if (c->peer_family == AF_INET6) {
        out->u.in6.sin6_family = AF_INET6;
        memcpy(&out->u.in6.sin6_addr, c->peer_ip, 16);
        out->u.in6.sin6_port = htons(c->peer_port);
        out->len = sizeof out->u.in6;
    } else {
        out->u.un.sun_family = AF_UNIX;
        out->len = sizeof(sa_family_t);
    }
    return 0;
}

/* ---- the response ----------------------------------------------------------------------------- */

static int field_value_ok(const char *v)
{
    /* RFC 9110 section 5.5: no CR, LF or NUL; other controls but HTAB are refused too. */
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return 0;
    }
    return 1;
}

int nk_httpd_ex_add_header(nk_httpd_ex *ex, const char *name, const char *value)
{
    static const char *const engine_fields[] = {"Content-Length", "Transfer-Encoding",
                                                "Connection", "Date", "Server", "Keep-Alive",
                                                "Upgrade", "Trailer"};
    if (ex->answered || !is_token(name) || !value || !field_value_ok(value))
        return -EINVAL;
    for (size_t i = 0; i < sizeof engine_fields / sizeof engine_fields[0]; i++)
        if (strcasecmp(name, engine_fields[i]) == 0)
            return -EINVAL;
    if (nk_buf_printf(&ex->hdrs, "%s: %s\r\n", name, value) < 0)
        return -ENOMEM;
    return 0;
}

/* Send the planned answer on the exchange's connection (or drop it when the client is
 * gone), then finish the exchange when it was answered LATER. */
static int answer(nk__ex *x, nk__resp *r)
{
    x->answered = 1;
    nk__conn *c = x->conn;
    if (!c) {
        /* Detached: nobody to answer; the exchange ends here. */
        nk__resp_release(x->srv, r);
        unlink_detached(x->srv, x);
        nk__ex_release_handler(x->srv, x);
        return NK_HTTPD_DONE;
    }
    nk_httpd *srv = c->srv;
    /* Before the end of a streamed body (bodyread.c), even if the handler had said LATER:
     * the rest of the body is not read. Inside on_data that is done when it returns. */
    int streamed = nk__bodyrd_active(x);
    int later = x->later && !streamed;
    if (later || (streamed && !c->busy)) {
        /* The scratch the engine answers from belongs to this request again. */
        srv->req_is_head = x->req->method == NK_HTTP_HEAD;
        nk__conn_log_fields(c, x->req);
    }
    if (nk_buf_len(&x->hdrs) && nk_buf_append(&x->hdrs, "", 1) == 0)
        r->extra_headers = nk_buf_rptr(&x->hdrs);
    if (srv->req_is_head)
        r->no_body = 1;
    if (streamed)
        nk__bodyrd_answering(c);
    nk__outcome sent = nk__respond(c, r);
    if (later && sent == NK__DONE)
        nk__conn_after_later(c); /* c may be gone after this */
    if (streamed && !c->busy && sent == NK__DONE && nk__bodyrd_answered(c) == NK__DONE)
        nk__conn_resume(c);
    return sent == NK__CLOSED && !later ? -EPIPE : NK_HTTPD_DONE;
}

static int check_answer(const nk__ex *x, int status)
{
    /* One final answer (1xx are the engine's), on the exchange the connection is at. */
    return !x->answered && status >= 200 && status <= 599 &&
           (x->conn == NULL || (x->conn->x == x && !x->conn->close_pending));
}

int nk_httpd_respond(nk_httpd_ex *ex, int status, const char *content_type, const void *body,
                     size_t len)
{
    if (!ex || !check_answer(ex, status) || (content_type && !field_value_ok(content_type)) ||
        (len && !body))
        return -EINVAL;
    nk__resp r;
    nk__resp_init(&r, status);
    r.content_type = content_type;
    r.mem_body = len ? body : NULL;
    if (status == 204 || status == 304)
        r.no_body = 1;
    r.content_length = status == 204 || status == 304 ? 0 : len;
    return answer(ex, &r);
}

int nk_httpd_respond_fd(nk_httpd_ex *ex, int status, const char *content_type, int fd,
                        uint64_t off, uint64_t len)
{
    if (!ex || fd < 0 || !check_answer(ex, status) ||
        (content_type && !field_value_ok(content_type))) {
        if (fd >= 0)
            close(fd);
        return -EINVAL;
    }
    nk__resp r;
    nk__resp_init(&r, status);
    r.content_type = content_type;
    r.file_fd = fd;
    r.file_fd_owned = 1;
    r.file_off = (off_t)off;
    r.content_length = status == 204 || status == 304 ? 0 : len;
    if (status == 204 || status == 304)
        r.no_body = 1;
    return answer(ex, &r);
}

/* ---- bodies produced in pieces ------------------------------------------------------------- */

void nk__produce_abort(nk__ex *x)
{
    nk_httpd_producer produce = x->produce;
    x->produce = NULL;
    if (produce)
        produce(x, NULL, x->produce_arg);
}

int nk__produce_fill(nk__conn *c)
{
    nk__ex *x = c->x;
    nk_buf_clear(&x->piece);
    int r = x->produce(x, &x->piece, x->produce_arg);
    if (r < 0) {
        x->produce = NULL; /* failed: not called again; the connection closes */
        return r;
    }
    size_t n = nk_buf_len(&x->piece), before = nk_buf_len(&x->out);
    if (n) {
        char hdr[24];
        int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
        if (x->produce_chunked ? nk_buf_append(&x->out, hdr, (size_t)hl) < 0 ||
                                     nk_buf_append(&x->out, nk_buf_rptr(&x->piece), n) < 0 ||
                                     nk_buf_append(&x->out, "\r\n", 2) < 0
                               : nk_buf_append(&x->out, nk_buf_rptr(&x->piece), n) < 0) {
            x->produce = NULL;
            return -ENOMEM;
        }
    }
    if (r == NK_HTTPD_DONE) {
        x->produce = NULL;
        /* RFC 9112 section 7.1: the last chunk has size 0, and no trailer follows. */
        if (x->produce_chunked && nk_buf_append(&x->out, "0\r\n\r\n", 5) < 0)
            return -ENOMEM;
    } else if (r == NK_HTTPD_LATER || n == 0) {
        x->produce_paused = 1; /* nothing now (0 with nothing appended counts as LATER) */
    }
    x->seg.mem += nk_buf_len(&x->out) - before;
    return nk_buf_len(&x->out) > before || !x->produce ? 1 : 0;
}

int nk_httpd_respond_stream(nk_httpd_ex *ex, int status, const char *content_type,
                            nk_httpd_producer produce, void *arg)
{
    if (!ex || !produce || !check_answer(ex, status) || status == 204 || status == 304 ||
        (content_type && !field_value_ok(content_type)))
        return -EINVAL;
    nk__conn *c = ex->conn;
    nk__resp r;
    nk__resp_init(&r, status);
    r.content_type = content_type;
    r.stream = 1;
    if (!c) {
        produce(ex, NULL, arg); /* the client is gone: the producer's last call */
        return answer(ex, &r);
    }
    const nk_http_request *req = ex->req;
    if (req->method == NK_HTTP_HEAD) {
        int ret = answer(ex, &r); /* the head only */
        produce(ex, NULL, arg);
        return ret;
    }
    ex->produce_chunked = !c->http10;
    if (c->http10)
        c->close_after = 1; /* the end of the connection ends the body */
    ex->produce = produce;
    ex->produce_arg = arg;
    ex->produce_paused = 0;
    return answer(ex, &r);
}

int nk_httpd_ex_resume(nk_httpd_ex *ex)
{
    nk__conn *c = ex ? ex->conn : NULL;
    if (!c || !ex->produce || c->x != ex)
        return -EINVAL;
    if (!ex->produce_paused)
        return 0;
    ex->produce_paused = 0;
    nk__conn_resume_output(c);
    return 0;
}
