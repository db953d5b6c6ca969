/* Operator features around the static handler:
 *   --status PATH  live counters (this worker's slot, and every worker's when the supervisor
 *                  shares them) as JSON or, with ?format=prometheus, in the Prometheus text
 *                  exposition format; only for local clients unless --status-public
 *   --cors         answers to CORS preflight requests (Fetch standard, "CORS protocol")
 *   --spa          which missing paths fall back to the root index (see static.c)
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

int nk_httpd_peer_is_local(int family, const unsigned char *ip)
{
    static const unsigned char v6_loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_UNIX)
        return 1;
    if (!ip)
        return 0;
    if (family == AF_INET)
        return ip[0] == 127;
    if (family == AF_INET6)
        return memcmp(ip, v6_loop, 16) == 0 || (memcmp(ip, v4_mapped, 12) == 0 && ip[12] == 127);
    return 0;
}

/* ---- --status ---------------------------------------------------------------------------- */

static uint64_t get(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void sum_into(nk_httpd_counters *sum, const nk_httpd_counters *c)
{
    sum->connections_open += get(&c->connections_open);
    sum->connections_total += get(&c->connections_total);
    sum->requests_total += get(&c->requests_total);
    for (int k = 0; k < 5; k++)
        sum->status[k] += get(&c->status[k]);
    sum->bytes_sent += get(&c->bytes_sent);
    sum->listings_rendered += get(&c->listings_rendered);
    sum->tls_handshakes += get(&c->tls_handshakes);
    sum->tls_resumed += get(&c->tls_resumed);
    sum->tls_failed += get(&c->tls_failed);
    sum->h2_connections += get(&c->h2_connections);
    sum->h2_streams += get(&c->h2_streams);
    sum->h2_resets += get(&c->h2_resets);
    sum->proxy_refused += get(&c->proxy_refused);
}

static int query_has(const nk_http_request *req, const char *kv)
{
    size_t n = strlen(kv);
    const char *p = req->query.p;
    if (!p)
        return 0;
    for (size_t i = 0; i + n <= req->query.len; i++)
        if ((i == 0 || p[i - 1] == '&') && memcmp(p + i, kv, n) == 0 &&
            (i + n == req->query.len || p[i + n] == '&'))
            return 1;
    return 0;
}

static void json_counters(nk_buf *b, const nk_httpd_counters *c)
{
    nk_buf_printf(b, "\"connections_open\":%llu,\"connections_total\":%llu,"
                     "\"requests_total\":%llu,\"requests_by_class\":{\"1xx\":%llu,\"2xx\":%llu,"
                     "\"3xx\":%llu,\"4xx\":%llu,\"5xx\":%llu},\"bytes_sent\":%llu,"
                     "\"listings_rendered\":%llu,\"tls_handshakes\":%llu,\"tls_resumed\":%llu,"
                     "\"tls_failed\":%llu",
                  (unsigned long long)get(&c->connections_open),
                  (unsigned long long)get(&c->connections_total),
                  (unsigned long long)get(&c->requests_total),
                  (unsigned long long)get(&c->status[0]), (unsigned long long)get(&c->status[1]),
                  (unsigned long long)get(&c->status[2]), (unsigned long long)get(&c->status[3]),
                  (unsigned long long)get(&c->status[4]), (unsigned long long)get(&c->bytes_sent),
                  (unsigned long long)get(&c->listings_rendered),
                  (unsigned long long)get(&c->tls_handshakes),
                  (unsigned long long)get(&c->tls_resumed), (unsigned long long)get(&c->tls_failed));
    nk_buf_printf(b, ",\"h2_connections\":%llu,\"h2_streams\":%llu,\"h2_resets\":%llu",
                  (unsigned long long)get(&c->h2_connections),
                  (unsigned long long)get(&c->h2_streams), (unsigned long long)get(&c->h2_resets));
    nk_buf_printf(b, ",\"proxy_refused\":%llu", (unsigned long long)get(&c->proxy_refused));
}

static void render_json(nk_httpd *srv, nk_buf *b, const nk_httpd_counters *all, unsigned n,
                        const nk_httpd_counters *sum, uint64_t now)
{
    nk_buf_printf(b, "{\"pid\":%llu,\"worker\":%u,\"workers_total\":%u,\"uptime_seconds\":%llu,",
                  (unsigned long long)get(&srv->ctr->pid), srv->cfg.worker_index, n,
                  (unsigned long long)(now - get(&srv->ctr->started)));
    json_counters(b, sum);
    nk_buf_append_str(b, ",\"workers\":[");
    for (unsigned i = 0; i < n; i++) {
        uint64_t started = get(&all[i].started);
        nk_buf_printf(b, "%s{\"worker\":%u,\"pid\":%llu,\"uptime_seconds\":%llu,", i ? "," : "",
                      i, (unsigned long long)get(&all[i].pid),
                      (unsigned long long)(started && now > started ? now - started : 0));
        json_counters(b, &all[i]);
        nk_buf_append_str(b, "}");
    }
    nk_buf_append_str(b, "]}\n");
}

static void prom_metric(nk_buf *b, const char *name, const char *type, const char *help)
{
    nk_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void prom_value(nk_buf *b, const char *name, const char *type, const char *help,
                       uint64_t value)
{
    prom_metric(b, name, type, help);
    nk_buf_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

static void render_prometheus(nk_httpd *srv, nk_buf *b, const nk_httpd_counters *all,
                              unsigned n, const nk_httpd_counters *sum, uint64_t now)
{
    /* Text exposition format 0.0.4: HELP and TYPE once per metric family, then samples. */
    prom_value(b, "netkit_http_connections_open", "gauge", "Client connections open now.",
               sum->connections_open);
    prom_value(b, "netkit_http_connections_accepted_total", "counter",
               "Client connections accepted.", sum->connections_total);
    prom_metric(b, "netkit_http_requests_total", "counter", "Responses sent, by status class.");
    static const char *const classes[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int k = 0; k < 5; k++)
        nk_buf_printf(b, "netkit_http_requests_total{class=\"%s\"} %llu\n", classes[k],
                      (unsigned long long)sum->status[k]);
    prom_value(b, "netkit_http_sent_bytes_total", "counter", "Bytes written to client sockets.",
               sum->bytes_sent);
    prom_value(b, "netkit_http_listings_rendered_total", "counter",
               "Directory listings built (not answered from the listing cache).",
               sum->listings_rendered);
    prom_metric(b, "netkit_tls_handshakes_total", "counter",
                "TLS handshakes, by result (resumed ones are also counted as completed).");
    nk_buf_printf(b, "netkit_tls_handshakes_total{result=\"completed\"} %llu\n"
                     "netkit_tls_handshakes_total{result=\"resumed\"} %llu\n"
                     "netkit_tls_handshakes_total{result=\"failed\"} %llu\n",
                  (unsigned long long)sum->tls_handshakes, (unsigned long long)sum->tls_resumed,
                  (unsigned long long)sum->tls_failed);
    prom_value(b, "netkit_http2_connections_total", "counter", "Connections that spoke HTTP/2.",
               sum->h2_connections);
    prom_value(b, "netkit_http2_streams_total", "counter", "HTTP/2 requests (streams) begun.",
               sum->h2_streams);
    prom_value(b, "netkit_http2_resets_total", "counter", "HTTP/2 streams reset by clients.",
               sum->h2_resets);
    prom_value(b, "netkit_http_proxy_refused_total", "counter",
               "Connections closed for their PROXY header or its source.", sum->proxy_refused);
    prom_value(b, "netkit_http_uptime_seconds", "gauge", "Seconds since this worker started.",
               now - get(&srv->ctr->started));
    prom_metric(b, "netkit_http_worker_requests_total", "counter", "Responses sent, by worker.");
    for (unsigned i = 0; i < n; i++)
        nk_buf_printf(b, "netkit_http_worker_requests_total{worker=\"%u\"} %llu\n", i,
                      (unsigned long long)get(&all[i].requests_total));
    prom_metric(b, "netkit_http_worker_connections_open", "gauge", "Connections open, by worker.");
    for (unsigned i = 0; i < n; i++)
        nk_buf_printf(b, "netkit_http_worker_connections_open{worker=\"%u\"} %llu\n", i,
                      (unsigned long long)get(&all[i].connections_open));
}

/* Does req name path (set: the feature is on) exactly? */
static int path_is(const char *path, const nk_http_request *req)
{
    return path && req->path.len == strlen(path) && memcmp(req->path.p, path, req->path.len) == 0;
}

/* The engine's own pages answer GET and HEAD; other methods there get the normal 405. */
static int get_or_head(const nk_http_request *req)
{
    return req->method == NK_HTTP_GET || req->method == NK_HTTP_HEAD;
}

int nk__health_is_path(const nk_httpd *srv, const nk_http_request *req)
{
    return path_is(srv->health_path, req);
}

int nk__ops_is_path(const nk_httpd *srv, const nk_http_request *req)
{
    return nk__status_is_path(srv, req) || nk__health_is_path(srv, req);
}

nk__outcome nk__health_handle(nk__conn *c, const nk_http_request *req)
{
    nk_httpd *srv = c->srv;
    if (!nk__health_is_path(srv, req) || !get_or_head(req))
        return NK__PASS;
    int down = srv->shutting_down || srv->health_down;
    const char *text = down ? "draining\n" : "ok\n";
    nk_buf *b = &srv->body;
    nk_buf_clear(b);
    if (nk_buf_append(b, text, strlen(text)) < 0)
        return nk__respond_error(c, 500, NULL);
    return nk__respond_live(c, req, down ? 503 : 200, "text/plain; charset=utf-8");
}

int nk_httpd_set_health_path(nk_httpd *srv, const char *path)
{
    char *copy = NULL;
    if (path) {
        if (path[0] != '/')
            return -EINVAL;
        if (!(copy = strdup(path)))
            return -ENOMEM;
    }
    free(srv->health_path);
    srv->health_path = copy;
    return 0;
}

void nk_httpd_set_healthy(nk_httpd *srv, int up)
{
    srv->health_down = !up;
}

int nk__status_is_path(const nk_httpd *srv, const nk_http_request *req)
{
    return path_is(srv->cfg.status_path, req);
}

nk__outcome nk__status_handle(nk__conn *c, const nk_http_request *req)
{
    nk_httpd *srv = c->srv;
    if (!nk__status_is_path(srv, req) || !get_or_head(req))
        return NK__PASS;
    if (!srv->cfg.status_public && !nk_httpd_peer_is_local(c->peer_family, c->peer_ip))
        return nk__respond_error(c, 403, "The status page is only shown to local clients.");
    const nk_httpd_counters *all = srv->cfg.all_counters;
    unsigned n = srv->cfg.nworkers;
    if (!all || n == 0) {
        all = srv->ctr;
        n = 1;
    }
    nk_httpd_counters sum;
    memset(&sum, 0, sizeof sum);
    for (unsigned i = 0; i < n; i++)
        sum_into(&sum, &all[i]);
    uint64_t now = (uint64_t)time(NULL);
    int prom = query_has(req, "format=prometheus");
    nk_buf *b = &srv->body;
    nk_buf_clear(b);
    if (prom)
        render_prometheus(srv, b, all, n, &sum, now);
    else
        render_json(srv, b, all, n, &sum, now);
    return nk__respond_live(c, req, 200,
                            prom ? "text/plain; version=0.0.4; charset=utf-8" : "application/json");
}

/* ---- --cors ------------------------------------------------------------------------------ */

static int is_tchar(unsigned char ch)
{
    /* RFC 9110 section 5.6.2 */
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Access-Control-Request-Headers is a list of field names: tokens, commas, spaces. */
static int header_list_ok(nk_str v)
{
    int tokens = 0, in_tok = 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.p[i];
        if (is_tchar(ch)) {
            if (!in_tok)
                tokens++;
            in_tok = 1;
        } else if (ch == ',' || ch == ' ' || ch == '\t') {
            in_tok = 0;
        } else {
            return 0;
        }
    }
    return tokens > 0 && v.len < 1024;
}

int nk__cors_is_preflight(const nk_httpd *srv, const nk_http_request *req)
{
    /* A preflight is an OPTIONS request with Origin and Access-Control-Request-Method. */
    return srv->cfg.cors && req->method == NK_HTTP_OPTIONS && nk_http_find_header(req, "Origin") &&
           nk_http_find_header(req, "Access-Control-Request-Method");
}

nk__outcome nk__cors_preflight(nk__conn *c, const nk_http_request *req)
{
    if (!nk__cors_is_preflight(c->srv, req))
        return NK__PASS;
    nk_httpd *srv = c->srv;
    const nk_http_header *h = nk_http_find_header(req, "Access-Control-Request-Headers");
    char extra[1400];
    int n = snprintf(extra, sizeof extra, "Access-Control-Allow-Methods: %s\r\n",
                     nk__resp_allow(srv));
    if (h && header_list_ok(h->value))
        n += snprintf(extra + n, sizeof extra - (size_t)n,
                      "Access-Control-Allow-Headers: %.*s\r\n", (int)h->value.len, h->value.p);
    /* The allowed headers echo the request's, so caches must key on them. With the literal
     * "*" origin the answer does not depend on Origin: no Vary: Origin is needed. */
    snprintf(extra + n, sizeof extra - (size_t)n,
             "Access-Control-Max-Age: 86400\r\nVary: Access-Control-Request-Headers\r\n");
    nk__resp r;
    nk__resp_init(&r, 204);
    r.no_body = 1;
    r.extra_headers = extra;
    return nk__respond(c, &r);
}

/* ---- --spa ------------------------------------------------------------------------------- */

int nk__spa_wanted(const nk_httpd *srv, const nk_http_request *req)
{
    /* A browser navigation lists text/html in Accept (with q > 0); scripts and images do
     * not, and a bare wildcard range is not a navigation. */
    if (nk_http_accepts_explicitly(req, "Accept", "text/html") <= 0)
        return 0;
    /* Only "routes": the last segment has no extension, or is a .html page. */
    const char *path = srv->path;
    const char *last = strrchr(path, '/');
    last = last ? last + 1 : path;
    const char *dot = strrchr(last, '.');
    if (!dot)
        return 1;
    return strcasecmp(dot, ".html") == 0;
}
