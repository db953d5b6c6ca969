/* An HTTP route that answers later: GET /api/later?ms=N returns NK_HTTPD_LATER and a timer
 * answers N ms afterwards, while the loop keeps serving everyone else. The same shape serves
 * an answer that waits for a database, another server or a worker thread (nk_defer).
 *   cc http_later.c $(pkg-config --cflags --libs netkit-httpd) -o http_later
 *   ./http_later 127.0.0.1:8080     then: curl 'http://127.0.0.1:8080/api/later?ms=500'
 * On SIGTERM every waiting request is answered at once (503), then the engine drains. */
#include <netkit/netkit.h>
#include <netkit/httpd.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

struct pending {
    nk_timer timer;
    nk_httpd_ex *ex; /* valid until answered, even if the client went away meanwhile */
    long ms;
    struct pending *next, **prevp;
};

struct app {
    nk_loop *loop;
    nk_httpd *srv;
    struct pending *waiting; /* the answers still owed */
};

static void answer(struct pending *p, int status)
{
    char body[64];
    int n = status == 200 ? snprintf(body, sizeof body, "{\"waited_ms\":%ld}\n", p->ms)
                          : snprintf(body, sizeof body, "{\"error\":\"shutting down\"}\n");
    nk_httpd_respond(p->ex, status, "application/json", body, (size_t)n); /* p->ex is gone now */
    if (p->next)
        p->next->prevp = p->prevp;
    *p->prevp = p->next;
    free(p);
}

static void on_due(nk_loop *loop, nk_timer *t)
{
    (void)loop;
    answer(t->data, 200);
}

static int api_later(nk_httpd_ex *ex, void *arg)
{
    struct app *app = arg;
    char text[16] = "", *end = text;
    long ms = -1;
    if (nk_httpd_ex_query_param(ex, "ms", text, sizeof text) > 0)
        ms = strtol(text, &end, 10);
    if (ms < 0 || ms > 10000 || *end)
        return nk_httpd_respond(ex, 400, "text/plain", "ms=0..10000\n", 12);
    struct pending *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM; /* the engine answers 500 */
    p->ex = ex;
    p->ms = ms;
    p->next = app->waiting;
    if (p->next)
        p->next->prevp = &p->next;
    p->prevp = &app->waiting;
    app->waiting = p;
    nk_timer_init(&p->timer, on_due, p);
    nk_timer_start(app->loop, &p->timer, (uint64_t)ms, 0);
    return NK_HTTPD_LATER; /* the connection reads nothing more until we answer */
}

/* Routes come before the static files: a catch-all keeps the engine from serving any. */
static int not_found(nk_httpd_ex *ex, void *arg)
{
    (void)arg;
    return nk_httpd_respond(ex, 404, "text/plain", "not found\n", 10);
}

static void on_drained(void *arg) { nk_loop_stop(arg); }

static void on_term(nk_loop *loop, nk_signal *sig, int signum)
{
    (void)signum;
    struct app *app = sig->data;
    /* Every LATER exchange must be answered once, and before nk_httpd_free. */
    while (app->waiting) {
        nk_timer_stop(loop, &app->waiting->timer);
        answer(app->waiting, 503);
    }
    nk_signal_stop(loop, sig); /* a second SIGTERM now kills, as usual */
    nk_httpd_shutdown(app->srv); /* finish what is in flight, then on_drained */
}

int main(int argc, char **argv)
{
    struct app app = {0};
    nk_loop *loop;
    nk_httpd *srv;
    nk_httpd_config cfg;
    nk_addr addr;
    char name[NK_ADDR_STRLEN];
    nk_httpd_config_init(&cfg);
    int rc = argc == 2 ? nk_addr_parse(argv[1], 0, &addr) : -EINVAL;
    int fd = rc < 0 ? rc : nk_sock_listen(&addr, SOCK_STREAM, 0, 0);
    if (fd < 0 || (rc = nk_loop_new(NULL, &loop)) < 0) {
        fprintf(stderr, "usage: http_later HOST:PORT (%s)\n", nk_strerror(fd < 0 ? fd : rc));
        return 2;
    }
    cfg.on_drained = on_drained;
    cfg.drained_arg = loop;
    if ((rc = nk_httpd_new(loop, &cfg, &srv)) < 0 || (rc = nk_httpd_listen(srv, fd)) < 0 ||
        (rc = nk_httpd_route(srv, "GET", "/api/later", 0, api_later, &app)) < 0 ||
        (rc = nk_httpd_route(srv, NULL, "/", NK_HTTPD_PREFIX, not_found, NULL)) < 0) {
        fprintf(stderr, "http_later: %s\n", nk_strerror(rc));
        return 1;
    }
    app.loop = loop;
    app.srv = srv;
    nk_signal term;
    nk_signal_init(&term, on_term, &app);
    nk_signal_start(loop, &term, SIGTERM);
    nk_sock_local(fd, &addr);
    nk_addr_format(&addr, name, sizeof name);
    fprintf(stderr, "listening on http://%s/\n", name);
    rc = nk_loop_run(loop, NK_RUN_DEFAULT);
    nk_httpd_free(srv);
    nk_loop_free(loop);
    return rc < 0 ? 1 : 0;
}
