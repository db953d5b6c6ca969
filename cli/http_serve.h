/* Running `netkit http serve`: listeners, one worker or a supervisor with several. */
#ifndef NETKIT_CLI_HTTP_SERVE_H
#define NETKIT_CLI_HTTP_SERVE_H

#include <netkit/httpd.h>

#define HTTP_MAX_LISTEN 16
#define HTTP_MAX_USERS 1024
#define HTTP_MAX_CERTS 16
#define HTTP_MAX_PROXY_FROM 64

#define HTTP_MAX_INHERIT 16

/* A listener passed by a service manager (socket activation): http_activation.c. */
typedef struct http_inherited {
    int fd;
    int tls, proxy;
} http_inherited;

typedef struct http_serve_opts {
    const char *cmd;
    const char *root;
    const char *listen[HTTP_MAX_LISTEN];
    int listen_tls[HTTP_MAX_LISTEN]; /* https:// */
    int listen_proxy[HTTP_MAX_LISTEN]; /* proxy+http:// or proxy+https:// */
    http_inherited inherited[HTTP_MAX_INHERIT];
    int ninherited;
    const char *proxy_from[HTTP_MAX_PROXY_FROM]; /* --proxy-from; none: loopback */
    int nproxy_from;
    const char *health;     /* --health PATH */
    unsigned health_grace;  /* --health-grace SECONDS */
    int nlisten;
    const char *tls_cert[HTTP_MAX_CERTS]; /* file, or a directory of NAME.crt + NAME.key */
    const char *tls_key[HTTP_MAX_CERTS];
    int ncerts, nkeys;
    int tls_self_signed;
    int redirect_https;
    unsigned hsts;
    int no_http2;           /* --no-http2 */
    unsigned h2_max_streams; /* 0: the engine's default */
    unsigned char tls_secret[48]; /* ticket keys of every worker derive from it */
    int workers;
    const char *backend;
    const char *access_log; /* "-", "off" or a path */
    int quiet;
    int verbose;            /* -v: print each request head on stderr */
    int upload_anonymous;   /* --upload-anonymous: writes without credentials */
    nk_httpd_user users[HTTP_MAX_USERS];
    size_t nusers;
    char *auth_file_data;   /* the --auth-file contents; users point into it */
    nk_httpd_config cfg;
} http_serve_opts;

int http_serve_run(http_serve_opts *o);

/* http_activation.c: listeners from $LISTEN_FDS (0, or an exit code after a message), and a
 * state ("READY=1", "STOPPING=1") for $NOTIFY_SOCKET when there is one. */
int http_inherit_listeners(http_serve_opts *o);
void http_notify(const char *state);

/* http_tls.c */
int http_tls_split_schemes(http_serve_opts *o);
int http_tls_check(http_serve_opts *o);
int http_tls_context(const http_serve_opts *o, nk_tls_ctx **out, char *err, size_t errlen);
int http_tls_self_signed(const http_serve_opts *o, nk_tls_ctx *ctx, const nk_addr *addrs,
                         int naddrs, char fp[NK_TLS_FP_HEX], char *err, size_t errlen);

#endif
