/* An embedded HTTP endpoint: one JSON route, static files for everything else.
 *   cc http_json.c $(pkg-config --cflags --libs netkit-httpd) -o http_json
 *   ./http_json 127.0.0.1:8080 ./www     then: curl 'http://127.0.0.1:8080/api/time?tz=UTC' */
#include <netkit/netkit.h>
#include <netkit/httpd.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

static int api_time(nk_httpd_ex *ex, void *arg)
{
    (void)arg;
    char tz[32] = "UTC", body[96];
    nk_httpd_ex_query_param(ex, "tz", tz, sizeof tz); /* absent: the default stays */
    int n = snprintf(body, sizeof body, "{\"unix\":%lld,\"utc\":%s}\n", (long long)time(NULL),
                     tz[0] == 'U' ? "true" : "false");
    return nk_httpd_respond(ex, 200, "application/json", body, (size_t)n);
}

static void on_stop(nk_loop *loop, nk_signal *sig, int signo) { (void)sig, (void)signo, nk_loop_stop(loop); }

int main(int argc, char **argv)
{
    nk_loop *loop;
    nk_httpd *srv;
    nk_httpd_config cfg;
    nk_httpd_config_init(&cfg);
    cfg.root = argc > 2 ? argv[2] : ".";
    nk_addr addr;
    char name[NK_ADDR_STRLEN];
    int fd = argc > 1 && nk_addr_parse(argv[1], 0, &addr) == 0
                 ? nk_sock_listen(&addr, SOCK_STREAM, 0, 0) : -1;
    if (fd < 0 || nk_loop_new(NULL, &loop) < 0 || nk_httpd_new(loop, &cfg, &srv) < 0 ||
        nk_httpd_listen(srv, fd) < 0 || nk_httpd_route(srv, "GET", "/api/time", 0, api_time, 0))
        return fprintf(stderr, "usage: http_json HOST:PORT [DIR] (%s)\n", nk_strerror(fd)), 2;
    nk_signal term;
    nk_signal_init(&term, on_stop, NULL);
    nk_signal_start(loop, &term, SIGTERM);
    nk_sock_local(fd, &addr);
    nk_addr_format(&addr, name, sizeof name);
    fprintf(stderr, "listening on http://%s/\n", name);
    nk_loop_run(loop, NK_RUN_DEFAULT);
    nk_httpd_free(srv);
    return nk_loop_free(loop);
}
